//! The reconcile against a scripted API server (tower-test's mock service, in the manner of
//! kube-rs's controller-rs `fixtures.rs`): each request the reconcile makes is checked in
//! order (method and path) and answered from the script; one request more, or one fewer,
//! fails the test. STS is a stand-in behind the exchange seam; the real exchange is proven by the
//! end-to-end suite.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use jiff::{SignedDuration, Timestamp};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube::{Client, Resource};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::reconcile_inner;
use crate::exchange::{self, Exchange, ExchangeError};

use crate::api::{AuthProfile, ClusterAuthProfile, Identity, IdentityStatus};
use crate::controller::{Context, Error, Stores};
use crate::exchange::credentials::Credentials;
use crate::exchange::sts::{Session, StsError};
use crate::output::labels;
use crate::resolve::Resolved;
use crate::telemetry::Metrics;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;

const NS: &str = "team";
const UID: &str = "identity-uid";
const SECRET_UID: &str = "secret-uid";
const SECRETS: &str = "/api/v1/namespaces/team/secrets";
const SECRET: &str = "/api/v1/namespaces/team/secrets/creds";
const TOKEN: &str = "/api/v1/namespaces/team/serviceaccounts/terraform/token";
const STATUS: &str = "/apis/auth.atmos.tools/v1alpha1/namespaces/team/identities/app/status";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/team/events";
const ROLE: &str = "arn:aws:iam::123456789012:role/admin";

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_mins(minutes)).unwrap()
}

// ---- the scripted API server ----

/// The version the scripted API server gives every object it echoes back.
const ECHO_RV: &str = "100";

/// How the script answers one request.
enum Reply {
    /// 2xx with the request's own body (a create or an apply returns the object), at
    /// version [`ECHO_RV`].
    Echo(u16),
    /// This status and body.
    Json(u16, Value),
}

/// One expected request.
struct Step {
    method: &'static str,
    path: &'static str,
    reply: Reply,
}

fn step(method: &'static str, path: &'static str, reply: Reply) -> Step {
    Step { method, path, reply }
}

/// A request the reconcile made: method, path with query, JSON body (`Null` when empty).
#[derive(Debug)]
struct Seen {
    query: String,
    body: Value,
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Answers `script` in order, asserting each request's method and path; then answers
/// anything more with a 500 and reports it as unexpected.
async fn serve(mut handle: Handle, script: Vec<Step>) -> (Vec<Seen>, Vec<String>) {
    let mut seen = Vec::new();
    for (i, s) in script.into_iter().enumerate() {
        let Some((req, send)) = handle.next_request().await else {
            panic!(
                "request {i}: expected {} {}, the reconcile made no more",
                s.method, s.path
            );
        };
        assert_eq!(
            (req.method().as_str(), req.uri().path()),
            (s.method, s.path),
            "request {i} ({})",
            req.uri()
        );
        let query = req.uri().query().unwrap_or_default().to_owned();
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let (code, reply) = match s.reply {
            Reply::Echo(code) => {
                let mut echo = body.clone();
                if let Some(meta) = echo.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), ECHO_RV.into());
                }
                (code, echo)
            }
            Reply::Json(code, v) => (code, v),
        };
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        seen.push(Seen { query, body });
    }
    let mut unexpected = Vec::new();
    while let Some((req, send)) = handle.next_request().await {
        unexpected.push(format!("{} {}", req.method(), req.uri()));
        send.send_response(Response::builder().status(500).body(Body::from(Vec::new())).unwrap());
    }
    (seen, unexpected)
}

fn not_found() -> Reply {
    Reply::Json(
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

fn token_reply() -> Reply {
    Reply::Json(
        201,
        json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": ["sts.amazonaws.com"]},
            "status": {"token": "eyJ.test-token", "expirationTimestamp": "2026-01-01T00:10:00Z"}
        }),
    )
}

/// The Secret's metadata as the watch cache holds it (`PartialObjectMetadata`), at the
/// version the controller's own write got ([`ECHO_RV`]).
fn secret_meta(owner_uid: &str, annotations: &Value) -> Value {
    secret_meta_at(owner_uid, annotations, ECHO_RV)
}

/// [`secret_meta`] at version `rv`.
fn secret_meta_at(owner_uid: &str, annotations: &Value, rv: &str) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {
            "name": "creds", "namespace": NS, "uid": SECRET_UID, "resourceVersion": rv,
            "labels": {labels::MANAGED_BY: labels::MANAGED_BY_VALUE},
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "auth.atmos.tools/v1alpha1", "kind": "Identity", "name": "app",
                "uid": owner_uid, "controller": true
            }]
        }
    })
}

/// The whole Secret as a GET returns it: [`secret_meta_at`] with `data`, and the
/// managedFields entry of `manager` owning the data keys.
fn secret_live(annotations: &Value, rv: &str, data: &Value, manager: &str) -> Value {
    let mut s = secret_meta_at(UID, annotations, rv);
    s["apiVersion"] = "v1".into();
    s["kind"] = "Secret".into();
    s["type"] = "Opaque".into();
    s["data"] = data.clone();
    let keys: serde_json::Map<String, Value> = data
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (format!("f:{k}"), json!({})))
        .collect();
    s["metadata"]["managedFields"] = json!([{
        "manager": manager, "operation": "Update", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": keys}
    }]);
    s
}

