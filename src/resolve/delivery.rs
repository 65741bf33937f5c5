//! The Identity's `spec.federatedToken`: how a consumer pod gets the token a cloud's SDK
//! exchanges itself. `Projected` (default) stores no token; `Secret` keeps a 1-hour token
//! file in the Secret, whose lifetime rules live here. Only federated chains (Azure) use it;
//! an AWS chain that sets it is refused until AWS gets a token-file mode of its own.

use super::model::SecretPlan;
use super::model::{DEFAULT_TOKEN_MOUNT_PATH, Delivery, GCP_DEFAULT_TOKEN_MOUNT_PATH, TokenSource};
use super::problem::{Problem, Reason};
use super::rules::{self, format_seconds};
use crate::api::{IdentitySpec, Provider, SecretFormat, TokenDelivery};

/// The cloud of a federated chain: its default mount path, token file and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cloud {
    Azure,
    Gcp,
}

impl Cloud {
    fn default_mount_path(self) -> &'static str {
        match self {
            Self::Azure => DEFAULT_TOKEN_MOUNT_PATH,
            Self::Gcp => GCP_DEFAULT_TOKEN_MOUNT_PATH,
        }
    }

    /// The setting the mount path is written into.
    fn token_setting(self) -> &'static str {
        match self {
            Self::Azure => "AZURE_FEDERATED_TOKEN_FILE",
            Self::Gcp => "external_account configuration's credential_source.file",
        }
    }
}

/// A federated chain's formats: `env` (for `envFrom`) unless the Identity names others;
/// `files` writes the same settings as a file; `process` (AWS's `credential_process`) is
/// refused; `gcp-access-token` only on a GCP chain, alone ([`access_token_problem`]).
pub(super) fn federated_formats(
    identity: &IdentitySpec,
    secret: &mut SecretPlan,
    (cloud, delivery): (Cloud, &Delivery),
    problems: &mut Vec<Problem>,
) {
    let named = identity
        .secret
        .as_ref()
        .and_then(|s| s.formats.as_ref())
        .is_some_and(|f| !f.is_empty());
    if !named {
        secret.formats = vec![SecretFormat::Env];
    } else if secret.formats.contains(&SecretFormat::Process) {
        let files = match cloud {
            Cloud::Azure => "files (azure.env)",
            Cloud::Gcp => "files (gcp.env)",
        };
        problems.push(Problem::new(
            "spec.secret.formats",
            Reason::InvalidIdentity,
            format!(
                "process is AWS's credential_process; {} chain's Secret holds settings: use env (keys for \
                 envFrom, the default) or {files}",
                match cloud {
                    Cloud::Azure => "an Azure",
                    Cloud::Gcp => "a GCP",
                }
            ),
        ));
    }
    problems.extend(access_token_problem(&secret.formats, Some((cloud, delivery))));
}

/// Why `formats` may not hold `gcp-access-token` on this chain (`federated`: its cloud and
/// delivery, `None` for AWS). It is refused beside any other format because Terraform's
/// google provider (and gcloud) take `GOOGLE_OAUTH_ACCESS_TOKEN` over
/// `GOOGLE_APPLICATION_CREDENTIALS`: a pod given both would use a token that a running
/// process never renews instead of the configuration it refreshes itself, the same trap as
/// static AWS keys beside `credential_process`. With delivery `Secret` a token file would sit
/// in the Secret for nothing: the controller makes the exchange itself.
pub(super) fn access_token_problem(formats: &[SecretFormat], federated: Option<(Cloud, &Delivery)>) -> Option<Problem> {
    if !formats.contains(&SecretFormat::GcpAccessToken) {
        return None;
    }
    let problem = |message: &str| Some(Problem::new("spec.secret.formats", Reason::InvalidIdentity, message));
    match federated {
        None | Some((Cloud::Azure, _)) => problem(
            "gcp-access-token holds a GCP access token (GOOGLE_OAUTH_ACCESS_TOKEN) and applies to \
             gcp/workload-identity-federation chains only: remove it",
        ),
        Some(_) if formats.len() > 1 => problem(
            "gcp-access-token must be the only format: Terraform's google provider and gcloud use \
             GOOGLE_OAUTH_ACCESS_TOKEN before GOOGLE_APPLICATION_CREDENTIALS, so a pod given both \
             would keep a token it never renews instead of the configuration it refreshes itself; \
             write the access token to a Secret of its own (a second Identity with formats \
             [gcp-access-token]) and give each pod one of them",
        ),
        Some((_, Delivery::Secret)) => problem(
            "gcp-access-token needs no token file in the Secret (the controller makes the \
             exchange): remove spec.federatedToken.delivery: Secret",
        ),
        Some(_) => None,
    }
}

