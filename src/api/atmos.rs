//! Types that mirror Atmos's `auth:` schema (`pkg/schema/schema_auth.go`), same keys.
//!
//! The kinds the controller runs (`kubernetes/oidc`, `aws/assume-role`) have typed fields;
//! Atmos keys for other kinds are kept as free-form values so any Atmos profile is accepted.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::limits::{MAX_LIST_ITEMS, MAX_LONG_LEN, MAX_NAME_LEN, MAX_SHORT_LEN, MAX_VALUE_LEN};

/// `auth.providers.<name>`: where the first credential of a chain comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Provider {
    /// Provider kind. The controller runs `kubernetes/oidc`; other Atmos kinds
    /// (`github/oidc`, `aws/iam-identity-center`, `aws/saml`, ...) are accepted and
    /// reported as not runnable in a cluster. At most 256 characters.
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub kind: String,
    /// AWS region for the STS call of the first link (`AssumeRoleWithWebIdentity`). At most
    /// 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
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
    /// SSO start URL (`aws/iam-identity-center`; not runnable in a cluster). At most 2048
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub start_url: Option<String>,
    /// SAML URL (`aws/saml`; not runnable in a cluster). At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub url: Option<String>,
    /// SAML user name (`aws/saml`; not runnable in a cluster). At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub username: Option<String>,
    /// SAML browser driver (`aws/saml`; not runnable in a cluster). At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub driver: Option<String>,
    /// Atmos tags: labels that filter `atmos auth list` (kept for fidelity). At most 64
    /// tags of at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS), inner(length(max = MAX_SHORT_LEN)))]
    pub tags: Option<Vec<String>>,
}

/// `auth.providers.<name>.spec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ProviderSpec {
    /// Token audience (`kubernetes/oidc`, `github/oidc`). Default `sts.amazonaws.com`; must be
    /// in the controller's audience allow-list. At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub audience: Option<String>,
    /// `kubernetes/oidc`: the ServiceAccount whose token is requested, always in the
    /// Identity's own namespace. An Identity's `serviceAccountName` overrides it. At most
    /// 253 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_LEN))]
    pub service_account: Option<String>,
    /// `kubernetes/oidc`: lifetime of the requested token, a Go duration (`10m`, `1h`);
    /// 10 minutes to 1 hour. Default 10m: the token is used once, at once. At most 256
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub expiration: Option<String>,
    /// Atmos's STS endpoint override. Refused in a cluster: the STS endpoint is the
    /// controller's own configuration. At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
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
    /// reported as not runnable in a cluster. At most 256 characters.
    #[schemars(length(max = MAX_SHORT_LEN))]
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
    /// Environment variables Atmos sets for this identity, a list of `{key, value}`; at most
    /// 64 entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS))]
    pub env: Option<Vec<EnvVar>>,
    /// Static credentials (`aws/user` only; not runnable in a cluster, never put keys here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub credentials: Option<Value>,
    /// Atmos tags: labels that filter `atmos auth list` (kept for fidelity). At most 64
    /// tags of at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS), inner(length(max = MAX_SHORT_LEN)))]
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
    /// Name of a provider in the same profile (first link: `AssumeRoleWithWebIdentity`). At
    /// most 253 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_LEN))]
    pub provider: Option<String>,
    /// Name of another identity in the same profile (role chaining: `AssumeRole` with its
    /// credentials). At most 253 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_LEN))]
    pub identity: Option<String>,
}

/// `principal`: the role to assume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Principal {
    /// IAM role ARN, `arn:aws:iam::<12-digit account>:role/<name>`. Required for
    /// `aws/assume-role`. At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub assume_role: Option<String>,
    /// STS session name. Default `atmos-<identity>-<unix seconds>`, cleaned to AWS's
    /// character set and 64 characters. At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub session_name: Option<String>,
    /// External id for `AssumeRole`. Only on chained links (`via.identity`):
    /// `AssumeRoleWithWebIdentity` has no external id. At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub external_id: Option<String>,
    /// Session length, a Go duration (`1h`, `90m`): 15m to 12h, at most 1h when chained,
    /// and at most the role's MaxSessionDuration. Default 1h. At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub duration: Option<String>,
    /// Region of this link's STS call; default the parent's, else `us-east-1`. At most 256
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub region: Option<String>,
    /// Permission set name (`aws/permission-set`; not runnable in a cluster). At most 256
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
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
    /// Account name. At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub name: Option<String>,
    /// Account id. At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub id: Option<String>,
}

/// Atmos `session` block.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Session {
    /// Session length, a Go duration (`1h`). At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub duration: Option<String>,
}

/// One `{key, value}` of an identity's `env` list.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EnvVar {
    /// Variable name, at most 256 characters.
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub key: String,
    /// Variable value, at most 4096 characters.
    #[schemars(length(max = MAX_VALUE_LEN))]
    pub value: String,
}

/// Schema for Atmos's free-form maps: any object, kept as written.
pub(crate) fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
