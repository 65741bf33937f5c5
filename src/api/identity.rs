//! `Identity`: one Secret of role credentials for one Atmos identity of a profile.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::limits::{MAX_FORMATS, MAX_LIST_ITEMS, MAX_LONG_LEN, MAX_NAME_LEN, MAX_SECRET_IDENTITIES, MAX_SHORT_LEN};
use super::{Condition, EnvVar, Principal, Session, Via};

/// Keeps a Secret of AWS role credentials fresh for one identity of an `AuthProfile` in the
/// same namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "auth.atmos.tools",
    version = "v1alpha1",
    kind = "Identity",
    doc = "One Secret of AWS role credentials for one Atmos identity of an AuthProfile in the same namespace, renewed before it expires.",
    namespaced,
    status = "IdentityStatus",
    shortname = "aid",
    category = "atmos",
    printcolumn = r#"{"name":"Identity","type":"string","jsonPath":".status.identity"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".status.expiration"}"#,
    printcolumn = r#"{"name":"Renews","type":"string","jsonPath":".status.renewalTime","priority":1}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".status.secretName","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = identity_rules()))]
pub struct IdentitySpec {
    /// Name of the profile: an `AuthProfile` in this namespace, or a `ClusterAuthProfile`
    /// with `profileKind: ClusterAuthProfile` (at most 253 characters).
    #[schemars(length(max = MAX_NAME_LEN))]
    pub profile: String,
    /// Kind of `profile`: `AuthProfile` (the default, in this namespace) or
    /// `ClusterAuthProfile` (cluster-wide, if it selects this namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_kind: Option<ProfileKind>,
    /// Atmos identity name in the profile (`acme/network`). Left out: the profile's default
    /// identity. At most 253 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_LEN))]
    pub identity: Option<String>,
    /// Several Atmos identities of the profile in one Secret, one AWS profile each (instead
    /// of `identity`). Every pod that mounts the Secret holds every role in it. Not with the
    /// `env` format, nor with the override fields (`kind`, `via`, `principal`, `session`,
    /// `env`). At most 16 names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minItems" = 1, "x-kubernetes-list-type" = "set"))]
    #[schemars(length(max = MAX_SECRET_IDENTITIES), inner(length(max = MAX_NAME_LEN)))]
    pub identities: Option<Vec<String>>,
    /// ServiceAccount in this namespace whose token starts the chain. Left out: the
    /// provider's `spec.service_account`. At most 253 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_LEN))]
    pub service_account_name: Option<String>,
    /// Renew this long before expiry, a Go duration (`20m`). Left out: renew at two thirds
    /// of the session's lifetime. It can only make renewal earlier: the renewal point is
    /// kept between a tenth and two thirds of the lifetime, so at least a third remains.
    /// At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub refresh_before: Option<String>,
    /// The Secret written: name, formats, mount path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretSpec>,
    /// A second Secret, of type `kubernetes.io/dockerconfigjson` (for `imagePullSecrets`),
    /// holding a registry login for each of the profile's `aws/ecr` and `aws/ecr-public`
    /// integrations chosen here, made with this Identity's sessions and renewed with them.
    /// Left out: no registry login (the Identity behaves as without integrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<ImagePullSecretSpec>,
    /// How consumer pods get the ServiceAccount token that a cloud's SDK exchanges itself
    /// (`azure/oidc`). Left out: `delivery: Projected`. Refused for AWS chains for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_token: Option<FederatedTokenSpec>,
    /// Workloads of this namespace restarted (a pod template annotation) after the Secret's
    /// credentials change, for consumers that read them only at start (the `env` format,
    /// files read once by an SDK). Debounced: one restart per workload per window of a tenth
    /// of the credentials' remaining lifetime, however many Identities name it. Whoever writes
    /// the Identity must be allowed to `patch` each workload, and the controller is granted
    /// `get` and `patch` per named workload by the namespace (docs/operations.md). At most 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_RESTART_TARGETS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["kind", "name"]))]
    pub rollout_restart_targets: Option<Vec<RestartTarget>>,
    /// Identity fields deep-merged over the profile's definition, field by field (Atmos's
    /// component-level rule). With a ClusterAuthProfile: only those its `allowedOverrides`
    /// lists, never `kind`, `via` or `principal.external_id`.
    #[serde(flatten)]
    pub overrides: IdentityOverrides,
}

/// The most workloads one Identity restarts.
pub const MAX_RESTART_TARGETS: usize = 16;

/// A workload restarted after the credentials change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub struct RestartTarget {
    /// `Deployment`, `StatefulSet` or `DaemonSet` (group `apps`).
    pub kind: WorkloadKind,
    /// Its name, in the Identity's namespace (at most 253 characters).
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub name: String,
}

/// The workload kinds whose pods a pod-template annotation restarts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
}

impl WorkloadKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
        }
    }

    /// Its resource (plural, lower case) in group `apps`.
    pub fn resource(self) -> &'static str {
        match self {
            Self::Deployment => "deployments",
            Self::StatefulSet => "statefulsets",
            Self::DaemonSet => "daemonsets",
        }
    }
}

