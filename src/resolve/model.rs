//! What resolution produces: everything one refresh needs, nothing read from I/O.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::warnings::Warning;
use crate::api::SecretFormat;

/// A fully resolved and validated Identity: the token to request, the STS calls to make
/// in order, and the Secret to write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// Atmos's name of the target (the default identity when none was named), lower-cased as
    /// Atmos reads it: the `[profile ...]` section and `AWS_PROFILE` value.
    pub identity: String,
    /// `[provider, identity, ..., target]`.
    pub chain: Vec<String>,
    /// The projected ServiceAccount token that starts the chain.
    pub token: TokenSource,
    /// STS calls in order: `links[0]` is `AssumeRoleWithWebIdentity`, the rest `AssumeRole`.
    pub links: Vec<Link>,
    /// Region written to the consumer's `config` (the target link's region).
    pub region: String,
    /// The Secret to write.
    pub secret: SecretPlan,
    /// `refreshBefore`, in seconds, when set. Scheduling only: not part of the spec hash, so
    /// changing it (or the operator's default) does not renew every Secret at once.
    #[serde(skip_serializing)]
    pub refresh_before_seconds: Option<i64>,
    /// What the chain says that is not used, or used as Atmos uses it. Not part of the hash.
    #[serde(skip_serializing)]
    pub warnings: Vec<Warning>,
    /// A chain into another cloud than AWS: then `links` is empty and `region` is the
    /// cloud's location, if any. Left out of the hashed JSON for AWS, so hashes hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation: Option<Federation>,
}

/// A chain whose ServiceAccount token a cloud's SDK exchanges itself (`azure/oidc`; GCP's
/// workload identity federation plugs in as another [`FederationTarget`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Federation {
    /// The cloud and what the exchange needs.
    pub target: FederationTarget,
    /// How the consumer pod gets the token.
    pub delivery: Delivery,
}

/// The cloud a federated chain ends in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "cloud", rename_all = "lowercase")]
pub enum FederationTarget {
    /// Entra: `client_credentials` with a `jwt-bearer` assertion at the tenant's token endpoint.
    Azure(AzureTarget),
    /// Google: STS token exchange, then `generateAccessToken` when a service account is
    /// impersonated.
    Gcp(GcpTarget),
}

impl FederationTarget {
    /// The cloud's name, for messages (`Azure`).
    pub fn cloud(&self) -> &'static str {
        match self {
            Self::Azure(_) => "Azure",
            Self::Gcp(_) => "GCP",
        }
    }

    /// The token file's name, in the projected volume or as the Secret's key.
    pub fn token_file(&self) -> &'static str {
        match self {
            Self::Azure(_) => FEDERATED_TOKEN_FILE,
            Self::Gcp(_) => GCP_TOKEN_FILE,
        }
    }

    /// Where a consumer pod mounts the projected token volume unless the Identity says otherwise.
    pub fn default_mount_path(&self) -> &'static str {
        match self {
            Self::Azure(_) => DEFAULT_TOKEN_MOUNT_PATH,
            Self::Gcp(_) => GCP_DEFAULT_TOKEN_MOUNT_PATH,
        }
    }
}

