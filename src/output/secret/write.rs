//! The requests that write Secrets: create, apply (and its tidy-up), restore, and emptying
//! the Secrets an Identity no longer uses. What each sends is built in `bodies.rs`.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::{Api, ResourceExt};

use super::SecretError;
use super::bodies::{apply_body, restore_patch, revoke_patch, supersede_patch, tidy_patch};
use super::to_empty::{ToEmpty, to_revoke, to_supersede};
use super::view::Existing;
use crate::output::labels;

/// Writes `secret`: create when `existing` is `Missing`, apply when `Owned`, a restore
/// ([`restore_patch`]) when `Owned` and changed by someone else; refuses `Foreign`. With
/// `prune`, data keys of [`crate::output::render::ALL_KEYS`] that `secret` no longer holds are
/// removed after the apply ([`tidy_patch`]), which also drops a [`labels::SUPERSEDED_BY`]
/// mark from a Secret back in use.
/// Returns the written Secret's UID.
pub async fn write(
    api: &Api<Secret>,
    existing: &Existing,
    secret: &Secret,
    prune: bool,
) -> Result<String, SecretError> {
    let namespace = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let conflict = || SecretError::Conflict {
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let err = |source| SecretError::Api {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    };
    match existing {
        Existing::Foreign => Err(conflict()),
        Existing::Missing => {
            let params = PostParams {
                field_manager: Some(labels::FIELD_MANAGER.to_owned()),
                ..Default::default()
            };
            match api.create(&params, secret).await {
                Ok(created) => Ok(created.uid().unwrap_or_default()),
                // Someone created it since we looked: theirs, not ours.
                Err(kube::Error::Api(s)) if s.code == 409 => Err(conflict()),
                Err(e) => Err(err(e)),
            }
        }
        Existing::Owned {
            uid,
            annotations,
            labels: live_labels,
            resource_version,
            tampered_by,
        } if !tampered_by.is_empty() => {
            let patch = restore_patch(uid, resource_version, live_labels, annotations, secret);
            api.patch(&name, &manager(), &Patch::<()>::Json(patch))
                .await
                .map_err(err)?;
            Ok(uid.clone())
        }
        Existing::Owned { uid, annotations, .. } => {
            let apply = PatchParams::apply(labels::FIELD_MANAGER).force();
            api.patch(&name, &apply, &Patch::Apply(apply_body(secret, uid)))
                .await
                .map_err(err)?;
            if let Some(patch) = tidy_patch(uid, annotations, secret, prune) {
                api.patch(&name, &manager(), &Patch::Merge(&patch)).await.map_err(err)?;
            }
            Ok(uid.clone())
        }
    }
}

/// Patches made as the controller's field manager: managedFields then tell the controller's
/// writes from everyone else's ([`crate::output::tamper`]).
fn manager() -> PatchParams {
    PatchParams {
        field_manager: Some(labels::FIELD_MANAGER.to_owned()),
        ..Default::default()
    }
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
