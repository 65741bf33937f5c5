//! GCP: the ServiceAccount token exchanged at Google STS for a federated token of its pool
//! provider, then, when the chain impersonates a service account, `generateAccessToken` at
//! IAM Credentials (with `delegates`). The controller makes these calls to prove the
//! federation works (`Ready=True` means google-auth in the pod will get a token too); the
//! access tokens are dropped at once unless the request asks to keep the last one (the
//! `gcp-access-token` format), and never logged. Otherwise pods exchange their own token.
//!
//! Both URLs are the operator's (`--gcp-sts-url`, `--gcp-iam-credentials-url`, resolved into
//! the target); calls go through the budget's rate limiter, keyed by the pool's project
//! number and the host (`gcp-sts:<url>`, `iamcredentials:<url>`).

mod error;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;

pub use error::GcpError;

use super::budget::EndpointReports;
use super::budget::limit::{Limiter, Quota};
use super::{Exchange, ExchangeError, Grant, Request};
use crate::resolve::GcpTarget;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// What a successful exchange proves: the federation (and impersonation) worked at
/// `issued`; the last access token lasts until `expiration`, and is kept only when the
/// request said `keep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpGrant {
    /// When the first request was sent.
    pub issued: Timestamp,
    /// When the last token obtained expires.
    pub expiration: Timestamp,
    /// The last access token (impersonated, else federated), with `keep` only.
    pub access_token: Option<AccessToken>,
}

/// An access token: its `Debug` never shows it, so no log or error can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// The token itself, for the Secret's data only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(redacted)")
    }
}

impl Grant for GcpGrant {
    fn issued(&self) -> Timestamp {
        self.issued
    }
    fn expiration(&self) -> Timestamp {
        self.expiration
    }
}

/// The budget's key of an STS URL: its rate limit and its health.
pub fn endpoint_key(sts_url: &str) -> String {
    format!("gcp-sts:{sts_url}")
}

/// The GCP exchanger: one HTTP client, the budget's limiter, and whom to tell whether each
/// endpoint answered.
pub struct GcpExchanger {
    http: reqwest::Client,
    limiter: Arc<Limiter>,
    reports: Option<Arc<dyn EndpointReports>>,
}

impl GcpExchanger {
    /// An exchanger whose calls last at most `timeout`, trusting the system's roots plus
    /// `extra_ca_pem` (a private endpoint's CA; the tests' local GCP).
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
            let certs =
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| format!("the GCP CA bundle: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| format!("the GCP HTTP client: {e}"))?;
        Ok(Self { http, limiter, reports })
    }

    /// POSTs through the limiter of `quota`, reporting the endpoint's health under `key`;
    /// the HTTP status and body, or no answer.
    async fn post(
        &self,
        (key, quota, what): (&str, &Quota, &str),
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), GcpError> {
        self.limiter.acquire(quota).await;
        let unreachable = |e: reqwest::Error| GcpError::Unreachable {
            what: what.to_owned(),
            detail: crate::util::redact::redact(&without_url(&e)),
        };
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response
                    .bytes()
                    .await
                    .map(|b| (status, b.to_vec()))
                    .map_err(unreachable)
            }
            Err(e) => Err(unreachable(e)),
        };
        let down = match &outcome {
            Err(_) => true,
            Ok((status, _)) => *status >= 500,
        };
        match (&self.reports, down) {
            (Some(r), true) => r.failed(key),
            (Some(r), false) => r.answered(key),
            (None, _) => {}
        }
        match &outcome {
            Ok((429, _)) => self.limiter.throttled(quota),
            _ => self.limiter.passed(quota),
        }
        outcome
    }

    async fn call(&self, target: &GcpTarget, token: &str, issued: Timestamp, keep: bool) -> Result<GcpGrant, GcpError> {
        let key = endpoint_key(&target.sts_url);
        let what = format!("Google STS token exchange for {}", target.sts_audience);
        let quota = Quota {
            account: target.project_number.clone(),
            region: key.clone(),
        };
        // google-auth asks STS for cloud-platform when it impersonates, else the scopes.
        let scope = if target.service_account_email.is_some() {
            crate::resolve::GCP_DEFAULT_SCOPE.to_owned()
        } else {
            target.scopes.join(" ")
        };
        let form = [
            ("grant_type", TOKEN_EXCHANGE),
            ("audience", target.sts_audience.as_str()),
            ("scope", scope.as_str()),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("subject_token_type", JWT_TYPE),
            ("subject_token", token),
        ];
        let request = self.http.post(&target.sts_url).form(&form);
        let (status, body) = self.post((&key, &quota, &what), request).await?;
        let federated =
            read_sts(status, &body, issued).map_err(|answer| answer.into_error(&target.sts_audience, &what))?;
        let Some(url) = target.impersonation_url() else {
            let mut grant = federated.grant;
            grant.access_token = keep.then_some(AccessToken(federated.token));
            return Ok(grant);
        };
        let email = target.service_account_email.clone().unwrap_or_default();
        let what = format!("generateAccessToken for service account {email}");
        let quota = Quota {
            account: target.project_number.clone(),
            region: format!("iamcredentials:{}", target.iam_credentials_url),
        };
        let delegates: Vec<String> = target
            .delegates
            .iter()
            .map(|d| format!("projects/-/serviceAccounts/{d}"))
            .collect();
        let mut body = json!({"scope": target.scopes, "delegates": delegates});
        if let Some(seconds) = target.lifetime_seconds {
            body["lifetime"] = json!(format!("{seconds}s"));
        }
        let request = self
            .http
            .post(url)
            .bearer_auth(&federated.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let iam_key = format!("iamcredentials:{}", target.iam_credentials_url);
        let (status, answer) = self.post((&iam_key, &quota, &what), request).await?;
        let (mut grant, impersonated) = read_iam(status, &answer, issued).map_err(|a| a.into_error(&email, &what))?;
        grant.access_token = keep.then_some(impersonated);
        Ok(grant)
    }
}

