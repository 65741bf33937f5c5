//! Every object and patch the controller sends for a Secret, built without I/O: the Secret
//! wanted, the apply and the tidy-up after it, the restore of a tampered Secret, and the
//! patches that empty one the Identity no longer uses.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use serde_json::{Map, Value};

use base64::Engine as _;

use crate::output::{dockerconfig, labels};

/// The Secret the controller wants: data, managed-by label, its own annotations, and a
/// controller owner reference so garbage collection removes it with the Identity.
pub fn desired(
    namespace: &str,
    name: &str,
    owner: OwnerReference,
    data: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                labels::MANAGED_BY.to_owned(),
                labels::MANAGED_BY_VALUE.to_owned(),
            )])),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect()),
        ..Default::default()
    }
}

/// The server-side apply body of `secret` over the owned Secret `uid`: the UID makes the
/// apply fail rather than overwrite a Secret that replaced ours meanwhile.
pub(super) fn apply_body(secret: &Secret, uid: &str) -> Value {
    let mut body = secret.clone();
    body.metadata.managed_fields = None;
    body.metadata.uid = Some(uid.to_owned());
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": body.metadata,
        "type": body.type_,
        "data": body.data,
    })
}

/// The merge patch that follows an apply of `secret` over a Secret annotated `annotations`,
/// or `None` when there is nothing to remove. With `prune`, the data keys that Secret may
/// hold ([`labels::data_keys`]) and `secret` no longer does go: keys written by the first
/// create are owned by an `Update` entry that a later apply never removes. So do the marks
/// set by merge patches ([`labels::SUPERSEDED_BY`], [`labels::REVOKED`]) and a key list the
/// first create wrote, when `secret` no longer carries them.
pub(super) fn tidy_patch(
    uid: &str,
    annotations: &BTreeMap<String, String>,
    secret: &Secret,
    prune: bool,
) -> Option<Value> {
    let kept = secret.data.as_ref();
    let stale: Map<String, Value> = labels::data_keys(annotations)
        .into_iter()
        .filter(|k| prune && !kept.is_some_and(|d| d.contains_key(k)))
        .map(|k| (k, Value::Null))
        .collect();
    let wanted = secret.annotations();
    let marks: Map<String, Value> = [labels::SUPERSEDED_BY, labels::REVOKED, labels::DATA_KEYS]
        .into_iter()
        .filter(|k| annotations.contains_key(*k) && !wanted.contains_key(*k))
        .map(|k| (k.to_owned(), Value::Null))
        .collect();
    if stale.is_empty() && marks.is_empty() {
        return None;
    }
    // The UID is a precondition: never touch a Secret that replaced ours meanwhile.
    let mut metadata = serde_json::json!({ "uid": uid });
    if !marks.is_empty() {
        metadata["annotations"] = Value::Object(marks);
    }
    Some(serde_json::json!({ "metadata": metadata, "data": stale }))
}

/// The JSON patch that restores a Secret someone else changed: `data` replaced as a whole
/// (server-side apply cannot remove keys another manager owns), the controller's label and
/// annotations set, the others kept. Conditional on the Secret's UID and on the version
/// read (`resourceVersion`), so a write made meanwhile is never lost unseen: the patch fails
/// with a conflict and the next reconcile looks again.
pub fn restore_patch(
    uid: &str,
    resource_version: &str,
    live_labels: &BTreeMap<String, String>,
    live_annotations: &BTreeMap<String, String>,
    secret: &Secret,
) -> json_patch::Patch {
    let mut labels = live_labels.clone();
    labels.extend(secret.metadata.labels.clone().unwrap_or_default());
    let mut annotations = live_annotations.clone();
    // The marks merge patches set (back in use after a rename or a revocation, a key list of
    // an earlier write), as [`tidy_patch`] drops them after an apply; the new ones follow.
    for mark in [labels::SUPERSEDED_BY, labels::REVOKED, labels::DATA_KEYS] {
        annotations.remove(mark);
    }
    annotations.extend(secret.metadata.annotations.clone().unwrap_or_default());
    let ops = serde_json::json!([
        { "op": "test", "path": "/metadata/uid", "value": uid },
        { "op": "replace", "path": "/metadata/resourceVersion", "value": resource_version },
        { "op": "replace", "path": "/metadata/labels", "value": labels },
        { "op": "replace", "path": "/metadata/annotations", "value": annotations },
        { "op": "replace", "path": "/data", "value": secret.data.clone().unwrap_or_default() },
    ]);
    // The shape is fixed above; an empty patch would only make the write fail.
    serde_json::from_value(ops).unwrap_or_else(|_| json_patch::Patch(Vec::new()))
}

/// The merge patch that empties a superseded Secret: every credential key (`keys`) and
/// renewal annotation removed, the new name recorded, conditional on the Secret's own UID.
pub fn supersede_patch(uid: &str, current: &str, keys: &[String]) -> Value {
    empty_patch(uid, keys, labels::SUPERSEDED_BY, current)
}

/// The merge patch that empties a Secret whose Identity lost access: as
/// [`supersede_patch`], with [`labels::REVOKED`] set to `reason`.
pub fn revoke_patch(uid: &str, reason: &str, keys: &[String]) -> Value {
    empty_patch(uid, keys, labels::REVOKED, reason)
}

