//! Writing the Secret: a plain create the first time (a 409 means the name belongs to
//! someone else, whose Secret is never touched), server-side apply afterwards, and only
//! once the existing Secret's owner reference names this Identity's UID. And emptying the
//! Secrets an Identity wrote under a name it no longer uses (no `delete` right needed: the
//! garbage collector removes them with the Identity).
//!
//! The pure parts stand apart from the one that calls the API server, so each rule is tested
//! without one (what stands at the name is read by the Identity reconcile's gather step):
//! - `view.rs`: what stands at the Secret's name ([`Existing`]), and this process's own
//!   writes ([`Written`]);
//! - `record.rs`: the controller's record of its write ([`Record`]) and the data hash that
//!   tells whether a Secret at another version still holds what it wrote;
//! - `bodies.rs`: the Secret wanted and every patch sent (apply, tidy-up, restore, emptying);
//! - `to_empty.rs`: which of an Identity's Secrets still need emptying;
//! - `write.rs` (I/O): create, apply, restore, empty ([`write()`], [`supersede`], [`revoke`]).

mod bodies;
mod record;
mod to_empty;
mod view;
mod write;

pub use bodies::{desired, restore_patch, revoke_patch, supersede_patch};
pub use record::{Record, data_hash};
pub use to_empty::{ToEmpty, to_revoke, to_supersede, with_written};
pub use view::{Existing, Live, SecretWrite, SecretWrites, Written, owned_by};
pub use write::{Outcome, WriteMode, revoke, supersede, write};

/// A failed Secret write.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The name is taken by a Secret this Identity does not own.
    #[error(
        "Secret {namespace}/{name} exists and is not owned by this Identity; it was left untouched: choose another spec.secret.name, or delete that Secret if it is stale"
    )]
    Conflict {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The API server refused the write.
    #[error("writing Secret {namespace}/{name} failed: {source}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// API error (the request body is never part of it).
        #[source]
        source: kube::Error,
    },
}

impl SecretError {
    /// Condition reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::Conflict { .. } => "SecretConflict",
            Self::Api { .. } => "SecretWriteFailed",
        }
    }

    /// Whether a retry may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict { .. } => false,
            Self::Api {
                source: kube::Error::Api(s),
                ..
            } => s.code >= 500 || s.code == 429 || s.code == 409,
            Self::Api { .. } => true,
        }
    }
}
