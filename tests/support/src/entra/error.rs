//! Entra's error answers: `error`, `error_description` starting with the `AADSTS` code, and
//! `error_codes`, with Entra's HTTP status. Messages never contain a token.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sts::StsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraError {
    /// The OAuth error (`invalid_request`, `invalid_client`, `unauthorized_client`, ...).
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    pub description: String,
    pub status: u16,
}

impl EntraError {
    fn new(error: &'static str, code: u32, status: u16, description: impl Into<String>) -> Self {
        Self {
            error,
            code,
            description: description.into(),
            status,
        }
    }

    /// `AADSTS<code>`, as the log and tests name it.
    pub fn aadsts(&self) -> String {
        format!("AADSTS{}", self.code)
    }

    pub fn tenant_not_found(tenant: &str) -> Self {
        Self::new(
            "invalid_request",
            90002,
            400,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        )
    }

    pub fn app_not_found(client_id: &str, tenant: &str) -> Self {
        Self::new(
            "unauthorized_client",
            700016,
            400,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub fn missing_field(field: &str) -> Self {
        Self::new(
            "invalid_request",
            90014,
            400,
            format!("The required field '{field}' is missing from the credential request."),
        )
    }

    pub fn unsupported_grant(grant: &str) -> Self {
        Self::new(
            "unsupported_grant_type",
            70003,
            400,
            format!("The app requested an unsupported grant type '{grant}'."),
        )
    }

    pub fn bad_assertion_type() -> Self {
        Self::new(
            "invalid_request",
            7000216,
            400,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )
    }

    pub fn bad_scope(scope: &str) -> Self {
        Self::new(
            "invalid_scope",
            1002012,
            400,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }

    pub fn malformed() -> Self {
        Self::new("invalid_request", 50027, 400, "JWT token is invalid or malformed.")
    }

    pub fn no_issuer_match(issuer: &str, subject: &str) -> Self {
        Self::new(
            "invalid_request",
            700211,
            400,
            format!(
                "No matching federated identity record found for presented assertion issuer '{issuer}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. Assertion Subject: '{subject}'."
            ),
        )
    }

    pub fn no_record(issuer: &str, subject: &str, audiences: &[String]) -> Self {
        Self::new(
            "invalid_request",
            70021,
            400,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{}'.",
                audiences.join(",")
            ),
        )
    }

    /// The verifier's refusal, in Entra's terms.
    pub fn from_verifier(err: &StsError, issuer: &str, subject: &str) -> Self {
        match err.code {
            "ExpiredTokenException" => Self::new(
                "invalid_client",
                700024,
                400,
                format!("Client assertion is not within its valid time range. {}", err.message),
            ),
            "IDPCommunicationError" => Self::new(
                "invalid_request",
                50166,
                400,
                format!("Request to External OIDC endpoint failed. Issuer: '{issuer}'."),
            ),
            _ if err.message.starts_with("No OpenIDConnect provider") => Self::no_issuer_match(issuer, subject),
            _ if err.message.contains("signature") || err.message.starts_with("Couldn't retrieve") => Self::new(
                "invalid_client",
                700027,
                400,
                "Client assertion failed signature validation.",
            ),
            _ => Self::malformed(),
        }
    }
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({
            "error": self.error,
            "error_description": format!("{}: {}", self.aadsts(), self.description),
            "error_codes": [self.code],
            "timestamp": jiff::Timestamp::now().to_string(),
            "trace_id": uuid_like(),
            "correlation_id": uuid_like(),
        });
        (status, Json(body)).into_response()
    }
}

/// A random version-4-shaped id, as Entra's trace and correlation ids.
pub(super) fn uuid_like() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{}-{}-4{}-{}-{}",
        hex::encode(&b[0..4]),
        hex::encode(&b[4..6]),
        &hex::encode(&b[6..8])[1..],
        hex::encode(&b[8..10]),
        hex::encode(&b[10..16])
    )
}
