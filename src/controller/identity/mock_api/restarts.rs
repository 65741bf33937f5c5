//! A restart target the controller may not patch: its `RestartFailed` Warning is one Event
//! whose series counts the repeats, like a refresh failure's.

use super::*;
use pretty_assertions::assert_eq;

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/team/deployments/web";

fn forbidden() -> Reply {
    Reply::Json(
        403,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
               "message": "deployments.apps \"web\" is forbidden"}),
    )
}

/// The Event as the API server returns it on create, named `app.1`.
fn created_event() -> Reply {
    Reply::Json(
        201,
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "app.1", "namespace": NS},
               "eventTime": "2026-01-01T00:10:00.000000Z"}),
    )
}

#[tokio::test]
async fn a_restart_that_keeps_failing_counts_in_one_warning_event() {
    let (status, annotations) = issued_at_t0().await;
    let mut obj = identity(Some(status));
    obj.spec.rollout_restart_targets = Some(vec![crate::api::RestartTarget {
        kind: crate::api::WorkloadKind::Deployment,
        name: "web".into(),
    }]);
    let r = run_seq(
        Arc::new(Metrics::default()),
        &[(&obj, at(10)), (&obj, at(11))],
        FakeSts::ok(),
        vec![
            step("GET", SECRET, Reply::Json(200, secret_meta(UID, &annotations))),
            step("GET", DEPLOYMENT, forbidden()),
            step("POST", EVENTS, created_event()),
            // The second failure counts in the first Event's series.
            step("GET", DEPLOYMENT, forbidden()),
            step(
                "PATCH",
                "/apis/events.k8s.io/v1/namespaces/team/events/app.1",
                Reply::Echo(200),
            ),
        ],
        Some(&[]),
    )
    .await;
    assert_eq!(r.seen[2].body["reason"], "RestartFailed");
    assert_eq!(r.seen[2].body["type"], "Warning");
    assert_eq!(r.seen[4].body["series"]["count"], 2);
    assert_eq!(r.sts_calls, 0);
}
