//! The merged `auth:` block (JSON) to the AuthProfile's spec: every key of Atmos's `auth:`
//! schema is kept as written (the resolver then warns about those with no meaning in a
//! cluster); keys Atmos does not have are left out with a note. Secrets (a provider's
//! `password`, static keys in `credentials`, credential-named `env` entries) are never
//! copied: each is left out with a warning.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::{AuthProfileSpec, IdentityDef, Provider, STATIC_KEY_FIELDS};
use crate::resolve::{Problem, Reason, Warning, is_credential_name};

/// Top-level `auth:` keys besides `providers` and `identities`: Atmos's, kept as written
/// (the resolver reports them as not used in a cluster).
const AUTH_KEYS: &[&str] = &["realm", "logs", "keyring", "console", "integrations"];

/// Provider keys the AuthProfile holds: every key of Atmos's provider but `password`.
const PROVIDER_KEYS: &[&str] = &[
    "kind",
    "start_url",
    "url",
    "region",
    "username",
    "driver",
    "provider_type",
    "download_browser_driver",
    "browser_type",
    "browser_executable_path",
    "auto_provision_identities",
    "session",
    "console",
    "default",
    "spec",
    "tags",
];

/// Provider keys of Atmos never copied, with why (a warning).
const PROVIDER_DROPPED: &[(&str, &str)] = &[(
    "password",
    "a password never goes into a manifest, which anyone who may view the namespace can read (SAML \
     needs a person at a browser; on a workstation Atmos asks for the password when none is set)",
)];

/// Identity keys the AuthProfile holds: every key of Atmos's identity (`credentials` and
/// `env` without their secrets).
const IDENTITY_KEYS: &[&str] = &[
    "kind",
    "default",
    "required",
    "provider",
    "via",
    "principal",
    "credentials",
    "spec",
    "alias",
    "env",
    "session",
    "emulator",
    "tags",
];

/// What the conversion produced.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub spec: AuthProfileSpec,
    /// `(path, message)`: keys left out and why.
    pub notes: Vec<(String, String)>,
    /// Secrets left out (a password, static keys, credential-named `env` entries), with
    /// where such values belong.
    pub warnings: Vec<Warning>,
    /// Values of the wrong shape (a number where Atmos has a string, ...).
    pub problems: Vec<Problem>,
}

/// Converts the merged `auth:` block.
pub(crate) fn to_spec(auth: &Value) -> Converted {
    let mut out = Converted::default();
    let Value::Object(auth) = auth else {
        out.problems
            .push(shape("auth", "a map with providers and identities", auth));
        return out;
    };
    // Block-level keys first, then providers, then identities: the order people read them.
    let mut block = Map::new();
    for (key, value) in auth {
        match key.as_str() {
            "providers" | "identities" => {}
            known if AUTH_KEYS.contains(&known) => {
                block.insert(key.clone(), value.clone());
            }
            other => out.notes.push((
                format!("auth.{other}"),
                "not a key of Atmos's auth: block; left out".to_owned(),
            )),
        }
    }
    if let Some(spec) = typed::<AuthProfileSpec>("auth", block, &mut out) {
        out.spec = spec;
    }
    if let Some(providers) = auth.get("providers") {
        out.spec.providers = entries("providers", providers, &mut out, convert_provider);
    }
    if let Some(identities) = auth.get("identities") {
        out.spec.identities = entries("identities", identities, &mut out, convert_identity);
    }
    out
}

/// `auth.providers` / `auth.identities`: a map of name to definition (null: none).
fn entries<T>(
    section: &str,
    value: &Value,
    out: &mut Converted,
    convert: fn(&str, &Map<String, Value>, &mut Converted) -> Option<T>,
) -> BTreeMap<String, T> {
    let mut result = BTreeMap::new();
    match value {
        Value::Null => {}
        Value::Object(items) => {
            for (name, def) in items {
                let path = format!("auth.{section}.{name}");
                match def {
                    Value::Object(fields) => {
                        if let Some(converted) = convert(&path, fields, out) {
                            result.insert(name.clone(), converted);
                        }
                    }
                    other => out.problems.push(shape(&path, "a map of settings", other)),
                }
            }
        }
        other => out
            .problems
            .push(shape(&format!("auth.{section}"), "a map of name to settings", other)),
    }
    result
}

