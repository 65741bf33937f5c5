//! What stands at a Secret's name, as the controller sees it: the watch cache, or a live
//! read. Pure: the Identity reconcile's gather step (`controller/identity/gather.rs`) reads.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;

use super::record::Record;
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
        /// Its annotations (the marks an apply tidies up; never a renewal decision).
        annotations: BTreeMap<String, String>,
        /// Its labels (kept by a restore).
        labels: BTreeMap<String, String>,
        /// The version seen: compared with the controller's record, and a restore is
        /// conditional on it.
        resource_version: String,
        /// What a live read found (the cache holds no data): `None` when seen in the cache.
        live: Option<Live>,
    },
    /// Someone else's Secret: never modified.
    Foreign,
}

/// Secrets this process wrote, by (namespace, Secret name), with the UID, owner and
/// annotations written: an Identity renamed away from its Secret before the watch cache
/// shows that Secret still finds it to empty it. An entry goes once the cache shows the
/// Secret, or once it is emptied.
pub type SecretWrites = ByName<SecretWrite>;

/// A Secret this process wrote: its UID, its controller owner's UID and the annotations
/// written (which name the data keys to remove when it is emptied).
#[derive(Clone, Debug, PartialEq)]
pub struct SecretWrite {
    /// The Secret's UID.
    pub uid: String,
    /// The UID of the Identity that owns it.
    pub owner: String,
    /// The annotations written.
    pub annotations: BTreeMap<String, String>,
}

/// What a live read of a Secret found, besides its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    /// [`super::record::data_hash`] of its data (the data itself is not kept).
    pub data_hash: String,
    /// Field managers other than the controller that own a data key, for messages only:
    /// anyone may write under any manager name, so they never decide anything.
    pub writers: Vec<String>,
}

/// Secrets this process wrote, by (namespace, name), with the record of each write: a
/// reconcile that runs before the status recording it is written (or before the watch
/// shows it) decides from these. An entry goes once a status write has recorded it.
pub type Written = ByName<Record>;

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
