//! What the controller must never do: touch a Secret it does not own, mint tokens outside
//! the Identity's namespace or for a profile's own endpoint or audience, keep a Secret
//! after its Identity is gone, or let a credential reach logs, events or status.

use std::time::Duration;

use atmos_auth_controller::api::Identity;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use crate::fixture::*;
use crate::waits::{QUIET, idle};
use crate::{identity, profile};

#[tokio::test]
async fn a_foreign_secret_of_the_same_name_is_left_untouched() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("foreign").await?;
    let foreign = "apiVersion: v1\nkind: Secret\nmetadata: {name: aws-creds, annotations: {team: data}}\nstringData: {config: 'mine'}\n";
    apply(&client, &ns, foreign).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let before = secrets.get("aws-creds").await?;

    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "  secret: {name: aws-creds}")).await?;
    let id = wait_reason(&client, &ns, "admin", "SecretConflict", Duration::from_secs(60)).await?;
    let (status, _, message) = ready(&id).unwrap_or_default();
    assert_eq!(status, "False");
    assert!(
        message.contains("aws-creds") && message.contains("not owned"),
        "{message}"
    );

    // The status write comes back through the watch: once that reconcile is over too, a
    // write to the Secret would have been sent.
    idle(&controller, QUIET, Duration::from_secs(30)).await?;
    let after = secrets.get("aws-creds").await?;
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version);
    assert_eq!(after.data, before.data);
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    assert_eq!(
        sts.calls().all(),
        0,
        "no credentials should be fetched for a Secret that cannot be written"
    );
    Ok(())
}

#[tokio::test]
async fn tokens_are_only_minted_in_the_identitys_own_namespace() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    // `other` has the ServiceAccount the profile names; `tenant` does not.
    let other = namespace(&client, "other-tenant").await?;
    let ns = format!("e2e-{}", "tenant");
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    nss.create(
        &Default::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?,
    )
    .await?;
    let sts = start_sts(cp);
    let _controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    let id = wait_reason(&client, &ns, "admin", "ServiceAccountNotFound", Duration::from_secs(60)).await?;
    let msg = ready(&id).unwrap_or_default().2;
    assert!(msg.contains(&format!("{ns}/terraform")), "{msg}");
    assert!(!msg.contains(&other), "{msg}");
    assert_eq!(sts.calls().all(), 0);
    Ok(())
}

#[tokio::test]
async fn an_endpoint_or_audience_not_allowed_is_refused_before_any_token() -> anyhow::Result<()> {
    let Scenario {
        cp,
        client,
        ns,
        sts,
        controller: _controller,
    } = Scenario::start("refused").await?;
    let with = |extra: &str| {
        profile("20m").replace(
            "spec: {audience: sts.amazonaws.com, service_account: terraform}",
            &format!("spec: {{service_account: terraform, {extra}}}"),
        )
    };
    // Atmos sends an identity's calls to its spec.endpoint_url: one the operator did not
    // allow-list is refused.
    let own_endpoint = profile("20m").replace(
        "      via: {provider: cluster-oidc}\n",
        "      via: {provider: cluster-oidc}\n      spec: {endpoint_url: 'http://evil.example'}\n",
    );
    apply(&client, &ns, &own_endpoint).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    let id = wait_reason(&client, &ns, "admin", "EndpointNotAllowed", Duration::from_secs(60)).await?;
    let msg = ready(&id).unwrap_or_default().2;
    assert!(msg.contains("auth.identities.acme/admin.spec.endpoint_url"), "{msg}");

    apply(&client, &ns, &with(&format!("audience: '{}'", cp.issuer()))).await?;
    let id = wait_reason(&client, &ns, "admin", "AudienceNotAllowed", Duration::from_secs(60)).await?;
    assert!(ready(&id).unwrap_or_default().2.contains("audience"));
    assert_eq!(sts.calls().all(), 0);
    assert!(
        !_controller.log_text().contains("TokenRequest"),
        "a token was requested"
    );
    Ok(())
}

