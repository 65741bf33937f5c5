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
    run_in(metrics, obj, sts, now, script, &[]).await
}

/// [`run_with`] with the namespace `team` carrying `ns_labels`, and the ClusterAuthProfile
/// `platform` (the same auth block) selecting `team=yes` namespaces.
async fn run_in(
    metrics: Arc<Metrics>,
    obj: &Identity,
    sts: FakeSts,
    now: Timestamp,
    script: Vec<Step>,
    ns_labels: &[(&str, &str)],
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
        "spec": {"namespaceSelector": {"matchLabels": {"team": "yes"}}}
    }))
    .unwrap();
    cluster.spec.auth = profile().spec;
    cluster_writer.apply_watcher_event(&watcher::Event::Apply(cluster));
    let (namespaces, mut ns_writer) = reflector::store();
    let mut ns: PartialObjectMeta<Namespace> = PartialObjectMeta::default();
    ns.metadata.name = Some(NS.into());
    ns.metadata.labels = Some(
        ns_labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    ns_writer.apply_watcher_event(&watcher::Event::Apply(ns));
    let stores = Stores {
        profiles,
        cluster_profiles,
        namespaces,
        secrets,
    };
    let ctx = Context::test(client, stores, metrics.clone());
    let action = reconcile_inner(obj, &ctx, &sts, now, 0.0).await;
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

// ---- the cases ----

#[tokio::test]
async fn first_issue_creates_the_secret_reports_and_schedules() {
    let r = first_issue_run().await;
    // Renewal at two thirds of the hour (jitter 0): 40 minutes.
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(40 * 60)));
    assert_eq!(r.sts_calls, 1);
    // Superseded Secrets are looked for in the watch cache, not listed.
    assert!(r.seen[0].query.contains("watch cache"), "{}", r.seen[0].query);
    assert_eq!(r.seen[2].body["spec"]["audiences"], json!(["sts.amazonaws.com"]));
    let secret = &r.seen[3].body;
    assert_eq!(secret["metadata"]["name"], "creds");
    assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], UID);
    assert_eq!(secret["metadata"]["ownerReferences"][0]["controller"], true);
    let a = &secret["metadata"]["annotations"];
    assert_eq!(a[labels::EXPIRATION], "2026-01-01T01:00:00Z");
    assert_eq!(a[labels::RENEWAL_TIME], "2026-01-01T00:40:00Z");
    assert_eq!(a[labels::IDENTITY], "acme/admin");
    let process = secret["data"]["credential_process.json"].as_str().unwrap();
    assert!(!process.is_empty());
    let status = &r.seen[4].body["status"];
    assert_eq!(ready(&r.seen[4].body)["reason"], "CredentialsIssued");
    assert_eq!(status["expiration"], "2026-01-01T01:00:00Z");
    assert_eq!(status["renewalTime"], "2026-01-01T00:40:00Z");
    assert_eq!(status["secretName"], "creds");
    assert_eq!(status["roleArn"], ROLE);
    assert_eq!(status["lastRefreshTime"], "2026-01-01T00:00:00Z");
    // The record renewal is decided from: the version the create got, the data's hash.
    let data: std::collections::BTreeMap<String, k8s_openapi::ByteString> =
        serde_json::from_value(secret["data"].clone()).unwrap();
    assert_eq!(
        status["written"],
        json!({"name": "creds", "resourceVersion": ECHO_RV,
            "dataHash": crate::output::secret::data_hash(&data), "specHash": a[labels::SPEC_HASH]})
    );
    assert_eq!(r.seen[5].body["reason"], "Renewed");
    assert!(
        r.metrics.contains(r#"identity="acme/admin"} 1767229200"#),
        "{}",
        r.metrics
    );
}