/// A `gcp/workload-identity-federation` provider with its `gcp/service-account` and
/// `gcp/project` identities, as one exchange: Google STS exchanges the ServiceAccount token
/// for a federated token, then IAM Credentials' `generateAccessToken` impersonates
/// `service_account_email` (through `delegates`) when there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GcpTarget {
    /// The pool's project number (digits).
    pub project_number: String,
    /// Workload identity pool id (`workload_identity_pool_id`, else the legacy key).
    pub pool_id: String,
    /// Pool provider id (`workload_identity_provider_id`, else the legacy key).
    pub provider_id: String,
    /// The `audience` of the STS exchange: the pool provider's full resource name,
    /// `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`.
    pub sts_audience: String,
    /// The service account impersonated (the identity's, else the provider's); `None`: the
    /// federated token itself is the credential.
    pub service_account_email: Option<String>,
    /// The delegation chain to it, as emails: the provider's service account first when the
    /// identity impersonates another one, then the identity's `principal.delegates`.
    pub delegates: Vec<String>,
    /// OAuth scopes of the access token (default `cloud-platform`).
    pub scopes: Vec<String>,
    /// The impersonated token's lifetime, seconds (`principal.lifetime`); `None`: Google's 1 h.
    pub lifetime_seconds: Option<i64>,
    /// Project the consumer works in (`gcp/project`'s, the service account identity's, the
    /// provider's, else the service account email's).
    pub project_id: Option<String>,
    /// `gcp/project`'s region, else the provider's.
    pub region: Option<String>,
    /// `gcp/project`'s zone.
    pub zone: Option<String>,
    /// The operator's STS token URL (`https://sts.googleapis.com/v1/token`), never a profile's.
    pub sts_url: String,
    /// The operator's IAM Credentials base URL (`https://iamcredentials.googleapis.com/`).
    pub iam_credentials_url: String,
}

/// Google's default scope, as Atmos's.
pub const GCP_DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

impl GcpTarget {
    /// The `generateAccessToken` URL of the impersonated service account, if any.
    pub fn impersonation_url(&self) -> Option<String> {
        let email = self.service_account_email.as_ref()?;
        Some(format!(
            "{}v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            self.iam_credentials_url
        ))
    }
}

/// An `azure/oidc` provider with its `azure/subscription` identity, as one exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AzureTarget {
    /// Entra tenant (a GUID or a verified domain).
    pub tenant_id: String,
    /// Application (client) id of the app registration holding the federated credential.
    pub client_id: String,
    /// The identity's `principal.subscription_id` (required, as in Atmos).
    pub subscription_id: String,
    /// The identity's `principal.resource_group`.
    pub resource_group: Option<String>,
    /// The identity's `principal.location`, else the provider's `spec.location`.
    pub location: Option<String>,
    /// Atmos's `cloud_environment` (`public` when left out).
    pub cloud_environment: String,
    /// The operator's authority host for that environment (`https://HOST/`), never a profile's.
    pub authority_host: String,
}

/// How the consumer pod gets the federated token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "delivery")]
pub enum Delivery {
    /// A projected ServiceAccount token volume at `mount_path` (the file
    /// [`FEDERATED_TOKEN_FILE`] in it); the pod must run as the resolved ServiceAccount.
    Projected {
        /// Absolute, without a trailing `/`.
        mount_path: String,
    },
    /// The token file kept in the Secret (key [`FEDERATED_TOKEN_FILE`]).
    Secret,
}

/// The token file's name, in the projected volume or as the Secret's key (Azure Workload
/// Identity's webhook uses the same name).
pub const FEDERATED_TOKEN_FILE: &str = "azure-identity-token";
/// Where a consumer pod mounts the projected token volume unless the Identity says otherwise.
pub const DEFAULT_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/azure/tokens";
/// A GCP chain's token file name.
pub const GCP_TOKEN_FILE: &str = "gcp-identity-token";
/// Where a consumer pod of a GCP chain mounts the projected token volume by default.
pub const GCP_DEFAULT_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/gcp/tokens";

/// What a consumer pod of a `Projected` Secret must provide: its ServiceAccount, and a
/// projected token of that audience at that path. Status and the Secret's `consumer` key
/// name it; not secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerRequirement {
    /// `spec.serviceAccountName` of the consumer pod.
    pub service_account_name: String,
    /// The projected token's `audience`.
    pub audience: String,
    /// Where the projected token volume is mounted.
    pub mount_path: String,
    /// The token file the settings point at: `<mountPath>/azure-identity-token` (Azure),
    /// `<mountPath>/gcp-identity-token` (GCP).
    pub token_path: String,
}

