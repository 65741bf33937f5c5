//! What stands at a Secret's name, as the controller sees it: the watch cache, corrected by
//! what this process wrote since. Pure: the Identity reconcile's gather step
//! (`controller/identity/gather.rs`) reads.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;

use crate::output::labels;
use crate::util::keyed::ByName;

/// What stands at the Secret's name.
#[derive(Clone, Debug)]
pub enum Existing {
    /// Nothing: the first write is a create.
    Missing,
    /// A Secret owned by this Identity.
    Owned {
        /// Its UID: the apply is conditional on it, so a Secret deleted and recreated by
        /// someone else in between is not overwritten.
        uid: String,
        /// Its annotations (the controller's renewal bookkeeping).
        annotations: BTreeMap<String, String>,
        /// Its labels (kept by a restore).
        labels: BTreeMap<String, String>,
        /// The version read: a restore is conditional on it.
        resource_version: String,
        /// Field managers other than the controller that own a data key
        /// ([`crate::output::tamper::data_writers`]); empty when only the controller wrote it.
        tampered_by: Vec<String>,
    },
    /// Someone else's Secret: never modified.
    Foreign,
}

/// Secrets this process wrote, by (namespace, name), with the UID and annotations written:
/// a reconcile that runs before the watch has delivered its own write (another trigger came
/// in meanwhile) decides from these, not from the older cached copy, so it neither creates
/// the Secret twice nor renews twice. An entry goes once the cache has caught up.
pub type Written = ByName<WrittenSecret>;

/// A Secret this process wrote: its UID, its controller owner's UID and the annotations
/// written. The owner lets an Identity find the Secrets it wrote before the cache shows them
/// (a rename right after the first issue must still empty the first Secret).
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenSecret {
    /// The Secret's UID.
    pub uid: String,
    /// The UID of the Identity that owns it.
    pub owner: String,
    /// The annotations written.
    pub annotations: BTreeMap<String, String>,
}

/// The newer of the cached metadata and this process's own last write (by issue time:
/// only the controller writes that annotation).
pub fn newer_view(
    cached: &PartialObjectMeta<Secret>,
    written: Option<&WrittenSecret>,
) -> (bool, Option<BTreeMap<String, String>>) {
    let issued =
        |a: &BTreeMap<String, String>| a.get(labels::ISSUED_AT).and_then(|v| v.parse::<jiff::Timestamp>().ok());
    match written {
        Some(w) if cached.uid().as_deref() == Some(w.uid.as_str()) => {
            if issued(&w.annotations) > issued(cached.annotations()) {
                (false, Some(w.annotations.clone()))
            } else {
                (true, None)
            }
        }
        // Another Secret stands at the name now (or nothing was written): the cache says it.
        _ => (written.is_some(), None),
    }
}

/// Whether `uid` is the Secret's controller owner: the only Secrets the controller touches.
pub fn owned_by(meta: &PartialObjectMeta<Secret>, uid: &str) -> bool {
    meta.owner_references()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// The metadata of a Secret named `name`, owned by `owner` (a controller reference), with
/// `annotations`: what the cache holds, for the tests of the pure parts.
#[cfg(test)]
pub(super) fn meta(name: &str, owner: &str, annotations: &[(&str, &str)]) -> PartialObjectMeta<Secret> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    PartialObjectMeta::<Secret> {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            owner_references: Some(vec![OwnerReference {
                uid: owner.into(),
                controller: Some(true),
                ..Default::default()
            }]),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newer_of_the_cache_and_our_own_write_decides() {
        let cached = meta("s", "me", &[(labels::ISSUED_AT, "2026-01-01T00:00:00Z")]);
        let ours = |uid: &str, at: &str| WrittenSecret {
            uid: uid.to_owned(),
            owner: "me".to_owned(),
            annotations: BTreeMap::from([(labels::ISSUED_AT.to_owned(), at.to_owned())]),
        };
        // Nothing written by this process: the cache says it.
        assert_eq!(newer_view(&cached, None), (false, None));
        // Our renewal is newer than the cache: decide from it (no second renewal).
        let newer = ours("uid-s", "2026-01-01T00:40:00.5Z");
        assert_eq!(
            newer_view(&cached, Some(&newer)),
            (false, Some(newer.annotations.clone()))
        );
        // The cache has caught up (or gone past): forget the write.
        let same = ours("uid-s", "2026-01-01T00:00:00Z");
        assert_eq!(newer_view(&cached, Some(&same)), (true, None));
        // Another Secret stands at the name now: the cache says it, the write is forgotten.
        let other = ours("uid-old", "2026-01-01T00:40:00Z");
        assert_eq!(newer_view(&cached, Some(&other)), (true, None));
    }
}
