//! `GetCallerIdentity` with credentials read back from a Secret: who they are, as `whoami`
//! shows them. Called with the operator's own Secret rights, outside the controller's rate
//! limit (one call per identity, by a person).

use std::time::Duration;

use aws_credential_types::Credentials as AwsCredentials;
use aws_sdk_sts::config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::{Builder, tls};

use super::{StsError, to_error};
use crate::exchange::credentials::Credentials;

/// What STS says the credentials are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdentity {
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// The account id.
    pub account: String,
    /// `<role id>:<session>`.
    pub user_id: String,
}

/// Asks STS in `region` (or at `endpoint`) who `creds` are.
pub async fn caller_identity(
    creds: &Credentials,
    region: &str,
    endpoint: Option<&str>,
) -> Result<CallerIdentity, StsError> {
    const ACTION: &str = "GetCallerIdentity";
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let mut config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(15))
                .build(),
        )
        .credentials_provider(AwsCredentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            Some(creds.session_token.clone()),
            None,
            "atmos-auth-whoami",
        ));
    if let Some(ep) = endpoint {
        config = config.endpoint_url(ep);
    }
    let out = aws_sdk_sts::Client::from_conf(config.build())
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| to_error(ACTION, "the caller", e))?;
    Ok(CallerIdentity {
        arn: out.arn().unwrap_or_default().to_owned(),
        account: out.account().unwrap_or_default().to_owned(),
        user_id: out.user_id().unwrap_or_default().to_owned(),
    })
}
