//! Nothing left behind: a renamed Secret is emptied (without a `delete` right), an Identity
//! being deleted gets no new credentials, and no metric series outlives what it describes.

use std::time::Duration;

use anyhow::Result;
use atmos_auth_controller::api::Identity;
use atmos_auth_controller::output::labels;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::fixture::*;
use crate::waits::{QUIET, idle, reconciled_past};
use crate::{identity, profile};

/// Waits until the Identity is `CredentialsIssued` for `secret` and `atmos_identity`.
async fn wait_issued(client: &Client, ns: &str, name: &str, secret: &str, atmos_identity: &str) -> Result<Identity> {
    let api: Api<Identity> = Api::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let i = api.get(name).await?;
        let st = i.status.clone().unwrap_or_default();
        if ready(&i).is_some_and(|(_, r, _)| r == "CredentialsIssued")
            && st.secret_name.as_deref() == Some(secret)
            && st.identity.as_deref() == Some(atmos_identity)
        {
            return Ok(i);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{name} never issued {atmos_identity} into {secret}; last status {st:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks that `name` was emptied for `current`: no credential key, no renewal annotation,
/// the superseded mark, and still owned by the Identity (the garbage collector's to remove).
async fn assert_emptied(secrets: &Api<Secret>, name: &str, current: &str, owner_uid: &str) -> Result<()> {
    let s = secrets.get(name).await?;
    let data = s.data.clone().unwrap_or_default();
    for key in atmos_auth_controller::output::render::ALL_KEYS {
        assert!(!data.contains_key(key), "{name} still holds {key}");
    }
    let a = s.annotations();
    for key in labels::RENEWAL_ANNOTATIONS {
        assert!(!a.contains_key(key), "{name} still has {key}: {a:?}");
    }
    assert_eq!(a.get(labels::SUPERSEDED_BY).map(String::as_str), Some(current), "{a:?}");
    assert!(
        s.owner_references().iter().any(|o| o.uid == owner_uid),
        "{name} lost its owner reference"
    );
    Ok(())
}

/// The credentials in `name` work at STS and the Secret is not marked superseded.
async fn assert_live(client: &Client, ns: &str, sts_endpoint: &str, name: &str) -> Result<String> {
    let data = secret_data(client, ns, name).await?;
    let (key, secret, token, _) = process_credentials(&data)?;
    let arn = caller_arn(sts_endpoint, &key, &secret, &token).await?;
    assert!(arn.contains("assumed-role/e2e-admin/"), "{arn}");
    let meta = Api::<Secret>::namespaced(client.clone(), ns).get_metadata(name).await?;
    assert!(
        !meta.annotations().contains_key(labels::SUPERSEDED_BY),
        "{name} in use but marked superseded"
    );
    Ok(key)
}

#[tokio::test]
async fn renaming_the_secret_empties_the_old_one_and_renaming_back_issues_fresh_credentials() -> Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("rename").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "  secret: {name: first}")).await?;
    let id = wait_issued(&client, &ns, "admin", "first", "acme/admin").await?;
    let uid = id.uid().unwrap_or_default();
    let first_key = assert_live(&client, &ns, &sts.endpoint(), "first").await?;

    // first -> second: second holds working credentials, first is emptied.
    apply(&client, &ns, &identity("admin", "  secret: {name: second}")).await?;
    wait_issued(&client, &ns, "admin", "second", "acme/admin")
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    assert_live(&client, &ns, &sts.endpoint(), "second").await?;
    assert_emptied(&secrets, "first", "second", &uid).await?;

    // second -> first: the emptied Secret is never taken for issued; fresh credentials.
    apply(&client, &ns, &identity("admin", "  secret: {name: first}")).await?;
    wait_issued(&client, &ns, "admin", "first", "acme/admin")
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    let again = assert_live(&client, &ns, &sts.endpoint(), "first").await?;
    assert_ne!(again, first_key, "renaming back reused the old credentials");
    assert_emptied(&secrets, "second", "first", &uid).await?;
    Ok(())
}

#[tokio::test]
async fn an_identity_being_deleted_mints_no_token_and_writes_no_secret() -> Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("deleting").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let identities: Api<Identity> = Api::namespaced(client.clone(), &ns);
    // 20 s sessions: renewal falls due within the wait below.
    apply(&client, &ns, &profile("20s")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    let issued = wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let renewal: jiff::Timestamp = issued.status.and_then(|s| s.renewal_time).unwrap_or_default().parse()?;

    // A finalizer keeps the Identity in its terminating state; removing its Secret (as a
    // foreground deletion's garbage collector would) must not bring the Secret back.
    let hold = serde_json::json!({"metadata": {"finalizers": ["e2e.test/hold"]}});
    identities
        .patch("admin", &PatchParams::default(), &Patch::Merge(&hold))
        .await?;
    identities.delete("admin", &DeleteParams::default()).await?;
    let calls = sts.calls().all();
    let mark = idle(&controller, QUIET, Duration::from_secs(30)).await?;
    secrets.delete("admin", &DeleteParams::default()).await?;
    // The deletion reaches the Identity (a reconcile ends), and the renewal time it had
    // passes (a timer left for it would fire then): either would have brought the Secret
    // back by the time the controller is idle again.
    reconciled_past(&controller, mark, 1, Duration::from_secs(30)).await?;
    let until_due = renewal.duration_since(jiff::Timestamp::now()).as_secs_f64() + 1.0;
    tokio::time::sleep(Duration::from_secs_f64(until_due.clamp(0.0, 30.0))).await;
    idle(&controller, QUIET, Duration::from_secs(30)).await?;
    let leftover = secrets.get_opt("admin").await?;
    let after = sts.calls().all();
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    identities
        .patch("admin", &PatchParams::default(), &Patch::Merge(&release))
        .await?;
    assert!(
        leftover.is_none(),
        "a Secret was written for an Identity being deleted\n{}",
        log_tail(&controller.log_text())
    );
    assert_eq!(after, calls, "STS was called for an Identity being deleted");
    Ok(())
}

#[tokio::test]
async fn changing_the_identity_replaces_its_metric_series() -> Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts: _sts,
        controller,
    } = Scenario::start("series").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("app", "")).await?;
    wait_issued(&client, &ns, "app", "app", "acme/admin").await?;
    let series = |who: &str| {
        format!(
            "atmos_auth_identity_expiration_timestamp_seconds{{namespace=\"{ns}\",name=\"app\",identity=\"{who}\"}}"
        )
    };
    let metrics = controller.admin_get("/metrics").await?.1;
    assert!(metrics.contains(&series("acme/admin")), "{metrics}");

    apply(&client, &ns, &identity("app", "  identity: acme/network")).await?;
    wait_issued(&client, &ns, "app", "app", "acme/network").await?;
    let metrics = controller.admin_get("/metrics").await?.1;
    assert!(metrics.contains(&series("acme/network")), "{metrics}");
    let renewal = series("acme/admin").replace("expiration", "renewal");
    assert!(
        !metrics.contains(&series("acme/admin")) && !metrics.contains(&renewal),
        "the old identity's series outlived it:\n{metrics}"
    );
    Ok(())
}
