//! One reconcile of an Identity, read top to bottom: [`gather`] what it needs (the object,
//! its profile, the resolved set, the Secret as cached, what this process wrote, the clock),
//! [`plan`] what to do (a pure function), [`act`] on the plan. The messages and retry
//! arithmetic are plain functions in [`decide`]; one refresh's exchange and write is in
//! [`issue`].

mod act;
mod decide;
mod gather;
mod issue;
mod issue_federated;
#[cfg(test)]
mod mock_api;
mod plan;
mod registry;
mod secret_plan;
mod trigger;

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::{Context, Error};
use crate::api::Identity;
use crate::exchange::Exchange;
use crate::exchange::sts::Session;
use crate::resolve::Resolved;
use crate::telemetry::ReconcileTimer;

/// Reconciles one Identity.
pub async fn reconcile(obj: Arc<Identity>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ReconcileTimer::start(&ctx.services.metrics, "identity");
    reconcile_inner(
        &obj,
        &ctx,
        ctx.services.exchanger.as_ref(),
        Timestamp::now(),
        rand::random::<f64>(),
    )
    .await
}

/// Unexpected failures (the API server itself): counted, retried soon.
pub fn error_policy(obj: Arc<Identity>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.services.metrics.reconcile_failed("identity", err.reason());
    tracing::warn!(identity = %obj.name_any(), namespace = ?obj.namespace(), error = %crate::util::redact::redact(&err.to_string()), "reconcile failed");
    Action::requeue(crate::settings::ERROR_REQUEUE)
}

/// The reconcile with its clock (`now`), randomness (`jitter` in `[0, 1]`) and STS side
/// passed in: gather, plan, act.
async fn reconcile_inner(
    obj: &Identity,
    ctx: &Context,
    sts: &impl Refresh,
    now: Timestamp,
    jitter: f64,
) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::Metadata("namespace"))?;
    let observed = gather::gather(obj, &ns, ctx, now);
    let plan = plan::plan(&observed, &ns);
    let action = act::act(obj, ctx, &ns, (observed, plan), sts, jitter).await?;
    super::restarts::follow(ctx, obj, &ns, now).await;
    Ok(action)
}

/// The exchange as the Identity reconcile uses it: a resolved AWS chain in, the target's
/// session out, through the cloud-agnostic seam ([`crate::exchange::Exchange`]). The real
/// [`crate::exchange::sts::Exchanger`], or a stand-in in the mock-API tests.
pub(crate) trait Refresh: Exchange<Resolved, Grant = Session> {}

impl<T: Exchange<Resolved, Grant = Session>> Refresh for T {}

pub(super) async fn publish(
    ctx: &Context,
    obj: &Identity,
    type_: EventType,
    reason: &str,
    note: String,
) -> Option<String> {
    let ev = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Refresh".to_owned(),
        secondary: None,
    };
    match ctx.services.recorder.publish(&ev, &obj.object_ref(&())).await {
        Ok(name) => Some(name),
        Err(e) => {
            tracing::debug!(error = %e, "event not published");
            None
        }
    }
}

/// A failed refresh's (or restart's) Warning: the first of a run of failures with one reason is an Event;
/// each repeat counts in that Event's series instead of making a new one (a down endpoint's
/// probe fails every 2 s). A success or another reason starts a new run.
pub(crate) async fn warn_failed(
    ctx: &Context,
    obj: &Identity,
    key: &crate::util::keyed::Key,
    reason: &str,
    note: String,
) {
    let run = ctx.memory.failures.get(key).filter(|(r, _, _)| r == reason);
    if let Some((_, name, count)) = run {
        let count = count.saturating_add(1);
        match ctx.services.recorder.repeat(&obj.object_ref(&()), &name, count).await {
            Ok(()) => {
                ctx.memory
                    .failures
                    .insert(key.clone(), (reason.to_owned(), name, count));
                return;
            }
            // Gone (Events expire): a new one starts the run again.
            Err(e) => tracing::debug!(error = %e, "event series not counted"),
        }
    }
    match publish(ctx, obj, EventType::Warning, reason, note).await {
        Some(name) => ctx.memory.failures.insert(key.clone(), (reason.to_owned(), name, 1)),
        None => {
            ctx.memory.failures.remove(key);
        }
    }
}
