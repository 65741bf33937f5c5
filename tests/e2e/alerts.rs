//! The chart's alert rules and Grafana dashboard, proven against the real exporter: the
//! controller runs scenarios that should and should not trigger each alert, its `/metrics`
//! is scraped, and the real `promtool` checks the rules the chart renders and runs them
//! (`promtool test rules`) on series made from those scrapes: every alert has a firing case
//! and a silent case. Every metric and label a rule or a dashboard panel names must be one
//! the exporter serves.
//!
//! From scrape to series: Prometheus attaches its target's `namespace` to the controller's
//! own series (those without one; the ServiceMonitor honours the Identities' own), as here.
//! A scrape taken at `at` is placed at a time of promtool's clock; timestamp gauges
//! (`*_timestamp_seconds`) move with it (`value - at + t`). What the alerts' `for` needs
//! beyond the scenario is the scenario going on as scraped: gauges keep their value,
//! counters their rate between two scrapes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use atmos_auth_testenv::controlplane::ControlPlane;
use atmos_auth_testenv::sts::Fault;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::exposition::{Sample, Scrape, expand, labels_in, legend_labels, metrics_in};
use crate::fixture::*;

/// The namespace the chart is rendered for: Prometheus's target label on the controller's
/// own series.
const RELEASE_NS: &str = "atmos-auth-system";

/// The queue scenarios' budget: one STS call a second, one at once after a pause.
const QUEUE_BUDGET: [&str; 4] = ["--sts-rate-limit", "1", "--sts-burst", "1"];

