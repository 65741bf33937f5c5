//! Carrying out a [`Plan`]: the status it reports, the Secrets it empties, the STS turn it
//! waits for, the refresh and the Secret write.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::gather::{Held, read_live};
use super::issue::{Issued, exchange_and_write};
use super::plan::{Observed, Plan, SecretPlan, SecretView, plan_existing};
use super::trigger::{self, RenewReason};
use super::{Refresh, decide, publish};
use crate::api::{Identity, IdentityStatus, IssuedIdentity, SecretFormat};
use crate::controller::admission::{NOT_ENFORCED, Refusal};
use crate::controller::conditions::{self, READY};
use crate::controller::{Context, Error};
use crate::exchange::budget::gate::Turn;
use crate::exchange::budget::{Admit, Demand, Quota, Urgency};
use crate::exchange::renewal;
use crate::output::labels;
use crate::output::render::process_key;
use crate::output::secret::{self, Existing, Record, SecretError};
use crate::output::tamper::Restores;
use crate::resolve::{Resolved, ResolvedSet};
use crate::telemetry::IdentityLabels;
use crate::util::keyed::{Key, key};
use crate::util::time::rfc3339;

/// One reconcile's view: the object, the status it started with and the one it builds.
pub(super) struct Pass<'a> {
    pub obj: &'a Identity,
    pub ctx: &'a Context,
    pub ns: String,
    pub uid: String,
    pub now: Timestamp,
    pub old: IdentityStatus,
    pub status: IdentityStatus,
}

impl Pass<'_> {
    fn key(&self) -> Key {
        key(&self.ns, &self.obj.name_any())
    }

    fn set_ready(&mut self, ok: bool, reason: &str, message: &str) {
        let generation = self.obj.metadata.generation;
        self.ctx
            .services
            .metrics
            .ready(&self.ns, &self.obj.name_any(), ok, reason);
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
        self.ctx.services.budget.leave(&self.key());
        self.set_ready(false, reason, message);
        self.write_status().await?;
        Ok(recheck.map_or_else(Action::await_change, Action::requeue))
    }

    /// Writes the status if it changed (so a quiet reconcile writes nothing).
    async fn write_status(&self) -> Result<(), Error> {
        if self.old == self.status {
            return Ok(());
        }
        let api: Api<Identity> = Api::namespaced(self.ctx.services.client.clone(), &self.ns);
        let patch = conditions::status_patch(&self.old, &self.status);
        let written = api
            .patch_status(&self.obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.ctx.memory.statuses.wrote(
            self.key(),
            written.metadata.resource_version.as_deref(),
            self.status.clone(),
        );
        // The status now records this process's last Secret write: memory need not.
        let (key, recorded) = (self.key(), self.status.written.as_ref());
        self.ctx.memory.written.with(|m| {
            if m.get(&key).is_some_and(|mine| Some(&mine.written) == recorded) {
                m.remove(&key);
            }
        });
        Ok(())
    }

    /// Records `record` (the Secret's version, data hash, spec hash and times) in the status.
    fn record(&mut self, record: &Record) {
        self.status.written = Some(record.written.clone());
    }

    /// Answers a pending renewal request (`renew`) with the credentials written at `served`.
    fn answer_request(&mut self, served: Timestamp) {
        let asked = self
            .obj
            .annotations()
            .get(labels::RENEW_REQUESTED_AT)
            .map(String::as_str);
        if let Some(request) = trigger::pending_request(asked, self.old.renew_requested_at.as_deref()) {
            self.status.renew_requested_at = Some(request);
            self.status.renew_served_at = Some(rfc3339(served));
        }
    }

    /// What the status says of the resolved set, whatever happens next.
    fn describe(&mut self, set: &ResolvedSet) {
        let resolved = set.first();
        self.status.identity = Some(set.names());
        self.status.chain = if set.multi { Vec::new() } else { resolved.chain.clone() };
        if !set.multi {
            self.status.identities = Vec::new();
        }
        // Each identity's warnings, a line shared by several chains once.
        let mut seen = std::collections::BTreeSet::new();
        let warnings: Vec<_> = set
            .items
            .iter()
            .flat_map(|r| r.warnings.iter().cloned())
            .filter(|w| seen.insert(w.clone()))
            .collect();
        self.status.warnings = crate::controller::conditions::status_warnings(&warnings);
        self.status.secret_name = Some(resolved.secret.name.clone());
        self.status.consumer = resolved.consumer_requirement().map(|c| crate::api::ConsumerStatus {
            service_account_name: c.service_account_name,
            audience: c.audience,
            mount_path: c.mount_path,
            token_path: c.token_path,
        });
        // A record of another Secret says nothing of this one.
        if self
            .status
            .written
            .as_ref()
            .is_some_and(|w| w.name != resolved.secret.name)
        {
            self.status.written = None;
        }
        let pull = set.registry.as_ref().map(|r| r.secret_name.as_str());
        if self.status.image_pull_secret.as_ref().map(|w| w.name.as_str()) != pull {
            self.status.image_pull_secret = None;
        }
    }

    fn metric_labels(&self, set: &ResolvedSet) -> IdentityLabels {
        IdentityLabels {
            namespace: self.ns.clone(),
            name: self.obj.name_any(),
            identity: set.names(),
        }
    }
}

