//! An STS endpoint outage: every call answered `503 ServiceUnavailable` for 45 s (a soak run:
//! `E2E_STS_OUTAGE_SECONDS=300`) while 4 Identities' credentials fall due and expire. The
//! endpoint is down for everyone: probed once per interval, not retried by each Identity on
//! its own, and every Identity is issued again within 5 s of STS answering.

use std::time::{Duration, Instant};

use anyhow::Result;
use atmos_auth_controller::api::Identity;
use atmos_auth_testenv::sts::Fault;
use kube::Api;

use crate::fixture::*;
use crate::{identity, profile};

/// The controller's probe interval for a down endpoint.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

fn last_refresh(i: &Identity) -> Option<jiff::Timestamp> {
    i.status.as_ref()?.last_refresh_time.as_deref()?.parse().ok()
}

#[tokio::test]
async fn after_an_sts_outage_every_identity_is_issued_within_seconds() -> Result<()> {
    const N: usize = 4;
    let outage = Duration::from_secs(
        std::env::var("E2E_STS_OUTAGE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(45),
    );
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("sts-outage").await?;
    // 30 s sessions, renewed after 20 s: due, then expired, during the outage.
    apply(&client, &ns, &profile("30s")).await?;
    for i in 0..N {
        apply(&client, &ns, &identity(&format!("id-{i}"), "")).await?;
    }
    for i in 0..N {
        wait_reason(
            &client,
            &ns,
            &format!("id-{i}"),
            "CredentialsIssued",
            Duration::from_secs(60),
        )
        .await?;
    }
    let api: Api<Identity> = Api::namespaced(client.clone(), &ns);

    sts.set_fault(Some(Fault::Unavailable));
    let down = jiff::Timestamp::now();
    // The outage lasts its length whatever the controller does: that is the scenario.
    tokio::time::sleep(outage).await;
    sts.set_fault(None);
    let up = Instant::now();
    let up_at = jiff::Timestamp::now();

    // Every Identity issued again after STS answered.
    let issued = wait_for(Duration::from_secs(30), || async {
        let mut all = true;
        for i in 0..N {
            let id = api.get(&format!("id-{i}")).await?;
            let fresh = last_refresh(&id).is_some_and(|t| t >= up_at - jiff::SignedDuration::from_secs(1));
            all &= fresh && ready(&id).is_some_and(|r| r.1 == "CredentialsIssued");
        }
        Ok(all)
    })
    .await;
    let took = up.elapsed();
    if let Err(e) = issued {
        anyhow::bail!(
            "not issued again after the outage: {e}\n{}",
            log_tail(&controller.log_text())
        );
    }

    // During the outage: after the refreshes already under way when it began, one call per
    // probe interval, not one per Identity and retry.
    let (from, to) = (
        down.as_millisecond() as u64,
        (down + jiff::SignedDuration::try_from(outage)?).as_millisecond() as u64,
    );
    let failed: Vec<u64> = sts
        .role_calls()
        .iter()
        .filter(|c| c.error.as_deref() == Some("ServiceUnavailable") && (from..to).contains(&c.at_millis))
        .map(|c| c.at_millis)
        .collect();
    let first = failed.first().copied().unwrap_or(from);
    let later: Vec<u64> = failed.iter().copied().filter(|t| *t > first + 1000).collect();
    let min_gap = later.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(u64::MAX);
    eprintln!(
        "RECOVERY sts outage of {} s: {} calls during it ({} after the first second), closest {} ms apart; all {N} issued {:.1} s after STS answered",
        outage.as_secs(),
        failed.len(),
        later.len(),
        min_gap,
        took.as_secs_f64()
    );
    assert!(!failed.is_empty(), "no call during the outage");
    let slack = 200;
    assert!(
        min_gap + slack >= PROBE_INTERVAL.as_millis() as u64,
        "calls {min_gap} ms apart during the outage: {failed:?}"
    );
    let most = outage.as_secs() / PROBE_INTERVAL.as_secs() + 1;
    assert!(
        later.len() as u64 <= most,
        "{} calls, at most {most}: {failed:?}",
        later.len()
    );
    assert!(took <= Duration::from_secs(5), "issued {took:?} after STS answered");
    Ok(())
}

/// Repeated failures of one Identity (here, each probe of a down endpoint) make one Warning
/// Event whose series counts them, not one new Event each time.
#[tokio::test]
async fn repeated_failures_make_one_warning_event_with_a_count() -> Result<()> {
    use k8s_openapi::api::events::v1::Event;
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("sts-repeat").await?;
    // A 30 s session renewed 3 s after issue.
    apply(&client, &ns, &profile("30s")).await?;
    apply(&client, &ns, &identity("admin", "  refreshBefore: 27s")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    sts.set_fault(Some(Fault::Unavailable));
    let api: Api<Identity> = Api::namespaced(client.clone(), &ns);
    let failed = wait_for(Duration::from_secs(60), || async {
        let id = api.get("admin").await?;
        Ok(id.status.and_then(|s| s.failed_attempts).unwrap_or(0) >= 4)
    })
    .await;
    sts.set_fault(None);
    if let Err(e) = failed {
        anyhow::bail!("fewer than 4 failures: {e}\n{}", log_tail(&controller.log_text()));
    }
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let warnings: Vec<Event> = events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("admin"))
        .collect();
    let counts: Vec<Option<i32>> = warnings.iter().map(|e| e.series.as_ref().map(|s| s.count)).collect();
    eprintln!(
        "EVENTS 4+ failures: {} Warning events, series counts {counts:?}",
        warnings.len()
    );
    assert_eq!(warnings.len(), 1, "{counts:?}");
    assert!(counts[0].is_some_and(|c| c >= 4), "{counts:?}");
    Ok(())
}
