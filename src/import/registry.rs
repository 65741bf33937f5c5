//! An Atmos profile's ECR integrations as the Identities' `spec.imagePullSecret`: each
//! Identity made for an identity gets the `aws/ecr` and `aws/ecr-public` integrations whose
//! `via.identity` is that identity and that Atmos provisions on login (`auto_provision` not
//! `false`), listed by name so the manifest says what it logs in to.

use super::Note;
use crate::api::{AuthProfileSpec, ImagePullSecretSpec};
use crate::resolve::names::atmos_name;
use crate::resolve::registry::{KIND_ECR, KIND_ECR_PUBLIC};

/// The image-pull Secret of the Identity `object_name` made for `identity`, if the profile
/// has ECR logins for it; what is left out goes to `notes`.
pub fn pull_secret(
    profile: &AuthProfileSpec,
    identity: &str,
    object_name: &str,
    notes: &mut Vec<Note>,
) -> Option<ImagePullSecretSpec> {
    let mut names = Vec::new();
    for (name, def) in profile.integrations.iter().flatten() {
        let ecr = matches!(def.kind.as_deref(), Some(KIND_ECR | KIND_ECR_PUBLIC));
        let via = def.via.as_ref().and_then(|v| v.identity.as_deref()).map(atmos_name);
        if !ecr || via.as_deref() != Some(atmos_name(identity).as_str()) {
            continue;
        }
        if def.spec.as_ref().and_then(|s| s.auto_provision) == Some(false) {
            notes.push(Note {
                path: format!("auth.integrations.{name}"),
                message: format!(
                    "auto_provision: false: not in Identity {object_name}'s spec.imagePullSecret; add it to integrations to log in"
                ),
            });
            continue;
        }
        names.push(name.clone());
    }
    if names.is_empty() {
        return None;
    }
    Some(ImagePullSecretSpec {
        name: format!("{object_name}-registry"),
        integrations: Some(names),
    })
}
