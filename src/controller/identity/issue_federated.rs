//! One refresh of an Azure or GCP Identity: the federation proved with a token of the
//! Identity's ServiceAccount (at Entra; at Google STS, then IAM Credentials when a service
//! account is impersonated), so `Ready=True` means an SDK in the pod will get a token too,
//! then the Secret of settings written. A settings-only Secret (delivery `Projected`) holds
//! nothing that expires: it is verified again every `--azure-reverify-interval`; a Secret
//! holding the token file (delivery `Secret`) is renewed at half the token's life; one
//! holding GCP's access token (`gcp-access-token`) at two thirds of that token's life.

use jiff::{SignedDuration, Timestamp};

use super::act::{Pass, Refreshing};
use super::issue::{Issued, restores_of, write_mode, write_secret};
use super::trigger::RenewReason;
use crate::api::SecretFormat;
use crate::controller::Error;
use crate::exchange::gcp::GcpGrant;
use crate::exchange::renewal::{self, Schedule};
use crate::exchange::token::request_token;
use crate::exchange::{Exchange, ExchangeError, Request};
use crate::output::secret::{Record, data_hash};
use crate::resolve::{Delivery, FederationTarget, ResolvedSet};
use k8s_openapi::ByteString;

/// Exchanges `token` as the federation of `target` says. The grant only proves it works,
/// except with `keep` (GCP's `gcp-access-token` format): then the GCP grant, with its access
/// token, is returned.
async fn prove(
    pass: &Pass<'_>,
    target: &FederationTarget,
    token: String,
    keep: bool,
) -> Result<Option<GcpGrant>, Error> {
    let (services, ns, now) = (&pass.ctx.services, pass.ns.as_str(), pass.now);
    let token = Box::pin(async move { Ok::<_, ExchangeError>(token) });
    let (cloud, proved) = match target {
        FederationTarget::Azure(input) => {
            let request = Request {
                namespace: ns,
                input,
                now,
                keep: false,
                token,
            };
            ("azure", services.entra.exchange(request).await.map(|_| None))
        }
        FederationTarget::Gcp(input) => {
            let request = Request {
                namespace: ns,
                input,
                now,
                keep,
                token,
            };
            ("gcp", services.gcp.exchange(request).await.map(|g| keep.then_some(g)))
        }
    };
    let proved = proved.map_err(Error::from);
    let result = proved.as_ref().map_or_else(Error::exchange_result, |_| "ok");
    services.metrics.exchanged(cloud, result);
    proved
}

/// Verifies the federation of the set's one Azure or GCP identity and writes its Secret.
pub(super) async fn verify_and_write(
    pass: &Pass<'_>,
    (set, hash): (&ResolvedSet, &str),
    (existing, r): (&crate::output::secret::Existing, &Refreshing),
    jitter: f64,
) -> Result<Issued, Error> {
    let (ctx, ns, now) = (pass.ctx, pass.ns.as_str(), pass.now);
    let resolved = set.first();
    let Some(federation) = &resolved.federation else {
        return Err(Error::Metadata("federation"));
    };
    // One TokenRequest: the assertion the controller presents, and (delivery Secret) the
    // file it writes, so the file is known to work.
    let token = request_token(&ctx.services.client, ns, &resolved.token).await?;
    let keep = resolved.secret.formats.contains(&SecretFormat::GcpAccessToken);
    let kept = prove(pass, &federation.target, token.clone(), keep).await?;
    let mut schedule = schedule_of(
        &federation.delivery,
        resolved.token.expiration_seconds,
        ctx.services.azure_reverify_interval,
        now,
        jitter,
    );
    let file = matches!(federation.delivery, Delivery::Secret).then_some(token.as_str());
    let data = match (&federation.target, kept.as_ref().and_then(|g| g.access_token.as_ref())) {
        (FederationTarget::Gcp(target), Some(access)) => {
            // The access token expires: renewed from its real expiry (two thirds of its life
            // unless the Identity's refreshBefore says earlier), not at the re-verify interval.
            let grant = kept.as_ref().map_or((now, now), |g| (g.issued, g.expiration));
            schedule = renewal::schedule(grant.0, grant.1, resolved.refresh_before_seconds, jitter);
            crate::output::gcp::render_access_token(resolved, target, access.expose())
        }
        (FederationTarget::Azure(target), _) => {
            crate::output::azure::render(resolved, target, &federation.delivery, file)
        }
        (FederationTarget::Gcp(target), None) => {
            crate::output::gcp::render(resolved, target, &federation.delivery, file)
        }
    };
    if let Some(record) = unchanged(pass, (set, hash), r, &data, &schedule) {
        return Ok(Issued {
            schedule,
            sessions: Vec::new(),
            schedules: vec![schedule],
            record,
            registry: None,
        });
    }
    let record = write_secret(
        pass,
        set,
        hash,
        (existing, write_mode(r), restores_of(r)),
        (data, now, &schedule),
    )
    .await?;
    Ok(Issued {
        schedule,
        sessions: Vec::new(),
        schedules: vec![schedule],
        record,
        registry: None,
    })
}

