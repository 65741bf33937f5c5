//! Verifies web identity tokens against an OIDC issuer's published keys, as IAM does for an
//! OIDC identity provider: discovery document, JWKS (cached, refetched on an unknown `kid`),
//! signature, `iss`, `exp`, `nbf`. Audience and subject are left to the trust policy.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::Timestamp;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::StsError;

/// The issuer whose tokens the STS trusts (a kube-apiserver's service-account issuer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIssuer {
    /// The `iss` of the tokens, e.g. `https://127.0.0.1:6443`; discovery is read from
    /// `<url>/.well-known/openid-configuration`.
    pub url: String,
    /// PEM CA certificate(s) that sign the issuer's serving certificate. Empty: the system's
    /// roots.
    pub ca_pem: String,
}

/// Accepted signature algorithms: asymmetric only (no `none`, no HMAC key confusion).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Allowed clock skew for `nbf` and `iat` (the token's issuer and the STS share a clock here).
const NBF_LEEWAY_SECONDS: i64 = 60;

const NO_KEY: &str = "Couldn't retrieve verification key from your identity provider, \
                      please reference AssumeRoleWithWebIdentity documentation for requirements";

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub expires_at: i64,
    /// The token's id (kube-apiserver sets one since 1.29), for logs that tell tokens apart.
    pub jti: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    exp: Option<serde_json::Number>,
    nbf: Option<serde_json::Number>,
    /// Any JSON: a `jti` of an odd type must not make a token undecodable.
    jti: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

