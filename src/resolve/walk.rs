//! The chain walk: from the target identity along `via.identity` to a `via.provider`, then
//! the provider and each link checked, provider side first.

use serde_json::Value;

use super::Settings;
use super::kinds::{self, KindProblem};
use super::model::{Link, TokenSource};
use super::problem::{Problem, Reason, list};
use super::provider;
use super::rules;
use super::secrets;
use super::warnings::Warning;
use crate::api::{AuthProfileSpec, IdentityDef};

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
    /// What is accepted but not used, or used as Atmos uses it.
    pub warnings: Vec<Warning>,
}

impl<'a> Checker<'a> {
    /// Path and reason for `field` of identity `name`: the Identity's own `spec.<field>`
    /// when the Identity set it, else the profile's `auth.identities.<name>.<field>`.
    pub(super) fn field(&self, name: &str, field: &str) -> (String, Reason) {
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

    pub(super) fn identity_warning(&mut self, name: &str, field: &str, message: impl Into<String>) {
        let (path, _) = self.field(name, field);
        self.warnings.push(Warning::new(path, message));
    }

    /// Refuses each secret `name`'s definition holds (`field` such as `env[1]` or
    /// `credentials.access_key_id`: the part before `[` or `.` decides whether the Identity
    /// or the profile set it).
    pub(super) fn secret_problems(&mut self, name: &str, def: &IdentityDef) {
        for (field, message) in secrets::identity_secrets(def) {
            let base = field.split(['[', '.']).next().unwrap_or_default();
            let (path, reason) = self.field(name, base);
            self.problems
                .push(Problem::new(format!("{path}{}", &field[base.len()..]), reason, message));
        }
    }

    pub(super) fn identity_problem(&mut self, name: &str, field: &str, message: impl Into<String>) {
        let (path, reason) = self.field(name, field);
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
        // Atmos's rule: a link's principal.region, else its parent link's, else the default
        // region; the provider's region is not used (a warning says so when it differs).
        let mut parent_region: Option<String> = None;
        let mut provider_region: Option<(String, String)> = None;
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
                    if let Some((field, message)) = secrets::provider_secret(p) {
                        self.problems.push(Problem::new(
                            format!("auth.providers.{pname}.{field}"),
                            Reason::InvalidProfile,
                            message,
                        ));
                    }
                    provider_region = p.region.clone().map(|r| (pname.clone(), r));
                    chain.token = provider::check_provider(
                        pname,
                        p,
                        self.settings,
                        service_account,
                        require_sa,
                        &mut self.problems,
                    );
                }
            }
        }

        // Each link, provider side first.
        for (name, def) in walk.iter().rev() {
            self.secret_problems(name, def);
            let region = self.check_link(name, def, parent_region.as_deref(), &mut chain.links);
            if parent_region.is_none()
                && let Some((pname, provider_region)) = &provider_region
                && *provider_region != region
            {
                self.warnings.push(Warning::new(
                    format!("auth.providers.{pname}.region"),
                    format!(
                        "{provider_region} is not used: a chain's first link calls STS in {region} and its \
                         credentials are written for {region} (the link's principal.region, else the operator's \
                         default region), as Atmos does; to use {provider_region}, set principal.region: \
                         {provider_region} on the identities with via.provider: {pname}"
                    ),
                ));
            }
            parent_region = Some(region);
        }
        chain
    }

    /// Reports a missing or unsupported identity kind; true when the kind is runnable.
    fn check_identity_kind(&mut self, name: &str, def: &IdentityDef) -> bool {
        let (path, field_reason) = self.field(name, "kind");
        let (reason, message) = match kinds::check_identity_kind(&def.kind) {
            Ok(()) => return true,
            Err(problem @ (KindProblem::Missing(_) | KindProblem::Unknown(_))) => {
                (field_reason, problem.into_message())
            }
            Err(problem @ KindProblem::CannotRun(_)) => (Reason::UnsupportedKind, problem.into_message()),
        };
        self.problems.push(Problem::new(path, reason, message));
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
}
