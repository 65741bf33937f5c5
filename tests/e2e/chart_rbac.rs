//! The controller with exactly the RBAC the Helm chart grants: the chart is rendered and
//! applied, the controller runs out of cluster with its ServiceAccount's token, and still
//! issues and renews a Secret in a namespace whose admin granted it one ServiceAccount.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::fixture::*;
use crate::{identity, profile};

const RELEASE_NS: &str = "e2e-chart-rbac-system";

#[tokio::test]
async fn the_controller_renews_with_only_the_charts_rbac() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "chart-rbac").await?;

    // The chart as installed, admission policies included (its Secret policy binds this
    // release's ServiceAccount; CRDs are already there).
    kubectl(cp, &["create", "namespace", RELEASE_NS], None)?;
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/atmos-auth-controller");
    let rendered = atmos_auth_testenv::helm::template(&chart, "aac", RELEASE_NS, &["--set", "crds.install=false"])?;
    kubectl(
        cp,
        &["apply", "--server-side", "-n", RELEASE_NS, "-f", "-"],
        Some(&rendered),
    )?;

    // The namespace admin lets the controller mint tokens for `terraform` only.
    let grant = terraform_token_grant(&ns, "aac-atmos-auth-controller", RELEASE_NS);
    kubectl(cp, &["apply", "-f", "-"], Some(&grant))?;
    service_account(&client, &ns, "other").await?;

    // The chart's ServiceAccount's token, in a kubeconfig of its own.
    let kubeconfig = service_account_kubeconfig(
        cp,
        &client,
        (RELEASE_NS, "aac-atmos-auth-controller"),
        "chart-controller",
        3600,
    )
    .await?;

    let sts = start_sts(cp);
    let kc = kubeconfig.display().to_string();
    let controller = ControllerProcess::start_with_kubeconfig(
        &kc,
        &ns,
        &sts.endpoint(),
        &[
            "--leader-election",
            "--lease-namespace",
            RELEASE_NS,
            "--admission-policy-prefix",
            "aac-atmos-auth-controller",
        ],
    )?;
    apply(&client, &ns, &profile("30s")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    apply(&client, &ns, &identity("other", "  serviceAccountName: other")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let other = wait_reason(&client, &ns, "other", "TokenRequestForbidden", Duration::from_secs(60))
        .await
        .map_err(|e| e.context(log_tail(&controller.log_text())))?;
    let msg = ready(&other).unwrap_or_default().2;
    assert!(
        msg.contains("atmos-auth-controller-token-creator") && msg.contains(&ns),
        "{msg}"
    );

    // A renewal happens with these rights too.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let issued = || issued_at(&secrets, "admin");
    let first = issued().await?;
    wait_for(Duration::from_secs(45), || async { Ok(issued().await? != first) }).await?;
    Ok(())
}
