//! Property-based fuzzing (proptest, stable Rust) of the resolver, the importer's YAML
//! handling, the shared YAML reader and the Secret renderers: no panic, no hang, every
//! problem names a field, and what is rendered parses back to the same credentials.
//!
//! `cargo test --test fuzz`; more cases with `PROPTEST_CASES=5000`. A failure prints the
//! smallest input proptest found.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atmos_auth_controller::api::{AuthProfileSpec, IdentitySpec, SecretFormat};
use atmos_auth_controller::exchange::credentials::Credentials;
use atmos_auth_controller::import::{self, ImportError, Input, Options};
use atmos_auth_controller::output::render::{self, render};
use atmos_auth_controller::resolve::{MAX_CHAIN_LINKS, Settings, resolve, rules, validate_profile};
use atmos_auth_controller::util::time::whole_second;
use atmos_auth_controller::util::yaml::{self, Schema};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Longer than any honest call takes in a debug build on a loaded machine; a hang is far over.
const NO_HANG: Duration = Duration::from_secs(5);

/// Names as people write them, and as attackers do: Atmos names, empty, unicode, path-like,
/// INI-breaking, huge.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["admin", "acme/admin", "acme/network", "oidc", "a", "b", "c", "p"])
            .prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => prop::sample::select(vec!["管理者/ädmin", "../../etc/passwd", "a b", "a]b", "a;b", "#x", "a\nb", "[profile x]"])
            .prop_map(str::to_owned),
        1 => "[a-z/._-]{1,20}",
        1 => any::<String>(),
        1 => (1usize..400).prop_map(|n| "n".repeat(n)),
    ]
}

/// A string field: plausible values, empty, odd, huge.
fn text(plausible: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(plausible).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => any::<String>(),
        1 => (1usize..3000).prop_map(|n| "x".repeat(n)),
    ]
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    prop::option::weighted(0.7, s).boxed()
}

const ARNS: &[&str] = &[
    "arn:aws:iam::123456789012:role/admin",
    "arn:aws:iam::123456789012:role/path/to/net-admin",
    "arn:aws-cn:iam::123456789012:role/x",
    "arn:aws:iam::12345678901:role/short",
    "arn:aws:iam::123456789012:user/bob",
    "admin",
];
const DURATIONS: &[&str] = &["1h", "15m", "90m", "12h", "13h", "1m", "-1h", "forever", "1h30m", "0s"];
const REGIONS: &[&str] = &["us-east-1", "us-east-2", "eu-west-1", "us east", "US-EAST-1"];
const KINDS: &[&str] = &[
    "aws/assume-role",
    "aws/permission-set",
    "aws/user",
    "aws/assume-root",
    "aws/ambient",
    "aws/nonsense",
];
const PROVIDER_KINDS: &[&str] = &["kubernetes/oidc", "github/oidc", "aws/saml", "foo/bar"];

fn via() -> BoxedStrategy<Value> {
    prop_oneof![
        name().prop_map(|p| json!({"provider": p})),
        name().prop_map(|i| json!({"identity": i})),
        (name(), name()).prop_map(|(p, i)| json!({"provider": p, "identity": i})),
        Just(json!({})),
    ]
    .boxed()
}

fn principal() -> BoxedStrategy<Value> {
    (
        maybe(text(ARNS)),
        maybe(text(DURATIONS)),
        maybe(text(REGIONS)),
        maybe(text(&["ext-1", "bad id!", ""])),
        maybe(text(&["ci-run", "x"])),
    )
        .prop_map(|(arn, duration, region, external_id, session_name)| {
            json!({"assume_role": arn, "duration": duration, "region": region,
                "external_id": external_id, "session_name": session_name})
        })
        .boxed()
}

fn env() -> BoxedStrategy<Value> {
    prop::collection::vec(
        (text(&["AWS_REGION", "TF_VAR_x"]), text(&["1"])).prop_map(|(k, v)| json!({"key": k, "value": v})),
        0..3,
    )
    .prop_map(Value::Array)
    .boxed()
}

fn identity_def() -> BoxedStrategy<Value> {
    (
        text(KINDS),
        maybe(any::<bool>()),
        maybe(via()),
        maybe(principal()),
        maybe(env()),
    )
        .prop_map(|(kind, default, via, principal, env)| {
            json!({"kind": kind, "default": default, "via": via, "principal": principal, "env": env})
        })
        .boxed()
}

fn provider() -> BoxedStrategy<Value> {
    (
        text(PROVIDER_KINDS),
        maybe(text(REGIONS)),
        maybe(text(&["sts.amazonaws.com", "other"])),
        maybe(text(&["terraform", "Bad_SA"])),
        maybe(text(DURATIONS)),
        maybe(text(&["https://sts.example"])),
    )
        .prop_map(|(kind, region, audience, sa, expiration, endpoint)| {
            json!({"kind": kind, "region": region, "spec": {"audience": audience, "service_account": sa,
                "expiration": expiration, "endpoint_url": endpoint}})
        })
        .boxed()
}

