//! The custom resources, group `auth.atmos.tools`, version `v1alpha1`.
//!
//! Fields that mirror atmos.yaml keep Atmos's snake_case keys so a profile can be pasted;
//! fields that exist only in Kubernetes use camelCase.

mod atmos;
mod cluster_profile;
mod free_form;
mod identity;
mod kept;
pub mod limits;
mod profile;
pub mod schema_limits;
mod status;

pub use atmos::{
    Account, CREDENTIAL_ENV_ENDINGS, CREDENTIAL_ENV_PARTS, EnvVar, IdentityDef, Principal, Provider, ProviderSpec,
    STATIC_KEY_FIELDS, Session, Via,
};
pub use cluster_profile::{
    ClusterAuthProfile, ClusterAuthProfileSpec, ClusterAuthProfileStatus, NamespaceSelector, OverrideField,
    SelectorRequirement,
};
pub use identity::{
    ConsumerStatus, DEFAULT_MOUNT_PATH, FederatedTokenSpec, Identity, IdentityOverrides, IdentitySpec, IdentityStatus,
    ImagePullSecretSpec, IssuedIdentity, MAX_PULL_INTEGRATIONS, MAX_RESTART_TARGETS, ProfileKind, RestartTarget,
    SecretFormat, SecretSpec, TokenDelivery, WorkloadKind, WrittenSecret,
};
pub use kept::{
    AuthConsole, Cluster, Integration, IntegrationSpec, IntegrationVia, Integrations, Keyring, Kubeconfig, Logs,
    ProviderConsole, Registry,
};
pub use profile::{AuthProfile, AuthProfileSpec, AuthProfileStatus, IdentityState};
pub use status::Condition;

/// API group of both resources.
pub const GROUP: &str = "auth.atmos.tools";