#[tokio::test]
async fn a_quiet_reconcile_reads_the_secret_metadata_and_writes_nothing() {
    let (status, annotations) = issued_at_t0().await;
    let r = run(
        &identity(Some(status)),
        FakeSts::ok(),
        at(10),
        vec![step("GET", SECRET, Reply::Json(200, secret_meta(UID, &annotations)))],
    )
    .await;
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(30 * 60)));
    assert_eq!(r.sts_calls, 0);
}

#[tokio::test]
async fn at_renewal_time_the_secret_is_applied_again() {
    let (status, annotations) = issued_at_t0().await;
    let r = run(
        &identity(Some(status)),
        FakeSts::ok(),
        at(41),
        vec![
            step("GET", SECRET, Reply::Json(200, secret_meta(UID, &annotations))),
            step("POST", TOKEN, token_reply()),
            step("PATCH", SECRET, Reply::Echo(200)),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
        ],
    )
    .await;
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(40 * 60)));
    // A server-side apply, forced, conditional on the Secret's own UID.
    assert!(r.seen[2].query.contains("fieldManager=atmos-auth-controller") && r.seen[2].query.contains("force=true"));
    assert_eq!(r.seen[2].body["metadata"]["uid"], SECRET_UID);
    assert_eq!(
        r.seen[2].body["metadata"]["annotations"][labels::RENEWAL_TIME],
        "2026-01-01T01:21:00Z"
    );
    assert_eq!(r.seen[3].body["status"]["renewalTime"], "2026-01-01T01:21:00Z");
    assert_eq!(r.seen[3].body["status"]["lastRefreshTime"], "2026-01-01T00:41:00Z");
    assert_eq!(
        r.seen[4].body["note"].as_str().unwrap().split(':').next(),
        Some("Renewing")
    );
}

#[tokio::test]
async fn a_foreign_secret_is_reported_and_never_written() {
    let foreign = secret_meta("someone-else", &json!({}));
    let r = run(
        &identity(None),
        FakeSts::ok(),
        t0(),
        vec![
            step("GET", SECRETS, empty_list()),
            step("GET", SECRET, Reply::Json(200, foreign)),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
        ],
    )
    .await;
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(300)));
    assert_eq!(r.sts_calls, 0);
    let c = ready(&r.seen[2].body);
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("SecretConflict"))
    );
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("team/creds exists and is not owned")
    );
}

#[tokio::test]
async fn an_sts_failure_keeps_a_valid_secret_and_backs_off() {
    let (status, annotations) = issued_at_t0().await;
    let err = ExchangeError::Sts(StsError::Transport {
        action: "AssumeRoleWithWebIdentity",
        role: ROLE.into(),
        detail: "connection refused".into(),
    });
    let r = run(
        &identity(Some(status)),
        FakeSts::failing(err),
        at(41),
        vec![
            step("GET", SECRET, Reply::Json(200, secret_meta(UID, &annotations))),
            step("POST", TOKEN, token_reply()),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
        ],
    )
    .await;
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(5)));
    let c = ready(&r.seen[2].body);
    assert_eq!(c["reason"], "StsUnreachable");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains("The previous credentials stay in Secret creds until 2026-01-01T01:00:00Z. Retrying in 5s."),
        "{msg}"
    );
    assert_eq!(r.seen[2].body["status"]["failedAttempts"], 1);
    assert_eq!(r.seen[3].body["type"], "Warning");
    assert_eq!(r.seen[3].body["reason"], "StsUnreachable");
}

