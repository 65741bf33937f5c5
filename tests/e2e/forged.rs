//! Anyone who may write a Secret may set its annotations: renewal must follow what the
//! controller recorded of its own writes, not what the Secret claims. A loop setting the
//! expiry to the past buys no refresh and starves no other namespace; a forged future expiry
//! stops no renewal; a `kubectl replace` of every Secret (an encryption-key rotation) costs
//! one read each and no STS call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use atmos_auth_controller::api::Identity;
use atmos_auth_controller::output::labels;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};

use crate::fixture::*;
use crate::waits::{QUIET, idle};
use crate::{identity, profile};

/// A merge patch of `name`'s annotations by a writer other than the controller.
async fn forge(secrets: &Api<Secret>, name: &str, annotations: serde_json::Value) -> Result<()> {
    let pp = PatchParams {
        field_manager: Some("forger".into()),
        ..Default::default()
    };
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    secrets.patch(name, &pp, &Patch::Merge(&patch)).await?;
    Ok(())
}

/// An Identity's status as the API server has it (untyped: every field it stores).
async fn status_json(client: &kube::Client, ns: &str, name: &str) -> Result<serde_json::Value> {
    let resource = ApiResource::erase::<Identity>(&());
    let obj = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource)
        .get(name)
        .await?;
    Ok(obj.data["status"].clone())
}