fn empty_list() -> Reply {
    Reply::Json(
        200,
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": []}),
    )
}

// ---- the STS stand-in ----

/// Asks for the token (as the real exchanger always does), then answers from its script.
struct FakeSts {
    outcome: Mutex<Option<Result<(), ExchangeError>>>,
    calls: AtomicUsize,
    /// Answers every call (several identities), not just one.
    repeat: bool,
}

impl FakeSts {
    fn ok() -> Self {
        Self {
            outcome: Mutex::new(Some(Ok(()))),
            calls: AtomicUsize::new(0),
            repeat: false,
        }
    }

    fn many() -> Self {
        Self {
            repeat: true,
            ..Self::ok()
        }
    }

    fn failing(err: ExchangeError) -> Self {
        Self {
            outcome: Mutex::new(Some(Err(err))),
            calls: AtomicUsize::new(0),
            repeat: false,
        }
    }
}

impl Exchange<Resolved> for FakeSts {
    type Grant = Session;

    fn exchange<'a>(
        &'a self,
        request: exchange::Request<'a, Resolved>,
    ) -> BoxFuture<'a, Result<Session, ExchangeError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let outcome = match self.outcome.lock().unwrap().take() {
            Some(o) => o,
            None if self.repeat => Ok(()),
            None => panic!("STS called twice"),
        };
        let exchange::Request {
            input: resolved,
            now,
            token,
            ..
        } = request;
        Box::pin(async move {
            let jwt = token.await?;
            assert_eq!(jwt, "eyJ.test-token");
            outcome?;
            Ok(Session {
                credentials: Credentials {
                    access_key_id: "ASIAFAKE".into(),
                    secret_access_key: "secret".into(),
                    session_token: "session".into(),
                    expiration: now.checked_add(SignedDuration::from_hours(1)).unwrap(),
                },
                assumed_role_arn: format!(
                    "arn:aws:sts::123456789012:assumed-role/admin/atmos-{}",
                    resolved.identity
                ),
                session_name: "atmos-acme-admin-1767225600".into(),
                issued: now,
            })
        })
    }
}

// ---- objects and the run ----

fn profile() -> AuthProfile {
    serde_json::from_value(json!({
        "apiVersion": "auth.atmos.tools/v1alpha1", "kind": "AuthProfile",
        "metadata": {"name": "k8s", "namespace": NS},
        "spec": {
            "providers": {"cluster-oidc": {
                "kind": "kubernetes/oidc", "region": "us-east-2",
                "spec": {"audience": "sts.amazonaws.com", "service_account": "terraform"}
            }},
            "identities": {"acme/admin": {
                "default": true, "kind": "aws/assume-role",
                "via": {"provider": "cluster-oidc"},
                "principal": {"assume_role": ROLE, "duration": "1h"}
            }, "acme/b": {
                "kind": "aws/assume-role",
                "via": {"identity": "acme/admin"},
                "principal": {"assume_role": ROLE, "duration": "1h"}
            }}
        }
    }))
    .unwrap()
}

fn identity(status: Option<IdentityStatus>) -> Identity {
    let mut obj: Identity = serde_json::from_value(json!({
        "apiVersion": "auth.atmos.tools/v1alpha1", "kind": "Identity",
        "metadata": {"name": "app", "namespace": NS, "uid": UID, "generation": 1},
        "spec": {"profile": "k8s", "secret": {"name": "creds", "formats": ["process"]}}
    }))
    .unwrap();
    obj.status = status;
    obj
}

/// What one reconcile did.
struct Run {
    action: Result<Action, Error>,
    seen: Vec<Seen>,
    sts_calls: usize,
    metrics: String,
}

/// Runs one reconcile of `obj` at `now` (jitter 0) against `script`.
async fn run(obj: &Identity, sts: FakeSts, now: Timestamp, script: Vec<Step>) -> Run {
    run_with(Arc::new(Metrics::default()), obj, sts, now, script).await
}

/// [`run`] with the process's metrics as they stand.
async fn run_with(metrics: Arc<Metrics>, obj: &Identity, sts: FakeSts, now: Timestamp, script: Vec<Step>) -> Run {
    run_in(metrics, obj, sts, now, script, Some(&[])).await
}

/// [`run_with`] with the namespace `team` carrying `ns_labels` (`None`: not in the namespace
/// cache), and the ClusterAuthProfile `platform` (the same auth block) selecting namespaces
/// whose label `team` is not `no`.
async fn run_in(
    metrics: Arc<Metrics>,
    obj: &Identity,
    sts: FakeSts,
    now: Timestamp,
    script: Vec<Step>,
    ns_labels: Option<&[(&str, &str)]>,
) -> Run {
    run_seq(metrics, &[(obj, now)], sts, script, ns_labels).await
}

