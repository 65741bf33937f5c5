//! One reconcile of an Identity: resolve, decide, refresh, write, schedule.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::conditions::{self, READY};
use super::{Context, Error};
use crate::api::{Identity, IdentityStatus};
use crate::labels;
use crate::render::render;
use crate::renewal::{self, RenewReason, SecretState};
use crate::resolve::{Resolved, resolve};
use crate::secret::{self, Existing};
use crate::telemetry::IdentityLabels;
use crate::token::request_token;

/// Reconciles one Identity.
pub async fn reconcile(obj: Arc<Identity>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let out = reconcile_inner(&obj, &ctx).await;
    ctx.metrics.reconciled("identity", started.elapsed());
    out
}

/// Unexpected failures (the API server itself): retry soon.
pub fn error_policy(obj: Arc<Identity>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(identity = %obj.name_any(), namespace = ?obj.namespace(), error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(15))
}

async fn reconcile_inner(obj: &Identity, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let ns = obj.namespace().ok_or(Error::Metadata("namespace"))?;
    let uid = obj.uid().ok_or(Error::Metadata("uid"))?;
    let generation = obj.metadata.generation;
    let old = obj.status.clone().unwrap_or_default();
    let mut status = old.clone();
    status.observed_generation = generation;

    // 1. Resolve.
    let profile_ref = ObjectRef::new(&obj.spec.profile).within(&ns);
    let Some(profile) = ctx.profiles.get(&profile_ref) else {
        let msg = format!(
            "AuthProfile {ns}/{} not found: apply it, or fix spec.profile",
            obj.spec.profile
        );
        conditions::set(
            &mut status.conditions,
            READY,
            false,
            "ProfileNotFound",
            &msg,
            generation,
            now,
        );
        write_status(obj, ctx, &old, &status).await?;
        return Ok(Action::await_change());
    };
    let resolved = match resolve(&profile.spec, &obj.spec, &obj.name_any(), &ctx.settings) {
        Ok(r) => r,
        Err(problems) => {
            let reason = problems
                .first()
                .map(|p| p.reason.to_string())
                .unwrap_or_else(|| "InvalidSpec".to_owned());
            let msg = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            conditions::set(&mut status.conditions, READY, false, &reason, &msg, generation, now);
            write_status(obj, ctx, &old, &status).await?;
            return Ok(Action::await_change());
        }
    };
    status.identity = Some(resolved.identity.clone());
    status.chain = resolved.chain.clone();
    status.secret_name = Some(resolved.secret.name.clone());
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
            let err = Error::Secret(secret::SecretError::Conflict {
                namespace: ns.clone(),
                name: resolved.secret.name.clone(),
            });
            conditions::set(
                &mut status.conditions,
                READY,
                false,
                &err.reason(),
                &err.to_string(),
                generation,
                now,
            );
            write_status(obj, ctx, &old, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let Some(trigger) = renewal::renewal_reason(now, state.as_ref(), &hash) else {
        // Fresh credentials for this spec: only the status may need catching up (after a
        // restart, or when a failure has cleared), and the next look is at renewal time.
        let state = state.unwrap_or_default();
        if let (Some(exp), Some(renew)) = (state.expiration, state.renewal_time) {
            status.expiration = Some(exp.to_string());
            status.renewal_time = Some(renew.to_string());
            ctx.metrics.schedule(&metric_labels, exp.as_second(), renew.as_second());
            if old.conditions.iter().all(|c| c.type_ != READY || c.status != "True") {
                status.failed_attempts = None;
                status.last_failure_time = None;
            }
            let msg = ready_message(&resolved, &exp.to_string(), &renew.to_string());
            conditions::set(
                &mut status.conditions,
                READY,
                true,
                "CredentialsIssued",
                &msg,
                generation,
                now,
            );
            write_status(obj, ctx, &old, &status).await?;
            return Ok(Action::requeue(renewal::requeue_after(now, renew)));
        }
        return Ok(Action::requeue(Duration::from_secs(5)));
    };

    // 3. Refresh.
    let token = || request_token(&ctx.client, &ns, &resolved.token);
    let outcome = ctx
        .exchanger
        .run_chain::<Error, _, _>(&ns, &resolved, now, || async { token().await.map_err(Error::from) })
        .await;
    let result = match outcome {
        Ok(session) => write_secret(obj, ctx, &ns, &resolved, &hash, &existing, trigger, &session).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((expiration, renew_at, session_name, assumed)) => {
            status.expiration = Some(expiration.to_string());
            status.renewal_time = Some(renew_at.to_string());
            status.last_refresh_time = Some(now.to_string());
            status.session_name = Some(session_name);
            status.role_arn = resolved.links.last().map(|l| l.role_arn.clone());
            status.failed_attempts = None;
            status.last_failure_time = None;
            let msg = ready_message(
                &resolved,
                &status.expiration.clone().unwrap_or_default(),
                &status.renewal_time.clone().unwrap_or_default(),
            );
            conditions::set(
                &mut status.conditions,
                READY,
                true,
                "CredentialsIssued",
                &msg,
                generation,
                now,
            );
            write_status(obj, ctx, &old, &status).await?;
            ctx.metrics.renewed(&trigger.to_string());
            ctx.metrics
                .schedule(&metric_labels, expiration.as_second(), renew_at.as_second());
            let note = format!(
                "{trigger}: credentials for {assumed} written to Secret {}, valid until {expiration}, renewal at {renew_at}",
                resolved.secret.name
            );
            publish(ctx, obj, EventType::Normal, "Renewed", "Refresh", note).await;
            tracing::info!(namespace = %ns, identity = %obj.name_any(), %trigger, %expiration, renewal = %renew_at, "credentials renewed");
            Ok(Action::requeue(renewal::requeue_after(now, renew_at)))
        }
        Err(err) => {
            let attempts = old.failed_attempts.unwrap_or(0).saturating_add(1);
            status.failed_attempts = Some(attempts);
            status.last_failure_time = Some(now.to_string());
            let expired = state.as_ref().and_then(|s| s.expiration).is_some_and(|e| e <= now);
            let reason = if expired { "Expired".to_owned() } else { err.reason() };
            let kept = match state.as_ref().and_then(|s| s.expiration) {
                Some(e) if e > now => format!(
                    " The previous credentials stay in Secret {} until {e}.",
                    resolved.secret.name
                ),
                Some(e) => format!(
                    " The credentials in Secret {} expired at {e}; they are kept, not deleted.",
                    resolved.secret.name
                ),
                None => String::new(),
            };
            let transient = err.is_transient();
            let next = if transient {
                let wait = renewal::backoff(attempts);
                format!(" Retrying in {}s.", wait.as_secs())
            } else {
                " Not retried until the Identity, its AuthProfile or its Secret changes (annotate the Identity to retry after fixing IAM).".to_owned()
            };
            let msg = format!("{err}.{kept}{next}");
            conditions::set(&mut status.conditions, READY, false, &reason, &msg, generation, now);
            write_status(obj, ctx, &old, &status).await?;
            ctx.metrics.failed(&err.reason());
            publish(
                ctx,
                obj,
                EventType::Warning,
                &err.reason(),
                "Refresh",
                crate::redact::redact(&msg),
            )
            .await;
            tracing::warn!(namespace = %ns, identity = %obj.name_any(), reason = %err.reason(), error = %crate::redact::redact(&err.to_string()), "refresh failed");
            if transient {
                Ok(Action::requeue(renewal::backoff(attempts)))
            } else {
                // Look again when the old credentials expire, to report it.
                match state.and_then(|s| s.expiration).filter(|e| *e > now) {
                    Some(e) => Ok(Action::requeue(renewal::requeue_after(now, e))),
                    None => Ok(Action::await_change()),
                }
            }
        }
    }
}

type Written = (Timestamp, Timestamp, String, String);

#[allow(clippy::too_many_arguments)]
async fn write_secret(
    obj: &Identity,
    ctx: &Context,
    ns: &str,
    resolved: &Resolved,
    hash: &str,
    existing: &Existing,
    trigger: RenewReason,
    session: &crate::sts::Session,
) -> Result<Written, Error> {
    let creds = &session.credentials;
    let issued = session.issued;
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
        creds,
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
    secret::write(&api, existing, &desired).await?;
    tracing::debug!(%trigger, secret = %resolved.secret.name, "secret written");
    Ok((
        creds.expiration,
        renew_at,
        session.session_name.clone(),
        session.assumed_role_arn.clone(),
    ))
}

fn ready_message(resolved: &Resolved, expiration: &str, renewal: &str) -> String {
    format!(
        "Secret {} holds credentials for {} ({}), valid until {expiration}; renewal at {renewal}",
        resolved.secret.name,
        resolved.identity,
        resolved.chain.join(" -> ")
    )
}

async fn write_status(obj: &Identity, ctx: &Context, old: &IdentityStatus, new: &IdentityStatus) -> Result<(), Error> {
    if old == new {
        return Ok(());
    }
    let api: Api<Identity> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    // A merge patch keeps fields it does not mention: clear the ones `new` dropped.
    let mut body = serde_json::to_value(new).unwrap_or_default();
    if let (Some(map), Ok(serde_json::Value::Object(before))) = (body.as_object_mut(), serde_json::to_value(old)) {
        for key in before.keys() {
            map.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    let patch = json!({ "status": body });
    api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn publish(ctx: &Context, obj: &Identity, type_: EventType, reason: &str, action: &str, note: String) {
    let ev = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::debug!(error = %e, "event not published");
    }
}
