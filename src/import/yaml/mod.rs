//! One Atmos config file, YAML to JSON, keeping what Atmos's own reader keeps and finding
//! what it would evaluate.
//!
//! Atmos reads atmos.yaml with go-yaml v3 through Viper, then evaluates its YAML functions
//! (`!env`, `!exec`, `!include`, `!repo-root`, `!terraform.output`, ...). An import must never
//! run a command, read the environment or follow an include on the user's behalf, and must
//! not silently turn `!env ROLE_ARN` into the string `ROLE_ARN` either (that is what a plain
//! `serde_json::Value` deserialization does: the tag is dropped, the argument kept). So every
//! node is read with its tag ([`serde_saphyr::Tagged`]); a tagged value is left out and
//! reported. Two Atmos tags are merge directives rather than functions and are honoured:
//! `!unset` (remove the key from what earlier files set) and `!append` (add to the earlier
//! list instead of replacing it); `!literal` keeps its value as written, which is exactly its
//! meaning. Anchors, aliases and merge keys (`<<:`) are expanded by the parser.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Tagged;

use super::ImportError;
use crate::yaml::{Schema, YamlError};

/// Tags of the YAML core schema (`!!str`, `!!int`, ...), resolved to this prefix by the
/// parser. They only select a scalar's type, which the parser already applied.
const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// Where a key is, as segments from the document root (`auth`, `identities`, `acme/admin`).
pub(crate) type KeyPath = Vec<Segment>;

/// One step of a [`KeyPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// `auth.identities.acme/admin.env[0]`: Atmos's dotted form, names kept as written (a name
/// may contain `/` and `.`; the resolver prints paths the same way).
pub(crate) fn display_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A merge directive found in a file, applied when the file is merged over earlier ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Directive {
    /// `!unset`: remove the key from the merged result.
    Unset(KeyPath),
    /// `!append`: the list is added after the earlier list at the same key.
    Append(KeyPath),
}

/// What was found in one file.
#[derive(Debug, Default)]
pub(crate) struct ParsedFile {
    /// The `auth:` block, as JSON; `None` when the file has none (or unsets it).
    pub auth: Option<Value>,
    /// `!unset` / `!append`, with paths from the document root.
    pub directives: Vec<Directive>,
    /// Keys left out or not followed, with why.
    pub notes: Vec<(String, String)>,
}

/// Parses one file's text. Only the first YAML document counts, as for Atmos (go-yaml's
/// `Unmarshal` reads one document); only `auth:` is converted, other keys are not Atmos auth
/// and are ignored without a word, except `import:`, which Atmos would follow.
pub(crate) fn parse_file(source: &str, text: &str) -> Result<ParsedFile, ImportError> {
    // Go-yaml v3 semantics (see `Schema::Atmos`); duplicate keys are an error, as in go-yaml
    // v3; merge keys are expanded.
    let documents: Vec<Node> = crate::yaml::documents(source, text, Schema::Atmos).map_err(|e| match e {
        YamlError::Syntax { message, .. } => ImportError::Yaml {
            file: source.to_owned(),
            message,
        },
        other => ImportError::Yaml {
            file: source.to_owned(),
            message: other.to_string().trim_start_matches(&format!("{source}: ")).to_owned(),
        },
    })?;
    let mut parsed = ParsedFile::default();
    let mut documents = documents.into_iter();
    let Some(root) = documents.next() else {
        return Ok(parsed);
    };
    if documents.next().is_some() {
        parsed.notes.push((
            "---".to_owned(),
            "only the first YAML document of the file is read, as Atmos does; the others are ignored".to_owned(),
        ));
    }
    let NodeValue::Map(entries) = root.value else {
        return match root.value {
            NodeValue::Null => Ok(parsed),
            _ => Err(ImportError::Yaml {
                file: source.to_owned(),
                message: "the document is not a mapping of keys (atmos.yaml starts with keys such as auth:)".to_owned(),
            }),
        };
    };
    let mut converter = Converter::default();
    for (key, value) in entries {
        let Some(key) = scalar_key(&key) else { continue };
        match key.as_str() {
            "auth" => {
                let mut path = vec![Segment::Key(key)];
                parsed.auth = converter.convert(value, &mut path);
            }
            "import" => converter.notes.push((
                "import".to_owned(),
                "not followed: import reads the files or URLs it names; pass the files to import as PATH \
                 arguments instead, in the order Atmos merges them"
                    .to_owned(),
            )),
            _ => {}
        }
    }
    parsed.directives = converter.directives;
    parsed.notes.extend(converter.notes);
    Ok(parsed)
}

