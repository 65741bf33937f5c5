//! One reconcile of an Identity: resolve, decide, refresh, write, schedule. The decisions
//! are plain functions ([`decide`], [`crate::renewal`]); this file does the I/O they ask for.

mod decide;
#[cfg(test)]
mod mock_api;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::conditions::{self, READY};
use super::{Context, Error};
use crate::api::{Identity, IdentityStatus};
use crate::credentials::Credentials;
use crate::labels;
use crate::queue::Urgency;
use crate::queue::gate::Turn;
use crate::render::render;
use crate::renewal::{self, RenewReason, Schedule, SecretState};
use crate::resolve::{Reason, Resolved, resolve, summarize};
use crate::secret::{self, Existing, SecretError};
use crate::sts::{Exchanger, Session};
use crate::telemetry::{IdentityLabels, ReconcileTimer};
use crate::time::rfc3339;
use crate::token::request_token;

/// Reconciles one Identity.
pub async fn reconcile(obj: Arc<Identity>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ReconcileTimer::start(&ctx.metrics, "identity");
    reconcile_inner(
        &obj,
        &ctx,
        ctx.exchanger.as_ref(),
        Timestamp::now(),
        rand::random::<f64>(),
    )
    .await
}

/// Unexpected failures (the API server itself): retry soon.
pub fn error_policy(obj: Arc<Identity>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(identity = %obj.name_any(), namespace = ?obj.namespace(), error = %crate::redact::redact(&err.to_string()), "reconcile failed");
    Action::requeue(Duration::from_secs(15))
}

/// The STS side of a refresh as the reconcile sees it: the real [`Exchanger`], or a
/// stand-in in the reconcile's unit tests (the real exchange is proven end to end).
pub(crate) trait Refresh {
    /// Runs `resolved`'s chain; `token` asks Kubernetes for the ServiceAccount token.
    fn refresh<'a>(
        &'a self,
        namespace: &'a str,
        resolved: &'a Resolved,
        now: Timestamp,
        token: BoxFuture<'a, Result<String, Error>>,
    ) -> BoxFuture<'a, Result<Session, Error>>;
}

impl Refresh for Exchanger {
    fn refresh<'a>(
        &'a self,
        namespace: &'a str,
        resolved: &'a Resolved,
        now: Timestamp,
        token: BoxFuture<'a, Result<String, Error>>,
    ) -> BoxFuture<'a, Result<Session, Error>> {
        Box::pin(self.run_chain::<Error, _, _>(namespace, resolved, now, move || token))
    }
}

/// One reconcile's view: the object, the status it started with and the one it builds.
struct Pass<'a> {
    obj: &'a Identity,
    ctx: &'a Context,
    ns: String,
    now: Timestamp,
    old: IdentityStatus,
    status: IdentityStatus,
}

impl Pass<'_> {
    fn set_ready(&mut self, ok: bool, reason: &str, message: &str) {
        let generation = self.obj.metadata.generation;
        conditions::set(
            &mut self.status.conditions,
            READY,
            ok,
            reason,
            message,
            generation,
            self.now,
        );
    }

    /// Records valid credentials in the Secret for the current spec.
    fn issued(&mut self, resolved: &Resolved, expiration: Timestamp, renewal: Timestamp) {
        self.status.expiration = Some(rfc3339(expiration));
        self.status.renewal_time = Some(rfc3339(renewal));
        self.status.failed_attempts = None;
        self.status.last_failure_time = None;
        let message = decide::issued_message(resolved, expiration, renewal);
        self.set_ready(true, "CredentialsIssued", &message);
    }

    /// Input that only a change can fix: report it and wait for that change (or look again
    /// after `recheck`, when the fix is a change the controller does not watch).
    async fn not_ready(mut self, reason: &str, message: &str, recheck: Option<Duration>) -> Result<Action, Error> {
        self.ctx.gate.leave(&(self.ns.clone(), self.obj.name_any()));
        self.set_ready(false, reason, message);
        self.write_status().await?;
        Ok(recheck.map_or_else(Action::await_change, Action::requeue))
    }

    /// Writes the status if it changed (so a quiet reconcile writes nothing).
    async fn write_status(&self) -> Result<(), Error> {
        if self.old == self.status {
            return Ok(());
        }
        let api: Api<Identity> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let patch = conditions::status_patch(&self.old, &self.status);
        let written = api
            .patch_status(&self.obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.ctx.statuses.wrote(
            (self.ns.clone(), self.obj.name_any()),
            written.metadata.resource_version.as_deref(),
            self.status.clone(),
        );
        Ok(())
    }
}