/// Carries out `plan`, made from `o`, for `obj` in `ns`.
pub(super) async fn act(
    obj: &Identity,
    ctx: &Context,
    ns: &str,
    (o, plan): (Observed<Held>, Plan),
    sts: &impl Refresh,
    jitter: f64,
) -> Result<Action, Error> {
    match plan {
        Plan::WaitForCaches => return Ok(Action::requeue(Duration::from_secs(1))),
        Plan::Nothing => {
            ctx.services.budget.leave(&key(ns, &obj.name_any()));
            return Ok(Action::await_change());
        }
        _ => {}
    }
    let uid = obj.uid().ok_or(Error::Metadata("uid"))?;
    let mut status = o.old.clone();
    status.observed_generation = obj.metadata.generation;
    // Warnings describe the current spec's resolution: set again once it resolves.
    status.warnings = Vec::new();
    let mut pass = Pass {
        obj,
        ctx,
        ns: ns.to_owned(),
        uid,
        now: o.now,
        old: o.old.clone(),
        status,
    };
    match plan {
        Plan::Refuse { reason, message } => pass.not_ready(&reason, &message, None).await,
        Plan::RevokeLater { reason, message, at } => {
            let recheck = renewal::requeue_after(pass.now, at);
            pass.not_ready(&reason, &message, Some(recheck)).await
        }
        Plan::Revoke { reason, message } => revoke(&mut pass, &reason, &message).await,
        Plan::Serve {
            supersede,
            secret,
            hash,
        } => {
            let (Some(Ok(set)), Some(view)) = (&o.resolved, &o.secret) else {
                return Ok(Action::requeue(Duration::from_secs(5)));
            };
            serve(&mut pass, &o, (set, &hash), (supersede, secret, view), sts, jitter).await
        }
        Plan::WaitForCaches | Plan::Nothing => Ok(Action::await_change()),
    }
}

/// The Secrets API of namespace `ns`, and the controller's Secrets there as the metadata
/// cache has them, with those this process wrote that the cache does not show yet (which of
/// them an Identity wrote, their owner references say).
fn secrets_of(ctx: &Context, ns: &str) -> (Api<Secret>, Vec<Arc<PartialObjectMeta<Secret>>>) {
    let api = Api::namespaced(ctx.services.client.clone(), ns);
    let cached = ctx
        .stores
        .secrets
        .state_filter(|m| m.metadata.namespace.as_deref() == Some(ns));
    // What the cache shows needs no entry of ours any more.
    let written = ctx.memory.secret_writes.with(|m| {
        m.retain(|(n, name), _| n != ns || !cached.iter().any(|c| c.name_any() == *name));
        m.iter()
            .filter(|((n, _), _)| n == ns)
            .map(|((_, name), w)| (name.clone(), w.clone()))
            .collect()
    });
    (api, secret::with_written(ns, cached, written))
}

