//! A tiny OIDC issuer over https on 127.0.0.1 for tests that do not need a kube-apiserver:
//! its own CA, a discovery document, a JWKS with ES256 and/or RS256 keys (rotatable), and a
//! way to mint tokens with any claims. It serves from a thread of its own, like the STS.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::oidc::OidcIssuer;
use super::thread::ServerThread;

/// The path the issuer serves its JWKS at (as kube-apiserver does).
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// A token-signing key and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A fresh ECDSA P-256 key (ES256), the kind kube-apiserver gets from an EC key file.
    pub fn es256(kid: &str) -> Result<Self> {
        let key = KeyPair::generate().context("generating a P-256 key")?;
        let encoding = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())?;
        // Uncompressed point: 0x04 || x || y.
        let raw = key.public_key_raw();
        anyhow::ensure!(raw.len() == 65 && raw[0] == 4, "unexpected P-256 public key");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64url(&raw[1..33]), "y": b64url(&raw[33..]),
        });
        Ok(Self {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            encoding,
            jwk,
        })
    }

    /// A fresh RSA key (RS256), kube-apiserver's usual service-account key. `bits` of 2048
    /// is realistic; tests may use 1024 to save key generation time in debug builds.
    pub fn rs256(kid: &str, bits: usize) -> Result<Self> {
        let key = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, bits).context("generating an RSA key")?;
        let pem = key
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .context("encoding the RSA key")?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64url(&key.n().to_bytes_be()), "e": b64url(&key.e().to_bytes_be()),
        });
        Ok(Self {
            kid: kid.to_owned(),
            alg: Algorithm::RS256,
            encoding,
            jwk,
        })
    }

    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `claims` as a JWT with this key's `kid`.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The claims of a projected ServiceAccount token (the ones STS looks at, and a few more).
#[derive(Debug, Clone, Serialize)]
pub struct TokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// A fresh id per token, as kube-apiserver sets (since 1.29).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl TokenClaims {
    /// Claims valid from now for `lifetime_seconds`.
    pub fn new(iss: &str, sub: &str, aud: &[&str], lifetime_seconds: i64) -> Self {
        let now = Timestamp::now().as_second();
        Self {
            iss: iss.to_owned(),
            sub: sub.to_owned(),
            aud: aud.iter().map(|a| (*a).to_owned()).collect(),
            exp: now + lifetime_seconds,
            iat: now,
            nbf: Some(now),
            jti: Some(hex::encode(rand::random::<[u8; 16]>())),
        }
    }
}

struct IssuerState {
    url: String,
    published: Mutex<Vec<SigningKey>>,
    discovery_fetches: AtomicU64,
    jwks_fetches: AtomicU64,
}

impl IssuerState {
    fn published(&self) -> MutexGuard<'_, Vec<SigningKey>> {
        self.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running test OIDC issuer. Dropping it stops it.
pub struct TestIssuer {
    server: ServerThread,
    state: Arc<IssuerState>,
    ca_pem: String,
}

impl TestIssuer {
    /// Starts an issuer on a free port of 127.0.0.1 that publishes `keys` (at least one; the
    /// first signs [`TestIssuer::token`]).
    pub fn start(keys: Vec<SigningKey>) -> Result<Self> {
        anyhow::ensure!(!keys.is_empty(), "a test issuer needs a key");
        let (ca_pem, tls) = tls_for_loopback()?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the test issuer")?;
        let url = format!("https://{}", listener.local_addr()?);
        let state = Arc::new(IssuerState {
            url,
            published: Mutex::new(keys),
            discovery_fetches: AtomicU64::new(0),
            jwks_fetches: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route(JWKS_PATH, get(jwks))
            .with_state(state.clone());
        let server = ServerThread::spawn("test-issuer", listener, app, Some(tls))?;
        Ok(Self { server, state, ca_pem })
    }

    /// Starts an issuer with one fresh ES256 key, kid `es256-1`.
    pub fn start_es256() -> Result<Self> {
        Self::start(vec![SigningKey::es256("es256-1")?])
    }

    /// `https://127.0.0.1:PORT`, the `iss` of its tokens.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    /// The PEM of the CA that signed its serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// What [`super::LocalSts::start`] needs to trust this issuer.
    pub fn oidc_issuer(&self) -> OidcIssuer {
        OidcIssuer {
            url: self.url().to_owned(),
            ca_pem: self.ca_pem.clone(),
        }
    }

    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// Publishes another key (e.g. a rotation).
    pub fn publish(&self, key: SigningKey) {
        self.state.published().push(key);
    }

    /// Stops publishing the key `kid`.
    pub fn unpublish(&self, kid: &str) {
        self.state.published().retain(|k| k.kid != kid);
    }

    /// The published key `kid`.
    pub fn key(&self, kid: &str) -> Option<SigningKey> {
        self.state.published().iter().find(|k| k.kid == kid).cloned()
    }

    /// Signs `claims` with the first published key.
    pub fn sign(&self, claims: &TokenClaims) -> Result<String> {
        let key = self
            .state
            .published()
            .first()
            .cloned()
            .context("the issuer publishes no key")?;
        key.sign(claims)
    }

    /// A token for `sub` with audience `aud`, valid for `lifetime_seconds`.
    pub fn token(&self, sub: &str, aud: &str, lifetime_seconds: i64) -> Result<String> {
        self.sign(&TokenClaims::new(self.url(), sub, &[aud], lifetime_seconds))
    }

    /// How many times the discovery document and the JWKS were served.
    pub fn fetches(&self) -> (u64, u64) {
        (
            self.state.discovery_fetches.load(Ordering::Relaxed),
            self.state.jwks_fetches.load(Ordering::Relaxed),
        )
    }
}

async fn discovery(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    state.discovery_fetches.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "issuer": state.url,
        "jwks_uri": format!("{}{JWKS_PATH}", state.url),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    }))
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    state.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    let keys: Vec<Value> = state.published().iter().map(|k| k.jwk.clone()).collect();
    Json(json!({ "keys": keys }))
}

/// A throw-away CA and a serving certificate for 127.0.0.1 and localhost.
fn tls_for_loopback() -> Result<(String, TlsAcceptor)> {
    let mut ca_params = CertificateParams::new(Vec::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "atmos-auth test issuer CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    let ca_pem = ca_params.self_signed(&ca_key)?.pem();
    let ca = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "atmos-auth test issuer");
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .context("building the issuer's TLS config")?;
    Ok((ca_pem, TlsAcceptor::from(Arc::new(config))))
}