#[tokio::test]
async fn an_sts_refusal_without_a_secret_is_retried_slowly() {
    let err = ExchangeError::Sts(StsError::Rejected {
        action: "AssumeRoleWithWebIdentity",
        role: ROLE.into(),
        code: "AccessDenied".into(),
        message: "Not authorized to perform sts:AssumeRoleWithWebIdentity".into(),
        status: Some(403),
    });
    // A series left from earlier credentials (an earlier Secret name) must not stay frozen.
    let metrics = Arc::new(Metrics::default());
    let labels = crate::telemetry::IdentityLabels {
        namespace: NS.into(),
        name: "app".into(),
        identity: "acme/admin".into(),
    };
    metrics.schedule(&labels, 1, 1);
    let r = run_with(
        metrics,
        &identity(None),
        FakeSts::failing(err),
        t0(),
        vec![
            step("GET", SECRETS, empty_list()),
            step("GET", SECRET, not_found()),
            step("POST", TOKEN, token_reply()),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
        ],
    )
    .await;
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(60)));
    let c = ready(&r.seen[3].body);
    assert_eq!(c["reason"], "AccessDenied");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains("Retried slowly (next in 60s)") && !msg.contains("previous credentials"),
        "{msg}"
    );
    assert!(
        !r.metrics.contains("identity_expiration_timestamp_seconds{"),
        "{}",
        r.metrics
    );
}

#[tokio::test]
async fn a_renamed_secret_empties_the_old_one_then_issues_the_new() {
    let (mut status, annotations) = issued_at_t0().await;
    status.secret_name = Some("old".into());
    status.written.as_mut().unwrap().name = "old".into();
    let mut old = secret_meta(UID, &annotations)["metadata"].clone();
    old["name"] = "old".into();
    old["uid"] = "old-uid".into();
    let mut theirs = secret_meta("someone-else", &annotations)["metadata"].clone();
    theirs["name"] = "theirs".into();
    let list = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
        "items": [{"metadata": old}, {"metadata": theirs}]});
    let r = run(
        &identity(Some(status)),
        FakeSts::ok(),
        at(10),
        vec![
            step("GET", SECRETS, Reply::Json(200, list)),
            step(
                "PATCH",
                "/api/v1/namespaces/team/secrets/old",
                Reply::Json(
                    200,
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "old"}}),
                ),
            ),
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
    .await;
    r.action.unwrap();
    let emptied = &r.seen[1].body;
    assert_eq!(emptied["metadata"]["uid"], "old-uid");
    assert_eq!(emptied["metadata"]["annotations"][labels::SUPERSEDED_BY], "creds");
    assert!(emptied["metadata"]["annotations"][labels::EXPIRATION].is_null());
    assert!(emptied["data"]["credential_process.json"].is_null());
    assert_eq!(r.seen[5].body["status"]["secretName"], "creds");
}

#[tokio::test]
async fn an_identity_being_deleted_makes_no_request_and_no_exchange() {
    let (status, _) = issued_at_t0().await;
    let mut obj = identity(Some(status));
    obj.meta_mut().deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t0()));
    let r = run(&obj, FakeSts::ok(), at(41), Vec::new()).await;
    assert_eq!(r.action.unwrap(), Action::await_change());
    assert_eq!(r.sts_calls, 0);
}