/// As Atmos (`pkg/auth/cloud/aws/resolver.go`): each STS call goes to the endpoint of the
/// identity that makes it, when the operator allow-listed it; a provider's is not used. The
/// controller's own endpoint here goes nowhere, so only the identities' can serve.
#[tokio::test]
async fn sts_calls_go_to_the_identitys_allow_listed_endpoint() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "endpoint").await?;
    let sts = start_sts(cp);
    let ep = sts.endpoint();
    let controller = ControllerProcess::start(cp, &ns, "http://127.0.0.1:9", &["--allowed-endpoint", &ep])?;
    let prof = profile("20m")
        .replace(
            "spec: {audience: sts.amazonaws.com, service_account: terraform}",
            "spec: {audience: sts.amazonaws.com, service_account: terraform, endpoint_url: 'http://evil.example'}",
        )
        .replace(
            "      via: {provider: cluster-oidc}\n",
            &format!("      via: {{provider: cluster-oidc}}\n      spec: {{endpoint_url: '{ep}'}}\n"),
        )
        .replace(
            "      via: {identity: acme/admin}\n",
            &format!("      via: {{identity: acme/admin}}\n      spec: {{endpoint_url: '{ep}'}}\n"),
        );
    apply(&client, &ns, &prof).await?;
    apply(&client, &ns, &identity("network", "  identity: acme/network")).await?;
    wait_reason(&client, &ns, "network", "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(|e| e.context(log_tail(&controller.log_text())))?;
    let calls = sts.calls();
    assert_eq!((calls.ok("AssumeRoleWithWebIdentity"), calls.ok("AssumeRole")), (1, 1));
    Ok(())
}

#[tokio::test]
async fn deleting_the_identity_garbage_collects_its_secret() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts: _sts,
        controller,
    } = Scenario::start("gc").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let series = format!("atmos_auth_identity_expiration_timestamp_seconds{{namespace=\"{ns}\",name=\"admin\"");
    assert!(controller.admin_get("/metrics").await?.1.contains(&series));
    Api::<Identity>::namespaced(client.clone(), &ns)
        .delete("admin", &DeleteParams::default())
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    wait_for(Duration::from_secs(60), || {
        let secrets = secrets.clone();
        async move { Ok(secrets.get_opt("admin").await?.is_none()) }
    })
    .await?;
    // Its per-Identity metrics go with it.
    let c = &controller;
    wait_for(Duration::from_secs(10), || async {
        Ok(!c.admin_get("/metrics").await?.1.contains(&series))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn no_credential_reaches_logs_events_or_status() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts: _sts,
        controller,
    } = Scenario::start("leak").await?;
    apply(&client, &ns, &profile("30s")).await?;
    apply(
        &client,
        &ns,
        &identity("admin", "  secret: {formats: [process, files, env]}"),
    )
    .await?;
    apply(&client, &ns, &identity("net", "  identity: acme/network")).await?;
    // A failing link too: e2e-audit demands an external id the profile does not give.
    let audit = format!("  identity: acme/network\n  principal: {{assume_role: \"{AUDIT_ROLE}\"}}");
    apply(&client, &ns, &identity("audit", &audit)).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    wait_reason(&client, &ns, "net", "CredentialsIssued", Duration::from_secs(60)).await?;
    wait_reason(&client, &ns, "audit", "AccessDenied", Duration::from_secs(60)).await?;
    // One renewal of each, so the renewal path is covered too (30 s sessions: due ~20 s on).
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let first = [issued_at(&secrets, "admin").await?, issued_at(&secrets, "net").await?];
    wait_for(Duration::from_secs(60), || async {
        Ok(issued_at(&secrets, "admin").await? != first[0] && issued_at(&secrets, "net").await? != first[1])
    })
    .await?;
    // Its status write and Event done too.
    idle(&controller, QUIET, Duration::from_secs(30)).await?;

    let mut secrets_seen = Vec::new();
    for name in ["admin", "net"] {
        let data = secret_data(&client, &ns, name).await?;
        let (key, secret, token, _) = process_credentials(&data)?;
        secrets_seen.extend([key, secret, token]);
    }
    let ids = Api::<Identity>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    let status = serde_json::to_string(&ids.items.iter().map(|i| &i.status).collect::<Vec<_>>())?;
    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    let events = serde_json::to_string(&events.items)?;
    let events_v1 = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    let events_v1 = serde_json::to_string(&events_v1.items)?;
    let log = controller.log_text();
    assert!(
        log.contains("credentials renewed"),
        "controller log looks empty:\n{log}"
    );
    assert!(events_v1.contains("Renewed"), "no Renewed event: {events_v1}");
    for (what, text) in [
        ("log", &log),
        ("status", &status),
        ("events", &events),
        ("events.k8s.io", &events_v1),
    ] {
        for s in &secrets_seen {
            assert!(!text.contains(s.as_str()), "a credential appeared in the {what}");
        }
        assert!(!text.contains("eyJ"), "something JWT-shaped appeared in the {what}");
    }
    Ok(())
}

