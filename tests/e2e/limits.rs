//! Profile limits on the real API server: a profile at the CRD limits is accepted and the
//! controller reports it Ready with a bounded status; one past any limit is refused by the
//! API server with its own message, before the controller sees it.

use std::time::Duration;

use atmos_auth_controller::api::limits::{MAX_IDENTITIES, MAX_PROVIDERS};
use atmos_auth_controller::api::{AuthProfile, Identity};
use atmos_auth_controller::resolve::{MAX_CHAIN_LINKS, MAX_STATUS_CHAIN};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::deep::nested;
use crate::fixture::*;
use crate::limits_profile::{at_limits, identity_name, line, long_name, provider_name};

async fn apply_value<K>(api: &Api<K>, doc: &Value) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    api.patch(&name, &PatchParams::apply("e2e-test").force(), &Patch::Apply(doc))
        .await
}

/// The API server's refusal of `doc`: HTTP 422 with a message naming `field` and `limit`;
/// else what happened instead.
async fn refusal<K>(api: &Api<K>, doc: &Value, what: &str, field: &str, limit: &str) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match apply_value(api, doc).await {
        Err(kube::Error::Api(status)) if status.code == 422 => {
            if status.message.contains(field) && status.message.contains(limit) {
                Ok(())
            } else {
                Err(format!(
                    "{what}: refused, but the message names not {field} and {limit}: {}",
                    status.message
                ))
            }
        }
        Err(e) => Err(format!("{what}: expected a 422 refusal, got {e}")),
        Ok(_) => Err(format!("{what}: accepted by the API server")),
    }
}

#[tokio::test]
async fn a_profile_at_the_limits_is_accepted_and_reported_ready() -> anyhow::Result<()> {
    let Scenario {
        client, ns, controller, ..
    } = Scenario::start("limits-ok").await?;
    let api: Api<AuthProfile> = Api::namespaced(client.clone(), &ns);
    let applied = apply_value(&api, &at_limits("big")).await?;
    let generation = applied.metadata.generation;

    let waited = wait_for(Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let status = api.get("big").await?.status.unwrap_or_default();
            Ok(status.observed_generation == generation
                && status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"))
        }
    })
    .await;
    if let Err(e) = waited {
        let conditions = api.get("big").await?.status.map(|s| s.conditions);
        panic!(
            "the profile at the limits never became Ready ({e:#}); conditions: {conditions:?}\n{}",
            log_tail(&controller.log_text())
        );
    }
    let status = api.get("big").await?.status.unwrap_or_default();
    assert_eq!(status.identity_count, i64::from(MAX_IDENTITIES));
    assert_eq!(status.identities.len(), MAX_IDENTITIES as usize);
    assert!(status.identities.iter().all(|i| i.ready));
    let deepest = status
        .identities
        .iter()
        .find(|i| i.name == identity_name(0, MAX_CHAIN_LINKS - 1))
        .expect("the deepest identity is reported");
    assert_eq!(deepest.chain.len(), MAX_STATUS_CHAIN);
    assert_eq!(deepest.chain_length, Some(MAX_CHAIN_LINKS as i64 + 1));
    assert_eq!(deepest.chain[0], provider_name(0));

    // One chain through every identity: the first links are ready, the rest refused at the
    // chain limit, and the status is written.
    let applied = apply_value(&api, &line("chain", MAX_IDENTITIES as usize)).await?;
    let generation = applied.metadata.generation;
    wait_for(Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let status = api.get("chain").await?.status.unwrap_or_default();
            Ok(status.observed_generation == generation && status.identities.len() == MAX_IDENTITIES as usize)
        }
    })
    .await?;
    let status = api.get("chain").await?.status.unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidProfile")
    );
    assert!(ready.message.contains("within 10 links"), "{}", ready.message);
    assert_eq!(status.identities.iter().filter(|i| i.ready).count(), MAX_CHAIN_LINKS);
    Ok(())
}

