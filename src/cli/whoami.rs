//! `whoami NAME`: reads the Identity's Secret with the caller's own rights, as a pod that
//! mounts it would, and asks STS who the credentials are (`GetCallerIdentity`).

use std::process::ExitCode;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde::Serialize;

use super::kube_args::{KubeArgs, api_error};
use super::status::{Output, pretty};
use super::status_view::when;
use crate::api::Identity;
use crate::exchange::sts::caller_identity;
use crate::output::read_back::{ReadBackError, read_back};

/// `whoami NAME`.
#[derive(clap::Args, Debug)]
pub struct WhoamiArgs {
    /// The Identity's name.
    pub name: String,
    /// STS endpoint to ask (default: AWS's regional endpoint of each identity's region).
    #[arg(long, env = "AWS_ENDPOINT_URL_STS")]
    pub endpoint_url: Option<String>,
    /// Region when the Secret names none.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// `table` (default) or `json`.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// One identity of the Secret and who STS says it is.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Who {
    identity: String,
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    /// From the Secret (`env` does not record it).
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<String>,
    /// STS's refusal, when it refused (expired or revoked credentials, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Runs `whoami`.
pub fn run(args: &WhoamiArgs) -> ExitCode {
    super::block_on(async {
        let out = whoami(args).await?;
        print!("{out}");
        Ok(())
    })
}

/// The cloud whose settings a Secret's data holds, when it is not AWS credentials (any key
/// only that cloud's Secrets hold).
fn federated_settings(data: &std::collections::BTreeMap<String, String>) -> Option<(&'static str, &'static str)> {
    let only = |keys: &[&str]| {
        data.keys()
            .any(|k| keys.contains(&k.as_str()) && !crate::output::render::ALL_KEYS.contains(&k.as_str()))
    };
    if data.contains_key(crate::output::gcp::CREDENTIALS_JSON) {
        Some(("GCP", "at Google STS and IAM Credentials"))
    } else if only(&crate::output::azure::ALL_KEYS) {
        Some(("Azure", "at Entra"))
    } else {
        None
    }
}

async fn whoami(args: &WhoamiArgs) -> Result<String, String> {
    let (client, ns) = args.kube.connect().await?;
    let name = &args.name;
    let identity = Api::<Identity>::namespaced(client.clone(), &ns)
        .get(name)
        .await
        .map_err(|e| api_error(&format!("Identity {ns}/{name}"), &e))?;
    let status = identity.status.clone().unwrap_or_default();
    let secret_name = status
        .secret_name
        .clone()
        .or_else(|| identity.spec.secret.as_ref().and_then(|s| s.name.clone()))
        .unwrap_or_else(|| name.clone());
    let secret = Api::<Secret>::namespaced(client, &ns)
        .get(&secret_name)
        .await
        .map_err(|e| api_error(&format!("Secret {ns}/{secret_name} (Identity {name}'s)"), &e))?;
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    if let Some((cloud, at)) = federated_settings(&data) {
        return Err(format!(
            "Secret {ns}/{secret_name} holds {cloud} settings, not AWS credentials: whoami calls AWS STS; \
             the controller verifies the {cloud} federation {at} itself (see `status {name}`)"
        ));
    }
    let env_identity = status.identity.clone().unwrap_or_else(|| name.clone());
    let found = read_back(&data, &env_identity).map_err(|e| match e {
        ReadBackError::Empty => {
            let revoked = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::output::labels::REVOKED).cloned());
            match revoked {
                Some(reason) => {
                    format!("Secret {ns}/{secret_name} was emptied by the controller ({reason}): see `status {name}`")
                }
                None => format!("Secret {ns}/{secret_name}: {e}; see `status {name}`"),
            }
        }
        other => format!("Secret {ns}/{secret_name}: {other}"),
    })?;
    let mut who = Vec::new();
    for f in found {
        let region = f.region.clone().unwrap_or_else(|| args.region.clone());
        let answer = caller_identity(&f.creds, &region, args.endpoint_url.as_deref()).await;
        let expiration =
            (f.creds.expiration != Timestamp::UNIX_EPOCH).then(|| crate::util::time::rfc3339(f.creds.expiration));
        let (arn, account, error) = match answer {
            Ok(c) => (Some(c.arn), Some(c.account), None),
            Err(e) => (None, None, Some(e.to_string())),
        };
        who.push(Who {
            identity: f.identity,
            format: f.format,
            arn,
            account,
            expiration,
            error,
        });
    }
    if args.output == Output::Json {
        return Ok(pretty(&who));
    }
    let now = Timestamp::now();
    let mut out = String::new();
    for w in &who {
        out.push_str(&format!("{} (Secret {ns}/{secret_name}, {})\n", w.identity, w.format));
        match (&w.arn, &w.error) {
            (Some(arn), _) => {
                out.push_str(&format!("  ARN:      {arn}\n"));
                out.push_str(&format!("  Account:  {}\n", w.account.as_deref().unwrap_or("-")));
            }
            (None, Some(err)) => out.push_str(&format!("  STS refused these credentials: {err}\n")),
            (None, None) => {}
        }
        let exp = w
            .expiration
            .as_deref()
            .map(|e| when(e, now))
            .unwrap_or_else(|| "not recorded in this format".into());
        out.push_str(&format!("  Expires:  {exp}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn azure_and_gcp_secrets_are_told_apart_from_aws_credentials() {
        let azure = BTreeMap::from([("ARM_USE_OIDC".to_owned(), "true".to_owned())]);
        assert_eq!(super::federated_settings(&azure).map(|c| c.0), Some("Azure"));
        // consumer.json is in both clouds' Secrets: the configuration tells GCP's apart.
        let gcp = BTreeMap::from([
            ("gcp-credentials.json".to_owned(), "{}".to_owned()),
            ("consumer.json".to_owned(), "{}".to_owned()),
        ]);
        assert_eq!(super::federated_settings(&gcp).map(|c| c.0), Some("GCP"));
        let aws = BTreeMap::from([
            ("config".to_owned(), String::new()),
            ("credential_process.json".to_owned(), String::new()),
        ]);
        assert_eq!(super::federated_settings(&aws), None);
    }
}
