//! ECR image-pull Secrets with a real registry and a real client: the controller logs in to
//! the local ECR (`GetAuthorizationToken`, SigV4-verified with the session it issued, allowed
//! only for a role with `ecr:GetAuthorizationToken`), writes a `kubernetes.io/dockerconfigjson`
//! Secret keyed by `<account>.dkr.ecr.<region>.amazonaws.com`, and `crane` pushes and pulls
//! with nothing but that Secret's content against distribution's `registry`, whose token
//! service accepts only ECR tokens that the local ECR issued and that have not expired. The
//! token lives 30 s here: the Secret renews at about 20 s, the renewed token works, the
//! expired one is refused. A role without the permission gets its own reason.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use atmos_auth_controller::api::Identity;
use atmos_auth_controller::output::labels;
use atmos_auth_testenv::certs::Ca;
use atmos_auth_testenv::registry::{Registry, TokenService};
use atmos_auth_testenv::sts::{LocalSts, OidcIssuer};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::fixture::*;

/// ECR token lifetime in this test.
const TOKEN_SECONDS: u32 = 30;
const REGION: &str = "us-east-2";

fn host() -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com")
}

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
      principal: {{assume_role: "{ADMIN_ROLE}", duration: 1h, region: {REGION}}}
    acme/network:
      kind: aws/assume-role
      via: {{identity: acme/admin}}
      principal: {{assume_role: "{NETWORK_ROLE}", duration: 1h}}
  integrations:
    ecr-main:
      kind: aws/ecr
      via: {{identity: acme/admin}}
      spec: {{registry: {{account_id: "{ACCOUNT}", region: {REGION}}}}}
    ecr-network:
      kind: aws/ecr
      via: {{identity: acme/network}}
      spec: {{registry: {{account_id: "{ACCOUNT}", region: {REGION}}}}}
    eks:
      kind: aws/eks
      via: {{identity: acme/admin}}
      spec: {{cluster: {{name: prod, region: {REGION}}}}}
"#
    )
}

const IDENTITIES: &str = r#"
apiVersion: auth.atmos.tools/v1alpha1
kind: Identity
metadata: {name: pull}
spec:
  profile: k8s
  secret: {name: pull-creds}
  imagePullSecret: {name: ecr-pull}
---
apiVersion: auth.atmos.tools/v1alpha1
kind: Identity
metadata: {name: denied}
spec:
  profile: k8s
  identity: acme/network
  imagePullSecret: {name: ecr-denied}
"#;

/// The STS of the e2e tests, whose admin role (only) may log in to ECR, with short tokens.
fn start_sts(cp: &atmos_auth_testenv::controlplane::ControlPlane) -> Result<LocalSts> {
    let mut config = sts_config();
    config.ecr_token_seconds = TOKEN_SECONDS;
    for role in &mut config.roles {
        if role.arn == ADMIN_ROLE {
            role.permissions = vec!["ecr:GetAuthorizationToken".to_owned()];
        }
    }
    let issuer = OidcIssuer {
        url: cp.issuer().to_owned(),
        ca_pem: cp.ca_pem().to_owned(),
    };
    LocalSts::start(config, issuer)
}

/// The Secret's Docker config, written as `dir/config.json`; returns its `auth` for the host.
async fn docker_config(secrets: &Api<Secret>, name: &str, dir: &Path) -> Result<String> {
    let secret = secrets.get(name).await?;
    ensure!(
        secret.type_.as_deref() == Some("kubernetes.io/dockerconfigjson"),
        "type {:?}",
        secret.type_
    );
    let data = secret.data.unwrap_or_default();
    let config = data
        .get(".dockerconfigjson")
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .context("no .dockerconfigjson")?;
    let json: serde_json::Value = serde_json::from_str(&config)?;
    let auths = json["auths"].as_object().context("no auths")?;
    ensure!(auths.len() == 1, "one registry expected: {:?}", auths.keys());
    let auth = json["auths"][host()]["auth"]
        .as_str()
        .context("no login for the ECR host")?;
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(auth)?)?;
    ensure!(decoded.starts_with("AWS:"), "auth is not AWS:<token>");
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), config)?;
    Ok(auth.to_owned())
}

