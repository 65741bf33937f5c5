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
use crate::api::{
    AuthProfile, AuthProfileSpec, ClusterAuthProfile, Identity, IdentityStatus, IssuedIdentity, ProfileKind,
};
use crate::credentials::Credentials;
use crate::labels;
use crate::queue::Urgency;
use crate::queue::gate::Turn;
use crate::render::{Issued, extra_keys, process_key, render, render_set};
use crate::renewal::{self, RenewReason, Schedule, SecretState};
use crate::resolve::{Reason, Resolved, ResolvedSet, resolve_set, summarize};
use crate::secret::{self, Existing, SecretError};
use crate::sts::{Exchanger, Session};
use crate::tamper;
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
    /// Runs `resolved`'s chain; `token` asks Kubernetes for the ServiceAccount token;
    /// `keep_target` caches the target's session as a parent for later chains.
    fn refresh<'a>(
        &'a self,
        namespace: &'a str,
        resolved: &'a Resolved,
        now: Timestamp,
        keep_target: bool,
        token: BoxFuture<'a, Result<String, Error>>,
    ) -> BoxFuture<'a, Result<Session, Error>>;
}

impl Refresh for Exchanger {
    fn refresh<'a>(
        &'a self,
        namespace: &'a str,
        resolved: &'a Resolved,
        now: Timestamp,
        keep_target: bool,
        token: BoxFuture<'a, Result<String, Error>>,
    ) -> BoxFuture<'a, Result<Session, Error>> {
        Box::pin(self.run_chain::<Error, _, _>(namespace, resolved, now, keep_target, move || token))
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
    fn issued(&mut self, set: &ResolvedSet, expiration: Timestamp, renewal: Timestamp) {
        self.status.expiration = Some(rfc3339(expiration));
        self.status.renewal_time = Some(rfc3339(renewal));
        self.status.failed_attempts = None;
        self.status.last_failure_time = None;
        let message = decide::issued_message(set, expiration, renewal);
        self.set_ready(true, "CredentialsIssued", &message);
    }

    /// Input that only a change can fix: report it and wait for that change (or look again
    /// after `recheck`, when the fix is a change the controller does not watch).
    async fn not_ready(&mut self, reason: &str, message: &str, recheck: Option<Duration>) -> Result<Action, Error> {
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
    // Warnings describe the current spec's resolution: set again below once it resolves.
    status.warnings = Vec::new();
    let mut pass = Pass {
        obj,
        ctx,
        ns: ns.clone(),
        now,
        old,
        status,
    };

    // 1. Resolve.
    let profile = match profile_of(&mut pass, &uid).await? {
        Ok(p) => p,
        Err(action) => return Ok(action),
    };
    let set = match resolve_set(profile.spec(), &obj.spec, &name, &ctx.settings) {
        Ok(r) => r,
        Err(problems) => {
            let (reason, msg) = summarize(&problems).unwrap_or((Reason::InvalidIdentity, String::new()));
            return pass.not_ready(reason.as_str(), &msg, None).await;
        }
    };
    let resolved = set.first();
    pass.status.identity = Some(set.names());
    pass.status.chain = if set.multi { Vec::new() } else { resolved.chain.clone() };
    if !set.multi {
        pass.status.identities = Vec::new();
    }
    // Each identity's warnings, a line shared by several chains once.
    let mut seen = std::collections::BTreeSet::new();
    let warnings: Vec<_> = set
        .items
        .iter()
        .flat_map(|r| r.warnings.iter().cloned())
        .filter(|w| seen.insert(w.clone()))
        .collect();
    pass.status.warnings = super::profile::status_warnings(&warnings);
    pass.status.secret_name = Some(resolved.secret.name.clone());
    let hash = set.spec_hash();
    let metric_labels = IdentityLabels {
        namespace: ns.clone(),
        name: name.clone(),
        identity: set.names(),
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
            let message = decide::conflict_message(&pass.old, &resolved.secret.name, &err.to_string());
            // The foreign Secret is not watched (no label of ours): look again now and then.
            return pass
                .not_ready(err.reason(), &message, Some(Duration::from_secs(300)))
                .await;
        }
    };
    // Someone else changed the data: restore it (fresh credentials, their keys removed),
    // unless a restore was made a moment ago; then wait, so two writers cannot fight.
    let mut tampered_note = None;
    let trigger = match &existing {
        Existing::Owned {
            tampered_by,
            annotations,
            ..
        } if !tampered_by.is_empty() => {
            let writers = tampered_by.join(", ");
            if let Some(at) = tamper::Restores::from_annotations(annotations).next_allowed(now) {
                let message = decide::tampered_message(&ns, &resolved.secret.name, &writers, Some(at));
                return pass
                    .not_ready("SecretTampered", &message, Some(renewal::requeue_after(now, at)))
                    .await;
            }
            tampered_note = Some(decide::tampered_message(&ns, &resolved.secret.name, &writers, None));
            Some(RenewReason::Tampered)
        }
        _ => renewal::renewal_reason(now, state.as_ref(), &hash),
    };
    let Some(trigger) = trigger else {
        ctx.gate.leave(&key);
        // Fresh credentials for this spec (renewal_reason checked both times): the status may
        // need catching up after a restart; the next look is at renewal time.
        let state = state.unwrap_or_default();
        let (Some(exp), Some(renew)) = (state.expiration, state.renewal_time) else {
            return Ok(Action::requeue(Duration::from_secs(5)));
        };
        pass.issued(&set, exp, renew);
        pass.write_status().await?;
        ctx.metrics.schedule(&metric_labels, exp.as_second(), renew.as_second());
        return Ok(Action::requeue(renewal::requeue_after(now, renew)));
    };

    // 4. Wait for a turn at the STS budget (renewals first, earliest expiry first, namespaces
    // taking turns).
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
    if let Some(note) = tampered_note {
        publish(ctx, obj, EventType::Warning, "SecretTampered", note).await;
    }

    // 5. Refresh (each identity in turn: shared parents come from the cache), 6. write once.
    let result = match refresh_or_reuse(ctx, sts, (&ns, &name), (&set, &hash), now).await {
        Ok(sessions) => {
            let schedules: Vec<Schedule> = sessions
                .iter()
                .map(|s| {
                    renewal::schedule(
                        s.issued,
                        s.credentials.expiration,
                        resolved.refresh_before_seconds,
                        jitter,
                    )
                })
                .collect();
            let schedule = earliest(&schedules);
            // After a spec change the formats or identities may have changed: drop keys no
            // longer rendered.
            let prune = trigger == RenewReason::SpecChanged;
            let issued = (sessions.as_slice(), schedules.as_slice(), &schedule);
            match write_secret(obj, ctx, &set, &hash, (&existing, prune), issued).await {
                Ok(()) => Ok((schedule, sessions, schedules)),
                Err(e) => {
                    // The retry writes these rather than calling STS again.
                    ctx.unwritten.keep(key.clone(), &hash, sessions);
                    Err(e)
                }
            }
        }
        Err(e) => Err(e),
    };

    // 7. Schedule.
    match result {
        Ok((schedule, sessions, schedules)) => {
            pass.status.last_refresh_time = Some(rfc3339(now));
            if set.multi {
                pass.status.session_name = None;
                pass.status.role_arn = None;
                pass.status.identities = set
                    .items
                    .iter()
                    .zip(&schedules)
                    .map(|(r, s)| IssuedIdentity {
                        name: r.identity.clone(),
                        role_arn: r.links.last().map(|l| l.role_arn.clone()),
                        data_key: r
                            .secret
                            .formats
                            .contains(&crate::api::SecretFormat::Process)
                            .then(|| process_key(&r.identity)),
                        expiration: Some(rfc3339(s.expiration)),
                    })
                    .collect();
            } else {
                pass.status.session_name = sessions.first().map(|s| s.session_name.clone());
                pass.status.role_arn = resolved.links.last().map(|l| l.role_arn.clone());
            }
            pass.issued(&set, schedule.expiration, schedule.renewal);
            pass.write_status().await?;
            ctx.metrics.renewed(trigger.as_str());
            ctx.metrics.schedule(
                &metric_labels,
                schedule.expiration.as_second(),
                schedule.renewal.as_second(),
            );
            let roles = match sessions.as_slice() {
                [one] => one.assumed_role_arn.clone(),
                many => format!("{} identities ({})", many.len(), set.names()),
            };
            let note = decide::renewed_note(trigger.as_str(), &roles, &resolved.secret.name, &schedule);
            publish(ctx, obj, EventType::Normal, "Renewed", note).await;
            tracing::info!(namespace = %ns, identity = %name, %trigger, expiration = %rfc3339(schedule.expiration), renewal = %rfc3339(schedule.renewal), "credentials renewed");
            Ok(Action::requeue(renewal::requeue_after(now, schedule.renewal)))
        }
        Err(err) => failed(pass, resolved, state.and_then(|s| s.expiration), err).await,
    }
}

