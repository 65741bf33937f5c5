//! Validation problems: where (`path`, in Atmos YAML form or the Identity's `spec.` form),
//! why (a [`Reason`] a program can match) and what to do (`message`, for a person).

use std::fmt;

/// Why a profile or an Identity cannot be resolved. `Display` gives the CamelCase word used
/// as a Kubernetes condition reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A field of the profile is missing, malformed or breaks an Atmos/AWS rule (dangling
    /// reference, cycle, bad ARN, bad duration, ...).
    InvalidProfile,
    /// A field of the Identity (or a profile value it overrides) is wrong.
    InvalidIdentity,
    /// `spec.identity` names an identity the profile does not have.
    IdentityNotFound,
    /// `spec.identity` is left out and the profile has no `default: true` identity.
    NoDefaultIdentity,
    /// Several identities of the profile are `default: true`.
    MultipleDefaultIdentities,
    /// A provider or identity kind that cannot run in a cluster.
    UnsupportedKind,
    /// The provider's token audience is not in the controller's allow-list.
    AudienceNotAllowed,
    /// The provider sets `spec.endpoint_url` and the operator did not allow-list it.
    EndpointNotAllowed,
    /// An Identity overrides a field its ClusterAuthProfile does not list in
    /// `allowedOverrides`.
    OverrideNotAllowed,
}

impl Reason {
    /// The CamelCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidProfile => "InvalidProfile",
            Reason::InvalidIdentity => "InvalidIdentity",
            Reason::IdentityNotFound => "IdentityNotFound",
            Reason::NoDefaultIdentity => "NoDefaultIdentity",
            Reason::MultipleDefaultIdentities => "MultipleDefaultIdentities",
            Reason::UnsupportedKind => "UnsupportedKind",
            Reason::AudienceNotAllowed => "AudienceNotAllowed",
            Reason::EndpointNotAllowed => "EndpointNotAllowed",
            Reason::OverrideNotAllowed => "OverrideNotAllowed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with a profile or an Identity. Messages never contain secrets nor
/// `external_id` values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Problem {
    /// Where: `auth.identities.acme/network.via`, `auth.providers.cluster-oidc.spec.audience`,
    /// or for the Identity's own fields `spec.refreshBefore`, `spec.principal.duration`.
    pub path: String,
    /// Why, as a condition reason.
    pub reason: Reason,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason,
            message: message.into(),
        }
    }
}

/// Longest list of names quoted in a message.
const MAX_LISTED: usize = 20;

/// `a, b, c` (at most [`MAX_LISTED`] names, then `...`): names quoted in a message.
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

/// Longest condition message [`summarize`] produces, in bytes (the apiserver allows 32 KiB).
pub const MAX_SUMMARY_LEN: usize = 4096;

/// A condition `(reason, message)` for a list of problems: the first problem's reason, and
/// every problem (`path: message`) joined with `"; "`, cut to [`MAX_SUMMARY_LEN`].
/// `None` when there is no problem.
pub fn summarize(problems: &[Problem]) -> Option<(Reason, String)> {
    summarize_within(problems, MAX_SUMMARY_LEN)
}

/// [`summarize`], cut to `max_len` bytes (at least 3).
pub fn summarize_within(problems: &[Problem], max_len: usize) -> Option<(Reason, String)> {
    let first = problems.first()?;
    let mut message = String::new();
    for (i, problem) in problems.iter().enumerate() {
        if i > 0 {
            message.push_str("; ");
        }
        message.push_str(&problem.to_string());
        // No need to join what will be cut.
        if message.len() > max_len {
            break;
        }
    }
    if message.len() > max_len {
        let mut cut = max_len.saturating_sub(3);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    Some((first.reason, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let p = Problem::new("spec.refreshBefore", Reason::InvalidIdentity, "must be > 0");
        assert_eq!(p.to_string(), "spec.refreshBefore: must be > 0");
        assert_eq!(Reason::AudienceNotAllowed.to_string(), "AudienceNotAllowed");
        assert_eq!(
            Reason::MultipleDefaultIdentities.to_string(),
            "MultipleDefaultIdentities"
        );
    }

    #[test]
    fn summary() {
        assert_eq!(summarize(&[]), None);
        let a = Problem::new("a", Reason::UnsupportedKind, "x");
        let b = Problem::new("b", Reason::InvalidProfile, "y");
        assert_eq!(
            summarize(&[a.clone(), b]),
            Some((Reason::UnsupportedKind, "a: x; b: y".to_owned()))
        );
        let long = Problem::new("p", Reason::InvalidProfile, "é".repeat(5000));
        let (_, msg) = summarize(&[long]).unwrap();
        assert!(msg.len() <= MAX_SUMMARY_LEN);
        assert!(msg.ends_with("..."));
    }
}
