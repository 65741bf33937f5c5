//! Azure: the real controller verifies an `azure/oidc` federation at the local Entra endpoint
//! (which checks real kube-apiserver tokens against the control plane's JWKS) and writes the
//! settings Secret; a ServiceAccount the app does not trust shows Entra's code in status.

use std::time::Duration;

use atmos_auth_testenv::entra::{EntraConfig, LocalEntra};
use atmos_auth_testenv::sts::OidcIssuer;

use crate::fixture::*;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SUBSCRIPTION: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

pub(crate) fn azure_profile() -> String {
    format!(
        r#"
apiVersion: auth.atmos.tools/v1alpha1
kind: AuthProfile
metadata: {{name: azure}}
spec:
  providers:
    entra:
      kind: azure/oidc
      spec: {{tenant_id: {TENANT}, client_id: {CLIENT}, service_account: terraform}}
  identities:
    azure/prod:
      default: true
      kind: azure/subscription
      via: {{provider: entra}}
      principal: {{subscription_id: {SUBSCRIPTION}, location: westeurope}}
"#
    )
}

pub(crate) fn azure_identity(name: &str, body: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: {name}}}\nspec:\n  profile: azure\n{body}\n"
    )
}

#[tokio::test]
async fn an_azure_federation_is_verified_at_entra_and_its_settings_written() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "azure-entra").await?;
    service_account(&client, &ns, "untrusted").await?;
    let issuer = OidcIssuer {
        url: cp.issuer().to_owned(),
        ca_pem: cp.ca_pem().to_owned(),
    };
    let subject = format!("system:serviceaccount:{ns}:terraform");
    let entra = LocalEntra::start(EntraConfig::single(TENANT, CLIENT, cp.issuer(), &subject), issuer)?;
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("entra-ca.pem");
    std::fs::write(&ca_file, entra.ca_pem())?;
    let sts = start_sts(cp);
    let authority = format!("public={}", entra.authority_host());
    let ca_arg = ca_file.display().to_string();
    let controller = ControllerProcess::start(
        cp,
        &ns,
        &sts.endpoint(),
        &[
            "--azure-authority-host",
            &authority,
            "--azure-ca-file",
            &ca_arg,
            "--azure-reverify-interval",
            "2s",
        ],
    )?;

    apply(&client, &ns, &azure_profile()).await?;
    apply(
        &client,
        &ns,
        &azure_identity("prod", "  secret: {formats: [env, files]}"),
    )
    .await?;
    let prod = wait_reason(&client, &ns, "prod", "CredentialsIssued", Duration::from_secs(60)).await;
    let prod = prod.map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    let st = prod.status.unwrap_or_default();
    assert_eq!(st.chain, ["entra", "azure/prod"]);

    // The controller presented a real token of the ServiceAccount, and Entra accepted it.
    let assertions = entra.assertions();
    assert!(
        assertions
            .iter()
            .any(|a| a.error.is_none() && a.subject.as_deref() == Some(subject.as_str()) && a.jti.is_some()),
        "{assertions:?}"
    );

    // Settings only: no token at rest, the pod's projected token named.
    let data = secret_data(&client, &ns, "prod").await?;
    assert_eq!(data["ARM_USE_OIDC"], "true");
    assert_eq!(data["ARM_CLIENT_ID"], CLIENT);
    assert_eq!(data["AZURE_TENANT_ID"], TENANT);
    assert_eq!(data["ARM_SUBSCRIPTION_ID"], SUBSCRIPTION);
    assert_eq!(data["AZURE_AUTHORITY_HOST"], entra.authority_host());
    assert_eq!(
        data["AZURE_FEDERATED_TOKEN_FILE"],
        "/var/run/secrets/azure/tokens/azure-identity-token"
    );
    assert!(!data.contains_key("azure-identity-token"), "{:?}", data.keys());
    let consumer: serde_json::Value = serde_json::from_str(&data["consumer.json"])?;
    assert_eq!(consumer["serviceAccountName"], "terraform");
    assert_eq!(consumer["audience"], "api://AzureADTokenExchange");
    assert!(data["azure.env"].contains(&format!("ARM_CLIENT_ID={CLIENT}\n")));
    // Status names what a consumer pod needs.
    let consumer_status = st.consumer.clone().expect("status.consumer");
    assert_eq!(consumer_status.service_account_name, "terraform");
    assert_eq!(
        consumer_status.token_path,
        "/var/run/secrets/azure/tokens/azure-identity-token"
    );

    // Re-verified at the interval (2 s here) without rewriting the unchanged Secret.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(client.clone(), &ns);
    let version = secrets.get("prod").await?.metadata.resource_version;
    let verified = |entra: &LocalEntra| {
        entra
            .assertions()
            .iter()
            .filter(|a| a.error.is_none() && a.subject.as_deref() == Some(subject.as_str()))
            .count()
    };
    let before = verified(&entra);
    wait_for(Duration::from_secs(30), || {
        let n = verified(&entra);
        async move { Ok(n >= before + 2) }
    })
    .await?;
    assert_eq!(
        secrets.get("prod").await?.metadata.resource_version,
        version,
        "rewritten"
    );
    let renewed: kube::Api<atmos_auth_controller::api::Identity> = kube::Api::namespaced(client.clone(), &ns);
    let later = renewed.get("prod").await?.status.unwrap_or_default();
    assert_ne!(
        later.renewal_time, st.renewal_time,
        "the status follows the re-verification"
    );

    // Opt-in: the token file in the Secret, a real token Entra accepts.
    apply(
        &client,
        &ns,
        &azure_identity(
            "file",
            "  federatedToken: {delivery: Secret}\n  secret: {mountPath: /azure}",
        ),
    )
    .await?;
    wait_reason(&client, &ns, "file", "CredentialsIssued", Duration::from_secs(60)).await?;
    let data = secret_data(&client, &ns, "file").await?;
    assert_eq!(data["AZURE_FEDERATED_TOKEN_FILE"], "/azure/azure-identity-token");
    let token = &data["azure-identity-token"];
    assert_eq!(token.split('.').count(), 3, "a JWT");

    // A ServiceAccount no federated credential names: Entra's code and a specific reason.
    apply(
        &client,
        &ns,
        &azure_identity("untrusted", "  serviceAccountName: untrusted"),
    )
    .await?;
    let bad = wait_reason(
        &client,
        &ns,
        "untrusted",
        "FederatedCredentialNotFound",
        Duration::from_secs(60),
    )
    .await?;
    let (_, _, message) = ready(&bad).unwrap_or_default();
    assert!(message.contains("AADSTS70021"), "{message}");
    assert!(!message.contains("eyJ"), "no token in status: {message}");
    // The secrets Entra saw never reach the controller's log.
    let log = controller.log_text();
    assert!(!log.contains(token.as_str()), "the token file leaked into the log");
    for issued in entra.secrets_seen() {
        assert!(!log.contains(&issued), "an access token leaked into the log");
    }
    Ok(())
}
