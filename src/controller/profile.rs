//! The AuthProfile reconcile: validate the whole profile and report each identity.

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::conditions::{self, READY, status_warnings};
use super::{Context, Error};
use crate::api::{AuthProfile, AuthProfileStatus};
use crate::resolve::{summarize, validate_profile};
use crate::telemetry::ReconcileTimer;

/// Reconciles one AuthProfile.
pub async fn reconcile(obj: Arc<AuthProfile>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ReconcileTimer::start(&ctx.services.metrics, "authprofile");
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
        let api: Api<AuthProfile> = Api::namespaced(ctx.services.client.clone(), &obj.namespace().unwrap_or_default());
        api.patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&conditions::status_patch(&old, &status)),
        )
        .await?;
    }
    Ok(Action::await_change())
}

/// API failures: counted, retried soon.
pub fn error_policy(obj: Arc<AuthProfile>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.services.metrics.reconcile_failed("authprofile", err.reason());
    tracing::warn!(profile = %obj.name_any(), error = %crate::util::redact::redact(&err.to_string()), "profile reconcile failed");
    Action::requeue(crate::settings::ERROR_REQUEUE)
}
