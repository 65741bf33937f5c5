//! Types that mirror Atmos's `auth:` schema (`pkg/schema/schema_auth.go`), same keys.
//!
//! The kinds the controller runs (`kubernetes/oidc`, `aws/assume-role`) have typed fields;
//! Atmos keys for other kinds are kept as free-form values so any Atmos profile is accepted.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `auth.providers.<name>`: where the first credential of a chain comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Provider {
    /// Provider kind. The controller runs `kubernetes/oidc`; other Atmos kinds
    /// (`github/oidc`, `aws/iam-identity-center`, `aws/saml`, ...) are accepted and
    /// reported as not runnable in a cluster.
    pub kind: String,
    /// AWS region for the STS call of the first link (`AssumeRoleWithWebIdentity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Kind-specific settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ProviderSpec>,
    /// Atmos `session` block (`duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// Atmos `default` flag for providers (kept for fidelity; unused in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// SSO start URL (`aws/iam-identity-center`; not runnable in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_url: Option<String>,
    /// SAML URL (`aws/saml`; not runnable in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// SAML user name (`aws/saml`; not runnable in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SAML browser driver (`aws/saml`; not runnable in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Atmos tags: labels that filter `atmos auth list` (kept for fidelity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `auth.providers.<name>.spec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ProviderSpec {
    /// Token audience (`kubernetes/oidc`, `github/oidc`). Default `sts.amazonaws.com`; must be
    /// in the controller's audience allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `kubernetes/oidc`: the ServiceAccount whose token is requested, always in the
    /// Identity's own namespace. An Identity's `serviceAccountName` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// `kubernetes/oidc`: lifetime of the requested token, a Go duration (`10m`, `1h`);
    /// at least 10 minutes. Default 10m: the token is used once, at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Atmos's STS endpoint override. Refused in a cluster: the STS endpoint is the
    /// controller's own configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Other kind-specific Atmos keys, kept as written.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub extra: BTreeMap<String, Value>,
}

/// `auth.identities.<name>`: a credential obtained through a provider or another identity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct IdentityDef {
    /// Identity kind. The controller runs `aws/assume-role`; other Atmos kinds
    /// (`aws/permission-set`, `aws/user`, `aws/assume-root`, `aws/ambient`) are accepted and
    /// reported as not runnable in a cluster.
    pub kind: String,
    /// The identity used when an Identity resource names none. At most one per profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// Atmos `required` flag (kept for fidelity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Where this identity's credentials come from: exactly one of `provider`, `identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    /// The role to assume and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// Atmos `session` block (`duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// Environment variables Atmos sets for this identity, a list of `{key, value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Static credentials (`aws/user` only; not runnable in a cluster, never put keys here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub credentials: Option<Value>,
    /// Atmos tags: labels that filter `atmos auth list` (kept for fidelity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Kind-specific Atmos settings, free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub spec: Option<Value>,
}

/// `via`: exactly one of `provider` or `identity`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.provider) != has(self.identity)",
    "message": "set exactly one of via.provider (first link) or via.identity (role chaining)"
}]))]
pub struct Via {
    /// Name of a provider in the same profile (first link: `AssumeRoleWithWebIdentity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Name of another identity in the same profile (role chaining: `AssumeRole` with its
    /// credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// `principal`: the role to assume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Principal {
    /// IAM role ARN, `arn:aws:iam::<12-digit account>:role/<name>`. Required for
    /// `aws/assume-role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<String>,
    /// STS session name. Default `atmos-<identity>-<unix seconds>`, cleaned to AWS's
    /// character set and 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// External id for `AssumeRole`. Only on chained links (`via.identity`):
    /// `AssumeRoleWithWebIdentity` has no external id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Session length, a Go duration (`1h`, `90m`): 15m to 12h, at most 1h when chained,
    /// and at most the role's MaxSessionDuration. Default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Region of this link's STS call; default the parent's, else `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Permission set name (`aws/permission-set`; not runnable in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Account of a permission set (`aws/permission-set`; not runnable in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Other Atmos principal keys, kept as written.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub extra: BTreeMap<String, Value>,
}

/// `principal.account` of a permission set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Account {
    /// Account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Atmos `session` block.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Session {
    /// Session length, a Go duration (`1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// One `{key, value}` of an identity's `env` list.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EnvVar {
    /// Variable name.
    pub key: String,
    /// Variable value.
    pub value: String,
}

/// Schema for Atmos's free-form maps: any object, kept as written.
pub(crate) fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
