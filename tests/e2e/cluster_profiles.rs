//! ClusterAuthProfiles on the local control plane: one profile serves the namespaces it
//! selects and no other; relabelling a namespace in and out takes effect without a restart
//! (out: no token, credentials removed from the Secret); and the IAM trust policy stays the
//! boundary: a role that trusts one namespace's ServiceAccount refuses another's, whatever
//! the selection says (the verifying STS checks the token's `sub`).

use std::time::Duration;

use anyhow::{Context, Result};
use atmos_auth_controller::api::ClusterAuthProfile;
use atmos_auth_controller::output::labels;
use atmos_auth_testenv::sts::{LocalSts, OidcIssuer, StsConfig};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::fixture::*;

const SHARED_ROLE: &str = "arn:aws:iam::123456789012:role/e2e-cap-shared";
const A_ONLY_ROLE: &str = "arn:aws:iam::123456789012:role/e2e-cap-a-only";

/// A ClusterAuthProfile `name` with `selection` (YAML under `spec`) and identities `shared`
/// and `a-only` (two roles), or `admin` (the shared e2e-admin role) when `roles` is false.
fn cluster_profile(name: &str, selection: &str, roles: bool) -> String {
    let identities = if roles {
        format!(
            "    shared:\n      default: true\n      kind: aws/assume-role\n      via: {{provider: cluster-oidc}}\n      principal: {{assume_role: \"{SHARED_ROLE}\", duration: 20m}}\n    \
             a-only:\n      kind: aws/assume-role\n      via: {{provider: cluster-oidc}}\n      principal: {{assume_role: \"{A_ONLY_ROLE}\", duration: 20m}}\n"
        )
    } else {
        format!(
            "    admin:\n      default: true\n      kind: aws/assume-role\n      via: {{provider: cluster-oidc}}\n      principal: {{assume_role: \"{ADMIN_ROLE}\", duration: 20m}}\n"
        )
    };
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: ClusterAuthProfile\nmetadata: {{name: {name}}}\nspec:\n{selection}\n  providers:\n    cluster-oidc:\n      kind: kubernetes/oidc\n      spec: {{audience: sts.amazonaws.com, service_account: terraform}}\n  identities:\n{identities}"
    )
}

/// An Identity naming ClusterAuthProfile `profile`.
fn cluster_identity(name: &str, profile: &str, identity: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: {name}}}\nspec:\n  profile: {profile}\n  profileKind: ClusterAuthProfile\n  identity: {identity}\n"
    )
}

/// Server-side applies a ClusterAuthProfile manifest.
pub(crate) async fn apply_cluster_profile(client: &Client, yaml: &str) -> Result<()> {
    let doc: serde_json::Value = serde_saphyr::from_str(yaml)?;
    let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    Api::<ClusterAuthProfile>::all(client.clone())
        .patch(&name, &PatchParams::apply("e2e-test").force(), &Patch::Apply(&doc))
        .await?;
    Ok(())
}

