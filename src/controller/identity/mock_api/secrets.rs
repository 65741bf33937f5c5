//! The Secret judged against the controller's record (renaming back to an emptied Secret,
//! the same data at a new version, data planted under the controller's own field manager),
//! ClusterAuthProfile selection, several identities, warnings: each request in order against
//! the scripted API server of [`super`].

use pretty_assertions::assert_eq;

use super::*;

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
        Some(&[("team", "yes")]),
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
        Some(&[("team", "no")]),
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

#[tokio::test]
async fn a_namespace_not_yet_cached_is_not_selected_and_looked_at_again() {
    // The profile selects namespaces whose label `team` is not `no`: a namespace whose labels
    // are not known yet (the Identity's watch event came before the namespace's) must not
    // pass for one without labels. No request, no token, no exchange; a look again soon.
    let r = run_in(
        Arc::new(Metrics::default()),
        &cluster_identity(),
        FakeSts::ok(),
        t0(),
        Vec::new(),
        None,
    )
    .await;
    assert_eq!(r.action.unwrap(), Action::requeue(Duration::from_secs(1)));
    assert_eq!(r.sts_calls, 0);
}
