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
//! profile; `rules` holds the field rules of Atmos, AWS and Kubernetes; `go_duration` is
//! Go's `time.ParseDuration`, which Atmos reads durations with; `names` looks names up as
//! Atmos does (ignoring case); `credential_fields`
//! refuses credentials in a resource's fields (a `password`, static keys, credential-named
//! `env`); `overrides` says which override fields an Identity may set; `warnings` lists what
//! is kept but not used in a cluster.

mod azure;
mod credential_fields;
pub mod delivery;
mod gcp;
pub mod go_duration;
mod identity;
mod identity_fields;
pub mod kinds;
mod link;
mod merge;
mod model;
pub mod names;
pub mod overrides;
mod problem;
mod provider;
pub mod registry;
mod report;
pub mod rules;
mod set;
pub mod settings;
mod target;
mod walk;
mod warnings;

pub use credential_fields::is_credential_name;
pub(crate) use gcp::token_audience as gcp_token_audience;
pub use identity::resolve;
pub use merge::{MergeError, deep_merge, merge_over};
pub use model::{
    AzureTarget, ConsumerRequirement, DEFAULT_TOKEN_MOUNT_PATH, Delivery, FEDERATED_TOKEN_FILE, Federation,
    FederationTarget, GCP_DEFAULT_SCOPE, GCP_DEFAULT_TOKEN_MOUNT_PATH, GCP_TOKEN_FILE, GcpTarget, Link, Resolved,
    SecretPlan, TokenSource, process_key,
};
pub use problem::{MAX_SUMMARY_LEN, Problem, Reason, summarize, summarize_within};
pub use report::{IdentityReport, MAX_STATUS_CHAIN, MAX_STATUS_MESSAGE_LEN, ProfileReport, validate_profile};
pub use rules::{clean_session_name, session_name};
pub use set::{ResolvedSet, resolve_set};
pub use walk::MAX_CHAIN_LINKS;
pub use warnings::Warning;

/// Operator settings (set by the operator's flags, never by a profile).
pub use settings::Settings;

#[cfg(test)]
mod tests;