/// Profiles with few names, so that references hit, miss, loop and chain.
fn profile() -> BoxedStrategy<AuthProfileSpec> {
    (
        prop::collection::btree_map(name(), provider(), 0..3),
        prop::collection::btree_map(name(), identity_def(), 0..8),
    )
        .prop_map(|(providers, identities)| {
            let spec = json!({"providers": providers, "identities": identities});
            serde_json::from_value(without_nulls(spec)).expect("the strategy builds well-typed specs")
        })
        .boxed()
}

/// A chain `l00 <- l01 <- ... ` of `len` links from one provider: at, under and past the limit.
fn chain(len: usize) -> AuthProfileSpec {
    let mut identities = serde_json::Map::new();
    for i in 0..len {
        let via = if i == 0 {
            json!({"provider": "p"})
        } else {
            json!({"identity": format!("l{:02}", i - 1)})
        };
        identities.insert(
            format!("l{i:02}"),
            json!({"kind": "aws/assume-role", "via": via, "principal": {"assume_role": ARNS[0]}}),
        );
    }
    serde_json::from_value(json!({
        "providers": {"p": {"kind": "kubernetes/oidc", "spec": {"service_account": "terraform"}}},
        "identities": identities,
    }))
    .expect("a well-typed chain")
}

fn identity_spec(target: Option<String>) -> BoxedStrategy<IdentitySpec> {
    (
        maybe(text(&["terraform", "Bad_SA"])),
        maybe(text(&["10m", "2h", "soon"])),
        maybe(text(&["creds", "Bad_Name"])),
        maybe(text(&["/var/run/x", "relative", "/../etc"])),
        maybe(principal()),
        maybe(via()),
    )
        .prop_map(move |(sa, refresh, secret, mount, principal, via)| {
            let spec = json!({"profile": "p", "identity": target, "serviceAccountName": sa,
                "refreshBefore": refresh, "secret": {"name": secret, "mountPath": mount},
                "principal": principal, "via": via});
            serde_json::from_value(without_nulls(spec)).expect("a well-typed Identity spec")
        })
        .boxed()
}

/// `null`s dropped: the strategies build `Option::None` as null, which the CRD types take as
/// "not set" except inside maps of required fields.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// Every problem names a field in Atmos form (`auth.`) or the Identity's (`spec.`), and says
/// something.
fn assert_named(problems: &[atmos_auth_controller::resolve::Problem]) -> Result<(), TestCaseError> {
    for p in problems {
        prop_assert!(
            p.path.starts_with("auth.") || p.path.starts_with("spec.") || p.path == "auth",
            "a problem without a field: {p:?}"
        );
        prop_assert!(!p.message.trim().is_empty(), "a problem without a message: {p:?}");
    }
    Ok(())
}

