//! What a deployed controller needs: one leader among replicas, a quick take-over, no
//! duplicate renewals, health and metrics endpoints, graceful shutdown.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::fixture::*;
use crate::{identity, profile};

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("atmos-auth-controller")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

#[tokio::test]
async fn one_leader_renews_and_a_standby_takes_over() -> anyhow::Result<()> {
    let _heavy = crate::serial::heavy().await;
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "ha").await?;
    let sts = start_sts(cp);
    let args = |name: &'static str| {
        [
            "--leader-election",
            "--lease-namespace",
            ns.as_str(),
            "--instance",
            name,
        ]
    };
    let mut a = ControllerProcess::start(cp, &ns, &sts.endpoint(), &args("replica-a"))?;
    let mut b = ControllerProcess::start(cp, &ns, &sts.endpoint(), &args("replica-b"))?;
    apply(&client, &ns, &profile("30s")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;

    // Both replicas are ready: the standby at once, the leader once its caches have synced
    // (a loaded machine can delay that by a moment). Then exactly one holds the Lease.
    let both_ready = wait_for(Duration::from_secs(20), || async {
        Ok(a.admin_get("/readyz").await?.0 == 200 && b.admin_get("/readyz").await?.0 == 200)
    })
    .await;
    if let Err(e) = both_ready {
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
        anyhow::bail!(
            "{e}: readyz a={:?} b={:?}, lease holder {:?}\nA: {}\nB: {}",
            a.admin_get("/readyz").await?,
            b.admin_get("/readyz").await?,
            holder(&leases).await,
            log_tail(&a.log_text()),
            log_tail(&b.log_text())
        );
    }
    for c in [&a, &b] {
        assert_eq!(c.admin_get("/healthz").await?.0, 200);
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let leader = holder(&leases).await.unwrap_or_default();
    assert!(
        leader == "replica-a" || leader == "replica-b",
        "lease held by {leader:?}"
    );
    let (lead, standby) = if leader == "replica-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let (code, metrics) = lead.admin_get("/metrics").await?;
    assert_eq!(code, 200);
    for name in [
        "atmos_auth_renewals_total{reason=\"SecretMissing\"} 1",
        "atmos_auth_identity_expiration_timestamp_seconds{",
        "atmos_auth_identity_renewal_timestamp_seconds{",
        "atmos_auth_sts_call_duration_seconds_count{action=\"AssumeRoleWithWebIdentity\",outcome=\"ok\"}",
        "atmos_auth_reconcile_duration_seconds_count{controller=\"identity\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }

    // With both running through a renewal, each Secret write costs exactly one exchange.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let issued = || issued_at(&secrets, "admin");
    let mut seen = BTreeSet::from([issued().await?]);
    let calls_before = sts.calls().ok("AssumeRoleWithWebIdentity");
    let until = Instant::now() + Duration::from_secs(25);
    while Instant::now() < until {
        seen.insert(issued().await?);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let calls = sts.calls().ok("AssumeRoleWithWebIdentity") - calls_before;
    assert!(seen.len() >= 2, "no renewal in 25 s");
    assert_eq!(
        calls as usize,
        seen.len() - 1,
        "{calls} exchanges for {} renewals",
        seen.len() - 1
    );

    // Kill the leader as a node loss would; the standby leads within 15 s and renews.
    lead.kill();
    let killed = Instant::now();
    let new_leader = loop {
        let h = holder(&leases).await.unwrap_or_default();
        if !h.is_empty() && h != leader {
            break h;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "no take-over 15 s after the leader died"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took_over = killed.elapsed();
    let last = issued().await?;
    wait_for(Duration::from_secs(40), || async { Ok(issued().await? != last) }).await?;
    eprintln!("take-over by {new_leader} after {took_over:?}");

    // SIGTERM: the remaining replica finishes and exits cleanly.
    let started = Instant::now();
    assert!(
        standby.terminate()?,
        "controller exited with an error on SIGTERM:\n{}",
        standby.log_text()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    Ok(())
}
