//! The scale check at N = 1 000 (the benchmark's shape, benches/scale.rs, counted not
//! timed): Identities across 10 namespaces, the controller with the chart's RBAC and token.
//! Asserts the STS minimum, the API requests per Identity from the audit log, zero writes
//! while nothing is due, and a restart that calls STS and writes nothing.

use std::time::Duration;

use anyhow::Result;

use crate::fixture::*;
use crate::scale_env::{Fleet, audit_mark, by_verb, issued, writes};

const N: usize = 1000;
const NAMESPACES: usize = 10;

#[tokio::test]
async fn a_thousand_identities_cost_what_they_must() -> Result<()> {
    let cp = control_plane();
    let fleet = Fleet::new(cp, "scale", NAMESPACES, true, None).await?;
    // A high limit: this check counts calls; the storm's pacing is the benchmark's.
    let controller = fleet.controller(true, &["--sts-rate-limit", "400", "--log-level", "info"])?;
    let mark = audit_mark(cp)?;
    fleet.create_identities(N).await?;
    fleet
        .wait_identities(N, Duration::from_secs(240), issued)
        .await
        .map_err(|e| e.context(log_tail(&controller.log_text())))?;
    // The Event follows the status write the watch saw.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // STS: one web identity per namespace's shared parent, one AssumeRole per Identity.
    let calls = fleet.sts.calls();
    assert_eq!(calls.ok("AssumeRoleWithWebIdentity"), NAMESPACES as u64, "{calls:?}");
    assert_eq!(calls.ok("AssumeRole"), N as u64, "{calls:?}");

    // Kubernetes: per first issue one TokenRequest, one Secret create (never two: a
    // reconcile that ran before the cache saw the create does not create again), one status
    // write, one Event; Secrets read from the watch cache (a GET only confirms a Secret the
    // cache does not have yet), never listed per reconcile.
    let issue = fleet.requests_since(cp, mark)?;
    let v = by_verb(&issue);
    let count = |k: &str| v.get(k).copied().unwrap_or(0);
    assert_eq!(count("create serviceaccounts/token"), N, "{v:#?}");
    assert_eq!(count("create secrets"), N, "{v:#?}");
    assert_eq!(count("patch secrets"), 0, "{v:#?}");
    let mut per_identity = std::collections::BTreeMap::<String, usize>::new();
    for e in issue.iter().filter(|e| e.resource == "identities" && e.verb == "patch") {
        *per_identity.entry(format!("{}/{}", e.namespace, e.name)).or_default() += 1;
    }
    per_identity.retain(|_, n| *n > 1);
    assert_eq!(
        count("patch identities/status"),
        N,
        "{v:#?}\nwritten more than once: {per_identity:?}\n{}",
        controller
            .log_text()
            .lines()
            .filter(|l| per_identity
                .keys()
                .any(|k| l.contains(&format!("\"{}\"", k.rsplit('/').next().unwrap_or_default()))))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(count("create events"), N, "{v:#?}");
    assert!(count("get secrets") <= N, "{v:#?}");
    assert_eq!(count("list secrets"), NAMESPACES, "one list per watch: {v:#?}");

    // Nothing due: no writes at all.
    let mark = audit_mark(cp)?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let quiet = fleet.requests_since(cp, mark)?;
    assert_eq!(
        writes(&quiet),
        Vec::<&atmos_auth_testenv::controlplane::AuditEvent>::new()
    );
    assert_eq!(by_verb(&quiet).get("get secrets"), None);

    // A restart with every Secret fresh: ready, no STS call, no write, no Secret GET.
    drop(controller);
    fleet.sts.reset_calls();
    let mark = audit_mark(cp)?;
    let controller = fleet.controller(true, &[])?;
    // Generous: the suite's other tests share the machine; the bench measures this time.
    let restarted = std::time::Instant::now();
    wait_for(Duration::from_secs(180), || async {
        Ok(controller.admin_get("/readyz").await.is_ok_and(|(code, _)| code == 200))
    })
    .await
    .map_err(|e| e.context(log_tail(&controller.log_text())))?;
    eprintln!(
        "restart with {N} fresh Secrets: ready after {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(fleet.sts.calls().all(), 0, "{:?}", fleet.sts.calls());
    let restart = fleet.requests_since(cp, mark)?;
    assert_eq!(
        writes(&restart),
        Vec::<&atmos_auth_testenv::controlplane::AuditEvent>::new()
    );
    assert_eq!(by_verb(&restart).get("get secrets"), None, "{:#?}", by_verb(&restart));
    Ok(())
}

/// A controller allowed ten times the STS quota backs off when STS answers `Throttling`:
/// every Identity is issued, with a bounded number of throttled answers (the halvings take
/// about four seconds: some 75 answers; without the back-off it keeps calling at ten times
/// the quota for the whole burst: several hundred).
#[tokio::test]
async fn throttling_backs_the_rate_off() -> Result<()> {
    let cp = control_plane();
    let quota = atmos_auth_testenv::sts::RateLimit { rate: 5.0, burst: 5 };
    let fleet = Fleet::new(cp, "throttle", 2, true, Some(quota)).await?;
    let controller = fleet.controller(true, &["--sts-rate-limit", "50"])?;
    let n = 60;
    fleet.create_identities(n).await?;
    fleet
        .wait_identities(n, Duration::from_secs(120), issued)
        .await
        .map_err(|e| e.context(log_tail(&controller.log_text())))?;
    let calls = fleet.sts.calls();
    let throttled = calls.errors("AssumeRole", "Throttling") + calls.errors("AssumeRoleWithWebIdentity", "Throttling");
    assert!(throttled > 0, "the quota was never reached: {calls:?}");
    assert!(
        throttled < 200,
        "{throttled} throttled answers for {n} Identities: {calls:?}"
    );
    Ok(())
}
