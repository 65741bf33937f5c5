//! The `Identity` resource's own fields, which the profile does not have:
//! `serviceAccountName`, `refreshBefore` and `secret`.

use std::collections::BTreeSet;

use super::model::SecretPlan;
use super::problem::{Problem, Reason};
use super::rules;
use crate::api::{DEFAULT_MOUNT_PATH, IdentitySpec, SecretFormat};

/// `spec.serviceAccountName`, when set: a DNS-1123 subdomain.
pub(super) fn check_service_account_name(identity: &IdentitySpec, problems: &mut Vec<Problem>) {
    if let Some(sa) = &identity.service_account_name
        && let Err(rule) = rules::check_dns1123_subdomain(sa)
    {
        problems.push(Problem::new(
            "spec.serviceAccountName",
            Reason::InvalidIdentity,
            format!("\"{sa}\" is not a valid ServiceAccount name: {rule}"),
        ));
    }
}

/// `spec.refreshBefore` in seconds, when set and valid.
pub(super) fn check_refresh_before(identity: &IdentitySpec, problems: &mut Vec<Problem>) -> Option<i64> {
    let text = identity.refresh_before.as_ref()?;
    match rules::parse_duration(text) {
        Err(detail) => {
            problems.push(Problem::new("spec.refreshBefore", Reason::InvalidIdentity, detail));
            None
        }
        Ok(0) => {
            problems.push(Problem::new(
                "spec.refreshBefore",
                Reason::InvalidIdentity,
                format!("{text} is not greater than 0; use a Go duration such as 20m, or leave it out to renew at two thirds of the session"),
            ));
            None
        }
        Ok(secs) => Some(secs),
    }
}

/// The Secret to write: `spec.secret.name` else the Identity's name; formats default
/// `[process]` (an empty list too), deduplicated in the fixed order process, files, env;
/// mount path default [`DEFAULT_MOUNT_PATH`], absolute, without a trailing `/`.
pub(super) fn check_secret(
    identity: &IdentitySpec,
    object_name: &str,
    problems: &mut Vec<Problem>,
) -> Option<SecretPlan> {
    let spec = identity.secret.clone().unwrap_or_default();
    let before = problems.len();
    let name = match spec.name {
        Some(name) => {
            if let Err(rule) = rules::check_dns1123_subdomain(&name) {
                problems.push(Problem::new(
                    "spec.secret.name",
                    Reason::InvalidIdentity,
                    format!("\"{name}\" is not a valid Secret name: {rule}"),
                ));
            }
            name
        }
        None => object_name.to_owned(),
    };
    let formats: Vec<SecretFormat> = match spec.formats {
        Some(formats) if !formats.is_empty() => formats.into_iter().collect::<BTreeSet<_>>().into_iter().collect(),
        _ => vec![SecretFormat::Process],
    };
    let mount_path = match rules::check_mount_path(spec.mount_path.as_deref().unwrap_or(DEFAULT_MOUNT_PATH)) {
        Ok(path) => path,
        Err(detail) => {
            problems.push(Problem::new("spec.secret.mountPath", Reason::InvalidIdentity, detail));
            String::new()
        }
    };
    (problems.len() == before).then_some(SecretPlan {
        name,
        formats,
        mount_path,
    })
}