/// Every Atmos YAML function (a value with a tag outside the YAML core schema) in a
/// multi-document text, as `(document index, path, "tag argument")`, for `validate`: in a
/// manifest nobody evaluates them, and kubectl would apply the bare argument.
pub(crate) fn find_functions(text: &str) -> Result<Vec<(usize, String, String)>, String> {
    let documents: Vec<Node> = crate::yaml::documents("-", text, Schema::Kubernetes).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        collect_functions(&document, &mut Vec::new(), &mut |path, function| {
            found.push((index, display_path(path), function));
        });
    }
    Ok(found)
}

fn collect_functions(node: &Node, path: &mut KeyPath, found: &mut dyn FnMut(&KeyPath, String)) {
    if let Some(tag) = node.tag.as_deref().filter(|t| !t.starts_with(CORE_TAG_PREFIX)) {
        found(path, format!("{tag} {}", node.value.summary()));
        return;
    }
    match &node.value {
        NodeValue::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                collect_functions(item, path, found);
                path.pop();
            }
        }
        NodeValue::Map(entries) => {
            for (key, value) in entries {
                path.push(Segment::Key(scalar_key(key).unwrap_or_else(|| "?".to_owned())));
                collect_functions(value, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

#[derive(Default)]
struct Converter {
    directives: Vec<Directive>,
    notes: Vec<(String, String)>,
    /// Number of Atmos functions left out so far (a list item that contained one is left out
    /// whole).
    skipped: usize,
}

impl Converter {
    /// The node as JSON, or `None` when it is left out (an Atmos function, or `!unset`).
    fn convert(&mut self, node: Node, path: &mut KeyPath) -> Option<Value> {
        if let Some(tag) = node.tag.as_deref().filter(|t| !t.starts_with(CORE_TAG_PREFIX)) {
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

/// A mapping key as text, as go-yaml gives Viper: scalars by their value (`12` is "12").
/// `None` for a tagged key (an Atmos function as a key) or a list/mapping key.
fn scalar_key(key: &Node) -> Option<String> {
    if key.tag.as_deref().is_some_and(|t| !t.starts_with(CORE_TAG_PREFIX)) {
        return None;
    }
    match &key.value {
        NodeValue::Str(s) => Some(s.clone()),
        NodeValue::Int(i) => Some(i.to_string()),
        NodeValue::UInt(u) => Some(u.to_string()),
        NodeValue::Float(f) => Some(f.to_string()),
        NodeValue::Bool(b) => Some(b.to_string()),
        NodeValue::Null => Some("null".to_owned()),
        NodeValue::Seq(_) | NodeValue::Map(_) => None,
    }
}

/// A YAML node with its tag, as the parser saw it.
#[derive(Debug)]
pub(crate) struct Node {
    tag: Option<String>,
    value: NodeValue,
}

#[derive(Debug)]
enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order (serde-saphyr has already rejected duplicates).
    Map(Vec<(Node, Node)>),
}

impl NodeValue {
    /// How a tagged value is quoted in a note: its text, cut short, or its shape.
    fn summary(&self) -> String {
        const MAX: usize = 60;
        let text = match self {
            NodeValue::Null => return "(no argument)".to_owned(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Int(i) => i.to_string(),
            NodeValue::UInt(u) => u.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::Str(s) => s.clone(),
            NodeValue::Seq(_) => return "(a list)".to_owned(),
            NodeValue::Map(_) => return "(a mapping)".to_owned(),
        };
        let one_line = text.trim().replace('\n', " ");
        if one_line.chars().count() > MAX {
            format!("{}...", one_line.chars().take(MAX).collect::<String>())
        } else {
            one_line
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde-saphyr hands `Tagged` each node's resolved tag; any other deserializer gives
        // `None`, which only happens in this module's own use.
        let Tagged(value, tag) = Tagged::<NodeValue>::deserialize(deserializer)?;
        Ok(Node { tag, value })
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_none<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::UInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<NodeValue, E> {
        Ok(NodeValue::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> ParsedFile {
        parse_file("test.yaml", text).unwrap()
    }

    fn key(path: &[&str]) -> KeyPath {
        path.iter().map(|s| Segment::Key((*s).to_owned())).collect()
    }

    #[test]
    fn keeps_only_auth_and_plain_values() {
        let p = parse(
            "base_path: x\ncomponents: {terraform: {base_path: !repo-root}}\nauth:\n  providers:\n    \
             p: {kind: github/oidc, region: us-east-2, n: 12, b: yes, t: true, z: ~, f: 1.5}\n",
        );
        assert_eq!(
            p.auth,
            Some(json!({"providers": {"p": {
                "kind": "github/oidc", "region": "us-east-2", "n": 12, "b": "yes", "t": true, "z": null, "f": 1.5
            }}}))
        );
        // Functions outside auth are not Atmos auth: nothing to say about them.
        assert_eq!(p.notes, vec![]);
    }

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

    #[test]
    fn anchors_aliases_merge_keys_and_block_strings() {
        let p = parse(
            "x-role: &role\n  kind: aws/assume-role\n  via: {provider: gh}\nauth:\n  identities:\n    \
             acme/admin:\n      <<: *role\n      default: true\n    acme.net:\n      <<: *role\n      \
             kind: aws/permission-set\n      spec:\n        note: >\n          folded\n          text\n",
        );
        assert_eq!(
            p.auth,
            Some(json!({"identities": {
                "acme/admin": {"kind": "aws/assume-role", "via": {"provider": "gh"}, "default": true},
                "acme.net": {"kind": "aws/permission-set", "via": {"provider": "gh"}, "spec": {"note": "folded text\n"}}
            }}))
        );
    }

    #[test]
    fn core_tags_select_types_and_keys_are_text() {
        let p = parse("auth:\n  providers:\n    p: {region: !!str 12}\n    7: {kind: x}\n");
        assert_eq!(
            p.auth,
            Some(json!({"providers": {"p": {"region": "12"}, "7": {"kind": "x"}}}))
        );
    }

    #[test]
    fn import_is_reported_and_only_the_first_document_counts() {
        let p = parse("import: [a.yaml]\nauth: {providers: {}}\n---\nauth: {identities: {x: {}}}\n");
        assert_eq!(p.auth, Some(json!({"providers": {}})));
        assert_eq!(p.notes.len(), 2);
        assert_eq!(p.notes[0].0, "---");
        assert_eq!(p.notes[1].0, "import");
    }

    #[test]
    fn syntax_errors_and_duplicates_say_where() {
        let err = parse_file("f.yaml", "auth:\n  providers: [x\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.yaml: invalid YAML: "), "{err}");
        let err = parse_file("f.yaml", "auth:\n  a: 1\n  a: 2\n").unwrap_err().to_string();
        assert!(err.contains("duplicate mapping key: a"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(parse_file("f.yaml", "- a\n").is_err());
        assert!(parse("").auth.is_none());
    }

    #[test]
    fn an_alias_bomb_in_atmos_yaml_stops_with_the_limit() {
        let mut text = String::from("x0: &a0 [lol]\n");
        for l in 1..10 {
            text.push_str(&format!(
                "x{l}: &a{l} [{}]\n",
                vec![format!("*a{}", l - 1); 10].join(", ")
            ));
        }
        text.push_str("auth: {providers: {p: {kind: x}}}\n");
        let err = parse_file("atmos.yaml", &text).unwrap_err().to_string();
        assert!(err.starts_with("atmos.yaml: invalid YAML: line "), "{err}");
        assert!(err.contains("(limit MAX_ALIAS_EXPANSION)"), "{err}");
    }

    #[test]
    fn functions_in_manifests_are_found_per_document() {
        let found = find_functions(
            "kind: AuthProfile\nspec: {identities: {a: {principal: {assume_role: !env ROLE}}}}\n---\n\
             kind: Identity\nspec: {env: [{key: A, value: !exec 'echo x'}], n: !!str 1}\n",
        )
        .unwrap();
        assert_eq!(
            found,
            vec![
                (
                    0,
                    "spec.identities.a.principal.assume_role".to_owned(),
                    "!env ROLE".to_owned()
                ),
                (1, "spec.env[0].value".to_owned(), "!exec echo x".to_owned()),
            ]
        );
    }

    #[test]
    fn paths_display_like_atmos() {
        let mut path = key(&["auth", "identities", "acme/net.x", "env"]);
        path.push(Segment::Index(2));
        path.push(Segment::Key("value".into()));
        assert_eq!(display_path(&path), "auth.identities.acme/net.x.env[2].value");
    }
}
