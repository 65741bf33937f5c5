//! One refresh carried out: the exchange of every identity of the set (or the sessions a
//! failed write left), the schedule, the rendering and the one Secret write.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Resource};

use super::act::{Pass, Refreshing};
use super::trigger::RenewReason;
use super::{Refresh, decide, registry};
use crate::controller::{Context, Error};
use crate::exchange::credentials::Credentials;
use crate::exchange::renewal::{self, Schedule};
use crate::exchange::sts::Session;
use crate::exchange::token::request_token;
use crate::exchange::{ExchangeError, Request};
use crate::output::labels;
use crate::output::render::{self, extra_keys, render, render_set};
use crate::output::secret::{self, Existing, Record, WriteMode};
use crate::resolve::ResolvedSet;
use crate::util::keyed::key;
use crate::util::time::rfc3339;

/// What a refresh wrote: each identity's session and schedule, the Secret's (the earliest),
/// and the record of the write for the status.
pub(super) struct Issued {
    pub schedule: Schedule,
    pub sessions: Vec<Session>,
    pub schedules: Vec<Schedule>,
    pub record: Record,
    /// The record of the image-pull Secret's write, for an Identity that has one.
    pub registry: Option<crate::api::WrittenSecret>,
}

/// Exchanges (or reuses the sessions a failed write left) and writes the Secret once. A
/// failed write keeps the sessions for the retry, so an API outage costs no second exchange.
pub(super) async fn exchange_and_write(
    pass: &Pass<'_>,
    (set, hash): (&ResolvedSet, &str),
    (existing, r): (&Existing, &Refreshing),
    sts: &impl Refresh,
    jitter: f64,
) -> Result<Issued, Error> {
    if set.first().federation.is_some() {
        return super::issue_federated::verify_and_write(pass, (set, hash), (existing, r), jitter).await;
    }
    let (ctx, ns, now) = (pass.ctx, pass.ns.as_str(), pass.now);
    let who = key(ns, &kube::ResourceExt::name_any(pass.obj));
    let sessions = match ctx.memory.unwritten.take(&who, hash, now) {
        Some(sessions) => {
            // The TokenRequest is Kubernetes' permission check: a revoked right stops the
            // retry too, even without a new exchange.
            for resolved in &set.items {
                request_token(&ctx.services.client, ns, &resolved.token).await?;
            }
            sessions
        }
        None => refresh_all(ctx, sts, ns, set, now).await?,
    };
    let refresh_before = set.first().refresh_before_seconds;
    let schedules: Vec<Schedule> = sessions
        .iter()
        .map(|s| renewal::schedule(s.issued, s.credentials.expiration, refresh_before, jitter))
        .collect();
    // Registry logins are one more output: the Secrets renew when the first of all is due.
    let (tokens, schedule) = match logins(ctx, (ns, set), &sessions, &schedules, (now, jitter)).await {
        Ok(done) => done,
        Err(e) => {
            ctx.memory.unwritten.keep(who, hash, sessions);
            return Err(e);
        }
    };
    // After a spec change the formats or identities may have changed: drop keys no longer
    // rendered. Data the controller cannot vouch for is replaced whole.
    let mode = write_mode(r);
    let restores = restores_of(r);
    let Some(data) = rendered(set, &sessions, &schedules) else {
        return Err(Error::Metadata("sessions"));
    };
    let issued_at = sessions.iter().map(|s| s.issued).min().unwrap_or(Timestamp::UNIX_EPOCH);
    match write_secret(
        pass,
        set,
        hash,
        (existing, mode, restores),
        (data, issued_at, &schedule),
    )
    .await
    {
        Ok(record) => {
            let registry = match &set.registry {
                Some(plan) => {
                    let view = pass_registry(pass, plan);
                    Some(registry::write(pass, (plan, view.as_ref()), &tokens, (hash, &schedule)).await?)
                }
                None => None,
            };
            Ok(Issued {
                schedule,
                sessions,
                schedules,
                record,
                registry,
            })
        }
        Err(e) => {
            ctx.memory.unwritten.keep(who, hash, sessions);
            Err(e)
        }
    }
}

/// The `cloud` label of the exchanges this module makes (`Refresh` is AWS's exchange).
const CLOUD: &str = "aws";

/// The registry logins of the set's image-pull Secret (none without one) and the schedule of
/// everything the refresh yields: the earliest of the sessions' and the tokens'.
async fn logins(
    ctx: &Context,
    (ns, set): (&str, &ResolvedSet),
    sessions: &[Session],
    schedules: &[Schedule],
    (now, jitter): (Timestamp, f64),
) -> Result<(Vec<crate::exchange::ecr::RegistryToken>, Schedule), Error> {
    let tokens = match &set.registry {
        Some(plan) => registry::login_all(ctx, ns, plan, sessions, now).await?,
        None => Vec::new(),
    };
    let refresh_before = set.first().refresh_before_seconds;
    let mut all = schedules.to_vec();
    all.extend(
        tokens
            .iter()
            .map(|t| renewal::schedule(t.issued, t.expires_at, refresh_before, jitter)),
    );
    Ok((tokens, earliest(&all)))
}

/// The image-pull Secret as the cache shows it now, judged against the status's record.
fn pass_registry(pass: &Pass<'_>, plan: &crate::resolve::registry::RegistryPlan) -> Option<registry::RegistryView> {
    Some(registry::gather(pass.ctx, &pass.ns, plan, &pass.old, &pass.uid))
}

/// The restores before this one, when it is a restore of tampered data.
pub(super) fn restores_of(r: &Refreshing) -> Option<&crate::output::tamper::Restores> {
    (r.trigger == RenewReason::Tampered).then_some(&r.restores)
}