proptest! {
    // No failure file: an integration test has no src/ of its own to keep it next to.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The resolver over random profiles: no panic, no hang, every problem names a field,
    /// and what resolves is a chain within the limit starting at a provider.
    #[test]
    fn the_resolver_names_a_field_for_every_problem(
        spec in profile(),
        pick in any::<prop::sample::Index>(),
        overrides in identity_spec(None),
    ) {
        let settings = Settings::default();
        let started = Instant::now();
        let report = validate_profile(&spec, &settings);
        assert_named(&report.all_problems())?;
        // Each identity of the profile, and none (the default), as an Identity would ask.
        let names: Vec<Option<String>> = spec.identities.keys().cloned().map(Some).chain([None]).collect();
        let target = names[pick.index(names.len())].clone();
        let identity = IdentitySpec { identity: target.clone(), ..overrides };
        match resolve(&spec, &identity, "obj", &settings) {
            Ok(resolved) => {
                prop_assert!(!resolved.links.is_empty() && resolved.links.len() <= MAX_CHAIN_LINKS);
                // Deterministic: the same input resolves the same way.
                prop_assert_eq!(
                    format!("{:?}", resolve(&spec, &identity, "obj", &settings)),
                    format!("{resolved:?}")
                );
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                assert_named(&problems)?;
            }
        }
        prop_assert!(started.elapsed() < NO_HANG, "took {:?}", started.elapsed());
    }

    /// Chains around the limit: up to `MAX_CHAIN_LINKS` resolve, longer ones are refused at
    /// the identity that is too far.
    #[test]
    fn chains_resolve_up_to_the_limit(len in 1usize..=(MAX_CHAIN_LINKS + 5)) {
        let spec = chain(len);
        let target = format!("l{:02}", len - 1);
        let identity = IdentitySpec { profile: "p".into(), identity: Some(target.clone()), ..IdentitySpec::default() };
        match resolve(&spec, &identity, "obj", &Settings::default()) {
            Ok(r) => {
                prop_assert!(len <= MAX_CHAIN_LINKS);
                prop_assert_eq!(r.links.len(), len);
            }
            Err(problems) => {
                prop_assert!(len > MAX_CHAIN_LINKS, "{problems:?}");
                prop_assert!(problems.iter().any(|p| p.path.starts_with("auth.identities.")), "{problems:?}");
            }
        }
    }

    /// The importer over random atmos.yaml texts (structured, with Atmos tags, anchors and
    /// aliases, and raw mutations of them): no panic, no hang; an error names the file, every
    /// problem and note a field.
    #[test]
    fn the_importer_survives_any_text(text in atmos_yaml()) {
        let started = Instant::now();
        let options = Options { name: "k8s".into(), identities: true, ..Options::default() };
        let input = Input { source: "atmos.yaml".into(), text: text.clone() };
        match import::import(&[input], &options) {
            Ok(imported) => {
                assert_named(&imported.problems)?;
                for note in &imported.notes {
                    prop_assert!(!note.path.is_empty() && !note.message.is_empty(), "{note:?}");
                }
                // What it writes reads back with the shared reader.
                if let Ok(out) = imported.manifests() {
                    let docs: Vec<Value> = yaml::documents("out", &out, Schema::Kubernetes)
                        .map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
                    prop_assert_eq!(docs.len(), 1 + imported.identities.len());
                }
            }
            Err(e @ (ImportError::Yaml { .. } | ImportError::NoAuth { .. })) => {
                prop_assert!(e.to_string().contains("atmos.yaml"), "{e}");
            }
            Err(e) => prop_assert!(false, "unexpected import error for a text: {e}"),
        }
        // The same text as a manifest, through the shared reader and `validate`'s function scan.
        let _ = yaml::documents::<Value>("m.yaml", &text, Schema::Kubernetes);
        let _ = import::yaml_functions(&text);
        prop_assert!(started.elapsed() < NO_HANG, "took {:?}", started.elapsed());
    }

    /// Rendered INI and JSON parse back to the same credentials, for any credentials STS can
    /// return, any identity name and region the resolver accepts, and any set of formats.
    #[test]
    fn rendered_files_parse_back_to_the_same_credentials(
        creds in credentials(),
        identity in "[A-Za-z0-9_./@:+=,-]{1,60}".prop_filter("a name the resolver accepts", |n| rules::check_identity_name(n).is_ok()),
        region in "[a-z]{2}(-[a-z]{2,9}){1,2}-[1-9]",
        formats in prop::collection::vec(prop::sample::select(vec![SecretFormat::Process, SecretFormat::Files, SecretFormat::Env]), 0..4),
        mount in prop::sample::select(vec!["/var/run/secrets/atmos-auth", "/creds/", "/a.b/c_d-e"]),
    ) {
        let data = render(&identity, &region, &formats, mount, &creds);
        check_rendered(&data, &identity, &region, &formats, mount, &creds)?;
    }
}

/// atmos.yaml texts: a structured profile with tags, anchors and aliases, then perhaps cut,
/// spliced or sprinkled with YAML punctuation.
fn atmos_yaml() -> BoxedStrategy<String> {
    let value = prop_oneof![
        Just("aws/assume-role".to_owned()),
        Just("!env ROLE".to_owned()),
        Just("!exec 'echo hi'".to_owned()),
        Just("!unset".to_owned()),
        Just("!append [x]".to_owned()),
        Just("!literal '{{ x }}'".to_owned()),
        Just("*anchor".to_owned()),
        Just("&anchor {kind: aws/assume-role}".to_owned()),
        Just("012345678901".to_owned()),
        Just("yes".to_owned()),
        Just("~".to_owned()),
        Just("[1, {a: b}]".to_owned()),
        "[a-z]{0,8}",
    ];
    let structured = (
        prop::collection::vec((name(), value.clone()), 0..4),
        prop::collection::vec((name(), value.clone(), value), 0..4),
    )
        .prop_map(|(providers, identities)| {
            let mut t = String::from("auth:\n  providers:\n");
            for (n, v) in providers {
                t.push_str(&format!("    {}: {{kind: kubernetes/oidc, region: {v}}}\n", quoted(&n)));
            }
            t.push_str("  identities:\n");
            for (n, kind, arn) in identities {
                t.push_str(&format!(
                    "    {}:\n      kind: {kind}\n      via: {{provider: oidc}}\n      principal:\n        assume_role: {arn}\n",
                    quoted(&n)
                ));
            }
            t
        });
    (
        structured,
        prop_oneof![
            4 => Just(None),
            1 => (any::<prop::sample::Index>(), "[\\[\\]{}:&*!|>'\"#%@`, \n-]{1,4}").prop_map(Some),
        ],
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(text, splice, cut, do_cut)| {
            let mut text = text;
            if let Some((at, junk)) = splice {
                let i = floor_char(&text, at.index(text.len() + 1));
                text.insert_str(i, &junk);
            }
            if do_cut && !text.is_empty() {
                let i = floor_char(&text, cut.index(text.len()));
                text.truncate(i);
            }
            text
        })
        .boxed()
}

