//! The operator commands against a running controller: `status` for a Ready, a failing and a
//! waiting Identity (table, one Identity, JSON, a profile and its users), `whoami` with the
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

/// A controller allowed one STS call every 100 s: after the first issue the next Identity
/// waits for its account's budget, and `status` shows it waiting from what its status
/// records (written once, when it starts waiting: nothing more while it waits).
#[tokio::test]
async fn status_shows_an_identity_waiting_for_sts_budget() -> anyhow::Result<()> {
    use atmos_auth_controller::api::Identity;
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "ops-cli-waiting").await?;
    let sts = start_sts(cp);
    let slow = ["--sts-rate-limit", "0.01", "--sts-burst", "1"];
    let _controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &slow)?;
    let admin = cp.kubeconfig_path().display().to_string();
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("first", "  secret: {name: aws-first}")).await?;
    wait_reason(&client, &ns, "first", "CredentialsIssued", Duration::from_secs(60)).await?;
    apply(&client, &ns, &identity("waiting", "  secret: {name: aws-waiting}")).await?;
    let waiting = wait_reason(&client, &ns, "waiting", "WaitingForStsBudget", Duration::from_secs(60)).await?;
    let version = waiting.metadata.resource_version.clone();

    let table = ok(cli(&admin, &["status", "-n", &ns])?);
    let row = table
        .lines()
        .find(|l| l.starts_with("waiting "))
        .unwrap_or_else(|| panic!("no row for waiting in:\n{table}"));
    assert!(row.contains("False   WaitingForStsBudget"), "{table}");
    let detail = ok(cli(&admin, &["status", "-n", &ns, "waiting"])?);
    for want in [
        "STS budget:   waiting for a turn",
        "1 STS call(s) queued for this account's rate limit in its region (0.01/s), about 100s",
        "this Identity waits its turn",
    ] {
        assert!(detail.contains(want), "missing {want:?} in:\n{detail}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(cli(&admin, &["status", "-n", &ns, "-o", "json"])?))?;
    let waits = |n: &str| {
        json.as_array()
            .and_then(|a| a.iter().find(|v| v["name"] == n))
            .map(|v| v["waitingForStsBudget"].clone())
    };
    assert_eq!(waits("waiting"), Some(serde_json::Value::Bool(true)), "{json}");
    assert_eq!(waits("first"), Some(serde_json::Value::Bool(false)), "{json}");

    // Waiting costs no STS call and no further status write.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = kube::Api::<Identity>::namespaced(client.clone(), &ns)
        .get("waiting")
        .await?;
    assert_eq!(
        again.metadata.resource_version, version,
        "the Identity was written while it waited"
    );
    assert_eq!(sts.calls().total("AssumeRoleWithWebIdentity"), 1, "{:?}", sts.calls());
    Ok(())
}

#[tokio::test]
async fn renew_causes_exactly_one_renewal_and_a_second_request_within_the_interval_none() -> anyhow::Result<()> {
    use atmos_auth_controller::api::Identity;
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "ops-renew").await?;
    let sts = start_sts(cp);
    let _controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
    let admin = cp.kubeconfig_path().display().to_string();
    apply(&client, &ns, &profile("20m")).await?;
    // A two-link chain: the parent's session is cached, so a renewal is one AssumeRole.
    apply(&client, &ns, &identity("net", "  identity: acme/network")).await?;
    let issued = wait_reason(&client, &ns, "net", "CredentialsIssued", Duration::from_secs(60)).await?;
    let identities: kube::Api<Identity> = kube::Api::namespaced(client.clone(), &ns);

    // A request less than the minimum interval after a refresh is answered by it: wait out
    // the interval after the first issue, so that this request needs a renewal.
    let issued_at: jiff::Timestamp = issued
        .status
        .and_then(|s| s.last_refresh_time)
        .unwrap_or_default()
        .parse()?;
    let interval = atmos_auth_controller::settings::MIN_UNREQUESTED_REFRESH;
    let due = issued_at + jiff::SignedDuration::try_from(interval)? + jiff::SignedDuration::from_millis(500);
    if let Ok(wait) = Duration::try_from(due.duration_since(jiff::Timestamp::now())) {
        tokio::time::sleep(wait).await;
    }
    sts.reset_calls();

    let asked = |out: &str| -> String {
        out.split("requested at ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .unwrap_or_default()
            .to_owned()
    };
    let served = |asked: String| {
        let identities = identities.clone();
        async move {
            wait_for(Duration::from_secs(30), || {
                let (identities, asked) = (identities.clone(), asked.clone());
                async move {
                    let s = identities.get("net").await?.status.unwrap_or_default();
                    Ok(s.renew_requested_at.as_deref() == Some(asked.as_str()) && s.renew_served_at.is_some())
                }
            })
            .await
        }
    };
    let first = ok(cli(&admin, &["renew", "-n", &ns, "net"])?);
    assert!(
        first.contains(&format!("renewal of Identity {ns}/net requested at")),
        "{first}"
    );
    served(asked(&first)).await?;
    let calls = sts.calls();
    assert_eq!(
        (calls.total("AssumeRole"), calls.total("AssumeRoleWithWebIdentity")),
        (1, 0),
        "one renewal with the cached parent: {calls:?}"
    );
    let status = ok(cli(&admin, &["status", "-n", &ns, "net"])?);
    assert!(
        status.contains("Renew asked:") && status.contains("(served "),
        "{status}"
    );

    // A second request at once: answered by that renewal, no STS call.
    let second = ok(cli(&admin, &["renew", "-n", &ns, "net"])?);
    served(asked(&second)).await?;
    let calls = sts.calls();
    assert_eq!(
        calls.total("AssumeRole"),
        1,
        "a second request within the interval: {calls:?}"
    );

    // Asking needs patch on the Identity.
    kubectl(
        cp,
        &["apply", "-f", "-"],
        Some(&format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: identity-reader, namespace: {ns}}}
rules: [{{apiGroups: [auth.atmos.tools], resources: [identities], verbs: [get, list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: identity-reader, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: identity-reader}}
subjects: [{{kind: User, name: renew-reader, apiGroup: rbac.authorization.k8s.io}}]
"#
        )),
    )?;
    let reader = cp.user_kubeconfig("renew-reader", &[])?.display().to_string();
    let refused = cli(&reader, &["renew", "-n", &ns, "net"])?;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("you may not patch Identity"),
        "{}",
        text(&refused)
    );
    Ok(())
}
