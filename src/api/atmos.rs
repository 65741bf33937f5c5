//! Types that mirror Atmos's `auth:` schema (`pkg/schema/schema_auth.go`), same keys.
//!
//! The kinds the controller runs (`kubernetes/oidc`, `aws/assume-role`) have typed fields;
//! Atmos keys for other kinds are kept as free-form values so any Atmos profile is accepted.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::free_form::{self, take};
use super::kept::ProviderConsole;
use super::limits::{MAX_LIST_ITEMS, MAX_LONG_LEN, MAX_NAME_LEN, MAX_SHORT_LEN, MAX_VALUE_LEN};

/// `auth.providers.<name>`: where the first credential of a chain comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.password)",
    "message": "password is refused: anyone who may view this namespace can read an AuthProfile; remove it (a SAML login needs a person and cannot run in a cluster; on a workstation Atmos asks for the password)"
}]))]
pub struct Provider {
    /// Provider kind. The controller runs `kubernetes/oidc`; other Atmos kinds
    /// (`github/oidc`, `aws/iam-identity-center`, `aws/saml`, ...) are accepted and
    /// reported as not runnable in a cluster. At most 256 characters.
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub kind: String,
    /// Not used, as in Atmos: the region of a chain is its links' `principal.region`, else
    /// the operator's default region. A warning names both when they differ. At most 256
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub region: Option<String>,
    /// Kind-specific settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "provider_spec_schema")]
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
    /// SAML password: refused. A custom resource is readable by anyone who may view the
    /// namespace; Atmos asks for the password on a workstation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Deprecated Atmos name of `driver` (`aws/saml`; not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub provider_type: Option<String>,
    /// `aws/saml` browser setting (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_browser_driver: Option<bool>,
    /// `aws/saml` browser setting (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub browser_type: Option<String>,
    /// `aws/saml` browser setting (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub browser_executable_path: Option<String>,
    /// `aws/iam-identity-center` identity provisioning at login (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_provision_identities: Option<bool>,
    /// Web console sign-in settings (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ProviderConsole>,
}

/// `auth.providers.<name>.spec`: kind-specific settings, a free-form map like Atmos's
/// (bounded: see `free_form`); the keys below are the ones `kubernetes/oidc` reads.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct ProviderSpec {
    /// Token audience (`kubernetes/oidc`, `github/oidc`). Default `sts.amazonaws.com`; must be
    /// in the controller's audience allow-list. At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `kubernetes/oidc`: the ServiceAccount whose token is requested, always in the
    /// Identity's own namespace. An Identity's `serviceAccountName` overrides it. At most
    /// 253 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// `kubernetes/oidc`: lifetime of the requested token, a Go duration (`10m`, `1h`);
    /// 10 minutes to 1 hour. Default 10m: the token is used once, at once. At most 256
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Not used, as in Atmos, which uses a provider's endpoint only for SSO and SAML logins:
    /// an STS call goes to its identity's `spec.endpoint_url` (a warning says so). At most
    /// 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Other kind-specific Atmos keys (and a known key of the wrong type), kept as written.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for ProviderSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut extra = BTreeMap::<String, Value>::deserialize(deserializer)?;
        Ok(Self {
            audience: take(&mut extra, "audience"),
            service_account: take(&mut extra, "service_account"),
            expiration: take(&mut extra, "expiration"),
            endpoint_url: take(&mut extra, "endpoint_url"),
            extra,
        })
    }
}

