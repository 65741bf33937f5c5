//! Which of an Identity's Secrets still need emptying: those under a name it no longer uses
//! (superseded), or all of them when it lost access (revoked). Pure: the caller passes the
//! cached metadata.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::core::PartialObjectMeta;

use super::view::{SecretWrite, owned_by};
use crate::output::labels;

/// The Secrets to choose from in `namespace`: `cached` (the watch cache's), and those this
/// process wrote there (`written`, by name) that the cache does not show yet, as the metadata
/// written. A Secret renamed away from right after its first issue is found that way.
pub fn with_written(
    namespace: &str,
    mut cached: Vec<Arc<PartialObjectMeta<Secret>>>,
    written: Vec<(String, SecretWrite)>,
) -> Vec<Arc<PartialObjectMeta<Secret>>> {
    for (name, w) in written {
        if cached.iter().any(|m| m.name_any() == name) {
            continue;
        }
        let meta = ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_owned()),
            uid: Some(w.uid),
            annotations: Some(w.annotations),
            owner_references: Some(vec![OwnerReference {
                uid: w.owner,
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        };
        cached.push(Arc::new(PartialObjectMeta {
            metadata: meta,
            ..Default::default()
        }));
    }
    cached
}

/// A Secret to empty: its name, UID and the data keys it may hold.
pub type ToEmpty = (String, String, Vec<String>);

/// The Secrets among `secrets` that this Identity (`owner_uid`) wrote under a name other than
/// `current` (and `also`, its image-pull Secret) and that still need emptying. One already
/// marked superseded by `current`, without renewal annotations, is done.
pub fn to_supersede<'a>(
    secrets: impl IntoIterator<Item = &'a PartialObjectMeta<Secret>>,
    owner_uid: &str,
    (current, also): (&str, Option<&str>),
) -> Vec<ToEmpty> {
    to_empty(
        secrets,
        owner_uid,
        |m| m.name_any() != current && Some(m.name_any().as_str()) != also,
        labels::SUPERSEDED_BY,
        current,
    )
}

/// Every Secret among `secrets` this Identity (`owner_uid`) wrote that still holds
/// credentials or is not yet marked [`labels::REVOKED`] with `reason`.
pub fn to_revoke<'a>(
    secrets: impl IntoIterator<Item = &'a PartialObjectMeta<Secret>>,
    owner_uid: &str,
    reason: &str,
) -> Vec<ToEmpty> {
    to_empty(secrets, owner_uid, |_| true, labels::REVOKED, reason)
}

fn to_empty<'a>(
    secrets: impl IntoIterator<Item = &'a PartialObjectMeta<Secret>>,
    owner_uid: &str,
    pick: impl Fn(&PartialObjectMeta<Secret>) -> bool,
    mark: &str,
    value: &str,
) -> Vec<ToEmpty> {
    secrets
        .into_iter()
        .filter(|m| owned_by(m, owner_uid) && pick(m))
        .filter(|m| {
            let a = m.annotations();
            let done = a.get(mark).map(String::as_str) == Some(value)
                && labels::RENEWAL_ANNOTATIONS.iter().all(|k| !a.contains_key(*k));
            !done
        })
        .filter_map(|m| Some((m.name_any(), m.uid()?, labels::data_keys(m.annotations()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::view::meta;
    use super::*;

    #[test]
    fn only_this_identitys_other_secrets_not_yet_emptied() {
        let secrets = [
            meta("current", "me", &[(labels::SPEC_HASH, "h")]),
            meta("old", "me", &[(labels::SPEC_HASH, "h"), (labels::EXPIRATION, "x")]),
            meta("theirs", "someone-else", &[(labels::SPEC_HASH, "h")]),
            meta("done", "me", &[(labels::SUPERSEDED_BY, "current")]),
            // Superseded by an earlier name: re-marked for the current one.
            meta("older", "me", &[(labels::SUPERSEDED_BY, "old")]),
        ];
        let names: Vec<String> = to_supersede(&secrets, "me", ("current", None))
            .into_iter()
            .map(|(n, uid, _)| {
                assert_eq!(uid, format!("uid-{n}"));
                n
            })
            .collect();
        assert_eq!(names, ["old", "older"]);
    }

    #[test]
    fn revoking_takes_every_secret_of_this_identity_until_marked() {
        let secrets = [
            meta("current", "me", &[(labels::SPEC_HASH, "h")]),
            meta("theirs", "someone-else", &[(labels::SPEC_HASH, "h")]),
            meta("done", "me", &[(labels::REVOKED, "NamespaceNotAllowed")]),
            meta("other-reason", "me", &[(labels::REVOKED, "Other")]),
        ];
        let names: Vec<String> = to_revoke(&secrets, "me", "NamespaceNotAllowed")
            .into_iter()
            .map(|(n, ..)| n)
            .collect();
        assert_eq!(names, ["current", "other-reason"]);
    }
}
