//! A verifying local Google STS and IAM Credentials endpoint for the tests and the local run
//! mode: what workload identity federation and service account impersonation use.
//!
//! - `POST /v1/token` (Google STS): an RFC 8693 token exchange, form-encoded, with
//!   `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token_type` a JWT
//!   or ID token, `requested_token_type` an access token, and `audience` the pool provider's
//!   resource name (`//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`).
//!   Like Google it finds the pool provider named by `audience`, checks that the subject
//!   token's `iss` is the provider's issuer, verifies its signature and expiry against that
//!   issuer's published keys (the control plane's JWKS, through the local STS's verifier), and
//!   that its `aud` is one of the provider's allowed audiences (none configured: the provider's
//!   resource name, with or without `https:`). The attribute mapping is
//!   `google.subject=assertion.sub`. Refusals have STS's shape (`error`, `error_description`).
//! - `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken` (IAM Credentials): with a
//!   federated token from above (or a service account token from here) as bearer, `delegates`,
//!   `scope` and `lifetime`; each hop of `delegates` then the target must list the previous
//!   principal among its `token_creators`. Refusals have Google's API error shape
//!   (`{"error":{"code","message","status"}}`).
//!
//! Access tokens are opaque and short (`access_token_seconds`, 60 by default, also caps a
//! requested `lifetime`). Each subject token's `jti` is logged with the outcome
//! ([`LocalGcp::exchanges`]); tokens never are.
//!
//! ```yaml
//! access_token_seconds: 60
//! pools:
//!   - project_number: "123456789012"
//!     pool_id: k8s-pool
//!     providers:
//!       - provider_id: cluster
//!         issuer: https://127.0.0.1:6443        # the control plane's issuer
//! service_accounts:
//!   - email: terraform@acme-prod.iam.gserviceaccount.com
//!     token_creators:
//!       - principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/k8s-pool/subject/system:serviceaccount:infra:terraform
//! ```

mod error;
mod iam;
mod sts;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::post;
use serde::{Deserialize, Serialize};

pub use error::{IamError, StsRefusal};

use crate::certs::Ca;
use crate::sts::OidcIssuer;
use crate::sts::oidc::OidcVerifier;
use crate::sts::thread::ServerThread;

/// The pools, their providers and the service accounts it knows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GcpConfig {
    /// Lifetime of the access tokens it issues, and the cap of a requested one (default 60 s).
    #[serde(default)]
    pub access_token_seconds: Option<i64>,
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub project_number: String,
    pub pool_id: String,
    #[serde(default)]
    pub providers: Vec<PoolProviderConfig>,
}

/// An OIDC pool provider: whose tokens it accepts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PoolProviderConfig {
    pub provider_id: String,
    pub issuer: String,
    /// Empty: the provider's resource name, with or without `https:` (Google's default).
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountConfig {
    pub email: String,
    /// Members allowed to mint its tokens: `principal://iam.googleapis.com/projects/N/locations/
    /// global/workloadIdentityPools/P/subject/SUB` (a federated subject, what
    /// `roles/iam.workloadIdentityUser` grants) or `serviceAccount:EMAIL` (a delegate, what
    /// `roles/iam.serviceAccountTokenCreator` grants).
    #[serde(default)]
    pub token_creators: Vec<String>,
}

/// The resource name of a pool provider, the STS `audience`.
pub fn pool_provider_name(project_number: &str, pool_id: &str, provider_id: &str) -> String {
    format!(
        "//iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{pool_id}/providers/{provider_id}"
    )
}

/// The member name of a federated subject of a pool.
pub fn federated_principal(project_number: &str, pool_id: &str, subject: &str) -> String {
    format!(
        "principal://iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{pool_id}/subject/{subject}"
    )
}

impl GcpConfig {
    pub fn from_yaml_str(yaml: &str) -> Result<Self> {
        serde_saphyr::from_str(yaml).context("parsing the local GCP configuration")
    }

    /// One pool provider trusting `issuer`, and service account `email` that the
    /// ServiceAccount `subject` of that issuer may impersonate.
    pub fn single(
        project_number: &str,
        pool_id: &str,
        provider_id: &str,
        issuer: &str,
        email: &str,
        subject: &str,
    ) -> Self {
        Self {
            access_token_seconds: None,
            pools: vec![PoolConfig {
                project_number: project_number.to_owned(),
                pool_id: pool_id.to_owned(),
                providers: vec![PoolProviderConfig {
                    provider_id: provider_id.to_owned(),
                    issuer: issuer.to_owned(),
                    allowed_audiences: Vec::new(),
                }],
            }],
            service_accounts: vec![ServiceAccountConfig {
                email: email.to_owned(),
                token_creators: vec![federated_principal(project_number, pool_id, subject)],
            }],
        }
    }
}

