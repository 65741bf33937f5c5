//! Atmos's deep merge: maps merge key by key, recursively; lists replace; scalars: the
//! later value wins. Done over `serde_json::Value` so it applies to any of the API types.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A merge whose inputs could not be turned into JSON or whose result no longer fits the
/// target type (for example an override that sets a field to the wrong type).
#[derive(Debug, thiserror::Error)]
#[error("cannot merge: {0}")]
pub struct MergeError(#[from] serde_json::Error);

/// Merges `overlay` into `base` in place, Atmos's way:
/// - two maps merge key by key, recursively;
/// - a list replaces the list (or anything) below it, it is never appended;
/// - any other value replaces the value below it;
/// - `null` in the overlay changes nothing (an unset optional field never clears one
///   below it, as with Atmos's merge of YAML where an absent key keeps the base value).
pub fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(below) => deep_merge(below, value),
                    None => {
                        if !value.is_null() {
                            base.insert(key, value);
                        }
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// `overlay` deep-merged over `base`, through JSON: serialize both, [`deep_merge`],
/// deserialize the result as `T`.
pub fn merge_over<T, O>(base: &T, overlay: &O) -> Result<T, MergeError>
where
    T: Serialize + DeserializeOwned,
    O: Serialize,
{
    let mut merged = serde_json::to_value(base)?;
    deep_merge(&mut merged, serde_json::to_value(overlay)?);
    Ok(serde_json::from_value(merged)?)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::api::{IdentityDef, IdentityOverrides, Principal, Session, Via};

    fn merged(mut base: Value, overlay: Value) -> Value {
        deep_merge(&mut base, overlay);
        base
    }

    #[test]
    fn maps_merge_key_by_key_recursively() {
        assert_eq!(
            merged(
                json!({"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": 1}),
                json!({"a": {"y": {"q": 3, "r": 4}, "z": 5}, "c": 2}),
            ),
            json!({"a": {"x": 1, "y": {"p": 1, "q": 3, "r": 4}, "z": 5}, "b": 1, "c": 2})
        );
    }

    #[test]
    fn lists_replace() {
        assert_eq!(
            merged(json!({"l": [1, 2, 3], "m": [{"k": 1}]}), json!({"l": [4], "m": []})),
            json!({"l": [4], "m": []})
        );
    }

    #[test]
    fn scalars_later_wins_and_types_may_change() {
        assert_eq!(
            merged(
                json!({"s": "a", "n": 1, "b": true, "o": {"k": 1}}),
                json!({"s": "b", "n": 2, "b": false, "o": "flat"}),
            ),
            json!({"s": "b", "n": 2, "b": false, "o": "flat"})
        );
        assert_eq!(merged(json!("x"), json!({"k": 1})), json!({"k": 1}));
    }

    #[test]
    fn null_changes_nothing() {
        assert_eq!(
            merged(json!({"a": 1, "b": {"c": 2}}), json!({"a": null, "b": null, "d": null})),
            json!({"a": 1, "b": {"c": 2}})
        );
        assert_eq!(merged(json!({"a": 1}), Value::Null), json!({"a": 1}));
    }

    #[test]
    fn identity_overrides_win_field_by_field() {
        let def = IdentityDef {
            kind: "aws/assume-role".into(),
            default: Some(true),
            via: Some(Via {
                provider: Some("cluster-oidc".into()),
                identity: None,
            }),
            principal: Some(Principal {
                assume_role: Some("arn:aws:iam::123456789012:role/admin".into()),
                duration: Some("1h".into()),
                region: Some("us-east-2".into()),
                ..Principal::default()
            }),
            env: Some(vec![crate::api::EnvVar {
                key: "A".into(),
                value: "1".into(),
            }]),
            ..IdentityDef::default()
        };
        let overrides = IdentityOverrides {
            principal: Some(Box::new(Principal {
                session_name: Some("runner-network".into()),
                duration: Some("30m".into()),
                ..Principal::default()
            })),
            session: Some(Session {
                duration: Some("2h".into()),
            }),
            env: Some(vec![crate::api::EnvVar {
                key: "B".into(),
                value: "2".into(),
            }]),
            ..IdentityOverrides::default()
        };
        let out = merge_over(&def, &overrides).unwrap();
        assert_eq!(
            out,
            IdentityDef {
                kind: "aws/assume-role".into(),
                default: Some(true),
                via: def.via.clone(),
                principal: Some(Principal {
                    assume_role: Some("arn:aws:iam::123456789012:role/admin".into()),
                    session_name: Some("runner-network".into()),
                    duration: Some("30m".into()),
                    region: Some("us-east-2".into()),
                    ..Principal::default()
                }),
                session: Some(Session {
                    duration: Some("2h".into()),
                }),
                env: Some(vec![crate::api::EnvVar {
                    key: "B".into(),
                    value: "2".into(),
                }]),
                ..IdentityDef::default()
            }
        );
    }

    #[test]
    fn empty_overrides_change_nothing() {
        let def = IdentityDef {
            kind: "aws/assume-role".into(),
            ..IdentityDef::default()
        };
        assert_eq!(merge_over(&def, &IdentityOverrides::default()).unwrap(), def);
    }

    #[test]
    fn via_merges_key_by_key() {
        // Atmos's rule applied to `via`: an override cannot switch provider -> identity,
        // both end up set (and the resolver reports it).
        let def = IdentityDef {
            kind: "aws/assume-role".into(),
            via: Some(Via {
                provider: Some("p".into()),
                identity: None,
            }),
            ..IdentityDef::default()
        };
        let overrides = IdentityOverrides {
            via: Some(Via {
                provider: None,
                identity: Some("acme/admin".into()),
            }),
            ..IdentityOverrides::default()
        };
        let out = merge_over(&def, &overrides).unwrap();
        assert_eq!(
            out.via,
            Some(Via {
                provider: Some("p".into()),
                identity: Some("acme/admin".into()),
            })
        );
    }
}
