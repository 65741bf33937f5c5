//! The AuthProfile reconcile: validate the whole profile and report each identity.

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::conditions::{self, READY};
use super::{Context, Error};
use crate::api::{AuthProfile, AuthProfileStatus};
use crate::resolve::{Warning, summarize, validate_profile};
use crate::telemetry::ReconcileTimer;

/// Reconciles one AuthProfile.
pub async fn reconcile(obj: Arc<AuthProfile>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ReconcileTimer::start(&ctx.metrics, "authprofile");
    let now = Timestamp::now();
    let generation = obj.metadata.generation;
    let old = obj.status.clone().unwrap_or_default();
    let report = validate_profile(&obj.spec, &ctx.settings);
    let mut status = AuthProfileStatus {
        conditions: old.conditions.clone(),
        observed_generation: generation,
        identity_count: obj.spec.identities.len() as i64,
        default_identity: report.default_identity.clone(),
        identities: report.identity_states(),
        warnings: status_warnings(&report.all_warnings()),
    };
    match summarize(&report.all_problems()) {
        None => conditions::set(
            &mut status.conditions,
            READY,
            true,
            "Valid",
            "every identity resolves and can run in a cluster",
            generation,
            now,
        ),
        Some((reason, msg)) => conditions::set(
            &mut status.conditions,
            READY,
            false,
            reason.as_str(),
            &msg,
            generation,
            now,
        ),
    }
    if status != old {
        let api: Api<AuthProfile> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        api.patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&conditions::status_patch(&old, &status)),
        )
        .await?;
    }
    Ok(Action::await_change())
}

/// Most warnings listed in the status; the rest are counted in one last line (`validate`
/// prints them all).
const MAX_STATUS_WARNINGS: usize = 50;

/// The status lines: `path: message`, at most [`MAX_STATUS_WARNINGS`] plus a count.
pub(super) fn status_warnings(warnings: &[Warning]) -> Vec<String> {
    let mut lines: Vec<String> = warnings
        .iter()
        .take(MAX_STATUS_WARNINGS)
        .map(ToString::to_string)
        .collect();
    if warnings.len() > MAX_STATUS_WARNINGS {
        lines.push(format!(
            "... and {} more: atmos-auth-controller validate prints them all",
            warnings.len() - MAX_STATUS_WARNINGS
        ));
    }
    lines
}

/// API failures: retry soon.
pub fn error_policy(obj: Arc<AuthProfile>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(profile = %obj.name_any(), error = %crate::redact::redact(&err.to_string()), "profile reconcile failed");
    Action::requeue(crate::settings::ERROR_REQUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_bounded() {
        let many: Vec<Warning> = (0..60)
            .map(|i| Warning::new(format!("auth.identities.i{i}.alias"), "kept, not used"))
            .collect();
        let lines = status_warnings(&many);
        assert_eq!(lines.len(), MAX_STATUS_WARNINGS + 1);
        assert_eq!(lines[0], "auth.identities.i0.alias: kept, not used");
        assert_eq!(
            lines[MAX_STATUS_WARNINGS],
            "... and 10 more: atmos-auth-controller validate prints them all"
        );
        assert_eq!(status_warnings(&many[..2]).len(), 2);
    }
}