async fn label_namespace(client: &Client, ns: &str, key: &str, value: Option<&str>) -> Result<()> {
    let patch = serde_json::json!({"metadata": {"labels": {key: value}}});
    Api::<Namespace>::all(client.clone())
        .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The verifying STS with two roles of its own: one trusting the `terraform` ServiceAccount
/// of each test namespace by name (no wildcard), one trusting namespace a's only.
fn start_trusting_sts(cp: &atmos_auth_testenv::controlplane::ControlPlane, a: &str, b: &str, c: &str) -> LocalSts {
    let yaml = format!(
        r#"
account: "{ACCOUNT}"
min_session_seconds: {MIN_SESSION}
roles:
  - arn: {SHARED_ROLE}
    max_session_seconds: 3600
    web_identity:
      audiences: [sts.amazonaws.com]
      subjects: ["system:serviceaccount:{a}:terraform", "system:serviceaccount:{b}:terraform", "system:serviceaccount:{c}:terraform"]
  - arn: {A_ONLY_ROLE}
    max_session_seconds: 3600
    web_identity:
      audiences: [sts.amazonaws.com]
      subjects: ["system:serviceaccount:{a}:terraform"]
"#
    );
    let config = StsConfig::from_yaml_str(&yaml).unwrap_or_else(|e| panic!("bad STS config: {e:#}"));
    let issuer = OidcIssuer {
        url: cp.issuer().to_owned(),
        ca_pem: cp.ca_pem().to_owned(),
    };
    LocalSts::start(config, issuer).unwrap_or_else(|e| panic!("local STS failed to start: {e:#}"))
}

#[tokio::test]
async fn a_cluster_profile_serves_the_namespaces_it_selects_and_trust_stays_per_namespace() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let (a, b, c) = (
        namespace(&client, "cap-a").await?,
        namespace(&client, "cap-b").await?,
        namespace(&client, "cap-c").await?,
    );
    let sts = start_trusting_sts(cp, &a, &b, &c);
    let all = format!("{a},{b},{c}");
    // Three watch scopes in one process; this one writes the profile's status.
    let controller = ControllerProcess::start(cp, &all, &sts.endpoint(), &["--cluster-profile-status", "true"])?;
    // Selected by the name label (set by Kubernetes itself): a and b, not c.
    let selection = format!(
        "  namespaceSelector:\n    matchExpressions:\n      - {{key: kubernetes.io/metadata.name, operator: In, values: [{a}, {b}]}}"
    );
    apply_cluster_profile(&client, &cluster_profile("e2e-cap-platform", &selection, true)).await?;
    for ns in [&a, &b, &c] {
        apply(&client, ns, &cluster_identity("tf", "e2e-cap-platform", "shared")).await?;
    }
    let t = Duration::from_secs(60);
    for ns in [&a, &b] {
        let i = wait_reason(&client, ns, "tf", "CredentialsIssued", t)
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
        assert_eq!(i.status.unwrap_or_default().role_arn.as_deref(), Some(SHARED_ROLE));
        // The token was the Identity's own namespace's ServiceAccount's: the session works.
        let data = secret_data(&client, ns, "tf").await?;
        let (key, secret, token, _) = process_credentials(&data)?;
        let arn = caller_arn(&sts.endpoint(), &key, &secret, &token).await?;
        assert!(arn.contains(":assumed-role/e2e-cap-shared/"), "{arn}");
    }
    // c is not selected: no token (so no STS call for it), no Secret, a clear reason.
    let i = wait_reason(&client, &c, "tf", "NamespaceNotAllowed", t).await?;
    let (_, _, message) = ready(&i).unwrap_or_default();
    assert!(
        message.contains(&format!(
            "namespace {c} is not selected by ClusterAuthProfile e2e-cap-platform"
        )),
        "{message}"
    );
    assert!(
        Api::<Secret>::namespaced(client.clone(), &c)
            .get_opt("tf")
            .await?
            .is_none()
    );
    let calls = sts.calls();
    assert_eq!(calls.total("AssumeRoleWithWebIdentity"), 2, "{calls:?}");

    // The trust policy is the boundary: namespace b is selected, but role a-only trusts
    // namespace a's ServiceAccount alone, and STS refuses b's token.
    apply(&client, &b, &cluster_identity("only", "e2e-cap-platform", "a-only")).await?;
    apply(&client, &a, &cluster_identity("only", "e2e-cap-platform", "a-only")).await?;
    wait_reason(&client, &b, "only", "AccessDenied", t).await?;
    wait_reason(&client, &a, "only", "CredentialsIssued", t).await?;
    assert!(sts.calls().errors("AssumeRoleWithWebIdentity", "AccessDenied") >= 1);

    // The profile's status: valid, and used by a and b (c's Identity may not use it).
    let api: Api<ClusterAuthProfile> = Api::all(client.clone());
    let waited = wait_for(Duration::from_secs(45), || async {
        let s = api.get("e2e-cap-platform").await?.status.unwrap_or_default();
        Ok(s.namespaces == [a.clone(), b.clone()] && s.namespace_count == 2 && s.identity_count == 2)
    })
    .await;
    let s = api.get("e2e-cap-platform").await?.status.unwrap_or_default();
    waited.with_context(|| format!("{s:?}"))?;
    assert!(
        s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"),
        "{s:?}"
    );
    assert!(s.identities.iter().all(|i| i.ready), "{s:?}");
    api.delete("e2e-cap-platform", &Default::default()).await?;
    Ok(())
}

