//! One namespace's writer must not stop the controller for every namespace: a value nested
//! deeper than the JSON decoder of kube-client accepts (serde_json's limit of 128 levels) in
//! an AuthProfile or an Identity would make every LIST of that kind fail to decode, so a
//! cluster-wide controller would never sync and no Identity anywhere would be renewed. The
//! CRD schema bounds the free-form parts (`src/api/free_form.rs`); this test proves the
//! outcome on a private control plane, since a cluster-wide controller on the shared one
//! would reconcile other tests' Identities.

use std::time::Duration;

use atmos_auth_testenv::controlplane::ControlPlane;
use kube::Client;
use serde_json::{Value, json};

use crate::fixture::*;
use crate::{identity, profile};

/// `{"x": {"x": ... "deep" ...}}`, `levels` maps deep.
pub fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("deep"), |inner, _| json!({ "x": inner }))
}

/// Server-side applies `doc` (kind `plural`) and returns the raw reply, undecoded (the
/// test's own client decodes with the same depth limit as the controller). `Err` is the
/// API server's refusal.
async fn apply_raw(client: &Client, ns: &str, plural: &str, doc: &Value) -> anyhow::Result<Result<(), String>> {
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let req = http::Request::patch(format!(
        "/apis/auth.atmos.tools/v1alpha1/namespaces/{ns}/{plural}/{name}?fieldManager=e2e-test&force=true"
    ))
    .header("Content-Type", "application/apply-patch+yaml")
    .body(serde_json::to_vec(doc)?)?;
    Ok(match client.request_text(req).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(status.message),
        Err(e) => return Err(e.into()),
    })
}

#[tokio::test]
async fn a_deep_profile_in_one_namespace_does_not_stop_another() -> anyhow::Result<()> {
    let _heavy = crate::serial::own_control_plane().await;
    let cp = ControlPlane::start()?;
    install_crds(&cp).await?;
    let client = cp.client().await?;
    let writer = namespace(&client, "deep-writer").await?;
    let victim = namespace(&client, "deep-victim").await?;

    // 200 levels below a principal key and a provider spec key, and in an Identity's
    // principal: far past serde_json's 128, far below what the API server accepts.
    let mut deep_profile: Value = serde_saphyr::from_str(&profile("1h"))?;
    deep_profile["spec"]["identities"]["acme/admin"]["principal"]["x"] = nested(200);
    deep_profile["spec"]["providers"]["cluster-oidc"]["spec"]["x"] = nested(200);
    deep_profile["spec"]["identities"]["acme/admin"]["spec"] = nested(200);
    let profile_refused = apply_raw(&client, &writer, "authprofiles", &deep_profile).await?;
    let mut deep_identity: Value = serde_saphyr::from_str(&identity("deep", ""))?;
    deep_identity["spec"]["principal"] = json!({ "x": nested(200) });
    let identity_refused = apply_raw(&client, &writer, "identities", &deep_identity).await?;

    let sts = start_sts(&cp);
    let controller = ControllerProcess::start_cluster_wide(&cp, &sts.endpoint())?;
    apply(&client, &victim, &profile("1h")).await?;
    apply(&client, &victim, &identity("app", "")).await?;
    let issued = wait_reason(&client, &victim, "app", "CredentialsIssued", Duration::from_secs(60)).await;
    assert!(
        issued.is_ok(),
        "an Identity in {victim} was not issued while {writer} holds deep objects (profile \
         refused: {profile_refused:?}, identity refused: {identity_refused:?}): {issued:?}\n{}",
        log_tail(&controller.log_text())
    );
    // The bound is the API server's: the deep objects never reach the controller.
    assert!(profile_refused.is_err(), "the deep AuthProfile was accepted");
    assert!(identity_refused.is_err(), "the deep Identity was accepted");
    Ok(())
}