fn empty_patch(uid: &str, keys: &[String], mark: &str, value: &str) -> Value {
    let mut annotations: Map<String, Value> = labels::RENEWAL_ANNOTATIONS
        .iter()
        .chain([&labels::DATA_KEYS])
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    annotations.insert(mark.to_owned(), value.into());
    // An image-pull Secret must keep its key, with JSON (the API server validates the type).
    let emptied = |k: &str| {
        if k == dockerconfig::KEY {
            Value::from(base64::engine::general_purpose::STANDARD.encode(dockerconfig::EMPTY))
        } else {
            Value::Null
        }
    };
    let data: Map<String, Value> = keys.iter().map(|k| (k.clone(), emptied(k))).collect();
    serde_json::json!({
        "metadata": { "uid": uid, "annotations": annotations },
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(data: &[&str], annotations: &[(&str, &str)]) -> Secret {
        let owner = OwnerReference {
            uid: "me".into(),
            controller: Some(true),
            ..Default::default()
        };
        desired(
            "ns",
            "creds",
            owner,
            data.iter().map(|k| ((*k).to_owned(), "c".to_owned())).collect(),
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn the_restore_patch_replaces_data_whole_and_keeps_foreign_metadata() {
        let ours = ours(&["config"], &[(labels::SPEC_HASH, "h2")]);
        let live_labels = BTreeMap::from([("team".to_owned(), "data".to_owned())]);
        let live_annotations = BTreeMap::from([
            (labels::SPEC_HASH.to_owned(), "h1".to_owned()),
            (labels::SUPERSEDED_BY.to_owned(), "other".to_owned()),
            (labels::REVOKED.to_owned(), "NamespaceNotAllowed".to_owned()),
            (labels::DATA_KEYS.to_owned(), "credential_process.a.1.json".to_owned()),
            ("note".to_owned(), "kept".to_owned()),
        ]);
        let patch = serde_json::to_value(restore_patch("u1", "42", &live_labels, &live_annotations, &ours)).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                { "op": "test", "path": "/metadata/uid", "value": "u1" },
                { "op": "replace", "path": "/metadata/resourceVersion", "value": "42" },
                { "op": "replace", "path": "/metadata/labels", "value": {
                    "team": "data", labels::MANAGED_BY: labels::MANAGED_BY_VALUE } },
                { "op": "replace", "path": "/metadata/annotations", "value": {
                    labels::SPEC_HASH: "h2", "note": "kept" } },
                { "op": "replace", "path": "/data", "value": { "config": "Yw==" } },
            ])
        );
    }

    #[test]
    fn after_an_apply_only_what_the_secret_no_longer_holds_is_removed() {
        let config = crate::output::render::CONFIG;
        let credentials = crate::output::render::CREDENTIALS;
        let live = BTreeMap::from([
            (labels::SUPERSEDED_BY.to_owned(), "other".to_owned()),
            (labels::DATA_KEYS.to_owned(), "credential_process.a.1.json".to_owned()),
        ]);
        // Nothing marked, every key still written: no second request.
        assert_eq!(tidy_patch("u1", &BTreeMap::new(), &ours(&[config], &[]), false), None);
        // Without `prune` the data stays; the marks from merge patches go all the same.
        let p = tidy_patch("u1", &live, &ours(&[config], &[]), false).unwrap();
        assert_eq!(p["metadata"]["uid"], "u1");
        assert_eq!(
            p["metadata"]["annotations"],
            serde_json::json!({ labels::SUPERSEDED_BY: null, labels::DATA_KEYS: null })
        );
        assert_eq!(p["data"], serde_json::json!({}));
        // With `prune`, every key the Secret may hold and this write lacks goes.
        let p = tidy_patch("u1", &live, &ours(&[config], &[(labels::DATA_KEYS, "x")]), true).unwrap();
        assert_eq!(
            p["metadata"]["annotations"],
            serde_json::json!({ labels::SUPERSEDED_BY: null })
        );
        assert!(p["data"].get(config).is_none());
        for k in [credentials, "credential_process.a.1.json"] {
            assert!(p["data"].get(k).is_some_and(Value::is_null), "{k}");
        }
    }

    #[test]
    fn the_supersede_patch_empties_and_marks() {
        let keys = labels::data_keys(&BTreeMap::from([(
            labels::DATA_KEYS.to_owned(),
            "credential_process.a.1.json".to_owned(),
        )]));
        let p = supersede_patch("u1", "new-name", &keys);
        assert!(p["data"].get("credential_process.a.1.json").is_some_and(Value::is_null));
        assert_eq!(p["metadata"]["uid"], "u1");
        assert_eq!(p["metadata"]["annotations"][labels::SUPERSEDED_BY], "new-name");
        for k in labels::RENEWAL_ANNOTATIONS {
            assert!(p["metadata"]["annotations"][k].is_null() && p["metadata"]["annotations"].get(k).is_some());
        }
        for k in crate::output::render::ALL_KEYS {
            assert!(p["data"].get(k).is_some_and(Value::is_null), "{k}");
        }
    }

    #[test]
    fn the_revoke_patch_empties_and_says_why() {
        let p = revoke_patch("u", "NamespaceNotAllowed", &labels::data_keys(&BTreeMap::new()));
        assert_eq!(p["metadata"]["annotations"][labels::REVOKED], "NamespaceNotAllowed");
        assert!(p["data"].get("credential_process.json").is_some_and(Value::is_null));
    }
}