/// How the Secret is written: after a spec change the formats or identities may have
/// changed, so keys no longer rendered are dropped; data the controller cannot vouch for is
/// replaced whole.
pub(super) fn write_mode(r: &Refreshing) -> WriteMode {
    if r.restore {
        WriteMode::Restore
    } else {
        WriteMode::Apply {
            prune: r.trigger == RenewReason::SpecChanged,
        }
    }
}

/// Runs each identity's chain in turn, in [`decide::refresh_order`]: a parent that is itself
/// one of the identities is issued (and cached) before the chains that start with it, so
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
            request_token(&ctx.services.client, ns, &resolved.token)
                .await
                .map_err(ExchangeError::from)
        });
        let request = Request {
            namespace: ns,
            input: resolved,
            now,
            // A set's identities may chain from one another: keep their sessions as parents.
            keep: set.multi,
            token,
        };
        let exchanged = sts.exchange(request).await.map_err(Error::from);
        let result = exchanged.as_ref().map_or_else(Error::exchange_result, |_| "ok");
        ctx.services.metrics.exchanged(CLOUD, result);
        sessions[i] = Some(exchanged?);
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

/// Writes the Secret with `data` issued at `issued_at`, with the times of `schedule` (the
/// earliest of its identities'); a restore (`restores`: those before it) says so in
/// annotations. Returns the record of the write, also kept in process memory until a status
/// write records it.
pub(super) async fn write_secret(
    pass: &Pass<'_>,
    set: &ResolvedSet,
    hash: &str,
    (existing, mode, restores): (&Existing, WriteMode, Option<&crate::output::tamper::Restores>),
    (data, issued_at, schedule): (BTreeMap<String, String>, Timestamp, &Schedule),
) -> Result<Record, Error> {
    let (ctx, ns) = (pass.ctx, pass.ns.as_str());
    let resolved = set.first();
    let mut annotations = BTreeMap::from([
        (labels::SPEC_HASH.to_owned(), hash.to_owned()),
        (labels::EXPIRATION.to_owned(), rfc3339(schedule.expiration)),
        (labels::RENEWAL_TIME.to_owned(), rfc3339(schedule.renewal)),
        // Sub-second on purpose: it tells two issues apart, even within one second.
        (labels::ISSUED_AT.to_owned(), issued_at.to_string()),
        (labels::IDENTITY.to_owned(), set.names()),
    ]);
    // The keys beyond AWS's fixed ones: an AWS Secret's per-identity keys, every key of an
    // Azure or GCP Secret. Recorded so that emptying the Secret (revoked, superseded) or
    // pruning it after a spec change removes them too: a token file or access token must
    // not outlive the Secret's use.
    let extra = extra_keys(&data);
    if !extra.is_empty() {
        annotations.insert(labels::DATA_KEYS.to_owned(), extra.join(","));
    }
    if let Some(restores) = restores {
        // For people to see; the spacing of restores is decided from process memory.
        annotations.extend(restores.annotations_after(pass.now));
    }
    let owner = pass
        .obj
        .controller_owner_ref(&())
        .ok_or(Error::Metadata("name or uid"))?;
    let desired = secret::desired(ns, &resolved.secret.name, owner, data, annotations);
    let data_hash = secret::data_hash(desired.data.as_ref().unwrap_or(&BTreeMap::new()));
    let api: Api<Secret> = Api::namespaced(ctx.services.client.clone(), ns);
    let written_annotations = desired.metadata.annotations.clone().unwrap_or_default();
    let outcome = secret::write(&api, existing, &desired, mode).await?;
    let record = Record {
        written: crate::api::WrittenSecret {
            name: resolved.secret.name.clone(),
            resource_version: outcome.resource_version,
            data_hash,
            spec_hash: hash.to_owned(),
        },
        expiration: schedule.expiration,
        renewal: schedule.renewal,
    };
    ctx.memory
        .written
        .insert(key(ns, &kube::ResourceExt::name_any(pass.obj)), record.clone());
    // By the Secret's name too, with its UID and owner: a rename before the watch cache shows
    // this Secret must still find it to empty it (`act::secrets_of`).
    ctx.memory.secret_writes.insert(
        key(ns, &resolved.secret.name),
        secret::SecretWrite {
            uid: outcome.uid.clone(),
            owner: pass.uid.clone(),
            annotations: written_annotations,
        },
    );
    Ok(record)
}

/// The Secret's data for `sessions`. Consumers see a slightly early expiry (the schedule's
/// advertised one); the annotations keep the real one. `None` without a session.
fn rendered(set: &ResolvedSet, sessions: &[Session], schedules: &[Schedule]) -> Option<BTreeMap<String, String>> {
    let resolved = set.first();
    let advertised: Vec<Credentials> = sessions
        .iter()
        .zip(schedules)
        .map(|(s, sch)| Credentials {
            expiration: sch.advertised,
            ..s.credentials.clone()
        })
        .collect();
    if set.multi {
        let items: Vec<render::Issued<'_>> = set
            .items
            .iter()
            .zip(&advertised)
            .map(|(r, creds)| render::Issued {
                identity: &r.identity,
                region: &r.region,
                creds,
            })
            .collect();
        return Some(render_set(
            &items,
            &resolved.secret.formats,
            &resolved.secret.mount_path,
        ));
    }
    let creds = advertised.first()?;
    Some(render(
        &resolved.identity,
        &resolved.region,
        &resolved.secret.formats,
        &resolved.secret.mount_path,
        creds,
    ))
}
