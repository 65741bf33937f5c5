//! Validation of a whole profile, for the AuthProfile status and the `validate` CLI.

use std::collections::{BTreeSet, HashMap};

use super::Settings;
use super::credential_fields;
use super::names::{self, Found, Names};
use super::problem::{Problem, Reason, list, summarize_within};
use super::provider;
use super::target::default_identities;
use super::walk::{Chain, Checker, MAX_CHAIN_LINKS};
use super::warnings::{Warning, dedup, unused_keys};
use crate::api::{AuthProfileSpec, IdentityDef, IdentityState};

/// Most chain names an identity's status entry shows (`chainLength` counts them all): the
/// status of a profile at its limits stays small enough to read and to store.
pub const MAX_STATUS_CHAIN: usize = 5;
/// Longest message of an identity's status entry, in bytes; the profile's `Ready` condition
/// and the `validate` command give more.
pub const MAX_STATUS_MESSAGE_LEN: usize = 512;

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

    /// The status entry of this identity: at most [`MAX_STATUS_CHAIN`] names of its chain
    /// and [`MAX_STATUS_MESSAGE_LEN`] bytes of message.
    pub fn state(&self) -> IdentityState {
        let summary = summarize_within(&self.problems, MAX_STATUS_MESSAGE_LEN);
        let shown = self.chain.len().min(MAX_STATUS_CHAIN);
        IdentityState {
            name: self.name.clone(),
            ready: self.is_ready(),
            chain: self.chain[..shown].to_vec(),
            chain_length: (shown < self.chain.len()).then_some(self.chain.len() as i64),
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

    let names = Names::new(profile);
    problems.extend(names.collisions());
    let mut checked = check_identities(profile, &names, settings);
    let mut reached = BTreeSet::new();
    let identities = profile
        .identities
        .keys()
        .map(|name| {
            let (chain, problems, warnings) = checked.remove(name.as_str()).unwrap_or_default();
            if let Some(provider) = chain.provider {
                reached.insert(provider);
            }
            IdentityReport {
                name: name.clone(),
                chain: chain.names,
                problems,
                warnings,
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
        if let Some((field, message)) = credential_fields::provider_secret(provider) {
            problems.push(Problem::new(
                format!("auth.providers.{name}.{field}"),
                credential_fields::reason(false),
                message,
            ));
        }
    }
    for (name, def) in &profile.identities {
        for (field, message) in credential_fields::identity_secrets(def) {
            problems.push(Problem::new(
                format!("auth.identities.{name}.{field}"),
                credential_fields::reason(false),
                message,
            ));
        }
    }

    let mut warnings = unused_keys(profile);
    warnings.extend(profile.identities.keys().filter_map(|name| {
        names::capitals_note(name).map(|note| Warning::new(format!("auth.identities.{name}"), note))
    }));
    ProfileReport {
        warnings,
        default_identity: match defaults.as_slice() {
            [one] => Some((*one).to_owned()),
            _ => None,
        },
        problems,
        identities,
    }
}

/// Every identity of `profile` checked as a target. Chains share their work: an identity
/// whose `via.identity` was checked already extends that result by its own link instead of
/// walking the chain again, so a profile costs one check per identity. Ancestors are checked
/// before their descendants; only chains cut short (a cycle, the length limit) are walked
/// on their own, and those walks stop at [`MAX_CHAIN_LINKS`].
fn check_identities<'a>(
    profile: &'a AuthProfileSpec,
    names: &Names<'a>,
    settings: &Settings,
) -> HashMap<&'a str, Checked> {
    // The identity `def` chains from, as the walk finds it (ignoring case).
    let parent_of = |def: &IdentityDef| -> Option<(&'a String, &'a IdentityDef)> {
        match names.identity(chains_from(def)?) {
            Found::One(key) => profile.identities.get_key_value(key),
            _ => None,
        }
    };
    let mut done: HashMap<&'a str, Checked> = HashMap::with_capacity(profile.identities.len());
    for (name, def) in &profile.identities {
        if done.contains_key(name.as_str()) {
            continue;
        }
        // This identity and the ones it chains from that are not checked yet, nearest
        // first; at most one more than a chain may have, so the scan below stays short.
        let mut pending: Vec<(&'a str, &'a IdentityDef)> = vec![(name.as_str(), def)];
        while pending.len() <= MAX_CHAIN_LINKS {
            let Some((_, last)) = pending.last() else { break };
            let Some((parent, parent_def)) = parent_of(last) else {
                break;
            };
            if done.contains_key(parent.as_str()) || pending.iter().any(|(n, _)| *n == parent) {
                break;
            }
            pending.push((parent.as_str(), parent_def));
        }
        for (name, def) in pending.into_iter().rev() {
            if done.contains_key(name) {
                continue;
            }
            let mut checker = Checker {
                profile,
                settings,
                target: name,
                overrides: None,
                names,
                problems: Vec::new(),
                warnings: Vec::new(),
            };
            let parent = parent_of(def).and_then(|(p, _)| done.get(p.as_str()));
            let chain = match parent {
                Some((chain, problems, warnings)) if chain.extendable && chain.depth < MAX_CHAIN_LINKS => {
                    checker.extend(def, chain, problems, warnings)
                }
                _ => checker.check(def, None, false),
            };
            done.insert(name, (chain, checker.problems, checker.warnings));
        }
    }
    done
}

/// One identity checked as a target: its chain, problems and warnings.
type Checked = (Chain, Vec<Problem>, Vec<Warning>);

/// The identity `def` chains from: its `via.identity` when it sets no `via.provider`.
fn chains_from(def: &IdentityDef) -> Option<&str> {
    let via = def.via.as_ref()?;
    match (&via.provider, &via.identity) {
        (None, Some(identity)) => Some(identity),
        _ => None,
    }
}
