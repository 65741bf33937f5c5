//! A tenant may not steer a platform's chain. An Identity that uses a ClusterAuthProfile may
//! override only what the profile's `spec.allowedOverrides` lists (nothing by default), never
//! `kind`, `via` or `principal.external_id` (refused at apply time); and an external id goes
//! to STS only with the role the profile names it for, whatever the profile's kind. The local
//! STS records each role and external id it is sent, so "never reached STS" is observed.

use std::time::Duration;

use anyhow::{Context, Result};
use atmos_auth_controller::api::ClusterAuthProfile;
use atmos_auth_controller::output::labels;
use atmos_auth_testenv::sts::LocalSts;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::cluster_profiles::apply_cluster_profile;
use crate::fixture::*;

const EXT_ID: &str = "audit-ext-id";

/// The `auth:` block both tests use: `admin` from the ServiceAccount, `audit` chained from it
/// with the external id e2e-audit demands (indented under `spec:`).
fn auth_block() -> String {
    format!(
        r#"  providers:
    cluster-oidc:
      kind: kubernetes/oidc
      spec: {{audience: sts.amazonaws.com, service_account: terraform}}
  identities:
    admin:
      default: true
      kind: aws/assume-role
      via: {{provider: cluster-oidc}}
      principal: {{assume_role: "{ADMIN_ROLE}", duration: 20m}}
    audit:
      kind: aws/assume-role
      via: {{identity: admin}}
      principal: {{assume_role: "{AUDIT_ROLE}", external_id: {EXT_ID}, duration: 20m}}
"#
    )
}

/// The platform's profile selecting `ns`, with the [`auth_block`]; `allowed`: its
/// `allowedOverrides`, if any.
fn platform_profile(name: &str, ns: &str, allowed: Option<&str>) -> String {
    let allowed = allowed
        .map(|a| format!("\n  allowedOverrides: [{a}]"))
        .unwrap_or_default();
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: ClusterAuthProfile\nmetadata: {{name: {name}}}\nspec:\n  namespaces: [{ns}]{allowed}\n{}",
        auth_block()
    )
}

/// An Identity of ClusterAuthProfile `profile`'s identity `audit`, with `body` (override
/// fields, indented two spaces) added.
fn tenant_identity(name: &str, profile: &str, body: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: {name}}}\nspec:\n  profile: {profile}\n  profileKind: ClusterAuthProfile\n  identity: audit\n{body}\n"
    )
}

/// Fails if STS was ever sent `EXT_ID` with a role other than e2e-audit.
fn assert_external_id_only_with_its_role(sts: &LocalSts) {
    let calls = sts.role_calls();
    let wrong: Vec<_> = calls
        .iter()
        .filter(|c| c.external_id.as_deref() == Some(EXT_ID) && c.role_arn != AUDIT_ROLE)
        .collect();
    assert!(
        wrong.is_empty(),
        "the profile's external id reached STS with another role: {wrong:?}"
    );
}