fn convert_provider(path: &str, fields: &Map<String, Value>, out: &mut Converted) -> Option<Provider> {
    let kept = keep(path, fields, PROVIDER_KEYS, PROVIDER_DROPPED, "provider", out);
    typed(path, kept, out)
}

fn convert_identity(path: &str, fields: &Map<String, Value>, out: &mut Converted) -> Option<IdentityDef> {
    let mut kept = keep(path, fields, IDENTITY_KEYS, &[], "identity", out);
    drop_secrets(path, &mut kept, &mut out.warnings);
    move_legacy_endpoint(path, &mut kept, &mut out.notes);
    typed(path, kept, out)
}

/// Atmos's legacy STS endpoint, `credentials.aws.resolver.url`, becomes `spec.endpoint_url`,
/// which Atmos reads first and means the same (`pkg/auth/cloud/aws/resolver.go`): the
/// resource's `credentials` holds strings only.
fn move_legacy_endpoint(path: &str, fields: &mut Map<String, Value>, notes: &mut Vec<(String, String)>) {
    let Some(Value::Object(credentials)) = fields.get_mut("credentials") else {
        return;
    };
    let Some(Value::String(url)) = credentials
        .get_mut("aws")
        .and_then(|aws| aws.get_mut("resolver"))
        .and_then(|resolver| resolver.as_object_mut())
        .and_then(|resolver| resolver.remove("url"))
    else {
        return;
    };
    // Leave no empty maps behind.
    let empty = |v: Option<&Value>| v.and_then(Value::as_object).is_some_and(Map::is_empty);
    if empty(credentials.get("aws").and_then(|aws| aws.get("resolver")))
        && let Some(Value::Object(aws)) = credentials.get_mut("aws")
    {
        aws.remove("resolver");
    }
    if empty(credentials.get("aws")) {
        credentials.remove("aws");
    }
    if credentials.is_empty() {
        fields.remove("credentials");
    }
    let from = format!("{path}.credentials.aws.resolver.url");
    let spec = fields.entry("spec").or_insert_with(|| Value::Object(Map::new()));
    match spec.as_object_mut() {
        Some(spec) if !spec.contains_key("endpoint_url") && !url.is_empty() => {
            spec.insert("endpoint_url".to_owned(), Value::String(url));
            notes.push((
                from,
                "moved to spec.endpoint_url: Atmos reads this legacy key as the identity's STS endpoint when                  spec.endpoint_url is not set, and the resource's credentials holds strings only"
                    .to_owned(),
            ));
        }
        _ => notes.push((
            from,
            "left out: Atmos reads spec.endpoint_url first, so this legacy key is not used".to_owned(),
        )),
    }
    if spec.as_object().is_some_and(Map::is_empty) {
        fields.remove("spec");
    }
}

/// Leaves out static keys of `credentials` and credential-named `env` entries, each with a
/// warning; the resolver would refuse them, and a manifest must never carry them.
fn drop_secrets(path: &str, fields: &mut Map<String, Value>, warnings: &mut Vec<Warning>) {
    if let Some(Value::Object(credentials)) = fields.get_mut("credentials") {
        for key in STATIC_KEY_FIELDS {
            if credentials.remove(*key).is_some() {
                warnings.push(Warning::new(
                    format!("{path}.credentials.{key}"),
                    "left out: static keys never go into a manifest, which anyone who may view the \
                     namespace can read (Atmos keeps an aws/user's keys in its keyring: atmos auth user \
                     configure)",
                ));
            }
        }
        if credentials.is_empty() {
            fields.remove("credentials");
        }
    }
    if let Some(Value::Array(env)) = fields.get_mut("env") {
        let mut i = 0;
        env.retain(|entry| {
            let name = entry.get("key").and_then(Value::as_str).unwrap_or_default();
            let keep = !is_credential_name(name);
            if !keep {
                warnings.push(Warning::new(
                    format!("{path}.env[{i}]"),
                    format!(
                        "left out: {name} is named like a credential, and a manifest is readable by anyone \
                         who may view the namespace; give the consumer pod such values from a Kubernetes \
                         Secret (envFrom or secretKeyRef)"
                    ),
                ));
            }
            i += 1;
            keep
        });
    }
}