#[tokio::test]
async fn renaming_back_to_an_emptied_secret_issues_fresh_credentials() {
    // Behaviour changed with the record (issue 19): the emptied Secret is one the status holds
    // no record of, so it is read whole and rewritten whole (a restore patch), instead of an
    // apply decided from its annotations and a tidy-up patch.
    let (mut status, annotations) = issued_at_t0().await;
    status.secret_name = Some("second".into());
    status.written.as_mut().unwrap().name = "second".into();
    // `creds` was emptied when the Identity moved to `second`; `second` holds credentials.
    let emptied = json!({labels::IDENTITY: "acme/admin", labels::SUPERSEDED_BY: "second"});
    let mut second = secret_meta(UID, &annotations)["metadata"].clone();
    second["name"] = "second".into();
    second["uid"] = "second-uid".into();
    let list = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
        "items": [secret_meta_at(UID, &emptied, "90"), {"metadata": second}]});
    let restored = secret_live(&emptied, "101", &json!({}), labels::FIELD_MANAGER);
    let r = run(
        &identity(Some(status)),
        FakeSts::ok(),
        at(10),
        vec![
            step("GET", SECRETS, Reply::Json(200, list)),
            step(
                "PATCH",
                "/api/v1/namespaces/team/secrets/second",
                Reply::Json(
                    200,
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "second"}}),
                ),
            ),
            step(
                "GET",
                SECRET,
                Reply::Json(200, secret_live(&emptied, "90", &json!({}), labels::FIELD_MANAGER)),
            ),
            step("POST", TOKEN, token_reply()),
            step("PATCH", SECRET, Reply::Json(200, restored)),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
        ],
    )
    .await;
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(40 * 60)));
    assert_eq!(
        r.seen[1].body["metadata"]["annotations"][labels::SUPERSEDED_BY],
        "creds"
    );
    // Rewritten whole, conditional on its UID and the version read: fresh credentials, the
    // superseded mark gone.
    let ops = r.seen[4].body.as_array().unwrap();
    assert_eq!(
        ops[0],
        json!({"op": "test", "path": "/metadata/uid", "value": SECRET_UID})
    );
    assert_eq!(ops[1]["value"], "90");
    let annotations = &ops[3]["value"];
    assert_eq!(annotations[labels::RENEWAL_TIME], "2026-01-01T00:50:00Z");
    assert!(annotations.get(labels::SUPERSEDED_BY).is_none(), "{annotations}");
    let data = ops[4]["value"].as_object().unwrap();
    assert!(data.contains_key("credential_process.json") && !data.contains_key("AWS_ACCESS_KEY_ID"));
    assert_eq!(ready(&r.seen[5].body)["reason"], "CredentialsIssued");
    assert_eq!(r.seen[5].body["status"]["written"]["resourceVersion"], "101");
    assert!(
        r.seen[6].body["note"]
            .as_str()
            .unwrap()
            .starts_with("SecretUnrecorded:")
    );
}

#[tokio::test]
async fn the_same_data_at_a_new_version_costs_one_read_and_no_exchange() {
    // A `kubectl replace` (an encryption-key rotation) or a forged annotation: a new version.
    let r = first_issue_run().await;
    let status: IdentityStatus = serde_json::from_value(r.seen[4].body["status"].clone()).unwrap();
    let data = r.seen[3].body["data"].clone();
    let forged = json!({labels::EXPIRATION: "2001-01-01T00:00:00Z", labels::RENEWAL_TIME: "2001-01-01T00:00:00Z"});
    let r = run(
        &identity(Some(status)),
        FakeSts::ok(),
        at(10),
        vec![
            step("GET", SECRET, Reply::Json(200, secret_meta_at(UID, &forged, "101"))),
            step(
                "GET",
                SECRET,
                Reply::Json(200, secret_live(&forged, "101", &data, "kubectl-replace")),
            ),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
        ],
    )
    .await;
    // Renewal stays where the controller put it, whatever the annotations say.
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(30 * 60)));
    assert_eq!(r.sts_calls, 0);
    let status = &r.seen[2].body["status"];
    assert_eq!(status["written"]["resourceVersion"], "101");
    assert_eq!(status["renewalTime"], "2026-01-01T00:40:00Z");
    assert_eq!(ready(&r.seen[2].body)["reason"], "CredentialsIssued");
}

