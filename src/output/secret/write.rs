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

/// How an owned Secret is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Server-side apply: the Secret holds what the controller wrote (by its record). With
    /// `prune`, data keys of [`crate::output::render::ALL_KEYS`] that the new Secret no
    /// longer holds are removed after the apply ([`tidy_patch`]).
    Apply { prune: bool },
    /// [`restore_patch`]: the Secret holds data the controller did not write (or cannot
    /// vouch for): `data` replaced whole, conditional on the version read.
    Restore,
}

/// What a write left: the Secret's UID and the version the API server gave the last request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The Secret's UID.
    pub uid: String,
    /// Its `resourceVersion` after the write.
    pub resource_version: String,
}

/// Writes `secret`: create when `existing` is `Missing`, else as `mode` says when `Owned`;
/// refuses `Foreign`. An apply is followed by [`tidy_patch`] when there is something to
/// remove (pruned keys, a [`labels::SUPERSEDED_BY`] mark on a Secret back in use).
pub async fn write(
    api: &Api<Secret>,
    existing: &Existing,
    secret: &Secret,
    mode: WriteMode,
) -> Result<Outcome, SecretError> {
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
    let outcome = |s: &Secret, uid: &str| Outcome {
        uid: s.uid().unwrap_or_else(|| uid.to_owned()),
        resource_version: s.resource_version().unwrap_or_default(),
    };
    match (existing, mode) {
        (Existing::Foreign, _) => Err(conflict()),
        (Existing::Missing, _) => {
            let params = PostParams {
                field_manager: Some(labels::FIELD_MANAGER.to_owned()),
                ..Default::default()
            };
            match api.create(&params, secret).await {
                Ok(created) => Ok(outcome(&created, "")),
                // Someone created it since we looked: theirs, not ours.
                Err(kube::Error::Api(s)) if s.code == 409 => Err(conflict()),
                Err(e) => Err(err(e)),
            }
        }
        (
            Existing::Owned {
                uid,
                annotations,
                labels: live_labels,
                resource_version,
                ..
            },
            WriteMode::Restore,
        ) => {
            let patch = restore_patch(uid, resource_version, live_labels, annotations, secret);
            let written = api
                .patch(&name, &manager(), &Patch::<()>::Json(patch))
                .await
                .map_err(err)?;
            Ok(outcome(&written, uid))
        }
        (Existing::Owned { uid, annotations, .. }, WriteMode::Apply { prune }) => {
            let apply = PatchParams::apply(labels::FIELD_MANAGER).force();
            let mut written = api
                .patch(&name, &apply, &Patch::Apply(apply_body(secret, uid)))
                .await
                .map_err(err)?;
            if let Some(patch) = tidy_patch(uid, annotations, secret, prune) {
                written = api.patch(&name, &manager(), &Patch::Merge(&patch)).await.map_err(err)?;
            }
            Ok(outcome(&written, uid))
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

/// Empties every Secret this Identity wrote under a name other than `current` (or `also`, its
/// image-pull Secret), found in the metadata cache (`cached`: the controller's Secrets, by the
/// managed-by label) by their owner reference; returns their names.
pub async fn supersede(
    api: &Api<Secret>,
    namespace: &str,
    owner_uid: &str,
    (current, also): (&str, Option<&str>),
    cached: &[Arc<PartialObjectMeta<Secret>>],
) -> Result<Vec<String>, SecretError> {
    let todo = to_supersede(cached.iter().map(AsRef::as_ref), owner_uid, (current, also));
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
