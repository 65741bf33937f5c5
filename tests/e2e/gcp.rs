//! GCP: the real controller verifies a `gcp/workload-identity-federation` federation at the
//! local Google STS and IAM Credentials (which check real kube-apiserver tokens against the
//! control plane's JWKS) and writes the `external_account` Secret; a ServiceAccount the
//! service account does not trust shows Google's status in a specific reason. Then
//! google-auth for Python, a real Google auth library, gets tokens with only the Secret's
//! settings, the token file and a CA bundle (`REQUESTS_CA_BUNDLE`), across rotations.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use atmos_auth_testenv::gcp::{GcpConfig, LocalGcp, pool_provider_name};
use atmos_auth_testenv::sts::OidcIssuer;
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, Client};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::fixture::*;

const NUMBER: &str = "123456789012";
const POOL: &str = "k8s-pool";
const PROVIDER: &str = "cluster";
const SA: &str = "terraform@acme-prod.iam.gserviceaccount.com";

fn gcp_profile() -> String {
    format!(
        r#"
apiVersion: auth.atmos.tools/v1alpha1
kind: AuthProfile
metadata: {{name: gcp}}
spec:
  providers:
    wif:
      kind: gcp/workload-identity-federation
      spec:
        project_number: "{NUMBER}"
        workload_identity_pool_id: {POOL}
        workload_identity_provider_id: {PROVIDER}
        service_account: terraform
  identities:
    gcp/terraform:
      default: true
      kind: gcp/service-account
      via: {{provider: wif}}
      principal: {{service_account_email: {SA}, lifetime: 15m}}
    gcp/prod:
      kind: gcp/project
      via: {{identity: gcp/terraform}}
      principal: {{project_id: acme-prod, region: europe-west1}}
"#
    )
}

fn gcp_identity(name: &str, body: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: {name}}}\nspec:\n  profile: gcp\n{body}\n"
    )
}

/// The local GCP endpoint trusting `terraform` of `ns`, and a controller pointed at it.
struct Env {
    gcp: LocalGcp,
    controller: ControllerProcess,
    ca_file: std::path::PathBuf,
    dir: tempfile::TempDir,
    _sts: atmos_auth_testenv::sts::LocalSts,
}

async fn start(client: &Client, ns: &str) -> Result<Env> {
    let cp = control_plane();
    let issuer = OidcIssuer {
        url: cp.issuer().to_owned(),
        ca_pem: cp.ca_pem().to_owned(),
    };
    let subject = format!("system:serviceaccount:{ns}:terraform");
    let gcp = LocalGcp::start(
        GcpConfig::single(NUMBER, POOL, PROVIDER, cp.issuer(), SA, &subject),
        issuer,
    )?;
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("gcp-ca.pem");
    std::fs::write(&ca_file, gcp.ca_pem())?;
    let sts = start_sts(cp);
    let (sts_url, iam_url, ca_arg) = (gcp.sts_url(), gcp.iam_credentials_url(), ca_file.display().to_string());
    let controller = ControllerProcess::start(
        cp,
        ns,
        &sts.endpoint(),
        &[
            "--gcp-sts-url",
            &sts_url,
            "--gcp-iam-credentials-url",
            &iam_url,
            "--gcp-ca-file",
            &ca_arg,
            "--azure-reverify-interval",
            "2s",
        ],
    )?;
    apply(client, ns, &gcp_profile()).await?;
    Ok(Env {
        gcp,
        controller,
        ca_file,
        dir,
        _sts: sts,
    })
}