#[tokio::test]
async fn data_planted_under_the_controllers_field_manager_is_restored() {
    let r = first_issue_run().await;
    let status: IdentityStatus = serde_json::from_value(r.seen[4].body["status"].clone()).unwrap();
    let annotations = r.seen[3].body["metadata"]["annotations"].clone();
    let mut data = r.seen[3].body["data"].clone();
    data["credentials"] = "W2RlZmF1bHRd".into();
    let restored = secret_live(&annotations, "102", &json!({}), labels::FIELD_MANAGER);
    let r = run(
        &identity(Some(status)),
        FakeSts::ok(),
        at(10),
        vec![
            step(
                "GET",
                SECRET,
                Reply::Json(200, secret_meta_at(UID, &annotations, "101")),
            ),
            step(
                "GET",
                SECRET,
                Reply::Json(200, secret_live(&annotations, "101", &data, labels::FIELD_MANAGER)),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
            step("POST", TOKEN, token_reply()),
            step("PATCH", SECRET, Reply::Json(200, restored)),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
        ],
    )
    .await;
    r.action.unwrap();
    assert_eq!(r.sts_calls, 1);
    assert_eq!(r.seen[2].body["reason"], "SecretTampered");
    let note = r.seen[2].body["note"].as_str().unwrap();
    assert!(note.contains("a writer other than the controller"), "{note}");
    // `data` replaced whole (the planted key gone), conditional on the version read.
    let ops = r.seen[4].body.as_array().unwrap();
    assert_eq!(ops[1]["value"], "101");
    assert!(!ops[4]["value"].as_object().unwrap().contains_key("credentials"));
    assert_eq!(r.seen[5].body["status"]["written"]["resourceVersion"], "102");
}

// ---- ClusterAuthProfile selection ----

fn cluster_identity() -> Identity {
    let mut obj = identity(None);
    obj.spec.profile = "platform".into();
    obj.spec.profile_kind = Some(crate::api::ProfileKind::ClusterAuthProfile);
    obj
}

#[tokio::test]
async fn a_selected_namespace_gets_credentials_from_the_cluster_profile() {
    let r = run_in(
        Arc::new(Metrics::default()),
        &cluster_identity(),
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
        &[("team", "yes")],
    )
    .await;
    r.action.unwrap();
    assert_eq!(r.sts_calls, 1);
    assert_eq!(ready(&r.seen[4].body)["reason"], "CredentialsIssued");
}

#[tokio::test]
async fn a_namespace_outside_the_selection_gets_no_token_and_its_secret_emptied() {
    let (status, annotations) = issued_at_t0().await;
    let list = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
        "items": [secret_meta(UID, &annotations)]});
    let mut obj = cluster_identity();
    obj.status = Some(status);
    let r = run_in(
        Arc::new(Metrics::default()),
        &obj,
        FakeSts::ok(),
        at(10),
        vec![
            step("GET", SECRETS, Reply::Json(200, list)),
            step(
                "PATCH",
                SECRET,
                Reply::Json(
                    200,
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}}),
                ),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
        ],
        &[("team", "no")],
    )
    .await;
    assert_eq!(r.action.unwrap(), Action::await_change());
    assert_eq!(r.sts_calls, 0, "no token, no exchange");
    let emptied = &r.seen[1].body;
    assert_eq!(emptied["metadata"]["uid"], SECRET_UID);
    assert_eq!(
        emptied["metadata"]["annotations"][labels::REVOKED],
        "NamespaceNotAllowed"
    );
    assert!(emptied["metadata"]["annotations"][labels::EXPIRATION].is_null());
    assert!(emptied["data"]["credential_process.json"].is_null());
    let status = &r.seen[3].body;
    assert_eq!(ready(status)["reason"], "NamespaceNotAllowed");
    assert!(status["status"]["expiration"].is_null());
}

// ---- several identities ----