fn profile() -> String {
    format!(
        r#"
apiVersion: auth.atmos.tools/v1alpha1
kind: AuthProfile
metadata: {{name: k8s}}
spec:
  providers:
    cluster-oidc:
      kind: kubernetes/oidc
      spec: {{audience: sts.amazonaws.com, service_account: terraform}}
  identities:
    acme/admin:
      default: true
      kind: aws/assume-role
      via: {{provider: cluster-oidc}}
      principal: {{assume_role: "{ADMIN_ROLE}", duration: 1h, region: us-east-2}}
    acme/short:
      kind: aws/assume-role
      via: {{provider: cluster-oidc}}
      principal: {{assume_role: "{ADMIN_ROLE}", duration: 60s, region: us-east-2}}
    acme/audit:
      kind: aws/assume-role
      via: {{identity: acme/admin}}
      principal: {{assume_role: "{AUDIT_ROLE}", duration: 1h}}
"#
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn scrape(controller: &ControllerProcess) -> Result<Scrape> {
    let text = reqwest::Client::new()
        .get(format!("http://{}/metrics", controller.metrics))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut scrape = Scrape::parse(&text, now())?;
    for s in &mut scrape.samples {
        s.labels.entry("namespace".into()).or_insert_with(|| RELEASE_NS.into());
    }
    Ok(scrape)
}

/// The chart's PrometheusRule groups and dashboard, as `helm template` renders them.
fn rendered() -> Result<(Value, Value)> {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/atmos-auth-controller");
    let text = atmos_auth_testenv::helm::template(
        &chart,
        "alerts",
        RELEASE_NS,
        &[
            "--set",
            "prometheusRule.enabled=true",
            "--set",
            "grafanaDashboard.enabled=true",
            "--show-only",
            "templates/prometheusrule.yaml",
            "--show-only",
            "templates/grafana-dashboard.yaml",
        ],
    )?;
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text)?;
    let of = |kind: &str| docs.iter().find(|d| d["kind"] == kind).cloned();
    let rule = of("PrometheusRule").context("no PrometheusRule rendered")?;
    let map = of("ConfigMap").context("no dashboard ConfigMap rendered")?;
    ensure!(
        map["metadata"]["labels"]["grafana_dashboard"] == "1",
        "the dashboard lacks the sidecar label: {map}"
    );
    let json = map["data"]["atmos-auth-controller.json"]
        .as_str()
        .context("no dashboard JSON")?;
    Ok((json!({ "groups": rule["spec"]["groups"] }), serde_json::from_str(json)?))
}

/// A promtool input series: `s` placed so that its scrape is at `t` (seconds of promtool's
/// clock), `values` its value then and after (one a minute).
fn series(s: &Sample, values: &str) -> Value {
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    json!({"series": format!("{}{{{}}}", s.name, labels.join(",")), "values": values})
}

/// `s`'s value as promtool's clock sees it with its scrape at `t`.
fn value_at(s: &Sample, scrape_at: f64, t: f64) -> f64 {
    if s.name.ends_with("_timestamp_seconds") {
        s.value - scrape_at + t
    } else {
        s.value
    }
}

/// Gauges of `scrape` named in `names`, held from minute 0 for `minutes` with the scrape at
/// minute `at_min`.
fn held(scrape: &Scrape, names: &[&str], at_min: u32, minutes: u32) -> Vec<Value> {
    let t = f64::from(at_min) * 60.0;
    scrape
        .samples
        .iter()
        .filter(|s| names.contains(&s.name.as_str()))
        .map(|s| series(s, &format!("{}x{minutes}", value_at(s, scrape.at, t))))
        .collect()
}

/// Counter `name` from `before` to `after`, going on at that rate, a value a minute.
fn extrapolated(before: &Scrape, after: &Scrape, name: &str, minutes: u32) -> Vec<Value> {
    let secs = (after.at - before.at).max(1.0);
    after
        .of(name)
        .map(|s| {
            let start = before.of(name).find(|b| b.labels == s.labels).map_or(0.0, |b| b.value);
            let per_min = (s.value - start) / secs * 60.0;
            series(s, &format!("{start}+{per_min}x{minutes}"))
        })
        .collect()
}

/// Gauge `name` as `scrapes` saw it, one scrape a minute, then the last held: the
/// scenario going on as it was when last scraped. One series per label set of the last
/// scrape (absent before: 0).
fn scraped_in_turn(scrapes: &[Scrape], name: &str, minutes: u32) -> Vec<Value> {
    let Some(last) = scrapes.last() else {
        return Vec::new();
    };
    last.of(name)
        .map(|s| {
            let values: Vec<String> = scrapes
                .iter()
                .map(|sc| sc.of(name).find(|o| o.labels == s.labels).map_or(0.0, |o| o.value))
                .map(|v| v.to_string())
                .collect();
            let held = minutes.saturating_sub(u32::try_from(values.len()).unwrap_or(minutes));
            series(s, &format!("{} {}x{held}", values.join(" "), s.value))
        })
        .collect()
}

/// The STS queue's scenarios, on a controller of their own with a budget of one call a
/// second (`QUEUE_BUDGET`), its own namespace and STS: (an import of Identities at once,
/// scraped until the queue drained; Identities renewing every 5 s, more than the budget
/// serves, scraped once the first renewals queue).
async fn queue_scenarios(cp: &ControlPlane, client: &kube::Client) -> Result<(Vec<Scrape>, Vec<Scrape>)> {
    let ns = namespace(client, "alerts-queue").await?;
    let sts = start_sts(cp);
    let controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &QUEUE_BUDGET)?;
    let fail = |e: anyhow::Error| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text()));
    apply(client, &ns, &profile()).await?;
    wait_for(Duration::from_secs(30), || async {
        Ok(scrape(&controller).await.is_ok())
    })
    .await
    .map_err(fail)?;
    let queue = |s: &Scrape| s.of("atmos_auth_sts_queue_calls").map(|s| s.value).sum::<f64>();

    // Four Identities at once: three wait, served one a second; the queue drains.
    for i in 0..4 {
        apply(client, &ns, &crate::identity(&format!("import-{i}"), "")).await?;
    }
    // Scraped from the first scrape with calls queued (once the controller has seen the
    // Identities) until one at 0.
    let mut drain: Vec<Scrape> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while drain.last().is_none_or(|s| queue(s) > 0.0) {
        ensure!(
            std::time::Instant::now() < deadline,
            "the import's calls did not queue and drain: {:?}",
            drain.iter().map(queue).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s = scrape(&controller).await?;
        if !drain.is_empty() || queue(&s) > 0.0 {
            drain.push(s);
        }
    }

    // Eight Identities renewed 5 s after each issue: 1.6 calls a second fall due, one is
    // served. Scraped once the first renewals are back in line.
    for i in 0..8 {
        let spec = "  identity: acme/short\n  refreshBefore: 55s";
        apply(client, &ns, &crate::identity(&format!("due-{i}"), spec)).await?;
    }
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut overloaded = Vec::new();
    for _ in 0..5 {
        overloaded.push(scrape(&controller).await?);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    ensure!(
        overloaded.iter().all(|s| queue(s) > 0.0),
        "the queue emptied while renewals fell due faster than the budget: {:?}\n{}",
        overloaded.iter().map(queue).collect::<Vec<_>>(),
        log_tail(&controller.log_text())
    );
    Ok((drain, overloaded))
}

/// An expected alert: its labels (with `severity`) and its annotations expanded.
fn alert(rules: &Value, name: &str, labels: &[(&str, &str)]) -> Result<Value> {
    let rule = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .find(|r| r["alert"] == name)
        .with_context(|| format!("no rule {name}"))?;
    let mut all: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    let annotations: BTreeMap<String, String> = rule["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| Ok((k.clone(), expand(v.as_str().unwrap_or_default(), &all)?)))
        .collect::<Result<_>>()?;
    for (k, v) in rule["labels"].as_object().into_iter().flatten() {
        all.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
    }
    Ok(json!({"exp_labels": all, "exp_annotations": annotations}))
}

fn case(name: &str, input: Vec<Value>, checks: Vec<(u32, &str, Vec<Value>)>) -> Value {
    let tests: Vec<Value> = checks
        .into_iter()
        .map(|(min, alert, exp)| json!({"eval_time": format!("{min}m"), "alertname": alert, "exp_alerts": exp}))
        .collect();
    json!({"name": name, "interval": "1m", "input_series": input, "alert_rule_test": tests})
}

fn labels_of<'a>(s: &'a Sample, keys: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    keys.iter()
        .filter_map(|k| s.labels.get(*k).map(|v| (*k, v.as_str())))
        .collect()
}

/// Runs `promtool` with `args` in `dir`; its output on failure.
fn promtool(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .context("promtool is not installed: tests/run.sh installs it (Debian package `prometheus`)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "promtool {args:?} failed:\n{text}");
    Ok(text)
}

/// What the exporter serves: each metric with the labels seen on it, across `scrapes`.
fn served(scrapes: &[&Scrape]) -> BTreeMap<String, BTreeSet<String>> {
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in scrapes.iter().flat_map(|s| &s.samples) {
        known
            .entry(s.name.clone())
            .or_default()
            .extend(s.labels.keys().cloned());
    }
    known
}

/// Every metric `expr` (and its legend) names is served, with every label it uses.
fn names_exist(known: &BTreeMap<String, BTreeSet<String>>, what: &str, expr: &str, legend: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let metrics = metrics_in(expr);
    let mut labels = BTreeSet::new();
    for m in &metrics {
        match known.get(m) {
            Some(l) => labels.extend(l.iter().cloned()),
            None => problems.push(format!("{what}: metric {m} is not served")),
        }
    }
    if metrics.is_empty() {
        problems.push(format!("{what}: names no atmos_auth_ metric: {expr}"));
    }
    for l in labels_in(expr).union(&legend_labels(legend)) {
        if !labels.contains(l) {
            problems.push(format!("{what}: label {l} is on none of {metrics:?}"));
        }
    }
    problems
}

#[tokio::test]
async fn the_charts_alerts_fire_and_stay_silent_on_series_scraped_from_the_exporter() -> Result<()> {
    // Fail, not skip, without promtool: the test command installs it.
    promtool(Path::new("."), &["--version"])?;
    let (rules, dashboard) = rendered()?;
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "alerts").await?;
    let sts = start_sts(cp);
    let controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
    let fail = |e: anyhow::Error| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text()));
    apply(&client, &ns, &profile()).await?;
    apply(&client, &ns, &crate::identity("steady", "")).await?;
    // Renewed 5 s after each issue, 55 s before expiry.
    apply(
        &client,
        &ns,
        &crate::identity("renewing", "  identity: acme/short\n  refreshBefore: 55s"),
    )
    .await?;
    // e2e-audit demands an external id: STS refuses it (AccessDenied).
    apply(&client, &ns, &crate::identity("refused", "  identity: acme/audit")).await?;
    let long = Duration::from_secs(60);
    for (name, reason) in [
        ("steady", "CredentialsIssued"),
        ("renewing", "CredentialsIssued"),
        ("refused", "AccessDenied"),
    ] {
        wait_reason(&client, &ns, name, reason, long).await.map_err(fail)?;
    }
    let healthy_before = scrape(&controller).await?;
    // One renewal served, on time.
    wait_for(Duration::from_secs(20), || async {
        Ok(scrape(&controller)
            .await?
            .of("atmos_auth_renewals_total")
            .any(|s| s.labels["reason"] == "Renewing"))
    })
    .await
    .map_err(fail)?;
    let healthy = scrape(&controller).await?;

    // STS throttles every call: the renewal is missed; scraped once past the point the
    // expiry alert is about (less than half the margin from renewal to expiry left).
    // The queue's scenarios meanwhile, on their own controller and STS.
    let throttle = async {
        sts.set_fault(Some(Fault::Throttling));
        let renewing = wait_reason(&client, &ns, "renewing", "Throttling", Duration::from_secs(30))
            .await
            .map_err(fail)?;
        let status = renewing.status.context("no status")?;
        let at = |t: Option<String>| -> Result<f64> {
            let t: jiff::Timestamp = t.context("no time in status")?.parse()?;
            Ok(t.as_millisecond() as f64 / 1000.0)
        };
        let (expiry, renewal) = (at(status.expiration)?, at(status.renewal_time)?);
        let alert_point = expiry - 0.5 * (expiry - renewal);
        ensure!(
            now() < expiry - 5.0,
            "the credentials expire before the scrape could be taken"
        );
        tokio::time::sleep(Duration::from_secs_f64((alert_point - now() + 2.0).max(0.0))).await;
        let throttled = scrape(&controller).await?;
        ensure!(throttled.at < expiry, "scraped after expiry");
        sts.set_fault(None);
        Ok::<_, anyhow::Error>(throttled)
    };
    let (throttled, (drain, overloaded)) = tokio::try_join!(throttle, queue_scenarios(cp, &client))?;

    // A replica that waits for a Lease held elsewhere: not leading.
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let mut lease = Lease::default();
    lease.metadata.name = Some("alerts-held".into());
    lease.spec = Some(LeaseSpec {
        holder_identity: Some("elsewhere".into()),
        lease_duration_seconds: Some(3600),
        acquire_time: Some(MicroTime(jiff::Timestamp::now())),
        renew_time: Some(MicroTime(jiff::Timestamp::now())),
        ..Default::default()
    });
    leases.create(&PostParams::default(), &lease).await?;
    let args = [
        "--leader-election",
        "--lease-namespace",
        &ns,
        "--lease-name",
        "alerts-held",
    ];
    let standby = ControllerProcess::start(cp, &ns, &sts.endpoint(), &args)?;
    wait_for(Duration::from_secs(30), || async { Ok(scrape(&standby).await.is_ok()) })
        .await
        .map_err(fail)?;
    let waiting = scrape(&standby).await?;

    // The scenarios did what the cases below say of them.
    let leader = |s: &Scrape| s.of("atmos_auth_leader").map(|s| s.value).next();
    ensure!(
        leader(&healthy) == Some(1.0) && leader(&waiting) == Some(0.0),
        "leader gauges: {healthy:?} {waiting:?}"
    );
    let ready = |cond: &str| -> Vec<&Sample> {
        healthy
            .of("atmos_auth_identity_ready_status")
            .filter(|s| s.labels["condition"] == cond)
            .collect()
    };
    let (not_ready, is_ready) = (ready("False"), ready("True"));
    ensure!(
        not_ready.len() == 1 && not_ready[0].labels["name"] == "refused" && is_ready.len() == 2,
        "ready series: {:?}",
        healthy.of("atmos_auth_identity_ready_status").collect::<Vec<_>>()
    );

    let mut cases = Vec::new();
    // Not Ready for 15 minutes: `refused` fires, the Ready ones do not; not before 15 minutes.
    let ready_series = ["atmos_auth_identity_ready_status"];
    let firing: Vec<Value> = not_ready
        .iter()
        .map(|s| {
            alert(
                &rules,
                "AtmosAuthIdentityNotReady",
                &labels_of(s, &["namespace", "name"]),
            )
        })
        .collect::<Result<_>>()?;
    cases.push(case(
        "an Identity not Ready (refused by STS) beside Ready ones",
        held(&healthy, &ready_series, 0, 30),
        vec![
            (14, "AtmosAuthIdentityNotReady", vec![]),
            (16, "AtmosAuthIdentityNotReady", firing),
        ],
    ));
    // Expiring without a renewal: evaluated at the scrape.
    let times = [
        "atmos_auth_identity_expiration_timestamp_seconds",
        "atmos_auth_identity_renewal_timestamp_seconds",
    ];
    let expiring = throttled
        .of(times[0])
        .find(|s| s.labels["name"] == "renewing")
        .context("no expiry series for renewing while throttled")?;
    cases.push(case(
        "renewals served: nothing expiring",
        held(&healthy, &times, 10, 20),
        vec![(10, "AtmosAuthCredentialsExpiringWithoutRenewal", vec![])],
    ));
    cases.push(case(
        "throttled past the renewal time: expiring without renewal",
        held(&throttled, &times, 10, 20),
        vec![(
            10,
            "AtmosAuthCredentialsExpiringWithoutRenewal",
            vec![alert(
                &rules,
                "AtmosAuthCredentialsExpiringWithoutRenewal",
                &labels_of(expiring, &["namespace", "name", "identity"]),
            )?],
        )],
    ));
    // Exchanges throttled, going on at the rate scraped.
    let exchanges = "atmos_auth_exchanges_total";
    cases.push(case(
        "exchanges going well",
        extrapolated(&healthy_before, &healthy, exchanges, 30),
        vec![(20, "AtmosAuthExchangesThrottled", vec![])],
    ));
    cases.push(case(
        "exchanges throttled",
        extrapolated(&healthy, &throttled, exchanges, 30),
        vec![(
            20,
            "AtmosAuthExchangesThrottled",
            vec![alert(&rules, "AtmosAuthExchangesThrottled", &[("cloud", "aws")])?],
        )],
    ));
    // No leader: the waiting replica alone; the leading one.
    let leader_series = ["atmos_auth_leader"];
    cases.push(case(
        "a replica leads",
        held(&healthy, &leader_series, 0, 20),
        vec![(10, "AtmosAuthNoLeader", vec![])],
    ));
    cases.push(case(
        "the only replica waits for a Lease held elsewhere",
        held(&waiting, &leader_series, 0, 20),
        vec![(10, "AtmosAuthNoLeader", vec![alert(&rules, "AtmosAuthNoLeader", &[])?])],
    ));
    // The STS queue: an import's burst drains; renewals falling due faster than the budget
    // serves keep calls waiting.
    let queue_series = "atmos_auth_sts_queue_calls";
    cases.push(case(
        "the queue stays empty",
        held(&healthy, &[queue_series], 0, 30),
        vec![(20, "AtmosAuthStsQueueNotDraining", vec![])],
    ));
    cases.push(case(
        "an import's burst queues and drains",
        scraped_in_turn(&drain, queue_series, 30),
        vec![(20, "AtmosAuthStsQueueNotDraining", vec![])],
    ));
    cases.push(case(
        "renewals fall due faster than the budget serves",
        scraped_in_turn(&overloaded, queue_series, 30),
        vec![
            (10, "AtmosAuthStsQueueNotDraining", vec![]),
            (
                25,
                "AtmosAuthStsQueueNotDraining",
                vec![alert(&rules, "AtmosAuthStsQueueNotDraining", &[])?],
            ),
        ],
    ));

    // Every alert has a firing and a silent case.
    let names: BTreeSet<&str> = rules["groups"][0]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for name in &names {
        let checks = cases
            .iter()
            .flat_map(|c| c["alert_rule_test"].as_array().into_iter().flatten())
            .filter(|t| t["alertname"] == *name);
        let (fires, silent) = checks.fold((false, false), |(f, s), t| {
            let empty = t["exp_alerts"].as_array().is_none_or(Vec::is_empty);
            (f || !empty, s || empty)
        });
        ensure!(
            fires && silent,
            "alert {name}: firing case {fires}, silent case {silent}"
        );
    }

    // promtool: the rules as the chart renders them, then the cases.
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("rules.yaml"), serde_json::to_string_pretty(&rules)?)?;
    let tests = json!({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": cases});
    std::fs::write(dir.path().join("tests.yaml"), serde_json::to_string_pretty(&tests)?)?;
    promtool(dir.path(), &["check", "rules", "rules.yaml"])?;
    promtool(dir.path(), &["test", "rules", "tests.yaml"]).with_context(|| {
        format!(
            "on {}",
            std::fs::read_to_string(dir.path().join("tests.yaml")).unwrap_or_default()
        )
    })?;

    // Every metric and label the rules and the dashboard name is served.
    let mut scrapes = vec![&healthy_before, &healthy, &throttled, &waiting];
    scrapes.extend(drain.iter().chain(&overloaded));
    let known = served(&scrapes);
    let mut problems = Vec::new();
    for r in rules["groups"][0]["rules"].as_array().into_iter().flatten() {
        let what = format!("rule {}", r["alert"]);
        problems.extend(names_exist(&known, &what, r["expr"].as_str().unwrap_or_default(), ""));
    }
    let panels = dashboard["panels"].as_array().context("no panels")?;
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let what = format!("panel {}", p["title"]);
            let (expr, legend) = (
                t["expr"].as_str().unwrap_or_default(),
                t["legendFormat"].as_str().unwrap_or_default(),
            );
            problems.extend(names_exist(&known, &what, expr, legend));
        }
    }
    if !problems.is_empty() {
        bail!("{}\nserved: {known:#?}", problems.join("\n"));
    }
    Ok(())
}
