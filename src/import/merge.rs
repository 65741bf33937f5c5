//! Merging config files left to right the way Atmos does (Viper's `MergeConfig`, then
//! Atmos's `!unset`/`!append` directives).
//!
//! This is not [`crate::resolve::deep_merge`] (the controller's rule for an Identity's
//! overrides): Viper differs on two edges that matter for fidelity. A later value that is not
//! a map never replaces a map (Viper logs an error and keeps the map), and a later `null`
//! does replace a scalar or a list (a profile writing `region: ~` clears the region).

use std::collections::BTreeMap;

use serde_json::Value;

use super::yaml::{Directive, KeyPath, ParsedFile, Segment, display_path};

/// The merged `auth:` block and what the merge had to say.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    /// `None` when no file has an `auth:` block.
    pub auth: Option<Value>,
    /// `(path, message)` notes.
    pub notes: Vec<(String, String)>,
    /// For each identity whose `default` some file set (by Atmos's lower-cased name): the
    /// files that set it, in order, with the value each set. Two defaults are reported with
    /// where each came from.
    pub default_sources: BTreeMap<String, Vec<(String, Value)>>,
}

/// Merges `(source, parsed file)` pairs left to right.
pub(crate) fn merge_files(files: Vec<(String, ParsedFile)>) -> Merged {
    let mut merged = Merged::default();
    for (source, file) in files {
        for (path, message) in file.notes {
            merged.notes.push((format!("{source}: {path}"), message));
        }
        if let Some(Value::Object(identities)) = file.auth.as_ref().and_then(|a| a.get("identities")) {
            for (name, def) in identities {
                if let Some(default) = def.get("default") {
                    merged
                        .default_sources
                        .entry(name.to_lowercase())
                        .or_default()
                        .push((source.clone(), default.clone()));
                }
            }
        }
        let mut overlay = file.auth;
        for directive in &file.directives {
            if let (Directive::Append(path), Some(overlay)) = (directive, overlay.as_mut()) {
                append_earlier(merged.auth.as_ref(), overlay, path);
            }
        }
        match (&mut merged.auth, overlay) {
            (_, None) => {}
            (None, Some(overlay)) => merged.auth = Some(overlay),
            (Some(base), Some(overlay)) => {
                let mut path = vec![Segment::Key("auth".to_owned())];
                viper_merge(base, overlay, &mut path, &source, &mut merged.notes);
            }
        }
        for directive in &file.directives {
            if let Directive::Unset(path) = directive {
                unset(&mut merged.auth, path);
            }
        }
    }
    merged
}

/// Viper's `mergeMaps`: maps merge key by key; a map below is kept when the value above is
/// not a map; anything else is replaced, `null` included.
///
/// Viper lower-cases keys, so provider and identity names that differ only in case are one
/// entry to Atmos: they merge here too, under the later file's spelling (the one Atmos shows,
/// its case map keeping the last file's).
fn viper_merge(base: &mut Value, overlay: Value, path: &mut KeyPath, source: &str, notes: &mut Vec<(String, String)>) {
    let names = is_name_map(path);
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                if names
                    && !base.contains_key(&key)
                    && let Some(earlier) = base.keys().find(|k| k.to_lowercase() == key.to_lowercase()).cloned()
                    && let Some(moved) = base.remove(&earlier)
                {
                    base.insert(key.clone(), moved);
                }
                match base.get_mut(&key) {
                    Some(below) => {
                        path.push(Segment::Key(key));
                        viper_merge(below, value, path, source, notes);
                        path.pop();
                    }
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Object(_), Value::Null) => {} // an empty key (`identities:`) adds nothing
        (Value::Object(_), other) => notes.push((
            format!("{source}: {}", display_path(path)),
            format!(
                "{} over the map set by earlier files: Atmos keeps the map (Viper does not replace a map \
                 with a value that is not one), and so does this import",
                kind_of(&other)
            ),
        )),
        (base, overlay) => *base = overlay,
    }
}

/// `auth.providers` or `auth.identities`: maps of names.
fn is_name_map(path: &KeyPath) -> bool {
    matches!(path.as_slice(), [Segment::Key(auth), Segment::Key(section)]
        if auth == "auth" && (section == "providers" || section == "identities"))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// `!append`: puts the earlier list (at the same path) in front of the overlay's list.
fn append_earlier(base: Option<&Value>, overlay: &mut Value, path: &KeyPath) {
    // Paths start at the document root; both values are the `auth` block.
    let Some(rest) = path.strip_prefix(&[Segment::Key("auth".to_owned())][..]) else {
        return;
    };
    let earlier = base.and_then(|b| get(b, rest)).and_then(Value::as_array).cloned();
    if let (Some(mut earlier), Some(Value::Array(list))) = (earlier, get_mut(overlay, rest)) {
        earlier.append(list);
        *list = earlier;
    }
}

/// `!unset`: removes the key at `path` (from the document root) from the merged block.
fn unset(auth: &mut Option<Value>, path: &KeyPath) {
    match path.as_slice() {
        [Segment::Key(k)] if k == "auth" => *auth = None,
        [Segment::Key(k), rest @ .., Segment::Key(last)] if k == "auth" => {
            if let Some(Value::Object(parent)) = auth.as_mut().and_then(|a| get_mut(a, rest)) {
                parent.remove(last);
            }
        }
        _ => {}
    }
}

fn get<'a>(value: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, segment| match segment {
        Segment::Key(k) => v.get(k),
        Segment::Index(i) => v.get(i),
    })
}

