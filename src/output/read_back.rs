//! The inverse of [`super::render`]: which identities a Secret's data holds credentials for,
//! as a consumer would find them. `whoami` uses it to show who the credentials are with the
//! caller's own rights, reading exactly what pods read.
//!
//! Sources, per identity, in the order the AWS SDKs prefer them: the static keys of
//! `credentials` (`files`), then the `credential_process` JSON a `config` section points at
//! (`process`), then the `AWS_*` keys (`env`, one identity).

use std::collections::BTreeMap;

use ini::Ini;
use jiff::Timestamp;
use serde::Deserialize;

use super::render::{CONFIG, CREDENTIALS};
use crate::exchange::credentials::Credentials;

/// One identity's credentials found in a Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The identity (AWS profile) name; for `env`, the name given by the caller.
    pub identity: String,
    /// The region its `config` section (or `AWS_REGION`) names.
    pub region: Option<String>,
    /// The keys and when they expire (the Unix epoch when the Secret does not say).
    pub creds: Credentials,
    /// Which format they came from: `files`, `process` or `env`.
    pub format: &'static str,
}

/// Why nothing could be read back.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReadBackError {
    /// No format's keys are present (an emptied or revoked Secret, or not one of ours).
    #[error(
        "the Secret holds no credentials (no `credentials`, `config` with `credential_process` or `AWS_ACCESS_KEY_ID` key)"
    )]
    Empty,
    /// A key is present but not in the layout the controller writes.
    #[error("key `{key}` is not in the layout the controller writes: {problem}")]
    Malformed { key: String, problem: String },
}

/// Every identity whose credentials `data` holds. `env_identity` names the identity of
/// the `env` format, which does not record it.
pub fn read_back(data: &BTreeMap<String, String>, env_identity: &str) -> Result<Vec<Found>, ReadBackError> {
    let regions = config_regions(data)?;
    let mut found = from_credentials_file(data, &regions)?;
    for (identity, (region, process_key)) in &regions {
        if found.iter().any(|f| &f.identity == identity) {
            continue;
        }
        let Some(key) = process_key else { continue };
        let text = data.get(key).ok_or_else(|| ReadBackError::Malformed {
            key: CONFIG.to_owned(),
            problem: format!("[{identity}] reads `{key}`, which the Secret does not hold"),
        })?;
        found.push(Found {
            identity: identity.clone(),
            region: region.clone(),
            creds: process_json(key, text)?,
            format: "process",
        });
    }
    if found.is_empty()
        && let Some(id) = data.get("AWS_ACCESS_KEY_ID")
    {
        let get = |k: &str| data.get(k).cloned().unwrap_or_default();
        found.push(Found {
            identity: env_identity.to_owned(),
            region: data.get("AWS_REGION").cloned(),
            creds: Credentials {
                access_key_id: id.clone(),
                secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
                session_token: get("AWS_SESSION_TOKEN"),
                expiration: Timestamp::UNIX_EPOCH,
            },
            format: "env",
        });
    }
    if found.is_empty() {
        return Err(ReadBackError::Empty);
    }
    Ok(found)
}

/// Per identity of `config`: its region and the data key its `credential_process` reads.
type Regions = BTreeMap<String, (Option<String>, Option<String>)>;

fn config_regions(data: &BTreeMap<String, String>) -> Result<Regions, ReadBackError> {
    let Some(text) = data.get(CONFIG) else {
        return Ok(Regions::new());
    };
    let ini = Ini::load_from_str(text).map_err(|e| ReadBackError::Malformed {
        key: CONFIG.to_owned(),
        problem: e.to_string(),
    })?;
    let mut out = Regions::new();
    for (section, props) in ini.iter() {
        let Some(section) = section else { continue };
        let identity = section.strip_prefix("profile ").unwrap_or(section).to_owned();
        // `cat <mountPath>/<key>`: the key is the file name.
        let key = props
            .get("credential_process")
            .and_then(|c| c.rsplit('/').next())
            .map(str::to_owned);
        out.insert(identity, (props.get("region").map(str::to_owned), key));
    }
    Ok(out)
}

fn from_credentials_file(data: &BTreeMap<String, String>, regions: &Regions) -> Result<Vec<Found>, ReadBackError> {
    let Some(text) = data.get(CREDENTIALS) else {
        return Ok(Vec::new());
    };
    let malformed = |problem: String| ReadBackError::Malformed {
        key: CREDENTIALS.to_owned(),
        problem,
    };
    let ini = Ini::load_from_str(text).map_err(|e| malformed(e.to_string()))?;
    let expiries = atmos_expiries(text);
    let mut found = Vec::new();
    for (section, props) in ini.iter() {
        let Some(identity) = section else { continue };
        let get = |k: &str| {
            props
                .get(k)
                .map(str::to_owned)
                .ok_or_else(|| malformed(format!("[{identity}] has no `{k}`")))
        };
        found.push(Found {
            identity: identity.to_owned(),
            region: regions.get(identity).and_then(|(r, _)| r.clone()),
            creds: Credentials {
                access_key_id: get("aws_access_key_id")?,
                secret_access_key: get("aws_secret_access_key")?,
                session_token: get("aws_session_token")?,
                expiration: expiries.get(identity).copied().unwrap_or(Timestamp::UNIX_EPOCH),
            },
            format: "files",
        });
    }
    Ok(found)
}