/// `emptied` (in `ns`) hold no credentials now: what this process remembers writing to them
/// no longer describes them.
fn forget_written(ctx: &Context, ns: &str, emptied: &[String]) {
    for name in emptied {
        ctx.memory.secret_writes.remove(&key(ns, name));
    }
}

/// The Identity may not use its profile (`reason`, `msg`): no token, and the credentials go
/// from every Secret it wrote, as from a superseded Secret; the Secrets stay (owned, the
/// garbage collector removes them with the Identity). A relabelled namespace or an edited
/// profile or Identity reconciles it again.
async fn revoke(pass: &mut Pass<'_>, reason: &str, msg: &str) -> Result<Action, Error> {
    let (ctx, ns, name) = (pass.ctx, pass.ns.clone(), pass.obj.name_any());
    let (secrets, cached) = secrets_of(ctx, &ns);
    let emptied = secret::revoke(&secrets, &ns, &pass.uid, reason, &cached).await?;
    forget_written(ctx, &ns, &emptied);
    ctx.services.metrics.forget(&ns, &name);
    if !emptied.is_empty() {
        tracing::info!(namespace = %ns, identity = %name, secrets = ?emptied, profile = %pass.obj.spec.profile, %reason, "profile not usable: credentials removed");
        let note = format!("{msg} Emptied: {}.", emptied.join(", "));
        publish(ctx, pass.obj, EventType::Warning, reason, note).await;
    }
    pass.status.expiration = None;
    pass.status.renewal_time = None;
    pass.status.identities = Vec::new();
    // The Secrets no longer hold what was written.
    pass.status.written = None;
    pass.status.image_pull_secret = None;
    pass.not_ready(reason, msg, None).await
}

/// Serves a resolved set: empties the Secrets of earlier names (before the status moves on
/// to the new name, so a failure here is retried), reads the Secret live if the plan asks,
/// then does what the Secret's plan says.
async fn serve(
    pass: &mut Pass<'_>,
    o: &Observed<Held>,
    (set, hash): (&ResolvedSet, &str),
    (supersede, plan, view): (bool, SecretPlan, &SecretView),
    sts: &impl Refresh,
    jitter: f64,
) -> Result<Action, Error> {
    let ctx = pass.ctx;
    let (ns, name) = (pass.ns.clone(), pass.obj.name_any());
    let secret_name = set.first().secret.name.clone();
    pass.describe(set);
    if supersede {
        empty_superseded(pass, set).await?;
    }
    let Some((plan, existing)) = with_live(pass, o, (set, hash), plan, view).await? else {
        // A plan other than a read for a view that needs one: not made by `plan`.
        return Ok(Action::requeue(Duration::from_secs(5)));
    };
    match plan {
        SecretPlan::Conflict { message } => {
            // No Secret holds credentials for this Identity: no expiry series either.
            ctx.services.metrics.forget(&ns, &name);
            let reason = SecretError::Conflict {
                namespace: ns.clone(),
                name: secret_name,
            };
            // The foreign Secret is not watched (no label of ours): look again now and then.
            pass.not_ready(reason.reason(), &message, Some(Duration::from_secs(300)))
                .await
        }
        SecretPlan::Wait { reason, message, at } => {
            pass.not_ready(reason.as_str(), &message, Some(renewal::requeue_after(pass.now, at)))
                .await
        }
        SecretPlan::UpToDate { record } => {
            ctx.services.budget.leave(&pass.key());
            let (expiration, renewal) = (record.expiration, record.renewal);
            // The status may need catching up (a restart, a status write that failed, a new
            // version with the same data); the next look is at renewal.
            pass.issued(set, expiration, renewal);
            pass.record(&record);
            // A request within the minimum interval: answered by the last refresh.
            let last = pass.old.last_refresh_time.as_deref().and_then(|t| t.parse().ok());
            pass.answer_request(last.unwrap_or(pass.now));
            pass.write_status().await?;
            let labels = pass.metric_labels(set);
            ctx.services
                .metrics
                .schedule(&labels, expiration.as_second(), renewal.as_second());
            Ok(Action::requeue(renewal::requeue_after(pass.now, renewal)))
        }
        // Read above: a second read is not planned.
        SecretPlan::ReadLive => {
            ctx.services.budget.leave(&pass.key());
            Ok(Action::requeue(Duration::from_secs(5)))
        }
        SecretPlan::Refresh {
            trigger,
            urgency,
            old_expiry,
            tampered,
            restore,
            unrequested,
        } => {
            let refresh = Refreshing {
                trigger,
                urgency,
                old_expiry,
                tampered,
                restore,
                unrequested,
                restores: o.restores,
            };
            self::refresh(pass, (set, hash), &existing, refresh, sts, jitter).await
        }
    }
}

