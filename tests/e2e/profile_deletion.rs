//! A deleted profile (AuthProfile or ClusterAuthProfile) leaves no live credentials behind:
//! after a grace period its Identities' Secrets are emptied as a revoked namespace's are;
//! within it, a GitOps delete-and-recreate changes nothing.

use std::time::{Duration, Instant};

use anyhow::Result;
use atmos_auth_controller::api::{AuthProfile, ClusterAuthProfile};
use atmos_auth_controller::output::labels;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::cluster_profiles::apply_cluster_profile;
use crate::fixture::*;
use crate::{identity, profile};

/// The grace period the controller is started with (the default is 10 minutes).
const GRACE: Duration = Duration::from_secs(10);

/// A ClusterAuthProfile `name` selecting namespace `ns` by name.
fn cluster_profile(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: ClusterAuthProfile\nmetadata: {{name: {name}}}\nspec:\n  namespaces: [{ns}]\n  providers:\n    cluster-oidc:\n      kind: kubernetes/oidc\n      spec: {{audience: sts.amazonaws.com, service_account: terraform}}\n  identities:\n    admin:\n      default: true\n      kind: aws/assume-role\n      via: {{provider: cluster-oidc}}\n      principal: {{assume_role: \"{ADMIN_ROLE}\", duration: 20m}}\n"
    )
}

/// Whether Secret `name` holds no credentials and is marked revoked for `reason`.
async fn emptied(secrets: &Api<Secret>, name: &str, reason: &str) -> Result<bool> {
    let s = secrets.get(name).await?;
    let a = s.metadata.annotations.unwrap_or_default();
    let data = s.data.unwrap_or_default();
    Ok(data.is_empty()
        && a.get(labels::REVOKED).map(String::as_str) == Some(reason)
        && labels::RENEWAL_ANNOTATIONS.iter().all(|k| !a.contains_key(*k)))
}

async fn delete_profiles(client: &Client, ns: &str, cluster: &str) -> Result<()> {
    Api::<AuthProfile>::namespaced(client.clone(), ns)
        .delete("k8s", &Default::default())
        .await?;
    Api::<ClusterAuthProfile>::all(client.clone())
        .delete(cluster, &Default::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_deleted_profile_empties_its_secrets_after_the_grace_period_not_within_it() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "profile-deleted").await?;
    let sts = start_sts(cp);
    // Through the environment, as the chart sets it.
    let grace = format!("{}s", GRACE.as_secs());
    let controller = ControllerProcess::start_with_env(
        cp,
        &ns,
        &sts.endpoint(),
        &[],
        &[("ATMOS_AUTH_PROFILE_DELETION_GRACE", &grace)],
    )?;
    let cluster = "e2e-profile-gone";
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let t = Duration::from_secs(60);
    let fail = |e: anyhow::Error| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text()));

    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("local", "")).await?;
    apply_cluster_profile(&client, &cluster_profile(cluster, &ns)).await?;
    let shared = format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: shared}}\nspec:\n  profile: {cluster}\n  profileKind: ClusterAuthProfile\n"
    );
    apply(&client, &ns, &shared).await?;
    for name in ["local", "shared"] {
        wait_reason(&client, &ns, name, "CredentialsIssued", t)
            .await
            .map_err(fail)?;
    }
    let before = issued_at(&secrets, "local").await?;

    // Deleted and applied again at once (a GitOps tool replacing it): nothing is emptied,
    // nothing re-issued.
    Api::<AuthProfile>::namespaced(client.clone(), &ns)
        .delete("k8s", &Default::default())
        .await?;
    let gone = wait_reason(&client, &ns, "local", "ProfileNotFound", t)
        .await
        .map_err(fail)?;
    let (_, _, message) = ready(&gone).unwrap_or_default();
    assert!(message.contains("removed at"), "{message}");
    apply(&client, &ns, &profile("20m")).await?;
    wait_reason(&client, &ns, "local", "CredentialsIssued", t)
        .await
        .map_err(fail)?;
    assert_eq!(issued_at(&secrets, "local").await?, before, "re-issued");
    assert!(!secret_data(&client, &ns, "local").await?.is_empty());

    // Deleted for good: both Secrets are emptied, not before the grace period ends.
    let deleted = Instant::now();
    delete_profiles(&client, &ns, cluster).await?;
    for name in ["local", "shared"] {
        wait_for(t, || emptied(&secrets, name, "ProfileNotFound"))
            .await
            .map_err(|e| anyhow::anyhow!("Secret {name} not emptied: {e:#}"))
            .map_err(fail)?;
    }
    let waited = deleted.elapsed();
    assert!(waited >= GRACE, "emptied after {waited:?}, within the grace period");
    for name in ["local", "shared"] {
        let i = wait_reason(&client, &ns, name, "ProfileNotFound", t).await?;
        let status = i.status.clone().unwrap_or_default();
        assert!(status.expiration.is_none(), "{status:?}");
        let (_, _, message) = ready(&i).unwrap_or_default();
        assert!(message.contains("credentials were removed"), "{message}");
    }
    Ok(())
}