#[tokio::test]
async fn one_past_the_limits_is_refused_by_the_api_server() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "limits-refused").await?;
    let profiles: Api<AuthProfile> = Api::namespaced(client.clone(), &ns);
    let identities: Api<Identity> = Api::namespaced(client.clone(), &ns);

    // At the limits: accepted.
    let base = at_limits("big");
    apply_value(&profiles, &base).await?;

    let first = identity_name(0, 0);
    let mut cases: Vec<(&str, Value, &str, String)> = Vec::new();
    let mut doc = base.clone();
    doc["spec"]["identities"][long_name("extra-")] = doc["spec"]["identities"][&first].clone();
    cases.push((
        "one identity too many",
        doc,
        "spec.identities",
        MAX_IDENTITIES.to_string(),
    ));
    let mut doc = base.clone();
    doc["spec"]["providers"][long_name("extra-")] = doc["spec"]["providers"][provider_name(0)].clone();
    cases.push((
        "one provider too many",
        doc,
        "spec.providers",
        MAX_PROVIDERS.to_string(),
    ));
    let mut doc = base.clone();
    doc["spec"]["identities"][format!("{}x", identity_name(0, 0))] = doc["spec"]["identities"][&first].clone();
    doc["spec"]["identities"]
        .as_object_mut()
        .map(|m| m.remove(&identity_name(25, 5)));
    cases.push((
        "an identity name one character too long",
        doc,
        "spec.identities",
        "names must be at most 253 characters".into(),
    ));
    let mut doc = base.clone();
    doc["spec"]["identities"][&first]["principal"]["assume_role"] = json!("a".repeat(2049));
    cases.push(("a role ARN too long", doc, "assume_role", "2048".into()));
    let mut doc = base.clone();
    doc["spec"]["identities"][&first]["env"] = json!(
        (0..65)
            .map(|i| json!({"key": format!("K{i}"), "value": "v"}))
            .collect::<Vec<_>>()
    );
    cases.push(("one env entry too many", doc, "env", "64".into()));
    let mut doc = base.clone();
    doc["spec"]["identities"][&first]["tags"] = json!(["t".repeat(257)]);
    cases.push(("a tag too long", doc, "tags", "256".into()));
    let mut doc = base.clone();
    doc["spec"]["providers"][provider_name(0)]["spec"]["endpoint_url"] = json!(format!("https://{}", "h".repeat(2041)));
    cases.push(("an endpoint URL too long", doc, "endpoint_url", "2048".into()));
    // Free-form maps: bounded keys and depth (a LIST with one object nested past serde_json's
    // 128 levels would not decode in the controller; see tests/e2e/deep.rs).
    let mut doc = base.clone();
    doc["spec"]["identities"][&first]["principal"]["x"] = nested(200);
    cases.push((
        "a principal value nested 200 deep",
        doc,
        "principal.x.x",
        "must have at most 0 items".into(),
    ));
    let mut doc = base.clone();
    doc["spec"]["providers"][provider_name(0)]["spec"]["x"] = json!({"a": {"b": "too deep"}});
    cases.push((
        "a provider spec value four levels deep",
        doc,
        "spec.x.a",
        "must have at most 0 items".into(),
    ));
    let mut doc = base.clone();
    doc["spec"]["identities"][&first]["spec"] = json!(
        (0..33)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>()
    );
    cases.push(("an identity spec with one key too many", doc, "spec", "32".into()));
    let mut doc = base.clone();
    doc["spec"]["keyring"] = json!({"spec": {"path": [["nested list"]]}});
    cases.push((
        "a keyring spec list of lists",
        doc,
        "keyring.spec.path[0]",
        "must have at most 0 items".into(),
    ));
    let mut failures = Vec::new();
    for (what, doc, field, limit) in &cases {
        failures.extend(refusal(&profiles, doc, what, field, limit).await.err());
    }

    let identity = |spec: Value| json!({"apiVersion": "auth.atmos.tools/v1alpha1", "kind": "Identity", "metadata": {"name": "one"}, "spec": spec});
    apply_value(&identities, &identity(json!({"profile": "big", "identity": first}))).await?;
    let identity_cases = [
        (
            "a profile name too long",
            identity(json!({"profile": "p".repeat(254)})),
            "spec.profile",
            "253",
        ),
        (
            // An override's principal values are strings or integers: no nesting at all.
            "an Identity's principal value nested 200 deep",
            identity(json!({"profile": "big", "principal": {"x": nested(200)}})),
            "spec.principal.x",
            "must be of type integer,string",
        ),
        (
            "too many formats",
            identity(json!({"profile": "big", "secret": {"formats": vec!["process"; 9]}})),
            "spec.secret.formats",
            "8",
        ),
    ];
    for (what, doc, field, limit) in &identity_cases {
        failures.extend(refusal(&identities, doc, what, field, limit).await.err());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