/// Empties the Secrets the Identity wrote under names it no longer uses (neither its
/// credential Secret's nor its image-pull Secret's).
async fn empty_superseded(pass: &Pass<'_>, set: &ResolvedSet) -> Result<(), Error> {
    let (ctx, ns, name) = (pass.ctx, pass.ns.as_str(), pass.obj.name_any());
    let secret_name = &set.first().secret.name;
    let (secrets, cached) = secrets_of(ctx, ns);
    let pull = set.registry.as_ref().map(|r| r.secret_name.as_str());
    let emptied = secret::supersede(&secrets, ns, &pass.uid, (secret_name, pull), &cached).await?;
    forget_written(ctx, ns, &emptied);
    for old in emptied {
        tracing::info!(namespace = %ns, identity = %name, secret = %old, current = %secret_name, "credentials removed from superseded Secret");
    }
    Ok(())
}

/// The plan, and what stands at the name: as gathered, or read live first when the plan
/// asks (then planned again with what the read shows).
async fn with_live(
    pass: &Pass<'_>,
    o: &Observed<Held>,
    (set, hash): (&ResolvedSet, &str),
    plan: SecretPlan,
    view: &SecretView,
) -> Result<Option<(SecretPlan, Existing)>, Error> {
    let name = &set.first().secret.name;
    Ok(match (plan, view) {
        (SecretPlan::ReadLive, _) => {
            let live = read_live(pass.ctx, (&pass.ns, name), &pass.uid).await?;
            let plan = plan_existing(o, &live, (&pass.ns, name), hash);
            Some((plan, live))
        }
        (plan, SecretView::Known(existing)) => Some((plan, existing.clone())),
        _ => None,
    })
}

/// A refresh the plan asked for.
pub(super) struct Refreshing {
    pub trigger: RenewReason,
    pub urgency: Urgency,
    pub old_expiry: Option<Timestamp>,
    pub tampered: Option<String>,
    /// Replace `data` whole (see [`SecretPlan::Refresh`]).
    pub restore: bool,
    /// Neither the spec nor the schedule asked for it.
    pub unrequested: bool,
    /// The restores of the Secret so far (a restore counts one more).
    pub restores: Restores,
}

