//! Chain resolution and validation: `[provider, identity, ..., target]` and the STS calls
//! it takes, checked against Atmos's, AWS's and the controller's rules.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Settings;
use super::kinds;
use super::merge::merge_over;
use super::model::{Link, Resolved, SecretPlan, TokenSource};
use super::problem::{Problem, Reason};
use super::rules::{self, format_seconds};
use crate::api::{AuthProfileSpec, DEFAULT_MOUNT_PATH, IdentityDef, IdentitySpec, SecretFormat};

/// The one provider kind the controller runs.
pub(crate) use crate::settings::PROVIDER_KIND;
/// The one identity kind the controller runs.
pub(crate) const IDENTITY_KIND: &str = "aws/assume-role";

/// Longest list of names quoted in a message.
const MAX_LISTED: usize = 20;

/// Resolves one `Identity` (`identity`, named `identity_object_name`) against its profile:
/// picks the target identity (`spec.identity`, else the profile's single `default: true`),
/// deep-merges the Identity's overrides over it, follows `via.identity` to a `via.provider`
/// and checks every link, the provider and the Identity's own fields.
///
/// Returns every problem found, in a stable order: target selection, the chain's structure
/// (target towards provider), the provider, each link (provider towards target), then the
/// Identity's own fields.
pub fn resolve(
    profile: &AuthProfileSpec,
    identity: &IdentitySpec,
    identity_object_name: &str,
    settings: &Settings,
) -> Result<Resolved, Vec<Problem>> {
    let mut problems = Vec::new();

    let target = match select_target(profile, identity) {
        Ok(target) => Some(target),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };

    let mut outcome = None;
    if let Some((name, def)) = target {
        let overrides = serde_json::to_value(&identity.overrides).unwrap_or(Value::Null);
        match merge_over(def, &identity.overrides) {
            Ok(merged) => {
                let mut checker = Checker {
                    profile,
                    settings,
                    target: name,
                    overrides: Some(&overrides),
                    problems: Vec::new(),
                };
                let chain = checker.check(&merged, identity.service_account_name.as_deref(), true);
                problems.append(&mut checker.problems);
                outcome = Some((name, chain));
            }
            Err(err) => problems.push(Problem::new(
                "spec",
                Reason::InvalidIdentity,
                format!(
                    "the Identity's fields cannot be merged over identity {name} of the profile \
                     ({err}); fix the overridden fields"
                ),
            )),
        }
    }

    if let Some(sa) = &identity.service_account_name
        && let Err(rule) = rules::check_dns1123_subdomain(sa)
    {
        problems.push(Problem::new(
            "spec.serviceAccountName",
            Reason::InvalidIdentity,
            format!("\"{sa}\" is not a valid ServiceAccount name: {rule}"),
        ));
    }

    let refresh_before_seconds =
        check_refresh_before(identity, &mut problems).or(settings.default_refresh_before_seconds);
    let secret = check_secret(identity, identity_object_name, &mut problems);

    match (outcome, secret) {
        (Some((name, chain)), Some(secret)) if problems.is_empty() => {
            match (chain.token, chain.links.last()) {
                (Some(token), Some(last)) => Ok(Resolved {
                    identity: name.to_owned(),
                    region: last.region.clone(),
                    chain: chain.names,
                    token,
                    links: chain.links,
                    secret,
                    refresh_before_seconds,
                }),
                // Unreachable when no problem was found; reported rather than assumed.
                _ => Err(vec![Problem::new(
                    format!("auth.identities.{name}"),
                    Reason::InvalidProfile,
                    "the chain did not resolve to a provider and at least one link",
                )]),
            }
        }
        _ => Err(problems),
    }
}

