//! What the Secret holds: the data keys for each of `secret.formats`.
//!
//! An identity named `default` gets the section `[default]` in `config` (as Atmos writes it).
//!
//! - `process`: `config` (`[profile <identity>]`, `region`, `credential_process = cat
//!   <mountPath>/credential_process.json`) and `credential_process.json` (Version 1).
//! - `files`: Atmos's own layout: `credentials` (`[<identity>]`, the three keys, preceded by
//!   Atmos's `; atmos: expiration=<RFC3339>` comment, which go-ini attaches to the section)
//!   and `config` (`[profile <identity>]`, `region`).
//! - `env`: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//!   `AWS_DEFAULT_REGION`, and `AWS_SDK_LOAD_CONFIG=1`, which Atmos sets beside its files
//!   (`pkg/auth/cloud/aws/env.go`): without it aws-sdk-go v1 and the JS SDK v2 ignore
//!   `AWS_CONFIG_FILE`.
//!
//! `process` and `files` both write `config`. When both are asked for, the `process` one
//! is written: it is a superset (the same `region`, plus `credential_process`). Note that
//! SDKs prefer the static keys of `credentials` (and of `env`) over `credential_process`, so
//! a pod that uses both loses renewal; the README says so.
//!
//! Several identities (`spec.identities`): `process` writes one `config` with a section per
//! identity, each `credential_process` reading its own key ([`process_key`]); `files` writes
//! one `credentials` with a section per identity and one `config`. `env` holds one identity
//! only (refused with a list).
//!
//! Identity names and regions are checked by the resolver (no `[`, `]`, `;`, `#`, space or
//! control character), so they cannot break the INI layout; values are written with
//! rust-ini's basic escaping in any case.

use std::collections::BTreeMap;

use ini::{EscapePolicy, Ini, LineSeparator, WriteOption};
use serde::Serialize;

use crate::api::SecretFormat;
use crate::exchange::credentials::Credentials;
pub use crate::resolve::process_key;
use crate::util::time::rfc3339;

/// Data key of the AWS config file.
pub const CONFIG: &str = "config";
/// Data key of the shared credentials file (`files`).
pub const CREDENTIALS: &str = "credentials";
/// Data key of the `credential_process` output (`process`).
pub const CREDENTIAL_PROCESS_JSON: &str = "credential_process.json";

/// Every data key any format writes: after a change of formats, the ones no longer rendered
/// are removed, so stale static keys can never shadow `credential_process`.
pub const ALL_KEYS: [&str; 9] = [
    CONFIG,
    CREDENTIALS,
    CREDENTIAL_PROCESS_JSON,
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_SDK_LOAD_CONFIG",
];

/// One identity's credentials for [`render_set`].
#[derive(Clone, Copy, Debug)]
pub struct Issued<'a> {
    /// Atmos identity name (the AWS profile name).
    pub identity: &'a str,
    /// Region of its `config` section.
    pub region: &'a str,
    /// Its credentials (with the expiry consumers see).
    pub creds: &'a Credentials,
}