/// The profile an Identity names, or the action after reporting why it cannot be used.
enum Held {
    Namespaced(Arc<AuthProfile>),
    Cluster(Arc<ClusterAuthProfile>),
}

impl Held {
    fn spec(&self) -> &AuthProfileSpec {
        match self {
            Self::Namespaced(p) => &p.spec,
            Self::Cluster(p) => &p.spec.auth,
        }
    }
}

/// Finds the Identity's profile. A ClusterAuthProfile that does not select the Identity's
/// namespace gets `NamespaceNotAllowed`, no token, and the Identity's Secrets emptied.
async fn profile_of(pass: &mut Pass<'_>, uid: &str) -> Result<Result<Held, Action>, Error> {
    let (ctx, spec, ns) = (pass.ctx, &pass.obj.spec, pass.ns.clone());
    let name = pass.obj.name_any();
    if spec.profile_ref_kind() == ProfileKind::AuthProfile {
        ctx.usage.forget(&ns, &name);
        return Ok(match ctx.profiles.get(&ObjectRef::new(&spec.profile).within(&ns)) {
            Some(p) => Ok(Held::Namespaced(p)),
            None => {
                let msg = format!(
                    "AuthProfile {ns}/{} not found: apply it, or fix spec.profile",
                    spec.profile
                );
                Err(pass.not_ready("ProfileNotFound", &msg, None).await?)
            }
        });
    }
    let Some(profile) = ctx.cluster_profiles.get(&ObjectRef::new(&spec.profile)) else {
        ctx.usage.forget(&ns, &name);
        let msg = format!(
            "ClusterAuthProfile {} not found: apply it, or fix spec.profile (or spec.profileKind)",
            spec.profile
        );
        return Ok(Err(pass.not_ready("ProfileNotFound", &msg, None).await?));
    };
    let labels = ctx
        .namespaces
        .get(&ObjectRef::new(&ns))
        .map(|m| m.metadata.labels.clone().unwrap_or_default())
        .unwrap_or_default();
    if !profile.spec.selects(&ns, &labels) {
        ctx.usage.forget(&ns, &name);
        let msg = decide::not_allowed_message(&ns, &spec.profile);
        return Ok(Err(revoke(pass, uid, decide::NAMESPACE_NOT_ALLOWED, &msg).await?));
    }
    // A platform's chain is used as written: overrides only where the profile allows them.
    let allowed = profile.spec.allowed_overrides.as_deref().unwrap_or_default();
    let refused = crate::resolve::overrides::not_allowed(&spec.overrides, &spec.profile, allowed);
    if let Some((reason, msg)) = summarize(&refused) {
        ctx.usage.forget(&ns, &name);
        let msg = decide::override_refused_message(&msg);
        return Ok(Err(revoke(pass, uid, reason.as_str(), &msg).await?));
    }
    ctx.usage.record(&spec.profile, &ns, &name);
    Ok(Ok(Held::Cluster(profile)))
}

