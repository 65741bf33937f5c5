//! STS quotas are per account and region: a `Throttling` answer for one account must not slow
//! another. One controller serves two namespaces whose roles live in two accounts; the local
//! STS throttles only account A while both namespaces ask for renewals at once. B's renewals
//! keep at least 90 % of the configured rate (`--sts-rate-limit`), measured from the times the
//! STS saw B's calls: neither A's back-off nor A's refreshes waiting for A's budget (which hold
//! no reconcile slot) may hold B back.

use std::time::Duration;

use anyhow::{Result, ensure};
use atmos_auth_controller::api::Identity;
use atmos_auth_controller::output::labels::RENEW_REQUESTED_AT;
use atmos_auth_testenv::sts::{LocalSts, OidcIssuer, RateLimit, RoleConfig, WebIdentityTrust};
use futures::StreamExt;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::fixture::*;
use crate::{identity, profile};

const B_ACCOUNT: &str = "210987654321";
const B_ROLE: &str = "arn:aws:iam::210987654321:role/e2e-fair-b";
/// The controller's `--sts-rate-limit`, calls per second.
const RATE: f64 = 10.0;
/// Its `--sts-burst`: half a second's worth, so that a controller starved of CPU for a moment
/// on a busy CI machine loses no budget (the rate below is measured net of the burst).
const BURST: usize = 10;
/// Identities per namespace: A's are two-link chains (two calls each), B's one link.
const A_COUNT: usize = 16;
const B_COUNT: usize = 60;

fn b_profile() -> String {
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
    acme/b:
      default: true
      kind: aws/assume-role
      via: {{provider: cluster-oidc}}
      principal: {{assume_role: "{B_ROLE}", duration: 15m, region: us-east-2}}
"#
    )
}

/// The tests' STS, also serving account B with one role trusting `terraform`.
fn two_account_sts(cp: &atmos_auth_testenv::controlplane::ControlPlane) -> Result<LocalSts> {
    let mut config = sts_config();
    config.other_accounts.push(B_ACCOUNT.to_owned());
    let mut role = RoleConfig::new(B_ROLE);
    role.web_identity = Some(WebIdentityTrust {
        audiences: vec!["sts.amazonaws.com".into()],
        subjects: vec!["system:serviceaccount:e2e-*:terraform".into()],
    });
    config.roles.push(role);
    let issuer = OidcIssuer {
        url: cp.issuer().to_owned(),
        ca_pem: cp.ca_pem().to_owned(),
    };
    LocalSts::start(config, issuer)
}

/// Waits until every Identity of `ns` satisfies `done`.
async fn all(api: &Api<Identity>, n: usize, timeout: Duration, done: impl Fn(&Identity) -> bool) -> Result<()> {
    wait_for(timeout, || async {
        let list = api.list(&Default::default()).await?;
        Ok(list.items.len() == n && list.items.iter().all(&done))
    })
    .await
}

#[tokio::test]
async fn a_throttled_account_leaves_another_accounts_renewals_their_rate() -> Result<()> {
    // A rate measured to 90 %: beside the fleets and kills it lost 10 % to CPU alone.
    let _heavy = crate::serial::heavy().await;
    let cp = control_plane();
    let client = cp.client().await?;
    let a = namespace(&client, "fair-a").await?;
    let b = namespace(&client, "fair-b").await?;
    let sts = two_account_sts(cp)?;
    let rate = RATE.to_string();
    let controller = ControllerProcess::start(
        cp,
        &format!("{a},{b}"),
        &sts.endpoint(),
        &[
            "--sts-rate-limit",
            &rate,
            "--sts-burst",
            &BURST.to_string(),
            "--max-concurrent-reconciles",
            "16",
        ],
    )?;
    apply(&client, &a, &profile("15m")).await?;
    apply(&client, &b, &b_profile()).await?;
    for i in 0..A_COUNT {
        apply(&client, &a, &identity(&format!("a-{i}"), "  identity: acme/network")).await?;
    }
    for i in 0..B_COUNT {
        apply(&client, &b, &identity(&format!("b-{i}"), "")).await?;
    }
    let (a_api, b_api) = (
        Api::<Identity>::namespaced(client.clone(), &a),
        Api::<Identity>::namespaced(client.clone(), &b),
    );
    let issued = |i: &Identity| ready(i).is_some_and(|(s, r, _)| s == "True" && r == "CredentialsIssued");
    for (api, n) in [(&a_api, A_COUNT), (&b_api, B_COUNT)] {
        all(api, n, Duration::from_secs(90), issued)
            .await
            .map_err(|e| e.context(log_tail(&controller.log_text())))?;
    }

    // A renewal request within the minimum interval after a refresh is answered by it: wait
    // it out, so that each request below costs one call.
    tokio::time::sleep(atmos_auth_controller::settings::MIN_UNREQUESTED_REFRESH + Duration::from_secs(1)).await;

    // Account A's quota: two calls a second. Then both namespaces ask for renewals at once.
    sts.set_account_rate_limit(ACCOUNT, Some(RateLimit { rate: 2.0, burst: 1 }));
    sts.reset_calls();
    let asked = jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {RENEW_REQUESTED_AT: &asked}}});
    let requests = (0..B_COUNT).flat_map(|i| {
        let a = (i < A_COUNT).then(|| (a_api.clone(), format!("a-{i}")));
        a.into_iter().chain([(b_api.clone(), format!("b-{i}"))])
    });
    let results: Vec<_> = futures::stream::iter(requests)
        .map(|(api, name)| {
            let patch = patch.clone();
            async move { api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let served = |i: &Identity| {
        i.status
            .as_ref()
            .is_some_and(|s| s.renew_requested_at.as_deref() == Some(asked.as_str()) && s.renew_served_at.is_some())
    };
    let waited = all(&b_api, B_COUNT, Duration::from_secs(30), served).await;

    let calls = sts.role_calls();
    let mut b_times: Vec<u64> = calls
        .iter()
        .filter(|c| c.role_arn == B_ROLE && c.error.is_none())
        .map(|c| c.at_millis)
        .collect();
    b_times.sort_unstable();
    let a_throttled = calls
        .iter()
        .filter(|c| c.role_arn.contains(ACCOUNT) && c.error.as_deref() == Some("Throttling"))
        .count();
    ensure!(a_throttled > 0, "account A was never throttled: {:?}", sts.calls());
    let (first, last) = (b_times.first().copied(), b_times.last().copied());
    let span = last.zip(first).map_or(0, |(l, f)| l - f) as f64 / 1000.0;
    // A token bucket lets `BURST` go at once, then one per 1/rate: n calls span (n - BURST) / rate.
    let achieved = (b_times.len().saturating_sub(BURST)) as f64 / span.max(1e-3);
    let gaps: Vec<u64> = b_times.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "FAIR account B: {} renewals in {span:.2} s, {achieved:.1}/s of {RATE}/s; account A: {a_throttled} Throttling answers",
        b_times.len()
    );
    ensure!(
        waited.is_ok() && b_times.len() == B_COUNT && achieved >= 0.9 * RATE,
        "B's renewals: {} of {B_COUNT} calls in {span:.2} s, {achieved:.1}/s (want at least {:.0}/s \
         of the configured {RATE}/s) while account A got {a_throttled} Throttling answers; \
         ms between B's calls: {gaps:?}\n{}",
        b_times.len(),
        0.9 * RATE,
        log_tail(&controller.log_text())
    );
    Ok(())
}