fn get_mut<'a>(value: &'a mut Value, path: &[Segment]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, segment| match segment {
        Segment::Key(k) => v.get_mut(k),
        Segment::Index(i) => v.get_mut(i),
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::import::yaml::parse_file;

    fn merge(files: &[(&str, &str)]) -> Merged {
        merge_files(
            files
                .iter()
                .map(|(name, text)| ((*name).to_owned(), parse_file(name, text).unwrap()))
                .collect(),
        )
    }

    #[test]
    fn maps_merge_lists_and_scalars_replace() {
        let m = merge(&[
            (
                "atmos.yaml",
                "auth:\n  providers:\n    sso: {kind: aws/iam-identity-center, region: us-east-1, start_url: https://x}\n  \
                 identities:\n    a: {kind: aws/assume-role, env: [{key: A, value: '1'}], tags: [x, y]}\n",
            ),
            (
                "profiles/ci/atmos.yaml",
                "auth:\n  providers:\n    sso: {kind: github/oidc, spec: {audience: sts.amazonaws.com}}\n  \
                 identities:\n    a: {tags: [z]}\n    b: {kind: aws/assume-role}\n",
            ),
        ]);
        assert_eq!(
            m.auth,
            Some(json!({
                "providers": {"sso": {"kind": "github/oidc", "region": "us-east-1", "start_url": "https://x",
                                      "spec": {"audience": "sts.amazonaws.com"}}},
                "identities": {
                    "a": {"kind": "aws/assume-role", "env": [{"key": "A", "value": "1"}], "tags": ["z"]},
                    "b": {"kind": "aws/assume-role"}
                }
            }))
        );
        assert_eq!(m.notes, vec![]);
    }

    /// Viper lower-cases keys: a profile's `Acme/Admin` is the base's `acme/admin` to Atmos.
    #[test]
    fn names_that_differ_only_in_case_merge_under_the_later_spelling() {
        let m = merge(&[
            (
                "atmos.yaml",
                "auth:\n  providers:\n    GH: {kind: github/oidc}\n  identities:\n    acme/admin: {kind: aws/assume-role, \
                 default: true, via: {provider: gh}}\n",
            ),
            (
                "profiles/ci/atmos.yaml",
                "auth:\n  providers:\n    gh: {region: us-east-2}\n  identities:\n    Acme/Admin: {default: false}\n",
            ),
        ]);
        assert_eq!(
            m.auth,
            Some(json!({
                "providers": {"gh": {"kind": "github/oidc", "region": "us-east-2"}},
                "identities": {"Acme/Admin": {"kind": "aws/assume-role", "default": false, "via": {"provider": "gh"}}}
            }))
        );
        assert_eq!(m.default_sources["acme/admin"].len(), 2);
    }

    #[test]
    fn null_replaces_scalars_but_not_maps_and_scalars_never_replace_maps() {
        let m = merge(&[
            (
                "a.yaml",
                "auth:\n  providers:\n    p: {kind: k, region: us-east-1, spec: {audience: x}}\n",
            ),
            (
                "b.yaml",
                "auth:\n  providers:\n    p: {region: ~, spec: flat}\n  identities:\n",
            ),
        ]);
        assert_eq!(
            m.auth,
            Some(
                json!({"providers": {"p": {"kind": "k", "region": null, "spec": {"audience": "x"}}}, "identities": null})
            )
        );
        assert_eq!(
            m.notes,
            vec![(
                "b.yaml: auth.providers.p.spec".to_owned(),
                "a string over the map set by earlier files: Atmos keeps the map (Viper does not replace a map \
                 with a value that is not one), and so does this import"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn unset_and_append() {
        let m = merge(&[
            (
                "a.yaml",
                "auth:\n  identities:\n    a: {kind: k, tags: [x]}\n    b: {kind: k}\n  logs: {level: Debug}\n",
            ),
            (
                "b.yaml",
                "auth:\n  identities:\n    a: {tags: !append [y]}\n    b: !unset\n  logs: !unset\n",
            ),
        ]);
        assert_eq!(
            m.auth,
            Some(json!({"identities": {"a": {"kind": "k", "tags": ["x", "y"]}}}))
        );
        let m = merge(&[("a.yaml", "auth: {identities: {}}\n"), ("b.yaml", "auth: !unset\n")]);
        assert_eq!(m.auth, None);
    }

    #[test]
    fn defaults_remember_their_files() {
        let m = merge(&[
            ("atmos.yaml", "auth:\n  identities:\n    a: {kind: k, default: true}\n"),
            (
                "profiles/ci/atmos.yaml",
                "auth:\n  identities:\n    b: {kind: k, default: true}\n",
            ),
        ]);
        assert_eq!(
            m.default_sources,
            BTreeMap::from([
                ("a".to_owned(), vec![("atmos.yaml".to_owned(), json!(true))]),
                ("b".to_owned(), vec![("profiles/ci/atmos.yaml".to_owned(), json!(true))]),
            ])
        );
    }

    #[test]
    fn notes_name_their_file() {
        let m = merge(&[("x.yaml", "auth:\n  realm: !env REALM\n")]);
        assert_eq!(m.notes.len(), 1);
        assert!(m.notes[0].0.starts_with("x.yaml: auth.realm"), "{:?}", m.notes);
        assert_eq!(m.auth, Some(json!({})));
    }
}
