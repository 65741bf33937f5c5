//! Several identities in one Secret, with real consumers: the AWS CLI and aws-sdk-go-v2
//! switch identities by `AWS_PROFILE` with the mounted `config` alone, and one Go process
//! uses two profiles at once (as a Terraform configuration with two provider aliases does)
//! across renewals; every renewal renews all identities with the fewest STS calls the
//! chains allow (one web identity exchange, the shared parent reused) and one Secret write;
//! an identity removed from the list loses its keys.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use atmos_auth_controller::api::Identity;
use atmos_auth_controller::output::labels;
use atmos_auth_controller::output::render::process_key;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;

use crate::consumers::{Kubelet, RUN_FOR, SESSION, check_calls, cli_caller_arn, consumer, go_caller, run_go_caller};
use crate::fixture::*;

/// acme/admin (from the provider) and two identities chained from it, each with a fixed
/// session name so every renewal's ARN is the same.
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
      kind: aws/assume-role
      via: {{provider: cluster-oidc}}
      principal: {{assume_role: "{ADMIN_ROLE}", duration: {SESSION}, region: us-east-2, session_name: multi-admin}}
    acme/network:
      kind: aws/assume-role
      via: {{identity: acme/admin}}
      principal: {{assume_role: "{NETWORK_ROLE}", duration: {SESSION}, session_name: multi-network}}
    acme/audit:
      kind: aws/assume-role
      via: {{identity: acme/admin}}
      principal: {{assume_role: "{AUDIT_ROLE}", duration: {SESSION}, session_name: multi-audit, external_id: audit-ext-id}}
"#
    )
}

fn identity(list: &[&str], mount_path: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: multi}}\nspec:\n  profile: k8s\n  identities: [{}]\n  secret: {{name: multi, mountPath: {mount_path}}}\n",
        list.join(", ")
    )
}

fn arn(role: &str, session: &str) -> String {
    format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}")
}

