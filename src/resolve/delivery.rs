//! The Identity's `spec.federatedToken`: how a consumer pod gets the token a cloud's SDK
//! exchanges itself. `Projected` (default) stores no token; `Secret` keeps a 1-hour token
//! file in the Secret, whose lifetime rules live here. Only federated chains (Azure) use it;
//! an AWS chain that sets it is refused until AWS gets a token-file mode of its own.

use super::model::SecretPlan;
use super::model::{DEFAULT_TOKEN_MOUNT_PATH, Delivery, TokenSource};
use super::problem::{Problem, Reason};
use super::rules::{self, format_seconds};
use crate::api::{IdentitySpec, Provider, SecretFormat, TokenDelivery};

/// An Azure chain's formats: `env` (for `envFrom`) unless the Identity names others;
/// `files` writes the same settings as `azure.env`; `process` (AWS's `credential_process`)
/// is refused.
pub(super) fn azure_formats(identity: &IdentitySpec, secret: &mut SecretPlan, problems: &mut Vec<Problem>) {
    let named = identity
        .secret
        .as_ref()
        .and_then(|s| s.formats.as_ref())
        .is_some_and(|f| !f.is_empty());
    if !named {
        secret.formats = vec![SecretFormat::Env];
    } else if secret.formats.contains(&SecretFormat::Process) {
        problems.push(Problem::new(
            "spec.secret.formats",
            Reason::InvalidIdentity,
            "process is AWS's credential_process; an Azure chain's Secret holds settings: use env (keys for \
             envFrom, the default) or files (azure.env)",
        ));
    }
}

/// Lifetime of a token file kept in the Secret when the provider names none: the
/// TokenRequest cap the controller allows, renewed at half-life.
pub const SECRET_TOKEN_SECONDS: i64 = 3600;
/// Shortest token file kept in the Secret: azure-identity re-reads the file only every
/// 10 minutes, so a shorter token could be expired when it reads it.
pub const MIN_SECRET_TOKEN_SECONDS: i64 = 1800;

/// The delivery of a federated chain (`federated`) or `None` for an AWS chain, with its
/// problems; for `Secret`, the token's lifetime in `token` set as the rules above say.
/// `provider` is the chain's provider (for its `spec.expiration`).
pub(super) fn check_delivery(
    identity: &IdentitySpec,
    federated: bool,
    provider: Option<(&str, &Provider)>,
    token: Option<&mut TokenSource>,
    problems: &mut Vec<Problem>,
) -> Option<Delivery> {
    let spec = identity.federated_token.clone().unwrap_or_default();
    if !federated {
        if identity.federated_token.is_some() {
            problems.push(Problem::new(
                "spec.federatedToken",
                Reason::InvalidIdentity,
                "applies to chains a cloud's SDK exchanges itself (an azure/oidc provider); an AWS \
                 chain's Secret holds role credentials, renewed by the controller: remove it",
            ));
        }
        return None;
    }
    match spec.delivery.unwrap_or(TokenDelivery::Projected) {
        TokenDelivery::Projected => {
            let written = spec.mount_path.as_deref().unwrap_or(DEFAULT_TOKEN_MOUNT_PATH);
            match rules::check_mount_path(written) {
                Ok(mount_path) => Some(Delivery::Projected { mount_path }),
                Err(_) => {
                    problems.push(Problem::new(
                        "spec.federatedToken.mountPath",
                        Reason::InvalidIdentity,
                        format!(
                            "\"{}\" must be an absolute path of letters, digits and . _ / - (no .. and \
                             not /): it is written into the Secret's AZURE_FEDERATED_TOKEN_FILE",
                            written.escape_debug()
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
