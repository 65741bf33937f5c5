//! Scale benchmark: N Identities across 10 namespaces (one two-link profile each) on the real
//! kube-apiserver, the verifying local STS with a request quota of its own (`Throttling`
//! beyond it, as AWS), and the real controller binary running with the chart's RBAC and
//! ServiceAccount token. Everything is awaited on a watch. Four phases:
//!
//! 1. burst: create N Identities, time until all are Ready; STS calls against the minimum;
//!    the controller's API requests per Identity by verb (audit log); CPU and memory;
//! 2. quiet: writes while nothing is due (must be 0), steady RSS;
//! 3. storm: the controller stopped, every recorded renewal time (Identity status) moved to
//!    the past, the controller started: all N due at once; convergence against N / rate, `Throttling`
//!    answers, and whether any credentials expired before their renewal;
//! 4. restart with every Secret fresh: time until ready, STS calls and writes (must be 0).
//!
//! `SCALE_IDENTITIES=1000 cargo bench --bench scale` (default 100). `SCALE_STS_QUOTA`: the
//! local STS's quota, calls/s (default 50); `SCALE_RATE`: the controller's
//! `--sts-rate-limit` (default: the controller's default).

#[path = "../tests/e2e/fixture.rs"]
#[allow(dead_code)]
mod fixture;
#[path = "../tests/e2e/scale_env.rs"]
#[allow(dead_code)]
mod scale_env;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atmos_auth_controller::api::Identity;
use atmos_auth_testenv::sts::RateLimit;
use fixture::{ControllerProcess, control_plane, wait_for};
use futures::StreamExt;
use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use scale_env::{Fleet, audit_mark, by_verb, issued, proc_stats, writes};

const NAMESPACES: usize = 10;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Prints requests per Identity by verb.
fn per_identity(title: &str, events: &[atmos_auth_testenv::controlplane::AuditEvent], n: usize) {
    println!("{title} (controller's requests from the audit log, per Identity):");
    for (what, count) in by_verb(events) {
        println!("  {what:<36} {count:>7}  ({:.3} per Identity)", count as f64 / n as f64);
    }
}