/// The fields the resource holds; notes for the others.
fn keep(
    path: &str,
    fields: &Map<String, Value>,
    keys: &[&str],
    dropped: &[(&str, &str)],
    what: &str,
    out: &mut Converted,
) -> Map<String, Value> {
    let mut kept = Map::new();
    for (key, value) in fields {
        if keys.contains(&key.as_str()) {
            kept.insert(key.clone(), value.clone());
        } else if let Some((_, why)) = dropped.iter().find(|(k, _)| k == key) {
            out.warnings
                .push(Warning::new(format!("{path}.{key}"), format!("left out: {why}")));
        } else {
            out.notes.push((
                format!("{path}.{key}"),
                format!("left out: not a key of an Atmos {what}"),
            ));
        }
    }
    // A missing kind is the resolver's to report ("kind is required; ..."), with its path;
    // the typed field has no default.
    kept.entry("kind").or_insert_with(|| Value::String(String::new()));
    if kept.get("kind").is_some_and(Value::is_null) {
        kept.insert("kind".to_owned(), Value::String(String::new()));
    }
    kept
}

/// The typed definition; on a type error, the first field that fails names the path.
fn typed<T: DeserializeOwned>(path: &str, fields: Map<String, Value>, out: &mut Converted) -> Option<T> {
    match serde_json::from_value::<T>(Value::Object(fields.clone())) {
        Ok(def) => Some(def),
        Err(whole) => {
            // Narrow to the field: the type with only `kind` and that one field.
            let culprit = fields.iter().filter(|(k, _)| *k != "kind").find_map(|(key, value)| {
                let mut one = Map::new();
                one.insert("kind".to_owned(), Value::String(String::new()));
                one.insert(key.clone(), value.clone());
                serde_json::from_value::<T>(Value::Object(one))
                    .err()
                    .map(|e| (format!("{path}.{key}"), e.to_string()))
            });
            let (at, message) = culprit.unwrap_or_else(|| (path.to_owned(), whole.to_string()));
            out.problems.push(Problem::new(
                at,
                Reason::InvalidProfile,
                format!(
                    "{message}; write it as Atmos's schema has it (strings are quoted where YAML would read a number)"
                ),
            ));
            None
        }
    }
}