/// Takes a turn at the STS budget (or queues for one), then exchanges and writes.
async fn refresh(
    pass: &mut Pass<'_>,
    (set, hash): (&ResolvedSet, &str),
    existing: &Existing,
    r: Refreshing,
    sts: &impl Refresh,
    jitter: f64,
) -> Result<Action, Error> {
    let ctx = pass.ctx;
    if matches!(r.trigger, RenewReason::SecretMissing | RenewReason::SpecChanged)
        && let Some(refusal) = ctx.services.admission.refusal()
    {
        return not_enforced(pass, refusal).await;
    }
    // An endpoint that does not answer is down for everyone: wait for a probe's answer.
    let endpoint = match &set.first().federation {
        Some(f) => match &f.target {
            crate::resolve::FederationTarget::Azure(t) => crate::exchange::azure::endpoint_key(&t.authority_host),
            crate::resolve::FederationTarget::Gcp(t) => crate::exchange::gcp::endpoint_key(&t.sts_url),
        },
        None => ctx.services.exchanger.endpoint_of(set.first()),
    };
    if let Admit::Parked { .. } = ctx.services.budget.admit(&endpoint, &pass.key(), r.urgency) {
        let retry = decide::parked(None, 0, r.old_expiry, (&set.first().secret.name, &endpoint), pass.now);
        pass.set_ready(false, &retry.reason, &retry.message);
        pass.write_status().await?;
        return Ok(Action::requeue(retry.wait));
    }
    // What the turn is expected to cost: its account's budget is there before it goes.
    let mut demand = Demand::default();
    for item in &set.items {
        ctx.services.exchanger.demand(&pass.ns, item, pass.now, &mut demand);
    }
    let turn = match ctx.services.budget.enter(&pass.key(), r.urgency, demand.clone()) {
        Turn::Go(permit) => permit,
        Turn::Queued { calls, quota } => return queued(pass, r.old_expiry, (calls, quota.as_ref())).await,
    };
    if let Some(note) = &r.tampered {
        publish(ctx, pass.obj, EventType::Warning, "SecretTampered", note.clone()).await;
    }
    let result = turn
        .run(exchange_and_write(pass, (set, hash), (existing, &r), sts, jitter))
        .await;
    // The slot, and what the turn did not spend, go back before anything else.
    drop(turn);
    match result {
        Ok(issued) => {
            if r.trigger == RenewReason::Tampered {
                ctx.memory.restores.insert(pass.key(), r.restores.after(pass.now));
            }
            if r.unrequested {
                ctx.memory.unrequested.insert(pass.key(), pass.now);
            }
            renewed(pass, set, r.trigger, issued).await
        }
        Err(err) => failed(pass, set.first(), (r.old_expiry, r.urgency, &endpoint, demand), err).await,
    }
}

/// A first issue or a spec change while the admission policies are not in force: refused,
/// said once in an event, looked at again at the next check of the policies (in a second
/// when the first check has not answered yet).
async fn not_enforced(pass: &mut Pass<'_>, refusal: Refusal) -> Result<Action, Error> {
    let ctx = pass.ctx;
    let why = match refusal {
        Refusal::NotChecked => {
            ctx.services.budget.leave(&pass.key());
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        Refusal::NotEnforced(why) => why,
    };
    if conditions::reason(&pass.old.conditions, READY) != Some(NOT_ENFORCED) {
        publish(ctx, pass.obj, EventType::Warning, NOT_ENFORCED, why.clone()).await;
    }
    let recheck = ctx.services.admission.interval;
    pass.not_ready(NOT_ENFORCED, &why, Some(recheck)).await
}

/// Waiting for a turn at the STS budget: the gate triggers this reconcile when the turn
/// comes (renewals first, earliest expiry first, namespaces sharing by calls, its account's
/// budget there); the requeue is a fallback. The status says so only when the wait matters
/// (`WaitingForStsBudget`, written when it changes, as every status write).
async fn queued(
    pass: &mut Pass<'_>,
    old_expiry: Option<Timestamp>,
    waiting: (u64, Option<&Quota>),
) -> Result<Action, Error> {
    if let Some((ok, msg)) = pass
        .ctx
        .services
        .budget
        .waiting_condition(pass.now, old_expiry, waiting)
    {
        pass.set_ready(ok, "WaitingForStsBudget", &msg);
        pass.write_status().await?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// New credentials are in the Secret: status, metrics, event, next look at renewal time.
async fn renewed(
    pass: &mut Pass<'_>,
    set: &ResolvedSet,
    trigger: RenewReason,
    issued: Issued,
) -> Result<Action, Error> {
    let ctx = pass.ctx;
    let Issued {
        schedule,
        sessions,
        schedules,
        record,
        registry,
    } = issued;
    if registry.is_some() {
        pass.status.image_pull_secret = registry;
    }
    let resolved = set.first();
    pass.status.last_refresh_time = Some(rfc3339(pass.now));
    // Any renewal answers a request made before it.
    pass.answer_request(pass.now);
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
                    .contains(&SecretFormat::Process)
                    .then(|| process_key(&r.identity)),
                expiration: Some(rfc3339(s.expiration)),
            })
            .collect();
    } else {
        pass.status.session_name = sessions.first().map(|s| s.session_name.clone());
        pass.status.role_arn = resolved.links.last().map(|l| l.role_arn.clone());
    }
    pass.issued(set, schedule.expiration, schedule.renewal);
    pass.record(&record);
    pass.write_status().await?;
    ctx.memory.restarts.wrote(pass.key(), pass.now, schedule.expiration);
    // A run of failures, if any, is over: the next failure is a new Warning.
    ctx.memory.failures.remove(&pass.key());
    ctx.services.metrics.renewed(trigger.as_str());
    if matches!(trigger, RenewReason::Renewing | RenewReason::Expired) {
        served_late(pass);
    }
    let labels = pass.metric_labels(set);
    ctx.services
        .metrics
        .schedule(&labels, schedule.expiration.as_second(), schedule.renewal.as_second());
    let roles = match sessions.as_slice() {
        [] => format!(
            "the {} federation of {}",
            set.first().federation.as_ref().map_or("Azure", |f| f.target.cloud()),
            set.names()
        ),
        [one] => one.assumed_role_arn.clone(),
        many => format!("{} identities ({})", many.len(), set.names()),
    };
    let note = decide::renewed_note(trigger.as_str(), &roles, &resolved.secret.name, &schedule);
    publish(ctx, pass.obj, EventType::Normal, "Renewed", note).await;
    tracing::info!(namespace = %pass.ns, identity = %pass.obj.name_any(), %trigger, expiration = %rfc3339(schedule.expiration), renewal = %rfc3339(schedule.renewal), "credentials renewed");
    Ok(Action::requeue(renewal::requeue_after(pass.now, schedule.renewal)))
}

