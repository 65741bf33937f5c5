//! First issue, quiet reconcile, renewal, a foreign Secret, STS failures, a rename, deletion:
//! each request in order against the scripted API server of [`super`].

use pretty_assertions::assert_eq;

use super::*;

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
async fn a_rename_before_the_first_secret_reached_the_cache_empties_it_from_what_was_written() {
    // The first issue creates `creds`; the Identity is renamed to `renamed` before the watch
    // cache has shown `creds` (it never does here): the process's own write names it.
    let created = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": NS, "uid": SECRET_UID}});
    let mut renamed = identity(Some(IdentityStatus {
        secret_name: Some("creds".into()),
        ..Default::default()
    }));
    renamed.spec.secret.get_or_insert_default().name = Some("renamed".into());
    let status_reply = || Reply::Json(200, serde_json::to_value(identity(None)).unwrap());
    let r = run_seq(
        Arc::new(Metrics::default()),
        &[(&identity(None), t0()), (&renamed, at(1))],
        FakeSts::many(),
        vec![
            step("GET", SECRET, not_found()),
            step("POST", TOKEN, token_reply()),
            step("POST", SECRETS, Reply::Json(201, created)),
            step("PATCH", STATUS, status_reply()),
            step("POST", EVENTS, Reply::Echo(201)),
            // The second reconcile: `creds` emptied first, then `renamed` issued.
            step(
                "PATCH",
                SECRET,
                Reply::Json(
                    200,
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}}),
                ),
            ),
            step("GET", "/api/v1/namespaces/team/secrets/renamed", not_found()),
            step("POST", TOKEN, token_reply()),
            step("POST", SECRETS, Reply::Echo(201)),
            step("PATCH", STATUS, status_reply()),
            step("POST", EVENTS, Reply::Echo(201)),
        ],
        Some(&[]),
    )
    .await;
    r.action.unwrap();
    assert_eq!(r.sts_calls, 2);
    let emptied = &r.seen[5].body;
    assert_eq!(emptied["metadata"]["uid"], SECRET_UID);
    assert_eq!(emptied["metadata"]["annotations"][labels::SUPERSEDED_BY], "renamed");
    assert!(emptied["metadata"]["annotations"][labels::EXPIRATION].is_null());
    assert!(emptied["data"]["credential_process.json"].is_null());
    assert_eq!(r.seen[8].body["metadata"]["name"], "renamed");
    assert_eq!(r.seen[9].body["status"]["secretName"], "renamed");
}
