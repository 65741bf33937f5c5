//! Nothing but the admission policies checks who may mint which token. With them only
//! warning, the controller refuses first issues and spec changes (`AdmissionNotEnforced`,
//! an event, a metric), keeps renewing what exists, and serves again once they deny.
//! Policies of their own name (matching nothing), so the shared control plane's stay as
//! they are.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::{Api, Client};

use atmos_auth_controller::controller::admission::POLICIES;

use crate::fixture::*;
use crate::{identity, profile};

const PREFIX: &str = "e2e-admcheck";

/// The five policies named as the controller expects (they match nothing), bound with
/// `actions`.
fn policies(actions: &str) -> String {
    POLICIES
        .iter()
        .map(|p| {
            format!(
                r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {PREFIX}-{p}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {{apiGroups: [e2e.invalid], apiVersions: [v1], operations: [CREATE], resources: [nothings]}}
  validations:
    - expression: "true"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {PREFIX}-{p}}}
spec:
  policyName: {PREFIX}-{p}
  validationActions: [{actions}]
"#
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

async fn enforced(controller: &ControllerProcess) -> Result<Option<bool>> {
    let metrics = controller.admin_get("/metrics").await?.1;
    Ok(metrics
        .lines()
        .find_map(|l| l.strip_prefix("atmos_auth_admission_enforced "))
        .map(|v| v.trim() == "1"))
}

async fn wait_enforced(controller: &ControllerProcess, want: bool) -> Result<()> {
    wait_for(Duration::from_secs(30), || async {
        Ok(enforced(controller).await? == Some(want))
    })
    .await
    .with_context(|| format!("atmos_auth_admission_enforced never {want}"))
}

async fn delete_policies(client: &Client) {
    let (p, b) = (
        Api::<ValidatingAdmissionPolicy>::all(client.clone()),
        Api::<ValidatingAdmissionPolicyBinding>::all(client.clone()),
    );
    for name in POLICIES {
        let _ = b.delete(&format!("{PREFIX}-{name}"), &Default::default()).await;
        let _ = p.delete(&format!("{PREFIX}-{name}"), &Default::default()).await;
    }
}

#[tokio::test]
async fn without_denying_policies_first_issues_and_spec_changes_wait_and_renewals_go_on() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "adm-check").await?;
    let sts = start_sts(cp);
    kubectl(cp, &["apply", "--server-side", "-f", "-"], Some(&policies("Deny")))?;
    let controller = ControllerProcess::start_with_env(
        cp,
        &ns,
        &sts.endpoint(),
        &[],
        &[
            ("ATMOS_AUTH_ADMISSION_POLICY_PREFIX", PREFIX),
            ("ATMOS_AUTH_ADMISSION_CHECK_INTERVAL", "1s"),
        ],
    )?;
    let result = scenario(&client, &ns, &controller).await;
    delete_policies(&client).await;
    result.map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))
}

async fn scenario(client: &Client, ns: &str, controller: &ControllerProcess) -> Result<()> {
    let t = Duration::from_secs(60);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    // In force: served. 20 s sessions, renewed about 13 s after issue.
    apply(client, ns, &profile("20s")).await?;
    apply(client, ns, &identity("existing", "")).await?;
    wait_reason(client, ns, "existing", "CredentialsIssued", t).await?;
    wait_enforced(controller, true).await?;
    let before = issued_at(&secrets, "existing").await?;

    // Only warning: a new Identity and a spec change wait, with the reason and an event.
    let cp = control_plane();
    kubectl(cp, &["apply", "--server-side", "-f", "-"], Some(&policies("Warn")))?;
    wait_enforced(controller, false).await?;
    apply(client, ns, &identity("new", "")).await?;
    let refused = wait_reason(client, ns, "new", "AdmissionNotEnforced", t).await?;
    let (status, _, message) = ready(&refused).unwrap_or_default();
    assert_eq!(status, "False");
    assert!(
        message.contains(&format!(
            "{PREFIX}-identity-serviceaccount is bound with validationActions [\"Warn\"]"
        )),
        "{message}"
    );
    assert!(secrets.get_opt("new").await?.is_none(), "a Secret was issued");
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let evented = events.list(&Default::default()).await?.items.iter().any(|e| {
        e.reason.as_deref() == Some("AdmissionNotEnforced")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("new")
    });
    assert!(evented, "no AdmissionNotEnforced event");
    // ... while what exists is renewed.
    wait_for(Duration::from_secs(40), || async {
        Ok(issued_at(&secrets, "existing").await? != before)
    })
    .await
    .context("the existing Secret was not renewed")?;
    apply(client, ns, &identity("existing", "  identity: acme/network")).await?;
    wait_reason(client, ns, "existing", "AdmissionNotEnforced", t).await?;
    let meta = secrets.get_metadata("existing").await?.metadata;
    let issued_for = meta.annotations.unwrap_or_default();
    assert_eq!(
        issued_for
            .get(atmos_auth_controller::output::labels::IDENTITY)
            .map(String::as_str),
        Some("acme/admin")
    );

    // Denying again: both served.
    kubectl(cp, &["apply", "--server-side", "-f", "-"], Some(&policies("Deny")))?;
    wait_reason(client, ns, "new", "CredentialsIssued", t).await?;
    let existing = wait_reason(client, ns, "existing", "CredentialsIssued", t).await?;
    assert_eq!(
        existing.status.unwrap_or_default().identity.as_deref(),
        Some("acme/network")
    );
    Ok(())
}