/// A scheduled renewal served now: how late, from the renewal time and expiry the status
/// recorded before it.
fn served_late(pass: &Pass<'_>) {
    let at = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
    if let (Some(renewal), Some(expiration)) = (at(&pass.old.renewal_time), at(&pass.old.expiration)) {
        pass.ctx
            .services
            .metrics
            .renewal_served(pass.now.as_second(), renewal.as_second(), expiration.as_second());
    }
}

/// A failed refresh: the old Secret stays as it is; [`decide::retry`] says what to report
/// and when to try again.
async fn failed(
    pass: &mut Pass<'_>,
    resolved: &Resolved,
    (old_expiry, urgency, endpoint, demand): (Option<Timestamp>, Urgency, &str, Demand),
    err: Error,
) -> Result<Action, Error> {
    let attempts = pass.old.failed_attempts.unwrap_or(0).saturating_add(1);
    let secret = resolved.secret.name.as_str();
    // STS gave no answer: parked until a probe gets one, instead of backing off alone.
    let retry = if err.endpoint_down() && pass.ctx.services.budget.park(endpoint, &pass.key(), urgency) {
        decide::parked(Some(&err), attempts, old_expiry, (secret, endpoint), pass.now)
    } else if decide::back_in_line(&err, attempts) {
        // Back in line for the account's budget, not a timer of its own: its rate backed
        // off, and the gate serves it when that rate allows.
        pass.ctx.services.budget.requeue(&pass.key(), urgency, demand);
        decide::throttled(&err, attempts, old_expiry, secret, pass.now)
    } else {
        // Failed for its own reasons (a token, a refusal): if it was an endpoint's probe,
        // the next probe need not wait for it.
        pass.ctx.services.budget.leave(&pass.key());
        decide::retry(&err, attempts, old_expiry, secret, pass.now)
    };
    pass.status.failed_attempts = Some(retry.attempts);
    pass.status.last_failure_time = Some(rfc3339(pass.now));
    pass.set_ready(false, &retry.reason, &retry.message);
    pass.write_status().await?;
    let ctx = pass.ctx;
    ctx.services.metrics.failed(err.reason());
    if old_expiry.is_none() {
        // The Secret holds no credentials for this spec: no expiry series describes it.
        ctx.services.metrics.forget(&pass.ns, &pass.obj.name_any());
    }
    super::warn_failed(ctx, pass.obj, &pass.key(), err.reason(), retry.message.clone()).await;
    tracing::warn!(namespace = %pass.ns, identity = %pass.obj.name_any(), reason = %err.reason(), error = %retry.message, "refresh failed");
    Ok(Action::requeue(retry.wait))
}
