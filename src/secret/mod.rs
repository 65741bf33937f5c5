//! Writing the Secret: a plain create the first time (a 409 means the name belongs to
//! someone else, whose Secret is never touched), server-side apply afterwards, and only
//! once the existing Secret's owner reference names this Identity's UID. And emptying the
//! Secrets an Identity wrote under a name it no longer uses (no `delete` right needed: the
//! garbage collector removes them with the Identity).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use crate::keyed::{ByName, key};
use crate::labels;

/// What stands at the Secret's name.
#[derive(Debug)]
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
        /// ([`crate::tamper::data_writers`]); empty when only the controller wrote it.
        tampered_by: Vec<String>,
    },
    /// Someone else's Secret: never modified.
    Foreign,
}

/// A failed Secret write.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The name is taken by a Secret this Identity does not own.
    #[error(
        "Secret {namespace}/{name} exists and is not owned by this Identity; it was left untouched: choose another spec.secret.name, or delete that Secret if it is stale"
    )]
    Conflict {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The API server refused the write.
    #[error("writing Secret {namespace}/{name} failed: {source}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// API error (the request body is never part of it).
        #[source]
        source: kube::Error,
    },
}

impl SecretError {
    /// Condition reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::Conflict { .. } => "SecretConflict",
            Self::Api { .. } => "SecretWriteFailed",
        }
    }

    /// Whether a retry may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict { .. } => false,
            Self::Api {
                source: kube::Error::Api(s),
                ..
            } => s.code >= 500 || s.code == 429 || s.code == 409,
            Self::Api { .. } => true,
        }
    }
}

/// Secrets this process wrote, by (namespace, name), with the UID and annotations written:
/// a reconcile that runs before the watch has delivered its own write (another trigger came
/// in meanwhile) decides from these, not from the older cached copy, so it neither creates
/// the Secret twice nor renews twice. An entry goes once the cache has caught up.
pub type Written = ByName<WrittenSecret>;

/// A written Secret's UID and annotations.
type WrittenSecret = (String, BTreeMap<String, String>);

/// The newer of the cached metadata and this process's own last write (by issue time:
/// only the controller writes that annotation).
pub fn newer_view(
    cached: &PartialObjectMeta<Secret>,
    written: Option<&WrittenSecret>,
) -> (bool, Option<BTreeMap<String, String>>) {
    let issued =
        |a: &BTreeMap<String, String>| a.get(labels::ISSUED_AT).and_then(|v| v.parse::<jiff::Timestamp>().ok());
    match written {
        Some((uid, annotations)) if cached.uid().as_deref() == Some(uid.as_str()) => {
            if issued(annotations) > issued(cached.annotations()) {
                (false, Some(annotations.clone()))
            } else {
                (true, None)
            }
        }
        // Another Secret stands at the name now (or nothing was written): the cache says it.
        _ => (written.is_some(), None),
    }
}

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

fn owned_by(meta: &PartialObjectMeta<Secret>, uid: &str) -> bool {
    meta.owner_references()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// The Secret the controller wants: data, managed-by label, its own annotations, and a
/// controller owner reference so garbage collection removes it with the Identity.
pub fn desired(
    namespace: &str,
    name: &str,
    owner: OwnerReference,
    data: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                labels::MANAGED_BY.to_owned(),
                labels::MANAGED_BY_VALUE.to_owned(),
            )])),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect()),
        ..Default::default()
    }
}

