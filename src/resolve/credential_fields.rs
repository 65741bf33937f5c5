//! Secrets never belong in a custom resource: anyone allowed to `view` a namespace reads
//! AuthProfiles and Identities. Refused: a provider's `password`, static keys in an
//! identity's `credentials`, and `env` entries named like credentials. The CRD refuses the
//! same at admission (CEL rules in `crate::api`); these checks give `validate` and the
//! status the same answer, with the path. Messages never contain the value.

use super::problem::Reason;
use crate::api::{CREDENTIAL_ENV_ENDINGS, CREDENTIAL_ENV_PARTS, EnvVar, IdentityDef, Provider, STATIC_KEY_FIELDS};

/// True when an environment variable's name looks like a credential: it contains one of
/// [`CREDENTIAL_ENV_PARTS`] or ends with one of [`CREDENTIAL_ENV_ENDINGS`], in any case
/// (`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ACCESS_KEY_ID`, `GITHUB_TOKEN`,
/// `DB_PASSWORD`, ...). `AWS_WEB_IDENTITY_TOKEN_FILE` (a path) is not. The CRD's CEL rule
/// tests the same lists.
pub fn is_credential_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    CREDENTIAL_ENV_PARTS.iter().any(|part| upper.contains(part))
        || CREDENTIAL_ENV_ENDINGS.iter().any(|end| upper.ends_with(end))
}

/// `(field, reason-free message)` for a provider's secret, if it holds one.
pub(crate) fn provider_secret(provider: &Provider) -> Option<(&'static str, String)> {
    provider.password.as_ref().map(|_| {
        (
            "password",
            "refused: a password does not belong in an AuthProfile, which anyone who may view the \
             namespace can read; remove it (SAML needs a person at a browser and cannot run in a \
             cluster; on a workstation Atmos asks for the password when none is set)"
                .to_owned(),
        )
    })
}

/// `(field, message)` for each secret an identity holds: static keys in `credentials`,
/// credential-named `env` entries (`env[i]`).
pub(crate) fn identity_secrets(def: &IdentityDef) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if let Some(credentials) = def.credentials.as_ref().and_then(|c| c.as_object()) {
        for key in STATIC_KEY_FIELDS {
            if credentials.contains_key(*key) {
                found.push((
                    format!("credentials.{key}"),
                    "refused: static AWS keys do not belong in a custom resource, which anyone who may \
                     view the namespace can read; remove them. Atmos keeps an aws/user's keys in its \
                     keyring on a workstation (atmos auth user configure); in a cluster use kind \
                     aws/assume-role via a kubernetes/oidc provider, which stores no keys"
                        .to_owned(),
                ));
            }
        }
    }
    found.extend(env_secrets(def.env.as_deref().unwrap_or_default()));
    found
}

/// `(env[i], message)` for each credential-named entry of an `env` list.
pub(crate) fn env_secrets(env: &[EnvVar]) -> Vec<(String, String)> {
    env.iter()
        .enumerate()
        .filter(|(_, e)| is_credential_name(&e.key))
        .map(|(i, e)| {
            (
                format!("env[{i}]"),
                format!(
                    "refused: {} is named like a credential, and a custom resource is readable by anyone \
                     who may view the namespace; remove it. The controller writes the role's credentials \
                     into the Identity's Secret; other secrets belong in a Kubernetes Secret the consumer \
                     pod reads (envFrom or secretKeyRef)",
                    e.key
                ),
            )
        })
        .collect()
}

/// The reason of a secret found in the profile (`InvalidProfile`) or the Identity
/// (`InvalidIdentity`): a field is wrong, the message says which and why.
pub(crate) fn reason(in_identity: bool) -> Reason {
    if in_identity {
        Reason::InvalidIdentity
    } else {
        Reason::InvalidProfile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names() {
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "aws_secret_access_key",
            "GITHUB_TOKEN",
            "TF_VAR_db_password",
            "ARM_CLIENT_SECRET",
            "DATADOG_API_KEY",
            "SSH_PRIVATE_KEY",
            "ARM_ACCESS_KEY",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in [
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_SDK_LOAD_CONFIG",
            "AWS_REGION",
            "AWS_PROFILE",
            "TF_VAR_stage",
            "AWS_SHARED_CREDENTIALS_FILE",
            "TOKEN_URL",
        ] {
            assert!(!is_credential_name(name), "{name}");
        }
    }

    #[test]
    fn messages_never_carry_values() {
        let def: IdentityDef = serde_json::from_value(serde_json::json!({
            "kind": "aws/user",
            "credentials": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t", "region": "us-east-1"},
            "env": [{"key": "AWS_SESSION_TOKEN", "value": "tok3n"}, {"key": "TF_VAR_stage", "value": "prod"}]
        }))
        .unwrap();
        let found = identity_secrets(&def);
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["credentials.access_key_id", "credentials.secret_access_key", "env[0]"]
        );
        let text = format!("{found:?}");
        for value in ["AKIAEXAMPLE", "s3cr3t", "tok3n"] {
            assert!(!text.contains(value), "{text}");
        }
        let provider: Provider =
            serde_json::from_value(serde_json::json!({"kind": "aws/saml", "password": "hunter2"})).unwrap();
        let (field, message) = provider_secret(&provider).unwrap();
        assert_eq!(field, "password");
        assert!(!message.contains("hunter2"));
    }
}
