//! Which Identities use which ClusterAuthProfile: recorded by the Identity reconciles of every
//! watch scope, read by the ClusterAuthProfile status (its `namespaces`). In memory only: a
//! restart rebuilds it as every Identity is reconciled on start.

use std::collections::BTreeSet;

use crate::util::keyed::{ByName, key};

/// (namespace, Identity name) -> ClusterAuthProfile name.
#[derive(Default)]
pub struct Usage {
    by_identity: ByName<String>,
}

impl Usage {
    /// Identity `namespace/name` uses ClusterAuthProfile `profile` (and may).
    pub fn record(&self, profile: &str, namespace: &str, name: &str) {
        self.by_identity.insert(key(namespace, name), profile.to_owned());
    }

    /// Identity `namespace/name` uses no ClusterAuthProfile (or may not use it).
    pub fn forget(&self, namespace: &str, name: &str) {
        self.by_identity.remove(&key(namespace, name));
    }

    /// Forgets every Identity for which `keep(namespace, name)` is false.
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.by_identity.retain(keep);
    }

    /// The namespaces with an Identity that uses `profile`, in name order.
    pub fn namespaces(&self, profile: &str) -> BTreeSet<String> {
        self.by_identity.with(|m| {
            m.iter()
                .filter(|(_, p)| p.as_str() == profile)
                .map(|((ns, _), _)| ns.clone())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_of_a_profile() {
        let u = Usage::default();
        u.record("p", "b", "i1");
        u.record("p", "a", "i1");
        u.record("p", "a", "i2");
        u.record("q", "c", "i1");
        assert_eq!(u.namespaces("p").into_iter().collect::<Vec<_>>(), ["a", "b"]);
        u.forget("b", "i1");
        u.record("q", "a", "i1");
        assert_eq!(u.namespaces("p").into_iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(u.namespaces("q").into_iter().collect::<Vec<_>>(), ["a", "c"]);
    }
}