/// One subject token presented at STS, as logged (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exchange {
    pub audience: String,
    /// The subject token's `jti` (unverified when it was refused before its signature was checked).
    pub jti: Option<String>,
    pub subject: Option<String>,
    /// `None`: a federated token was issued; otherwise STS's `error`.
    pub error: Option<String>,
}

/// One `generateAccessToken` call, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impersonation {
    /// The caller's member name, when its bearer token was known.
    pub caller: Option<String>,
    pub service_account: String,
    pub delegates: Vec<String>,
    /// `None`: an access token was issued; otherwise the API status (`PERMISSION_DENIED`, ...).
    pub error: Option<String>,
}

/// What an access token it issued stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// `principal://...` for a federated token, `serviceAccount:EMAIL` for an impersonated one.
    pub member: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub scopes: Vec<String>,
}

struct GcpState {
    config: Mutex<GcpConfig>,
    verifier: OidcVerifier,
    exchanges: Mutex<Vec<Exchange>>,
    impersonations: Mutex<Vec<Impersonation>>,
    tokens: Mutex<HashMap<String, Issued>>,
}

impl GcpState {
    fn config(&self) -> GcpConfig {
        self.config.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn issue(&self, prefix: &str, issued: Issued) -> String {
        let random: [u8; 32] = rand::random();
        let token = format!("{prefix}.{}", hex::encode(random));
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), issued);
        token
    }

    fn token(&self, token: &str) -> Option<Issued> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// A running local GCP endpoint (STS and IAM Credentials on one port). Dropping it stops it.
pub struct LocalGcp {
    server: ServerThread,
    state: Arc<GcpState>,
    base_url: String,
    ca_pem: String,
}

impl LocalGcp {
    /// Starts serving on a free port of 127.0.0.1 over TLS with a CA of its own, trusting
    /// tokens of `issuer` where a pool provider names it.
    pub fn start(config: GcpConfig, issuer: OidcIssuer) -> Result<Self> {
        let ca = Ca::new("atmos-auth local GCP CA")?;
        let served = ca.issue_server("atmos-auth local GCP", &["127.0.0.1", "localhost"])?;
        let tls = crate::entra::acceptor(&served.cert_pem, &served.key_pem)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the local GCP endpoint")?;
        let base_url = format!("https://{}", listener.local_addr()?);
        let state = Arc::new(GcpState {
            config: Mutex::new(config),
            verifier: OidcVerifier::new(issuer)?,
            exchanges: Mutex::default(),
            impersonations: Mutex::default(),
            tokens: Mutex::default(),
        });
        let app = Router::new()
            .route("/v1/token", post(sts::token))
            .route(
                "/v1/projects/{project}/serviceAccounts/{call}",
                post(iam::generate_access_token),
            )
            .with_state(state.clone());
        let server = ServerThread::spawn("local-gcp", listener, app, Some(tls))?;
        tracing::info!(base_url = %base_url, "local GCP STS and IAM Credentials listening");
        Ok(Self {
            server,
            state,
            base_url,
            ca_pem: ca.cert_pem().to_owned(),
        })
    }

    /// `https://127.0.0.1:PORT/v1/token`: the controller's `--gcp-sts-url`.
    pub fn sts_url(&self) -> String {
        format!("{}/v1/token", self.base_url)
    }

    /// `https://127.0.0.1:PORT/`: the controller's `--gcp-iam-credentials-url`.
    pub fn iam_credentials_url(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// The PEM of the CA that signed its serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Replaces the pools and service accounts (a grant added or removed).
    pub fn set_config(&self, config: GcpConfig) {
        *self.state.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Every subject token presented at STS so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.exchanges.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every `generateAccessToken` call so far, oldest first.
    pub fn impersonations(&self) -> Vec<Impersonation> {
        self.state
            .impersonations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What an access token it issued stands for (`None`: not one of its tokens).
    pub fn token_info(&self, token: &str) -> Option<Issued> {
        self.state.token(token)
    }

    /// Every access token issued, for tests that prove none reaches a log.
    pub fn secrets_seen(&self) -> Vec<String> {
        self.state
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}