/// The reconcile with its clock (`now`), randomness (`jitter` in `[0, 1]`) and STS side
/// passed in.
async fn reconcile_inner(
    obj: &Identity,
    ctx: &Context,
    sts: &impl Refresh,
    now: Timestamp,
    jitter: f64,
) -> Result<Action, Error> {
    // Before the profile cache has synced, "profile not found" would be a false alarm.
    if !ctx.profiles_synced() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = obj.namespace().ok_or(Error::Metadata("namespace"))?;
    // Being deleted: no token, no Secret (the garbage collector removes the one it has).
    if obj.metadata.deletion_timestamp.is_some() {
        ctx.gate.leave(&(ns, obj.name_any()));
        return Ok(Action::await_change());
    }
    let uid = obj.uid().ok_or(Error::Metadata("uid"))?;
    let name = obj.name_any();
    // The status this process wrote last, while the cache has not shown it yet.
    let old = ctx
        .statuses
        .newer_than(&(ns.clone(), name.clone()), obj.metadata.resource_version.as_deref())
        .or_else(|| obj.status.clone())
        .unwrap_or_default();
    let mut status = old.clone();
    status.observed_generation = obj.metadata.generation;
    let mut pass = Pass {
        obj,
        ctx,
        ns: ns.clone(),
        now,
        old,
        status,
    };

    // 1. Resolve.
    let Some(profile) = ctx.profiles.get(&ObjectRef::new(&obj.spec.profile).within(&ns)) else {
        let msg = format!(
            "AuthProfile {ns}/{} not found: apply it, or fix spec.profile",
            obj.spec.profile
        );
        return pass.not_ready("ProfileNotFound", &msg, None).await;
    };
    let resolved = match resolve(&profile.spec, &obj.spec, &name, &ctx.settings) {
        Ok(r) => r,
        Err(problems) => {
            let (reason, msg) = summarize(&problems).unwrap_or((Reason::InvalidIdentity, String::new()));
            return pass.not_ready(reason.as_str(), &msg, None).await;
        }
    };
    pass.status.identity = Some(resolved.identity.clone());
    pass.status.chain = resolved.chain.clone();
    pass.status.secret_name = Some(resolved.secret.name.clone());
    let hash = resolved.spec_hash();
    let metric_labels = IdentityLabels {
        namespace: ns.clone(),
        name: name.clone(),
        identity: resolved.identity.clone(),
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);

    // 2. Empty the Secrets this Identity wrote under earlier names (before the status moves
    // on to the new name, so a failure here is retried).
    if decide::may_have_superseded(pass.old.secret_name.as_deref(), &resolved.secret.name) {
        let cached = ctx
            .secrets
            .state_filter(|m| m.metadata.namespace.as_deref() == Some(ns.as_str()));
        let emptied = secret::supersede(&secrets, &ns, &uid, &resolved.secret.name, &cached).await?;
        for old in emptied {
            tracing::info!(namespace = %ns, identity = %name, secret = %old, current = %resolved.secret.name, "credentials removed from superseded Secret");
        }
    }

    // 3. Decide.
    let key = (ns.clone(), name.clone());
    let existing = secret::existing(
        &secrets,
        &ctx.secrets,
        &ctx.written,
        (&ns, &resolved.secret.name),
        &uid,
        !ctx.gate.knows(&key),
    )
    .await?;
    let state = match &existing {
        Existing::Missing => None,
        Existing::Owned { annotations, .. } => Some(SecretState::from_annotations(annotations)),
        Existing::Foreign => {
            let err = SecretError::Conflict {
                namespace: ns.clone(),
                name: resolved.secret.name.clone(),
            };
            // No Secret holds credentials for this Identity: no expiry series either.
            ctx.metrics.forget(&ns, &name);
            // The foreign Secret is not watched (no label of ours): look again now and then.
            return pass
                .not_ready(err.reason(), &err.to_string(), Some(Duration::from_secs(300)))
                .await;
        }
    };
    let Some(trigger) = renewal::renewal_reason(now, state.as_ref(), &hash) else {
        ctx.gate.leave(&key);
        // Fresh credentials for this spec (renewal_reason checked both times): the status may
        // need catching up after a restart; the next look is at renewal time.
        let state = state.unwrap_or_default();
        let (Some(exp), Some(renew)) = (state.expiration, state.renewal_time) else {
            return Ok(Action::requeue(Duration::from_secs(5)));
        };
        pass.issued(&resolved, exp, renew);
        pass.write_status().await?;
        ctx.metrics.schedule(&metric_labels, exp.as_second(), renew.as_second());
        return Ok(Action::requeue(renewal::requeue_after(now, renew)));
    };

    // 4. Wait for a turn at the STS budget (renewals first, namespaces taking turns).
    let old_expiry = state.as_ref().and_then(|s| s.expiration);
    // Credentials for this spec exist (expired ones first of all): a renewal; else an issue.
    let urgency = match (trigger, old_expiry) {
        (RenewReason::SpecChanged, _) | (_, None) => Urgency::Issue,
        (_, Some(e)) => Urgency::Renewal(e.as_second()),
    };
    let _turn = match ctx.gate.enter(&key, urgency) {
        Turn::Go(permit) => permit,
        Turn::Queued { waiting } => {
            if let Some((ok, msg)) = crate::queue::waiting_condition(now, old_expiry, waiting, ctx.exchanger.rate()) {
                pass.set_ready(ok, "WaitingForStsBudget", &msg);
                pass.write_status().await?;
            }
            // The gate triggers this reconcile when the turn comes; the requeue is a fallback.
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
    };

    // 5. Refresh, 6. write.
    let token = Box::pin(async {
        request_token(&ctx.client, &ns, &resolved.token)
            .await
            .map_err(Error::from)
    });
    let result = match sts.refresh(&ns, &resolved, now, token).await {
        Ok(session) => {
            let schedule = renewal::schedule(
                session.issued,
                session.credentials.expiration,
                resolved.refresh_before_seconds,
                jitter,
            );
            // After a spec change the formats may have changed: drop keys no longer rendered.
            let prune = trigger == RenewReason::SpecChanged;
            write_secret(obj, ctx, &resolved, &hash, (&existing, prune), &session, &schedule)
                .await
                .map(|()| (schedule, session))
        }
        Err(e) => Err(e),
    };

    // 7. Schedule.
    match result {
        Ok((schedule, session)) => {
            pass.status.last_refresh_time = Some(rfc3339(now));
            pass.status.session_name = Some(session.session_name.clone());
            pass.status.role_arn = resolved.links.last().map(|l| l.role_arn.clone());
            pass.issued(&resolved, schedule.expiration, schedule.renewal);
            pass.write_status().await?;
            ctx.metrics.renewed(trigger.as_str());
            ctx.metrics.schedule(
                &metric_labels,
                schedule.expiration.as_second(),
                schedule.renewal.as_second(),
            );
            let note = decide::renewed_note(
                trigger.as_str(),
                &session.assumed_role_arn,
                &resolved.secret.name,
                &schedule,
            );
            publish(ctx, obj, EventType::Normal, "Renewed", note).await;
            tracing::info!(namespace = %ns, identity = %name, %trigger, expiration = %rfc3339(schedule.expiration), renewal = %rfc3339(schedule.renewal), "credentials renewed");
            Ok(Action::requeue(renewal::requeue_after(now, schedule.renewal)))
        }
        Err(err) => failed(pass, &resolved, state.and_then(|s| s.expiration), err).await,
    }
}

/// A failed refresh: the old Secret stays as it is; [`decide::retry`] says what to report
/// and when to try again.
async fn failed(
    mut pass: Pass<'_>,
    resolved: &Resolved,
    old_expiry: Option<Timestamp>,
    err: Error,
) -> Result<Action, Error> {
    let attempts = pass.old.failed_attempts.unwrap_or(0).saturating_add(1);
    let retry = decide::retry(&err, attempts, old_expiry, &resolved.secret.name, pass.now);
    pass.status.failed_attempts = Some(retry.attempts);
    pass.status.last_failure_time = Some(rfc3339(pass.now));
    pass.set_ready(false, &retry.reason, &retry.message);
    pass.write_status().await?;
    let ctx = pass.ctx;
    ctx.metrics.failed(err.reason());
    if old_expiry.is_none() {
        // The Secret holds no credentials for this spec: no expiry series describes it.
        ctx.metrics.forget(&pass.ns, &pass.obj.name_any());
    }
    publish(ctx, pass.obj, EventType::Warning, err.reason(), retry.message.clone()).await;
    tracing::warn!(namespace = %pass.ns, identity = %pass.obj.name_any(), reason = %err.reason(), error = %retry.message, "refresh failed");
    Ok(Action::requeue(retry.wait))
}

/// Renders and writes the Secret for `session`, with the times of `schedule`.
async fn write_secret(
    obj: &Identity,
    ctx: &Context,
    resolved: &Resolved,
    hash: &str,
    (existing, prune): (&Existing, bool),
    session: &Session,
    schedule: &Schedule,
) -> Result<(), Error> {
    let ns = obj.namespace().ok_or(Error::Metadata("namespace"))?;
    // Consumers see a slightly early expiry; the annotations keep the real one.
    let advertised = Credentials {
        expiration: schedule.advertised,
        ..session.credentials.clone()
    };
    let data = render(
        &resolved.identity,
        &resolved.region,
        &resolved.secret.formats,
        &resolved.secret.mount_path,
        &advertised,
    );
    let annotations = BTreeMap::from([
        (labels::SPEC_HASH.to_owned(), hash.to_owned()),
        (labels::EXPIRATION.to_owned(), rfc3339(schedule.expiration)),
        (labels::RENEWAL_TIME.to_owned(), rfc3339(schedule.renewal)),
        // Sub-second on purpose: it tells two issues apart, even within one second.
        (labels::ISSUED_AT.to_owned(), session.issued.to_string()),
        (labels::IDENTITY.to_owned(), resolved.identity.clone()),
    ]);
    let owner = obj.controller_owner_ref(&()).ok_or(Error::Metadata("name or uid"))?;
    let desired = secret::desired(&ns, &resolved.secret.name, owner, data, annotations);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let written_annotations = desired.metadata.annotations.clone().unwrap_or_default();
    let uid = secret::write(&api, existing, &desired, prune).await?;
    ctx.written.record(&ns, &resolved.secret.name, uid, written_annotations);
    Ok(())
}

async fn publish(ctx: &Context, obj: &Identity, type_: EventType, reason: &str, note: String) {
    let ev = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Refresh".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::debug!(error = %e, "event not published");
    }
}