/// Atmos's `; atmos: expiration=<RFC3339>` comment line precedes each section it describes.
fn atmos_expiries(text: &str) -> BTreeMap<String, Timestamp> {
    let mut out = BTreeMap::new();
    let mut pending = None;
    for line in text.lines().map(str::trim) {
        if let Some(at) = line.strip_prefix("; atmos: expiration=") {
            pending = at.parse::<Timestamp>().ok();
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']'))
            && let Some(at) = pending.take()
        {
            out.insert(name.to_owned(), at);
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: Timestamp,
}

fn process_json(key: &str, text: &str) -> Result<Credentials, ReadBackError> {
    let out: ProcessOutput = serde_json::from_str(text).map_err(|e| ReadBackError::Malformed {
        key: key.to_owned(),
        // A missing field's message names only the field; others may quote a value.
        problem: if e.to_string().starts_with("missing field") {
            e.to_string()
        } else {
            format!("not credential_process JSON (line {}, column {})", e.line(), e.column())
        },
    })?;
    Ok(Credentials {
        access_key_id: out.access_key_id,
        secret_access_key: out.secret_access_key,
        session_token: out.session_token,
        expiration: out.expiration,
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::api::SecretFormat;
    use crate::output::render::{Issued, render, render_set};

    fn creds(n: u8) -> Credentials {
        Credentials {
            access_key_id: format!("ASIA{n}"),
            secret_access_key: format!("secret{n}"),
            session_token: format!("token{n}"),
            expiration: format!("2026-12-07T1{n}:00:00Z").parse().unwrap(),
        }
    }

    #[test]
    fn each_format_reads_back_what_render_wrote() {
        for (format, name) in [(SecretFormat::Process, "process"), (SecretFormat::Files, "files")] {
            let data = render("acme/network", "us-east-2", &[format], "/mnt/aws", &creds(1));
            let found = read_back(&data, "unused").unwrap();
            assert_eq!(
                found,
                [Found {
                    identity: "acme/network".into(),
                    region: Some("us-east-2".into()),
                    creds: creds(1),
                    format: name,
                }]
            );
        }
    }

    #[test]
    fn env_has_no_expiry_and_takes_the_callers_name() {
        let data = render("acme/network", "eu-west-1", &[SecretFormat::Env], "/mnt", &creds(2));
        let found = read_back(&data, "acme/network").unwrap();
        assert_eq!(found[0].identity, "acme/network");
        assert_eq!(found[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(found[0].creds.access_key_id, "ASIA2");
        assert_eq!(found[0].creds.expiration, Timestamp::UNIX_EPOCH);
        assert_eq!(found[0].format, "env");
    }

    #[test]
    fn several_identities_each_from_their_own_key() {
        let (c1, c2) = (creds(1), creds(2));
        let items = [
            Issued {
                identity: "acme/admin",
                region: "us-east-1",
                creds: &c1,
            },
            Issued {
                identity: "default",
                region: "us-west-2",
                creds: &c2,
            },
        ];
        let data = render_set(&items, &[SecretFormat::Process], "/mnt/aws/");
        let found = read_back(&data, "unused").unwrap();
        let got: Vec<_> = found
            .iter()
            .map(|f| (f.identity.as_str(), f.region.as_deref(), f.creds.access_key_id.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("acme/admin", Some("us-east-1"), "ASIA1"),
                ("default", Some("us-west-2"), "ASIA2")
            ]
        );
        // Files and process together: the static keys are what SDKs use, so they are reported.
        let data = render_set(&items, &[SecretFormat::Files, SecretFormat::Process], "/mnt/aws");
        let found = read_back(&data, "unused").unwrap();
        assert!(found.iter().all(|f| f.format == "files"), "{found:?}");
        assert_eq!(found[1].creds.expiration, c2.expiration);
    }

    #[test]
    fn an_emptied_secret_says_so() {
        assert_eq!(read_back(&BTreeMap::new(), "x"), Err(ReadBackError::Empty));
    }

    #[test]
    fn a_pointer_to_a_missing_key_is_malformed_without_printing_values() {
        let mut data = render("a", "us-east-1", &[SecretFormat::Process], "/mnt", &creds(3));
        data.remove("credential_process.json");
        let err = read_back(&data, "a").unwrap_err().to_string();
        assert!(err.contains("credential_process.json"), "{err}");
        let mut data = render("a", "us-east-1", &[SecretFormat::Process], "/mnt", &creds(3));
        data.insert(
            "credential_process.json".into(),
            r#"{"AccessKeyId":"secret-value"}"#.into(),
        );
        let err = read_back(&data, "a").unwrap_err().to_string();
        assert!(
            err.contains("SecretAccessKey") && !err.contains("secret-value"),
            "{err}"
        );
    }
}