#[tokio::test]
async fn a_gcp_federation_is_verified_at_google_and_its_configuration_written() -> Result<()> {
    let client = control_plane().client().await?;
    let ns = namespace(&client, "gcp-wif").await?;
    service_account(&client, &ns, "untrusted").await?;
    let env = start(&client, &ns).await?;
    let subject = format!("system:serviceaccount:{ns}:terraform");

    apply(&client, &ns, &gcp_identity("prod", "  identity: gcp/prod")).await?;
    let prod = wait_reason(&client, &ns, "prod", "CredentialsIssued", Duration::from_secs(60)).await;
    let prod = prod.map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&env.controller.log_text())))?;
    let st = prod.status.unwrap_or_default();
    assert_eq!(st.chain, ["wif", "gcp/terraform", "gcp/prod"]);

    // The controller presented a real token of the ServiceAccount, then impersonated.
    let exchanges = env.gcp.exchanges();
    assert!(
        exchanges
            .iter()
            .any(|e| e.error.is_none() && e.subject.as_deref() == Some(subject.as_str()) && e.jti.is_some()),
        "{exchanges:?}"
    );
    assert!(
        env.gcp
            .impersonations()
            .iter()
            .any(|i| i.error.is_none() && i.service_account == SA)
    );

    // Settings only: the configuration names the operator's URLs and the pod's projected token.
    let data = secret_data(&client, &ns, "prod").await?;
    let config: serde_json::Value = serde_json::from_str(&data["gcp-credentials.json"])?;
    assert_eq!(config["type"], "external_account");
    assert_eq!(config["audience"], pool_provider_name(NUMBER, POOL, PROVIDER));
    assert_eq!(config["token_url"], env.gcp.sts_url());
    assert_eq!(
        config["service_account_impersonation_url"],
        format!(
            "{}v1/projects/-/serviceAccounts/{SA}:generateAccessToken",
            env.gcp.iam_credentials_url()
        )
    );
    assert_eq!(
        config["credential_source"]["file"],
        "/var/run/secrets/gcp/tokens/gcp-identity-token"
    );
    assert_eq!(data["GOOGLE_CLOUD_PROJECT"], "acme-prod");
    assert_eq!(data["GOOGLE_CLOUD_REGION"], "europe-west1");
    assert!(!data.contains_key("gcp-identity-token"), "{:?}", data.keys());
    let consumer = st.consumer.clone().expect("status.consumer");
    assert_eq!(consumer.service_account_name, "terraform");
    assert_eq!(consumer.audience, pool_provider_name(NUMBER, POOL, PROVIDER));

    // Re-verified at the interval (2 s here) without rewriting the unchanged Secret.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let version = secrets.get("prod").await?.metadata.resource_version;
    let before = env.gcp.exchanges().len();
    wait_for(Duration::from_secs(30), || {
        let n = env.gcp.exchanges().len();
        async move { Ok(n >= before + 2) }
    })
    .await?;
    assert_eq!(
        secrets.get("prod").await?.metadata.resource_version,
        version,
        "rewritten"
    );

    // A ServiceAccount the service account does not trust: STS accepts its token (the pool
    // trusts the issuer), IAM Credentials refuses the impersonation.
    apply(
        &client,
        &ns,
        &gcp_identity("untrusted", "  serviceAccountName: untrusted"),
    )
    .await?;
    let bad = wait_reason(
        &client,
        &ns,
        "untrusted",
        "ServiceAccountImpersonationDenied",
        Duration::from_secs(60),
    )
    .await?;
    let (_, _, message) = ready(&bad).unwrap_or_default();
    assert!(message.contains("PERMISSION_DENIED"), "{message}");
    let log = env.controller.log_text();
    for issued in env.gcp.secrets_seen() {
        assert!(
            !log.contains(&issued) && !message.contains(&issued),
            "an access token leaked"
        );
    }
    Ok(())
}

/// Refreshes google-auth's default credentials once per line read, printing `ok` and the
/// SHA-256 of the access token (never the token).
const SDK: &str = r#"
import hashlib, sys
import google.auth, google.auth.transport.requests
creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
for _ in sys.stdin:
    creds.refresh(google.auth.transport.requests.Request())
    print("ok", hashlib.sha256(creds.token.encode()).hexdigest(), flush=True)
"#;