/// A re-verification whose Secret would not change (settings only, same spec, the same
/// data recorded): the record with the new schedule, and no write.
fn unchanged(
    pass: &Pass<'_>,
    (set, hash): (&ResolvedSet, &str),
    r: &Refreshing,
    data: &std::collections::BTreeMap<String, String>,
    schedule: &Schedule,
) -> Option<Record> {
    if r.trigger != RenewReason::Renewing || r.restore {
        return None;
    }
    let newer = pass
        .ctx
        .memory
        .written
        .get(&crate::util::keyed::key(
            &pass.ns,
            &kube::ResourceExt::name_any(pass.obj),
        ))
        .map(|rec| rec.written);
    let written = newer.or_else(|| pass.old.written.clone())?;
    let bytes = data
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
        .collect();
    let same =
        written.name == set.first().secret.name && written.spec_hash == hash && written.data_hash == data_hash(&bytes);
    same.then_some(Record {
        written,
        expiration: schedule.expiration,
        renewal: schedule.renewal,
    })
}

/// When the Secret is looked at again (pure). Settings only: verified again after
/// `reverify` (its "expiry", twice that, only says how stale a failing verification may get
/// before it is reported expired). A token file of `token_seconds`: renewed at half-life.
pub(super) fn schedule_of(
    delivery: &Delivery,
    token_seconds: i64,
    reverify: std::time::Duration,
    now: Timestamp,
    jitter: f64,
) -> Schedule {
    let (lifetime, before) = match delivery {
        Delivery::Projected { .. } => {
            let every = i64::try_from(reverify.as_secs()).unwrap_or(i64::MAX / 4).max(1);
            (every * 2, every)
        }
        Delivery::Secret => (token_seconds, token_seconds / 2),
    };
    let expiration = now
        .checked_add(SignedDuration::from_secs(lifetime))
        .unwrap_or(Timestamp::MAX);
    renewal::schedule(now, expiration, Some(before), jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_verified_again_each_interval_a_token_file_renews_at_half_life() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let projected = Delivery::Projected {
            mount_path: "/t".into(),
        };
        let s = schedule_of(&projected, 600, std::time::Duration::from_secs(3600), now, 0.0);
        assert_eq!(s.renewal, "2026-01-01T01:00:00Z".parse().unwrap());
        assert_eq!(s.expiration, "2026-01-01T02:00:00Z".parse().unwrap());
        let s = schedule_of(&Delivery::Secret, 3600, std::time::Duration::from_secs(3600), now, 0.0);
        assert_eq!(s.renewal, "2026-01-01T00:30:00Z".parse().unwrap());
        assert_eq!(s.expiration, "2026-01-01T01:00:00Z".parse().unwrap());
    }
}