#[tokio::test]
async fn several_identities_in_one_secret_serve_the_cli_and_one_go_process_across_renewals() -> Result<()> {
    let build = tokio::task::spawn_blocking(go_caller);
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("multi").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    // Every write of the Secret, counted by resource version from before the first.
    let writes = Arc::new(AtomicUsize::new(0));
    let counter = writes.clone();
    let watch = watcher(
        secrets.clone(),
        watcher::Config::default().fields("metadata.name=multi"),
    );
    let watch_task = tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        let mut events = watch.boxed();
        while let Some(Ok(event)) = events.next().await {
            if let watcher::Event::Apply(s) | watcher::Event::InitApply(s) = event
                && seen.insert(s.metadata.resource_version.clone())
            {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });

    let kubelet = Kubelet::start(&client, &ns, "multi")?;
    apply(&client, &ns, &profile()).await?;
    // Children listed before their parent: the controller still exchanges the parent first.
    let list = ["acme/network", "acme/admin", "acme/audit"];
    apply(&client, &ns, &identity(&list, &kubelet.mount_path())).await?;
    let issued = wait_reason(&client, &ns, "multi", "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;

    // Three identities: one AssumeRoleWithWebIdentity (acme/admin, reused as the parent of
    // the other two), two AssumeRole. Separately that would be three and two.
    let calls = sts.calls();
    assert_eq!(calls.ok("AssumeRoleWithWebIdentity"), 1, "{calls:?}");
    assert_eq!(calls.ok("AssumeRole"), 2, "{calls:?}");
    eprintln!("[multi] first issue of 3 identities: {calls:?}");

    // Status: each identity's expiry and data key.
    let status = issued.status.clone().unwrap_or_default();
    let names: Vec<&str> = status.identities.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, list);
    for i in &status.identities {
        assert!(i.expiration.is_some(), "{i:?}");
        assert_eq!(i.data_key.as_deref(), Some(process_key(&i.name).as_str()));
    }
    assert_eq!(status.identity.as_deref(), Some("acme/network,acme/admin,acme/audit"));

    // The Secret: one config, one credential_process output per identity.
    let data = secret_data(&client, &ns, "multi").await?;
    let mut expected: BTreeSet<String> = list.iter().map(|n| process_key(n)).collect();
    expected.insert("config".into());
    assert_eq!(data.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for name in list {
        assert!(
            data["config"].contains(&format!("[profile {name}]")),
            "{}",
            data["config"]
        );
    }

    // The AWS CLI: the mounted config alone, switching identity by AWS_PROFILE.
    kubelet.wait_mounted().await?;
    let home = tempfile::tempdir()?;
    for (profile, role, session) in [
        ("acme/admin", "e2e-admin", "multi-admin"),
        ("acme/network", "e2e-network", "multi-network"),
        ("acme/audit", "e2e-audit", "multi-audit"),
    ] {
        let mut cmd = consumer("aws");
        cmd.env("HOME", home.path())
            .env("AWS_CONFIG_FILE", kubelet.path().join("config"))
            .env("AWS_PROFILE", profile);
        let got = cli_caller_arn(cmd, &sts.endpoint(), &[]).await?;
        assert_eq!(got, arn(role, session), "AWS_PROFILE={profile}");
    }

    // One Go process, two profiles at once, for longer than two sessions.
    let bin = build.await??;
    let mut cmd = consumer(&bin);
    cmd.args([
        "-every",
        "2s",
        "-for",
        &format!("{}s", RUN_FOR.as_secs()),
        "-profiles",
        "acme/admin,acme/network",
    ])
    .env("HOME", home.path())
    .env("AWS_CONFIG_FILE", kubelet.path().join("config"))
    .env("AWS_ENDPOINT_URL_STS", sts.endpoint());
    let started = Instant::now();
    let all = run_go_caller(cmd, "multi/two-profiles".into()).await?;
    for (profile, expected) in [
        ("acme/admin", arn("e2e-admin", "multi-admin")),
        ("acme/network", arn("e2e-network", "multi-network")),
    ] {
        let mine = of_profile(&all, profile);
        let keys = check_calls(&mine, &expected).with_context(|| format!("profile {profile}"))?;
        eprintln!(
            "[multi] {profile}: {} calls, no error over {:.1?}; {keys} credential sets in turn",
            mine.len(),
            started.elapsed()
        );
    }

    // Every issue renewed all three together: per web identity exchange, two AssumeRole and
    // one Secret write.
    let calls = sts.calls();
    let exchanges = calls.ok("AssumeRoleWithWebIdentity");
    ensure!(exchanges >= 3, "fewer than two renewals in the run: {calls:?}");
    assert_eq!(calls.ok("AssumeRole"), 2 * exchanges, "{calls:?}");
    // The watch may trail the last write by a moment.
    wait_for(Duration::from_secs(5), || async {
        Ok(writes.load(Ordering::SeqCst) as u64 >= sts.calls().ok("AssumeRoleWithWebIdentity"))
    })
    .await?;
    let (w, x) = (
        writes.load(Ordering::SeqCst) as u64,
        sts.calls().ok("AssumeRoleWithWebIdentity"),
    );
    assert!(w == x || w == x + 1, "{w} Secret writes for {x} issues");
    eprintln!("[multi] {x} issues of 3 identities, {w} Secret writes, {calls:?}");

    // acme/audit leaves the list: its key and its section go at the next write.
    let api: Api<Identity> = Api::namespaced(client.clone(), &ns);
    api.patch(
        "multi",
        &PatchParams::apply("e2e-test").force(),
        &Patch::Apply(serde_saphyr::from_str::<serde_json::Value>(&identity(
            &["acme/admin", "acme/network"],
            &kubelet.mount_path(),
        ))?),
    )
    .await?;
    let audit_key = process_key("acme/audit");
    wait_for(Duration::from_secs(30), || async {
        let data = secret_data(&client, &ns, "multi").await?;
        Ok(!data.contains_key(&audit_key) && !data["config"].contains("acme/audit"))
    })
    .await
    .context("acme/audit's key was not pruned")?;
    let data = secret_data(&client, &ns, "multi").await?;
    assert_eq!(data.len(), 3, "{:?}", data.keys());
    let annotations = secrets
        .get_metadata("multi")
        .await?
        .metadata
        .annotations
        .unwrap_or_default();
    let recorded: BTreeSet<&str> = annotations[labels::DATA_KEYS].split(',').collect();
    assert_eq!(
        recorded,
        BTreeSet::from([process_key("acme/admin").as_str(), process_key("acme/network").as_str()])
    );
    watch_task.abort();
    Ok(())
}

/// The calls of one profile of a `-profiles` run.
fn of_profile(calls: &[crate::consumers::Call], profile: &str) -> Vec<crate::consumers::Call> {
    calls.iter().filter(|c| c.get("profile") == profile).cloned().collect()
}

#[tokio::test]
async fn a_list_with_env_or_overrides_is_refused_at_apply_time() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "multi-cel").await?;
    let api: Api<Identity> = Api::namespaced(client.clone(), &ns);
    let base = "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {name: x}\nspec:\n  profile: k8s\n  identities: [a, b]\n";
    let cases = [
        (
            "env format",
            "  secret: {formats: [process, env]}\n",
            "cannot use the env format",
        ),
        (
            "override",
            "  session: {duration: 1h}\n",
            "cannot be combined with overrides",
        ),
        (
            "principal override",
            "  principal: {session_name: run}\n",
            "cannot be combined with overrides",
        ),
        (
            "both",
            "  identity: a\n",
            "set spec.identity or spec.identities, not both",
        ),
        ("duplicate", "", "Duplicate value"),
    ];
    for (case, extra, message) in cases {
        let mut yaml = format!("{base}{extra}");
        if case == "duplicate" {
            yaml = yaml.replace("[a, b]", "[a, a]");
        }
        let doc: serde_json::Value = serde_saphyr::from_str(&yaml)?;
        let err = api
            .create(&Default::default(), &serde_json::from_value(doc)?)
            .await
            .expect_err(case);
        assert!(err.to_string().contains(message), "{case}: {err}");
    }
    // The same list without them is accepted.
    let ok: serde_json::Value = serde_saphyr::from_str(&format!("{base}  secret: {{formats: [process, files]}}\n"))?;
    api.create(&Default::default(), &serde_json::from_value(ok)?).await?;
    Ok(())
}

