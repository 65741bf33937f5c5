//! Reading what stands at a Secret's name: the watch cache first, the API server only where
//! the cache cannot say.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use super::view::{Existing, Written, newer_view, owned_by};
use crate::keyed::key;

/// What stands at the Secret's name: from the watch cache (metadata only; no credentials
/// cross the wire), newer than it where this process wrote since. A GET confirms what the
/// cache lacks only when `confirm` (a Secret without the controller's label is not in the
/// cache, so a first issue checks the name is free before it calls STS; the caller skips
/// that for an Identity that already checked before it queued for its STS turn) or when this
/// process wrote the Secret (cache behind, or the Secret deleted since). The cache keeps the
/// managedFields entries of other writers of `data` ([`crate::tamper::writes_data`]), so a
/// tampered Secret shows there; only then is the live metadata read, which a restore is
/// conditional on.
pub async fn existing(
    api: &Api<Secret>,
    cache: &Store<PartialObjectMeta<Secret>>,
    written: &Written,
    (namespace, name): (&str, &str),
    owner_uid: &str,
    confirm: bool,
) -> Result<Existing, kube::Error> {
    let at = key(namespace, name);
    let mine = written.get(&at);
    let meta = match cache.get(&ObjectRef::new(name).within(namespace)) {
        Some(meta) => meta,
        None if !confirm && mine.is_none() => return Ok(Existing::Missing),
        None => match api.get_metadata_opt(name).await? {
            Some(meta) => Arc::new(meta),
            None => {
                written.remove(&at);
                return Ok(Existing::Missing);
            }
        },
    };
    if !owned_by(&meta, owner_uid) {
        return Ok(Existing::Foreign);
    }
    let (caught_up, newer) = newer_view(&meta, mine.as_ref());
    if caught_up {
        written.remove(&at);
    }
    // A write of ours newer than the cached copy replaced `data` whole: the writers the cache
    // shows are from before it.
    if newer.is_none() && !crate::tamper::data_writers(meta.managed_fields()).is_empty() {
        let Some(live) = api.get_metadata_opt(name).await? else {
            written.remove(&at);
            return Ok(Existing::Missing);
        };
        if !owned_by(&live, owner_uid) {
            return Ok(Existing::Foreign);
        }
        return Ok(Existing::Owned {
            uid: live.uid().unwrap_or_default(),
            annotations: live.annotations().clone(),
            labels: live.labels().clone(),
            resource_version: live.resource_version().unwrap_or_default(),
            tampered_by: crate::tamper::data_writers(live.managed_fields()),
        });
    }
    Ok(Existing::Owned {
        uid: meta.uid().unwrap_or_default(),
        annotations: newer.unwrap_or_else(|| meta.annotations().clone()),
        // Only a restore uses these, and it reads the live metadata first.
        labels: BTreeMap::new(),
        resource_version: meta.resource_version().unwrap_or_default(),
        tampered_by: Vec::new(),
    })
}
