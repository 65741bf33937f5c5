//! Resolution: profile + Identity overrides -> a validated chain of STS calls. Pure: no
//! Kubernetes, no network, no clock (callers pass `now` where it matters).
//!
//! - [`resolve`]: one `Identity` against its `AuthProfile`, for the Identity reconcile.
//! - [`validate_profile`]: every identity of a profile, for the AuthProfile status and the
//!   `validate` CLI.
//!
//! Both report every problem found, not just the first, as [`Problem`]s with a path in
//! Atmos YAML form (`auth.identities.acme/network.via`) or, for what the Identity sets,
//! its own form (`spec.refreshBefore`, `spec.principal.duration`).
//!
//! Layout: `identity` resolves one Identity (`target` picks the identity, `identity_fields`
//! checks the Identity's own fields); `walk` follows a chain and checks the `provider` and
//! each `link`; `kinds` says which kinds run and why others cannot; `report` checks a whole
//! profile; `rules` holds the field rules of Atmos, AWS and Kubernetes; `secrets` refuses
//! secrets in a resource; `warnings` lists what is kept but not used in a cluster.

mod identity;
mod identity_fields;
pub mod kinds;
mod link;
mod merge;
mod model;
mod problem;
mod provider;
mod report;
pub mod rules;
mod secrets;
mod target;
mod walk;
mod warnings;

pub use identity::resolve;
pub use merge::{MergeError, deep_merge, merge_over};
pub use model::{Link, Resolved, SecretPlan, TokenSource};
pub use problem::{MAX_SUMMARY_LEN, Problem, Reason, summarize, summarize_within};
pub use report::{IdentityReport, MAX_STATUS_CHAIN, MAX_STATUS_MESSAGE_LEN, ProfileReport, validate_profile};
pub use rules::{clean_session_name, session_name};
pub use secrets::is_credential_name;
pub use walk::MAX_CHAIN_LINKS;
pub use warnings::Warning;

/// Operator settings that shape what a profile may ask for. They come from the
/// controller's configuration, never from a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Token audiences a provider may request. Default `["sts.amazonaws.com"]`.
    pub allowed_audiences: Vec<String>,
    /// `spec.endpoint_url` values an operator allow-listed (default none: refused).
    pub allowed_endpoints: Vec<String>,
    /// Shortest session a link may request, seconds. AWS: 900. Lowered only by a test
    /// setting so tests can watch several renewals.
    pub min_session_seconds: i64,
    /// Shortest token a provider may request, seconds (TokenRequest minimum: 600).
    pub min_token_seconds: i64,
    /// Region of a link when neither it nor a parent link names one in `principal.region`
    /// (Atmos: `us-east-1`; a provider's `region` is not used).
    pub default_region: String,
    /// `refreshBefore` for Identities that set none, seconds; `None`: two thirds of the session.
    pub default_refresh_before_seconds: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allowed_audiences: vec!["sts.amazonaws.com".to_owned()],
            allowed_endpoints: Vec::new(),
            min_session_seconds: 900,
            min_token_seconds: 600,
            default_region: rules::DEFAULT_REGION.to_owned(),
            default_refresh_before_seconds: None,
        }
    }
}

#[cfg(test)]
mod tests;
