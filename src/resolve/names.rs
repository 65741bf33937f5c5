//! Identity and provider names as Atmos reads them. Viper lower-cases every key of
//! atmos.yaml, so to Atmos an identity written `SuperAdmin` is `superadmin`: that is the
//! name it writes as `[profile superadmin]`, sets as `AWS_PROFILE` and puts in the default
//! session name (`pkg/auth/manager.go` `initializeIdentities`, `pkg/auth/cloud/aws/env.go`
//! `PrepareEnvironment`). A name a person gives (`--identity`, here `spec.identity`) is
//! matched case-insensitively (`manager.go` `resolveIdentityName`); a `via` reference is
//! compared as written with the lower-cased names (`manager_chain.go` `buildChainRecursive`),
//! so Atmos finds only a lower-case reference. The controller matches both without regard to
//! case and warns where Atmos would not find the reference.

use std::collections::{BTreeMap, HashMap};

use super::problem::{Problem, Reason, list};
use crate::api::AuthProfileSpec;

/// Atmos's name for `name`: lower-cased, as Viper reads keys.
pub fn atmos_name(name: &str) -> String {
    name.to_lowercase()
}

/// What a name finds in a profile's identities or providers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// The one entry whose name equals it, ignoring case (the key as written).
    One(&'a str),
    /// No entry.
    None,
    /// Several entries whose names differ only in case: one entry to Atmos, whose
    /// definition wins is not defined there.
    Several(Vec<&'a str>),
}

/// The names of a profile's identities and providers, grouped by Atmos's name.
#[derive(Debug, Default)]
pub(crate) struct Names<'a> {
    identities: HashMap<String, Vec<&'a str>>,
    providers: HashMap<String, Vec<&'a str>>,
}

fn group<V>(map: &BTreeMap<String, V>) -> HashMap<String, Vec<&str>> {
    let mut groups: HashMap<String, Vec<&str>> = HashMap::with_capacity(map.len());
    for name in map.keys() {
        groups.entry(atmos_name(name)).or_default().push(name);
    }
    groups
}

fn find<'a>(groups: &HashMap<String, Vec<&'a str>>, name: &str) -> Found<'a> {
    match groups.get(&atmos_name(name)).map(Vec::as_slice) {
        None | Some([]) => Found::None,
        Some([one]) => Found::One(one),
        Some(several) => Found::Several(several.to_vec()),
    }
}

impl<'a> Names<'a> {
    /// Indexes `profile`'s names (linear in their number).
    pub fn new(profile: &'a AuthProfileSpec) -> Self {
        Self {
            identities: group(&profile.identities),
            providers: group(&profile.providers),
        }
    }

    /// The identity `name` finds, ignoring case.
    pub fn identity(&self, name: &str) -> Found<'a> {
        find(&self.identities, name)
    }

    /// The provider `name` finds, ignoring case.
    pub fn provider(&self, name: &str) -> Found<'a> {
        find(&self.providers, name)
    }

    /// One problem per group of names that differ only in case, at the later names.
    pub fn collisions(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (section, what, groups) in [
            ("identities", "identity", &self.identities),
            ("providers", "provider", &self.providers),
        ] {
            let mut several: Vec<&Vec<&str>> = groups.values().filter(|g| g.len() > 1).collect();
            several.sort();
            for names in several {
                for later in &names[1..] {
                    out.push(Problem::new(
                        format!("auth.{section}.{later}"),
                        Reason::InvalidProfile,
                        several_message(what, names),
                    ));
                }
            }
        }
        out
    }
}

/// Why several names that differ only in case cannot be told apart.
pub(crate) fn several_message(what: &str, names: &[&str]) -> String {
    format!(
        "{} differ only in letter case: Atmos lower-cases names (as {}), so they are one {what} \
         there and which definition wins is not defined; rename one, or merge them",
        list(names.iter()),
        atmos_name(names.first().copied().unwrap_or_default())
    )
}

/// The warning for a `via` reference Atmos would not find: it compares references as
/// written with the lower-cased names. `None` when Atmos finds it too.
pub(crate) fn reference_note(field: &str, reference: &str) -> Option<String> {
    let atmos = atmos_name(reference);
    (atmos != reference).then(|| {
        format!(
            "{reference:?} is found regardless of case here, but not by Atmos, which lower-cases names \
             and compares {field} as written; write {field}: {atmos} so Atmos finds it too"
        )
    })
}

/// The warning for a name with capitals: Atmos's name for it is lower-case, and so are the
/// `[profile ...]` section, `AWS_PROFILE` and the default session name.
pub(crate) fn capitals_note(name: &str) -> Option<String> {
    let atmos = atmos_name(name);
    (atmos != name).then(|| {
        format!(
            "Atmos lower-cases names (as Viper reads atmos.yaml), so this identity is {atmos} there: its \
             credentials are written as [profile {atmos}] (AWS_PROFILE={atmos}) and its default session \
             name is {}-<unix time>; so does the controller",
            super::rules::clean_session_name(&format!("atmos-{atmos}"))
        )
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn profile() -> AuthProfileSpec {
        serde_json::from_value(json!({
            "providers": {"GitHub-OIDC": {"kind": "kubernetes/oidc"}},
            "identities": {"SuperAdmin": {"kind": "aws/assume-role"}, "dev": {"kind": "aws/assume-role"},
                           "Dev": {"kind": "aws/assume-role"}}
        }))
        .unwrap()
    }

    #[test]
    fn names_are_found_regardless_of_case() {
        let p = profile();
        let names = Names::new(&p);
        assert_eq!(names.identity("superadmin"), Found::One("SuperAdmin"));
        assert_eq!(names.identity("SUPERADMIN"), Found::One("SuperAdmin"));
        assert_eq!(names.provider("github-oidc"), Found::One("GitHub-OIDC"));
        assert_eq!(names.identity("admin"), Found::None);
        assert_eq!(names.identity("dev"), Found::Several(vec!["Dev", "dev"]));
    }

    #[test]
    fn names_that_differ_only_in_case_are_one_problem_each() {
        let p = profile();
        let problems: Vec<String> = Names::new(&p).collisions().iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "auth.identities.dev: Dev, dev differ only in letter case: Atmos lower-cases names (as dev), so they \
              are one identity there and which definition wins is not defined; rename one, or merge them"
            ]
        );
    }

    #[test]
    fn notes_say_what_atmos_does_with_capitals() {
        assert_eq!(reference_note("via.identity", "acme/admin"), None);
        assert_eq!(capitals_note("acme/admin"), None);
        assert_eq!(
            reference_note("via.provider", "GitHub").unwrap(),
            "\"GitHub\" is found regardless of case here, but not by Atmos, which lower-cases names and compares \
             via.provider as written; write via.provider: github so Atmos finds it too"
        );
        assert_eq!(
            capitals_note("Acme/SuperAdmin").unwrap(),
            "Atmos lower-cases names (as Viper reads atmos.yaml), so this identity is acme/superadmin there: its \
             credentials are written as [profile acme/superadmin] (AWS_PROFILE=acme/superadmin) and its default \
             session name is atmos-acme-superadmin-<unix time>; so does the controller"
        );
    }
}
