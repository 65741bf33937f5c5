//! The operator commands against a running controller: `status` for a Ready and a failing
//! Identity (table, one Identity, JSON, a profile and its users), `whoami` with the
//! caller's own rights (and a clear refusal without them), and the same binary as
//! `kubectl atmos-auth` through kubectl's plugin lookup.

use std::process::{Command, Output};
use std::time::Duration;

use crate::fixture::*;
use crate::{identity, profile};

const BIN: &str = env!("CARGO_BIN_EXE_atmos-auth-controller");

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the binary with `args` and the admin's kubeconfig; stdout when it succeeds.
fn cli(kubeconfig: &str, args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(BIN)
        .args(args)
        .args(["--kubeconfig", kubeconfig])
        .output()?)
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "command failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn status_and_whoami_show_ready_and_failing_identities() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "ops-cli").await?;
    let sts = start_sts(cp);
    let _controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
    let admin = cp.kubeconfig_path().display().to_string();

    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("ready", "  secret: {name: aws-ready}")).await?;
    wait_reason(&client, &ns, "ready", "CredentialsIssued", Duration::from_secs(60)).await?;
    let nope = format!("arn:aws:iam::{ACCOUNT}:role/e2e-missing");
    apply(
        &client,
        &ns,
        &identity("failing", &format!("  principal: {{assume_role: \"{nope}\"}}")),
    )
    .await?;
    wait_reason(&client, &ns, "failing", "AccessDenied", Duration::from_secs(60)).await?;

    // The table: one row per Identity with its Ready reason.
    let table = ok(cli(&admin, &["status", "-n", &ns])?);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name} in:\n{table}"))
            .to_owned()
    };
    assert!(
        row("ready").contains("AuthProfile/k8s   True    CredentialsIssued"),
        "{table}"
    );
    assert!(row("ready").contains("cluster-oidc -> acme/admin"), "{table}");
    assert!(row("failing").contains("False   AccessDenied"), "{table}");

    // One Identity in full: chain, role, expiry and renewal as status records them.
    let ready = ok(cli(&admin, &["status", "-n", &ns, "ready"])?);
    let status = kube::Api::<atmos_auth_controller::api::Identity>::namespaced(client.clone(), &ns)
        .get("ready")
        .await?
        .status
        .unwrap_or_default();
    let expiration = status.expiration.clone().unwrap_or_default();
    let renewal = status.renewal_time.clone().unwrap_or_default();
    for want in [
        "Chain:        cluster-oidc -> acme/admin".to_owned(),
        format!("    Role:     {ADMIN_ROLE}"),
        format!("Expires:      {expiration} (in "),
        format!("Renews:       {renewal} (in "),
        "Secret:       aws-ready".to_owned(),
        "Last error:   -".to_owned(),
        "STS budget:   not waiting".to_owned(),
    ] {
        assert!(ready.contains(&want), "missing {want:?} in:\n{ready}");
    }
    let failing = ok(cli(&admin, &["status", "-n", &ns, "failing"])?);
    assert!(failing.contains("(AccessDenied, 1 attempt"), "{failing}");
    assert!(
        failing.contains("e2e-missing"),
        "the STS message names the role:\n{failing}"
    );

    // JSON, for scripts: the same facts.
    let json: serde_json::Value = serde_json::from_str(&ok(cli(&admin, &["status", "-n", &ns, "-o", "json"])?))?;
    let by_name = |n: &str| {
        json.as_array()
            .and_then(|a| a.iter().find(|v| v["name"] == n))
            .cloned()
            .unwrap_or_else(|| panic!("{n} not in {json}"))
    };
    assert_eq!(by_name("ready")["expiration"], expiration.as_str());
    assert_eq!(by_name("ready")["identities"][0]["roleArn"], ADMIN_ROLE);
    assert_eq!(by_name("failing")["lastFailure"]["reason"], "AccessDenied");
    assert_eq!(by_name("ready")["waitingForStsBudget"], false);

    // A profile, and which Identities use it.
    let prof = ok(cli(&admin, &["status", "-n", &ns, "authprofile/k8s"])?);
    assert!(prof.contains(&format!("Profile:      AuthProfile/{ns}/k8s")), "{prof}");
    assert!(prof.contains("acme/admin (default)"), "{prof}");
    for name in ["ready", "failing"] {
        assert!(
            prof.lines().any(|l| l.contains(&format!(" {name} "))),
            "{name} not in:\n{prof}"
        );
    }

    // whoami: STS says who the Secret's credentials are.
    let who = ok(cli(
        &admin,
        &["whoami", "-n", &ns, "ready", "--endpoint-url", &sts.endpoint()],
    )?);
    assert!(who.contains("acme/admin (Secret"), "{who}");
    assert!(
        who.contains(&format!("ARN:      arn:aws:sts::{ACCOUNT}:assumed-role/e2e-admin/")),
        "{who}"
    );
    assert!(who.contains(&format!("Account:  {ACCOUNT}")), "{who}");
    // The Secret's expiry is the one consumers see, a little before STS's (status).
    let shown: jiff::Timestamp = who
        .lines()
        .find_map(|l| l.trim().strip_prefix("Expires:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .parse()?;
    let sts_expiry: jiff::Timestamp = expiration.parse()?;
    assert!(
        shown <= sts_expiry && shown >= sts_expiry - jiff::SignedDuration::from_mins(5),
        "status says {expiration}:\n{who}"
    );
    assert!(sts.calls().total("GetCallerIdentity") >= 1);

    // With only the right to read Identities, whoami says the Secret is not yours to read.
    kubectl(
        cp,
        &["apply", "-f", "-"],
        Some(&format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: identity-viewer, namespace: {ns}}}
rules:
  - apiGroups: [auth.atmos.tools]
    resources: [identities, authprofiles]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: identity-viewer, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: identity-viewer}}
subjects: [{{kind: User, name: ops-viewer, apiGroup: rbac.authorization.k8s.io}}]
"#
        )),
    )?;
    let viewer = cp.user_kubeconfig("ops-viewer", &[])?.display().to_string();
    let denied = cli(
        &viewer,
        &["whoami", "-n", &ns, "ready", "--endpoint-url", &sts.endpoint()],
    )?;
    assert!(!denied.status.success());
    let message = text(&denied);
    assert!(
        message.contains("error: you may not read Secret")
            && message.contains("aws-ready")
            && message.contains("your own rights"),
        "{message}"
    );
    // ... while status, which reads only Identities, works for them.
    assert!(ok(cli(&viewer, &["status", "-n", &ns, "ready"])?).contains("CredentialsIssued"));

    // The same binary as a kubectl plugin, found on the PATH as kubectl-atmos_auth.
    let dir = tempfile::tempdir()?;
    std::os::unix::fs::symlink(BIN, dir.path().join("kubectl-atmos_auth"))?;
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let plugin = cp
        .command("kubectl")
        .env("PATH", path)
        .args(["atmos-auth", "status", "-n", &ns, "ready", "-o", "json"])
        .output()?;
    let plugin: serde_json::Value = serde_json::from_str(&ok(plugin))?;
    assert_eq!(plugin["ready"]["reason"], "CredentialsIssued");
    Ok(())
}
