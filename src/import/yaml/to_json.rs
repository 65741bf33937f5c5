//! A tagged YAML node to JSON, the way an import must: Atmos functions left out and
//! reported (never evaluated), `!unset` and `!append` recorded as merge directives,
//! `!literal` kept as written.

use serde_json::{Map, Number, Value};

use super::Directive;
use super::node::{Node, NodeValue, scalar_key};
use super::path::{KeyPath, Segment, display_path};

#[derive(Default)]
pub(super) struct Converter {
    pub(super) directives: Vec<Directive>,
    pub(super) notes: Vec<(String, String)>,
    /// Number of Atmos functions left out so far (a list item that contained one is left out
    /// whole).
    skipped: usize,
}

impl Converter {
    /// The node as JSON, or `None` when it is left out (an Atmos function, or `!unset`).
    pub(super) fn convert(&mut self, node: Node, path: &mut KeyPath) -> Option<Value> {
        if let Some(tag) = node.atmos_tag() {
            match tag {
                "!unset" => {
                    self.directives.push(Directive::Unset(path.clone()));
                    return None;
                }
                "!append" => {
                    if matches!(node.value, NodeValue::Seq(_)) {
                        self.directives.push(Directive::Append(path.clone()));
                    } else {
                        self.notes.push((
                            display_path(path),
                            "!append applies to a list; the tag is ignored and the value replaces the \
                             earlier one"
                                .to_owned(),
                        ));
                    }
                }
                "!literal" => {}
                other => {
                    self.skipped += 1;
                    self.notes.push((
                        display_path(path),
                        format!(
                            "{other} {} is an Atmos YAML function; it is not evaluated here (nothing is run, \
                             read or expanded), so the key is left out: write the value itself",
                            node.value.summary()
                        ),
                    ));
                    return None;
                }
            }
        }
        Some(match node.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(b),
            NodeValue::Int(i) => Value::Number(i.into()),
            NodeValue::UInt(u) => Value::Number(u.into()),
            NodeValue::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            NodeValue::Str(s) => Value::String(s),
            NodeValue::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    path.push(Segment::Index(i));
                    let before = self.skipped;
                    let converted = self.convert(item, path);
                    // A list item is all or nothing: an env entry without its value, say,
                    // would mean something else.
                    if self.skipped != before {
                        self.notes.push((
                            display_path(path),
                            "the list item is left out whole, because it holds an Atmos YAML function".to_owned(),
                        ));
                    } else if let Some(value) = converted {
                        out.push(value);
                    }
                    path.pop();
                }
                Value::Array(out)
            }
            NodeValue::Map(entries) => {
                let mut out = Map::new();
                for (key, value) in entries {
                    let Some(key_text) = scalar_key(&key) else {
                        self.notes.push((
                            display_path(path),
                            format!(
                                "a key that is not a plain scalar ({}) is left out",
                                key.tag.as_deref().unwrap_or("a list or mapping")
                            ),
                        ));
                        continue;
                    };
                    path.push(Segment::Key(key_text.clone()));
                    if let Some(value) = self.convert(value, path) {
                        out.insert(key_text, value);
                    }
                    path.pop();
                }
                Value::Object(out)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::super::parse;
    use super::super::path::key;
    use super::*;

    #[test]
    fn functions_are_left_out_and_reported_never_run() {
        let p = parse(
            "auth:\n  identities:\n    a:\n      principal:\n        assume_role: !env ROLE_ARN\n        \
             session_name: !exec \"touch /tmp/atmos-import-must-not-run\"\n        region: us-east-2\n      \
             spec: !include other.yaml\n",
        );
        assert_eq!(
            p.auth,
            Some(json!({"identities": {"a": {"principal": {"region": "us-east-2"}}}}))
        );
        assert_eq!(
            p.notes,
            vec![
                (
                    "auth.identities.a.principal.assume_role".to_owned(),
                    "!env ROLE_ARN is an Atmos YAML function; it is not evaluated here (nothing is run, read or \
                     expanded), so the key is left out: write the value itself"
                        .to_owned()
                ),
                (
                    "auth.identities.a.principal.session_name".to_owned(),
                    "!exec touch /tmp/atmos-import-must-not-run is an Atmos YAML function; it is not evaluated \
                     here (nothing is run, read or expanded), so the key is left out: write the value itself"
                        .to_owned()
                ),
                (
                    "auth.identities.a.spec".to_owned(),
                    "!include other.yaml is an Atmos YAML function; it is not evaluated here (nothing is run, \
                     read or expanded), so the key is left out: write the value itself"
                        .to_owned()
                ),
            ]
        );
        assert!(!std::path::Path::new("/tmp/atmos-import-must-not-run").exists());
    }

    #[test]
    fn a_list_item_with_a_function_is_left_out_whole() {
        let p = parse(
            "auth:\n  identities:\n    a:\n      env:\n        - {key: A, value: '1'}\n        - {key: B, value: !env B}\n",
        );
        assert_eq!(
            p.auth,
            Some(json!({"identities": {"a": {"env": [{"key": "A", "value": "1"}]}}}))
        );
        assert_eq!(p.notes.len(), 2);
        assert_eq!(p.notes[0].0, "auth.identities.a.env[1].value");
        assert_eq!(
            p.notes[1],
            (
                "auth.identities.a.env[1]".to_owned(),
                "the list item is left out whole, because it holds an Atmos YAML function".to_owned()
            )
        );
    }

    #[test]
    fn merge_directives_and_literal() {
        let p = parse(
            "auth:\n  identities:\n    old: !unset\n    a:\n      tags: !append [x]\n      spec: {t: !literal '{{ .x }}'}\n",
        );
        assert_eq!(
            p.auth,
            Some(json!({"identities": {"a": {"tags": ["x"], "spec": {"t": "{{ .x }}"}}}}))
        );
        assert_eq!(
            p.directives,
            vec![
                Directive::Unset(key(&["auth", "identities", "old"])),
                Directive::Append(key(&["auth", "identities", "a", "tags"])),
            ]
        );
        assert_eq!(p.notes, vec![]);
    }
}
