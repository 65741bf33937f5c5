//! Registry logins: `GetAuthorizationToken` of ECR (a private registry) or ECR Public, signed
//! with a session of the Identity's chain, through the real `aws-sdk-ecr` and
//! `aws-sdk-ecrpublic`. The endpoints are the controller's configuration, never a profile's;
//! each call waits for the rate limit of its region, as STS calls do.

mod error;

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials as AwsCredentials;
use aws_sdk_ecr::config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::{Builder, tls};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use base64::Engine as _;
use jiff::Timestamp;

pub use error::EcrError;

use crate::exchange::budget::limit::Limiter;
use crate::exchange::credentials::Credentials;
use crate::resolve::registry::{RegistryKind, RegistryLogin};

/// Where ECR is called: the controller's configuration, never a profile's.
#[derive(Clone, Debug, Default)]
pub struct EcrSettings {
    /// ECR endpoint URL for every private-registry login; `None`: AWS's regional endpoint.
    pub endpoint: Option<String>,
    /// ECR Public endpoint URL; `None`: AWS's (`us-east-1`).
    pub public_endpoint: Option<String>,
    /// Budget for one call.
    pub operation_timeout: Duration,
}

/// What a login yields: the registry's user name and password (`AWS` and a token) and
/// when they stop working. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryToken {
    /// The registry host (the key of `auths`).
    pub host: String,
    /// `AWS`.
    pub username: String,
    /// The token ECR issued.
    pub password: String,
    /// When the controller asked for it.
    pub issued: Timestamp,
    /// ECR's `expiresAt`.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for RegistryToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryToken")
            .field("host", &self.host)
            .field("password", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl crate::exchange::Grant for RegistryToken {
    fn issued(&self) -> Timestamp {
        self.issued
    }

    fn expiration(&self) -> Timestamp {
        self.expires_at
    }
}

/// One login to make: which registry, with which session.
pub struct Login<'a> {
    pub login: &'a RegistryLogin,
    pub credentials: &'a Credentials,
}

/// Makes registry logins.
pub struct EcrExchanger {
    http: SharedHttpClient,
    settings: EcrSettings,
    limiter: Arc<Limiter>,
}

impl crate::exchange::Exchange<Login<'_>> for EcrExchanger {
    type Grant = RegistryToken;

    fn exchange<'a>(
        &'a self,
        request: crate::exchange::Request<'a, Login<'_>>,
    ) -> futures::future::BoxFuture<'a, Result<RegistryToken, crate::exchange::ExchangeError>> {
        let (login, credentials, now) = (request.input.login, request.input.credentials, request.now);
        Box::pin(async move { Ok(self.login(login, credentials, now).await?) })
    }
}

impl EcrExchanger {
    /// An exchanger with its own HTTPS client (rustls with ring), calling through `limiter`.
    pub fn new(settings: EcrSettings, limiter: Arc<Limiter>) -> Self {
        let http = Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        Self {
            http,
            settings,
            limiter,
        }
    }

    /// `GetAuthorizationToken` for `login` with `credentials`.
    pub async fn login(
        &self,
        login: &RegistryLogin,
        credentials: &Credentials,
        now: Timestamp,
    ) -> Result<RegistryToken, EcrError> {
        let creds = AwsCredentials::new(
            &credentials.access_key_id,
            &credentials.secret_access_key,
            Some(credentials.session_token.clone()),
            None,
            "atmos-auth-controller",
        );
        // The one call into the exchange's budget. ECR's quota is its own, not STS's (per
        // account and region too), so it gets a bucket of its own at the same rate; a login
        // is not in a turn's expected calls, so it waits for that bucket like an unexpected call.
        let quota = crate::exchange::budget::limit::Quota {
            account: login.account_id.clone().unwrap_or_default(),
            region: format!("ecr:{}", login.region),
        };
        self.limiter.acquire(&quota).await;
        let (token, expires) = match login.kind {
            RegistryKind::Ecr => self.private(login, creds).await?,
            RegistryKind::EcrPublic => self.public(login, creds).await?,
        };
        let (username, password) = split_token(&token).ok_or_else(|| EcrError::BadResponse {
            registry: login.host(),
            detail: "the authorization token is not base64 of user:password".to_owned(),
        })?;
        let expires_at =
            expires
                .and_then(|t| Timestamp::new(t.secs(), 0).ok())
                .ok_or_else(|| EcrError::BadResponse {
                    registry: login.host(),
                    detail: "no expiresAt".to_owned(),
                })?;
        Ok(RegistryToken {
            host: login.host(),
            username,
            password,
            issued: now,
            expires_at,
        })
    }

    async fn private(
        &self,
        login: &RegistryLogin,
        creds: AwsCredentials,
    ) -> Result<(String, Option<aws_sdk_ecr::primitives::DateTime>), EcrError> {
        let mut b = aws_sdk_ecr::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(login.region.clone()))
            .credentials_provider(creds)
            .http_client(self.http.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(self.timeouts());
        if let Some(ep) = &self.settings.endpoint {
            b = b.endpoint_url(ep);
        }
        let client = aws_sdk_ecr::Client::from_conf(b.build());
        let out = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| error::from_sdk(&login.host(), e))?;
        let data = out.authorization_data().first().ok_or_else(|| EcrError::BadResponse {
            registry: login.host(),
            detail: "no authorizationData".to_owned(),
        })?;
        Ok((
            data.authorization_token().unwrap_or_default().to_owned(),
            data.expires_at().copied(),
        ))
    }

    async fn public(
        &self,
        login: &RegistryLogin,
        creds: AwsCredentials,
    ) -> Result<(String, Option<aws_sdk_ecr::primitives::DateTime>), EcrError> {
        let mut b = aws_sdk_ecrpublic::Config::builder()
            .behavior_version(aws_sdk_ecrpublic::config::BehaviorVersion::latest())
            .region(aws_sdk_ecrpublic::config::Region::new(login.region.clone()))
            .credentials_provider(creds)
            .http_client(self.http.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(self.timeouts());
        if let Some(ep) = &self.settings.public_endpoint {
            b = b.endpoint_url(ep);
        }
        let client = aws_sdk_ecrpublic::Client::from_conf(b.build());
        let out = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| error::from_sdk(&login.host(), e))?;
        let data = out.authorization_data().ok_or_else(|| EcrError::BadResponse {
            registry: login.host(),
            detail: "no authorizationData".to_owned(),
        })?;
        Ok((
            data.authorization_token().unwrap_or_default().to_owned(),
            data.expires_at().copied(),
        ))
    }

    fn timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_timeout(self.settings.operation_timeout)
            .build()
    }
}

/// ECR's token is base64 of `user:password` (`AWS:<token>`).
fn split_token(token: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(token).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_splits_into_user_and_password() {
        let t = base64::engine::general_purpose::STANDARD.encode("AWS:pass:with:colons");
        assert_eq!(split_token(&t), Some(("AWS".into(), "pass:with:colons".into())));
        assert_eq!(split_token("not base64!"), None);
        assert_eq!(
            split_token(&base64::engine::general_purpose::STANDARD.encode("nocolon")),
            None
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let t = RegistryToken {
            host: "h".into(),
            username: "AWS".into(),
            password: "sekrit".into(),
            issued: Timestamp::UNIX_EPOCH,
            expires_at: Timestamp::UNIX_EPOCH,
        };
        assert!(!format!("{t:?}").contains("sekrit"));
    }
}