/// reqwest's error without the URL (kept short).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the endpoint");
    }
    text
}

/// A federated token, kept only for the impersonation call that follows.
struct Federated {
    token: String,
    grant: GcpGrant,
}

#[derive(Deserialize)]
struct StsSuccess {
    access_token: Option<String>,
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct StsFailure {
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IamSuccess {
    access_token: Option<String>,
    expire_time: Option<String>,
}

#[derive(Deserialize)]
struct IamFailure {
    error: Option<IamErrorBody>,
}

#[derive(Deserialize)]
struct IamErrorBody {
    code: Option<u16>,
    message: Option<String>,
    status: Option<String>,
}

/// A refusal read from an answer, before it is named after its call.
enum Answer {
    Sts {
        error: String,
        description: String,
        status: u16,
    },
    Iam {
        api_status: String,
        code: u16,
        message: String,
    },
    Unreadable(String),
}

impl Answer {
    fn into_error(self, subject: &str, what: &str) -> GcpError {
        match self {
            Self::Sts {
                error,
                description,
                status,
            } => GcpError::StsRejected {
                audience: subject.to_owned(),
                error,
                description,
                status,
            },
            Self::Iam {
                api_status,
                code,
                message,
            } => GcpError::IamRejected {
                service_account: subject.to_owned(),
                api_status,
                code,
                message,
            },
            Self::Unreadable(detail) => GcpError::BadResponse {
                what: what.to_owned(),
                detail,
            },
        }
    }
}

/// Reads STS's answer (pure): the federated token and its expiry, or why not.
fn read_sts(status: u16, body: &[u8], issued: Timestamp) -> Result<Federated, Answer> {
    if (200..300).contains(&status) {
        let ok: StsSuccess = serde_json::from_slice(body).map_err(|e| Answer::Unreadable(format!("not JSON: {e}")))?;
        return match (ok.access_token, ok.expires_in) {
            (Some(token), Some(s)) if s > 0 && !token.is_empty() => Ok(Federated {
                token,
                grant: GcpGrant {
                    issued,
                    expiration: issued.saturating_add(SignedDuration::from_secs(s)).unwrap_or(issued),
                    access_token: None,
                },
            }),
            _ => Err(Answer::Unreadable(
                "no access_token or a non-positive expires_in".to_owned(),
            )),
        };
    }
    match serde_json::from_slice::<StsFailure>(body) {
        Ok(StsFailure {
            error: Some(error),
            error_description,
        }) => Err(Answer::Sts {
            error,
            description: crate::util::redact::redact(error_description.as_deref().unwrap_or_default()),
            status,
        }),
        _ => Err(Answer::Unreadable(format!("HTTP {status} without STS's error JSON"))),
    }
}

/// Reads IAM Credentials' answer (pure): the impersonated token's expiry and the token, or
/// why not.
fn read_iam(status: u16, body: &[u8], issued: Timestamp) -> Result<(GcpGrant, AccessToken), Answer> {
    if (200..300).contains(&status) {
        let ok: IamSuccess = serde_json::from_slice(body).map_err(|e| Answer::Unreadable(format!("not JSON: {e}")))?;
        let expiration = ok.expire_time.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        return match (ok.access_token, expiration) {
            (Some(t), Some(expiration)) if !t.is_empty() && expiration > issued => Ok((
                GcpGrant {
                    issued,
                    expiration,
                    access_token: None,
                },
                AccessToken(t),
            )),
            _ => Err(Answer::Unreadable(
                "no accessToken or an expireTime not in the future".to_owned(),
            )),
        };
    }
    match serde_json::from_slice::<IamFailure>(body) {
        Ok(IamFailure { error: Some(e) }) => Err(Answer::Iam {
            api_status: e.status.unwrap_or_default(),
            code: e.code.unwrap_or(status),
            message: crate::util::redact::redact(e.message.as_deref().unwrap_or_default()),
        }),
        _ => Err(Answer::Unreadable(format!("HTTP {status} without Google's error JSON"))),
    }
}

impl Exchange<GcpTarget> for GcpExchanger {
    type Grant = GcpGrant;

    fn exchange<'a>(&'a self, request: Request<'a, GcpTarget>) -> BoxFuture<'a, Result<GcpGrant, ExchangeError>> {
        Box::pin(async move {
            let token = request.token.await?;
            Ok(self.call(request.input, &token, request.now, request.keep).await?)
        })
    }
}

#[cfg(test)]
mod tests;
