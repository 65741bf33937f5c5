//! `/metrics` lists every namespace, Identity and expiry: it is served over HTTPS only, to
//! callers the API server authenticates (TokenReview) and authorizes (`get` on the
//! non-resource URL `/metrics`, the chart's `-metrics-reader` ClusterRole), with the probes
//! on a plain port apart.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::fixture::*;

/// GET `/metrics` over HTTPS (the certificate is the controller's own, self-signed) with
/// `token`; the status code.
async fn scrape(controller: &ControllerProcess, token: Option<&str>) -> Result<(u16, String)> {
    let https = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut req = https.get(format!("https://{}/metrics", controller.metrics));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

#[tokio::test]
async fn metrics_are_served_over_https_to_authorized_callers_only() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "metrics-auth").await?;
    let sts = start_sts(cp);
    let controller =
        ControllerProcess::start_with_env(cp, &ns, &sts.endpoint(), &[], &[("ATMOS_AUTH_METRICS_PLAIN", "false")])?;
    service_account(&client, &ns, "scraper").await?;
    service_account(&client, &ns, "stranger").await?;
    let binding = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {ns}-scraper}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {CHART_FULLNAME}-metrics-reader}}\n\
         subjects: [{{kind: ServiceAccount, name: scraper, namespace: {ns}}}]\n"
    );
    kubectl(cp, &["apply", "--server-side", "-f", "-"], Some(&binding))?;
    let scraper = service_account_token(&client, &ns, "scraper").await?;
    let stranger = service_account_token(&client, &ns, "stranger").await?;
    let fail = |e: anyhow::Error| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text()));

    // No token: 401, once the server is up.
    wait_for(Duration::from_secs(30), || async {
        Ok(scrape(&controller, None).await?.0 == 401)
    })
    .await
    .context("no 401 without a token over HTTPS")
    .map_err(fail)?;
    let (code, _) = scrape(&controller, Some("not-a-token")).await?;
    assert_eq!(code, 401, "an unknown token");
    let (code, body) = scrape(&controller, Some(&stranger)).await?;
    assert_eq!(code, 403, "a ServiceAccount without the right: {body}");
    // The reader: the metrics (RBAC may take a moment to reach the authorizer).
    wait_for(Duration::from_secs(30), || async {
        Ok(scrape(&controller, Some(&scraper)).await?.0 == 200)
    })
    .await
    .context("the reader was not served")
    .map_err(fail)?;
    let (_, text) = scrape(&controller, Some(&scraper)).await?;
    assert!(text.contains("# TYPE atmos_auth_"), "{text}");

    // HTTPS only on the metrics port; the probes on their own plain port, without metrics.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/metrics", controller.metrics))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| !r.status().is_success()),
        "served over plain HTTP: {plain:?}"
    );
    let probe = |path: &str| {
        reqwest::Client::new()
            .get(format!("http://{}{path}", controller.admin))
            .send()
    };
    assert_eq!(probe("/healthz").await?.status().as_u16(), 200);
    assert_eq!(
        probe("/metrics").await?.status().as_u16(),
        404,
        "metrics on the probes' port"
    );
    kubectl(cp, &["delete", "clusterrolebinding", &format!("{ns}-scraper")], None)?;
    Ok(())
}
