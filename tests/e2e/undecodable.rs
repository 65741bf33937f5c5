//! Objects stored before the current CRDs bounded them (nested deeper than serde_json's 128
//! levels in a free-form map, or a field of a type the current schema refuses) must not stop
//! a whole watch: the controller decodes a LIST or WATCH item by item, skips and reports the
//! bad object, and issues and renews everything else. On a private control plane: the objects
//! are stored under a laxer CRD, then the current CRDs are installed.

use std::time::Duration;

use anyhow::{Context, Result};
use atmos_auth_testenv::controlplane::ControlPlane;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::deep::nested;
use crate::fixture::*;
use crate::{identity, profile};

/// `crd` with no schema but "an object with a spec and a status": what an older, laxer
/// release might have installed.
fn laxer(crd: CustomResourceDefinition) -> Result<CustomResourceDefinition> {
    let mut v = serde_json::to_value(crd)?;
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    for version in v["spec"]["versions"].as_array_mut().context("no versions")? {
        version["schema"] = json!({"openAPIV3Schema": {"type": "object",
            "properties": {"spec": open.clone(), "status": open.clone()}}});
        if let Some(o) = version.as_object_mut() {
            o.remove("additionalPrinterColumns");
            o.remove("selectableFields");
        }
    }
    Ok(serde_json::from_value(v)?)
}

/// Creates `doc` at `path` (a collection URL) without decoding the reply (the test's own
/// client decodes with the same depth limit as the controller).
async fn create_raw(client: &Client, path: &str, doc: &Value) -> Result<()> {
    let req = http::Request::post(path)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(doc)?)?;
    client.request_text(req).await?;
    Ok(())
}

#[tokio::test]
async fn undecodable_objects_are_skipped_and_reported_and_the_rest_is_served() -> Result<()> {
    let _heavy = crate::serial::own_control_plane().await;
    let cp = ControlPlane::start()?;
    let lax = CRD_FILES
        .iter()
        .map(|f| crd(f).and_then(laxer))
        .collect::<Result<Vec<_>>>()?;
    install_crd_objects(&cp, lax).await?;
    let client = cp.client().await?;
    let writer = namespace(&client, "undecodable-writer").await?;
    let victim = namespace(&client, "undecodable-victim").await?;

    // Under the laxer CRDs: an AuthProfile and a ClusterAuthProfile nested 200 levels deep in
    // a principal, and an Identity whose refreshBefore is a number.
    let group = "/apis/auth.atmos.tools/v1alpha1";
    let mut deep: Value = serde_saphyr::from_str(&profile("20m"))?;
    deep["metadata"]["name"] = json!("deep");
    deep["spec"]["identities"]["acme/admin"]["principal"]["x"] = nested(200);
    create_raw(&client, &format!("{group}/namespaces/{writer}/authprofiles"), &deep).await?;
    let mut cluster = deep.clone();
    cluster["kind"] = json!("ClusterAuthProfile");
    cluster["metadata"] = json!({"name": "e2e-undecodable"});
    cluster["spec"]["namespaces"] = json!([writer]);
    create_raw(&client, &format!("{group}/clusterauthprofiles"), &cluster).await?;
    let mut wrong: Value = serde_saphyr::from_str(&identity("wrong", ""))?;
    wrong["spec"]["refreshBefore"] = json!(5);
    create_raw(&client, &format!("{group}/namespaces/{writer}/identities"), &wrong).await?;

    // The current CRDs: the stored objects stay as they are.
    install_crds(&cp).await?;
    let sts = start_sts(&cp);
    // Cluster-wide (as admin: no chart, so no admission policies, on this control plane), so
    // one LIST holds them all.
    let admin = cp.kubeconfig_path().display().to_string();
    let controller =
        ControllerProcess::start_with_kubeconfig(&admin, "", &sts.endpoint(), &["--allow-unenforced-admission"])?;
    // 20 s sessions: renewed about 13 s after issue.
    apply(&client, &victim, &profile("20s")).await?;
    apply(&client, &victim, &identity("app", "")).await?;
    wait_reason(&client, &victim, "app", "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &victim);
    let first = issued_at(&secrets, "app").await?;
    wait_for(Duration::from_secs(40), || async {
        Ok(issued_at(&secrets, "app").await? != first)
    })
    .await
    .context("not renewed")?;

    // Each bad object reported: a log line with its name and the error, a metric, and an
    // event on it.
    let log = controller.log_text();
    for name in ["deep", "e2e-undecodable", "wrong"] {
        assert!(
            log.lines()
                .any(|l| l.contains("skipped") && l.contains(&format!("\"{name}\""))),
            "no log line for {name}\n{}",
            log_tail(&log)
        );
    }
    assert!(log.contains("recursion limit"), "{}", log_tail(&log));
    let metrics = controller.admin_get("/metrics").await?.1;
    for kind in ["AuthProfile", "ClusterAuthProfile", "Identity"] {
        assert!(
            metrics.contains(&format!("atmos_auth_undecodable_objects_total{{kind=\"{kind}\"}} 1")),
            "{metrics}"
        );
    }
    let events: Api<Event> = Api::namespaced(client.clone(), &writer);
    wait_for(Duration::from_secs(10), || async {
        Ok(events.list(&Default::default()).await?.items.iter().any(|e| {
            e.reason.as_deref() == Some("Undecodable")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("wrong")
        }))
    })
    .await
    .context("no Undecodable event on Identity wrong")?;
    Ok(())
}
