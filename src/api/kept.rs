//! Atmos `auth:` keys that have no meaning in a cluster (`realm`, `logs`, `keyring`,
//! `console`, `integrations`, and the login settings of SSO and SAML providers). The schema
//! holds them, with Atmos's keys and types, so a pasted block applies with kubectl's strict
//! field validation; the controller keeps them as written, uses none of them, and lists each
//! one present in the AuthProfile's `status.warnings` and in `validate`'s output.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::free_form;
use super::limits::{self, MAX_LIST_ITEMS, MAX_LONG_LEN, MAX_PROVIDERS, MAX_SHORT_LEN};

/// `auth.logs`: Atmos's auth log settings. Not used: the controller logs as its
/// `--log-level` says.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Logs {
    /// Log file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub file: Option<String>,
    /// Log level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub level: Option<String>,
}

/// `auth.keyring`: where Atmos stores credentials on a workstation. Not used: the
/// controller keeps credentials in Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Keyring {
    /// `system`, `file` or `memory`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub type_: Option<String>,
    /// Backend settings, free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form::map")]
    pub spec: Option<Value>,
}

/// `auth.console`: web console sign-in for a person. Not used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AuthConsole {
    /// Isolated browser sessions per identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated: Option<bool>,
}

/// A provider's `console`: web console sign-in for a person. Not used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ProviderConsole {
    /// Console session length, a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub session_duration: Option<String>,
}

/// `auth.integrations.<name>`: a login (ECR, EKS, ...) Atmos performs with an identity's
/// credentials. Not used: consumers log in with the credentials of the Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Integration {
    /// Integration kind (`aws/ecr`, `aws/eks`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub kind: Option<String>,
    /// The identity or provider whose credentials it uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IntegrationVia>,
    /// Kind-specific settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<IntegrationSpec>,
}

/// An integration's `via`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct IntegrationVia {
    /// Identity name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub identity: Option<String>,
    /// Provider name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub provider: Option<String>,
}

/// An integration's `spec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct IntegrationSpec {
    /// Log in when the identity logs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_provision: Option<bool>,
    /// Registry (`aws/ecr`, `azure/acr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<Registry>,
    /// Cluster (`aws/eks`, `azure/aks`, `gcp/gke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
    /// Source repositories (`github/sts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS), inner(length(max = MAX_SHORT_LEN)))]
    pub repos: Option<Vec<String>>,
    /// Trust policy name (`github/sts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub policy_name: Option<String>,
    /// Git configuration mode (`github/sts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub git_config_mode: Option<String>,
    /// Revoke tokens at the end of a command (`github/sts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_on_exit: Option<bool>,
    /// Variable name of the minted token (`github/sts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub token_env: Option<String>,
}

/// A container registry of an integration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Registry {
    /// AWS account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub account_id: Option<String>,
    /// AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub region: Option<String>,
    /// Azure registry name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub name: Option<String>,
    /// Azure tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub tenant_id: Option<String>,
}

/// A Kubernetes cluster of an integration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Cluster {
    /// Cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub name: Option<String>,
    /// AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub region: Option<String>,
    /// Azure resource group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub resource_group: Option<String>,
    /// Azure subscription id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub subscription_id: Option<String>,
    /// GCP project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub project_id: Option<String>,
    /// GCP location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub location: Option<String>,
    /// kubeconfig context name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub alias: Option<String>,
    /// kubeconfig file settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<Kubeconfig>,
}

/// kubeconfig file settings of an integration's cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Kubeconfig {
    /// File path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub path: Option<String>,
    /// File mode, octal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub mode: Option<String>,
    /// `merge`, `replace` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub update: Option<String>,
}

/// `auth.integrations`, by name.
pub type Integrations = BTreeMap<String, Integration>;

/// Schema of `auth.integrations`: at most as many as providers, names bounded like theirs.
pub(crate) fn integrations_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Option<Integrations>>();
    schema.insert("maxProperties".to_owned(), MAX_PROVIDERS.into());
    schema.insert("x-kubernetes-validations".to_owned(), limits::names_at_most_253());
    schema
}
