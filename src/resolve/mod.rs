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

mod chain;
pub mod kinds;
mod merge;
mod model;
mod problem;
mod report;
pub mod rules;

pub use chain::resolve;
pub use merge::{MergeError, deep_merge, merge_over};
pub use model::{Link, Resolved, SecretPlan, TokenSource};
pub use problem::{MAX_SUMMARY_LEN, Problem, Reason, summarize};
pub use report::{IdentityReport, ProfileReport, validate_profile};
pub use rules::{check_session_name, clean_session_name, session_name};

/// Operator settings (defined with the flags that set them in [`crate::settings`]).
pub use crate::settings::Settings;

#[cfg(test)]
mod tests;
