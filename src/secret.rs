//! Writing the Secret: a plain create the first time (a 409 means the name belongs to
//! someone else, whose Secret is never touched), server-side apply afterwards, and only
//! once the existing Secret's owner reference names this Identity's UID.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
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
/// `Update` entry that a later apply never removes).
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
        Existing::Owned { uid, .. } => {
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
            let stale: serde_json::Map<String, serde_json::Value> = crate::render::ALL_KEYS
                .iter()
                .filter(|k| !kept.is_some_and(|d| d.contains_key(**k)))
                .map(|k| ((*k).to_owned(), serde_json::Value::Null))
                .collect();
            if prune && !stale.is_empty() {
                // The UID is a precondition: never touch a Secret that replaced ours meanwhile.
                let patch = serde_json::json!({ "metadata": { "uid": uid }, "data": stale });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(err)?;
            }
            Ok(())
        }
    }
}
