//! Schemas of Atmos's free-form maps (`principal`, a provider's `spec`, an identity's `spec`
//! and `credentials`, `keyring.spec`), bounded in depth, keys, items and length.
//!
//! Why: the API server accepts JSON nested thousands of levels deep, but kube-client decodes
//! a LIST with serde_json, which stops at 128 levels. One AuthProfile or Identity nested
//! deeper in an unbounded map would make every LIST of its kind fail, so the controller
//! would never sync and no Identity in any namespace would be renewed.
//!
//! The shape: a map of at most [`MAX_FREE_FORM_KEYS`] keys whose values are scalars, lists of
//! scalars, or maps of scalars and lists of scalars: three levels below the key, each bounded.
//! Real Atmos values are scalars and small maps (`principal.account: {name, id}`).
//!
//! A structural schema cannot name "any scalar", so the value nodes are untyped
//! (`x-kubernetes-preserve-unknown-fields`) and bounded by value validations that apply per
//! JSON type: `maxProperties: 0` and `maxItems: 0` leave only scalars, `maxLength` bounds
//! strings.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::limits::{MAX_LIST_ITEMS, MAX_VALUE_LEN};

/// Keys of a free-form map, and of a map inside one. Atmos's principals and specs have a few.
pub const MAX_FREE_FORM_KEYS: u32 = 32;

/// A scalar: a string of at most [`MAX_VALUE_LEN`] bytes, a number, a boolean or null.
fn scalar() -> Value {
    json!({
        "x-kubernetes-preserve-unknown-fields": true,
        "maxProperties": 0,
        "maxItems": 0,
        "maxLength": MAX_VALUE_LEN,
    })
}

/// A scalar or a list of at most [`MAX_LIST_ITEMS`] scalars.
fn scalar_or_list() -> Value {
    json!({
        "x-kubernetes-preserve-unknown-fields": true,
        "maxProperties": 0,
        "maxItems": MAX_LIST_ITEMS,
        "maxLength": MAX_VALUE_LEN,
        "items": scalar(),
    })
}

/// A value of a free-form map: a scalar, a list of scalars, or a map of scalars and lists of
/// scalars.
fn value() -> Value {
    json!({
        "x-kubernetes-preserve-unknown-fields": true,
        "maxProperties": MAX_FREE_FORM_KEYS,
        "maxItems": MAX_LIST_ITEMS,
        "maxLength": MAX_VALUE_LEN,
        "items": scalar(),
        "additionalProperties": scalar_or_list(),
    })
}

/// A free-form map: at most [`MAX_FREE_FORM_KEYS`] keys, bounded values.
pub(crate) fn map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    map_with_known(&[])
}

/// A free-form map with `known` keys: each known key's value validations (typically a
/// `maxLength`) apply on top of the map's (through `allOf`, as a structural schema allows
/// no `properties` beside `additionalProperties`). Their types are not in the schema:
/// [`take`] leaves a value of the wrong type among the other keys.
pub(crate) fn map_with_known(known: &[(&str, Value)]) -> schemars::Schema {
    let mut schema = json!({
        "type": "object",
        "maxProperties": MAX_FREE_FORM_KEYS,
        "additionalProperties": value(),
    });
    if !known.is_empty() {
        let properties: Map<String, Value> = known.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        schema["allOf"] = json!([{ "properties": properties }]);
    }
    match schema {
        Value::Object(map) => schemars::Schema::from(map),
        _ => schemars::Schema::default(),
    }
}

/// Takes `key` out of `map` as a `T` (`null` as absent); leaves it there (and returns `None`)
/// when it is of another type, so a mistyped known key is kept as written and reported as an unknown
/// key instead of failing the decode of every object in a LIST.
pub(crate) fn take<T: DeserializeOwned>(map: &mut std::collections::BTreeMap<String, Value>, key: &str) -> Option<T> {
    if map.get(key)?.is_null() {
        map.remove(key);
        return None;
    }
    let typed = T::deserialize(map.get(key)?).ok()?;
    map.remove(key);
    Some(typed)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_mistyped_key_stays_among_the_others() {
        let mut map: BTreeMap<String, Value> = serde_json::from_value(json!({"a": "x", "b": 5, "c": null})).unwrap();
        assert_eq!(take::<String>(&mut map, "a"), Some("x".to_owned()));
        assert_eq!(take::<String>(&mut map, "b"), None);
        assert_eq!(take::<String>(&mut map, "c"), None);
        assert_eq!(take::<String>(&mut map, "d"), None);
        assert_eq!(
            map,
            serde_json::from_value::<BTreeMap<String, Value>>(json!({"b": 5})).unwrap()
        );
    }

    #[test]
    fn a_principal_with_mistyped_keys_decodes_and_serializes_as_written() {
        let written = json!({"assume_role": 5, "region": "us-east-2", "account": "x", "x": {"y": [1]}});
        let p: crate::api::Principal = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(
            (p.assume_role.as_deref(), p.region.as_deref()),
            (None, Some("us-east-2"))
        );
        assert_eq!(p.extra.keys().collect::<Vec<_>>(), ["account", "assume_role", "x"]);
        assert_eq!(serde_json::to_value(&p).unwrap(), written);
    }

    #[test]
    fn values_are_three_levels_deep_at_most() {
        let schema = map_with_known(&[]);
        let value = &schema.as_value()["additionalProperties"];
        let nested = &value["additionalProperties"];
        assert_eq!(nested["maxProperties"], 0);
        assert_eq!(nested["items"]["maxItems"], 0);
        assert_eq!(value["items"]["maxProperties"], 0);
    }
}
