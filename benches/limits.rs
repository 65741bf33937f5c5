//! Limits benchmark: a profile at the CRD limits (64 providers, 256 identities with
//! 253-character names, chains of 10 links) and one 256-identity chain, each
//! 1. validated in process (`validate_profile`, what the AuthProfile reconcile runs), and
//! 2. reconciled by the real controller on the real apiserver: time until its status is
//!    Ready (or, for the chain, written), and the controller's CPU time and peak RSS.
//!
//! `cargo bench --bench limits`

#[path = "../tests/e2e/fixture.rs"]
#[allow(dead_code)]
mod fixture;
#[path = "../tests/e2e/limits_profile.rs"]
mod limits_profile;

use std::time::{Duration, Instant};

use atmos_auth_controller::api::limits::MAX_IDENTITIES;
use atmos_auth_controller::api::{AuthProfile, AuthProfileSpec};
use atmos_auth_controller::resolve::{Settings, validate_profile};
use fixture::*;
use kube::Api;
use kube::api::{Patch, PatchParams};

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

/// Median wall time of `runs` calls of `validate_profile`.
fn validate_median(spec: &AuthProfileSpec, runs: usize) -> Duration {
    let settings = Settings::default();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let report = validate_profile(spec, &settings);
            let took = started.elapsed();
            std::hint::black_box(report);
            took
        })
        .collect();
    times.sort();
    times[runs / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let profiles = [
        ("at-limits", limits_profile::at_limits("at-limits")),
        ("one-chain", limits_profile::line("one-chain", MAX_IDENTITIES as usize)),
    ];

    // In process, also a chain past the schema's limit (as `validate` may read from a file):
    // the work stays linear.
    let past = limits_profile::line("one-chain-1000", 1000);
    for (name, doc) in profiles.iter().chain([&("one-chain-1000", past)]) {
        let spec: AuthProfileSpec = serde_json::from_value(doc["spec"].clone())?;
        let bytes = serde_json::to_vec(doc)?.len();
        let ready = validate_profile(&spec, &Settings::default())
            .identities
            .iter()
            .filter(|i| i.is_ready())
            .count();
        let status = serde_json::to_vec(&validate_profile(&spec, &Settings::default()).identity_states())?.len();
        println!(
            "{name}: {} identities, {} KiB as JSON, {ready} ready; validate_profile median of 20: {:.2} ms; \
             status.identities {} KiB",
            spec.identities.len(),
            bytes / 1024,
            validate_median(&spec, 20).as_secs_f64() * 1000.0,
            status / 1024
        );
    }

    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "bench-limits").await?;
    let sts = start_sts(cp);
    let controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &["--log-level", "warn"])?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, idle_hwm) = proc_stats(controller.pid());
    println!("controller peak RSS before: {} MiB", idle_hwm / 1024);
    let api: Api<AuthProfile> = Api::namespaced(client.clone(), &ns);
    for (name, doc) in &profiles {
        let (cpu_before, _) = proc_stats(controller.pid());
        let started = Instant::now();
        let applied = api
            .patch(name, &PatchParams::apply("bench").force(), &Patch::Apply(doc))
            .await?;
        loop {
            let status = api.get(name).await?.status.unwrap_or_default();
            if status.observed_generation == applied.metadata.generation
                && status.identities.len() == doc["spec"]["identities"].as_object().map_or(0, |m| m.len())
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(300),
                "{name}: no status after 5 min\n{}",
                log_tail(&controller.log_text())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = started.elapsed();
        let (cpu, hwm) = proc_stats(controller.pid());
        let status_bytes = serde_json::to_vec(&api.get(name).await?.status)?.len();
        println!(
            "{name}: apply to status written {:.2} s; controller CPU {:.2} s; status {} KiB; controller peak RSS {} MiB",
            took.as_secs_f64(),
            cpu - cpu_before,
            status_bytes / 1024,
            hwm / 1024
        );
    }
    Ok(())
}
