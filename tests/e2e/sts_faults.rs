//! STS misbehaving: slow answers, 500s, throttling, bodies that are not STS's XML, credentials
//! already expired on arrival, and a revoked parent session. Each failure leaves the Secret
//! as it was and says what happened; the Identity recovers by itself once STS does.

use std::time::{Duration, Instant};

use atmos_auth_testenv::sts::Fault;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::fixture::*;
use crate::{identity, profile};

/// Issues credentials, turns `fault` on before the next renewal (6 s after issue: a 60 s
/// session with refreshBefore 55 s), waits for `reason`, checks the Secret was not touched
/// and the message says `says`, then turns the fault off and times the recovery.
async fn misbehaving(name: &str, fault: Fault, reason: &str, says: &str, extra: &[&str]) -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, name).await?;
    let sts = start_sts(cp);
    let controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), extra)?;
    apply(&client, &ns, &profile("60s")).await?;
    apply(&client, &ns, &identity("admin", "  refreshBefore: 55s")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let before = secrets.get("admin").await?;

    sts.set_fault(Some(fault.clone()));
    let failing = match wait_reason(&client, &ns, "admin", reason, Duration::from_secs(40)).await {
        Ok(i) => i,
        Err(e) => anyhow::bail!("{fault:?}: {e}\n{}", log_tail(&controller.log_text())),
    };
    let message = ready(&failing).unwrap_or_default().2;
    assert!(
        message.contains(says) && message.contains("previous credentials stay in Secret admin"),
        "{fault:?}: {message}"
    );
    let after = secrets.get("admin").await?;
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "{fault:?}: the Secret was written"
    );
    assert_eq!(after.data, before.data);

    sts.set_fault(None);
    let cleared = Instant::now();
    let issued = issued_at(&secrets, "admin").await?;
    wait_for(Duration::from_secs(60), || async {
        Ok(issued_at(&secrets, "admin").await? != issued)
    })
    .await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(10)).await?;
    eprintln!(
        "RECOVERY sts {fault:?}: reason {reason}; renewed {:.1} s after STS recovered",
        cleared.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::test]
async fn an_sts_slower_than_the_operation_timeout_is_a_timeout() -> anyhow::Result<()> {
    misbehaving(
        "sts-slow",
        Fault::Slow(Duration::from_secs(8)),
        "StsTimeout",
        "timed out",
        &["--sts-timeout", "2s"],
    )
    .await
}

#[tokio::test]
async fn an_sts_500_is_retried_and_reported() -> anyhow::Result<()> {
    // A 5xx marks the endpoint down for everyone: probed, not retried by each Identity.
    misbehaving(
        "sts-500",
        Fault::InternalError,
        "InternalFailure",
        "probed every 2s",
        &[],
    )
    .await
}

#[tokio::test]
async fn sts_throttling_backs_off() -> anyhow::Result<()> {
    misbehaving("sts-throttled", Fault::Throttling, "Throttling", "Rate exceeded", &[]).await
}

#[tokio::test]
async fn an_unreadable_sts_answer_is_reported_as_such() -> anyhow::Result<()> {
    misbehaving(
        "sts-malformed",
        Fault::MalformedBody,
        "StsBadResponse",
        "cannot be read",
        &[],
    )
    .await
}

#[tokio::test]
async fn credentials_expired_on_arrival_are_never_written() -> anyhow::Result<()> {
    misbehaving(
        "sts-expired",
        Fault::ExpiredCredentials,
        "StsCredentialsExpired",
        "already expired",
        &[],
    )
    .await
}

/// A two-link chain whose parent (acme/admin, 1 h) outlives its target (acme/network, 60 s,
/// renewed every 6 s), so each renewal reuses the cached parent session.
fn long_parent_profile() -> String {
    profile("1h").replacen(
        &format!("principal: {{assume_role: \"{NETWORK_ROLE}\", duration: 1h}}"),
        &format!("principal: {{assume_role: \"{NETWORK_ROLE}\", duration: 60s}}"),
        1,
    )
}

#[tokio::test]
async fn a_revoked_parent_session_is_dropped_and_the_chain_retried_from_the_token() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("revoked-parent").await?;
    let profile = long_parent_profile();
    assert!(profile.contains("duration: 60s"), "{profile}");
    apply(&client, &ns, &profile).await?;
    apply(
        &client,
        &ns,
        &identity("net", "  identity: acme/network\n  refreshBefore: 55s"),
    )
    .await?;
    wait_reason(&client, &ns, "net", "CredentialsIssued", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    // One renewal on the cached parent: no new web identity call.
    let first = issued_at(&secrets, "net").await?;
    wait_for(Duration::from_secs(30), || async {
        Ok(issued_at(&secrets, "net").await? != first)
    })
    .await?;
    let calls = sts.calls();
    assert_eq!(calls.ok("AssumeRoleWithWebIdentity"), 1, "{calls:?}");
    assert!(calls.ok("AssumeRole") >= 2, "{calls:?}");

    // IAM revokes every session issued so far: the cached parent now gets AccessDenied,
    // which on its own would be a fix-the-spec error retried after a minute.
    sts.revoke_sessions();
    let revoked = Instant::now();
    let last = issued_at(&secrets, "net").await?;
    let renewed = wait_for(Duration::from_secs(30), || async {
        Ok(issued_at(&secrets, "net").await? != last)
    })
    .await;
    if let Err(e) = renewed {
        let id = Api::<atmos_auth_controller::api::Identity>::namespaced(client.clone(), &ns)
            .get("net")
            .await?;
        anyhow::bail!(
            "not renewed after the revocation: {e}; Ready {:?}\n{}",
            ready(&id),
            log_tail(&controller.log_text())
        );
    }
    let took = revoked.elapsed();
    let id = wait_reason(&client, &ns, "net", "CredentialsIssued", Duration::from_secs(10)).await?;
    assert_eq!(id.status.unwrap_or_default().failed_attempts, None);
    let calls = sts.calls();
    assert_eq!(calls.errors("AssumeRole", "AccessDenied"), 1, "{calls:?}");
    assert_eq!(calls.ok("AssumeRoleWithWebIdentity"), 2, "{calls:?}");
    // The new credentials work.
    let (key, secret, token, _) = process_credentials(&secret_data(&client, &ns, "net").await?)?;
    let arn = caller_arn(&sts.endpoint(), &key, &secret, &token).await?;
    assert!(arn.contains("assumed-role/e2e-network/"), "{arn}");
    eprintln!(
        "RECOVERY revoked parent: renewed {:.1} s after the revocation (next renewal was due within 6 s)",
        took.as_secs_f64()
    );
    Ok(())
}