/// Reconciles of `runs` (each an object and a clock) one after another in one process (one
/// context: what it remembers of its own writes carries over), against one `script`;
/// returns the last one's action.
async fn run_seq(
    metrics: Arc<Metrics>,
    runs: &[(&Identity, Timestamp)],
    sts: FakeSts,
    script: Vec<Step>,
    ns_labels: Option<&[(&str, &str)]>,
) -> Run {
    // The Secrets the watch cache holds: the script's answers to a GET of the Secret's
    // metadata (`PartialObjectMetadata`) or a list of the controller's Secrets, which the
    // reconcile must then not make (a GET, of the whole Secret, is only for a Secret the
    // cache does not have, or one at a version the controller did not record; lists never).
    let (secrets, mut secret_writer) = reflector::store::<PartialObjectMeta<Secret>>();
    // Its place in the script keeps a placeholder in `seen`, so indices stay those of the script.
    let mut from_cache = Vec::new();
    let script: Vec<Step> = script
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| match (&s.reply, s.method, s.path) {
            (Reply::Json(200, meta), "GET", SECRET) if meta["kind"] == "PartialObjectMetadata" => {
                let cached: PartialObjectMeta<Secret> = serde_json::from_value(meta.clone()).unwrap();
                secret_writer.apply_watcher_event(&watcher::Event::Apply(cached));
                from_cache.push(i);
                None
            }
            (Reply::Json(200, list), "GET", SECRETS) => {
                for item in list["items"].as_array().unwrap() {
                    let mut item = item.clone();
                    item["metadata"]["namespace"] = NS.into();
                    let cached: PartialObjectMeta<Secret> = serde_json::from_value(item).unwrap();
                    secret_writer.apply_watcher_event(&watcher::Event::Apply(cached));
                }
                from_cache.push(i);
                None
            }
            _ => Some(s),
        })
        .collect();
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(serve(handle, script));
    let client = Client::new(service, NS);
    let (profiles, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Apply(profile()));
    let (cluster_profiles, mut cluster_writer) = reflector::store();
    let mut cluster: ClusterAuthProfile = serde_json::from_value(json!({
        "apiVersion": "auth.atmos.tools/v1alpha1", "kind": "ClusterAuthProfile",
        "metadata": {"name": "platform"},
        "spec": {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["no"]}]}}
    }))
    .unwrap();
    cluster.spec.auth = profile().spec;
    cluster_writer.apply_watcher_event(&watcher::Event::Apply(cluster));
    let (namespaces, mut ns_writer) = reflector::store();
    if let Some(ns_labels) = ns_labels {
        let mut ns: PartialObjectMeta<Namespace> = PartialObjectMeta::default();
        ns.metadata.name = Some(NS.into());
        ns.metadata.labels = Some(
            ns_labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        ns_writer.apply_watcher_event(&watcher::Event::Apply(ns));
    }
    let stores = Stores {
        profiles,
        cluster_profiles,
        namespaces,
        secrets,
    };
    let ctx = Context::test(client, stores, metrics.clone());
    let mut action = Err(Error::Metadata("no reconcile"));
    for (i, (obj, now)) in runs.iter().enumerate() {
        if i > 0 {
            assert!(action.is_ok(), "reconcile {i} failed: {action:?}");
        }
        action = reconcile_inner(obj, &ctx, &sts, *now, 0.0).await;
    }
    // Dropping every client closes the mock service, which ends the server's loop.
    drop(ctx);
    let (mut seen, unexpected) = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the mock API server did not finish")
        .unwrap();
    for i in from_cache {
        seen.insert(
            i,
            Seen {
                query: "(answered by the watch cache, no request)".into(),
                body: Value::Null,
            },
        );
    }
    assert_eq!(unexpected, Vec::<String>::new(), "requests beyond the script");
    Run {
        action,
        seen,
        sts_calls: sts.calls.load(Ordering::SeqCst),
        metrics: metrics.encode(),
    }
}

fn ready(status_patch: &Value) -> &Value {
    let conditions = status_patch["status"]["conditions"].as_array().unwrap();
    conditions.iter().find(|c| c["type"] == "Ready").unwrap()
}

/// The Identity's status and its Secret's annotations after a first issue at `t0`.
async fn issued_at_t0() -> (IdentityStatus, Value) {
    let r = first_issue_run().await;
    let status: IdentityStatus = serde_json::from_value(r.seen[4].body["status"].clone()).unwrap();
    (status, r.seen[3].body["metadata"]["annotations"].clone())
}

async fn first_issue_run() -> Run {
    run(
        &identity(None),
        FakeSts::ok(),
        t0(),
        vec![
            step("GET", SECRETS, empty_list()),
            step("GET", SECRET, not_found()),
            step("POST", TOKEN, token_reply()),
            step("POST", SECRETS, Reply::Echo(201)),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
        ],
    )
    .await
}

mod issue;
mod restarts;
mod secrets;
