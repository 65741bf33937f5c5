//! ClusterAuthProfiles with Azure and GCP providers: an Identity in a selected namespace
//! naming one is verified at the local Entra endpoint / Google STS and IAM Credentials with
//! a real token of its own namespace's ServiceAccount and gets its settings Secret; an
//! Identity in a namespace the profile does not select gets no token and no Secret.

use std::time::Duration;

use anyhow::Result;
use atmos_auth_controller::output::labels;
use atmos_auth_testenv::entra::{EntraConfig, LocalEntra};
use atmos_auth_testenv::gcp::{GcpConfig, LocalGcp, pool_provider_name};
use atmos_auth_testenv::sts::OidcIssuer;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};

use crate::cluster_profiles::apply_cluster_profile;
use crate::fixture::*;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "66666666-7777-8888-9999-000000000000";
const SUBSCRIPTION: &str = "bbbbbbbb-cccc-dddd-eeee-ffffffffffff";
const NUMBER: &str = "210987654321";
const POOL: &str = "cap-pool";
const PROVIDER: &str = "cluster";
const SA: &str = "platform@acme-shared.iam.gserviceaccount.com";

/// The ClusterAuthProfile `name` selecting namespace `selected` by its name label, with
/// `body` (YAML under `spec`: providers and identities).
fn cluster_profile(name: &str, selected: &str, body: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: ClusterAuthProfile\nmetadata: {{name: {name}}}\nspec:\n  \
         namespaceSelector:\n    matchExpressions:\n      - {{key: kubernetes.io/metadata.name, operator: In, values: [{selected}]}}\n{body}"
    )
}

fn cluster_identity(name: &str, profile: &str, extra: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: {name}}}\nspec:\n  profile: {profile}\n  profileKind: ClusterAuthProfile\n{extra}\n"
    )
}

fn issuer() -> OidcIssuer {
    let cp = control_plane();
    OidcIssuer {
        url: cp.issuer().to_owned(),
        ca_pem: cp.ca_pem().to_owned(),
    }
}