/// The Identity may not use its profile (`reason`, `msg`): no token, and the credentials go
/// from every Secret it wrote, as from a superseded Secret; the Secrets stay (owned, the
/// garbage collector removes them with the Identity). A relabelled namespace or an edited
/// profile or Identity reconciles it again.
async fn revoke(pass: &mut Pass<'_>, uid: &str, reason: &str, msg: &str) -> Result<Action, Error> {
    let (ctx, ns, name) = (pass.ctx, pass.ns.clone(), pass.obj.name_any());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let cached = ctx
        .secrets
        .state_filter(|m| m.metadata.namespace.as_deref() == Some(ns.as_str()));
    let emptied = secret::revoke(&secrets, &ns, uid, reason, &cached).await?;
    ctx.metrics.forget(&ns, &name);
    if !emptied.is_empty() {
        tracing::info!(namespace = %ns, identity = %name, secrets = ?emptied, profile = %pass.obj.spec.profile, %reason, "profile not usable: credentials removed");
        let note = format!("{msg} Emptied: {}.", emptied.join(", "));
        publish(ctx, pass.obj, EventType::Warning, reason, note).await;
    }
    pass.status.expiration = None;
    pass.status.renewal_time = None;
    pass.status.identities = Vec::new();
    pass.not_ready(reason, msg, None).await
}

/// The sessions a failed Secret write left for this spec while still usable (the
/// ServiceAccount tokens are requested all the same: the TokenRequest is Kubernetes'
/// permission check, and a revoked right must stop the retry too); else [`refresh_all`].
async fn refresh_or_reuse(
    ctx: &Context,
    sts: &impl Refresh,
    (ns, name): (&str, &str),
    (set, hash): (&ResolvedSet, &str),
    now: Timestamp,
) -> Result<Vec<Session>, Error> {
    let Some(sessions) = ctx.unwritten.take(&(ns.to_owned(), name.to_owned()), hash, now) else {
        return refresh_all(ctx, sts, ns, set, now).await;
    };
    for resolved in &set.items {
        request_token(&ctx.client, ns, &resolved.token).await?;
    }
    Ok(sessions)
}

