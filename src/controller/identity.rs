//! One reconcile of an Identity: resolve, decide, refresh, write, schedule.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
use crate::redact::redact;
use crate::render::{render, rfc3339};
use crate::renewal::{self, RenewReason, SecretState};
use crate::resolve::{Reason, Resolved, resolve, summarize};
use crate::secret::{self, Existing, SecretError};
use crate::sts::Session;
use crate::telemetry::{IdentityLabels, ReconcileTimer};
use crate::token::request_token;

/// Reconciles one Identity.
pub async fn reconcile(obj: Arc<Identity>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ReconcileTimer::start(&ctx.metrics, "identity");
    reconcile_inner(&obj, &ctx).await
}

/// Unexpected failures (the API server itself): retry soon.
pub fn error_policy(obj: Arc<Identity>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(identity = %obj.name_any(), namespace = ?obj.namespace(), error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(15))
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
        let message = format!(
            "Secret {} holds credentials for {} ({}), valid until {}; renewal at {}",
            resolved.secret.name,
            resolved.identity,
            resolved.chain.join(" -> "),
            rfc3339(expiration),
            rfc3339(renewal)
        );
        self.set_ready(true, "CredentialsIssued", &message);
    }

    /// Input that only a change can fix: report it and wait for that change (or look again
    /// after `recheck`, when the fix is a change the controller does not watch).
    async fn not_ready(mut self, reason: &str, message: &str, recheck: Option<Duration>) -> Result<Action, Error> {
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
        api.patch_status(&self.obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

async fn reconcile_inner(obj: &Identity, ctx: &Context) -> Result<Action, Error> {
    // Before the profile cache has synced, "profile not found" would be a false alarm.
    if !ctx.profiles_synced() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = obj.namespace().ok_or(Error::Metadata("namespace"))?;
    let uid = obj.uid().ok_or(Error::Metadata("uid"))?;
    let old = obj.status.clone().unwrap_or_default();
    let mut status = old.clone();
    status.observed_generation = obj.metadata.generation;
    let mut pass = Pass {
        obj,
        ctx,
        ns: ns.clone(),
        now: Timestamp::now(),
        old,
        status,
    };
    let now = pass.now;

    // 1. Resolve.
    let Some(profile) = ctx.profiles.get(&ObjectRef::new(&obj.spec.profile).within(&ns)) else {
        let msg = format!(
            "AuthProfile {ns}/{} not found: apply it, or fix spec.profile",
            obj.spec.profile
        );
        return pass.not_ready("ProfileNotFound", &msg, None).await;
    };
    let resolved = match resolve(&profile.spec, &obj.spec, &obj.name_any(), &ctx.settings) {
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
        name: obj.name_any(),
        identity: resolved.identity.clone(),
    };

    // 2. Decide.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = secret::existing(&secrets, &resolved.secret.name, &uid).await?;
    let state = match &existing {
        Existing::Missing => None,
        Existing::Owned { annotations, .. } => Some(SecretState::from_annotations(annotations)),
        Existing::Foreign => {
            let err = Error::Secret(SecretError::Conflict {
                namespace: ns.clone(),
                name: resolved.secret.name.clone(),
            });
            // The foreign Secret is not watched (no label of ours): look again now and then.
            return pass
                .not_ready(&err.reason(), &err.to_string(), Some(Duration::from_secs(300)))
                .await;
        }
    };
    let Some(trigger) = renewal::renewal_reason(now, state.as_ref(), &hash) else {
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

    // 3. Refresh, 4. write.
    let token = || async {
        request_token(&ctx.client, &ns, &resolved.token)
            .await
            .map_err(Error::from)
    };
    let result = match ctx.exchanger.run_chain::<Error, _, _>(&ns, &resolved, now, token).await {
        Ok(session) => {
            // After a spec change the formats may have changed: drop keys no longer rendered.
            let prune = trigger == RenewReason::SpecChanged;
            write_secret(obj, ctx, &ns, &resolved, &hash, (&existing, prune), &session)
                .await
                .map(|w| (w, session))
        }
        Err(e) => Err(e),
    };

    // 5. Schedule.
    match result {
        Ok(((expiration, renew_at), session)) => {
            pass.status.last_refresh_time = Some(rfc3339(now));
            pass.status.session_name = Some(session.session_name.clone());
            pass.status.role_arn = resolved.links.last().map(|l| l.role_arn.clone());
            pass.issued(&resolved, expiration, renew_at);
            pass.write_status().await?;
            ctx.metrics.renewed(&trigger.to_string());
            ctx.metrics
                .schedule(&metric_labels, expiration.as_second(), renew_at.as_second());
            let note = format!(
                "{trigger}: credentials for {} written to Secret {}, valid until {expiration}, renewal at {renew_at}",
                session.assumed_role_arn, resolved.secret.name
            );
            publish(ctx, obj, EventType::Normal, "Renewed", note).await;
            tracing::info!(namespace = %ns, identity = %obj.name_any(), %trigger, %expiration, renewal = %renew_at, "credentials renewed");
            Ok(Action::requeue(renewal::requeue_after(now, renew_at)))
        }
        Err(err) => failed(pass, &resolved, state.and_then(|s| s.expiration), err).await,
    }
}

/// A failed refresh: the old Secret stays as it is; transient failures back off, the others
/// wait for a change (and for the old credentials' expiry, to report it).
async fn failed(
    mut pass: Pass<'_>,
    resolved: &Resolved,
    old_expiry: Option<Timestamp>,
    err: Error,
) -> Result<Action, Error> {
    let now = pass.now;
    let attempts = pass.old.failed_attempts.unwrap_or(0).saturating_add(1);
    pass.status.failed_attempts = Some(attempts);
    pass.status.last_failure_time = Some(rfc3339(now));
    let secret = &resolved.secret.name;
    let (reason, kept) = match old_expiry {
        Some(e) if e > now => (
            err.reason(),
            format!(" The previous credentials stay in Secret {secret} until {e}."),
        ),
        Some(e) => (
            "Expired".to_owned(),
            format!(" The credentials in Secret {secret} expired at {e}; they are kept, not deleted."),
        ),
        None => (err.reason(), String::new()),
    };
    let transient = err.is_transient();
    // Fix-the-spec failures are retried too, slowly: what fixes them (a trust policy, a
    // RoleBinding, a ServiceAccount) is often outside anything the controller watches.
    let wait = if transient {
        renewal::backoff(attempts)
    } else {
        renewal::slow_retry(attempts)
    };
    let wait = match old_expiry.filter(|e| *e > now) {
        // Look again at expiry at the latest, to report it.
        Some(e) => wait.min(renewal::requeue_after(now, e)),
        None => wait,
    };
    let next = if transient {
        format!(" Retrying in {}s.", wait.as_secs())
    } else {
        format!(
            " Retried slowly (next in {}s): fix the spec, the role's trust policy or the controller's RBAC, then annotate the Identity to retry at once.",
            wait.as_secs()
        )
    };
    let msg = redact(&format!("{err}.{kept}{next}"));
    pass.set_ready(false, &reason, &msg);
    pass.write_status().await?;
    pass.ctx.metrics.failed(&err.reason());
    publish(pass.ctx, pass.obj, EventType::Warning, &err.reason(), msg.clone()).await;
    tracing::warn!(namespace = %pass.ns, identity = %pass.obj.name_any(), reason = %err.reason(), error = %msg, "refresh failed");
    Ok(Action::requeue(wait))
}

/// Renders and writes the Secret; returns (expiration, renewal time).
async fn write_secret(
    obj: &Identity,
    ctx: &Context,
    ns: &str,
    resolved: &Resolved,
    hash: &str,
    (existing, prune): (&Existing, bool),
    session: &Session,
) -> Result<(Timestamp, Timestamp), Error> {
    let creds = &session.credentials;
    let issued = session.issued;
    // Consumers see a slightly early expiry; the annotations keep the real one.
    let advertised = Credentials {
        expiration: renewal::advertised_expiration(issued, creds.expiration),
        ..creds.clone()
    };
    let renew_at = renewal::renewal_time(
        issued,
        creds.expiration,
        resolved.refresh_before_seconds,
        rand::random::<f64>(),
    );
    let data = render(
        &resolved.identity,
        &resolved.region,
        &resolved.secret.formats,
        &resolved.secret.mount_path,
        &advertised,
    );
    let annotations = BTreeMap::from([
        (labels::SPEC_HASH.to_owned(), hash.to_owned()),
        (labels::EXPIRATION.to_owned(), creds.expiration.to_string()),
        (labels::RENEWAL_TIME.to_owned(), renew_at.to_string()),
        (labels::ISSUED_AT.to_owned(), issued.to_string()),
        (labels::IDENTITY.to_owned(), resolved.identity.clone()),
    ]);
    let owner = obj.controller_owner_ref(&()).ok_or(Error::Metadata("name or uid"))?;
    let desired = secret::desired(ns, &resolved.secret.name, owner, data, annotations);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    secret::write(&api, existing, &desired, prune).await?;
    Ok((creds.expiration, renew_at))
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