/// Waits for `CredentialsIssued`, showing the controller's log when it does not come.
async fn issued(
    client: &Client,
    ns: &str,
    name: &str,
    controller: &ControllerProcess,
) -> Result<atmos_auth_controller::api::Identity> {
    wait_reason(client, ns, name, "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))
}

/// Namespace `b` is not selected: refused, no token minted for it, no Secret.
async fn refused_unselected(client: &Client, b: &str, profile: &str) -> Result<()> {
    let i = wait_reason(client, b, "tf", "NamespaceNotAllowed", Duration::from_secs(60)).await?;
    let (_, _, message) = ready(&i).unwrap_or_default();
    assert!(
        message.contains(&format!(
            "namespace {b} is not selected by ClusterAuthProfile {profile}"
        )),
        "{message}"
    );
    assert!(
        Api::<Secret>::namespaced(client.clone(), b)
            .get_opt("tf")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn a_cluster_profile_with_an_azure_provider_serves_the_namespaces_it_selects() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let (a, b) = (
        namespace(&client, "capaz-a").await?,
        namespace(&client, "capaz-b").await?,
    );
    let subject = format!("system:serviceaccount:{a}:terraform");
    let entra = LocalEntra::start(EntraConfig::single(TENANT, CLIENT, cp.issuer(), &subject), issuer())?;
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("entra-ca.pem");
    std::fs::write(&ca_file, entra.ca_pem())?;
    let sts = start_sts(cp);
    let (authority, ca_arg) = (
        format!("public={}", entra.authority_host()),
        ca_file.display().to_string(),
    );
    let controller = ControllerProcess::start(
        cp,
        &format!("{a},{b}"),
        &sts.endpoint(),
        &["--azure-authority-host", &authority, "--azure-ca-file", &ca_arg],
    )?;
    let body = format!(
        "  providers:\n    entra:\n      kind: azure/oidc\n      spec: {{tenant_id: {TENANT}, client_id: {CLIENT}, service_account: terraform}}\n  \
         identities:\n    azure/platform:\n      default: true\n      kind: azure/subscription\n      via: {{provider: entra}}\n      \
         principal: {{subscription_id: {SUBSCRIPTION}}}\n"
    );
    apply_cluster_profile(&client, &cluster_profile("e2e-cap-azure", &a, &body)).await?;
    apply(&client, &a, &cluster_identity("tf", "e2e-cap-azure", "")).await?;
    apply(
        &client,
        &a,
        &cluster_identity("file", "e2e-cap-azure", "  federatedToken: {delivery: Secret}"),
    )
    .await?;
    apply(&client, &b, &cluster_identity("tf", "e2e-cap-azure", "")).await?;

    let st = issued(&client, &a, "tf", &controller).await?.status.unwrap_or_default();
    assert_eq!(st.chain, ["entra", "azure/platform"]);
    // Entra accepted a real token of namespace a's ServiceAccount.
    let ok = |entra: &LocalEntra| {
        entra
            .assertions()
            .iter()
            .filter(|x| x.error.is_none() && x.subject.as_deref() == Some(subject.as_str()))
            .count()
    };
    assert!(ok(&entra) >= 1, "{:?}", entra.assertions());
    let data = secret_data(&client, &a, "tf").await?;
    assert_eq!(data["ARM_USE_OIDC"], "true");
    assert_eq!(data["AZURE_CLIENT_ID"], CLIENT);
    assert_eq!(data["ARM_SUBSCRIPTION_ID"], SUBSCRIPTION);
    assert_eq!(data["AZURE_AUTHORITY_HOST"], entra.authority_host());
    assert!(!data.contains_key("azure-identity-token"), "{:?}", data.keys());
    let consumer: serde_json::Value = serde_json::from_str(&data["consumer.json"])?;
    assert_eq!(consumer["serviceAccountName"], "terraform");

    // Opted in under the cluster profile: the token file of a's own ServiceAccount.
    issued(&client, &a, "file", &controller).await?;
    let token = secret_data(&client, &a, "file").await?["azure-identity-token"].clone();
    assert_eq!(token.split('.').count(), 3, "a JWT");

    refused_unselected(&client, &b, "e2e-cap-azure").await?;
    let theirs = format!("system:serviceaccount:{b}:terraform");
    let assertions = entra.assertions();
    assert!(
        assertions.iter().all(|x| x.subject.as_deref() != Some(theirs.as_str())),
        "no token of the unselected namespace reached Entra: {assertions:?}"
    );
    assert!(
        !controller.log_text().contains(token.as_str()),
        "the token leaked into the log"
    );

    // Namespace a deselected: its Secrets stay, marked revoked, without the token file or
    // the settings (an Azure Secret's keys are not AWS's fixed ones; they are recorded).
    apply_cluster_profile(&client, &cluster_profile("e2e-cap-azure", "e2e-nothing", &body)).await?;
    wait_reason(&client, &a, "file", "NamespaceNotAllowed", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &a);
    for name in ["file", "tf"] {
        let waited = wait_for(Duration::from_secs(30), || {
            let secrets = secrets.clone();
            async move {
                let s = secrets.get(name).await?;
                Ok(s.annotations().contains_key(labels::REVOKED) && s.data.unwrap_or_default().is_empty())
            }
        })
        .await;
        let left: Vec<String> = secrets.get(name).await?.data.unwrap_or_default().into_keys().collect();
        waited.map_err(|e| anyhow::anyhow!("{name}: {e:#}; keys left: {left:?}"))?;
    }
    Api::<atmos_auth_controller::api::ClusterAuthProfile>::all(client.clone())
        .delete("e2e-cap-azure", &Default::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_cluster_profile_with_a_gcp_provider_serves_the_namespaces_it_selects() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let (a, b) = (
        namespace(&client, "capgcp-a").await?,
        namespace(&client, "capgcp-b").await?,
    );
    let subject = format!("system:serviceaccount:{a}:terraform");
    let gcp = LocalGcp::start(
        GcpConfig::single(NUMBER, POOL, PROVIDER, cp.issuer(), SA, &subject),
        issuer(),
    )?;
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("gcp-ca.pem");
    std::fs::write(&ca_file, gcp.ca_pem())?;
    let sts = start_sts(cp);
    let (sts_url, iam_url, ca_arg) = (gcp.sts_url(), gcp.iam_credentials_url(), ca_file.display().to_string());
    let controller = ControllerProcess::start(
        cp,
        &format!("{a},{b}"),
        &sts.endpoint(),
        &[
            "--gcp-sts-url",
            &sts_url,
            "--gcp-iam-credentials-url",
            &iam_url,
            "--gcp-ca-file",
            &ca_arg,
        ],
    )?;
    let body = format!(
        "  providers:\n    wif:\n      kind: gcp/workload-identity-federation\n      spec:\n        project_number: \"{NUMBER}\"\n        \
         workload_identity_pool_id: {POOL}\n        workload_identity_provider_id: {PROVIDER}\n        service_account: terraform\n  \
         identities:\n    gcp/platform:\n      kind: gcp/service-account\n      via: {{provider: wif}}\n      \
         principal: {{service_account_email: {SA}, lifetime: 15m}}\n    gcp/shared:\n      default: true\n      kind: gcp/project\n      \
         via: {{identity: gcp/platform}}\n      principal: {{project_id: acme-shared, region: europe-west1}}\n"
    );
    apply_cluster_profile(&client, &cluster_profile("e2e-cap-gcp", &a, &body)).await?;
    apply(&client, &a, &cluster_identity("tf", "e2e-cap-gcp", "")).await?;
    apply(&client, &b, &cluster_identity("tf", "e2e-cap-gcp", "")).await?;

    let st = issued(&client, &a, "tf", &controller).await?.status.unwrap_or_default();
    assert_eq!(st.chain, ["wif", "gcp/platform", "gcp/shared"]);
    // STS accepted a real token of namespace a's ServiceAccount; IAM let it impersonate.
    let exchanges = gcp.exchanges();
    assert!(
        exchanges
            .iter()
            .any(|e| e.error.is_none() && e.subject.as_deref() == Some(subject.as_str())),
        "{exchanges:?}"
    );
    assert!(
        gcp.impersonations()
            .iter()
            .any(|i| i.error.is_none() && i.service_account == SA)
    );
    let data = secret_data(&client, &a, "tf").await?;
    let config: serde_json::Value = serde_json::from_str(&data["gcp-credentials.json"])?;
    assert_eq!(config["type"], "external_account");
    assert_eq!(config["audience"], pool_provider_name(NUMBER, POOL, PROVIDER));
    assert_eq!(config["token_url"], gcp.sts_url());
    assert_eq!(data["GOOGLE_CLOUD_PROJECT"], "acme-shared");
    assert_eq!(st.consumer.expect("status.consumer").service_account_name, "terraform");

    refused_unselected(&client, &b, "e2e-cap-gcp").await?;
    let theirs = format!("system:serviceaccount:{b}:terraform");
    assert!(
        gcp.exchanges()
            .iter()
            .all(|e| e.subject.as_deref() != Some(theirs.as_str())),
        "no token of the unselected namespace reached STS"
    );
    Api::<atmos_auth_controller::api::ClusterAuthProfile>::all(client.clone())
        .delete("e2e-cap-gcp", &Default::default())
        .await?;
    Ok(())
}