#[tokio::test]
async fn relabelling_a_namespace_in_and_out_takes_effect_without_restart() -> Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("cap-relabel").await?;
    let key = "e2e-cap-relabel";
    let selection = format!("  namespaceSelector:\n    matchLabels: {{{key}: in}}");
    apply_cluster_profile(&client, &cluster_profile("e2e-cap-relabel", &selection, false)).await?;
    apply(&client, &ns, &cluster_identity("tf", "e2e-cap-relabel", "admin")).await?;
    let t = Duration::from_secs(60);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    // Not labelled yet: refused, no exchange.
    wait_reason(&client, &ns, "tf", "NamespaceNotAllowed", t).await?;
    assert_eq!(sts.calls().all(), 0);

    // Labelled in: issued, by the same process.
    label_namespace(&client, &ns, key, Some("in")).await?;
    wait_reason(&client, &ns, "tf", "CredentialsIssued", t)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    let data = secret_data(&client, &ns, "tf").await?;
    let (key_id, secret, token, _) = process_credentials(&data)?;
    caller_arn(&sts.endpoint(), &key_id, &secret, &token).await?;

    // Labelled out: the credentials leave the Secret (it stays, owned and marked), the
    // status says why and clears the expiry.
    label_namespace(&client, &ns, key, Some("out")).await?;
    let i = wait_reason(&client, &ns, "tf", "NamespaceNotAllowed", t).await?;
    let status = i.status.unwrap_or_default();
    assert!(
        status.expiration.is_none() && status.renewal_time.is_none(),
        "{status:?}"
    );
    let (_, _, message) = ready(&Api::namespaced(client.clone(), &ns).get("tf").await?).unwrap_or_default();
    assert!(
        message.contains("credentials were removed from its Secrets"),
        "{message}"
    );
    wait_for(t, || async {
        let s = secrets.get("tf").await?;
        Ok(s.data.unwrap_or_default().is_empty())
    })
    .await?;
    let meta = secrets.get_metadata("tf").await?.metadata;
    let annotations = meta.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get(labels::REVOKED).map(String::as_str),
        Some("NamespaceNotAllowed")
    );
    for k in labels::RENEWAL_ANNOTATIONS {
        assert!(!annotations.contains_key(k), "{k} left on a revoked Secret");
    }
    let calls = sts.calls().all();

    // And back in: fresh credentials, the mark gone.
    label_namespace(&client, &ns, key, Some("in")).await?;
    wait_reason(&client, &ns, "tf", "CredentialsIssued", t).await?;
    wait_for(t, || async {
        let a = secrets
            .get_metadata("tf")
            .await?
            .metadata
            .annotations
            .unwrap_or_default();
        Ok(!a.contains_key(labels::REVOKED) && a.contains_key(labels::EXPIRATION))
    })
    .await?;
    let data = secret_data(&client, &ns, "tf").await?;
    let (key_id, secret, token, _) = process_credentials(&data)?;
    caller_arn(&sts.endpoint(), &key_id, &secret, &token).await?;
    assert!(sts.calls().all() > calls);
    Api::<ClusterAuthProfile>::all(client.clone())
        .delete("e2e-cap-relabel", &Default::default())
        .await?;
    Ok(())
}
