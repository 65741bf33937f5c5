//! The custom resources, group `auth.atmos.tools`, version `v1alpha1`.
//!
//! Fields that mirror atmos.yaml keep Atmos's snake_case keys so a profile can be pasted;
//! fields that exist only in Kubernetes use camelCase.

mod atmos;
mod identity;
mod profile;
mod status;

pub use atmos::{Account, EnvVar, IdentityDef, Principal, Provider, ProviderSpec, Session, Via};
pub use identity::{
    DEFAULT_MOUNT_PATH, Identity, IdentityOverrides, IdentitySpec, IdentityStatus, SecretFormat, SecretSpec,
};
pub use profile::{AuthProfile, AuthProfileSpec, AuthProfileStatus, IdentityState};
pub use status::Condition;

/// API group of both resources.
pub const GROUP: &str = "auth.atmos.tools";