fn crane(registry: &Registry, config: &Path, args: &[&str]) -> Result<(bool, String)> {
    let out = registry.crane(config, args)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[tokio::test]
async fn crane_pulls_with_the_image_pull_secret_alone_across_a_renewal_and_not_after_expiry() -> Result<()> {
    let started = Instant::now();
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "ecr").await?;
    let sts = start_sts(cp)?;
    let ca = Ca::new("atmos-auth e2e registry CA")?;
    let realm = TokenService::start(sts.ecr_tokens(), &ca, "ecr.local", 60)?;
    let registry = Registry::start(&ca, (&host(), Ipv4Addr::new(127, 0, 22, 1)), &realm)?;
    let endpoint = sts.endpoint();
    let controller = ControllerProcess::start(cp, &ns, &endpoint, &["--ecr-endpoint", &endpoint])?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let dir = tempfile::tempdir()?;
    let fail = |e: anyhow::Error| {
        anyhow::anyhow!(
            "{e:#}\n{}\n{}",
            log_tail(&controller.log_text()),
            log_tail(&registry.log())
        )
    };

    apply(&client, &ns, &profile()).await?;
    apply(&client, &ns, IDENTITIES).await?;
    let issued = wait_reason(&client, &ns, "pull", "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(fail)?;
    let status = issued.status.clone().unwrap_or_default();
    let written = status.image_pull_secret.clone().context("no status.imagePullSecret")?;
    ensure!(written.name == "ecr-pull", "{written:?}");
    // Renewal from the token's real expiry: about two thirds of 30 s, not the session's hour.
    let renewal: jiff::Timestamp = status.renewal_time.as_deref().context("no renewalTime")?.parse()?;
    let expiration: jiff::Timestamp = status.expiration.as_deref().context("no expiration")?.parse()?;
    let left = renewal.duration_since(jiff::Timestamp::now()).as_secs_f64();
    ensure!(left < 21.0, "renewal in {left:.1} s: not driven by the ECR token");
    ensure!(
        expiration.duration_since(jiff::Timestamp::now()).as_secs_f64() <= f64::from(TOKEN_SECONDS),
        "expiration {expiration} is not the token's"
    );
    let first = dir.path().join("first");
    let first_auth = docker_config(&secrets, "ecr-pull", &first).await?;
    let meta = secrets.get_metadata("ecr-pull").await?.metadata;
    ensure!(
        meta.labels
            .unwrap_or_default()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str)
            == Some("atmos-auth-controller")
    );
    ensure!(
        meta.owner_references
            .unwrap_or_default()
            .iter()
            .any(|o| o.kind == "Identity" && o.name == "pull")
    );
    // The login was signed with the admin role's session.
    ensure!(sts.calls().ok("ecr:GetAuthorizationToken") >= 1, "{:?}", sts.calls());

    // A real client with only the Secret's content: push, then pull.
    let layer_dir = dir.path().join("layer");
    std::fs::create_dir_all(&layer_dir)?;
    std::fs::write(layer_dir.join("hello.txt"), "pulled with an ECR token\n")?;
    let layer = dir.path().join("layer.tar");
    let tar = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&layer)
        .arg("-C")
        .arg(&layer_dir)
        .arg("hello.txt")
        .status()?;
    ensure!(tar.success());
    let image = format!("{}/team/app:v1", host());
    let layer_arg = layer.display().to_string();
    let (ok, out) = crane(&registry, &first, &["append", "-f", &layer_arg, "-t", &image])?;
    ensure!(ok, "push with the Secret's token: {out}\n{}", registry.log());
    let (ok, out) = crane(&registry, &first, &["export", &image, "-"])?;
    ensure!(ok && out.contains("pulled with an ECR token"), "pull: {out}");
    // Without the Secret's login the registry refuses.
    let anonymous = dir.path().join("anonymous");
    std::fs::create_dir_all(&anonymous)?;
    std::fs::write(anonymous.join("config.json"), r#"{"auths":{}}"#)?;
    let (ok, out) = crane(&registry, &anonymous, &["digest", &image])?;
    ensure!(
        !ok && (out.contains("UNAUTHORIZED") || out.contains("401")),
        "anonymous pull: ok={ok} {out}"
    );

    // The role without ecr:GetAuthorizationToken: its own reason, and what to grant.
    let denied = wait_reason(&client, &ns, "denied", "EcrPermissionDenied", Duration::from_secs(30))
        .await
        .map_err(fail)?;
    let (_, _, message) = ready(&denied).context("no Ready condition")?;
    ensure!(message.contains("ecr:GetAuthorizationToken"), "{message}");
    ensure!(secrets.get_opt("ecr-denied").await?.is_none());

    // Renewal: a new token in the Secret, which works.
    let second = dir.path().join("second");
    let deadline = Instant::now() + Duration::from_secs(30);
    let renewed_auth = loop {
        let auth = docker_config(&secrets, "ecr-pull", &second).await?;
        if auth != first_auth {
            break auth;
        }
        ensure!(
            Instant::now() < deadline,
            "the image-pull Secret was not renewed within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    ensure!(renewed_auth != first_auth);
    let renewed_at = started.elapsed();
    let (ok, out) = crane(&registry, &second, &["digest", &image])?;
    ensure!(ok, "pull with the renewed token: {out}");

    // The first token once expired: refused, while the renewed one still works.
    let expiry_wait = expiration.duration_since(jiff::Timestamp::now()).as_secs_f64() + 1.0;
    if expiry_wait > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(expiry_wait)).await;
    }
    let (ok, out) = crane(&registry, &first, &["digest", &image])?;
    ensure!(!ok, "pull with the expired token succeeded: {out}");
    let (ok, out) = crane(&registry, &second, &["digest", &image])?;
    ensure!(ok, "pull with the renewed token after the first expired: {out}");

    // Someone else's edit of the image-pull Secret is replaced with a fresh login.
    secrets
        .patch(
            "ecr-pull",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {".dockerconfigjson": r#"{"auths":{"evil.example":{"auth":"eDp5"}}}"#}})),
        )
        .await?;
    wait_for(Duration::from_secs(30), || async {
        let data = secret_data(&client, &ns, "ecr-pull").await?;
        let json: serde_json::Value = serde_json::from_str(data.get(".dockerconfigjson").map_or("{}", String::as_str))?;
        Ok(json["auths"].get(host()).is_some() && json["auths"].get("evil.example").is_none())
    })
    .await
    .context("the tampered image-pull Secret was not restored")
    .map_err(fail)?;

    // Dropping spec.imagePullSecret empties the Secret it wrote (kept for the garbage collector).
    let identities: Api<Identity> = Api::namespaced(client.clone(), &ns);
    identities
        .patch(
            "pull",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"imagePullSecret": null}})),
        )
        .await?;
    wait_for(Duration::from_secs(30), || async {
        let s = secrets.get("ecr-pull").await?;
        let data = s.data.unwrap_or_default();
        let emptied = data.get(".dockerconfigjson").map(|b| b.0.as_slice()) == Some(br#"{"auths":{}}"#.as_slice());
        let marked = s
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(labels::SUPERSEDED_BY);
        Ok(emptied && marked)
    })
    .await
    .context("the image-pull Secret no longer used was not emptied")
    .map_err(fail)?;
    // The credential Secret is untouched by that.
    ensure!(
        secret_data(&client, &ns, "pull-creds")
            .await?
            .contains_key("credential_process.json")
    );

    // No token in the controller's log.
    let log = controller.log_text();
    for token in sts.ecr_tokens().issued() {
        ensure!(
            !log.contains(&token.password),
            "an ECR token reached the controller's log"
        );
    }
    eprintln!(
        "[ecr] renewed at {:.1} s; whole test {:.1} s",
        renewed_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