#[tokio::test]
async fn an_identity_removed_from_the_list_loses_its_key_at_the_next_write() {
    use crate::output::render::process_key;
    let (admin, b, gone) = (
        process_key("acme/admin"),
        process_key("acme/b"),
        process_key("acme/gone"),
    );
    let annotations = json!({labels::SPEC_HASH: "old", labels::DATA_KEYS: format!("{admin},{gone}")});
    let mut obj = identity(None);
    obj.spec.identities = Some(vec!["acme/admin".into(), "acme/b".into()]);
    // The controller wrote the Secret for the earlier list (spec hash `old`).
    obj.status = Some(IdentityStatus {
        secret_name: Some("creds".into()),
        expiration: Some("2026-01-01T01:00:00Z".into()),
        renewal_time: Some("2026-01-01T00:40:00Z".into()),
        written: Some(crate::api::WrittenSecret {
            name: "creds".into(),
            resource_version: ECHO_RV.into(),
            data_hash: "d".into(),
            spec_hash: "old".into(),
        }),
        ..Default::default()
    });
    let r = run(
        &obj,
        FakeSts::many(),
        t0(),
        vec![
            step("GET", SECRETS, empty_list()),
            step("GET", SECRET, Reply::Json(200, secret_meta(UID, &annotations))),
            step("POST", TOKEN, token_reply()),
            step("POST", TOKEN, token_reply()),
            step("PATCH", SECRET, Reply::Echo(200)),
            step(
                "PATCH",
                SECRET,
                Reply::Json(
                    200,
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}}),
                ),
            ),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
            step("POST", EVENTS, Reply::Echo(201)),
        ],
    )
    .await;
    r.action.unwrap();
    assert_eq!(r.sts_calls, 2, "one refresh per identity");
    // One apply with both identities' keys and the new key list ...
    let applied = &r.seen[4].body;
    let data = applied["data"].as_object().unwrap();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort();
    let mut want = vec!["config", admin.as_str(), b.as_str()];
    want.sort();
    assert_eq!(keys, want);
    let mut recorded = [admin.clone(), b.clone()];
    recorded.sort();
    assert_eq!(
        applied["metadata"]["annotations"][labels::DATA_KEYS],
        recorded.join(",")
    );
    // ... then the removed identity's key (and the one-identity key) pruned, kept ones not.
    let pruned = r.seen[5].body["data"].as_object().unwrap();
    assert!(pruned.get(&gone).is_some_and(Value::is_null), "{pruned:?}");
    assert!(pruned.get("credential_process.json").is_some_and(Value::is_null));
    assert!(!pruned.contains_key(&admin) && !pruned.contains_key(&b));
    let status = &r.seen[6].body["status"];
    assert_eq!(status["identities"].as_array().unwrap().len(), 2);
    assert_eq!(status["identity"], "acme/admin,acme/b");
}

#[tokio::test]
async fn warnings_about_the_identitys_own_fields_reach_its_status() {
    let mut obj = identity(None);
    obj.spec.overrides.principal = Some(serde_json::from_value(json!({"session_name": "runner/one"})).unwrap());
    let issue = vec![
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
    ];
    let r = run(&obj, FakeSts::ok(), t0(), issue).await;
    assert_eq!(ready(&r.seen[4].body)["reason"], "CredentialsIssued");
    // The Identity's own field first, then its chain's (the provider's unused region).
    let warnings = r.seen[4].body["status"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let line = warnings[0].as_str().unwrap();
    assert!(line.starts_with("spec.principal.session_name: "), "{line}");
    assert!(line.contains("runner-one"), "{line}");
    let region = warnings[1].as_str().unwrap();
    assert!(region.starts_with("auth.providers.cluster-oidc.region: "), "{region}");

    // A later quiet reconcile (no renewal) replaces stale lines with the current ones.
    let mut status: IdentityStatus = serde_json::from_value(r.seen[4].body["status"].clone()).unwrap();
    status.warnings = vec!["spec.principal.duration: stale".into()];
    obj.status = Some(status);
    let annotations = r.seen[3].body["metadata"]["annotations"].clone();
    let current = json!(warnings);
    let r = run(
        &obj,
        FakeSts::ok(),
        at(10),
        vec![
            step("GET", SECRET, Reply::Json(200, secret_meta(UID, &annotations))),
            step(
                "PATCH",
                STATUS,
                Reply::Json(200, serde_json::to_value(identity(None)).unwrap()),
            ),
        ],
    )
    .await;
    assert_eq!(r.sts_calls, 0);
    assert_eq!(r.seen[1].body["status"]["warnings"], current);
}