/// Writes `secret`: create when `existing` is `Missing`, apply when `Owned`, a restore
/// ([`restore_patch`]) when `Owned` and changed by someone else; refuses `Foreign`. With `prune`, data keys of [`crate::render::ALL_KEYS`] that `secret` no longer
/// holds are removed (a merge patch: keys written by the first create are owned by an
/// `Update` entry that a later apply never removes); the same patch drops a
/// [`labels::SUPERSEDED_BY`] mark from a Secret back in use.
/// Returns the written Secret's UID.
pub async fn write(
    api: &Api<Secret>,
    existing: &Existing,
    secret: &Secret,
    prune: bool,
) -> Result<String, SecretError> {
    let namespace = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let err = |source| SecretError::Api {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    };
    match existing {
        Existing::Foreign => Err(SecretError::Conflict {
            namespace: namespace.clone(),
            name: name.clone(),
        }),
        Existing::Missing => match api
            .create(
                &PostParams {
                    field_manager: Some(labels::FIELD_MANAGER.to_owned()),
                    ..Default::default()
                },
                secret,
            )
            .await
        {
            Ok(created) => Ok(created.uid().unwrap_or_default()),
            // Someone created it since we looked: theirs, not ours.
            Err(kube::Error::Api(s)) if s.code == 409 => Err(SecretError::Conflict {
                namespace: namespace.clone(),
                name: name.clone(),
            }),
            Err(e) => Err(err(e)),
        },
        Existing::Owned {
            uid,
            annotations,
            labels,
            resource_version,
            tampered_by,
        } if !tampered_by.is_empty() => {
            let patch = restore_patch(uid, resource_version, labels, annotations, secret);
            api.patch(&name, &manager(), &Patch::<()>::Json(patch))
                .await
                .map_err(err)?;
            Ok(uid.clone())
        }
        Existing::Owned { uid, annotations, .. } => {
            let mut body = secret.clone();
            body.metadata.managed_fields = None;
            body.metadata.uid = Some(uid.clone());
            let applied = serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": body.metadata,
                "type": body.type_,
                "data": body.data,
            });
            api.patch(
                &name,
                &PatchParams::apply(labels::FIELD_MANAGER).force(),
                &Patch::Apply(applied),
            )
            .await
            .map_err(err)?;
            let kept = secret.data.as_ref();
            let stale: serde_json::Map<String, serde_json::Value> = labels::data_keys(annotations)
                .into_iter()
                .filter(|k| prune && !kept.is_some_and(|d| d.contains_key(k)))
                .map(|k| (k, serde_json::Value::Null))
                .collect();
            // Marks set by merge patches (which an apply never removes), and a key list the
            // first create wrote (owned by an `Update` entry) that this write no longer has.
            let wanted = secret.annotations();
            let marks: serde_json::Map<String, serde_json::Value> =
                [labels::SUPERSEDED_BY, labels::REVOKED, labels::DATA_KEYS]
                    .into_iter()
                    .filter(|k| annotations.contains_key(*k) && !wanted.contains_key(*k))
                    .map(|k| (k.to_owned(), serde_json::Value::Null))
                    .collect();
            if !stale.is_empty() || !marks.is_empty() {
                let mut metadata = serde_json::json!({ "uid": uid });
                if !marks.is_empty() {
                    metadata["annotations"] = serde_json::Value::Object(marks);
                }
                // The UID is a precondition: never touch a Secret that replaced ours meanwhile.
                let patch = serde_json::json!({ "metadata": metadata, "data": stale });
                api.patch(&name, &manager(), &Patch::Merge(&patch)).await.map_err(err)?;
            }
            Ok(uid.clone())
        }
    }
}

/// Patches made as the controller's field manager: managedFields then tell the controller's
/// writes from everyone else's ([`crate::tamper`]).
fn manager() -> PatchParams {
    PatchParams {
        field_manager: Some(labels::FIELD_MANAGER.to_owned()),
        ..Default::default()
    }
}

/// The JSON patch that restores a Secret someone else changed: `data` replaced as a whole
/// (server-side apply cannot remove keys another manager owns), the controller's label and
/// annotations set, the others kept. Conditional on the Secret's UID and on the version
/// read (`resourceVersion`), so a write made meanwhile is never lost unseen: the patch fails
/// with a conflict and the next reconcile looks again.
pub fn restore_patch(
    uid: &str,
    resource_version: &str,
    live_labels: &BTreeMap<String, String>,
    live_annotations: &BTreeMap<String, String>,
    secret: &Secret,
) -> json_patch::Patch {
    let mut labels = live_labels.clone();
    labels.extend(secret.metadata.labels.clone().unwrap_or_default());
    let mut annotations = live_annotations.clone();
    // Back in use after a rename, as in `write`.
    annotations.remove(labels::SUPERSEDED_BY);
    annotations.extend(secret.metadata.annotations.clone().unwrap_or_default());
    let ops = serde_json::json!([
        { "op": "test", "path": "/metadata/uid", "value": uid },
        { "op": "replace", "path": "/metadata/resourceVersion", "value": resource_version },
        { "op": "replace", "path": "/metadata/labels", "value": labels },
        { "op": "replace", "path": "/metadata/annotations", "value": annotations },
        { "op": "replace", "path": "/data", "value": secret.data.clone().unwrap_or_default() },
    ]);
    // The shape is fixed above; an empty patch would only make the write fail.
    serde_json::from_value(ops).unwrap_or_else(|_| json_patch::Patch(Vec::new()))
}

