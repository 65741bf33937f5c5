//! Writing the Secret: a plain create the first time (a 409 means the name belongs to
//! someone else, whose Secret is never touched), server-side apply afterwards, and only
//! once the existing Secret's owner reference names this Identity's UID. And emptying the
//! Secrets an Identity wrote under a name it no longer uses (no `delete` right needed: the
//! garbage collector removes them with the Identity).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::{Api, ResourceExt};

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
    /// Listing the Secrets the controller manages failed.
    #[error("listing the controller's Secrets in namespace {namespace} failed: {source}")]
    List {
        /// Namespace.
        namespace: String,
        /// API error.
        #[source]
        source: kube::Error,
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
            Self::List { .. } => "SecretListFailed",
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
            }
            | Self::List {
                source: kube::Error::Api(s),
                ..
            } => s.code >= 500 || s.code == 429 || s.code == 409,
            Self::Api { .. } | Self::List { .. } => true,
        }
    }
}

/// Reads the Secret's metadata only (no credentials cross the wire) and says whose it is.
pub async fn existing(api: &Api<Secret>, name: &str, owner_uid: &str) -> Result<Existing, kube::Error> {
    Ok(match api.get_metadata_opt(name).await? {
        None => Existing::Missing,
        Some(meta) if owned_by(&meta, owner_uid) => Existing::Owned {
            uid: meta.uid().unwrap_or_default(),
            annotations: meta.annotations().clone(),
        },
        Some(_) => Existing::Foreign,
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

/// Writes `secret`: create when `existing` is `Missing`, apply when `Owned`; refuses
/// `Foreign`. With `prune`, data keys of [`crate::render::ALL_KEYS`] that `secret` no longer
/// holds are removed (a merge patch: keys written by the first create are owned by an
/// `Update` entry that a later apply never removes); the same patch drops a
/// [`labels::SUPERSEDED_BY`] mark from a Secret back in use.
pub async fn write(api: &Api<Secret>, existing: &Existing, secret: &Secret, prune: bool) -> Result<(), SecretError> {
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
            Ok(_) => Ok(()),
            // Someone created it since we looked: theirs, not ours.
            Err(kube::Error::Api(s)) if s.code == 409 => Err(SecretError::Conflict {
                namespace: namespace.clone(),
                name: name.clone(),
            }),
            Err(e) => Err(err(e)),
        },
        Existing::Owned { uid, annotations } => {
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
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(err)?;
            }
            Ok(())
        }
    }
}

/// A Secret to empty: its name, UID and the data keys it may hold.
pub type ToEmpty = (String, String, Vec<String>);

/// The Secrets among `secrets` that this Identity (`owner_uid`) wrote under a name other than
/// `current` and that still need emptying. One already marked superseded by `current`,
/// without renewal annotations, is done.
pub fn to_supersede(secrets: &[PartialObjectMeta<Secret>], owner_uid: &str, current: &str) -> Vec<ToEmpty> {
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
pub fn to_revoke(secrets: &[PartialObjectMeta<Secret>], owner_uid: &str, reason: &str) -> Vec<ToEmpty> {
    to_empty(secrets, owner_uid, |_| true, labels::REVOKED, reason)
}

fn to_empty(
    secrets: &[PartialObjectMeta<Secret>],
    owner_uid: &str,
    pick: impl Fn(&PartialObjectMeta<Secret>) -> bool,
    mark: &str,
    value: &str,
) -> Vec<ToEmpty> {
    secrets
        .iter()
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

/// Empties every Secret this Identity wrote under a name other than `current` (found by
/// the managed-by label and its owner reference); returns their names.
pub async fn supersede(
    api: &Api<Secret>,
    namespace: &str,
    owner_uid: &str,
    current: &str,
) -> Result<Vec<String>, SecretError> {
    let list = owned_list(api, namespace).await?;
    let todo = to_supersede(&list, owner_uid, current);
    empty_all(api, namespace, todo, |uid, keys| supersede_patch(uid, current, keys)).await
}

/// Empties every Secret this Identity wrote, marking it [`labels::REVOKED`] with `reason`
/// (its namespace may no longer use the profile); returns their names.
pub async fn revoke(
    api: &Api<Secret>,
    namespace: &str,
    owner_uid: &str,
    reason: &str,
) -> Result<Vec<String>, SecretError> {
    let list = owned_list(api, namespace).await?;
    let todo = to_revoke(&list, owner_uid, reason);
    empty_all(api, namespace, todo, |uid, keys| revoke_patch(uid, reason, keys)).await
}

async fn owned_list(api: &Api<Secret>, namespace: &str) -> Result<Vec<PartialObjectMeta<Secret>>, SecretError> {
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
    let list = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| SecretError::List {
            namespace: namespace.to_owned(),
            source,
        })?;
    Ok(list.items)
}

async fn empty_all(
    api: &Api<Secret>,
    namespace: &str,
    todo: Vec<ToEmpty>,
    patch: impl Fn(&str, &[String]) -> serde_json::Value,
) -> Result<Vec<String>, SecretError> {
    let mut done = Vec::new();
    for (name, uid, keys) in todo {
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch(&uid, &keys)))
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
