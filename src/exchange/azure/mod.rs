//! Azure: the ServiceAccount token as the federated credential of an Entra app, exchanged
//! at the tenant's token endpoint (`client_credentials` with a `jwt-bearer` assertion). The
//! controller makes this exchange only to prove the federation works (`Ready=True` means an
//! SDK in the pod will succeed); the access token is dropped at once, never stored or
//! logged. Pods exchange their own token themselves.
//!
//! The authority host is the operator's (`--azure-authority-host`, resolved into the
//! target); calls go through the budget's rate limiter keyed by that host.

mod error;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

pub use error::EntraError;

use super::budget::EndpointReports;
use super::budget::limit::{Limiter, Quota};
use super::{Exchange, ExchangeError, Grant, Request};
use crate::resolve::AzureTarget;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The Azure Resource Manager scope of each Atmos `cloud_environment` (what azurerm asks for).
pub fn management_scope(cloud_environment: &str) -> &'static str {
    match cloud_environment {
        "usgovernment" => "https://management.usgovcloudapi.net/.default",
        "china" => "https://management.chinacloudapi.cn/.default",
        _ => "https://management.azure.com/.default",
    }
}

/// What a successful exchange proves: the federation worked at `issued`; Entra's access
/// token (dropped) would have lasted until `expiration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntraGrant {
    /// When the request was sent.
    pub issued: Timestamp,
    /// `issued` plus Entra's `expires_in`.
    pub expiration: Timestamp,
}

impl Grant for EntraGrant {
    fn issued(&self) -> Timestamp {
        self.issued
    }
    fn expiration(&self) -> Timestamp {
        self.expiration
    }
}

/// The Entra exchanger: one HTTP client, the budget's limiter, and whom to tell whether each
/// authority host answered (the budget parks the refreshes of one that does not).
pub struct EntraExchanger {
    http: reqwest::Client,
    limiter: Arc<Limiter>,
    reports: Option<Arc<dyn EndpointReports>>,
}

/// The budget's key of an authority host: its rate limit and its health.
pub fn endpoint_key(authority_host: &str) -> String {
    format!("entra:{authority_host}")
}

impl EntraExchanger {
    /// An exchanger whose calls last at most `timeout`, trusting the system's roots plus
    /// `extra_ca_pem` (a private authority host's CA; the tests' local Entra).
    pub fn new(
        (limiter, reports): (Arc<Limiter>, Option<Arc<dyn EndpointReports>>),
        timeout: Duration,
        extra_ca_pem: Option<&str>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| format!("the Entra CA bundle: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| format!("the Entra HTTP client: {e}"))?;
        Ok(Self { http, limiter, reports })
    }

    async fn call(&self, target: &AzureTarget, assertion: &str, issued: Timestamp) -> Result<EntraGrant, EntraError> {
        let url = format!("{}{}/oauth2/v2.0/token", target.authority_host, target.tenant_id);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", target.client_id.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", management_scope(&target.cloud_environment)),
        ];
        let key = endpoint_key(&target.authority_host);
        // Entra throttles per tenant: a bucket per tenant and authority host, apart from STS's.
        let quota = Quota {
            account: target.tenant_id.clone(),
            region: format!("entra:{key}"),
        };
        self.limiter.acquire(&quota).await;
        let ids = || (target.client_id.clone(), target.tenant_id.clone());
        let sent = self.http.post(&url).form(&form).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let (client_id, tenant) = ids();
                let err = EntraError::Unreachable {
                    client_id,
                    tenant,
                    detail: crate::util::redact::redact(&without_url(&e)),
                };
                self.report(&key, Some(&err));
                return Err(err);
            }
        };
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| {
            let (client_id, tenant) = ids();
            EntraError::Unreachable {
                client_id,
                tenant,
                detail: without_url(&e),
            }
        })?;
        let outcome = read_answer(status, &body, issued).map_err(|answer| {
            let (client_id, tenant) = ids();
            answer.into_error(client_id, tenant, status)
        });
        match &outcome {
            Err(e) if e.is_throttling() => self.limiter.throttled(&quota),
            _ => self.limiter.passed(&quota),
        }
        self.report(&key, outcome.as_ref().err());
        outcome
    }
}

impl EntraExchanger {
    /// Tells the budget whether the host answered (a 5xx or no answer: it did not).
    fn report(&self, key: &str, err: Option<&EntraError>) {
        match (&self.reports, err.is_some_and(EntraError::endpoint_down)) {
            (Some(r), true) => r.failed(key),
            (Some(r), false) => r.answered(key),
            (None, _) => {}
        }
    }
}

/// reqwest's error without the URL (it names the tenant only; kept short).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the token endpoint");
    }
    text
}

#[derive(Deserialize)]
struct Success {
    expires_in: Option<serde_json::Value>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct Failure {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
}

/// Entra's answer read, without the client and tenant the error names.
enum Answer {
    Refused {
        error: String,
        code: Option<u32>,
        description: String,
    },
    Unreadable(String),
}

impl Answer {
    fn into_error(self, client_id: String, tenant: String, status: u16) -> EntraError {
        match self {
            Self::Refused {
                error,
                code,
                description,
            } => EntraError::Rejected {
                client_id,
                tenant,
                error,
                code,
                description,
                status,
            },
            Self::Unreadable(detail) => EntraError::BadResponse {
                client_id,
                tenant,
                detail,
            },
        }
    }
}

/// Reads a token endpoint's answer (pure): the grant, or why not. The access token itself
/// is only checked to be there.
fn read_answer(status: u16, body: &[u8], issued: Timestamp) -> Result<EntraGrant, Answer> {
    if (200..300).contains(&status) {
        let ok: Success = serde_json::from_slice(body).map_err(|e| Answer::Unreadable(format!("not JSON: {e}")))?;
        // `expires_in` is a number, or (in older answers) a string of one.
        let seconds = match &ok.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        return match (seconds, ok.access_token.as_deref()) {
            (Some(s), Some(t)) if s > 0 && !t.is_empty() => Ok(EntraGrant {
                issued,
                expiration: issued.saturating_add(SignedDuration::from_secs(s)).unwrap_or(issued),
            }),
            _ => Err(Answer::Unreadable(
                "no access_token or a non-positive expires_in".to_owned(),
            )),
        };
    }
    match serde_json::from_slice::<Failure>(body) {
        Ok(f) if f.error.is_some() => {
            let description = crate::util::redact::redact(f.error_description.as_deref().unwrap_or_default());
            let code = f.error_codes.first().copied().or_else(|| aadsts_code(&description));
            Err(Answer::Refused {
                error: f.error.unwrap_or_default(),
                code,
                description,
            })
        }
        _ => Err(Answer::Unreadable(format!("HTTP {status} without Entra's error JSON"))),
    }
}

/// `AADSTS70021: ...` → 70021.
fn aadsts_code(description: &str) -> Option<u32> {
    let rest = description.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Exchange<AzureTarget> for EntraExchanger {
    type Grant = EntraGrant;

    fn exchange<'a>(&'a self, request: Request<'a, AzureTarget>) -> BoxFuture<'a, Result<EntraGrant, ExchangeError>> {
        Box::pin(async move {
            let assertion = request.token.await?;
            Ok(self.call(request.input, &assertion, request.now).await?)
        })
    }
}

#[cfg(test)]
mod tests;
