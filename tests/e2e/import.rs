//! The round trip of `import` (issue 5): the seed Atmos profile, imported with a
//! ServiceAccount, validated, applied to the real apiserver, resolved by the controller into
//! Ready Identities whose credentials STS accepts, along the chains Atmos builds.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::ensure;

use crate::fixture::*;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"))
}

#[tokio::test]
async fn imported_seed_profile_yields_ready_identities() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "import").await?;
    let sts = start_sts(cp);
    let _controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;

    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/e2e-seed/profiles/github/atmos.yaml");
    let out = binary()
        .arg("import")
        .arg(&seed)
        .args(["--service-account", "terraform", "--identities", "--namespace", &ns])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "import failed: {stderr}");
    ensure!(
        stderr.contains(&format!(
            "sub system:serviceaccount:{ns}:terraform for the role of acme/admin"
        )),
        "the trust-policy note names the namespace: {stderr}"
    );
    let manifests = String::from_utf8(out.stdout)?;

    // validate agrees before anything is applied.
    let mut validate = binary()
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = validate.stdin.take() {
        std::io::Write::write_all(&mut stdin, manifests.as_bytes())?;
    }
    let validated = validate.wait_with_output()?;
    ensure!(
        validated.status.success(),
        "validate of the imported manifests: {}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );

    apply(&client, &ns, &manifests).await?;
    for (object, identity, role, chain) in [
        (
            "acme-admin",
            "acme/admin",
            "e2e-admin",
            vec!["github-oidc", "acme/admin"],
        ),
        (
            "acme-network",
            "acme/network",
            "e2e-network",
            vec!["github-oidc", "acme/admin", "acme/network"],
        ),
    ] {
        let ready = wait_reason(&client, &ns, object, "CredentialsIssued", Duration::from_secs(90)).await?;
        let status = ready.status.unwrap_or_default();
        assert_eq!(status.identity.as_deref(), Some(identity));
        assert_eq!(status.chain, chain, "{object}: the chain Atmos builds");
        assert_eq!(status.role_arn, Some(format!("arn:aws:iam::{ACCOUNT}:role/{role}")));

        // The Secret (named after the Identity) holds credentials STS accepts.
        let data = secret_data(&client, &ns, object).await?;
        assert!(
            data["config"].contains(&format!("[profile {identity}]")),
            "{}",
            data["config"]
        );
        let (key, secret, token, _) = process_credentials(&data)?;
        let arn = caller_arn(&sts.endpoint(), &key, &secret, &token).await?;
        ensure!(
            arn.starts_with(&format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/atmos-acme-")),
            "{object}: {arn}"
        );
    }
    Ok(())
}