/// The target identity: `spec.identity`, else the profile's single `default: true`.
fn select_target<'a>(
    profile: &'a AuthProfileSpec,
    identity: &IdentitySpec,
) -> Result<(&'a str, &'a IdentityDef), Problem> {
    let profile_name = &identity.profile;
    if let Some(named) = &identity.identity {
        return match profile.identities.get_key_value(named) {
            Some((name, def)) => Ok((name.as_str(), def)),
            None => Err(Problem::new(
                "spec.identity",
                Reason::IdentityNotFound,
                if profile.identities.is_empty() {
                    format!("identity \"{named}\" is not in AuthProfile {profile_name}, which has no identities")
                } else {
                    format!(
                        "identity \"{named}\" is not in AuthProfile {profile_name}; name one of its identities: {}",
                        list(profile.identities.keys())
                    )
                },
            )),
        };
    }
    let defaults = default_identities(profile);
    match defaults.as_slice() {
        [one] => profile
            .identities
            .get_key_value(*one)
            .map(|(name, def)| (name.as_str(), def))
            .ok_or_else(|| Problem::new("spec.identity", Reason::NoDefaultIdentity, "default identity vanished")),
        [] => Err(Problem::new(
            "spec.identity",
            Reason::NoDefaultIdentity,
            if profile.identities.is_empty() {
                format!("not set, and AuthProfile {profile_name} has no identities")
            } else {
                format!(
                    "not set, and AuthProfile {profile_name} has no identity marked default: true; \
                     name one of its identities here ({}) or mark one default: true in the profile",
                    list(profile.identities.keys())
                )
            },
        )),
        several => Err(Problem::new(
            "spec.identity",
            Reason::MultipleDefaultIdentities,
            format!(
                "not set, and AuthProfile {profile_name} marks several identities default: true ({}); \
                 name one here or keep a single default in the profile",
                list(several.iter())
            ),
        )),
    }
}

/// Names of the identities marked `default: true`, in name order.
pub(crate) fn default_identities(profile: &AuthProfileSpec) -> Vec<&str> {
    profile
        .identities
        .iter()
        .filter(|(_, def)| def.default == Some(true))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// `a, b, c` (at most [`MAX_LISTED`] names, then `...`).
pub(crate) fn list<I, S>(names: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out: Vec<String> = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        if i == MAX_LISTED {
            out.push("...".to_owned());
            break;
        }
        out.push(name.as_ref().to_owned());
    }
    out.join(", ")
}

/// What a chain check found.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    /// `[provider, identity, ..., target]` when the walk reached an existing provider.
    pub names: Vec<String>,
    /// Every link that passed its checks, provider side first.
    pub links: Vec<Link>,
    /// The token request, when the provider passed its checks.
    pub token: Option<TokenSource>,
    /// Every provider the walk reached (existing or not).
    pub provider: Option<String>,
}