/// The data keys of `data` beyond [`ALL_KEYS`] (the per-identity keys): recorded on the
/// Secret so a later write, or emptying it, knows what to remove.
pub fn extra_keys(data: &BTreeMap<String, String>) -> Vec<String> {
    data.keys()
        .filter(|k| !ALL_KEYS.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// The Secret's data for several identities (`spec.identities`, in order); `env` is never
/// written (the resolver refuses it with a list).
pub fn render_set(items: &[Issued<'_>], formats: &[SecretFormat], mount_path: &str) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    let config = |with_process: bool| {
        let mut ini = Ini::new();
        for it in items {
            let mut section = ini.with_section(Some(config_section(it.identity)));
            section.set("region", it.region);
            if with_process {
                let path = format!("{}/{}", mount_path.trim_end_matches('/'), process_key(it.identity));
                section.set("credential_process", format!("cat {path}"));
            }
        }
        write_ini(&ini)
    };
    if formats.contains(&SecretFormat::Files) {
        let text: String = items.iter().map(|it| credentials_file(it.identity, it.creds)).collect();
        data.insert(CREDENTIALS.to_owned(), text);
        data.insert(CONFIG.to_owned(), config(false));
    }
    if formats.contains(&SecretFormat::Process) {
        data.insert(CONFIG.to_owned(), config(true));
        for it in items {
            data.insert(process_key(it.identity), credential_process_json(it.creds));
        }
    }
    data
}

/// The Secret's data for `formats`. `mount_path` is where consumers mount the Secret
/// (absolute, as the resolver checked it; a trailing `/` is ignored).
pub fn render(
    identity: &str,
    region: &str,
    formats: &[SecretFormat],
    mount_path: &str,
    creds: &Credentials,
) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    // Files first, so that Process's `config` replaces it when both are asked for.
    if formats.contains(&SecretFormat::Files) {
        data.insert(CREDENTIALS.to_owned(), credentials_file(identity, creds));
        data.insert(CONFIG.to_owned(), config_file(identity, region, None));
    }
    if formats.contains(&SecretFormat::Process) {
        let path = format!("{}/{CREDENTIAL_PROCESS_JSON}", mount_path.trim_end_matches('/'));
        data.insert(
            CONFIG.to_owned(),
            config_file(identity, region, Some(&format!("cat {path}"))),
        );
        data.insert(CREDENTIAL_PROCESS_JSON.to_owned(), credential_process_json(creds));
    }
    if formats.contains(&SecretFormat::Env) {
        for (key, value) in [
            ("AWS_ACCESS_KEY_ID", creds.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.as_str()),
            ("AWS_SESSION_TOKEN", creds.session_token.as_str()),
            ("AWS_REGION", region),
            ("AWS_DEFAULT_REGION", region),
            ("AWS_SDK_LOAD_CONFIG", "1"),
        ] {
            data.insert(key.to_owned(), value.to_owned());
        }
    }
    data
}

/// The config file's section of `identity`: `profile <identity>`, except `default`, which
/// the SDKs (and Atmos's writer) name `[default]`.
pub fn config_section(identity: &str) -> String {
    if identity == "default" {
        "default".to_owned()
    } else {
        format!("profile {identity}")
    }
}

/// `[profile <identity>]` (`[default]` for `default`) with `region` and, for `process`,
/// `credential_process`.
fn config_file(identity: &str, region: &str, credential_process: Option<&str>) -> String {
    let mut ini = Ini::new();
    let mut section = ini.with_section(Some(config_section(identity)));
    section.set("region", region);
    if let Some(command) = credential_process {
        section.set("credential_process", command);
    }
    write_ini(&ini)
}

/// `; atmos: expiration=<RFC3339>` then `[<identity>]` with the three keys.
fn credentials_file(identity: &str, creds: &Credentials) -> String {
    let mut ini = Ini::new();
    ini.with_section(Some(identity))
        .set("aws_access_key_id", creds.access_key_id.as_str())
        .set("aws_secret_access_key", creds.secret_access_key.as_str())
        .set("aws_session_token", creds.session_token.as_str());
    format!("; atmos: expiration={}\n{}", rfc3339(creds.expiration), write_ini(&ini))
}

/// The `credential_process` output, version 1.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
}

fn credential_process_json(creds: &Credentials) -> String {
    serde_json::to_string(&ProcessOutput {
        version: 1,
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        session_token: &creds.session_token,
        expiration: rfc3339(creds.expiration),
    })
    // Serializing plain strings cannot fail.
    .unwrap_or_default()
}