fn shape(path: &str, expected: &str, found: &Value) -> Problem {
    let found = match found {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    };
    Problem::new(
        path,
        Reason::InvalidProfile,
        format!("expected {expected}, found {found}"),
    )
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::api::{Principal, Via};

    #[test]
    fn keeps_resource_keys_and_explains_the_rest() {
        let c = to_spec(&json!({
            "realm": "x", "logs": {"level": "Debug"}, "keyring": {"type": "file"}, "console": {}, "integrations": {},
            "identitys": {},
            "providers": {"saml": {"kind": "aws/saml", "url": "https://idp", "password": "hunter2",
                                   "browser_type": "chromium", "tags": ["ci"], "bogus": 1}},
            "identities": {"u": {"kind": "aws/user", "credentials": {"access_key_id": "AKIA"}, "alias": "me",
                                 "tags": ["team-x"],
                                 "env": [{"key": "AWS_SESSION_TOKEN", "value": "tok3n"}, {"key": "TF_VAR_x", "value": "1"}]}}
        }));
        assert_eq!(c.problems, vec![]);
        // Every Atmos key is kept, as written.
        assert_eq!(c.spec.realm.as_deref(), Some("x"));
        assert!(c.spec.logs.is_some() && c.spec.keyring.is_some() && c.spec.console.is_some());
        assert_eq!(c.spec.providers["saml"].url.as_deref(), Some("https://idp"));
        assert_eq!(c.spec.providers["saml"].browser_type.as_deref(), Some("chromium"));
        assert_eq!(c.spec.providers["saml"].tags, Some(vec!["ci".to_owned()]));
        assert_eq!(c.spec.identities["u"].alias.as_deref(), Some("me"));
        assert_eq!(c.spec.identities["u"].tags, Some(vec!["team-x".to_owned()]));
        // Secrets are left out with a warning; keys Atmos does not have with a note.
        assert_eq!(c.spec.providers["saml"].password, None);
        assert_eq!(c.spec.identities["u"].credentials, None);
        assert_eq!(c.spec.identities["u"].env.as_ref().map(Vec::len), Some(1));
        let notes: Vec<&str> = c.notes.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(notes, ["auth.identitys", "auth.providers.saml.bogus"]);
        assert_eq!(c.notes[0].1, "not a key of Atmos's auth: block; left out");
        let warnings: Vec<&str> = c.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            warnings,
            [
                "auth.providers.saml.password",
                "auth.identities.u.credentials.access_key_id",
                "auth.identities.u.env[0]",
            ]
        );
        let everything = format!("{:?} {:?} {:?}", c.spec, c.notes, c.warnings);
        for secret in ["hunter2", "AKIA", "tok3n"] {
            assert!(!everything.contains(secret), "{secret} leaked: {everything}");
        }
    }

    #[test]
    fn typed_fields_and_wrong_types_with_paths() {
        let c = to_spec(&json!({
            "providers": {"p": {"kind": "kubernetes/oidc", "region": 12}},
            "identities": {
                "ok": {"kind": "aws/assume-role", "via": {"provider": "p"},
                       "principal": {"assume_role": "arn:aws:iam::123456789012:role/x", "custom": [1]}},
                "bad": {"kind": "aws/assume-role", "principal": {"duration": 3600}},
                "flat": "aws/assume-role",
                "nokind": {"via": {"identity": "ok"}}
            }
        }));
        assert_eq!(
            c.spec.identities["ok"].principal,
            Some(Principal {
                assume_role: Some("arn:aws:iam::123456789012:role/x".into()),
                extra: [("custom".to_owned(), json!([1]))].into(),
                ..Principal::default()
            })
        );
        assert_eq!(
            c.spec.identities["nokind"].via,
            Some(Via {
                provider: None,
                identity: Some("ok".into())
            })
        );
        assert_eq!(c.spec.identities["nokind"].kind, "");
        // A free-form map's known key of another type is kept among the others; the
        // resolver refuses it (`principal.duration must be a string`).
        let bad = c.spec.identities["bad"].principal.clone().unwrap_or_default();
        assert_eq!((bad.duration, bad.extra["duration"].clone()), (None, json!(3600)));
        let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "auth.providers.p.region: invalid type: integer `12`, expected a string; write it as Atmos's \
                 schema has it (strings are quoted where YAML would read a number)",
                "auth.identities.flat: expected a map of settings, found a string",
            ]
        );
    }

    #[test]
    fn the_legacy_endpoint_becomes_spec_endpoint_url() {
        let c = to_spec(&json!({"identities": {
            "a": {"kind": "aws/assume-role", "credentials": {"aws": {"resolver": {"url": "https://sts.x"}}}},
            "b": {"kind": "aws/assume-role", "spec": {"endpoint_url": "https://sts.y"},
                  "credentials": {"region": "us-east-1", "aws": {"resolver": {"url": "https://sts.x"}}}}
        }}));
        assert_eq!(c.spec.identities["a"].credentials, None);
        assert_eq!(
            c.spec.identities["a"].spec,
            Some(json!({"endpoint_url": "https://sts.x"}))
        );
        assert_eq!(c.spec.identities["b"].credentials, Some(json!({"region": "us-east-1"})));
        assert_eq!(
            c.spec.identities["b"].spec,
            Some(json!({"endpoint_url": "https://sts.y"}))
        );
        let notes: Vec<(&str, &str)> = c
            .notes
            .iter()
            .map(|(path, m)| (path.as_str(), m.split(':').next().unwrap_or_default()))
            .collect();
        assert_eq!(
            notes,
            [
                (
                    "auth.identities.a.credentials.aws.resolver.url",
                    "moved to spec.endpoint_url"
                ),
                ("auth.identities.b.credentials.aws.resolver.url", "left out"),
            ]
        );
    }
}