#[tokio::test]
async fn a_tenant_cannot_steer_a_cluster_profiles_chain() -> Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("cap-steer").await?;
    let profile = "e2e-cap-steer";
    // Nothing allowed: the default.
    apply_cluster_profile(&client, &platform_profile(profile, &ns, None)).await?;
    let t = Duration::from_secs(60);
    let fail = |e: anyhow::Error| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text()));

    // Refused at apply time, whatever the profile allows: the chain's shape and its external id.
    for (name, body, field) in [
        ("via", "  via: {identity: admin}", "via"),
        ("kind", "  kind: aws/assume-role", "kind"),
        ("ext", "  principal: {external_id: other-ext-id}", "external_id"),
    ] {
        let err = apply(&client, &ns, &tenant_identity(name, profile, body))
            .await
            .err()
            .with_context(|| format!("an Identity overriding {field} of a ClusterAuthProfile was admitted"))?;
        let msg = format!("{err:#}");
        assert!(
            msg.contains("ClusterAuthProfile") && msg.contains("principal.external_id"),
            "{field}: {msg}"
        );
    }

    // Another role, with the platform's parent session and external id: refused, never sent.
    let steer = format!("  principal: {{assume_role: \"{NETWORK_ROLE}\"}}");
    apply(&client, &ns, &tenant_identity("steer", profile, &steer)).await?;
    let i = wait_reason(&client, &ns, "steer", "OverrideNotAllowed", t)
        .await
        .map_err(fail)?;
    let (status, _, message) = ready(&i).unwrap_or_default();
    assert_eq!(status, "False");
    assert!(
        message.contains("spec.principal.assume_role")
            && message.contains(profile)
            && message.contains("allowedOverrides"),
        "{message}"
    );
    assert!(
        Api::<Secret>::namespaced(client.clone(), &ns)
            .get_opt("steer")
            .await?
            .is_none()
    );

    // What the profile allows works, and the external id goes with the profile's role.
    apply_cluster_profile(&client, &platform_profile(profile, &ns, Some("principal.session_name"))).await?;
    apply(
        &client,
        &ns,
        &tenant_identity("named", profile, "  principal: {session_name: tenant-run}"),
    )
    .await?;
    let i = wait_reason(&client, &ns, "named", "CredentialsIssued", t)
        .await
        .map_err(fail)?;
    let s = i.status.unwrap_or_default();
    assert_eq!(s.role_arn.as_deref(), Some(AUDIT_ROLE));
    assert_eq!(s.session_name.as_deref(), Some("tenant-run"));
    assert!(
        sts.role_calls()
            .iter()
            .any(|c| c.role_arn == AUDIT_ROLE && c.external_id.as_deref() == Some(EXT_ID)),
        "{:?}",
        sts.role_calls()
    );

    // The platform stops allowing it: the stored override is refused, the credentials go.
    apply_cluster_profile(&client, &platform_profile(profile, &ns, Some(""))).await?;
    let i = wait_reason(&client, &ns, "named", "OverrideNotAllowed", t)
        .await
        .map_err(fail)?;
    let message = ready(&i).unwrap_or_default().2;
    assert!(message.contains("spec.principal.session_name"), "{message}");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    wait_for(t, || async {
        Ok(secrets.get("named").await?.data.unwrap_or_default().is_empty())
    })
    .await
    .map_err(fail)?;
    let annotations = secrets
        .get_metadata("named")
        .await?
        .metadata
        .annotations
        .unwrap_or_default();
    assert_eq!(
        annotations.get(labels::REVOKED).map(String::as_str),
        Some("OverrideNotAllowed")
    );
    for k in labels::RENEWAL_ANNOTATIONS {
        assert!(!annotations.contains_key(k), "{k} left on a revoked Secret");
    }

    assert_external_id_only_with_its_role(&sts);
    assert!(
        !sts.role_calls().iter().any(|c| c.role_arn == NETWORK_ROLE),
        "the overridden role reached STS: {:?}",
        sts.role_calls()
    );
    Api::<ClusterAuthProfile>::all(client.clone())
        .delete(profile, &Default::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_external_id_goes_only_with_the_role_it_was_written_for() -> Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("ext-id-role").await?;
    let profile = format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: AuthProfile\nmetadata: {{name: k8s}}\nspec:\n{}",
        auth_block()
    );
    apply(&client, &ns, &profile).await?;
    let other_role = format!("  identity: audit\n  principal: {{assume_role: \"{NETWORK_ROLE}\"}}");
    apply(&client, &ns, &crate::identity("other-role", &other_role)).await?;
    let i = wait_reason(&client, &ns, "other-role", "InvalidIdentity", Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    let message = ready(&i).unwrap_or_default().2;
    assert!(
        message.contains("spec.principal.assume_role") && message.contains("external_id"),
        "{message}"
    );
    // The same identity as written is issued, with its external id.
    apply(&client, &ns, &crate::identity("as-written", "  identity: audit")).await?;
    wait_reason(&client, &ns, "as-written", "CredentialsIssued", Duration::from_secs(60)).await?;
    assert_external_id_only_with_its_role(&sts);
    assert!(
        !sts.role_calls().iter().any(|c| c.role_arn == NETWORK_ROLE),
        "{:?}",
        sts.role_calls()
    );
    Ok(())
}