/// rust-ini's text with `key = value` and `\n`. Writing to a `Vec` cannot fail.
fn write_ini(ini: &Ini) -> String {
    let mut buf = Vec::new();
    let option = WriteOption {
        escape_policy: EscapePolicy::Basics,
        line_separator: LineSeparator::CR,
        kv_separator: " = ",
    };
    if ini.write_to_opt(&mut buf, option).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "wJalr/K7MDENG+bPxRfiCY=".into(),
            session_token: "FwoGZXIvYXdzEB0aD+/tok==".into(),
            expiration: "2025-10-24T23:42:49.750Z".parse().unwrap(),
        }
    }

    fn keys(data: &BTreeMap<String, String>) -> Vec<&str> {
        data.keys().map(String::as_str).collect()
    }

    #[test]
    fn process_exact_text_and_read_back() {
        let data = render(
            "acme/network",
            "us-east-2",
            &[SecretFormat::Process],
            "/var/run/secrets/atmos-auth",
            &creds(),
        );
        assert_eq!(keys(&data), ["config", "credential_process.json"]);
        assert_eq!(
            data["config"],
            "[profile acme/network]\n\
             region = us-east-2\n\
             credential_process = cat /var/run/secrets/atmos-auth/credential_process.json\n"
        );
        let ini = Ini::load_from_str(&data["config"]).unwrap();
        assert_eq!(ini.get_from(Some("profile acme/network"), "region"), Some("us-east-2"));
        assert_eq!(
            ini.get_from(Some("profile acme/network"), "credential_process"),
            Some("cat /var/run/secrets/atmos-auth/credential_process.json")
        );
        assert_eq!(
            data["credential_process.json"],
            r#"{"Version":1,"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"wJalr/K7MDENG+bPxRfiCY=","SessionToken":"FwoGZXIvYXdzEB0aD+/tok==","Expiration":"2025-10-24T23:42:49Z"}"#
        );
        let json: serde_json::Value = serde_json::from_str(&data["credential_process.json"]).unwrap();
        assert_eq!(json["Version"], 1);
        assert_eq!(json["Expiration"], "2025-10-24T23:42:49Z");
    }

    #[test]
    fn mount_path_trailing_slash() {
        let data = render("a", "us-east-1", &[SecretFormat::Process], "/aws/", &creds());
        assert!(data["config"].contains("credential_process = cat /aws/credential_process.json\n"));
    }

    #[test]
    fn files_exact_text_and_read_back() {
        let data = render("acme/network", "eu-west-1", &[SecretFormat::Files], "/unused", &creds());
        assert_eq!(keys(&data), ["config", "credentials"]);
        assert_eq!(
            data["credentials"],
            "; atmos: expiration=2025-10-24T23:42:49Z\n\
             [acme/network]\n\
             aws_access_key_id = ASIAEXAMPLE\n\
             aws_secret_access_key = wJalr/K7MDENG+bPxRfiCY=\n\
             aws_session_token = FwoGZXIvYXdzEB0aD+/tok==\n"
        );
        assert_eq!(data["config"], "[profile acme/network]\nregion = eu-west-1\n");
        let ini = Ini::load_from_str(&data["credentials"]).unwrap();
        let section = ini.section(Some("acme/network")).unwrap();
        assert_eq!(section.get("aws_access_key_id"), Some("ASIAEXAMPLE"));
        assert_eq!(section.get("aws_secret_access_key"), Some("wJalr/K7MDENG+bPxRfiCY="));
        assert_eq!(section.get("aws_session_token"), Some("FwoGZXIvYXdzEB0aD+/tok=="));
        let config = Ini::load_from_str(&data["config"]).unwrap();
        assert_eq!(
            config.get_from(Some("profile acme/network"), "region"),
            Some("eu-west-1")
        );
    }

    #[test]
    fn env_keys() {
        let data = render("a", "us-west-2", &[SecretFormat::Env], "/x", &creds());
        assert_eq!(
            data,
            BTreeMap::from(
                [
                    ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
                    ("AWS_DEFAULT_REGION", "us-west-2"),
                    ("AWS_REGION", "us-west-2"),
                    ("AWS_SDK_LOAD_CONFIG", "1"),
                    ("AWS_SECRET_ACCESS_KEY", "wJalr/K7MDENG+bPxRfiCY="),
                    ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEB0aD+/tok=="),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
            )
        );
    }

    #[test]
    fn process_config_wins_over_files_config() {
        let all = render(
            "acme/admin",
            "us-east-2",
            &[SecretFormat::Files, SecretFormat::Process, SecretFormat::Env],
            "/aws",
            &creds(),
        );
        assert_eq!(
            keys(&all),
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_DEFAULT_REGION",
                "AWS_REGION",
                "AWS_SDK_LOAD_CONFIG",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "config",
                "credential_process.json",
                "credentials",
            ]
        );
        assert_eq!(
            all["config"],
            "[profile acme/admin]\nregion = us-east-2\ncredential_process = cat /aws/credential_process.json\n"
        );
    }

    #[test]
    fn identity_default_is_the_default_section() {
        // Atmos writes `[default]` in both files for an identity named `default`; SDKs read
        // `[profile default]` as an ordinary profile that AWS_PROFILE unset would not pick.
        let all = render(
            "default",
            "eu-west-1",
            &[SecretFormat::Files, SecretFormat::Process],
            "/aws",
            &creds(),
        );
        assert_eq!(
            all["config"],
            "[default]\nregion = eu-west-1\ncredential_process = cat /aws/credential_process.json\n"
        );
        assert!(all["credentials"].contains("\n[default]\naws_access_key_id = ASIAEXAMPLE\n"));
        let files = render("default", "eu-west-1", &[SecretFormat::Files], "/aws", &creds());
        assert_eq!(files["config"], "[default]\nregion = eu-west-1\n");
        // Only the exact name: `default/x` is an ordinary profile.
        let other = render("default/x", "eu-west-1", &[SecretFormat::Files], "/aws", &creds());
        assert_eq!(other["config"], "[profile default/x]\nregion = eu-west-1\n");
    }

    #[test]
    fn several_identities_process_layout() {
        let (a, b) = (
            creds(),
            Credentials {
                access_key_id: "ASIAOTHER".into(),
                ..creds()
            },
        );
        let items = [
            Issued {
                identity: "default",
                region: "us-east-1",
                creds: &a,
            },
            Issued {
                identity: "acme/admin",
                region: "eu-west-1",
                creds: &b,
            },
        ];
        let data = render_set(&items, &[SecretFormat::Process], "/m/");
        let ka = process_key("default");
        let kb = process_key("acme/admin");
        assert_eq!(keys(&data), ["config", kb.as_str(), ka.as_str()]);
        assert_eq!(
            data["config"],
            format!(
                "[default]\nregion = us-east-1\ncredential_process = cat /m/{ka}\n\n[profile acme/admin]\nregion = eu-west-1\ncredential_process = cat /m/{kb}\n"
            )
        );
        assert!(data[&kb].contains("\"AccessKeyId\":\"ASIAOTHER\""));
        assert!(data[&ka].contains("\"AccessKeyId\":\"ASIAEXAMPLE\""));
        assert_eq!(extra_keys(&data), [kb, ka]);
    }

    #[test]
    fn several_identities_files_layout() {
        let a = creds();
        let items = [
            Issued {
                identity: "acme/a",
                region: "us-east-1",
                creds: &a,
            },
            Issued {
                identity: "acme/b",
                region: "us-east-2",
                creds: &a,
            },
        ];
        let data = render_set(&items, &[SecretFormat::Files], "/m");
        assert_eq!(keys(&data), ["config", "credentials"]);
        let ini = Ini::load_from_str(&data["credentials"]).unwrap();
        for name in ["acme/a", "acme/b"] {
            assert_eq!(ini.get_from(Some(name), "aws_access_key_id"), Some("ASIAEXAMPLE"));
        }
        assert_eq!(data["credentials"].matches("; atmos: expiration=").count(), 2);
        assert_eq!(
            data["config"],
            "[profile acme/a]\nregion = us-east-1\n\n[profile acme/b]\nregion = us-east-2\n"
        );
        assert!(extra_keys(&data).is_empty());
    }

    #[test]
    fn process_keys_are_valid_and_injective() {
        let names = ["acme/admin", "acme.admin", "acme_admin", "acme admin", "ß/ü", "default"];
        let keys: Vec<String> = names.iter().map(|n| process_key(n)).collect();
        for k in &keys {
            assert!(k.len() <= 253, "{k}");
            assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)), "{k}");
        }
        let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        assert!(keys[0].starts_with("credential_process.acme_admin."));
        assert!(keys[1].starts_with("credential_process.acme.admin."));
        assert_eq!(
            process_key(&"x".repeat(253)).len(),
            "credential_process.".len() + 200 + 1 + 8 + 5
        );
    }

    #[test]
    fn no_format_no_data() {
        assert!(render("a", "us-east-1", &[], "/x", &creds()).is_empty());
    }

    #[test]
    fn all_keys_covers_every_format() {
        let creds = Credentials {
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            session_token: "t".into(),
            expiration: jiff::Timestamp::from_second(0).unwrap(),
        };
        let formats = [SecretFormat::Process, SecretFormat::Files, SecretFormat::Env];
        for key in render("a", "us-east-1", &formats, "/m", &creds).keys() {
            assert!(ALL_KEYS.contains(&key.as_str()), "{key} missing from ALL_KEYS");
        }
    }
}
