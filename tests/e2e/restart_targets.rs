//! `spec.rolloutRestartTargets` on the local control plane, with the deployment and replicaset
//! controllers running and the chart's admission policies: a Deployment is restarted (a new
//! ReplicaSet) once per credential change, a writer who may not patch it cannot name it, and
//! the controller's own patches of workloads may change nothing but the restart annotation.

use std::time::Duration;

use atmos_auth_controller::api::Identity;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::Api;
use kube::api::ListParams;

use crate::fixture::*;
use crate::{identity, profile};

const KEY: &str = "auth.atmos.tools/restartedAt";

fn deployment(ns: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}, annotations: {{team: infra}}}}
    spec:
      containers: [{{name: app, image: example.invalid/app:1}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: restart-app, namespace: {ns}}}
rules:
  - apiGroups: [apps]
    resources: [deployments]
    resourceNames: [app]
    verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: restart-app, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: restart-app}}
subjects:
  - {{kind: ServiceAccount, name: {CHART_SERVICE_ACCOUNT}, namespace: {CHART_NAMESPACE}}}
"#
    )
}

async fn restarted_at(api: &Api<Deployment>) -> anyhow::Result<Option<String>> {
    Ok(api
        .get("app")
        .await?
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get(KEY).cloned()))
}

async fn replica_sets(client: &kube::Client, ns: &str) -> anyhow::Result<usize> {
    let list = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app=app"))
        .await?;
    Ok(list.items.len())
}

#[tokio::test]
async fn a_deployment_is_restarted_once_per_credential_change() -> anyhow::Result<()> {
    let Scenario {
        cp,
        client,
        ns,
        sts: _sts,
        controller,
    } = Scenario::start("rollout-restart").await?;
    kubectl(cp, &["apply", "-f", "-"], Some(&deployment(&ns)))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    wait_for(Duration::from_secs(30), || async {
        Ok(replica_sets(&client, &ns).await? == 1)
    })
    .await?;

    // 60 s sessions: renewed about 40 s after issue, each write a restart.
    apply(&client, &ns, &profile("60s")).await?;
    apply(
        &client,
        &ns,
        &identity(
            "runner",
            "  secret: {name: aws-runner, formats: [env]}\n  rolloutRestartTargets: [{kind: Deployment, name: app}]",
        ),
    )
    .await?;
    let issued = wait_reason(&client, &ns, "runner", "CredentialsIssued", Duration::from_secs(60)).await?;
    let first_write = issued.status.and_then(|s| s.last_refresh_time).unwrap_or_default();
    wait_for(Duration::from_secs(30), || async {
        Ok(restarted_at(&deployments).await?.is_some())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    let first = restarted_at(&deployments).await?.unwrap_or_default();
    assert!(
        first >= first_write,
        "restarted at {first}, before the write at {first_write}"
    );
    wait_for(Duration::from_secs(30), || async {
        Ok(replica_sets(&client, &ns).await? == 2)
    })
    .await?;
    // The pod template's other annotation is untouched.
    let template = deployments
        .get("app")
        .await?
        .spec
        .and_then(|s| s.template.metadata)
        .unwrap_or_default();
    assert_eq!(
        template.annotations.unwrap_or_default().get("team").map(String::as_str),
        Some("infra")
    );

    // The renewal: one more restart, after the new write.
    let identities: Api<Identity> = Api::namespaced(client.clone(), &ns);
    wait_for(Duration::from_secs(90), || async {
        let w = identities.get("runner").await?.status.and_then(|s| s.last_refresh_time);
        Ok(w.is_some_and(|w| w > first_write))
    })
    .await?;
    wait_for(Duration::from_secs(30), || async {
        Ok(restarted_at(&deployments).await?.is_some_and(|r| r > first))
    })
    .await?;
    wait_for(Duration::from_secs(30), || async {
        Ok(replica_sets(&client, &ns).await? == 3)
    })
    .await?;
    let second_write = identities
        .get("runner")
        .await?
        .status
        .and_then(|s| s.last_refresh_time)
        .unwrap_or_default();
    assert!(restarted_at(&deployments).await?.unwrap_or_default() >= second_write);
    assert_eq!(
        replica_sets(&client, &ns).await?,
        3,
        "one restart per credential change"
    );

    // The controller's own patches of a workload may change only the restart annotation.
    let controller_user = format!("system:serviceaccount:{CHART_NAMESPACE}:{CHART_SERVICE_ACCOUNT}");
    let patch = |p: &str| {
        kubectl(
            cp,
            &[
                "--as",
                &controller_user,
                "-n",
                &ns,
                "patch",
                "deployment",
                "app",
                "--type",
                "merge",
                "-p",
                p,
            ],
            None,
        )
    };
    let refused = patch(r#"{"spec":{"replicas":5}}"#).unwrap_err().to_string();
    assert!(
        refused.contains("may change only the pod template annotation"),
        "{refused}"
    );
    let refused = patch(r#"{"spec":{"template":{"metadata":{"annotations":{"team":"other"}}}}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("may change only the pod template annotation"),
        "{refused}"
    );
    let refused = patch(r#"{"spec":{"template":{"spec":{"serviceAccountName":"admin"}}}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("may change only the pod template annotation"),
        "{refused}"
    );
    patch(&format!(
        r#"{{"spec":{{"template":{{"metadata":{{"annotations":{{"{KEY}":"2026-01-01T00:00:00Z"}}}}}}}}}}"#
    ))?;

    // A writer who may write Identities and mint the token, but not patch the Deployment,
    // cannot name it.
    let grant = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: identity-writer, namespace: {ns}}}
rules:
  - apiGroups: [auth.atmos.tools]
    resources: [identities]
    verbs: [get, create, patch, update]
  - apiGroups: [""]
    resources: [serviceaccounts/token]
    verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: identity-writer, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: identity-writer}}
subjects: [{{kind: User, name: restart-writer, apiGroup: rbac.authorization.k8s.io}}]
"#
    );
    kubectl(cp, &["apply", "-f", "-"], Some(&grant))?;
    let writer = cp.user_kubeconfig("restart-writer", &[])?;
    let manifest = identity(
        "other",
        "  serviceAccountName: terraform\n  rolloutRestartTargets: [{kind: Deployment, name: app}]",
    );
    let writer = writer.display().to_string();
    let as_writer = |manifest: &str| {
        kubectl(
            cp,
            &["--kubeconfig", &writer, "-n", &ns, "apply", "-f", "-"],
            Some(manifest),
        )
    };
    let refused = as_writer(&manifest).unwrap_err().to_string();
    assert!(
        refused.contains("may not patch") && refused.contains("rolloutRestartTargets"),
        "{refused}"
    );
    // Without the target the same writer is admitted: the refusal is about the Deployment.
    as_writer(&identity("other", "  serviceAccountName: terraform"))?;
    Ok(())
}
