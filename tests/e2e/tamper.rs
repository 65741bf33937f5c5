//! The Secret's content belongs to the controller: someone editing its data, planting keys
//! (a `credentials` file would override `credential_process` in every SDK) or deleting it is
//! noticed at once and undone, spaced out so two writers cannot fight in a loop. A superseded
//! Secret is never restored; one whose owner reference was removed is someone else's.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use atmos_auth_controller::output::labels;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};

use crate::fixture::*;
use crate::waits::{QUIET, idle, reconciled_past};
use crate::{identity, profile};

/// A merge patch by field manager `intruder` (as `kubectl patch` would be).
async fn intrude(secrets: &Api<Secret>, name: &str, patch: serde_json::Value) -> anyhow::Result<()> {
    intrude_as(secrets, name, "intruder", patch).await
}

/// A merge patch by field manager `manager` (`kubectl patch --field-manager MANAGER`).
async fn intrude_as(secrets: &Api<Secret>, name: &str, manager: &str, patch: serde_json::Value) -> anyhow::Result<()> {
    let pp = PatchParams {
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    secrets.patch(name, &pp, &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Base64, as Secret data is sent.
fn b64(s: &str) -> serde_json::Value {
    serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec())).unwrap_or_default()
}

fn planted() -> serde_json::Value {
    serde_json::json!({"data": {
        "credentials": b64("[default]\naws_access_key_id = AKIAPLANTED\naws_secret_access_key = x\n"),
        "config": b64("[default]\nregion = xx-evil-1\n"),
    }})
}

#[tokio::test]
async fn edited_and_planted_data_is_restored_and_the_planted_key_removed() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("tamper").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let original = secret_data(&client, &ns, "admin").await?;
    let keys: BTreeSet<String> = original.keys().cloned().collect();
    assert!(!keys.contains("credentials"), "{keys:?}");
    let calls = sts.calls().total("AssumeRoleWithWebIdentity");

    intrude(&secrets, "admin", planted()).await?;
    let tampered = Instant::now();
    let restored = wait_for(Duration::from_secs(20), || async {
        let data = secret_data(&client, &ns, "admin").await?;
        Ok(data.keys().cloned().collect::<BTreeSet<_>>() == keys && !data["config"].contains("xx-evil-1"))
    })
    .await;
    if let Err(e) = restored {
        anyhow::bail!("not restored: {e}\n{}", log_tail(&controller.log_text()));
    }
    let took = tampered.elapsed();
    let id = wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(10)).await?;
    assert!(id.status.is_some_and(|s| s.expiration.is_some()));
    // Restored with fresh, working credentials: one exchange.
    assert_eq!(sts.calls().total("AssumeRoleWithWebIdentity"), calls + 1);
    let (key, secret, token, _) = process_credentials(&secret_data(&client, &ns, "admin").await?)?;
    caller_arn(&sts.endpoint(), &key, &secret, &token).await?;
    let meta = secrets.get_metadata("admin").await?;
    let annotations = meta.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations.get(labels::RESTORES).map(String::as_str), Some("1"));
    // The intruder owns no data key any more: the next look finds nothing to restore.
    let writers =
        atmos_auth_controller::output::tamper::data_writers(&meta.metadata.managed_fields.unwrap_or_default());
    assert!(writers.is_empty(), "{writers:?}");
    // The restore's own writes come back through the watch: once those reconciles are done,
    // a second restore would have started.
    idle(&controller, QUIET, Duration::from_secs(30)).await?;
    assert_eq!(
        sts.calls().total("AssumeRoleWithWebIdentity"),
        calls + 1,
        "restored more than once"
    );
    let events = controller.log_text();
    assert!(events.contains("SecretTampered"), "{}", log_tail(&events));
    eprintln!(
        "RECOVERY tampered Secret: restored {:.1} s after the edit",
        took.as_secs_f64()
    );

    // Deleted: recreated with fresh credentials.
    secrets.delete("admin", &DeleteParams::default()).await?;
    let deleted = Instant::now();
    wait_for(Duration::from_secs(20), || async {
        Ok(secrets.get_opt("admin").await?.is_some())
    })
    .await?;
    eprintln!(
        "RECOVERY deleted Secret: recreated {:.1} s after the delete",
        deleted.elapsed().as_secs_f64()
    );
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(10)).await?;
    Ok(())
}

/// Who claims to have written the data decides nothing: keys planted under the controller's
/// own field manager name are noticed by the data no longer being what the controller wrote.
#[tokio::test]
async fn data_planted_under_the_controllers_own_field_manager_is_restored() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("tamper-spoofed").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let keys: BTreeSet<String> = secret_data(&client, &ns, "admin").await?.keys().cloned().collect();
    let calls = sts.calls().total("AssumeRoleWithWebIdentity");

    intrude_as(&secrets, "admin", labels::FIELD_MANAGER, planted()).await?;
    let tampered = Instant::now();
    let restored = wait_for(Duration::from_secs(20), || async {
        let data = secret_data(&client, &ns, "admin").await?;
        Ok(data.keys().cloned().collect::<BTreeSet<_>>() == keys && !data["config"].contains("xx-evil-1"))
    })
    .await;
    if let Err(e) = restored {
        anyhow::bail!("not restored: {e}\n{}", log_tail(&controller.log_text()));
    }
    eprintln!(
        "RECOVERY data planted under the controller's field manager: restored {:.1} s after the edit",
        tampered.elapsed().as_secs_f64()
    );
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(10)).await?;
    assert_eq!(sts.calls().total("AssumeRoleWithWebIdentity"), calls + 1);
    Ok(())
}