#[tokio::test]
async fn a_loop_forging_the_expiry_buys_no_refresh_and_starves_no_other_namespace() -> Result<()> {
    const N: usize = 3;
    // How long the loop runs; the controller allows one unrequested refresh per Identity
    // every 10 s, so a loop of this length may buy at most 3 each (here: none).
    const WINDOW: Duration = Duration::from_secs(15);
    let cp = control_plane();
    let client = cp.client().await?;
    let looping = namespace(&client, "forged-loop").await?;
    let other = namespace(&client, "forged-other").await?;
    let sts = start_sts(cp);
    let controller = ControllerProcess::start(cp, &format!("{looping},{other}"), &sts.endpoint(), &[])?;
    for ns in [&looping, &other] {
        apply(&client, ns, &profile("20m")).await?;
    }
    for i in 0..N {
        let body = format!("  principal: {{session_name: loop-{i}}}");
        apply(&client, &looping, &identity(&format!("id-{i}"), &body)).await?;
    }
    for i in 0..N {
        wait_reason(
            &client,
            &looping,
            &format!("id-{i}"),
            "CredentialsIssued",
            Duration::from_secs(60),
        )
        .await?;
    }
    let loop_calls = || {
        sts.role_calls()
            .iter()
            .filter(|c| c.session_name.as_deref().is_some_and(|s| s.starts_with("loop-")))
            .count()
    };
    let before = loop_calls();

    // The loop: every Secret of the namespace said to have expired, again and again.
    let stop = Arc::new(AtomicBool::new(false));
    let forger = {
        let (stop, secrets) = (stop.clone(), Api::<Secret>::namespaced(client.clone(), &looping));
        tokio::spawn(async move {
            let mut forged = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for i in 0..N {
                    let past = serde_json::json!({
                        labels::EXPIRATION: "2001-01-01T00:00:00Z",
                        labels::RENEWAL_TIME: format!("2001-01-01T00:00:{:02}Z", forged % 60),
                    });
                    if forge(&secrets, &format!("id-{i}"), past).await.is_ok() {
                        forged += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            forged
        })
    };
    let started = Instant::now();
    apply(&client, &other, &identity("victim", "")).await?;
    let victim = wait_reason(&client, &other, "victim", "CredentialsIssued", Duration::from_secs(30)).await;
    let victim_took = started.elapsed();
    // The attack lasts the window whatever happens meanwhile: its length is the point.
    tokio::time::sleep(WINDOW.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::SeqCst);
    let forged = forger.await?;
    let refreshes = loop_calls() - before;
    eprintln!(
        "FORGED loop: {forged} forged expiries in {:.1} s bought {refreshes} refreshes; the other namespace was issued after {:.1} s",
        started.elapsed().as_secs_f64(),
        victim_took.as_secs_f64()
    );
    if let Err(e) = victim {
        anyhow::bail!("{e}\n{}", log_tail(&controller.log_text()));
    }
    assert!(forged > 10 * N as u64, "the loop hardly ran: {forged}");
    let per_identity = WINDOW.as_secs() as usize / 10 + 1;
    assert!(
        refreshes <= N * per_identity,
        "{refreshes} refreshes for {N} Identities in {WINDOW:?} (at most {per_identity} each)"
    );
    // Each Identity still reports the credentials it holds, as recorded.
    for i in 0..N {
        wait_reason(
            &client,
            &looping,
            &format!("id-{i}"),
            "CredentialsIssued",
            Duration::from_secs(10),
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_forged_future_expiry_does_not_stop_renewal() -> Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("forged-future").await?;
    // A 30 s session, renewed 20 s after issue.
    apply(&client, &ns, &profile("30s")).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60)).await?;
    let issued = status_json(&client, &ns, "admin").await?["lastRefreshTime"].clone();
    let calls = sts.calls().total("AssumeRoleWithWebIdentity");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let future = serde_json::json!({
        labels::EXPIRATION: "2100-01-01T00:00:00Z",
        labels::RENEWAL_TIME: "2100-01-01T00:00:00Z",
    });
    forge(&secrets, "admin", future).await?;
    // Renewed all the same, at the time the controller recorded.
    let renewed = wait_for(Duration::from_secs(45), || async {
        Ok(status_json(&client, &ns, "admin").await?["lastRefreshTime"] != issued)
    })
    .await;
    if let Err(e) = renewed {
        anyhow::bail!(
            "not renewed after a forged future expiry: {e}\nstatus: {}\n{}",
            status_json(&client, &ns, "admin").await?,
            log_tail(&controller.log_text())
        );
    }
    assert!(sts.calls().total("AssumeRoleWithWebIdentity") > calls);
    let status = status_json(&client, &ns, "admin").await?;
    let expiration: jiff::Timestamp = status["expiration"].as_str().unwrap_or_default().parse()?;
    assert!(
        expiration < jiff::Timestamp::now() + jiff::SignedDuration::from_mins(5),
        "the status took the forged expiry: {status}"
    );
    Ok(())
}

#[tokio::test]
async fn replacing_every_secret_costs_one_read_each_and_no_exchange() -> Result<()> {
    const N: usize = 3;
    let Scenario {
        cp,
        client,
        ns,
        sts,
        controller,
    } = Scenario::start("forged-replace").await?;
    apply(&client, &ns, &profile("20m")).await?;
    for i in 0..N {
        apply(&client, &ns, &identity(&format!("id-{i}"), "")).await?;
    }
    for i in 0..N {
        wait_reason(
            &client,
            &ns,
            &format!("id-{i}"),
            "CredentialsIssued",
            Duration::from_secs(60),
        )
        .await?;
    }
    idle(&controller, QUIET, Duration::from_secs(30)).await?;
    let calls = sts.calls().all();
    let mark = cp.audit_events()?.len();

    // An encryption-key rotation: every Secret read and written back as it is (`kubectl get
    // secrets -o json | kubectl replace -f -`), each at a new version.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut versions = Vec::new();
    for i in 0..N {
        let name = format!("id-{i}");
        let mut s = secrets.get(&name).await?;
        s.metadata
            .annotations
            .get_or_insert_default()
            .insert("e2e/rotated".into(), "yes".into());
        let replaced = secrets.replace(&name, &PostParams::default(), &s).await?;
        versions.push(replaced.metadata.resource_version.unwrap_or_default());
    }
    // The controller records each new version (the same data) in the status.
    for (i, rv) in versions.iter().enumerate() {
        let name = format!("id-{i}");
        let recorded = wait_for(Duration::from_secs(20), || async {
            Ok(status_json(&client, &ns, &name).await?["written"]["resourceVersion"].as_str() == Some(rv.as_str()))
        })
        .await;
        if let Err(e) = recorded {
            anyhow::bail!(
                "{name}: version {rv} not recorded: {e}\nstatus: {}\n{}",
                status_json(&client, &ns, &name).await?,
                log_tail(&controller.log_text())
            );
        }
    }
    idle(&controller, QUIET, Duration::from_secs(30)).await?;
    assert_eq!(sts.calls().all(), calls, "{:?}", sts.calls());
    let requests: Vec<_> = cp
        .audit_events()?
        .into_iter()
        .skip(mark)
        .filter(|e| e.namespace == ns && e.user.ends_with(&format!(":{CHART_SERVICE_ACCOUNT}")))
        .collect();
    let count = |verb: &str, resource: &str| {
        requests
            .iter()
            .filter(|e| e.verb == verb && e.resource == resource && e.subresource.is_empty())
            .count()
    };
    assert_eq!(count("get", "secrets"), N, "{requests:#?}");
    assert_eq!(
        count("patch", "secrets") + count("update", "secrets"),
        0,
        "{requests:#?}"
    );
    for i in 0..N {
        wait_reason(
            &client,
            &ns,
            &format!("id-{i}"),
            "CredentialsIssued",
            Duration::from_secs(5),
        )
        .await?;
    }
    Ok(())
}
