//! `AuthProfile`: the `auth:` block of an atmos.yaml profile.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kept::{AuthConsole, Integrations, Keyring, Logs};
use super::limits::{self, MAX_IDENTITIES, MAX_PROVIDERS};
use super::{Condition, IdentityDef, Provider};

/// The `auth:` block of atmos.yaml: providers and identities keyed by their Atmos names
/// (`acme/admin` is a valid key).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "auth.atmos.tools",
    version = "v1alpha1",
    kind = "AuthProfile",
    doc = "The `auth:` block of an atmos.yaml profile: providers and identities by their Atmos names. Identities in the same namespace name it in spec.profile.",
    namespaced,
    status = "AuthProfileStatus",
    shortname = "ap",
    category = "atmos",
    printcolumn = r#"{"name":"Identities","type":"integer","jsonPath":".status.identityCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct AuthProfileSpec {
    /// `auth.providers`: where chains start, keyed by Atmos provider name. At most 64
    /// providers, names at most 253 characters.
    #[serde(default)]
    #[schemars(extend("maxProperties" = MAX_PROVIDERS, "x-kubernetes-validations" = limits::names_at_most_253()))]
    pub providers: BTreeMap<String, Provider>,
    /// `auth.identities`: roles to assume, keyed by Atmos identity name. At most 256
    /// identities, names at most 253 characters.
    #[serde(default)]
    #[schemars(extend("maxProperties" = MAX_IDENTITIES, "x-kubernetes-validations" = limits::names_at_most_253()))]
    pub identities: BTreeMap<String, IdentityDef>,
    /// Atmos's credential isolation realm (not used in a cluster: Secrets are isolated by
    /// namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT_LEN))]
    pub realm: Option<String>,
    /// Atmos's auth log settings (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Logs>,
    /// Atmos's credential store on a workstation (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<Keyring>,
    /// Web console sign-in settings (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<AuthConsole>,
    /// Logins Atmos performs after authenticating (ECR, EKS, ...; not used in a cluster). At
    /// most 64, names at most 253 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::kept::integrations_schema")]
    pub integrations: Option<Integrations>,
}

/// What the controller found in the profile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthProfileStatus {
    /// `Ready` is True when every identity resolves and can run in a cluster.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of identities in the profile.
    #[serde(default)]
    pub identity_count: i64,
    /// The profile's default identity, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_identity: Option<String>,
    /// One entry per identity: its chain and whether it resolves.
    #[serde(default)]
    pub identities: Vec<IdentityState>,
    /// Keys kept but not used in a cluster, and values used as Atmos uses them, one line
    /// each (`path: why`); at most 50 and a count. They do not affect `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 51))]
    pub warnings: Vec<String>,
}

/// The state of one identity of a profile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityState {
    /// Atmos identity name.
    pub name: String,
    /// True when the chain resolves and every link can run in a cluster.
    pub ready: bool,
    /// `[provider, identity, ..., this identity]` when it reaches a provider: its first five
    /// names (see `chainLength`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// Number of names in the whole chain, set when `chain` shows only its first ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_length: Option<i64>,
    /// Reason it does not resolve or run (empty when ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What is wrong and what to do, cut to 512 bytes (the `Ready` condition and the
    /// `validate` command give more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