#[tokio::test]
async fn two_writers_do_not_fight_in_a_loop() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller: _controller,
    } = Scenario::start("tamper-fight").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let calls = sts.calls().total("AssumeRoleWithWebIdentity");

    // Another writer puts its key back whenever it is gone, checking every 300 ms, for 25 s.
    let started = Instant::now();
    let mut plants = 0;
    let mut saw_wait = false;
    while started.elapsed() < Duration::from_secs(25) {
        if !secret_data(&client, &ns, "admin").await?.contains_key("credentials") {
            intrude(&secrets, "admin", planted()).await?;
            plants += 1;
        }
        let id = Api::<atmos_auth_controller::api::Identity>::namespaced(client.clone(), &ns)
            .get("admin")
            .await?;
        if let Some((_, reason, message)) = ready(&id)
            && reason == "SecretTampered"
        {
            assert!(
                message.contains("intruder") && message.contains("restored at"),
                "{message}"
            );
            saw_wait = true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Restores at 0 s, 5 s, 15 s (then 35 s): three or four in 25 s, not one per plant.
    let restores = sts.calls().total("AssumeRoleWithWebIdentity") - calls;
    eprintln!("RECOVERY two writers: {plants} plants, {restores} restores in 25 s");
    assert!((2..=4).contains(&restores), "{restores} restores for {plants} plants");
    assert!(saw_wait, "the status never said a restore was waiting");
    // Once the other writer stops, the Secret is restored.
    wait_for(Duration::from_secs(60), || async {
        Ok(!secret_data(&client, &ns, "admin").await?.contains_key("credentials"))
    })
    .await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(10)).await?;
    Ok(())
}

#[tokio::test]
async fn a_superseded_secret_is_never_restored() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("tamper-superseded").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "  secret: {name: first}")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    apply(&client, &ns, &identity("admin", "  secret: {name: second}")).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    wait_for(Duration::from_secs(30), || async {
        let a = secrets
            .get_metadata("first")
            .await?
            .metadata
            .annotations
            .unwrap_or_default();
        Ok(a.contains_key(labels::SUPERSEDED_BY) && secrets.get_opt("second").await?.is_some())
    })
    .await?;
    let calls = sts.calls().total("AssumeRoleWithWebIdentity");

    // The change reaches the Identity that owns the Secret: once that reconcile is over, a
    // restore would have begun.
    let mark = idle(&controller, QUIET, Duration::from_secs(30)).await?;
    intrude(&secrets, "first", planted()).await?;
    reconciled_past(&controller, mark, 1, Duration::from_secs(30)).await?;
    let data = secret_data(&client, &ns, "first").await?;
    assert!(
        data.contains_key("credentials"),
        "the superseded Secret was rewritten: {:?}",
        data.keys()
    );
    assert_eq!(
        sts.calls().total("AssumeRoleWithWebIdentity"),
        calls,
        "credentials were fetched for a superseded Secret"
    );
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::test]
async fn a_secret_whose_owner_reference_is_removed_is_someone_elses() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("tamper-disowned").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let calls = sts.calls().total("AssumeRoleWithWebIdentity");

    intrude(
        &secrets,
        "admin",
        serde_json::json!({"metadata": {"ownerReferences": null}}),
    )
    .await?;
    let removed = Instant::now();
    // Noticed at once (the next renewal is 13 min away).
    let id = match wait_reason(&client, &ns, "admin", "SecretConflict", Duration::from_secs(20)).await {
        Ok(id) => id,
        Err(e) => anyhow::bail!("{e}\n{}", log_tail(&controller.log_text())),
    };
    let took = removed.elapsed();
    let message = ready(&id).unwrap_or_default().2;
    assert!(message.contains("owner reference"), "{message}");
    let rv = secrets.get_metadata("admin").await?.metadata.resource_version;
    // From then on it is never written, even when it is changed again.
    intrude(&secrets, "admin", planted()).await?;
    let rv_planted = secrets.get_metadata("admin").await?.metadata.resource_version;
    assert_ne!(rv, rv_planted);
    // Left a fixed wait: once the status says SecretConflict, a change to the disowned
    // Secret starts no reconcile at all (nothing to wait for), and a bug that wrote would
    // do it within the reconcile the watch event starts, well inside 6 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        secrets.get_metadata("admin").await?.metadata.resource_version,
        rv_planted
    );
    assert_eq!(sts.calls().total("AssumeRoleWithWebIdentity"), calls);
    eprintln!(
        "RECOVERY owner reference removed: status says so {:.1} s later",
        took.as_secs_f64()
    );
    Ok(())
}