/// Which kind of profile an Identity names.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ProfileKind {
    /// An `AuthProfile` in the Identity's namespace.
    #[default]
    AuthProfile,
    /// A `ClusterAuthProfile` that selects the Identity's namespace.
    ClusterAuthProfile,
}

impl ProfileKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthProfile => "AuthProfile",
            Self::ClusterAuthProfile => "ClusterAuthProfile",
        }
    }
}

impl IdentitySpec {
    /// The kind of profile named (`AuthProfile` when left out).
    pub fn profile_ref_kind(&self) -> ProfileKind {
        self.profile_kind.unwrap_or_default()
    }
}

/// The apply-time rules across fields (CEL): the resolver checks the same, for `validate`
/// and for an API server without them.
fn identity_rules() -> serde_json::Value {
    serde_json::json!([
        {
            "rule": "!(has(self.identity) && has(self.identities))",
            "message": "set spec.identity or spec.identities, not both",
        },
        {
            "rule": "!has(self.identities) || !has(self.secret) || !has(self.secret.formats) || !self.secret.formats.exists(f, f == 'env')",
            "message": "spec.identities cannot use the env format: environment variables hold one identity; use process or files, or one Identity per identity",
        },
        // A platform's profile is used as written: whoever may write Identities in a selected
        // namespace may not reshape its chain or reuse its external id with another role. The
        // profile's `allowedOverrides` (checked by the resolver) may allow other fields.
        {
            "rule": "!has(self.profileKind) || self.profileKind != 'ClusterAuthProfile' || !(has(self.kind) || has(self.via) || (has(self.principal) && 'external_id' in self.principal))",
            "message": "an Identity that uses a ClusterAuthProfile cannot override kind, via or principal.external_id: the platform's profile is used as written (its spec.allowedOverrides may allow principal.assume_role, session_name, duration, region, session.duration or env); remove the field, or use an AuthProfile of this namespace",
        },
        {
            "rule": "!has(self.identities) || !(has(self.kind) || has(self.via) || has(self.principal) || has(self.session) || has(self.env))",
            "message": "spec.identities cannot be combined with overrides (kind, via, principal, session, env): they would apply to every identity; write one Identity per overridden identity",
        },
    ])
}

/// Atmos identity fields an `Identity` may override; same keys as atmos.yaml.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct IdentityOverrides {
    /// Overrides the identity's `kind` (at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub kind: Option<String>,
    /// Overrides the identity's `via`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    /// Deep-merged over the identity's `principal` (for example `session_name`, `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::atmos::override_principal_schema")]
    // Boxed: every cached Identity carries the field, nearly always unset; inline it took
    // 216 of the Identity's 1 208 bytes.
    pub principal: Option<Box<Principal>>,
    /// Overrides the identity's `session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// Replaces the identity's `env` list (lists replace, as in Atmos); at most 64 entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS))]
    pub env: Option<Vec<EnvVar>>,
}

/// Default directory a consumer mounts the Secret at.
pub const DEFAULT_MOUNT_PATH: &str = "/var/run/secrets/atmos-auth";

/// The Secret the controller writes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    /// Secret name. Left out: the Identity's name. At most 253 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_LEN))]
    pub name: Option<String>,
    /// What the Secret holds. Default `[process]`. Combining `env` or `files` with `process`
    /// in one pod disables renewal there: SDKs prefer static keys over `credential_process`.
    /// At most 8 entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_FORMATS))]
    pub formats: Option<Vec<SecretFormat>>,
    /// Where consumers mount the Secret (as a volume, no `subPath`); used in
    /// `credential_process = cat <mountPath>/credential_process.json`.
    /// Default `/var/run/secrets/atmos-auth`. At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub mount_path: Option<String>,
}

/// The most integrations one image-pull Secret holds.
pub const MAX_PULL_INTEGRATIONS: usize = 16;

/// The image-pull Secret of an Identity: its name and the integrations it logs in with.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePullSecretSpec {
    /// Name of the `kubernetes.io/dockerconfigjson` Secret; must differ from the credential
    /// Secret's. At most 253 characters.
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub name: String,
    /// Names of the profile's `auth.integrations` to log in with: each `aws/ecr` or
    /// `aws/ecr-public`, with `via.identity` one of this Identity's identities. Left out:
    /// every such integration whose `spec.auto_provision` is not `false` (Atmos logs in to
    /// those when the identity logs in). At most 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PULL_INTEGRATIONS), inner(length(max = MAX_SHORT_LEN)))]
    pub integrations: Option<Vec<String>>,
}