#[tokio::test]
async fn the_api_server_rejects_a_via_with_both_keys() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "cel").await?;
    let bad = profile("20m").replace(
        "via: {identity: acme/admin}",
        "via: {identity: acme/admin, provider: cluster-oidc}",
    );
    let err = apply(&client, &ns, &bad)
        .await
        .expect_err("accepted a via with both keys");
    assert!(
        format!("{err:#}").contains("set exactly one of via.provider"),
        "{err:#}"
    );
    Ok(())
}

#[tokio::test]
async fn when_sts_goes_away_the_secret_stays_and_expiry_is_reported() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller: _controller,
    } = Scenario::start("outage").await?;
    apply(&client, &ns, &profile("20s")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let before = secrets.get("admin").await?;

    // STS stops answering: the endpoint is down (probed every 2 s, not retried by each
    // Identity), and the old credentials stay until they expire, then are reported, never
    // deleted.
    drop(sts);
    let failing = wait_reason(&client, &ns, "admin", "StsUnreachable", Duration::from_secs(30)).await?;
    let msg = ready(&failing).unwrap_or_default().2;
    assert!(
        msg.contains("previous credentials stay in Secret admin") && msg.contains("probed every 2s"),
        "{msg}"
    );
    let expired = wait_reason(&client, &ns, "admin", "Expired", Duration::from_secs(60)).await?;
    let msg = ready(&expired).unwrap_or_default().2;
    assert!(msg.contains("kept, not deleted"), "{msg}");
    let st = expired.status.unwrap_or_default();
    assert!(st.failed_attempts.unwrap_or(0) >= 2, "{st:?}");
    let after = secrets.get("admin").await?;
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version);
    assert_eq!(after.data, before.data);
    Ok(())
}

#[tokio::test]
async fn the_controller_refuses_to_mint_tokens_for_the_api_servers_own_audience() -> anyhow::Result<()> {
    let cp = control_plane();
    let sts = start_sts(cp);
    let mut controller =
        ControllerProcess::start(cp, "e2e-unused", &sts.endpoint(), &["--allowed-audience", cp.issuer()])?;
    assert_eq!(
        controller.wait_exit(Duration::from_secs(20))?,
        Some(false),
        "the controller kept running"
    );
    let log = controller.log_text();
    assert!(log.contains("audience the API server itself accepts"), "{log}");
    Ok(())
}

#[tokio::test]
async fn sts_refusals_are_shown_as_sts_said_and_retried_only_slowly() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller: _controller,
    } = Scenario::start("refusal").await?;
    apply(&client, &ns, &profile("20m")).await?;
    // e2e-admin's MaxSessionDuration is 1 h: STS refuses 2 h, the resolver does not guess.
    apply(&client, &ns, &identity("admin", "  principal: {duration: 2h}")).await?;
    let id = wait_reason(&client, &ns, "admin", "ValidationError", Duration::from_secs(60)).await?;
    let msg = ready(&id).unwrap_or_default().2;
    assert!(
        msg.contains("exceeds the MaxSessionDuration set for this role") && msg.contains("Retried slowly (next in "),
        "{msg}"
    );
    let calls = sts.calls().all();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(sts.calls().all(), calls, "a fix-the-spec error was retried quickly");
    Ok(())
}
