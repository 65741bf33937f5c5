//! No token, secret key or session token reaches the controller's log, at any level: the whole
//! flow (web identity, a chained link, a renewal, a failure of each kind of link) runs with
//! `RUST_LOG=trace` and the AWS SDK's body logging switched on, and the log is searched for
//! every secret the local STS received or issued.

use std::time::Duration;

use crate::fixture::*;
use crate::{identity, profile};

#[tokio::test]
async fn no_secret_reaches_the_log_at_trace_level() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "logs").await?;
    service_account(&client, &ns, "outsider").await?;
    let sts = start_sts(cp);
    let controller = ControllerProcess::start_with_env(
        cp,
        &ns,
        &sts.endpoint(),
        &[],
        &[
            ("RUST_LOG", "trace"),
            ("LOG_SIGNABLE_BODY", "true"),
            ("LOG_SENSITIVE_BODIES", "true"),
        ],
    )?;

    // Web identity (admin), a chained link (network), and one failure of each link: a
    // ServiceAccount the role does not trust, and a chained role that demands an external id.
    apply(&client, &ns, &profile("30s")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    apply(&client, &ns, &identity("network", "  identity: acme/network")).await?;
    apply(
        &client,
        &ns,
        &identity("outsider", "  serviceAccountName: outsider\n  secret: {name: outsider}"),
    )
    .await?;
    apply(
        &client,
        &ns,
        &identity(
            "audit",
            &format!("  identity: acme/network\n  principal: {{assume_role: \"{AUDIT_ROLE}\"}}"),
        ),
    )
    .await?;
    let t = Duration::from_secs(60);
    wait_reason(&client, &ns, "admin", "CredentialsIssued", t).await?;
    wait_reason(&client, &ns, "network", "CredentialsIssued", t).await?;
    wait_reason(&client, &ns, "outsider", "AccessDenied", t).await?;
    wait_reason(&client, &ns, "audit", "AccessDenied", t).await?;

    // A renewal (not a second first issue): 30 s sessions renew about 20 s after issue.
    wait_for(Duration::from_secs(45), || async {
        Ok(controller
            .log_text()
            .lines()
            .any(|l| l.contains("\"message\":\"credentials renewed\"") && l.contains("\"trigger\":\"Renewing\"")))
    })
    .await?;
    // The renewal's last log lines land by the time the controller is idle.
    crate::waits::idle(&controller, crate::waits::QUIET, Duration::from_secs(30)).await?;

    let log = controller.log_text();
    let secrets_seen = sts.secrets_seen();
    let calls = sts.calls();
    assert!(
        calls.ok("AssumeRoleWithWebIdentity") >= 2 && calls.ok("AssumeRole") >= 1,
        "the flow ran: {calls:?}"
    );
    // Two tokens at least (admin twice, outsider), and two keys per session.
    assert!(secrets_seen.len() >= 6, "{} secrets seen", secrets_seen.len());
    // The log is really at trace level (else the search would prove nothing).
    assert!(
        log.lines().any(|l| l.contains("\"level\":\"TRACE\"")),
        "the controller did not log at trace level; {}",
        log_tail(&log)
    );
    let leaked: Vec<&String> = secrets_seen.iter().filter(|s| log.contains(s.as_str())).collect();
    assert!(
        leaked.is_empty(),
        "{} of {} secrets found in the controller's log ({} lines)",
        leaked.len(),
        secrets_seen.len(),
        log.lines().count()
    );
    Ok(())
}