/// One google-auth process with only the Secret's `GOOGLE_*`/`CLOUDSDK_*`/`GCLOUD_*` keys,
/// PATH, HOME and the CA bundle; each `refresh` gets a token and returns its hash.
struct Sdk {
    child: tokio::process::Child,
    out: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Sdk {
    fn start(settings: &BTreeMap<String, String>, ca_file: &Path) -> Result<Self> {
        let mut child =
            Command::new("python3")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", std::env::var("HOME").unwrap_or_default())
                .env("REQUESTS_CA_BUNDLE", ca_file)
                .envs(settings.iter().filter(|(k, _)| {
                    k.starts_with("GOOGLE_") || k.starts_with("CLOUDSDK_") || k.starts_with("GCLOUD_")
                }))
                .args(["-c", SDK])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("python3 with google-auth")?;
        let out = BufReader::new(child.stdout.take().context("stdout")?).lines();
        Ok(Self { child, out })
    }

    async fn refresh(&mut self) -> Result<String> {
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        stdin.write_all(b"refresh\n").await?;
        stdin.flush().await?;
        let line = tokio::time::timeout(Duration::from_secs(60), self.out.next_line())
            .await
            .context("google-auth timed out")??
            .context("google-auth exited (see its stderr above)")?;
        line.strip_prefix("ok ").map(str::to_owned).context(line.clone())
    }
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

fn jti(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["jti"].as_str().map(str::to_owned)
}

fn presented(gcp: &LocalGcp, jti: &str) -> bool {
    presentations(gcp, jti) > 0
}

/// How many federated tokens STS issued for subject tokens with `jti`. The controller
/// presents a token file it writes once, before writing it; any more are google-auth's.
fn presentations(gcp: &LocalGcp, jti: &str) -> usize {
    gcp.exchanges()
        .iter()
        .filter(|e| e.error.is_none() && e.jti.as_deref() == Some(jti))
        .count()
}

/// Whether `hash` is the SHA-256 of an impersonated token the endpoint issued for `SA`.
fn issued_for_sa(gcp: &LocalGcp, hash: &str) -> bool {
    gcp.secrets_seen().iter().any(|t| {
        hex::encode(Sha256::digest(t.as_bytes())) == hash
            && gcp
                .token_info(t)
                .is_some_and(|i| i.member == format!("serviceAccount:{SA}"))
    })
}

/// Writes the Secret's data where its volume would be mounted.
fn mount(dir: &Path, data: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in data {
        std::fs::write(dir.join(key), value)?;
    }
    Ok(())
}

#[tokio::test]
async fn google_auth_gets_tokens_with_the_secrets_settings_across_rotations() -> Result<()> {
    let client = control_plane().client().await?;
    let ns = namespace(&client, "gcp-sdk").await?;
    let env = start(&client, &ns).await?;
    let (projected, mounted) = (env.dir.path().join("projected"), env.dir.path().join("secret"));
    let mounted_file = env.dir.path().join("secret-file");
    for d in [&projected, &mounted, &mounted_file] {
        std::fs::create_dir_all(d)?;
    }

    // Default: settings only, pointing at the pod's projected token (a directory the test
    // fills as the kubelet would). One process: its next refresh re-reads the file.
    let body = format!(
        "  federatedToken: {{mountPath: {}}}\n  secret: {{mountPath: {}}}",
        projected.display(),
        mounted.display()
    );
    apply(&client, &ns, &gcp_identity("projected", &body)).await?;
    wait_reason(&client, &ns, "projected", "CredentialsIssued", Duration::from_secs(60)).await?;
    let settings = secret_data(&client, &ns, "projected").await?;
    mount(&mounted, &settings)?;
    let consumer: serde_json::Value = serde_json::from_str(&settings["consumer.json"])?;
    let audience = consumer["audience"].as_str().unwrap_or_default();
    let file = projected.join("gcp-identity-token");
    let mut sdk = Sdk::start(&settings, &env.ca_file)?;
    let mut hashes = Vec::new();
    for round in 0..2 {
        let token = kubelet_token(&client, &ns, "terraform", audience).await?;
        std::fs::write(&file, &token)?;
        let hash = sdk.refresh().await?;
        let id = jti(&token).context("a kube-apiserver token has a jti")?;
        assert!(
            presented(&env.gcp, &id),
            "round {round}: google-auth did not present {id}"
        );
        assert!(
            issued_for_sa(&env.gcp, &hash),
            "round {round}: not an impersonated token"
        );
        hashes.push(hash);
    }
    assert_ne!(hashes[0], hashes[1]);

    // Opt-in: the token file is in the Secret; a forced renewal (a spec change) writes a new
    // one, and a fresh process presents it.
    let body = |formats: &str| {
        format!(
            "  federatedToken: {{delivery: Secret}}\n  secret: {{mountPath: {}, formats: [{formats}]}}",
            mounted_file.display()
        )
    };
    apply(&client, &ns, &gcp_identity("file", &body("env"))).await?;
    wait_reason(&client, &ns, "file", "CredentialsIssued", Duration::from_secs(60)).await?;
    let first = secret_data(&client, &ns, "file").await?;
    mount(&mounted_file, &first)?;
    Sdk::start(&first, &env.ca_file)?.refresh().await?;
    let first_jti = jti(&first["gcp-identity-token"]).context("jti")?;
    assert!(
        presentations(&env.gcp, &first_jti) >= 2,
        "the controller's and google-auth's"
    );
    apply(&client, &ns, &gcp_identity("file", &body("env, files"))).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let renewed = loop {
        let now = secret_data(&client, &ns, "file").await?;
        if now.get("gcp-identity-token") != first.get("gcp-identity-token") {
            break now;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no new token file within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    mount(&mounted_file, &renewed)?;
    let hash = Sdk::start(&renewed, &env.ca_file)?.refresh().await?;
    let second_jti = jti(&renewed["gcp-identity-token"]).context("jti")?;
    assert_ne!(first_jti, second_jti);
    assert!(
        presentations(&env.gcp, &second_jti) >= 2,
        "google-auth did not present the renewed token (only the controller did)"
    );
    assert!(issued_for_sa(&env.gcp, &hash));
    Ok(())
}

/// `gcp-access-token`: chosen explicitly, the Secret holds the impersonated access token
/// (one the endpoint issued for the service account) and no credentials setting it would
/// shadow; it is renewed before it expires, at two thirds of its real life; switching an
/// Identity from `env` to it removes the keys it would shadow.
#[tokio::test]
async fn the_access_token_format_holds_a_token_google_issued_renewed_before_it_expires() -> Result<()> {
    let client = control_plane().client().await?;
    let ns = namespace(&client, "gcp-token").await?;
    let env = start(&client, &ns).await?;
    let body = |formats: &str| format!("  identity: gcp/prod\n  secret: {{formats: [{formats}]}}");
    apply(&client, &ns, &gcp_identity("token", &body("env"))).await?;
    wait_reason(&client, &ns, "token", "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&env.controller.log_text())))?;
    assert!(
        secret_data(&client, &ns, "token")
            .await?
            .contains_key("GOOGLE_APPLICATION_CREDENTIALS")
    );

    // Switched: the token in, the settings it would shadow out.
    apply(&client, &ns, &gcp_identity("token", &body("gcp-access-token"))).await?;
    let switched = wait_for(Duration::from_secs(60), || {
        let (client, ns) = (client.clone(), ns.clone());
        async move {
            let d = secret_data(&client, &ns, "token").await?;
            Ok(d.contains_key("GOOGLE_OAUTH_ACCESS_TOKEN")
                && !d.contains_key("GOOGLE_APPLICATION_CREDENTIALS")
                && !d.contains_key("gcp-credentials.json"))
        }
    })
    .await;
    let data = secret_data(&client, &ns, "token").await?;
    switched.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}; keys: {:?}\n{}",
            data.keys(),
            log_tail(&env.controller.log_text())
        )
    })?;
    let first = data["GOOGLE_OAUTH_ACCESS_TOKEN"].clone();
    let info = env.gcp.token_info(&first).context("not a token the endpoint issued")?;
    assert_eq!(info.member, format!("serviceAccount:{SA}"));
    assert_eq!(data["GOOGLE_CLOUD_PROJECT"], "acme-prod");
    assert!(!data.contains_key("consumer.json"), "{:?}", data.keys());

    // The status's expiry is the token's; renewal comes before it.
    let identities: Api<atmos_auth_controller::api::Identity> = Api::namespaced(client.clone(), &ns);
    let st = identities.get("token").await?.status.unwrap_or_default();
    let expiration: jiff::Timestamp = st.expiration.as_deref().context("status.expiration")?.parse()?;
    let renewal: jiff::Timestamp = st.renewal_time.as_deref().context("status.renewalTime")?.parse()?;
    assert!(
        (expiration.as_second() - info.expires_at).abs() <= 1,
        "status {expiration} vs token {}",
        info.expires_at
    );
    assert!(renewal < expiration, "{renewal} {expiration}");
    assert!(st.consumer.is_none(), "the pod exchanges nothing: {:?}", st.consumer);

    // Renewed before the first token expires, with another token the endpoint issued.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let second = loop {
        let now = secret_data(&client, &ns, "token").await?;
        if now.get("GOOGLE_OAUTH_ACCESS_TOKEN") != Some(&first) {
            break now["GOOGLE_OAUTH_ACCESS_TOKEN"].clone();
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "not renewed within 90 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let renewed_at = jiff::Timestamp::now().as_second();
    assert!(
        renewed_at < info.expires_at,
        "renewed at {renewed_at}, after the token expired at {}",
        info.expires_at
    );
    let next = env
        .gcp
        .token_info(&second)
        .context("the renewed token is not the endpoint's")?;
    assert_eq!(next.member, format!("serviceAccount:{SA}"));

    // Never logged, nor in status.
    let log = env.controller.log_text();
    let status = serde_json::to_string(&identities.get("token").await?.status)?;
    for t in [&first, &second] {
        assert!(
            !log.contains(t.as_str()) && !status.contains(t.as_str()),
            "an access token leaked"
        );
    }
    Ok(())
}

/// Soak (not in the normal run: `cargo test --test e2e -- --ignored soak_`, about 35 min):
/// one google-auth process across the opt-in token file's real renewal (1 h, renewed at
/// half-life). The test plays the kubelet, copying the Secret's token file where its volume
/// would be every 5 s, and refreshes the same process every 30 s; google-auth reads the file
/// at each refresh, so the renewed token is presented at the first refresh after it lands,
/// and no refresh may fail meanwhile.
#[tokio::test]
#[ignore = "soak: about 35 minutes"]
async fn soak_one_google_auth_process_across_the_token_files_renewal() -> Result<()> {
    let client = control_plane().client().await?;
    let ns = namespace(&client, "gcp-soak").await?;
    let env = start(&client, &ns).await?;
    let mounted = env.dir.path().join("secret");
    std::fs::create_dir_all(&mounted)?;
    let body = format!(
        "  identity: gcp/prod\n  federatedToken: {{delivery: Secret}}\n  secret: {{mountPath: {}}}",
        mounted.display()
    );
    apply(&client, &ns, &gcp_identity("soak", &body)).await?;
    wait_reason(&client, &ns, "soak", "CredentialsIssued", Duration::from_secs(60)).await?;
    let first = secret_data(&client, &ns, "soak").await?;
    mount(&mounted, &first)?;
    let first_jti = jti(&first["gcp-identity-token"]).context("jti")?;
    let mut sdk = Sdk::start(&first, &env.ca_file)?;
    let start = std::time::Instant::now();
    let mut renewed: Option<(String, std::time::Instant, usize)> = None;
    let mut rounds = 0;
    loop {
        let now = secret_data(&client, &ns, "soak").await?;
        let token = now
            .get("gcp-identity-token")
            .context("the token file left the Secret")?;
        let (file, tmp) = (
            mounted.join("gcp-identity-token"),
            mounted.join(".gcp-identity-token.tmp"),
        );
        std::fs::write(&tmp, token)?;
        std::fs::rename(&tmp, &file)?;
        if renewed.is_none() && jti(token) != Some(first_jti.clone()) {
            eprintln!("renewed after {:?}", start.elapsed());
            let new = jti(token).context("jti")?;
            // The controller presented it before writing it; google-auth's come on top.
            let by_controller = presentations(&env.gcp, &new);
            renewed = Some((new, std::time::Instant::now(), by_controller));
        }
        if rounds % 6 == 0 {
            let hash = sdk.refresh().await?;
            anyhow::ensure!(issued_for_sa(&env.gcp, &hash), "not an impersonated token");
        }
        rounds += 1;
        if let Some((new, at, by_controller)) = &renewed {
            if presentations(&env.gcp, new) > *by_controller {
                eprintln!(
                    "the same process presented the renewed token {:?} after the renewal",
                    at.elapsed()
                );
                break;
            }
            anyhow::ensure!(
                at.elapsed() < Duration::from_secs(120),
                "the process did not present the renewed token within 2 minutes of its renewal"
            );
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(45 * 60),
            "no renewal within 45 minutes"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(presentations(&env.gcp, &first_jti) >= 2);
    anyhow::ensure!(sdk.child.try_wait()?.is_none(), "the process ended");
    Ok(())
}
