//! The HTTP side: the Query API on every path but `/_local/*`, and the local endpoints for
//! call counts.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::RngExt as _;

use super::actions::{self, StsState};
use super::calls::{CallCounts, RoleCall};
use super::faults::{self, Fault};
use super::params::Params;
use super::sigv4;
use super::xml;

pub fn router(state: Arc<StsState>) -> Router {
    Router::new()
        .route("/_local/calls", get(calls).delete(reset_calls))
        .route("/_local/calls/reset", post(reset_calls))
        .route("/_local/healthz", get(|| async { "ok" }))
        .fallback(query_api)
        .with_state(state)
}

async fn calls(State(state): State<Arc<StsState>>) -> Json<CallCounts> {
    Json(state.calls.snapshot())
}

async fn reset_calls(State(state): State<Arc<StsState>>) -> StatusCode {
    state.calls.reset();
    StatusCode::NO_CONTENT
}

/// An AWS-style request ID (a random version-4 UUID).
fn request_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill(&mut b[..]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

async fn query_api(
    State(state): State<Arc<StsState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = request_id();
    if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        let signed = sigv4::Request {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query(),
            headers: &headers,
            body: &body,
        };
        if let Some((action, response)) = super::ecr::handle(&state, target, &signed) {
            tracing::info!(action, request_id, status = %response.status(), "local ECR");
            return response;
        }
    }
    let form_body: &[u8] = if method == Method::POST { &body } else { b"" };
    let params = Params::parse(uri.query(), form_body);
    let action = params.get("Action");
    let signed = sigv4::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
        body: &body,
    };
    let action_name = action.unwrap_or("(none)");
    let fault = state.faults.current().filter(|_| faults::applies_to(action_name));
    if let Some(Fault::Slow(delay)) = &fault {
        tokio::time::sleep(*delay).await;
    }
    let result = match fault.as_ref().and_then(Fault::error) {
        Some(err) => Err(err),
        None => actions::dispatch(&state, action, &params, &signed, &request_id).await,
    };
    // Role ARNs are not secrets; tokens and keys are never logged.
    let role = params.get("RoleArn").unwrap_or_default();
    state.calls.record(action_name, result.as_ref().err().map(|e| e.code));
    if !role.is_empty() {
        state.calls.record_role(RoleCall {
            action: action_name.to_owned(),
            role_arn: role.to_owned(),
            external_id: params.get("ExternalId").map(str::to_owned),
            session_name: params.get("RoleSessionName").map(str::to_owned),
            error: result.as_ref().err().map(|e| e.code.to_owned()),
            at_millis: jiff::Timestamp::now().as_millisecond().try_into().unwrap_or_default(),
        });
    }
    let (status, body) = match result {
        Ok(_) if fault == Some(Fault::MalformedBody) => (StatusCode::OK, faults::MALFORMED_BODY.to_owned()),
        Ok(body) if fault == Some(Fault::ExpiredCredentials) => {
            (StatusCode::OK, faults::expire(&body, jiff::Timestamp::now()))
        }
        Ok(body) => {
            tracing::info!(action = action_name, role, request_id, "local STS: ok");
            (StatusCode::OK, body)
        }
        Err(err) => {
            // Error messages never carry tokens or secrets.
            tracing::info!(action = action_name, role, request_id, code = err.code, message = %err.message, "local STS: error");
            let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, xml::error(&request_id, &err))
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}
