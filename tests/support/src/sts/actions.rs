//! The three STS actions, with AWS's authentication, validation and trust rules.

use std::sync::Arc;

use jiff::Timestamp;

use super::calls::CallCounter;
use super::config::{AWS_DEFAULT_SESSION_SECONDS, RoleConfig, StsConfig};
use super::error::StsError;
use super::faults::Faults;
use super::oidc::OidcVerifier;
use super::params::{self, Params};
use super::sessions::{Session, SessionRequest, SessionStore};
use super::sigv4;
use super::xml;

pub const API_VERSION: &str = "2011-06-15";

/// Everything a running local STS holds.
pub struct StsState {
    pub config: StsConfig,
    pub oidc: OidcVerifier,
    pub sessions: SessionStore,
    pub calls: CallCounter,
    pub faults: Faults,
    /// Every web identity token presented, valid or not.
    pub web_identity_tokens: std::sync::Mutex<Vec<String>>,
    /// The request quota, if the configuration sets one.
    pub throttle: Option<super::throttle::Throttle>,
    /// The registry tokens ECR issued.
    pub ecr: Arc<super::ecr::EcrTokens>,
    /// The request quotas per account, charged to the account of the role a call names.
    pub account_throttles: std::sync::Mutex<std::collections::HashMap<String, super::throttle::Throttle>>,
}

impl StsState {
    /// Whether a call naming `role_arn` at `now` is within its account's quota.
    fn account_admits(&self, role_arn: Option<&str>, now: std::time::Instant) -> bool {
        let Some(account) = role_arn.and_then(super::config::account_of) else {
            return true;
        };
        let throttles = self.account_throttles.lock().unwrap_or_else(|p| p.into_inner());
        throttles.get(account).is_none_or(|t| t.admit(now))
    }
}

/// Answers one Query API request with the XML body of a success, or an error.
pub async fn dispatch(
    state: &StsState,
    action: Option<&str>,
    params: &Params,
    request: &sigv4::Request<'_>,
    request_id: &str,
) -> Result<String, StsError> {
    if state
        .throttle
        .as_ref()
        .is_some_and(|t| !t.admit(std::time::Instant::now()))
    {
        return Err(StsError::throttling());
    }
    if !state.account_admits(params.get("RoleArn"), std::time::Instant::now()) {
        return Err(StsError::throttling());
    }
    let Some(action) = action else {
        return Err(StsError::invalid_action("Missing Action"));
    };
    if let Some(version) = params.get("Version")
        && version != API_VERSION
    {
        return Err(StsError::invalid_action(format!(
            "Could not find operation {action} for version {version}"
        )));
    }
    let now = Timestamp::now();
    match action {
        "AssumeRoleWithWebIdentity" => {
            params::reject_unknown(action, params)?;
            assume_role_with_web_identity(state, params, now, request_id).await
        }
        "AssumeRole" => {
            let caller = authenticate(state, request, now)?;
            params::reject_unknown(action, params)?;
            assume_role(state, &caller, params, now, request_id)
        }
        "GetCallerIdentity" => {
            let caller = authenticate(state, request, now)?;
            params::reject_unknown(action, params)?;
            Ok(xml::get_caller_identity(request_id, &caller))
        }
        other => Err(StsError::invalid_action(format!(
            "Could not find operation {other} for version {API_VERSION}"
        ))),
    }
}

/// Verifies the SigV4 signature of a call and returns the session that signed it.
pub fn authenticate(state: &StsState, request: &sigv4::Request<'_>, now: Timestamp) -> Result<Arc<Session>, StsError> {
    authenticate_for(state, (request, "sts"), now)
}

