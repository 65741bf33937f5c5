//! Which Identities use which ClusterAuthProfile: recorded by the Identity reconciles of every
//! watch scope, read by the ClusterAuthProfile status (its `namespaces`). In memory only: a
//! restart rebuilds it as every Identity is reconciled on start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// (namespace, Identity name) -> ClusterAuthProfile name.
#[derive(Default)]
pub struct Usage {
    by_identity: Mutex<BTreeMap<(String, String), String>>,
}

impl Usage {
    /// Identity `namespace/name` uses ClusterAuthProfile `profile` (and may).
    pub fn record(&self, profile: &str, namespace: &str, name: &str) {
        self.lock()
            .insert((namespace.to_owned(), name.to_owned()), profile.to_owned());
    }

    /// Identity `namespace/name` uses no ClusterAuthProfile (or may not use it).
    pub fn forget(&self, namespace: &str, name: &str) {
        self.lock().remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Forgets every Identity for which `keep(namespace, name)` is false.
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.lock().retain(|(ns, name), _| keep(ns, name));
    }

    /// The namespaces with an Identity that uses `profile`, in name order.
    pub fn namespaces(&self, profile: &str) -> BTreeSet<String> {
        self.lock()
            .iter()
            .filter(|(_, p)| p.as_str() == profile)
            .map(|((ns, _), _)| ns.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), String>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.by_identity.lock().unwrap_or_else(|p| p.into_inner())
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
