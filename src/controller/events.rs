//! Events, created directly. kube's `Recorder` keeps every event it published for six
//! minutes to merge repeats into a series, and scans that cache on every publish; the
//! controller's notes carry times, so they never repeat: the cache only cost memory and CPU
//! per Identity (about 1.5 KiB and a scan of every recent event per renewal in a storm).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Client};

/// Publishes events for the controller.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
}

impl Recorder {
    /// A recorder reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self { client, reporter }
    }

    /// Creates one `events.k8s.io/v1` Event about `regarding`, in its namespace; returns its
    /// name.
    pub async fn publish(&self, ev: &Event, regarding: &ObjectReference) -> Result<String, kube::Error> {
        let event = build(&self.reporter, ev, regarding, jiff::Timestamp::now());
        let ns = regarding.namespace.as_deref().unwrap_or("default");
        let created = Api::<K8sEvent>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &event)
            .await?;
        Ok(created.metadata.name.unwrap_or_default())
    }

    /// Counts one more occurrence of Event `name` about `regarding`: its series says `count`
    /// and when the last was seen, in place of a new Event.
    pub async fn repeat(&self, regarding: &ObjectReference, name: &str, count: i32) -> Result<(), kube::Error> {
        let ns = regarding.namespace.as_deref().unwrap_or("default");
        let patch = series_patch(count, jiff::Timestamp::now());
        Api::<K8sEvent>::namespaced(self.client.clone(), ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

/// The merge patch that counts an Event's `count`-th occurrence, seen at `now`.
fn series_patch(count: i32, now: jiff::Timestamp) -> serde_json::Value {
    serde_json::json!({ "series": { "count": count, "lastObservedTime": MicroTime(now) } })
}

/// The Event as kube's recorder makes it (name `<object>.<nanoseconds, hex>`).
fn build(reporter: &Reporter, ev: &Event, regarding: &ObjectReference, now: jiff::Timestamp) -> K8sEvent {
    K8sEvent {
        action: Some(ev.action.clone()),
        reason: Some(ev.reason.clone()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        note: ev.note.clone(),
        metadata: ObjectMeta {
            namespace: regarding.namespace.clone(),
            name: Some(format!(
                "{}.{:x}",
                regarding.name.as_ref().unwrap_or(&reporter.controller),
                now.as_nanosecond()
            )),
            ..Default::default()
        },
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(reporter.instance.clone().unwrap_or_else(|| reporter.controller.clone())),
        type_: Some(
            match ev.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_owned(),
        ),
        related: ev.secondary.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_names_its_object_reporter_and_time() {
        let reporter = Reporter {
            controller: "atmos-auth-controller".into(),
            instance: Some("pod-1".into()),
        };
        let regarding = ObjectReference {
            name: Some("app".into()),
            namespace: Some("team".into()),
            ..Default::default()
        };
        let ev = Event {
            type_: EventType::Warning,
            reason: "Throttling".into(),
            note: Some("n".into()),
            action: "Refresh".into(),
            secondary: None,
        };
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let e = build(&reporter, &ev, &regarding, now);
        assert_eq!(
            e.metadata.name.as_deref(),
            Some(format!("app.{:x}", now.as_nanosecond()).as_str())
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(e.series, None);
        assert_eq!(
            series_patch(3, now),
            serde_json::json!({"series": {"count": 3, "lastObservedTime": "2026-01-01T00:00:00.000000Z"}})
        );
    }
}
