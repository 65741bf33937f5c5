//! The size limits of the CRD schemas (`maxLength`, `maxItems`, `maxProperties`, and the CEL
//! rule on name lengths), checked offline as the API server checks them, so that `validate`
//! refuses what `kubectl apply` would. Read from the schema the binary generates, so the two
//! cannot drift apart.

use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::api::limits::MAX_NAME_LEN;
use crate::api::{AuthProfile, ClusterAuthProfile, Identity};

/// Every limit an AuthProfile's `spec` breaks, as `spec.<path>: <what>, more than <limit>`.
pub fn profile(spec: &Value) -> Vec<String> {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    check(SCHEMA.get_or_init(spec_schema::<AuthProfile>), spec)
}

/// Every limit a ClusterAuthProfile's `spec` breaks (the `auth:` block and the selection).
pub fn cluster_profile(spec: &Value) -> Vec<String> {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    check(SCHEMA.get_or_init(spec_schema::<ClusterAuthProfile>), spec)
}

/// Every limit an Identity's `spec` breaks.
pub fn identity(spec: &Value) -> Vec<String> {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    check(SCHEMA.get_or_init(spec_schema::<Identity>), spec)
}

fn spec_schema<K: CustomResourceExt>() -> Value {
    let crd = serde_json::to_value(K::crd()).unwrap_or(Value::Null);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

fn check(schema: &Value, spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, spec, &mut "spec".to_owned(), &mut out);
    out
}

fn walk(schema: &Value, value: &Value, path: &mut String, out: &mut Vec<String>) {
    let limit = |key: &str| schema.get(key).and_then(Value::as_u64).map(|n| n as usize);
    match value {
        Value::String(s) => {
            // The API server counts characters, not bytes.
            let len = s.chars().count();
            if let Some(max) = limit("maxLength").filter(|max| len > *max) {
                out.push(format!("{path}: {len} characters, more than {max}"));
            }
        }
        Value::Array(items) => {
            if let Some(max) = limit("maxItems").filter(|max| items.len() > *max) {
                out.push(format!("{path}: {} items, more than {max}", items.len()));
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(&schema["items"], item, path, out);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            if let Some(max) = limit("maxProperties").filter(|max| map.len() > *max) {
                out.push(format!("{path}: {} entries, more than {max}", map.len()));
            }
            // The name-length rule (`limits::names_at_most_253`); `credentials` has another.
            let names_rule = schema["x-kubernetes-validations"].as_array().is_some_and(|rules| {
                rules
                    .iter()
                    .any(|r| r["rule"].as_str().is_some_and(|r| r.contains("size(name)")))
            });
            for (key, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                let name_len = key.chars().count();
                if names_rule && schema.get("additionalProperties").is_some() && name_len > MAX_NAME_LEN as usize {
                    out.push(format!(
                        "{path}: the name is {name_len} characters, more than {MAX_NAME_LEN}"
                    ));
                }
                let sub = schema["properties"]
                    .get(key)
                    .or_else(|| schema.get("additionalProperties"))
                    .unwrap_or(&Value::Null);
                walk(sub, item, path, out);
                // A free-form map's known keys carry their lengths in `allOf` (api::free_form).
                for known in schema["allOf"].as_array().into_iter().flatten() {
                    if let Some(sub) = known["properties"].get(key) {
                        walk(sub, item, path, out);
                    }
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn limits_are_read_from_the_generated_schema() {
        let env: Vec<Value> = (0..65).map(|i| json!({"key": format!("K{i}"), "value": "v"})).collect();
        let mut identities = serde_json::Map::new();
        identities.insert("a".into(), json!({"kind": "k".repeat(257), "env": env}));
        identities.insert(
            "n".repeat(254),
            json!({"kind": "aws/assume-role", "tags": ["x".repeat(300)]}),
        );
        let spec = json!({"providers": {}, "identities": identities});
        let found = profile(&spec);
        assert_eq!(
            found,
            vec![
                "spec.identities.a.env: 65 items, more than 64".to_owned(),
                "spec.identities.a.kind: 257 characters, more than 256".to_owned(),
                format!(
                    "spec.identities.{}: the name is 254 characters, more than 253",
                    "n".repeat(254)
                ),
                format!(
                    "spec.identities.{}.tags[0]: 300 characters, more than 256",
                    "n".repeat(254)
                ),
            ]
        );
        let spec = json!({"profile": "p", "secret": {"formats": vec!["env"; 9]}, "refreshBefore": "1h"});
        assert_eq!(
            identity(&spec),
            vec!["spec.secret.formats: 9 items, more than 8".to_owned()]
        );
        // Free-form maps: depth and known keys' lengths (src/api/free_form.rs).
        let spec = json!({"identities": {"a": {"kind": "aws/assume-role",
            "principal": {"assume_role": "r".repeat(2049), "x": {"y": {"z": 1}}}}}});
        assert_eq!(
            profile(&spec),
            vec![
                "spec.identities.a.principal.assume_role: 2049 characters, more than 2048".to_owned(),
                "spec.identities.a.principal.x.y: 1 entries, more than 0".to_owned(),
            ]
        );
        // Unicode counts as characters, as in the API server.
        assert!(identity(&json!({"profile": "ä".repeat(253)})).is_empty());
    }
}
