//! IAM Credentials' `generateAccessToken`: a short access token of a service account, for a
//! caller allowed to mint it, directly or through `delegates`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::IamError;
use super::sts::ACCESS_TOKEN_SECONDS;
use super::{GcpState, Impersonation, Issued};

const METHOD: &str = ":generateAccessToken";
const NAME_PREFIX: &str = "projects/-/serviceAccounts/";

/// The request; as in proto3 JSON, `null` stands for an empty list (google-auth sends
/// `"delegates": null`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    delegates: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<Vec<String>>,
    /// `3600s`, as protobuf's Duration in JSON.
    #[serde(default)]
    lifetime: Option<String>,
}

pub(super) async fn generate_access_token(
    State(state): State<Arc<GcpState>>,
    Path((project, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let email = call.strip_suffix(METHOD).unwrap_or_default().to_owned();
    let caller = bearer(&headers).and_then(|t| state.token(t));
    let mut record = Impersonation {
        caller: caller.as_ref().map(|c| c.member.clone()),
        service_account: email.clone(),
        delegates: Vec::new(),
        error: None,
    };
    let outcome = match serde_json::from_slice::<Body>(&body) {
        Ok(body) => {
            record.delegates = body.delegates.clone().unwrap_or_default();
            generate(&state, (&project, &email, &call), caller, body)
        }
        Err(e) => Err(IamError::invalid(format!("Invalid JSON payload received. {e}"))),
    };
    record.error = outcome.as_ref().err().map(|e| e.status.to_owned());
    tracing::info!(
        caller = record.caller.as_deref().unwrap_or("-"),
        service_account = record.service_account,
        delegates = ?record.delegates,
        outcome = record.error.as_deref().unwrap_or("issued"),
        "local IAM Credentials: generateAccessToken"
    );
    state
        .impersonations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(record);
    match outcome {
        Ok(body) => Json(body).into_response(),
        Err(err) => err.into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Protobuf's JSON Duration: seconds with an `s` suffix.
fn parse_lifetime(text: &str) -> Option<i64> {
    text.strip_suffix('s')?.parse::<f64>().ok().map(|s| s as i64)
}

fn generate(
    state: &GcpState,
    (project, email, call): (&str, &str, &str),
    caller: Option<Issued>,
    body: Body,
) -> Result<Value, IamError> {
    if project != "-" || !call.ends_with(METHOD) || email.is_empty() {
        return Err(IamError::not_found(&format!(
            "projects/{project}/serviceAccounts/{call}"
        )));
    }
    let now = Timestamp::now().as_second();
    let caller = caller
        .filter(|c| c.expires_at > now)
        .ok_or_else(IamError::unauthenticated)?;
    let scope = body.scope.unwrap_or_default();
    if scope.is_empty() {
        return Err(IamError::invalid("Scope required."));
    }
    let config = state.config();
    let cap = config.access_token_seconds.unwrap_or(ACCESS_TOKEN_SECONDS);
    let lifetime = match body.lifetime.as_deref() {
        None => 3600,
        Some(text) => match parse_lifetime(text) {
            Some(s) if (1..=43_200).contains(&s) => s,
            _ => {
                return Err(IamError::invalid(format!(
                    "Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), \"{text}\""
                )));
            }
        },
    };
    // Each hop must allow the previous principal: the caller, then each delegate in turn.
    let mut previous = caller.member.clone();
    let delegates = body.delegates.unwrap_or_default();
    let hops = delegates.iter().map(String::as_str).chain(std::iter::once(""));
    for hop in hops {
        let hop_email = if hop.is_empty() {
            email
        } else {
            hop.strip_prefix(NAME_PREFIX)
                .ok_or_else(|| IamError::invalid(format!("Invalid form of delegate: {hop}")))?
        };
        let account = config
            .service_accounts
            .iter()
            .find(|sa| sa.email == hop_email)
            .ok_or_else(IamError::denied)?;
        if !account.token_creators.contains(&previous) {
            return Err(IamError::denied());
        }
        previous = format!("serviceAccount:{hop_email}");
    }
    let expires_at = now + lifetime.min(cap);
    let access_token = state.issue(
        "local-gcp-iam",
        Issued {
            member: format!("serviceAccount:{email}"),
            expires_at,
            scopes: scope,
        },
    );
    let expire_time = Timestamp::from_second(expires_at).map_err(|e| IamError::invalid(e.to_string()))?;
    Ok(json!({"accessToken": access_token, "expireTime": expire_time.to_string()}))
}
