//! The main flow: Secrets appear with working credentials, parent sessions are shared,
//! renewal happens at the computed time and only then, edits renew.

use std::time::Duration;

use atmos_auth_controller::api::Identity;
use atmos_auth_controller::output::labels;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::fixture::*;
use crate::{identity, profile};

#[tokio::test]
async fn two_identities_on_a_chain_get_working_credentials() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller: _controller,
    } = Scenario::start("chain").await?;

    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "  secret: {name: aws-admin}")).await?;
    let admin = wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    apply(
        &client,
        &ns,
        &identity(
            "network",
            "  identity: acme/network\n  principal: {session_name: runner-network}",
        ),
    )
    .await?;
    let network = wait_reason(&client, &ns, "network", "CredentialsIssued", Duration::from_secs(60)).await?;

    // The AuthProfile reports every identity and its chain.
    let profiles: Api<atmos_auth_controller::api::AuthProfile> = Api::namespaced(client.clone(), &ns);
    wait_for(Duration::from_secs(30), || async {
        Ok(profiles.get("k8s").await?.status.is_some_and(|s| s.identity_count == 2))
    })
    .await?;
    let ps = profiles.get("k8s").await?.status.unwrap_or_default();
    assert_eq!(ps.default_identity.as_deref(), Some("acme/admin"));
    assert!(
        ps.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"),
        "{ps:?}"
    );
    let network_state = ps
        .identities
        .iter()
        .find(|i| i.name == "acme/network")
        .expect("acme/network listed");
    assert!(network_state.ready);
    assert_eq!(network_state.chain, ["cluster-oidc", "acme/admin", "acme/network"]);

    // Status says what was resolved and assumed.
    let st = network.status.clone().unwrap_or_default();
    assert_eq!(st.identity.as_deref(), Some("acme/network"));
    assert_eq!(st.chain, ["cluster-oidc", "acme/admin", "acme/network"]);
    assert_eq!(st.role_arn.as_deref(), Some(NETWORK_ROLE));
    assert_eq!(st.session_name.as_deref(), Some("runner-network"));
    assert_eq!(admin.status.unwrap_or_default().identity.as_deref(), Some("acme/admin"));

    // The credentials work: STS accepts them for a signed GetCallerIdentity.
    let data = secret_data(&client, &ns, "network").await?;
    let (key, secret, token, _) = process_credentials(&data)?;
    let arn = caller_arn(&sts.endpoint(), &key, &secret, &token).await?;
    assert_eq!(
        arn,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/e2e-network/runner-network")
    );
    assert!(data["config"].contains("[profile acme/network]"), "{}", data["config"]);
    let data = secret_data(&client, &ns, "aws-admin").await?;
    let (key, secret, token, _) = process_credentials(&data)?;
    let arn = caller_arn(&sts.endpoint(), &key, &secret, &token).await?;
    assert!(
        arn.starts_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/e2e-admin/atmos-acme-admin-"
        )),
        "{arn}"
    );

    // A third Identity on the same chain reuses acme/admin's session: one AssumeRole, no
    // new web identity exchange.
    let before = sts.calls();
    apply(&client, &ns, &identity("network-2", "  identity: acme/network")).await?;
    wait_reason(&client, &ns, "network-2", "CredentialsIssued", Duration::from_secs(60)).await?;
    let after = sts.calls();
    assert_eq!(
        after.ok("AssumeRoleWithWebIdentity"),
        before.ok("AssumeRoleWithWebIdentity"),
        "parent session not reused"
    );
    assert_eq!(after.ok("AssumeRole"), before.ok("AssumeRole") + 1);

    // Between renewals nothing is called and nothing is written.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let rv = secrets.get_metadata("network").await?.metadata.resource_version;
    let calls = sts.calls().all();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(sts.calls().all(), calls, "STS called between renewals");
    assert_eq!(
        secrets.get_metadata("network").await?.metadata.resource_version,
        rv,
        "Secret rewritten between renewals"
    );
    Ok(())
}