/// A Secret to empty: its name, UID and the data keys it may hold.
pub type ToEmpty = (String, String, Vec<String>);

/// The Secrets among `secrets` that this Identity (`owner_uid`) wrote under a name other than
/// `current` and that still need emptying. One already marked superseded by `current`,
/// without renewal annotations, is done.
pub fn to_supersede<'a>(
    secrets: impl IntoIterator<Item = &'a PartialObjectMeta<Secret>>,
    owner_uid: &str,
    current: &str,
) -> Vec<ToEmpty> {
    to_empty(
        secrets,
        owner_uid,
        |m| m.name_any() != current,
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

/// The merge patch that empties a superseded Secret: every credential key (`keys`) and
/// renewal annotation removed, the new name recorded, conditional on the Secret's own UID.
pub fn supersede_patch(uid: &str, current: &str, keys: &[String]) -> serde_json::Value {
    empty_patch(uid, keys, labels::SUPERSEDED_BY, current)
}

/// The merge patch that empties a Secret whose Identity lost access: as
/// [`supersede_patch`], with [`labels::REVOKED`] set to `reason`.
pub fn revoke_patch(uid: &str, reason: &str, keys: &[String]) -> serde_json::Value {
    empty_patch(uid, keys, labels::REVOKED, reason)
}

fn empty_patch(uid: &str, keys: &[String], mark: &str, value: &str) -> serde_json::Value {
    let mut annotations: serde_json::Map<String, serde_json::Value> = labels::RENEWAL_ANNOTATIONS
        .iter()
        .chain([&labels::DATA_KEYS])
        .map(|k| ((*k).to_owned(), serde_json::Value::Null))
        .collect();
    annotations.insert(mark.to_owned(), value.into());
    let data: serde_json::Map<String, serde_json::Value> =
        keys.iter().map(|k| (k.clone(), serde_json::Value::Null)).collect();
    serde_json::json!({
        "metadata": { "uid": uid, "annotations": annotations },
        "data": data,
    })
}

/// Empties every Secret this Identity wrote under a name other than `current`, found in the
/// metadata cache (`cached`: the controller's Secrets, by the managed-by label) by their
/// owner reference; returns their names.
pub async fn supersede(
    api: &Api<Secret>,
    namespace: &str,
    owner_uid: &str,
    current: &str,
    cached: &[Arc<PartialObjectMeta<Secret>>],
) -> Result<Vec<String>, SecretError> {
    let todo = to_supersede(cached.iter().map(AsRef::as_ref), owner_uid, current);
    empty_all(api, namespace, todo, |uid, keys| supersede_patch(uid, current, keys)).await
}

/// Empties every Secret this Identity wrote (found in the metadata cache, as for
/// [`supersede`]), marking it [`labels::REVOKED`] with `reason` (its namespace may no longer
/// use the profile); returns their names.
pub async fn revoke(
    api: &Api<Secret>,
    namespace: &str,
    owner_uid: &str,
    reason: &str,
    cached: &[Arc<PartialObjectMeta<Secret>>],
) -> Result<Vec<String>, SecretError> {
    let todo = to_revoke(cached.iter().map(AsRef::as_ref), owner_uid, reason);
    empty_all(api, namespace, todo, |uid, keys| revoke_patch(uid, reason, keys)).await
}

async fn empty_all(
    api: &Api<Secret>,
    namespace: &str,
    todo: Vec<ToEmpty>,
    patch: impl Fn(&str, &[String]) -> serde_json::Value,
) -> Result<Vec<String>, SecretError> {
    let mut done = Vec::new();
    for (name, uid, keys) in todo {
        api.patch(&name, &manager(), &Patch::Merge(&patch(&uid, &keys)))
            .await
            .map_err(|source| SecretError::Api {
                namespace: namespace.to_owned(),
                name: name.clone(),
                source,
            })?;
        done.push(name);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, owner: &str, annotations: &[(&str, &str)]) -> PartialObjectMeta<Secret> {
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
        let names: Vec<String> = to_supersede(&secrets, "me", "current")
            .into_iter()
            .map(|(n, uid, _)| {
                assert_eq!(uid, format!("uid-{n}"));
                n
            })
            .collect();
        assert_eq!(names, ["old", "older"]);
    }

    #[test]
    fn the_restore_patch_replaces_data_whole_and_keeps_foreign_metadata() {
        let owner = OwnerReference {
            uid: "me".into(),
            controller: Some(true),
            ..Default::default()
        };
        let ours = desired(
            "ns",
            "creds",
            owner,
            BTreeMap::from([("config".to_owned(), "c".to_owned())]),
            BTreeMap::from([(labels::SPEC_HASH.to_owned(), "h2".to_owned())]),
        );
        let live_labels = BTreeMap::from([("team".to_owned(), "data".to_owned())]);
        let live_annotations = BTreeMap::from([
            (labels::SPEC_HASH.to_owned(), "h1".to_owned()),
            (labels::SUPERSEDED_BY.to_owned(), "other".to_owned()),
            ("note".to_owned(), "kept".to_owned()),
        ]);
        let patch = serde_json::to_value(restore_patch("u1", "42", &live_labels, &live_annotations, &ours)).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                { "op": "test", "path": "/metadata/uid", "value": "u1" },
                { "op": "replace", "path": "/metadata/resourceVersion", "value": "42" },
                { "op": "replace", "path": "/metadata/labels", "value": {
                    "team": "data", labels::MANAGED_BY: labels::MANAGED_BY_VALUE } },
                { "op": "replace", "path": "/metadata/annotations", "value": {
                    labels::SPEC_HASH: "h2", "note": "kept" } },
                { "op": "replace", "path": "/data", "value": { "config": "Yw==" } },
            ])
        );
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
        let p = revoke_patch("u", "NamespaceNotAllowed", &labels::data_keys(&BTreeMap::new()));
        assert_eq!(p["metadata"]["annotations"][labels::REVOKED], "NamespaceNotAllowed");
        assert!(
            p["data"]
                .get("credential_process.json")
                .is_some_and(serde_json::Value::is_null)
        );
    }

    #[test]
    fn the_newer_of_the_cache_and_our_own_write_decides() {
        let cached = meta("s", "me", &[(labels::ISSUED_AT, "2026-01-01T00:00:00Z")]);
        let ours = |uid: &str, at: &str| {
            (
                uid.to_owned(),
                BTreeMap::from([(labels::ISSUED_AT.to_owned(), at.to_owned())]),
            )
        };
        // Nothing written by this process: the cache says it.
        assert_eq!(newer_view(&cached, None), (false, None));
        // Our renewal is newer than the cache: decide from it (no second renewal).
        let newer = ours("uid-s", "2026-01-01T00:40:00.5Z");
        assert_eq!(newer_view(&cached, Some(&newer)), (false, Some(newer.1.clone())));
        // The cache has caught up (or gone past): forget the write.
        let same = ours("uid-s", "2026-01-01T00:00:00Z");
        assert_eq!(newer_view(&cached, Some(&same)), (true, None));
        // Another Secret stands at the name now: the cache says it, the write is forgotten.
        let other = ours("uid-old", "2026-01-01T00:40:00Z");
        assert_eq!(newer_view(&cached, Some(&other)), (true, None));
    }

    #[test]
    fn the_supersede_patch_empties_and_marks() {
        let keys = labels::data_keys(&BTreeMap::from([(
            labels::DATA_KEYS.to_owned(),
            "credential_process.a.1.json".to_owned(),
        )]));
        let p = supersede_patch("u1", "new-name", &keys);
        assert!(
            p["data"]
                .get("credential_process.a.1.json")
                .is_some_and(serde_json::Value::is_null)
        );
        assert_eq!(p["metadata"]["uid"], "u1");
        assert_eq!(p["metadata"]["annotations"][labels::SUPERSEDED_BY], "new-name");
        for k in labels::RENEWAL_ANNOTATIONS {
            assert!(p["metadata"]["annotations"][k].is_null() && p["metadata"]["annotations"].get(k).is_some());
        }
        for k in crate::render::ALL_KEYS {
            assert!(p["data"].get(k).is_some_and(serde_json::Value::is_null), "{k}");
        }
    }
}