fn quoted(name: &str) -> String {
    serde_json::to_string(name).unwrap_or_default()
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// What STS returns: key ids `ASIA...`, base64 secrets and tokens, any expiry (files carry
/// it to the whole second, cut, as STS gives it).
fn credentials() -> impl Strategy<Value = Credentials> {
    (
        "ASIA[A-Z0-9]{12,124}",
        "[A-Za-z0-9/+=]{1,128}",
        "[A-Za-z0-9/+=]{1,2048}",
        0i64..4_102_444_800,
        0i32..1_000_000_000,
    )
        .prop_map(
            |(access_key_id, secret_access_key, session_token, secs, nanos)| Credentials {
                access_key_id,
                secret_access_key,
                session_token,
                expiration: jiff::Timestamp::new(secs, nanos).expect("in range"),
            },
        )
}

/// An INI file read as AWS SDKs read it: no quote or escape processing.
fn ini(text: &str) -> Result<ini::Ini, TestCaseError> {
    let option = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..ini::ParseOption::default()
    };
    ini::Ini::load_from_str_opt(text, option).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))
}

fn check_rendered(
    data: &BTreeMap<String, String>,
    identity: &str,
    region: &str,
    formats: &[SecretFormat],
    mount: &str,
    creds: &Credentials,
) -> Result<(), TestCaseError> {
    let expiry = |text: &str| -> Result<jiff::Timestamp, TestCaseError> {
        text.parse().map_err(|e| TestCaseError::fail(format!("{e}: {text}")))
    };
    if formats.contains(&SecretFormat::Files) {
        let text = &data[render::CREDENTIALS];
        let file = ini(text)?;
        let section = file
            .section(Some(identity))
            .ok_or_else(|| TestCaseError::fail(format!("no [{identity}] in\n{text}")))?;
        prop_assert_eq!(section.get("aws_access_key_id"), Some(creds.access_key_id.as_str()));
        prop_assert_eq!(
            section.get("aws_secret_access_key"),
            Some(creds.secret_access_key.as_str())
        );
        prop_assert_eq!(section.get("aws_session_token"), Some(creds.session_token.as_str()));
        prop_assert_eq!(section.len(), 3);
        let comment = text.lines().next().unwrap_or_default();
        let stamp = comment
            .strip_prefix("; atmos: expiration=")
            .ok_or_else(|| TestCaseError::fail(comment.to_owned()))?;
        prop_assert_eq!(expiry(stamp)?, whole_second(creds.expiration));
    }
    if !formats.is_empty() && formats.iter().any(|f| *f != SecretFormat::Env) {
        let text = &data[render::CONFIG];
        let file = ini(text)?;
        let section = file
            .section(Some(format!("profile {identity}")))
            .ok_or_else(|| TestCaseError::fail(format!("no [profile {identity}] in\n{text}")))?;
        prop_assert_eq!(section.get("region"), Some(region));
        if formats.contains(&SecretFormat::Process) {
            let expected = format!("cat {}/credential_process.json", mount.trim_end_matches('/'));
            prop_assert_eq!(section.get("credential_process"), Some(expected.as_str()));
            let json: Value = serde_json::from_str(&data[render::CREDENTIAL_PROCESS_JSON])
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&json["Version"], &json!(1));
            prop_assert_eq!(json["AccessKeyId"].as_str(), Some(creds.access_key_id.as_str()));
            prop_assert_eq!(json["SecretAccessKey"].as_str(), Some(creds.secret_access_key.as_str()));
            prop_assert_eq!(json["SessionToken"].as_str(), Some(creds.session_token.as_str()));
            prop_assert_eq!(
                expiry(json["Expiration"].as_str().unwrap_or_default())?,
                whole_second(creds.expiration)
            );
        }
    }
    if formats.contains(&SecretFormat::Env) {
        prop_assert_eq!(&data["AWS_ACCESS_KEY_ID"], &creds.access_key_id);
        prop_assert_eq!(&data["AWS_SECRET_ACCESS_KEY"], &creds.secret_access_key);
        prop_assert_eq!(&data["AWS_SESSION_TOKEN"], &creds.session_token);
        prop_assert_eq!(&data["AWS_REGION"], region);
    }
    if formats.is_empty() {
        prop_assert!(data.is_empty());
    }
    Ok(())
}