/// Runs each identity's chain in turn, shortest chains first: a parent that is itself one
/// of the identities is then issued (and cached) before the chains that start with it, so
/// they reuse it; any parent shared by several identities is exchanged once. Stops at the
/// first failure. Returns the sessions in the order of `set.items`.
async fn refresh_all(
    ctx: &Context,
    sts: &impl Refresh,
    ns: &str,
    set: &ResolvedSet,
    now: Timestamp,
) -> Result<Vec<Session>, Error> {
    let mut sessions: Vec<Option<Session>> = vec![None; set.items.len()];
    for i in decide::refresh_order(&set.items) {
        let resolved = &set.items[i];
        let token = Box::pin(async {
            request_token(&ctx.client, ns, &resolved.token)
                .await
                .map_err(Error::from)
        });
        // A set's identities may chain from one another: keep their sessions as parents.
        sessions[i] = Some(sts.refresh(ns, resolved, now, set.multi, token).await?);
    }
    Ok(sessions.into_iter().flatten().collect())
}

/// The Secret's schedule: the earliest expiry and renewal of its identities (all are
/// renewed together when the first is due).
fn earliest(schedules: &[Schedule]) -> Schedule {
    let mut it = schedules.iter().copied();
    let first = it.next().unwrap_or(Schedule {
        expiration: Timestamp::UNIX_EPOCH,
        advertised: Timestamp::UNIX_EPOCH,
        renewal: Timestamp::UNIX_EPOCH,
    });
    it.fold(first, |a, b| Schedule {
        expiration: a.expiration.min(b.expiration),
        advertised: a.advertised.min(b.advertised),
        renewal: a.renewal.min(b.renewal),
    })
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

/// Renders and writes the Secret for `sessions` (one per identity of `set`), with the times
/// of their `schedules` (and `schedule`, the earliest).
async fn write_secret(
    obj: &Identity,
    ctx: &Context,
    set: &ResolvedSet,
    hash: &str,
    (existing, prune): (&Existing, bool),
    (sessions, schedules, schedule): (&[Session], &[Schedule], &Schedule),
) -> Result<(), Error> {
    let ns = obj.namespace().ok_or(Error::Metadata("namespace"))?;
    let resolved = set.first();
    // Consumers see a slightly early expiry; the annotations keep the real one.
    let advertised: Vec<Credentials> = sessions
        .iter()
        .zip(schedules)
        .map(|(s, sch)| Credentials {
            expiration: sch.advertised,
            ..s.credentials.clone()
        })
        .collect();
    let data = if set.multi {
        let items: Vec<Issued<'_>> = set
            .items
            .iter()
            .zip(&advertised)
            .map(|(r, creds)| Issued {
                identity: &r.identity,
                region: &r.region,
                creds,
            })
            .collect();
        render_set(&items, &resolved.secret.formats, &resolved.secret.mount_path)
    } else {
        let Some(creds) = advertised.first() else {
            return Ok(());
        };
        render(
            &resolved.identity,
            &resolved.region,
            &resolved.secret.formats,
            &resolved.secret.mount_path,
            creds,
        )
    };
    let issued_at = sessions.iter().map(|s| s.issued).min().unwrap_or(Timestamp::UNIX_EPOCH);
    let mut annotations = BTreeMap::from([
        (labels::SPEC_HASH.to_owned(), hash.to_owned()),
        (labels::EXPIRATION.to_owned(), rfc3339(schedule.expiration)),
        (labels::RENEWAL_TIME.to_owned(), rfc3339(schedule.renewal)),
        // Sub-second on purpose: it tells two issues apart, even within one second.
        (labels::ISSUED_AT.to_owned(), issued_at.to_string()),
        (labels::IDENTITY.to_owned(), set.names()),
    ]);
    let extra = extra_keys(&data);
    if !extra.is_empty() {
        annotations.insert(labels::DATA_KEYS.to_owned(), extra.join(","));
    }
    if let Existing::Owned {
        tampered_by,
        annotations: live,
        ..
    } = existing
        && !tampered_by.is_empty()
    {
        annotations.extend(tamper::Restores::from_annotations(live).annotations_after(issued_at));
    }
    let owner = obj.controller_owner_ref(&()).ok_or(Error::Metadata("name or uid"))?;
    let desired = secret::desired(&ns, &resolved.secret.name, owner, data, annotations);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let written_annotations = desired.metadata.annotations.clone().unwrap_or_default();
    let uid = secret::write(&api, existing, &desired, prune).await?;
    ctx.written.insert(
        crate::keyed::key(&ns, &resolved.secret.name),
        (uid, written_annotations),
    );
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