#[tokio::test]
async fn the_files_layout_of_several_identities_serves_the_aws_cli() -> Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("multi-files").await?;
    let kubelet = Kubelet::start(&client, &ns, "multi")?;
    apply(&client, &ns, &profile()).await?;
    let yaml = identity(&["acme/admin", "acme/network"], &kubelet.mount_path())
        .replace("mountPath: ", "formats: [files], mountPath: ");
    apply(&client, &ns, &yaml).await?;
    wait_reason(&client, &ns, "multi", "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    let data = secret_data(&client, &ns, "multi").await?;
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        ["config", "credentials"]
    );
    kubelet.wait_mounted().await?;
    let home = tempfile::tempdir()?;
    for (profile, role, session) in [
        ("acme/admin", "e2e-admin", "multi-admin"),
        ("acme/network", "e2e-network", "multi-network"),
    ] {
        let mut cmd = consumer("aws");
        cmd.env("HOME", home.path())
            .env("AWS_CONFIG_FILE", kubelet.path().join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", kubelet.path().join("credentials"))
            .env("AWS_PROFILE", profile);
        let got = cli_caller_arn(cmd, &sts.endpoint(), &[]).await?;
        assert_eq!(got, arn(role, session), "AWS_PROFILE={profile}");
    }
    Ok(())
}
