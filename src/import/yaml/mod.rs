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
//!
//! Here the file and its `auth:` block; `node.rs` the tagged node the parser gives,
//! `to_json.rs` the conversion that leaves functions out, `path.rs` how notes name a key.

mod node;
mod path;
mod to_json;

use serde_json::Value;

use super::ImportError;
use crate::util::yaml::{Schema, YamlError};
use node::{Node, NodeValue, scalar_key};
pub(crate) use path::{KeyPath, Segment, display_path};
use to_json::Converter;

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
    let documents: Vec<Node> = crate::util::yaml::documents(source, text, Schema::Atmos).map_err(|e| match e {
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
    let documents: Vec<Node> =
        crate::util::yaml::documents("-", text, Schema::Kubernetes).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        collect_functions(&document, &mut Vec::new(), &mut |path, function| {
            found.push((index, display_path(path), function));
        });
    }
    Ok(found)
}

fn collect_functions(node: &Node, path: &mut KeyPath, found: &mut dyn FnMut(&KeyPath, String)) {
    if let Some(tag) = node.atmos_tag() {
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

/// `text` read as a file named `test.yaml`, for the tests here and in the submodules.
#[cfg(test)]
fn parse(text: &str) -> ParsedFile {
    parse_file("test.yaml", text).unwrap()
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

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
}