async fn ready(controller: &ControllerProcess) -> anyhow::Result<()> {
    wait_for(Duration::from_secs(300), || async {
        Ok(controller.admin_get("/readyz").await.is_ok_and(|(code, _)| code == 200))
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = env("SCALE_IDENTITIES", 100);
    let quota: f64 = env("SCALE_STS_QUOTA", 50.0);
    let rate: Option<String> = std::env::var("SCALE_RATE").ok();
    let quiet = Duration::from_secs(env("SCALE_QUIET_SECONDS", 30));
    let cp = control_plane();
    let fleet = Fleet::new(
        cp,
        "bench",
        NAMESPACES,
        false,
        Some(RateLimit {
            rate: quota,
            burst: quota.ceil() as u32,
        }),
    )
    .await?;
    let mut args: Vec<&str> = Vec::new();
    if let Some(r) = &rate {
        args.extend(["--sts-rate-limit", r.as_str()]);
    }
    let rate_used: f64 = rate.as_deref().and_then(|r| r.parse().ok()).unwrap_or(50.0);
    println!("identities: {n} in {NAMESPACES} namespaces; local STS quota {quota}/s; controller rate {rate_used}/s");

    // 1. Burst.
    let controller = fleet.controller(false, &args)?;
    ready(&controller).await?;
    let (rss0, _, cpu0) = proc_stats(controller.pid());
    println!("controller RSS before any Identity: {:.1} MiB", mib(rss0));
    let mark = audit_mark(cp)?;
    let started = Instant::now();
    fleet.create_identities(n).await?;
    let created = started.elapsed();
    fleet.wait_identities(n, Duration::from_secs(3600), issued).await?;
    let all_ready = started.elapsed();
    let (_, hwm, cpu1) = proc_stats(controller.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = fleet.sts.calls();
    println!("\n## burst");
    println!("created {n} Identities in {:.1} s", created.as_secs_f64());
    println!(
        "all Ready after {:.1} s from the first create ({:.1} Identities/s; N / rate = {:.1} s)",
        all_ready.as_secs_f64(),
        n as f64 / all_ready.as_secs_f64(),
        n as f64 / rate_used
    );
    println!(
        "STS: AssumeRoleWithWebIdentity {} (minimum {NAMESPACES}), AssumeRole {} (minimum {n}), Throttling {}",
        calls.ok("AssumeRoleWithWebIdentity"),
        calls.ok("AssumeRole"),
        calls.errors("AssumeRole", "Throttling") + calls.errors("AssumeRoleWithWebIdentity", "Throttling")
    );
    per_identity("API requests", &fleet.requests_since(cp, mark)?, n);
    println!(
        "controller CPU: {:.2} s ({:.2} s per 1 000 issues); peak RSS {:.1} MiB",
        cpu1 - cpu0,
        (cpu1 - cpu0) * 1000.0 / n as f64,
        mib(hwm)
    );

    // 2. Quiet.
    let mark = audit_mark(cp)?;
    tokio::time::sleep(quiet).await;
    let events = fleet.requests_since(cp, mark)?;
    let (rss, hwm, _) = proc_stats(controller.pid());
    println!("\n## quiet ({} s)", quiet.as_secs());
    println!(
        "writes: {} (Leases apart; none without leader election)",
        writes(&events).len()
    );
    println!("requests: {:?}", by_verb(&events));
    println!(
        "controller RSS steady {:.1} MiB ({:.1} KiB per Identity above the empty controller), peak {:.1} MiB",
        mib(rss),
        rss.saturating_sub(rss0) as f64 / n as f64,
        mib(hwm)
    );
    drop(controller);

    // 3. Storm: every renewal due at once (SCALE_STORM=0 skips it).
    if env("SCALE_STORM", 1) == 1 {
        storm(&fleet, cp, n, &args, quota, rate_used).await?;
    }

    // 4. Restart with every Secret fresh.
    fleet.sts.reset_calls();
    let mark = audit_mark(cp)?;
    let started = Instant::now();
    let controller = fleet.controller(false, &args)?;
    ready(&controller).await?;
    let to_ready = started.elapsed();
    tokio::time::sleep(quiet).await;
    let events = fleet.requests_since(cp, mark)?;
    let (rss, hwm, _) = proc_stats(controller.pid());
    println!("\n## restart with {n} fresh Secrets");
    println!("ready after {:.1} s", to_ready.as_secs_f64());
    println!(
        "in the {} s after: STS calls {}, writes {}, requests {:?}",
        quiet.as_secs(),
        fleet.sts.calls().all(),
        writes(&events).len(),
        by_verb(&events)
    );
    println!("controller RSS {:.1} MiB, peak {:.1} MiB", mib(rss), mib(hwm));
    Ok(())
}

/// Phase 3: every Secret's renewal time moved to the past while the controller is stopped,
/// then the controller started: N renewals due at once.
async fn storm(
    fleet: &Fleet,
    cp: &atmos_auth_testenv::controlplane::ControlPlane,
    n: usize,
    args: &[&str],
    quota: f64,
    rate_used: f64,
) -> anyhow::Result<()> {
    let before = fleet.secret_annotations().await?;
    let past = Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(1))?
        .to_string();
    // The renewal time the controller recorded in each Identity's status (it decides from
    // that record, never from the Secret's annotations); Secret and Identity share a name.
    futures::stream::iter(before.keys().cloned())
        .map(|(ns, name)| {
            let api: Api<Identity> = Api::namespaced(fleet.client.clone(), &ns);
            let patch = serde_json::json!({"status": {"renewalTime": past}});
            async move {
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
            }
        })
        .buffer_unordered(32)
        .for_each(|r| {
            if let Err(e) = r {
                eprintln!("patch failed: {e}");
            }
            futures::future::ready(())
        })
        .await;
    fleet.sts.reset_calls();
    let mark = audit_mark(cp)?;
    let storm_start = Timestamp::now();
    let started = Instant::now();
    let controller = fleet.controller(false, args)?;
    let (_, _, cpu0) = proc_stats(controller.pid());
    let renewed_after = |i: &Identity| {
        i.status
            .as_ref()
            .and_then(|s| s.last_refresh_time.as_deref())
            .and_then(|t| t.parse::<Timestamp>().ok())
            .is_some_and(|t| {
                t >= storm_start
                    .checked_sub(jiff::SignedDuration::from_secs(1))
                    .unwrap_or(storm_start)
            })
            && issued(i)
    };
    fleet
        .wait_identities(n, Duration::from_secs(3600), renewed_after)
        .await?;
    let converged = started.elapsed();
    let (_, hwm, cpu1) = proc_stats(controller.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = fleet.sts.calls();
    let throttled = calls.errors("AssumeRole", "Throttling") + calls.errors("AssumeRoleWithWebIdentity", "Throttling");
    // None expired: every Identity renewed before the credentials it had expired.
    let old_expiry: HashMap<(String, String), Timestamp> = before
        .iter()
        .filter_map(|(k, a)| Some((k.clone(), a.get("auth.atmos.tools/expiration")?.parse().ok()?)))
        .collect();
    let mut expired = 0;
    for ns in &fleet.namespaces {
        let api: Api<Identity> = Api::namespaced(fleet.client.clone(), ns);
        for i in api.list(&Default::default()).await?.items {
            let refreshed: Option<Timestamp> = i
                .status
                .as_ref()
                .and_then(|s| s.last_refresh_time.as_deref())
                .and_then(|t| t.parse().ok());
            let key = (ns.clone(), i.name_any());
            if refreshed.zip(old_expiry.get(&key)).is_none_or(|(r, e)| r >= *e) {
                expired += 1;
            }
        }
    }
    println!("\n## storm: {n} renewals due at once, local STS quota {quota}/s");
    println!(
        "converged in {:.1} s from the controller's start; N / rate = {:.1} s ({:+.0}%)",
        converged.as_secs_f64(),
        n as f64 / rate_used,
        (converged.as_secs_f64() / (n as f64 / rate_used) - 1.0) * 100.0
    );
    println!(
        "STS: AssumeRoleWithWebIdentity {}, AssumeRole {} ok; Throttling answers {throttled}",
        calls.ok("AssumeRoleWithWebIdentity"),
        calls.ok("AssumeRole")
    );
    println!("credentials expired before their renewal: {expired}");
    per_identity("API requests", &fleet.requests_since(cp, mark)?, n);
    println!(
        "controller CPU: {:.2} s ({:.2} s per 1 000 renewals, restart and cache sync included); peak RSS {:.1} MiB",
        cpu1 - cpu0,
        (cpu1 - cpu0) * 1000.0 / n as f64,
        mib(hwm)
    );
    drop(controller);
    Ok(())
}