/// [`authenticate`] for a call to `service` (its SigV4 signing name: `sts`, `ecr`, `ecr-public`).
pub fn authenticate_for(
    state: &StsState,
    (request, service): (&sigv4::Request<'_>, &str),
    now: Timestamp,
) -> Result<Arc<Session>, StsError> {
    let Some(header) = request.headers.get("authorization") else {
        return Err(StsError::missing_authentication());
    };
    let header = header
        .to_str()
        .map_err(|_| StsError::incomplete_signature("Authorization header is not valid text"))?;
    let auth = sigv4::parse_authorization(header)?;
    let session = state
        .sessions
        .get(&auth.access_key_id)
        .ok_or_else(StsError::invalid_client_token)?;
    let token = request
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !sigv4::constant_time_eq(token.as_bytes(), session.session_token.as_bytes()) {
        return Err(StsError::invalid_client_token());
    }
    if session.is_expired(now) {
        return Err(StsError::expired_session());
    }
    // What IAM answers once a role's active sessions are revoked (an explicit deny).
    if state.faults.is_revoked(&session.access_key_id) {
        return Err(StsError::access_denied(format!(
            "User: {} is not authorized to perform this action with an explicit deny in an identity-based policy",
            session.assumed_role_arn()
        )));
    }
    sigv4::verify((request, service), &auth, &session.secret_access_key, now)?;
    Ok(session)
}

/// The session length: the requested one, or AWS's default of one hour capped at what the
/// role (and, for chained calls, role chaining) allows.
fn session_seconds(requested: Option<u32>, role: &RoleConfig, chained_cap: Option<u32>) -> Result<u32, StsError> {
    let Some(requested) = requested else {
        let cap = chained_cap.unwrap_or(u32::MAX);
        return Ok(AWS_DEFAULT_SESSION_SECONDS.min(role.max_session_seconds).min(cap));
    };
    if let Some(cap) = chained_cap
        && requested > cap
    {
        return Err(StsError::validation(if cap == AWS_DEFAULT_SESSION_SECONDS {
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
                .to_owned()
        } else {
            format!(
                "The requested DurationSeconds exceeds the {cap} second session limit for roles assumed by role chaining."
            )
        }));
    }
    if requested > role.max_session_seconds {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(requested)
}

async fn assume_role_with_web_identity(
    state: &StsState,
    params: &Params,
    now: Timestamp,
    request_id: &str,
) -> Result<String, StsError> {
    let config = &state.config;
    let role_arn = params::role_arn(params)?;
    let session_name = params::role_session_name(params)?;
    let token = params::required(params, "WebIdentityToken", "webIdentityToken")?;
    state
        .web_identity_tokens
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(token.to_owned());
    if !(4..=20_000).contains(&token.len()) {
        return Err(StsError::constraint(
            None,
            "webIdentityToken",
            "Member must have length between 4 and 20000",
        ));
    }
    let requested = params::duration_seconds(params, config.min_session_seconds)?;
    let packed = params::packed_policy_size(params)?;

    let verified = state.oidc.verify(token, now).await?;
    let client_ids = config.client_ids();
    let audiences: Vec<&String> = verified.audiences.iter().filter(|a| client_ids.contains(a)).collect();
    if audiences.is_empty() {
        return Err(StsError::invalid_identity_token("Incorrect token audience"));
    }
    let denied = || StsError::access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity");
    let role = config.role(role_arn).ok_or_else(denied)?;
    let Some(audience) = audiences
        .into_iter()
        .find(|a| role.trusts_web_identity(a, &verified.subject))
    else {
        return Err(denied());
    };
    let duration = session_seconds(requested, role, None)?;
    let account = super::config::account_of(role_arn).unwrap_or(&config.account);
    let session = state.sessions.issue(
        &SessionRequest {
            account,
            role_arn,
            role_name: role.name(),
            session_name,
            duration_seconds: duration,
        },
        now,
    );
    Ok(xml::assume_role_with_web_identity(
        request_id,
        &session,
        &xml::WebIdentityResult {
            subject: &verified.subject,
            audience,
            provider: &state.oidc.provider_arn(account),
            packed_policy_size: packed,
        },
    ))
}

fn assume_role(
    state: &StsState,
    caller: &Session,
    params: &Params,
    now: Timestamp,
    request_id: &str,
) -> Result<String, StsError> {
    let config = &state.config;
    let role_arn = params::role_arn(params)?;
    let session_name = params::role_session_name(params)?;
    let requested = params::duration_seconds(params, config.min_session_seconds)?;
    let external_id = params::external_id(params)?;
    let packed = params::packed_policy_size(params)?;
    if params.get("SerialNumber").is_some() || params.get("TokenCode").is_some() {
        return Err(StsError::access_denied(
            "MultiFactorAuthentication failed: the local STS has no MFA devices.",
        ));
    }
    let denied = || {
        StsError::access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.assumed_role_arn()
        ))
    };
    let role = config.role(role_arn).ok_or_else(denied)?;
    if !role.trusts_role(&caller.role_arn) {
        return Err(denied());
    }
    if let Some(required) = &role.external_id
        && external_id != Some(required.as_str())
    {
        return Err(denied());
    }
    // Every caller here is a role session, so this is role chaining.
    let duration = session_seconds(requested, role, Some(config.max_chained_session_seconds))?;
    let session = state.sessions.issue(
        &SessionRequest {
            account: super::config::account_of(role_arn).unwrap_or(&config.account),
            role_arn,
            role_name: role.name(),
            session_name,
            duration_seconds: duration,
        },
        now,
    );
    Ok(xml::assume_role(request_id, &session, packed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_lengths_follow_aws_rules() {
        let mut role = RoleConfig::new("arn:aws:iam::123456789012:role/r");
        assert_eq!(session_seconds(None, &role, None).unwrap(), 3600);
        role.max_session_seconds = 120;
        assert_eq!(session_seconds(None, &role, None).unwrap(), 120);
        assert_eq!(session_seconds(None, &role, Some(60)).unwrap(), 60);
        let err = session_seconds(Some(121), &role, None).unwrap_err();
        assert_eq!(
            err.message,
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        );
        role.max_session_seconds = 43_200;
        let err = session_seconds(Some(7200), &role, Some(3600)).unwrap_err();
        assert_eq!(
            err.message,
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
        );
        assert!(session_seconds(Some(61), &role, Some(60)).is_err());
        assert_eq!(session_seconds(Some(7200), &role, None).unwrap(), 7200);
    }
}