/// Checks one target identity's chain, collecting problems.
pub(crate) struct Checker<'a> {
    pub profile: &'a AuthProfileSpec,
    pub settings: &'a Settings,
    /// Name of the target identity.
    pub target: &'a str,
    /// The Identity's overrides as JSON: fields set there are reported at `spec.<field>`
    /// with reason `InvalidIdentity`.
    pub overrides: Option<&'a Value>,
    pub problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    /// Path and reason for `field` of identity `name`: the Identity's own `spec.<field>`
    /// when the Identity set it, else the profile's `auth.identities.<name>.<field>`.
    fn field(&self, name: &str, field: &str) -> (String, Reason) {
        if name == self.target
            && let Some(overrides) = self.overrides
        {
            let pointer = format!("/{}", field.replace('.', "/"));
            if overrides.pointer(&pointer).is_some_and(|v| !v.is_null()) {
                return (format!("spec.{field}"), Reason::InvalidIdentity);
            }
        }
        (format!("auth.identities.{name}.{field}"), Reason::InvalidProfile)
    }

    fn identity_problem(&mut self, name: &str, field: &str, message: impl Into<String>) {
        let (path, reason) = self.field(name, field);
        self.problems.push(Problem::new(path, reason, message));
    }

    fn provider_problem(&mut self, provider: &str, field: &str, reason: Reason, message: impl Into<String>) {
        let path = if field.is_empty() {
            format!("auth.providers.{provider}")
        } else {
            format!("auth.providers.{provider}.{field}")
        };
        self.problems.push(Problem::new(path, reason, message));
    }

    /// Checks the chain of `self.target`, whose (merged) definition is `target_def`.
    /// `service_account` is the Identity's `serviceAccountName`; `require_sa`: a missing
    /// ServiceAccount is a problem (not when validating a profile on its own).
    pub fn check(&mut self, target_def: &IdentityDef, service_account: Option<&str>, require_sa: bool) -> Chain {
        if let Err(detail) = rules::check_identity_name(self.target) {
            self.problems.push(Problem::new(
                format!("auth.identities.{}", self.target),
                Reason::InvalidProfile,
                detail,
            ));
        }

        // Walk from the target towards the provider.
        let mut walk: Vec<(&str, IdentityDef)> = vec![(self.target, target_def.clone())];
        let mut provider: Option<String> = None;
        while let Some((name, def)) = walk.last().map(|(n, d)| (*n, d.clone())) {
            let runnable = self.check_identity_kind(name, &def);
            let via = def.via.clone().unwrap_or_default();
            match (via.provider, via.identity) {
                (Some(_), Some(_)) => {
                    let note = self.via_override_note(name);
                    self.identity_problem(
                        name,
                        "via",
                        format!(
                            "both provider and identity set; set exactly one: via.provider to start \
                             from a provider, or via.identity to chain from another identity{note}"
                        ),
                    );
                    break;
                }
                (None, None) => {
                    // A kind that is not runnable (aws/ambient, aws/user) may have no `via`:
                    // its kind problem says enough.
                    if runnable || def.kind.is_empty() {
                        self.identity_problem(
                            name,
                            "via",
                            "neither provider nor identity set; set exactly one: via.provider (a \
                             provider of this profile) or via.identity (another identity of this profile)",
                        );
                    }
                    break;
                }
                (Some(p), None) => {
                    provider = Some(p);
                    break;
                }
                (None, Some(next)) => {
                    if let Some(pos) = walk.iter().position(|(n, _)| *n == next) {
                        let cycle: Vec<&str> = walk[pos..]
                            .iter()
                            .map(|(n, _)| *n)
                            .chain(std::iter::once(next.as_str()))
                            .collect();
                        self.identity_problem(
                            name,
                            "via.identity",
                            format!(
                                "circular dependency in the identity chain: {}; one identity of the \
                                 cycle must start from a provider (via.provider)",
                                cycle.join(" -> ")
                            ),
                        );
                        break;
                    }
                    match self.profile.identities.get_key_value(&next) {
                        Some((next_name, next_def)) => walk.push((next_name.as_str(), next_def.clone())),
                        None => {
                            self.identity_problem(
                                name,
                                "via.identity",
                                format!(
                                    "identity \"{next}\" does not exist in the profile; identities: {}",
                                    list(self.profile.identities.keys())
                                ),
                            );
                            break;
                        }
                    }
                }
            }
        }

        let mut chain = Chain::default();

        // The provider, reached by the last identity of the walk.
        let mut parent_region: Option<String> = None;
        if let (Some(pname), Some((last, _))) = (&provider, walk.last()) {
            let last = *last;
            chain.provider = Some(pname.clone());
            match self.profile.providers.get_key_value(pname) {
                None => self.identity_problem(
                    last,
                    "via.provider",
                    if self.profile.providers.is_empty() {
                        format!("provider \"{pname}\" does not exist: the profile has no providers")
                    } else {
                        format!(
                            "provider \"{pname}\" does not exist in the profile; providers: {}",
                            list(self.profile.providers.keys())
                        )
                    },
                ),
                Some((pname, p)) => {
                    chain.names.push(pname.clone());
                    chain.names.extend(walk.iter().rev().map(|(n, _)| (*n).to_owned()));
                    parent_region = p.region.clone();
                    chain.token = self.check_provider(pname, p, service_account, require_sa);
                }
            }
        }

        // Each link, provider side first.
        for (name, def) in walk.iter().rev() {
            let region = self.check_link(name, def, parent_region.as_deref(), &mut chain.links);
            parent_region = Some(region);
        }
        chain
    }

    /// Reports a missing or unsupported identity kind; true when the kind is runnable.
    fn check_identity_kind(&mut self, name: &str, def: &IdentityDef) -> bool {
        let message = match def.kind.as_str() {
            IDENTITY_KIND => return true,
            "" => {
                self.identity_problem(
                    name,
                    "kind",
                    format!("kind is required; the controller runs kind {IDENTITY_KIND}"),
                );
                return false;
            }
            "aws/permission-set" => format!(
                "kind aws/permission-set cannot run in a cluster: it needs an AWS IAM Identity Center \
                 (SSO) login by a person; use kind {IDENTITY_KIND} via a {PROVIDER_KIND} provider"
            ),
            "aws/user" => format!(
                "kind aws/user cannot run in a cluster: the controller does not store long-lived \
                 access keys; use kind {IDENTITY_KIND} via a {PROVIDER_KIND} provider"
            ),
            "aws/assume-root" => format!(
                "kind aws/assume-root cannot run in a cluster: it needs a management-account session \
                 for a root task, which the controller does not hold; use kind {IDENTITY_KIND}"
            ),
            other if !kinds::IDENTITY_KINDS.contains(&other) => {
                let message = kinds::unknown_kind_message(other, "identity", kinds::IDENTITY_KINDS);
                self.identity_problem(name, "kind", message);
                return false;
            }
            "aws/ambient" => format!(
                "kind aws/ambient is for Atmos running inside a consumer pod, where it uses the \
                 credentials the controller mounted; the controller itself runs kind {IDENTITY_KIND}"
            ),
            other => format!(
                "kind {other} cannot run in a cluster; the controller runs kind {IDENTITY_KIND} via a \
                 {PROVIDER_KIND} provider"
            ),
        };
        let (path, _) = self.field(name, "kind");
        self.problems.push(Problem::new(path, Reason::UnsupportedKind, message));
        false
    }

    fn via_override_note(&self, name: &str) -> &'static str {
        let (path, _) = self.field(name, "via");
        if path.starts_with("spec.") {
            " (the Identity's spec.via is merged key by key over the profile's via, so it cannot \
             switch between provider and identity; define another identity in the profile instead)"
        } else {
            ""
        }
    }

    /// Checks a provider; the token request when it passes.
    fn check_provider(
        &mut self,
        pname: &str,
        provider: &crate::api::Provider,
        service_account: Option<&str>,
        require_sa: bool,
    ) -> Option<TokenSource> {
        let before = self.problems.len();
        match provider.kind.as_str() {
            PROVIDER_KIND => {}
            "" => {
                self.provider_problem(
                    pname,
                    "kind",
                    Reason::InvalidProfile,
                    format!("kind is required; the controller runs providers of kind {PROVIDER_KIND}"),
                );
                return None;
            }
            other if !kinds::PROVIDER_KINDS.contains(&other) => {
                let message = kinds::unknown_kind_message(other, "provider", kinds::PROVIDER_KINDS);
                self.provider_problem(pname, "kind", Reason::InvalidProfile, message);
                return None;
            }
            other => {
                let why = match other {
                    "github/oidc" => "github/oidc exists only inside a GitHub Actions job; use kind \
                                      kubernetes/oidc with spec.service_account, or keep github/oidc in \
                                      Atmos itself inside the job"
                        .to_owned(),
                    "aws/iam-identity-center" => "SSO needs a person to log in; use kind \
                                                  kubernetes/oidc with spec.service_account"
                        .to_owned(),
                    "aws/saml" => "SAML needs a person to log in through a browser; use kind \
                                   kubernetes/oidc with spec.service_account"
                        .to_owned(),
                    _ => format!(
                        "the controller runs only {PROVIDER_KIND}; use kind {PROVIDER_KIND} with spec.service_account"
                    ),
                };
                self.provider_problem(
                    pname,
                    "kind",
                    Reason::UnsupportedKind,
                    format!("kind {other} cannot run in a cluster: {why}"),
                );
                return None;
            }
        }

        if let Some(region) = &provider.region
            && let Err(detail) = rules::check_region(region)
        {
            self.provider_problem(pname, "region", Reason::InvalidProfile, detail);
        }

        let spec = provider.spec.clone().unwrap_or_default();
        let audience = spec
            .audience
            .clone()
            .unwrap_or_else(|| rules::DEFAULT_AUDIENCE.to_owned());
        if !self.settings.allowed_audiences.contains(&audience) {
            self.provider_problem(
                pname,
                "spec.audience",
                Reason::AudienceNotAllowed,
                format!(
                    "audience \"{audience}\" is not allowed: the controller requests tokens only for {}; \
                     use one of them, or ask the operator to allow it",
                    if self.settings.allowed_audiences.is_empty() {
                        "no audience".to_owned()
                    } else {
                        list(&self.settings.allowed_audiences)
                    }
                ),
            );
        }

        if let Some(endpoint) = &spec.endpoint_url
            && !self.settings.allowed_endpoints.contains(endpoint)
        {
            self.provider_problem(
                pname,
                "spec.endpoint_url",
                Reason::EndpointNotAllowed,
                format!(
                    "endpoint_url \"{endpoint}\" is refused: the STS endpoint is the controller's \
                     configuration, not the profile's; remove endpoint_url, or ask the operator to \
                     allow-list it"
                ),
            );
        }

        let min_token = self.settings.min_token_seconds;
        let expiration_seconds = match &spec.expiration {
            None => rules::DEFAULT_TOKEN_SECONDS.max(min_token),
            Some(text) => match rules::parse_duration(text) {
                Err(detail) => {
                    self.provider_problem(pname, "spec.expiration", Reason::InvalidProfile, detail);
                    0
                }
                Ok(secs) if secs < min_token => {
                    self.provider_problem(
                        pname,
                        "spec.expiration",
                        Reason::InvalidProfile,
                        format!(
                            "{text} is shorter than the shortest token lifetime allowed ({}, the \
                             TokenRequest minimum); use at least {}",
                            format_seconds(min_token),
                            format_seconds(min_token)
                        ),
                    );
                    0
                }
                Ok(secs) => secs,
            },
        };

        let service_account = match (service_account, &spec.service_account) {
            (Some(sa), _) => Some(sa.to_owned()), // checked by the caller (spec.serviceAccountName)
            (None, Some(sa)) => {
                if let Err(rule) = rules::check_dns1123_subdomain(sa) {
                    self.provider_problem(
                        pname,
                        "spec.service_account",
                        Reason::InvalidProfile,
                        format!("\"{sa}\" is not a valid ServiceAccount name: {rule}"),
                    );
                }
                Some(sa.clone())
            }
            (None, None) => {
                if require_sa {
                    self.problems.push(Problem::new(
                        "spec.serviceAccountName",
                        Reason::InvalidIdentity,
                        "no ServiceAccount: set spec.serviceAccountName or the provider's spec.service_account",
                    ));
                }
                None
            }
        };

        if self.problems.len() != before {
            return None;
        }
        service_account.map(|service_account| TokenSource {
            provider: pname.to_owned(),
            service_account,
            audience,
            expiration_seconds,
            endpoint: spec.endpoint_url.clone(),
        })
    }

    /// Checks one link; pushes it to `links` when it passes. Returns its region (for the
    /// next link), even when it does not pass.
    fn check_link(
        &mut self,
        name: &str,
        def: &IdentityDef,
        parent_region: Option<&str>,
        links: &mut Vec<Link>,
    ) -> String {
        let principal = def.principal.clone().unwrap_or_default();
        let region = match &principal.region {
            Some(region) => {
                if let Err(detail) = rules::check_region(region) {
                    self.identity_problem(name, "principal.region", detail);
                }
                region.clone()
            }
            None => parent_region.unwrap_or(&self.settings.default_region).to_owned(),
        };
        if def.kind != IDENTITY_KIND {
            return region; // reported by the walk; other kinds' principals differ
        }
        let before = self.problems.len();
        let via = def.via.clone().unwrap_or_default();
        let chained = via.identity.is_some() && via.provider.is_none();
        let first = via.provider.is_some() && via.identity.is_none();

        let role_arn = principal.assume_role.clone().unwrap_or_default();
        match &principal.assume_role {
            None => self.identity_problem(
                name,
                "principal.assume_role",
                format!(
                    "assume_role is required for kind {IDENTITY_KIND}: the IAM role ARN, \
                     arn:aws:iam::<12-digit account>:role/<name>"
                ),
            ),
            Some(arn) => {
                if let Err(detail) = rules::check_role_arn(arn) {
                    self.identity_problem(
                        name,
                        "principal.assume_role",
                        format!(
                            "\"{arn}\" is not a valid IAM role ARN: {detail}; expected \
                             arn:aws:iam::<12-digit account>:role/<name>"
                        ),
                    );
                }
            }
        }

        let duration = match (
            &principal.duration,
            def.session.as_ref().and_then(|s| s.duration.as_ref()),
        ) {
            (Some(text), _) => Some(("principal.duration", text)),
            (None, Some(text)) => Some(("session.duration", text)),
            (None, None) => None,
        };
        let duration_seconds = match duration {
            None => rules::DEFAULT_SESSION_SECONDS,
            Some((field, text)) => match rules::parse_duration(text) {
                Err(detail) => {
                    self.identity_problem(name, field, detail);
                    0
                }
                Ok(secs) => {
                    let min = self.settings.min_session_seconds;
                    if secs < min {
                        self.identity_problem(
                            name,
                            field,
                            format!(
                                "{text} is shorter than the shortest session allowed ({}); use at least {}",
                                format_seconds(min),
                                format_seconds(min)
                            ),
                        );
                    } else if secs > rules::MAX_SESSION_SECONDS {
                        self.identity_problem(
                            name,
                            field,
                            format!(
                                "{text} is longer than 12h, the longest session AWS grants; use at most 12h \
                                 (and at most the role's MaxSessionDuration)"
                            ),
                        );
                    } else if chained && secs > rules::MAX_CHAINED_SESSION_SECONDS {
                        self.identity_problem(
                            name,
                            field,
                            format!(
                                "{text} is longer than 1h: AWS limits a chained session (via.identity) \
                                 to 1h; use at most 1h"
                            ),
                        );
                    }
                    secs
                }
            },
        };

        if let Some(external_id) = &principal.external_id {
            if first {
                self.identity_problem(
                    name,
                    "principal.external_id",
                    "external_id is only allowed on chained links (via.identity): \
                     AssumeRoleWithWebIdentity takes no external id; remove it, or move it to an \
                     identity that chains from this one",
                );
            } else if let Err(detail) = rules::check_external_id(external_id) {
                self.identity_problem(name, "principal.external_id", detail);
            }
        }

        if let Some(session_name) = &principal.session_name
            && let Err(detail) = rules::check_session_name(session_name)
        {
            self.identity_problem(name, "principal.session_name", detail);
        }

        if self.problems.len() == before
            && let Ok(duration_seconds) = i32::try_from(duration_seconds)
        {
            links.push(Link {
                identity: name.to_owned(),
                role_arn,
                session_name: principal.session_name.clone(),
                external_id: principal.external_id.clone(),
                duration_seconds,
                region: region.clone(),
            });
        }
        region
    }
}

