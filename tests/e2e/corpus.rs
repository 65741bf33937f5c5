//! The malformed-input corpus (`tests/corpus/*.yaml`, format in tests/corpus.rs) on the real
//! API server and controller: what the API server refuses, with its message; for what it
//! accepts, the Ready reason the controller sets on the AuthProfile and the Identity.
//!
//! Every case runs in one namespace under one controller: its AuthProfile `p` and Identity
//! `i` are renamed after the case.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use atmos_auth_controller::api::{AuthProfile, Identity};
use atmos_auth_controller::util::yaml::{self, Schema};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use crate::fixture::*;

/// One case: its name, documents (or why the reader refused them) and expectations.
struct Case {
    name: String,
    docs: Result<Vec<Value>, String>,
    api: String,
    /// `(kind, reason)` of each `# status:` line.
    status: Vec<(String, String)>,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("case file");
            let mut api = String::new();
            let mut status = Vec::new();
            for line in text.lines().take_while(|l| l.starts_with('#')) {
                if let Some(v) = line.strip_prefix("# api: ") {
                    api = v.to_owned();
                } else if let Some((kind, reason)) = line.strip_prefix("# status: ").and_then(|v| v.split_once(' ')) {
                    status.push((kind.to_owned(), reason.to_owned()));
                }
            }
            let docs = yaml::documents::<Value>(&name, &text, Schema::Kubernetes)
                .map(|docs| docs.into_iter().map(|d| renamed(d, &name)).collect())
                .map_err(|e| e.to_string());
            Case {
                name,
                docs,
                api,
                status,
            }
        })
        .collect()
}

/// The case's `p` and `i` named after the case, in the test's namespace.
fn renamed(mut doc: Value, case: &str) -> Value {
    if let Some(meta) = doc["metadata"].as_object_mut() {
        meta.remove("namespace");
        meta.insert("name".into(), Value::String(case.to_owned()));
    }
    if doc["kind"] == "Identity" && doc["spec"]["profile"] == "p" {
        doc["spec"]["profile"] = Value::String(case.to_owned());
    }
    doc
}

/// Applies the documents; the API server's refusals as `(code, message)`.
async fn apply(client: &kube::Client, ns: &str, docs: &[Value]) -> Vec<(u16, String)> {
    let pp = PatchParams::apply("e2e-corpus").force();
    let mut refused = Vec::new();
    for doc in docs {
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        let result = match doc["kind"].as_str() {
            Some("AuthProfile") => Api::<AuthProfile>::namespaced(client.clone(), ns)
                .patch(name, &pp, &Patch::Apply(doc))
                .await
                .map(drop),
            _ => Api::<Identity>::namespaced(client.clone(), ns)
                .patch(name, &pp, &Patch::Apply(doc))
                .await
                .map(drop),
        };
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(status)) => refused.push((status.code, status.message)),
            Err(e) => refused.push((0, e.to_string())),
        }
    }
    refused
}

/// The Ready reason of the case's AuthProfile or Identity, if set.
async fn reason(client: &kube::Client, ns: &str, kind: &str, name: &str) -> Option<String> {
    let conditions = match kind {
        "AuthProfile" => {
            Api::<AuthProfile>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .ok()?
                .status?
                .conditions
        }
        _ => {
            Api::<Identity>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .ok()?
                .status?
                .conditions
        }
    };
    conditions.into_iter().find(|c| c.type_ == "Ready").map(|c| c.reason)
}

#[tokio::test]
async fn the_corpus_on_the_api_server_and_the_controller() -> anyhow::Result<()> {
    let Scenario {
        client, ns, controller, ..
    } = Scenario::start("corpus").await?;
    let cases = cases();
    let mut failures = Vec::new();
    let mut waiting: BTreeMap<(String, String), String> = BTreeMap::new();
    for case in &cases {
        let docs = match (&case.docs, case.api.as_str()) {
            (Err(_), "unread") => continue,
            (Err(e), _) => {
                failures.push(format!("{}: the YAML reader refused it: {e}", case.name));
                continue;
            }
            (Ok(_), "unread") => {
                failures.push(format!("{}: expected the YAML reader to refuse it", case.name));
                continue;
            }
            (Ok(docs), _) => docs,
        };
        let refused = apply(&client, &ns, docs).await;
        if case.api == "accepted" {
            if !refused.is_empty() {
                failures.push(format!("{}: expected accepted, refused: {refused:?}", case.name));
            }
            for (kind, reason) in &case.status {
                waiting.insert((kind.clone(), case.name.clone()), reason.clone());
            }
        } else if let Some(text) = case.api.strip_prefix("refused ") {
            // Schema violations are 422 Invalid; a wrong type fails earlier, in server-side
            // apply's typed conversion, as 500 "failed to create typed patch object".
            let refusal = |code: u16, m: &str| code == 422 || (code == 500 && m.contains("typed patch"));
            if !refused.iter().any(|(code, m)| refusal(*code, m) && m.contains(text)) {
                failures.push(format!(
                    "{}: expected a refusal naming {text:?}, got {refused:?}",
                    case.name
                ));
            }
        } else {
            failures.push(format!("{}: unknown api expectation {:?}", case.name, case.api));
        }
    }
    // Every accepted case reaches its reason; the controller handles them all at once.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    while !waiting.is_empty() && Instant::now() < deadline {
        let mut done = Vec::new();
        for ((kind, name), want) in &waiting {
            let got = reason(&client, &ns, kind, name).await;
            if got.as_deref() == Some(want.as_str()) {
                done.push((kind.clone(), name.clone()));
            }
            last.insert((kind.clone(), name.clone()), got);
        }
        for key in done {
            waiting.remove(&key);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for ((kind, name), want) in &waiting {
        let got = last.get(&(kind.clone(), name.clone())).cloned().flatten();
        failures.push(format!("{name}: expected {kind} reason {want}, got {got:?}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        log_tail(&controller.log_text())
    );
    Ok(())
}