impl Resolved {
    /// What a consumer pod must provide, when the Secret points at a projected token.
    pub fn consumer_requirement(&self) -> Option<ConsumerRequirement> {
        let federation = self.federation.as_ref()?;
        // With GCP's access token the pod exchanges nothing: it may run as anyone.
        if self.secret.formats.contains(&crate::api::SecretFormat::GcpAccessToken) {
            return None;
        }
        match &federation.delivery {
            Delivery::Projected { mount_path } => Some(ConsumerRequirement {
                service_account_name: self.token.service_account.clone(),
                audience: self.token.audience.clone(),
                mount_path: mount_path.clone(),
                token_path: format!("{mount_path}/{}", federation.target.token_file()),
            }),
            Delivery::Secret => None,
        }
    }
}

/// TokenRequest parameters. The namespace is always the Identity's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSource {
    /// Atmos provider name.
    pub provider: String,
    /// ServiceAccount in the Identity's namespace.
    pub service_account: String,
    /// Token audience (already checked against the allow-list).
    pub audience: String,
    /// Requested token lifetime: from 600 s (TokenRequest's minimum) to
    /// [`super::rules::MAX_TOKEN_SECONDS`] (the token is only needed for the exchange).
    pub expiration_seconds: i64,
}

impl Serialize for TokenSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("TokenSource", 5)?;
        s.serialize_field("provider", &self.provider)?;
        s.serialize_field("service_account", &self.service_account)?;
        s.serialize_field("audience", &self.audience)?;
        s.serialize_field("expiration_seconds", &self.expiration_seconds)?;
        // The provider's endpoint_url once chose the STS endpoint (now each link's identity
        // does, as in Atmos): its `null` stays in the hashed JSON, so the spec hash of every
        // existing Secret stays the same and an upgrade renews nothing.
        s.serialize_field("endpoint", &None::<String>)?;
        s.end()
    }
}

/// One STS call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Link {
    /// Atmos's name of this link's identity: the name as written, lower-cased (Viper
    /// lower-cases atmos.yaml's keys); the default session name carries it.
    pub identity: String,
    /// IAM role ARN.
    pub role_arn: String,
    /// Explicit session name; `None`: `atmos-<identity>-<unix seconds>` at call time.
    pub session_name: Option<String>,
    /// External id (only on chained links).
    pub external_id: Option<String>,
    /// Requested session length; `None`: none sent (STS's default, 1h), as Atmos does for a
    /// duration it cannot parse.
    pub duration_seconds: Option<i32>,
    /// Region of this call.
    pub region: String,
    /// The identity's allow-listed `spec.endpoint_url` (or legacy
    /// `credentials.aws.resolver.url`) for this call; `None`: the controller's own endpoint.
    /// Left out of the hashed JSON when `None`, so hashes from before it existed hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// The Secret to write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretPlan {
    /// Secret name.
    pub name: String,
    /// Formats, deduplicated, in a stable order.
    pub formats: Vec<SecretFormat>,
    /// Where consumers mount it.
    pub mount_path: String,
}

impl Resolved {
    /// Hash of everything that shapes the credentials and the Secret's layout: a change
    /// renews at once. Hex SHA-256 of the canonical JSON (field order is fixed by the types).
    pub fn spec_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

/// Longest name part of a [`process_key`]: a Secret key may be 253 characters.
pub const MAX_KEY_NAME: usize = 200;

/// The data key of `identity`'s `credential_process` output in a several-identity Secret:
/// `credential_process.<name>.<hash>.json`, where `<name>` is the identity name with every
/// character outside `[-._a-zA-Z0-9]` replaced by `_` (cut to 200 characters) and `<hash>`
/// the first 8 hex digits of the name's SHA-256. Always a valid Secret key, and distinct names
/// get distinct keys (`acme/admin` and `acme.admin` differ in their hash; the resolver refuses
/// the astronomically rare list whose names share one).
pub fn process_key(identity: &str) -> String {
    use sha2::{Digest, Sha256};
    let clean: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_KEY_NAME)
        .collect();
    let hash = hex::encode(Sha256::digest(identity.as_bytes()));
    format!("credential_process.{clean}.{}.json", &hash[..8])
}