/// `spec.refreshBefore` in seconds, when set and valid.
fn check_refresh_before(identity: &IdentitySpec, problems: &mut Vec<Problem>) -> Option<i64> {
    let text = identity.refresh_before.as_ref()?;
    match rules::parse_duration(text) {
        Err(detail) => {
            problems.push(Problem::new("spec.refreshBefore", Reason::InvalidIdentity, detail));
            None
        }
        Ok(0) => {
            problems.push(Problem::new(
                "spec.refreshBefore",
                Reason::InvalidIdentity,
                format!("{text} is not greater than 0; use a Go duration such as 20m, or leave it out to renew at two thirds of the session"),
            ));
            None
        }
        Ok(secs) => Some(secs),
    }
}

/// The Secret to write: `spec.secret.name` else the Identity's name; formats default
/// `[process]` (an empty list too), deduplicated in the fixed order process, files, env;
/// mount path default [`DEFAULT_MOUNT_PATH`], absolute, without a trailing `/`.
fn check_secret(identity: &IdentitySpec, object_name: &str, problems: &mut Vec<Problem>) -> Option<SecretPlan> {
    let spec = identity.secret.clone().unwrap_or_default();
    let before = problems.len();
    let name = match spec.name {
        Some(name) => {
            if let Err(rule) = rules::check_dns1123_subdomain(&name) {
                problems.push(Problem::new(
                    "spec.secret.name",
                    Reason::InvalidIdentity,
                    format!("\"{name}\" is not a valid Secret name: {rule}"),
                ));
            }
            name
        }
        None => object_name.to_owned(),
    };
    let formats: Vec<SecretFormat> = match spec.formats {
        Some(formats) if !formats.is_empty() => formats.into_iter().collect::<BTreeSet<_>>().into_iter().collect(),
        _ => vec![SecretFormat::Process],
    };
    let mount_path = match rules::check_mount_path(spec.mount_path.as_deref().unwrap_or(DEFAULT_MOUNT_PATH)) {
        Ok(path) => path,
        Err(detail) => {
            problems.push(Problem::new("spec.secret.mountPath", Reason::InvalidIdentity, detail));
            String::new()
        }
    };
    (problems.len() == before).then_some(SecretPlan {
        name,
        formats,
        mount_path,
    })
}