/// Schema of `ProviderSpec`: a bounded free-form map, known keys' lengths on top (used on each
/// field of this type: through an `impl JsonSchema` the generated CRD lost `additionalProperties`).
pub(crate) fn provider_spec_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = free_form::map_with_known(&[
        ("audience", json!({"maxLength": MAX_LONG_LEN})),
        ("service_account", json!({"maxLength": MAX_NAME_LEN})),
        ("expiration", json!({"maxLength": MAX_SHORT_LEN})),
        ("endpoint_url", json!({"maxLength": MAX_LONG_LEN})),
        // azure/oidc (Atmos's pkg/auth/providers/azure/oidc.go).
        ("tenant_id", json!({"maxLength": MAX_SHORT_LEN})),
        ("client_id", json!({"maxLength": MAX_SHORT_LEN})),
        ("subscription_id", json!({"maxLength": MAX_SHORT_LEN})),
        ("location", json!({"maxLength": MAX_SHORT_LEN})),
        ("cloud_environment", json!({"maxLength": MAX_SHORT_LEN})),
        ("token_file_path", json!({"maxLength": MAX_LONG_LEN})),
    ]);
    schema.insert(
        "description".to_owned(),
        "Kind-specific settings, free-form as in Atmos. kubernetes/oidc reads `audience` \
         (default sts.amazonaws.com, must be in the controller's allow-list), \
         `service_account` (in the Identity's namespace; an Identity's serviceAccountName \
         overrides it) and `expiration` (token lifetime, a Go duration, 10m to 1h, default \
         10m); `endpoint_url` is not used (as in Atmos, an STS call goes to its identity's \
         spec.endpoint_url). azure/oidc reads `tenant_id` and `client_id` (required), \
         `subscription_id`, `location`, `cloud_environment` (public, usgovernment, china), \
         `audience` (default api://AzureADTokenExchange) and `service_account`/`expiration` as \
         kubernetes/oidc; `token_file_path` is not used in a cluster. At most 32 \
         keys; values are scalars, lists of scalars or maps of those."
            .into(),
    );
    schema
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
    #[schemars(schema_with = "principal_schema")]
    pub principal: Option<Principal>,
    /// Atmos `session` block (`duration`): read by Atmos for `aws/user` only. Not used for
    /// `aws/assume-role`, whose duration is `principal.duration` (a warning says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// Environment variables Atmos sets for this identity, a list of `{key, value}`; at most
    /// 64 entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS))]
    pub env: Option<Vec<EnvVar>>,
    /// Atmos `credentials` (`aws/user` only; not runnable in a cluster), strings only.
    /// `access_key_id` and `secret_access_key` are refused: a custom resource is readable by
    /// anyone who may view the namespace. Atmos's legacy STS endpoint
    /// `credentials.aws.resolver.url` belongs in `spec.endpoint_url` here (`import` moves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "credentials_schema")]
    pub credentials: Option<Value>,
    /// Atmos tags: labels that filter `atmos auth list` (kept for fidelity). At most 64
    /// tags of at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS), inner(length(max = MAX_SHORT_LEN)))]
    pub tags: Option<Vec<String>>,
    /// Kind-specific Atmos settings, free-form. `aws/assume-role` reads `endpoint_url`: the
    /// STS endpoint of this identity's call, as in Atmos; used only when the operator
    /// allow-listed it (`--allowed-endpoint`), refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form::map")]
    pub spec: Option<Value>,
    /// Provider of an identity Atmos provisioned from an SSO login (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_LEN))]
    pub provider: Option<String>,
    /// Display alias of Atmos's CLI (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub alias: Option<String>,
    /// Emulator component of Atmos's emulator kinds (not used in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub emulator: Option<String>,
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

/// `principal`: the role to assume; a free-form map like Atmos's (bounded: see
/// `free_form`), the keys below are the ones the controller reads.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct Principal {
    /// IAM role ARN, `arn:aws:iam::<12-digit account>:role/<name>`. Required for
    /// `aws/assume-role`. At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<String>,
    /// STS session name, rewritten as Atmos does: characters outside `[A-Za-z0-9+=,.@-]`
    /// become `-`, cut to 64. Default `atmos-<identity>-<unix seconds>`, rewritten the same.
    /// At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// External id for `AssumeRole` (`via.identity`). On a `via.provider` link it is not
    /// used, as in Atmos (`AssumeRoleWithWebIdentity` has no external id): a warning. At
    /// most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Session length, a Go duration (`1h`, `90m`): 15m to 12h, at most 1h when chained,
    /// and at most the role's MaxSessionDuration. Default 1h. At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Region of this link's STS call and of the credentials written; default the parent
    /// link's, else the operator's default region (`us-east-1` unless configured). At most
    /// 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Permission set name (`aws/permission-set`; not runnable in a cluster). At most 256
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Account of a permission set (`aws/permission-set`; not runnable in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Other Atmos principal keys (and a known key of the wrong type), kept as written.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut extra = BTreeMap::<String, Value>::deserialize(deserializer)?;
        Ok(Self {
            assume_role: take(&mut extra, "assume_role"),
            session_name: take(&mut extra, "session_name"),
            external_id: take(&mut extra, "external_id"),
            duration: take(&mut extra, "duration"),
            region: take(&mut extra, "region"),
            name: take(&mut extra, "name"),
            account: take(&mut extra, "account"),
            extra,
        })
    }
}

/// Schema of `Principal`: a bounded free-form map, known keys' lengths on top (used on each
/// field of this type: through an `impl JsonSchema` the generated CRD lost `additionalProperties`).
pub(crate) fn principal_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = free_form::map_with_known(&[
        ("assume_role", json!({"maxLength": MAX_LONG_LEN})),
        ("session_name", json!({"maxLength": MAX_SHORT_LEN})),
        ("external_id", json!({"maxLength": MAX_LONG_LEN})),
        ("duration", json!({"maxLength": MAX_SHORT_LEN})),
        ("region", json!({"maxLength": MAX_SHORT_LEN})),
        ("name", json!({"maxLength": MAX_SHORT_LEN})),
    ]);
    schema.insert(
        "description".to_owned(),
        "The role to assume, free-form as in Atmos. aws/assume-role reads `assume_role` \
         (the role ARN, required), `session_name` (rewritten as Atmos does; default \
         atmos-<identity>-<unix seconds>), `external_id` (on via.identity links only), \
         `duration` (a Go duration, 15m to 12h, at most 1h when chained; default 1h) and \
         `region` (default the parent link's, else the operator's). aws/permission-set \
         uses `name` and `account: {name, id}`. At most 32 keys; values are scalars, lists \
         of scalars or maps of those."
            .into(),
    );
    schema
}

