//! Objects decoded one by one. kube-client decodes a LIST or WATCH body whole, so one object
//! that does not decode as the current type (stored before the current CRD bounded it:
//! nested deeper than serde_json's 128 levels in a free-form map, or a field of a type the
//! schema now refuses) would fail every LIST of its kind, and the controller would reconcile
//! nothing in any namespace. The watches of the controller's own kinds list [`Decoded<K>`]
//! instead: each item is kept as raw JSON (serde_json skips a value without recursion) and
//! decoded on its own; one that fails keeps only its metadata and the error, and is skipped
//! and reported ([`Skipped`]) while the others are served. kube's own `DeserializeGuard`
//! does not do for this: it buffers each item through `serde_value`, which descends through
//! serde_json's depth limit, so a deep object still fails the whole LIST (tested below).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::events::{Event, EventType};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde_json::value::RawValue;

use super::Recorder;
use crate::telemetry::Metrics;

/// An object of `K` as listed or watched: decoded, or not.
#[derive(Clone, Debug)]
pub enum Decoded<K> {
    /// Decoded.
    Ok(K),
    /// Not decoded: its metadata and why.
    Bad(Box<Undecodable>),
}

/// An object that does not decode as the current type: its metadata (decoded alone) and the
/// decoder's error.
#[derive(Clone, Debug)]
pub struct Undecodable {
    /// The object's metadata.
    pub metadata: ObjectMeta,
    /// What the decoder said.
    pub error: String,
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Decoded<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        match serde_json::from_str::<K>(raw.get()) {
            Ok(obj) => Ok(Self::Ok(obj)),
            Err(e) => {
                let metadata = identity(raw.get()).map_err(D::Error::custom)?;
                Ok(Self::Bad(Box::new(Undecodable {
                    metadata,
                    error: e.to_string(),
                })))
            }
        }
    }
}

/// What names an object and its version, and nothing else: the rest (its spec, and
/// `managedFields`, whose `fieldsV1` mirrors a deep spec as deep) is skipped without recursion.
fn identity(raw: &str) -> Result<ObjectMeta, serde_json::Error> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Names,
    }
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Names {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
        generation: Option<i64>,
    }
    let m = serde_json::from_str::<Object>(raw)?.metadata;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        generation: m.generation,
        ..Default::default()
    })
}

impl<K: Resource<DynamicType = ()>> Resource for Decoded<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Ok(obj) => obj.meta(),
            Self::Bad(bad) => &bad.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Ok(obj) => obj.meta_mut(),
            Self::Bad(bad) => &mut bad.metadata,
        }
    }
}

/// What every watch reports to: its health ([`super::Watches`]) and the objects it skips.
#[derive(Clone)]
pub struct WatchReports {
    /// Whether each watch has listed, and why not.
    pub watches: Arc<super::Watches>,
    /// Objects skipped because they do not decode.
    pub skipped: Arc<Skipped>,
}

/// Reports skipped objects: a log line with the object's name and the error, a count by
/// kind, and an Event on the object. Each version of an object once (a re-list sees it again).
pub struct Skipped {
    metrics: Arc<Metrics>,
    recorder: Recorder,
    seen: Mutex<HashSet<(String, String)>>,
}

impl Skipped {
    /// Reports through `metrics` and `recorder`.
    pub fn new(metrics: Arc<Metrics>, recorder: Recorder) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            recorder,
            seen: Mutex::default(),
        })
    }

    /// `bad`, an object of `K`, was skipped.
    pub fn report<K: Resource<DynamicType = ()>>(&self, bad: &Undecodable) {
        let m = &bad.metadata;
        let version = (
            m.uid.clone().unwrap_or_default(),
            m.resource_version.clone().unwrap_or_default(),
        );
        if !self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(version) {
            return;
        }
        let kind = K::kind(&()).into_owned();
        let error = crate::util::redact::redact(&bad.error);
        let (namespace, name) = (
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
        );
        tracing::error!(%kind, %namespace, %name, %error, "object skipped: it does not decode as the current CRD describes it; fix or re-apply it");
        self.metrics.skipped(&kind);
        let regarding = ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(kind.clone()),
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            ..Default::default()
        };
        let ev = Event {
            type_: EventType::Warning,
            reason: "Undecodable".to_owned(),
            note: Some(format!(
                "{kind} skipped by the controller: it does not decode as the current CRD describes it ({error}); \
                 fix it or apply it again"
            )),
            action: "Decode".to_owned(),
            secondary: None,
        };
        let recorder = self.recorder.clone();
        // A cluster-scoped object's Event goes to `default` (Events are namespaced).
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&ev, &regarding).await {
                tracing::debug!(error = %e, "event not published");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Identity;

    fn nested(levels: usize) -> serde_json::Value {
        (0..levels).fold(serde_json::json!("deep"), |inner, _| serde_json::json!({ "x": inner }))
    }

    #[test]
    fn a_list_with_an_undecodable_item_keeps_the_others() {
        let good = serde_json::json!({"apiVersion": "auth.atmos.tools/v1alpha1", "kind": "Identity",
            "metadata": {"name": "good", "namespace": "a"}, "spec": {"profile": "p"}});
        let mut wrong = good.clone();
        wrong["metadata"]["name"] = "wrong".into();
        wrong["spec"]["refreshBefore"] = 5.into();
        let mut deep = good.clone();
        deep["metadata"]["name"] = "deep".into();
        deep["spec"]["principal"] = serde_json::json!({"x": nested(200)});
        // The API server records who wrote each field: as deep as the field.
        deep["metadata"]["managedFields"] = serde_json::json!([{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": nested(200)}]);
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "7"},
            "items": [good, wrong, deep]});
        let text = serde_json::to_string(&list).unwrap();
        // What kube-client does with a LIST body; kube's DeserializeGuard fails on the deep one.
        assert!(serde_json::from_str::<kube::core::ObjectList<Identity>>(&text).is_err());
        let guarded = serde_json::from_str::<kube::core::ObjectList<kube::core::DeserializeGuard<Identity>>>(&text);
        assert!(guarded.is_err());
        let decoded: kube::core::ObjectList<Decoded<Identity>> = serde_json::from_str(&text).unwrap();
        let names: Vec<(String, bool)> = decoded
            .items
            .iter()
            .map(|d| (d.meta().name.clone().unwrap_or_default(), matches!(d, Decoded::Ok(_))))
            .collect();
        assert_eq!(
            names,
            [("good".into(), true), ("wrong".into(), false), ("deep".into(), false)]
        );
        let Decoded::Bad(bad) = &decoded.items[2] else { panic!() };
        assert!(bad.error.contains("recursion limit"), "{}", bad.error);
        // A WATCH line: the same.
        let line = format!(
            "{{\"type\":\"MODIFIED\",\"object\":{}}}",
            serde_json::to_string(&list["items"][1]).unwrap()
        );
        let event: kube::core::WatchEvent<Decoded<Identity>> = serde_json::from_str(&line).unwrap();
        assert!(matches!(event, kube::core::WatchEvent::Modified(Decoded::Bad(_))));
    }
}