pub struct OidcVerifier {
    issuer: OidcIssuer,
    http: reqwest::Client,
    /// The keys last fetched; `None` before the first fetch. Held across a fetch so that
    /// concurrent requests with an unknown `kid` fetch once.
    keys: Mutex<Option<Vec<Jwk>>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl OidcVerifier {
    pub fn new(issuer: OidcIssuer) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3));
        if !issuer.ca_pem.trim().is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(issuer.ca_pem.as_bytes())
                .context("parsing the issuer's CA PEM")?;
            anyhow::ensure!(!certs.is_empty(), "the issuer's CA PEM holds no certificate");
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().context("building the OIDC HTTP client")?;
        Ok(Self {
            issuer,
            http,
            keys: Mutex::new(None),
            fetches: Default::default(),
        })
    }

    /// How many times discovery + JWKS were fetched.
    pub fn key_fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `arn:aws:iam::ACCOUNT:oidc-provider/HOST[/PATH]`, what STS reports as `Provider`.
    pub fn provider_arn(&self, account: &str) -> String {
        let host_path = self
            .issuer
            .url
            .strip_prefix("https://")
            .or_else(|| self.issuer.url.strip_prefix("http://"))
            .unwrap_or(&self.issuer.url);
        format!("arn:aws:iam::{account}:oidc-provider/{host_path}")
    }

    async fn fetch_keys(&self) -> Result<Vec<Jwk>> {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = self.issuer.url.trim_end_matches('/');
        let discovery: Discovery = self
            .http
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .context("fetching the OIDC discovery document")?
            .error_for_status()
            .context("fetching the OIDC discovery document")?
            .json()
            .await
            .context("parsing the OIDC discovery document")?;
        anyhow::ensure!(
            discovery.issuer == self.issuer.url,
            "discovery document names issuer {:?}, expected {:?}",
            discovery.issuer,
            self.issuer.url
        );
        let jwks: RawJwks = self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await
            .context("fetching the JWKS")?
            .error_for_status()
            .context("fetching the JWKS")?
            .json()
            .await
            .context("parsing the JWKS")?;
        // Keys of unknown types are skipped, as a verifier must.
        Ok(jwks
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .collect())
    }

    /// The key for `kid` (or, without a `kid`, every key), fetching the JWKS if it is not
    /// cached or does not have the `kid`.
    async fn keys_for(&self, kid: Option<&str>) -> Result<Vec<Jwk>, StsError> {
        let matching = |keys: &[Jwk]| -> Vec<Jwk> {
            keys.iter()
                .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
                .cloned()
                .collect()
        };
        let mut cached = self.keys.lock().await;
        if let Some(keys) = cached.as_deref() {
            let found = matching(keys);
            if !found.is_empty() {
                return Ok(found);
            }
        }
        match self.fetch_keys().await {
            Ok(keys) => {
                let found = matching(&keys);
                *cached = Some(keys);
                Ok(found)
            }
            Err(err) => {
                tracing::warn!(issuer = %self.issuer.url, error = format!("{err:#}"), "local STS: cannot fetch the issuer's keys");
                Err(StsError::idp_communication(
                    "The request could not be fulfilled because the identity provider (IDP) that was asked to verify the incoming identity token could not be reached. Couldn't contact the OIDC provider.",
                ))
            }
        }
    }

    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedToken, StsError> {
        let not_a_jwt = || {
            StsError::invalid_identity_token(
                "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)",
            )
        };
        let header = jsonwebtoken::decode_header(token).map_err(|_| not_a_jwt())?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(StsError::invalid_identity_token(format!(
                "Unsupported token signing algorithm {:?}",
                header.alg
            )));
        }
        // The issuer decides which OIDC provider (and keys) apply, as in IAM.
        let unverified: Claims = jsonwebtoken::dangerous::insecure_decode(token)
            .map_err(|_| not_a_jwt())?
            .claims;
        let iss = unverified.iss.unwrap_or_default();
        if iss != self.issuer.url {
            return Err(StsError::invalid_identity_token(format!(
                "No OpenIDConnect provider found in your account for {iss}"
            )));
        }
        let keys = self.keys_for(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        validation.set_issuer(&[&self.issuer.url]);
        let mut claims = None;
        for jwk in &keys {
            if jwk
                .common
                .key_algorithm
                .is_some_and(|a| key_algorithm(a) != Some(header.alg))
            {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            if let Ok(data) = jsonwebtoken::decode::<Claims>(token, &key, &validation) {
                claims = Some(data.claims);
                break;
            }
        }
        let Some(claims) = claims else {
            return Err(StsError::invalid_identity_token(if keys.is_empty() {
                NO_KEY
            } else {
                "The web identity token signature could not be verified"
            }));
        };
        let now_s = now.as_second();
        let Some(exp) = claims.exp.as_ref().and_then(number_seconds) else {
            return Err(StsError::invalid_identity_token(
                "The web identity token has no valid 'exp' claim",
            ));
        };
        if now_s >= exp {
            return Err(StsError::expired_identity_token(format!(
                "Token expired: current date/time {now_s} must be before the expiration date/time {exp}"
            )));
        }
        if let Some(nbf) = claims.nbf.as_ref() {
            let nbf = number_seconds(nbf)
                .ok_or_else(|| StsError::invalid_identity_token("The web identity token has an invalid 'nbf' claim"))?;
            if now_s + NBF_LEEWAY_SECONDS < nbf {
                return Err(StsError::invalid_identity_token(format!(
                    "Token is not yet valid: current date/time {now_s} is before the not-before date/time {nbf}"
                )));
            }
        }
        let subject = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| StsError::invalid_identity_token("The web identity token has no 'sub' claim"))?;
        let audiences = match claims.aud {
            Some(Audience::One(a)) => vec![a],
            Some(Audience::Many(a)) => a,
            None => Vec::new(),
        };
        Ok(VerifiedToken {
            issuer: claims.iss.unwrap_or_default(),
            subject,
            audiences,
            expires_at: exp,
            jti: claims.jti.and_then(|j| j.as_str().map(str::to_owned)),
        })
    }
}

fn number_seconds(n: &serde_json::Number) -> Option<i64> {
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

fn key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        _ => return None,
    })
}
