//! Validation of a whole profile, for the AuthProfile status and the `validate` CLI.

use std::collections::BTreeSet;

use super::Settings;
use super::problem::{Problem, Reason, list, summarize};
use super::provider;
use super::secrets;
use super::target::default_identities;
use super::walk::Checker;
use super::warnings::{Warning, dedup, unused_keys};
use crate::api::{AuthProfileSpec, IdentityState};

/// What [`validate_profile`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileReport {
    /// The single `default: true` identity (`None` when there is none or several).
    pub default_identity: Option<String>,
    /// Problems of the profile as a whole (several defaults, an unused provider without a
    /// kind).
    pub problems: Vec<Problem>,
    /// One report per identity, in name order.
    pub identities: Vec<IdentityReport>,
    /// Atmos keys kept but not used in a cluster, one per key present.
    pub warnings: Vec<Warning>,
}

/// One identity of a profile, checked as the target of an Identity that sets nothing but
/// `profile` and `identity` (a ServiceAccount missing from the provider is not a problem
/// here: an Identity can name one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityReport {
    /// Atmos identity name.
    pub name: String,
    /// `[provider, identity, ..., this identity]` when the chain reaches an existing
    /// provider (it may still have problems).
    pub chain: Vec<String>,
    /// Everything wrong with this identity's chain.
    pub problems: Vec<Problem>,
    /// What its chain says that is not used, or used as Atmos uses it.
    pub warnings: Vec<Warning>,
}

impl IdentityReport {
    /// True when the chain resolves and every link can run in a cluster.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }

    /// The status entry of this identity.
    pub fn state(&self) -> IdentityState {
        let summary = summarize(&self.problems);
        IdentityState {
            name: self.name.clone(),
            ready: self.is_ready(),
            chain: self.chain.clone(),
            reason: summary.as_ref().map(|(reason, _)| reason.to_string()),
            message: summary.map(|(_, message)| message),
        }
    }
}

impl ProfileReport {
    /// True when the profile has no problem and every identity is ready.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty() && self.identities.iter().all(IdentityReport::is_ready)
    }

    /// The status entries, one per identity.
    pub fn identity_states(&self) -> Vec<IdentityState> {
        self.identities.iter().map(IdentityReport::state).collect()
    }

    /// Every problem once: the profile's, then each identity's (a broken link shared by
    /// several chains is listed once).
    pub fn all_problems(&self) -> Vec<Problem> {
        let mut seen = BTreeSet::new();
        self.problems
            .iter()
            .chain(self.identities.iter().flat_map(|i| i.problems.iter()))
            .filter(|p| seen.insert((p.path.clone(), p.message.clone())))
            .cloned()
            .collect()
    }

    /// Every warning once: unused keys first, then what each chain says, in identity order.
    pub fn all_warnings(&self) -> Vec<Warning> {
        dedup(
            self.warnings
                .iter()
                .chain(self.identities.iter().flat_map(|i| i.warnings.iter()))
                .cloned()
                .collect(),
        )
    }
}

/// Checks every identity of `profile` as a target, and the profile as a whole.
pub fn validate_profile(profile: &AuthProfileSpec, settings: &Settings) -> ProfileReport {
    let mut problems = Vec::new();
    let defaults = default_identities(profile);
    if defaults.len() > 1 {
        problems.push(Problem::new(
            "auth.identities",
            Reason::MultipleDefaultIdentities,
            format!(
                "several identities are marked default: true ({}); keep at most one",
                list(defaults.iter())
            ),
        ));
    }

    let mut reached = BTreeSet::new();
    let identities = profile
        .identities
        .iter()
        .map(|(name, def)| {
            let mut checker = Checker {
                profile,
                settings,
                target: name,
                overrides: None,
                problems: Vec::new(),
                warnings: Vec::new(),
            };
            let chain = checker.check(def, None, false);
            if let Some(provider) = chain.provider {
                reached.insert(provider);
            }
            IdentityReport {
                name: name.clone(),
                chain: chain.names,
                problems: checker.problems,
                warnings: checker.warnings,
            }
        })
        .collect();

    // Providers no chain reaches are not checked by a chain: still report a missing or
    // unknown kind (a typo there is an error in Atmos too). An unused kind that cannot run
    // in a cluster is fine: Atmos profiles keep `github/oidc` for their CI jobs.
    for (name, provider) in &profile.providers {
        if reached.contains(name) {
            continue;
        }
        if let Err(problem) = provider::check_kind(name, provider)
            && problem.reason != Reason::UnsupportedKind
        {
            problems.push(problem);
        }
    }

    // Secrets anywhere in the profile, also where no chain goes (a SAML provider, an
    // aws/user identity): a custom resource must not hold them.
    for (name, provider) in &profile.providers {
        if let Some((field, message)) = secrets::provider_secret(provider) {
            problems.push(Problem::new(
                format!("auth.providers.{name}.{field}"),
                secrets::reason(false),
                message,
            ));
        }
    }
    for (name, def) in &profile.identities {
        for (field, message) in secrets::identity_secrets(def) {
            problems.push(Problem::new(
                format!("auth.identities.{name}.{field}"),
                secrets::reason(false),
                message,
            ));
        }
    }

    ProfileReport {
        warnings: unused_keys(profile),
        default_identity: match defaults.as_slice() {
            [one] => Some((*one).to_owned()),
            _ => None,
        },
        problems,
        identities,
    }
}