/// Schema of an Identity's `principal` override: like [`principal_schema`], but each value
/// is a string or an integer (`x-kubernetes-int-or-string`). Why: the API server's CEL cannot
/// see a property whose values have no type, and the Identity's rules must see
/// `principal.external_id`; an override's principal keys are scalars in practice (a
/// permission set's `account` map means nothing in a cluster).
pub(crate) fn override_principal_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = principal_schema(&mut schemars::SchemaGenerator::default());
    schema.insert(
        "additionalProperties".to_owned(),
        json!({"x-kubernetes-int-or-string": true, "maxLength": MAX_VALUE_LEN}),
    );
    schema.insert(
        "description".to_owned(),
        "Deep-merged over the identity's `principal`: `assume_role`, `session_name`, `duration`, \
         `region` (strings or integers; at most 32 keys). With a ClusterAuthProfile, only the \
         fields its `allowedOverrides` lists, and never `external_id`."
            .into(),
    );
    schema
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

/// One `{key, value}` of an identity's `env` list. Names that look like credentials (containing
/// SECRET, PASSW, ACCESS_KEY, PRIVATE_KEY or API_KEY, or ending in TOKEN) are refused.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(transform = env_var_rules)]
pub struct EnvVar {
    /// Variable name, at most 100 characters.
    #[schemars(length(max = MAX_ENV_NAME_LEN))]
    pub key: String,
    /// Variable value, at most 4096 characters.
    #[schemars(length(max = MAX_VALUE_LEN))]
    pub value: String,
}

/// Environment variable names that look like credentials, refused in `env` (here by the
/// CRD's CEL rule, in the resolver, with the path), because a custom resource is readable
/// by anyone who may view the namespace: a name that contains one of these, in any case
/// (`AWS_SECRET_ACCESS_KEY`, `AWS_ACCESS_KEY_ID`, `TF_VAR_db_password`, `DB_PASSWD`, ...)...
pub const CREDENTIAL_ENV_PARTS: &[&str] = &["SECRET", "PASSW", "ACCESS_KEY", "PRIVATE_KEY", "API_KEY"];
/// Longest `env` name. The CEL rule that refuses credential names runs on every entry of
/// every identity, and the apiserver refuses a CRD whose rule's estimated cost (which grows
/// with this length) is over its budget; real variable names are far shorter.
pub const MAX_ENV_NAME_LEN: u32 = 100;

/// ... or ends with one of these (`AWS_SESSION_TOKEN`, `GITHUB_TOKEN`; not
/// `AWS_WEB_IDENTITY_TOKEN_FILE`, a path).
pub const CREDENTIAL_ENV_ENDINGS: &[&str] = &["TOKEN"];

/// Keys of an identity's `credentials` that hold static AWS keys: refused.
pub const STATIC_KEY_FIELDS: &[&str] = &["access_key_id", "secret_access_key"];

/// The CEL rule refusing credential-named `env` entries, on each entry: plain `contains`
/// and `endsWith` (a regex over every entry of every identity exceeds the apiserver's cost
/// budget; `key`'s `maxLength` bounds the estimate).
fn env_var_rules(schema: &mut schemars::Schema) {
    let tests: Vec<String> = CREDENTIAL_ENV_PARTS
        .iter()
        .map(|part| format!("self.key.upperAscii().contains('{part}')"))
        .chain(
            CREDENTIAL_ENV_ENDINGS
                .iter()
                .map(|end| format!("self.key.upperAscii().endsWith('{end}')")),
        )
        .collect();
    schema.insert(
        "x-kubernetes-validations".to_owned(),
        serde_json::json!([{
            "rule": format!("!({})", tests.join(" || ")),
            "message": "an env entry named like a credential is refused: anyone who may view this namespace can read this resource; the controller writes the role's credentials into the Identity's Secret, other secrets belong in a Kubernetes Secret the consumer pod reads (envFrom or secretKeyRef)"
        }]),
    );
}

/// Schema for `credentials`: a map of at most 32 strings (Atmos's `aws/user` keys:
/// `region`, `mfa_arn`, ...), typed so a CEL rule can refuse the static key fields.
pub(crate) fn credentials_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": free_form::MAX_FREE_FORM_KEYS,
        "additionalProperties": {"type": "string", "maxLength": MAX_VALUE_LEN},
        "x-kubernetes-validations": [{
            "rule": "!has(self.access_key_id) && !has(self.secret_access_key)",
            "message": "static keys (access_key_id, secret_access_key) are refused: anyone who may view this namespace can read an AuthProfile; Atmos keeps an aws/user's keys in its keyring on a workstation (atmos auth user configure), and kind aws/assume-role via kubernetes/oidc needs none"
        }]
    })
}
