//! ECR's and ECR Public's `GetAuthorizationToken` (the JSON 1.1 protocol, `X-Amz-Target`
//! `AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken` or
//! `SpencerFrontendService.GetAuthorizationToken`), SigV4-verified with the sessions this
//! endpoint issued and allowed only for roles whose permissions include the action (ECR
//! Public also needs `sts:GetServiceBearerToken`, as AWS's). The tokens it issues are kept, so
//! a registry's token service can check a client's `AWS:<token>` against them.

use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use rand::RngExt as _;
use serde_json::json;

use super::actions::{StsState, authenticate_for};
use super::error::StsError;
use super::sigv4;

/// `X-Amz-Target` of private ECR's call.
pub const ECR_TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
/// `X-Amz-Target` of ECR Public's call.
pub const ECR_PUBLIC_TARGET: &str = "SpencerFrontendService.GetAuthorizationToken";

/// One token issued.
#[derive(Clone, Debug)]
pub struct EcrToken {
    /// The password (`AWS:<password>` is what the token encodes).
    pub password: String,
    pub expires_at: Timestamp,
    /// The assumed-role ARN of the session that asked for it.
    pub caller: String,
}

/// Every token issued, never pruned (tests search logs for them).
#[derive(Default, Debug)]
pub struct EcrTokens(Mutex<Vec<EcrToken>>);

impl EcrTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<EcrToken>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token with this password, if it was issued and has not expired at `now`.
    pub fn valid(&self, password: &str, now: Timestamp) -> Option<EcrToken> {
        self.lock()
            .iter()
            .find(|t| sigv4::constant_time_eq(t.password.as_bytes(), password.as_bytes()))
            .filter(|t| t.expires_at > now)
            .cloned()
    }

    /// Every token issued so far.
    pub fn issued(&self) -> Vec<EcrToken> {
        self.lock().clone()
    }
}

/// Answers a JSON 1.1 call whose target is `target`; `None` when it is not an ECR call.
pub fn handle(state: &StsState, target: &str, request: &sigv4::Request<'_>) -> Option<(&'static str, Response)> {
    let (service, public) = match target {
        ECR_TARGET => ("ecr", false),
        ECR_PUBLIC_TARGET => ("ecr-public", true),
        _ => return None,
    };
    let action = if public {
        "ecr-public:GetAuthorizationToken"
    } else {
        "ecr:GetAuthorizationToken"
    };
    let result = authorize(state, (request, service), action, public);
    let code = result.as_ref().err().map(|e| e.code);
    state.calls.record(action, code);
    Some((
        action,
        match result {
            Ok(body) => json_response(StatusCode::OK, None, body.to_string()),
            Err(err) => {
                tracing::info!(action, code = err.code, message = %err.message, "local ECR: error");
                let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
                let body = json!({"__type": err.code, "message": err.message}).to_string();
                json_response(status, Some(err.code), body)
            }
        },
    ))
}

fn authorize(
    state: &StsState,
    (request, service): (&sigv4::Request<'_>, &str),
    action: &str,
    public: bool,
) -> Result<serde_json::Value, StsError> {
    let now = Timestamp::now();
    let caller = authenticate_for(state, (request, service), now)?;
    let role = state.config.role(&caller.role_arn);
    let mut needed = vec![action];
    if public {
        needed.push("sts:GetServiceBearerToken");
    }
    for need in needed {
        if !role.is_some_and(|r| r.allows(need)) {
            return Err(StsError::access_denied_exception(format!(
                "User: {} is not authorized to perform: {need} on resource: * because no identity-based policy allows the {need} action",
                caller.assumed_role_arn()
            )));
        }
    }
    let mut secret = [0u8; 96];
    rand::rng().fill(&mut secret[..]);
    let password = base64::engine::general_purpose::STANDARD.encode(secret);
    let lifetime = SignedDuration::from_secs(i64::from(state.config.ecr_token_seconds));
    let expires_at = now.checked_add(lifetime).unwrap_or(Timestamp::MAX);
    state.ecr.lock().push(EcrToken {
        password: password.clone(),
        expires_at,
        caller: caller.assumed_role_arn(),
    });
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    // AWS sends epoch seconds with a fraction.
    let expires = expires_at.as_millisecond() as f64 / 1000.0;
    let region = request_region(request).unwrap_or_default();
    Ok(if public {
        json!({"authorizationData": {"authorizationToken": token, "expiresAt": expires}})
    } else {
        json!({"authorizationData": [{
            "authorizationToken": token,
            "expiresAt": expires,
            "proxyEndpoint": format!("https://{}.dkr.ecr.{region}.amazonaws.com", state.config.account),
        }]})
    })
}

/// The region of the call's SigV4 scope.
fn request_region(request: &sigv4::Request<'_>) -> Option<String> {
    let header = request.headers.get("authorization")?.to_str().ok()?;
    sigv4::parse_authorization(header).ok().map(|a| a.region)
}

fn json_response(status: StatusCode, error: Option<&str>, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Some(code) = error.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}
