//! A verifying local Entra ID (Azure AD) token endpoint for the tests and the local run mode.
//!
//! It serves, over TLS with a CA of its own (MSAL refuses a non-https authority), what an
//! Azure SDK's workload identity credential uses:
//!
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration`: the tenant's discovery document,
//!   whose `token_endpoint` is the one below;
//! - `POST /{tenant}/oauth2/v2.0/token`: `grant_type=client_credentials` with
//!   `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, the
//!   federated token as `client_assertion`, and a `scope` ending in `/.default`.
//!
//! Like Entra, it looks the app (`client_id`) up in the tenant, finds a federated identity
//! credential whose issuer is the assertion's `iss`, verifies the assertion's signature, expiry
//! and issuer against that issuer's published keys (the control plane's JWKS, through the
//! local STS's verifier), then matches its `sub` and `aud` against the credential; anything
//! else is refused with Entra's error shape (`error`, `error_description` starting with an
//! `AADSTS` code, `error_codes`). Access tokens are opaque and short (`access_token_seconds`,
//! 60 by default). Each assertion's `jti` is logged with the outcome ([`LocalEntra::assertions`]).
//!
//! ```yaml
//! access_token_seconds: 60
//! tenants:
//!   - id: 72f988bf-86f1-41af-91ab-2d7cd011db47
//!     apps:
//!       - client_id: 11111111-2222-3333-4444-555555555555
//!         federated_credentials:
//!           - issuer: https://127.0.0.1:6443        # the control plane's issuer
//!             subject: system:serviceaccount:infra:terraform
//!             audiences: [api://AzureADTokenExchange]
//! ```

mod error;
mod token;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use error::EntraError;

use crate::certs::Ca;
use crate::sts::OidcIssuer;
use crate::sts::oidc::OidcVerifier;
use crate::sts::thread::ServerThread;

/// Audience of a federated identity credential when its configuration names none (Entra's).
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The tenants, apps and federated credentials it knows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EntraConfig {
    /// Lifetime of the access tokens it issues (default 60 s).
    #[serde(default)]
    pub access_token_seconds: Option<i64>,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant id in the URL path (a GUID or a domain).
    pub id: String,
    #[serde(default)]
    pub apps: Vec<AppConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub client_id: String,
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
}

/// A federated identity credential: whose tokens the app accepts (exact matches, as Entra's).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    /// Default `[api://AzureADTokenExchange]`.
    #[serde(default)]
    pub audiences: Vec<String>,
}

impl EntraConfig {
    pub fn from_yaml_str(yaml: &str) -> Result<Self> {
        serde_saphyr::from_str(yaml).context("parsing the local Entra configuration")
    }

    /// One tenant with one app trusting one ServiceAccount of `issuer` for Entra's audience.
    pub fn single(tenant: &str, client_id: &str, issuer: &str, subject: &str) -> Self {
        Self {
            access_token_seconds: None,
            tenants: vec![TenantConfig {
                id: tenant.to_owned(),
                apps: vec![AppConfig {
                    client_id: client_id.to_owned(),
                    federated_credentials: vec![FederatedCredential {
                        issuer: issuer.to_owned(),
                        subject: subject.to_owned(),
                        audiences: Vec::new(),
                    }],
                }],
            }],
        }
    }

    fn app(&self, tenant: &str, client_id: &str) -> Result<&AppConfig, EntraError> {
        let t = self
            .tenants
            .iter()
            .find(|t| t.id.eq_ignore_ascii_case(tenant))
            .ok_or_else(|| EntraError::tenant_not_found(tenant))?;
        t.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .ok_or_else(|| EntraError::app_not_found(client_id, tenant))
    }
}

impl FederatedCredential {
    fn audiences(&self) -> Vec<&str> {
        if self.audiences.is_empty() {
            vec![DEFAULT_AUDIENCE]
        } else {
            self.audiences.iter().map(String::as_str).collect()
        }
    }
}

/// One assertion presented at the token endpoint, as logged (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assertion {
    pub tenant: String,
    pub client_id: String,
    /// The assertion's `jti` (unverified when the assertion was refused before its signature
    /// was checked).
    pub jti: Option<String>,
    pub subject: Option<String>,
    /// `None`: an access token was issued; otherwise the AADSTS code.
    pub error: Option<String>,
}

struct EntraState {
    config: Mutex<EntraConfig>,
    verifier: OidcVerifier,
    base_url: String,
    assertions: Mutex<Vec<Assertion>>,
    issued: Mutex<Vec<String>>,
}

impl EntraState {
    fn config(&self) -> EntraConfig {
        self.config.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A running local Entra endpoint. Dropping it stops it.
pub struct LocalEntra {
    server: ServerThread,
    state: Arc<EntraState>,
    ca_pem: String,
}

impl LocalEntra {
    /// Starts serving on a free port of 127.0.0.1, trusting tokens of `issuer` where a
    /// federated credential names it. Its serving certificate is signed by a CA of its own.
    pub fn start(config: EntraConfig, issuer: OidcIssuer) -> Result<Self> {
        let ca = Ca::new("atmos-auth local Entra CA")?;
        let served = ca.issue_server("atmos-auth local Entra", &["127.0.0.1", "localhost"])?;
        let tls = acceptor(&served.cert_pem, &served.key_pem)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the local Entra endpoint")?;
        let base_url = format!("https://{}", listener.local_addr()?);
        let state = Arc::new(EntraState {
            config: Mutex::new(config),
            verifier: OidcVerifier::new(issuer)?,
            base_url,
            assertions: Mutex::default(),
            issued: Mutex::default(),
        });
        let app = Router::new()
            .route("/{tenant}/v2.0/.well-known/openid-configuration", get(token::discovery))
            .route("/{tenant}/oauth2/v2.0/token", post(token::token))
            .with_state(state.clone());
        let server = ServerThread::spawn("local-entra", listener, app, Some(tls))?;
        tracing::info!(authority_host = %state.base_url, "local Entra endpoint listening");
        Ok(Self {
            server,
            state,
            ca_pem: ca.cert_pem().to_owned(),
        })
    }

    /// `https://127.0.0.1:PORT/`: what `AZURE_AUTHORITY_HOST` and the controller's
    /// `--azure-authority-host public=` name.
    pub fn authority_host(&self) -> String {
        format!("{}/", self.state.base_url)
    }

    /// The PEM of the CA that signed its serving certificate (`REQUESTS_CA_BUNDLE` for
    /// azure-identity, `SSL_CERT_FILE` for Go).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Replaces the tenants, apps and federated credentials (a credential added or removed).
    pub fn set_config(&self, config: EntraConfig) {
        *self.state.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Every assertion presented so far, oldest first.
    pub fn assertions(&self) -> Vec<Assertion> {
        self.state.assertions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every access token issued, for tests that prove none reaches a log.
    pub fn secrets_seen(&self) -> Vec<String> {
        self.state.issued.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A TLS acceptor serving `cert_pem` with `key_pem` (PKCS#8).
pub(crate) fn acceptor(cert_pem: &str, key_pem: &str) -> Result<TlsAcceptor> {
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).context("the serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("the serving key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .context("building the local Entra TLS config")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