/// Where a consumer pod finds the federated token its SDK exchanges.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedTokenSpec {
    /// `Projected` (default): the Secret holds settings only, pointing at a projected
    /// ServiceAccount token volume of the consumer pod, which must then run as the resolved
    /// ServiceAccount (status names it). `Secret`: the controller keeps a 1-hour token file in
    /// the Secret, renewed at half-life, for pods that cannot run as that ServiceAccount;
    /// anyone who can read the Secret can then federate as that ServiceAccount wherever it is
    /// trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<TokenDelivery>,
    /// `Projected`: where the consumer pod mounts the projected token volume; the token file
    /// is `<mountPath>/azure-identity-token` (Azure; default `/var/run/secrets/azure/tokens`,
    /// the layout of Azure Workload Identity's webhook) or `<mountPath>/gcp-identity-token`
    /// (GCP; default `/var/run/secrets/gcp/tokens`). At most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LONG_LEN))]
    pub mount_path: Option<String>,
}

/// How the federated token reaches the consumer pod.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum TokenDelivery {
    /// A projected ServiceAccount token volume in the consumer pod; no token at rest.
    Projected,
    /// A token file kept fresh in the Secret (opt-in).
    Secret,
}

/// A layout of the Secret's data.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretFormat {
    /// `config` with `credential_process` and `credential_process.json`: renewed in place,
    /// for long runs.
    Process,
    /// Atmos's `credentials` and `config` files: read once per process.
    Files,
    /// `AWS_*` keys for `envFrom`: for short Jobs only.
    Env,
    /// GCP chains only, and alone: `GOOGLE_OAUTH_ACCESS_TOKEN`, the impersonated access
    /// token, renewed at two thirds of its life. Terraform's google provider prefers it to
    /// `GOOGLE_APPLICATION_CREDENTIALS`, so it never shares a Secret with that setting.
    #[serde(rename = "gcp-access-token")]
    GcpAccessToken,
}

/// What the controller did and found.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityStatus {
    /// `Ready`: True while the Secret holds valid credentials for the current spec.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Atmos identity resolved (the default one when `spec.identity` is left out); with
    /// `spec.identities`, the names joined by `,`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// With `spec.identities`: each identity's AWS profile, data key and expiry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SECRET_IDENTITIES))]
    pub identities: Vec<IssuedIdentity>,
    /// `[provider, identity, ..., target]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// The role of the last link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The STS session name of the last link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// The Secret written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// When the credentials in the Secret expire (RFC 3339, from STS; with several
    /// identities, the earliest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// When the controller will renew them (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<String>,
    /// When the Secret was last written with new credentials (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_time: Option<String>,
    /// What the controller last wrote to the Secret (or found there unchanged): renewal is
    /// decided from this record and `expiration` / `renewalTime`, never from the Secret's
    /// annotations, which anyone who may write the Secret can set. A Secret at another
    /// version is read once and its data compared with the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<WrittenSecret>,
    /// What the controller last wrote to the image-pull Secret (`spec.imagePullSecret`), as
    /// `written` for the credential Secret. Its logins renew with the credentials: the
    /// `expiration` and `renewalTime` above are the earliest of both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<WrittenSecret>,
    /// The last renewal request (`auth.atmos.tools/renew-requested-at`, set by `renew`) the
    /// controller answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub renew_requested_at: Option<String>,
    /// When the credentials answering it were written (RFC 3339): by the renewal it caused,
    /// or by one less than the minimum refresh interval before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub renew_served_at: Option<String>,
    /// When the last attempt failed (RFC 3339); cleared on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<String>,
    /// Failed attempts since the last success; drives the backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<u32>,
    /// What this Identity's fields and chain say that is not used, or is used as Atmos uses
    /// it (a rewritten `spec.principal.session_name`, ...), one line each (`path: why`); at
    /// most 50 and a count. They do not affect `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 51))]
    pub warnings: Vec<String>,
    /// With a projected federated token (`federatedToken.delivery: Projected`, an Azure
    /// chain's default): what a consumer pod must provide, since a pod can only project its
    /// own ServiceAccount's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerStatus>,
}

/// What a consumer pod of a settings-only Secret must provide (also the Secret's
/// `consumer.json`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    /// The pod's `spec.serviceAccountName`.
    pub service_account_name: String,
    /// The projected token's `audience`.
    pub audience: String,
    /// Where the projected token volume is mounted.
    pub mount_path: String,
    /// The token file the Secret's settings name.
    pub token_path: String,
}

/// One identity of a Secret that holds several.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedIdentity {
    /// Atmos identity name (also the AWS profile name; `default` is `[default]`).
    pub name: String,
    /// The role of its last link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// With `process`: the data key its `credential_process` reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<String>,
    /// When its credentials expire (RFC 3339, from STS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
}

/// The controller's record of the Secret it wrote: the version the API server gave that
/// write, a hash of the data written and the resolved spec it was made for.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WrittenSecret {
    /// The Secret's name.
    #[schemars(length(max = MAX_NAME_LEN))]
    pub name: String,
    /// Its `metadata.resourceVersion` after the controller's write (or after a read that
    /// found the same data at a new version).
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub resource_version: String,
    /// SHA-256 of the data written (hex; keys and values, in key order).
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub data_hash: String,
    /// Hash of the resolved spec the credentials were made for.
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub spec_hash: String,
}