/// Lifetime of a token file kept in the Secret when the provider names none: the
/// TokenRequest cap the controller allows, renewed at half-life.
pub const SECRET_TOKEN_SECONDS: i64 = 3600;
/// Shortest token file kept in the Secret: azure-identity re-reads the file only every
/// 10 minutes, so a shorter token could be expired when it reads it.
pub const MIN_SECRET_TOKEN_SECONDS: i64 = 1800;

/// The delivery of a federated chain (`federated`: its cloud) or `None` for an AWS chain, with its
/// problems; for `Secret`, the token's lifetime in `token` set as the rules above say.
/// `provider` is the chain's provider (for its `spec.expiration`).
pub(super) fn check_delivery(
    identity: &IdentitySpec,
    federated: Option<Cloud>,
    provider: Option<(&str, &Provider)>,
    token: Option<&mut TokenSource>,
    problems: &mut Vec<Problem>,
) -> Option<Delivery> {
    let spec = identity.federated_token.clone().unwrap_or_default();
    let Some(cloud) = federated else {
        if identity.federated_token.is_some() {
            problems.push(Problem::new(
                "spec.federatedToken",
                Reason::InvalidIdentity,
                "applies to chains a cloud's SDK exchanges itself (an azure/oidc or \
                 gcp/workload-identity-federation provider); an AWS chain's Secret holds role \
                 credentials, renewed by the controller: remove it",
            ));
        }
        return None;
    };
    match spec.delivery.unwrap_or(TokenDelivery::Projected) {
        TokenDelivery::Projected => {
            let written = spec.mount_path.as_deref().unwrap_or(cloud.default_mount_path());
            match rules::check_mount_path(written) {
                Ok(mount_path) => Some(Delivery::Projected { mount_path }),
                Err(_) => {
                    problems.push(Problem::new(
                        "spec.federatedToken.mountPath",
                        Reason::InvalidIdentity,
                        format!(
                            "\"{}\" must be an absolute path of letters, digits and . _ / - (no .. and \
                             not /): it is written into the Secret's {}",
                            written.escape_debug(),
                            cloud.token_setting()
                        ),
                    ));
                    None
                }
            }
        }
        TokenDelivery::Secret => {
            if spec.mount_path.is_some() {
                problems.push(Problem::new(
                    "spec.federatedToken.mountPath",
                    Reason::InvalidIdentity,
                    "applies to delivery Projected; with delivery Secret the token file is in the \
                     Secret, at spec.secret.mountPath: remove it",
                ));
            }
            let explicit = provider.and_then(|(name, p)| {
                let text = p.spec.as_ref()?.expiration.as_deref()?;
                Some((name, text, rules::parse_duration(text).ok()?))
            });
            match (explicit, token) {
                (Some((name, text, secs)), _) if secs < MIN_SECRET_TOKEN_SECONDS => {
                    problems.push(Problem::new(
                        format!("auth.providers.{name}.spec.expiration"),
                        Reason::InvalidIdentity,
                        format!(
                            "{text} is too short for a token file kept in the Secret \
                             (spec.federatedToken.delivery: Secret): azure-identity re-reads the file \
                             only every 10 minutes; use at least {} (default {}), or delivery Projected",
                            format_seconds(MIN_SECRET_TOKEN_SECONDS),
                            format_seconds(SECRET_TOKEN_SECONDS)
                        ),
                    ));
                    None
                }
                (None, Some(token)) => {
                    token.expiration_seconds = SECRET_TOKEN_SECONDS;
                    Some(Delivery::Secret)
                }
                _ => Some(Delivery::Secret),
            }
        }
    }
}

#[cfg(test)]
mod access_token_tests {
    use super::*;

    #[test]
    fn the_access_token_format_is_for_gcp_chains_alone() {
        let only = [SecretFormat::GcpAccessToken];
        let projected = Delivery::Projected {
            mount_path: "/t".into(),
        };
        assert!(access_token_problem(&only, Some((Cloud::Gcp, &projected))).is_none());
        assert!(access_token_problem(&[SecretFormat::Env], None).is_none());
        for federated in [None, Some((Cloud::Azure, &projected))] {
            let p = access_token_problem(&only, federated).expect("refused");
            assert_eq!(p.path, "spec.secret.formats");
            assert!(
                p.message.contains("gcp/workload-identity-federation chains only"),
                "{}",
                p.message
            );
        }
        let both = [SecretFormat::Files, SecretFormat::GcpAccessToken];
        assert!(access_token_problem(&both, Some((Cloud::Gcp, &projected))).is_some());
    }
}
