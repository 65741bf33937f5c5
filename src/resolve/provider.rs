//! The provider check: kind, audience, token lifetime, ServiceAccount. (Its `region` is not
//! used, as in Atmos: the walk warns when it differs from the first link's; nor is its
//! `endpoint_url`, which Atmos uses only for SSO and SAML logins: a warning says so.)
//! Used by every chain walk and, for providers no chain reaches, by the profile report.

use super::Settings;
use super::kinds::{self, KindProblem};
use super::model::TokenSource;
use super::problem::{Problem, Reason};
use super::rules::{self, format_seconds};
use crate::api::Provider;

fn path(provider: &str, field: &str) -> String {
    format!("auth.providers.{provider}.{field}")
}

/// The provider's kind: a problem at `auth.providers.<name>.kind` unless it is the kind the
/// controller runs. Reason `InvalidProfile` for a missing or unknown kind,
/// `UnsupportedKind` for an Atmos kind that cannot run in a cluster.
pub(super) fn check_kind(name: &str, provider: &Provider) -> Result<(), Problem> {
    kinds::check_provider_kind(&provider.kind).map_err(|problem| {
        let reason = match problem {
            KindProblem::Missing(_) | KindProblem::Unknown(_) => Reason::InvalidProfile,
            KindProblem::CannotRun(_) => Reason::UnsupportedKind,
        };
        Problem::new(path(name, "kind"), reason, problem.into_message())
    })
}

/// Checks provider `name`, pushing what is wrong to `problems`; the token request when it
/// passes. `service_account` is the Identity's `serviceAccountName` (checked by the
/// caller); `require_sa`: a missing ServiceAccount is a problem (not when validating a
/// profile on its own).
pub(super) fn check_provider(
    name: &str,
    provider: &Provider,
    settings: &Settings,
    service_account: Option<&str>,
    require_sa: bool,
    problems: &mut Vec<Problem>,
) -> Option<TokenSource> {
    if let Err(problem) = check_kind(name, provider) {
        problems.push(problem);
        return None;
    }
    let before = problems.len();

    let spec = provider.spec.clone().unwrap_or_default();
    // A known key of another type is kept among the others (api::free_form::take).
    for key in ["audience", "service_account", "expiration"] {
        if let Some(value) = spec.extra.get(key) {
            problems.push(Problem::new(
                path(name, &format!("spec.{key}")),
                Reason::InvalidProfile,
                format!("{key} must be a string, not {value}; quote it"),
            ));
        }
    }
    // Atmos's default per kind: Entra's federated-credential audience for azure/oidc.
    // For GCP, token_source.audience else the pool provider's name (its keys' problems are
    // reported by the GCP check, so a missing one gives no audience problem here).
    let audience = match provider.kind.as_str() {
        kinds::GCP_PROVIDER_KIND => super::gcp::token_audience(&spec.extra),
        kinds::AZURE_PROVIDER_KIND => Some(
            spec.audience
                .clone()
                .unwrap_or_else(|| super::settings::AZURE_DEFAULT_AUDIENCE.to_owned()),
        ),
        _ => Some(
            spec.audience
                .clone()
                .unwrap_or_else(|| rules::DEFAULT_AUDIENCE.to_owned()),
        ),
    };
    let audience_missing = audience.is_none();
    let audience = audience.unwrap_or_default();
    if !audience_missing && !settings.audience_allowed(&audience) {
        // A GCP provider's audience is token_source.audience, else the pool provider's name.
        let field = if provider.kind == kinds::GCP_PROVIDER_KIND {
            "spec.token_source.audience"
        } else {
            "spec.audience"
        };
        problems.push(Problem::new(
            path(name, field),
            Reason::AudienceNotAllowed,
            format!(
                "audience \"{audience}\" is not allowed: the controller requests tokens only for {}; \
                 use one of them, or ask the operator to allow it",
                settings.allowed_audiences_text()
            ),
        ));
    }

    let min_token = settings.min_token_seconds;
    let expiration_seconds = match &spec.expiration {
        None => rules::DEFAULT_TOKEN_SECONDS.max(min_token),
        Some(text) => match rules::parse_duration(text) {
            Err(detail) => {
                problems.push(Problem::new(
                    path(name, "spec.expiration"),
                    Reason::InvalidProfile,
                    detail,
                ));
                0
            }
            Ok(secs) if secs < min_token => {
                problems.push(Problem::new(
                    path(name, "spec.expiration"),
                    Reason::InvalidProfile,
                    format!(
                        "{text} is shorter than the shortest token lifetime allowed ({}, the \
                         TokenRequest minimum); use at least {}",
                        format_seconds(min_token),
                        format_seconds(min_token)
                    ),
                ));
                0
            }
            Ok(secs) if secs > rules::MAX_TOKEN_SECONDS => {
                problems.push(Problem::new(
                    path(name, "spec.expiration"),
                    Reason::InvalidProfile,
                    format!(
                        "{text} is longer than {}, the longest token lifetime allowed: the token is \
                         used once, for the first STS call, and a longer one only widens what a leaked \
                         token allows; use at most {} (default {})",
                        format_seconds(rules::MAX_TOKEN_SECONDS),
                        format_seconds(rules::MAX_TOKEN_SECONDS),
                        format_seconds(rules::DEFAULT_TOKEN_SECONDS)
                    ),
                ));
                0
            }
            Ok(secs) => secs,
        },
    };

    let service_account = match (service_account, &spec.service_account) {
        (Some(sa), _) => Some(sa.to_owned()), // checked by the caller (spec.serviceAccountName)
        (None, Some(sa)) => {
            if let Err(rule) = rules::check_dns1123_subdomain(sa) {
                problems.push(Problem::new(
                    path(name, "spec.service_account"),
                    Reason::InvalidProfile,
                    format!("\"{sa}\" is not a valid ServiceAccount name: {rule}"),
                ));
            }
            Some(sa.clone())
        }
        (None, None) => {
            if require_sa {
                problems.push(Problem::new(
                    "spec.serviceAccountName",
                    Reason::InvalidIdentity,
                    "no ServiceAccount: set spec.serviceAccountName or the provider's spec.service_account",
                ));
            }
            None
        }
    };

    if problems.len() != before || audience_missing {
        return None;
    }
    service_account.map(|service_account| TokenSource {
        provider: name.to_owned(),
        service_account,
        audience,
        expiration_seconds,
    })
}
