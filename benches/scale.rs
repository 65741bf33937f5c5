//! Scale benchmark: N Identities sharing one two-link chain, on the real apiserver with the
//! verifying local STS and the real controller binary. Reports the time until every Secret
//! is written, STS calls made, and the controller's CPU time and peak memory.
//!
//! `cargo bench --bench scale` (N from `SCALE_IDENTITIES`, default 100).

#[path = "../tests/e2e/fixture.rs"]
#[allow(dead_code)]
mod fixture;

use std::time::{Duration, Instant};

use atmos_auth_controller::api::Identity;
use fixture::*;
use kube::Api;
use kube::api::ListParams;

fn proc_stats(pid: u32) -> (f64, u64) {
    // utime + stime (clock ticks, 100 Hz on Linux) and VmHWM (peak RSS, kB).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or_default().split(' ').collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks as f64 / 100.0, hwm)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("SCALE_IDENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "bench").await?;
    let sts = start_sts(cp);
    let controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &["--log-level", "warn"])?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu_idle, _) = proc_stats(controller.pid());

    let profile = include_str!("../examples/profile.yaml")
        .replace("arn:aws:iam::123456789012:role/admin", ADMIN_ROLE)
        .replace("arn:aws:iam::123456789012:role/network-admin", NETWORK_ROLE)
        .replace("  namespace: infra\n", "");
    apply(&client, &ns, &profile).await?;
    let started = Instant::now();
    let mut manifests = String::new();
    for i in 0..n {
        manifests.push_str(&format!(
            "---\napiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: id-{i}}}\nspec: {{profile: k8s, identity: acme/network}}\n"
        ));
    }
    apply(&client, &ns, &manifests).await?;
    let applied = started.elapsed();
    let api: Api<Identity> = Api::namespaced(client.clone(), &ns);
    loop {
        let ready = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|i| ready(i).is_some_and(|r| r.1 == "CredentialsIssued"))
            .count();
        if ready == n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {ready}/{n} ready after 10 min"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_ready = started.elapsed();
    let (cpu, hwm) = proc_stats(controller.pid());
    let calls = sts.calls();
    println!("identities: {n}");
    println!("apply of {n} Identities: {:.2} s", applied.as_secs_f64());
    println!(
        "all Secrets written and Ready: {:.2} s ({:.1} Identities/s)",
        all_ready.as_secs_f64(),
        n as f64 / all_ready.as_secs_f64()
    );
    println!(
        "STS calls: AssumeRoleWithWebIdentity {}, AssumeRole {}",
        calls.ok("AssumeRoleWithWebIdentity"),
        calls.ok("AssumeRole")
    );
    println!(
        "controller CPU for the burst: {:.2} s; peak RSS: {} MiB",
        cpu - cpu_idle,
        hwm / 1024
    );
    Ok(())
}