#[tokio::test]
async fn renews_at_the_computed_time_and_not_before() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts: _sts,
        controller: _controller,
    } = Scenario::start("renewal").await?;
    apply(&client, &ns, &profile("30s")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let first = secrets.get_metadata("admin").await?;
    let ann = |m: &kube::core::PartialObjectMeta<Secret>, k: &str| -> anyhow::Result<Timestamp> {
        Ok(m.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .ok_or_else(|| anyhow::anyhow!("no {k}"))?
            .parse()?)
    };
    let issued = ann(&first, labels::ISSUED_AT)?;
    let expires = ann(&first, labels::EXPIRATION)?;
    let renew = ann(&first, labels::RENEWAL_TIME)?;
    let lifetime = expires.as_second() - issued.as_second();
    let at = renew.as_second() - issued.as_second();
    // Two thirds of the real lifetime, minus at most 5% jitter.
    assert!(
        (lifetime * 2 / 3 - lifetime / 20 - 1..=lifetime * 2 / 3 + 1).contains(&at),
        "renewal at {at}s of {lifetime}s"
    );

    // Poll: the Secret keeps its resourceVersion until the renewal time, then changes soon after.
    let rv = first.metadata.resource_version.clone();
    let renewed_at = loop {
        let m = secrets.get_metadata("admin").await?;
        let now = Timestamp::now();
        if m.metadata.resource_version != rv {
            assert!(
                now >= renew,
                "Secret rewritten at {now}, before its renewal time {renew}"
            );
            break now;
        }
        assert!(
            now.as_second() < renew.as_second() + 10,
            "not renewed 10 s after {renew}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let second = secrets.get_metadata("admin").await?;
    assert!(ann(&second, labels::ISSUED_AT)? > issued);
    assert!(
        renewed_at.as_second() - renew.as_second() <= 5,
        "renewed {}s late",
        renewed_at.as_second() - renew.as_second()
    );
    let id = Api::<Identity>::namespaced(client.clone(), &ns).get("admin").await?;
    assert_eq!(ready(&id).map(|r| r.1).as_deref(), Some("CredentialsIssued"));
    Ok(())
}

#[tokio::test]
async fn editing_the_identity_renews_at_once() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller: _controller,
    } = Scenario::start("edit").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("net", "  identity: acme/network")).await?;
    wait_reason(&client, &ns, "net", "CredentialsIssued", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let hash = |m: kube::core::PartialObjectMeta<Secret>| {
        m.metadata.annotations.and_then(|a| a.get(labels::SPEC_HASH).cloned())
    };
    let before = hash(secrets.get_metadata("net").await?);

    let api: Api<Identity> = Api::namespaced(client.clone(), &ns);
    let patch = serde_json::json!({"spec": {"principal": {"session_name": "edited"}}});
    api.patch("net", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    wait_for(Duration::from_secs(30), || {
        let api = api.clone();
        async move { Ok(api.get("net").await?.status.and_then(|s| s.session_name).as_deref() == Some("edited")) }
    })
    .await?;
    let after = hash(secrets.get_metadata("net").await?);
    assert_ne!(before, after, "spec hash unchanged after an edit");
    let data = secret_data(&client, &ns, "net").await?;
    let (key, secret, token, _) = process_credentials(&data)?;
    assert!(
        caller_arn(&sts.endpoint(), &key, &secret, &token)
            .await?
            .ends_with("/edited")
    );
    Ok(())
}

#[tokio::test]
async fn dropping_a_format_removes_its_keys() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts: _sts,
        controller: _controller,
    } = Scenario::start("formats").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "  secret: {formats: [process, env]}")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    assert!(
        secret_data(&client, &ns, "admin")
            .await?
            .contains_key("AWS_SECRET_ACCESS_KEY")
    );

    // The README's precedence trap, fixed by the user: the static keys must go, or envFrom
    // would keep shadowing credential_process with keys that expire.
    apply(&client, &ns, &identity("admin", "  secret: {formats: [process]}")).await?;
    wait_for(Duration::from_secs(30), || async {
        Ok(!secret_data(&client, &ns, "admin")
            .await?
            .contains_key("AWS_SECRET_ACCESS_KEY"))
    })
    .await?;
    let keys: Vec<String> = secret_data(&client, &ns, "admin").await?.into_keys().collect();
    assert_eq!(keys, ["config", "credential_process.json"]);
    Ok(())
}

#[tokio::test]
async fn deleting_the_profile_is_reported_and_the_secret_kept() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts: _sts,
        controller: _controller,
    } = Scenario::start("profile-gone").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let profiles: Api<atmos_auth_controller::api::AuthProfile> = Api::namespaced(client.clone(), &ns);
    profiles.delete("k8s", &Default::default()).await?;
    wait_reason(&client, &ns, "admin", "ProfileNotFound", Duration::from_secs(20)).await?;
    assert!(
        secret_data(&client, &ns, "admin")
            .await?
            .contains_key("credential_process.json")
    );
    Ok(())
}
