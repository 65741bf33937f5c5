//! azure-identity for Python, a real Azure SDK, gets tokens from the local Entra endpoint with
//! only the Secret's settings and the token file, plus the two extras the note allows: a CA
//! bundle (`REQUESTS_CA_BUNDLE`) and `disable_instance_discovery=True` (MSAL would otherwise
//! ask the public cloud which authorities exist). Rotation: in the default mode the test plays
//! the kubelet, rewriting the projected token file, and the SDK's next process presents the
//! new token (its `jti` in the endpoint's log); opted in, a forced renewal writes a new token
//! file into the Secret and a fresh SDK process presents it. (One process across a rewrite
//! re-reads the file only after 600 s, azure-identity's interval: the soak command's case.)

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use atmos_auth_testenv::entra::{EntraConfig, LocalEntra};
use atmos_auth_testenv::sts::OidcIssuer;
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, Client};
use tokio::process::Command;

use crate::fixture::*;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

/// Gets one ARM token with WorkloadIdentityCredential, configured from the environment.
const SDK: &str = r#"
import sys
from azure.identity import WorkloadIdentityCredential
cred = WorkloadIdentityCredential(disable_instance_discovery=True)
tok = cred.get_token("https://management.azure.com/.default")
print("ok", tok.expires_on)
"#;

/// Runs [`SDK`] with only the Secret's keys (the `AZURE_*`/`ARM_*` settings), PATH and
/// HOME, and the CA bundle.
async fn sdk(settings: &BTreeMap<String, String>, ca_file: &Path) -> Result<()> {
    let mut cmd = Command::new("python3");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("REQUESTS_CA_BUNDLE", ca_file)
        .envs(
            settings
                .iter()
                .filter(|(k, _)| k.starts_with("AZURE_") || k.starts_with("ARM_")),
        )
        .args(["-c", SDK])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .context("azure-identity timed out")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success() && stdout.starts_with("ok "),
        "azure-identity failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// What the kubelet does for a projected token volume: a fresh token of `sa` for `audience`.
async fn kubelet_token(client: &Client, ns: &str, sa: &str, audience: &str) -> Result<String> {
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.to_owned()],
            expiration_seconds: Some(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let tr = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &Default::default(), &req)
        .await?;
    Ok(tr.status.map(|s| s.token).unwrap_or_default())
}

/// A JWT's `jti`, read without verification (the endpoint verified it).
fn jti(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["jti"].as_str().map(str::to_owned)
}

/// Whether the endpoint issued an access token for an assertion with `jti`.
fn presented(entra: &LocalEntra, jti: &str) -> bool {
    entra
        .assertions()
        .iter()
        .any(|a| a.error.is_none() && a.jti.as_deref() == Some(jti))
}

#[tokio::test]
async fn azure_identity_gets_tokens_with_the_secrets_settings_across_rotations() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "azure-sdk").await?;
    let subject = format!("system:serviceaccount:{ns}:terraform");
    let issuer = OidcIssuer {
        url: cp.issuer().to_owned(),
        ca_pem: cp.ca_pem().to_owned(),
    };
    let entra = LocalEntra::start(EntraConfig::single(TENANT, CLIENT, cp.issuer(), &subject), issuer)?;
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("entra-ca.pem");
    std::fs::write(&ca_file, entra.ca_pem())?;
    let projected = dir.path().join("projected");
    let mounted = dir.path().join("secret");
    std::fs::create_dir_all(&projected)?;
    std::fs::create_dir_all(&mounted)?;
    let sts = start_sts(cp);
    let authority = format!("public={}", entra.authority_host());
    let ca_arg = ca_file.display().to_string();
    let _controller = ControllerProcess::start(
        cp,
        &ns,
        &sts.endpoint(),
        &["--azure-authority-host", &authority, "--azure-ca-file", &ca_arg],
    )?;
    apply(&client, &ns, &super::azure::azure_profile()).await?;

    // Default: settings only, pointing at the pod's projected token (here, a directory the
    // test fills as the kubelet would).
    let body = format!("  federatedToken: {{mountPath: {}}}", projected.display());
    apply(&client, &ns, &super::azure::azure_identity("projected", &body)).await?;
    wait_reason(&client, &ns, "projected", "CredentialsIssued", Duration::from_secs(60)).await?;
    let settings = secret_data(&client, &ns, "projected").await?;
    let consumer: serde_json::Value = serde_json::from_str(&settings["consumer.json"])?;
    let audience = consumer["audience"].as_str().unwrap_or_default();
    let file = projected.join("azure-identity-token");
    assert_eq!(settings["AZURE_FEDERATED_TOKEN_FILE"], file.display().to_string());
    for round in 0..2 {
        let token = kubelet_token(&client, &ns, "terraform", audience).await?;
        std::fs::write(&file, &token)?;
        sdk(&settings, &ca_file).await?;
        let id = jti(&token).context("a kube-apiserver token has a jti")?;
        assert!(presented(&entra, &id), "round {round}: the SDK did not present {id}");
    }

    // Opt-in: the token file is in the Secret (here, copied where its volume would be).
    let body = format!(
        "  federatedToken: {{delivery: Secret}}\n  secret: {{mountPath: {}}}",
        mounted.display()
    );
    apply(&client, &ns, &super::azure::azure_identity("file", &body)).await?;
    wait_reason(&client, &ns, "file", "CredentialsIssued", Duration::from_secs(60)).await?;
    let first = secret_data(&client, &ns, "file").await?;
    std::fs::write(mounted.join("azure-identity-token"), &first["azure-identity-token"])?;
    sdk(&first, &ca_file).await?;
    let first_jti = jti(&first["azure-identity-token"]).context("jti")?;
    assert!(presented(&entra, &first_jti));

    // A forced renewal (a spec change) writes a new token; a fresh SDK process presents it.
    let changed = format!(
        "  federatedToken: {{delivery: Secret}}\n  secret: {{mountPath: {}, formats: [env, files]}}",
        mounted.display()
    );
    apply(&client, &ns, &super::azure::azure_identity("file", &changed)).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let renewed = loop {
        let now = secret_data(&client, &ns, "file").await?;
        if now.get("azure-identity-token") != first.get("azure-identity-token") {
            break now;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no new token file within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    std::fs::write(mounted.join("azure-identity-token"), &renewed["azure-identity-token"])?;
    sdk(&renewed, &ca_file).await?;
    let second_jti = jti(&renewed["azure-identity-token"]).context("jti")?;
    assert_ne!(first_jti, second_jti);
    assert!(
        presented(&entra, &second_jti),
        "the SDK did not present the renewed token"
    );
    Ok(())
}
