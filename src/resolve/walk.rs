//! The chain walk: from the target identity along `via.identity` to a `via.provider`, then
//! the provider and each link checked, provider side first.

use std::collections::HashMap;

use serde_json::Value;

use super::Settings;
use super::azure::AzureProvider;
use super::credential_fields;
use super::gcp::GcpProvider;
use super::kinds::{self, KindProblem};
use super::model::{AzureTarget, GcpTarget, Link, TokenSource};
use super::names::{self, Found, Names};
use super::problem::{Problem, Reason, list};
use super::provider;
use super::rules;
use super::warnings::Warning;
use crate::api::{AuthProfileSpec, IdentityDef, Provider};

/// Most links (identities) a chain may have. Atmos chains are a few links; the limit keeps
/// one profile from making the controller walk and report long chains.
pub const MAX_CHAIN_LINKS: usize = 10;

/// What a chain check found.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chain {
    /// `[provider, identity, ..., target]` when the walk reached an existing provider.
    pub names: Vec<String>,
    /// Every link that passed its checks, provider side first.
    pub links: Vec<Link>,
    /// The token request, when the provider passed its checks.
    pub token: Option<TokenSource>,
    /// Every provider the walk reached (existing or not).
    pub provider: Option<String>,
    /// Identities walked, the target included.
    pub depth: usize,
    /// True when the walk ended neither in a cycle nor at the length limit: then an identity
    /// chaining from the target has this walk plus itself (see [`Checker::extend`]).
    pub extendable: bool,
    /// Region of the target's link, which a link chaining from it inherits.
    pub region: Option<String>,
    /// How many of the problems come from the target's name (the name is checked for the
    /// target only, so an extension leaves them out).
    pub name_problems: usize,
    /// The kind of the target identity (what an identity chaining from it chains from).
    pub target_kind: String,
    /// An `azure/subscription` target through an `azure/oidc` provider, when both passed.
    pub azure: Option<AzureTarget>,
    /// A GCP target through a `gcp/workload-identity-federation` provider, when all passed.
    pub gcp: Option<GcpTarget>,
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
    /// The profile's names, for lookups that ignore case as Atmos's do.
    pub names: &'a Names<'a>,
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
        for (field, message) in credential_fields::identity_secrets(def) {
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
    ///
    /// Linear in the chain's length: definitions are borrowed, not copied, and cycles are
    /// found through a map of the positions walked.
    pub fn check(&mut self, target_def: &IdentityDef, service_account: Option<&str>, require_sa: bool) -> Chain {
        let name_problems = self.check_target_name();

        // Walk from the target towards the provider.
        let mut walk: Vec<(&str, &IdentityDef)> = vec![(self.target, target_def)];
        let mut position: HashMap<&str, usize> = HashMap::from([(self.target, 0)]);
        let mut provider: Option<&str> = None;
        let mut extendable = false;
        while let Some(&(name, def)) = walk.last() {
            let runnable = self.check_identity_kind(name, def);
            let via = def.via.as_ref();
            match (
                via.and_then(|v| v.provider.as_deref()),
                via.and_then(|v| v.identity.as_deref()),
            ) {
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
                    extendable = true;
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
                    extendable = true;
                    break;
                }
                (Some(p), None) => {
                    provider = Some(p);
                    extendable = true;
                    break;
                }
                (None, Some(written)) => {
                    let next = match self.names.identity(written) {
                        Found::One(key) => {
                            if let Some(note) = names::reference_note("via.identity", written) {
                                self.identity_warning(name, "via.identity", note);
                            }
                            key
                        }
                        Found::Several(keys) => {
                            self.identity_problem(name, "via.identity", names::several_message("identity", &keys));
                            extendable = true;
                            break;
                        }
                        Found::None => {
                            self.identity_problem(
                                name,
                                "via.identity",
                                format!(
                                    "identity \"{written}\" does not exist in the profile; identities: {}",
                                    list(self.profile.identities.keys())
                                ),
                            );
                            extendable = true;
                            break;
                        }
                    };
                    if let Some(&pos) = position.get(next) {
                        let cycle: Vec<&str> = walk[pos..]
                            .iter()
                            .map(|(n, _)| *n)
                            .chain(std::iter::once(next))
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
                    if walk.len() == MAX_CHAIN_LINKS {
                        let walked: Vec<&str> = walk.iter().map(|(n, _)| *n).chain(std::iter::once(next)).collect();
                        self.identity_problem(
                            self.target,
                            "via",
                            format!(
                                "the chain of {} reaches no provider within {MAX_CHAIN_LINKS} links, the \
                                 most the controller follows (Atmos chains are a few links): {} -> ...; \
                                 start it from a provider (via.provider) in at most {MAX_CHAIN_LINKS} links",
                                self.target,
                                walked.join(" -> ")
                            ),
                        );
                        break;
                    }
                    if let Some((next_name, next_def)) = self.profile.identities.get_key_value(next) {
                        position.insert(next_name.as_str(), walk.len());
                        walk.push((next_name.as_str(), next_def));
                    }
                }
            }
        }

        let mut chain = Chain {
            depth: walk.len(),
            extendable,
            name_problems,
            target_kind: target_def.kind.clone(),
            ..Chain::default()
        };
        let mut provider_kind: Option<&str> = None;
        let mut azure_provider: Option<AzureProvider> = None;
        let mut gcp_provider: Option<GcpProvider> = None;

        // The provider, reached by the last identity of the walk.
        // Atmos's rule: a link's principal.region, else its parent link's, else the default
        // region; the provider's region is not used (a warning says so when it differs).
        let mut parent_region: Option<String> = None;
        let mut provider_region: Option<(String, String)> = None;
        if let (Some(pname), Some(&(last, _))) = (provider, walk.last()) {
            let found = self.find_provider(last, pname);
            chain.provider = Some(found.map_or(pname, |(key, _)| key.as_str()).to_owned());
            if let Some((pname, p)) = found {
                chain.names.reserve(walk.len() + 1);
                chain.names.push(pname.clone());
                chain.names.extend(walk.iter().rev().map(|(n, _)| (*n).to_owned()));
                if let Some((field, message)) = credential_fields::provider_secret(p) {
                    self.problems.push(Problem::new(
                        format!("auth.providers.{pname}.{field}"),
                        Reason::InvalidProfile,
                        message,
                    ));
                }
                provider_region = p.region.clone().map(|r| (pname.clone(), r));
                chain.token =
                    provider::check_provider(pname, p, self.settings, service_account, require_sa, &mut self.problems);
                provider_kind = Some(p.kind.as_str());
                azure_provider = self.azure_provider(pname, p);
                gcp_provider = self.gcp_provider(pname, p);
            }
        }

        // Each link, provider side first.
        for (i, &(name, def)) in walk.iter().enumerate().rev() {
            self.secret_problems(name, def);
            let first = i + 1 == walk.len();
            let parent_kind = walk.get(i + 1).map(|(_, d)| d.kind.as_str());
            self.cloud_link(name, def, provider_kind.filter(|_| first), parent_kind);
            self.gcp_link(name, def, provider_kind.filter(|_| first), parent_kind);
            chain.gcp = match (&gcp_provider, &chain.gcp) {
                (Some(p), None) if first && kinds::is_gcp_identity(&def.kind) => self.gcp_target(name, def, p),
                (_, Some(parent)) if def.kind == kinds::GCP_PROJECT_KIND => self.gcp_project_over(name, def, parent),
                _ => None,
            };
            if first
                && i == 0
                && def.kind == kinds::AZURE_IDENTITY_KIND
                && let Some(azure) = &azure_provider
            {
                chain.azure = self.azure_target(name, def, azure);
            }
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
        chain.region = parent_region;
        chain
    }

    /// The chain of `self.target` (definition `def`, whose `via.identity` is the target of
    /// `parent`, checked with `parent_problems`), built on `parent` instead of walking it
    /// again: the same result as [`Checker::check`] when the profile is validated on its own
    /// (no overrides, no ServiceAccount required). The caller checks that `parent` is
    /// extendable and shorter than [`MAX_CHAIN_LINKS`].
    pub fn extend(
        &mut self,
        def: &IdentityDef,
        parent: &Chain,
        parent_problems: &[Problem],
        parent_warnings: &[Warning],
    ) -> Chain {
        let name_problems = self.check_target_name();
        self.check_identity_kind(self.target, def);
        if let Some(note) = def
            .via
            .as_ref()
            .and_then(|v| v.identity.as_deref())
            .and_then(|written| names::reference_note("via.identity", written))
        {
            self.identity_warning(self.target, "via.identity", note);
        }
        // The parent's walk, provider and links, in the order `check` reports them.
        self.problems
            .extend_from_slice(parent_problems.get(parent.name_problems..).unwrap_or_default());
        self.warnings.extend_from_slice(parent_warnings);
        let mut chain = Chain {
            names: Vec::new(),
            links: parent.links.clone(),
            token: parent.token.clone(),
            provider: parent.provider.clone(),
            depth: parent.depth + 1,
            extendable: true,
            region: None,
            name_problems,
            target_kind: def.kind.clone(),
            azure: None,
            gcp: None,
        };
        if !parent.names.is_empty() {
            chain.names.reserve(parent.names.len() + 1);
            chain.names.extend(parent.names.iter().cloned());
            chain.names.push(self.target.to_owned());
        }
        self.secret_problems(self.target, def);
        self.cloud_link(self.target, def, None, Some(&parent.target_kind));
        self.gcp_link(self.target, def, None, Some(&parent.target_kind));
        if def.kind == kinds::GCP_PROJECT_KIND
            && let Some(base) = &parent.gcp
        {
            chain.gcp = self.gcp_project_over(self.target, def, base);
        }
        let region = self.check_link(self.target, def, parent.region.as_deref(), &mut chain.links);
        chain.region = Some(region);
        chain
    }

    /// The provider `pname` (`via.provider` of identity `last`) finds, ignoring case as
    /// Atmos's lookups do; a problem when it finds none or several.
    fn find_provider(&mut self, last: &str, pname: &str) -> Option<(&'a String, &'a Provider)> {
        match self.names.provider(pname) {
            Found::One(key) => {
                if let Some(note) = names::reference_note("via.provider", pname) {
                    self.identity_warning(last, "via.provider", note);
                }
                self.profile.providers.get_key_value(key)
            }
            Found::Several(keys) => {
                self.identity_problem(last, "via.provider", names::several_message("provider", &keys));
                None
            }
            Found::None => {
                let message = if self.profile.providers.is_empty() {
                    format!("provider \"{pname}\" does not exist: the profile has no providers")
                } else {
                    format!(
                        "provider \"{pname}\" does not exist in the profile; providers: {}",
                        list(self.profile.providers.keys())
                    )
                };
                self.identity_problem(last, "via.provider", message);
                None
            }
        }
    }

    /// Checks that the target's name can be a section of an AWS config file; the number of
    /// problems found.
    fn check_target_name(&mut self) -> usize {
        match rules::check_identity_name(self.target) {
            Ok(()) => 0,
            Err(detail) => {
                self.problems.push(Problem::new(
                    format!("auth.identities.{}", self.target),
                    Reason::InvalidProfile,
                    detail,
                ));
                1
            }
        }
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
