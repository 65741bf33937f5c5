//! Google's error answers. STS (an OAuth endpoint): `{"error", "error_description"}` with
//! HTTP 400 or 401. IAM Credentials (a Google API): `{"error": {"code", "message", "status"}}`.
//! Messages never contain a token.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sts::StsError;

/// A refusal of Google STS's token exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRefusal {
    /// `invalid_request`, `invalid_grant`, `invalid_target`, `unsupported_grant_type`.
    pub error: &'static str,
    pub description: String,
    pub status: u16,
}

impl StsRefusal {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            status: 400,
        }
    }

    pub fn missing(field: &str) -> Self {
        Self::new("invalid_request", format!("Missing required parameter: {field}"))
    }

    pub fn unsupported_grant(grant: &str) -> Self {
        Self::new(
            "unsupported_grant_type",
            format!(
                "Invalid value for \"grant_type\": {grant}. Only urn:ietf:params:oauth:grant-type:token-exchange is supported."
            ),
        )
    }

    pub fn bad_value(field: &str, value: &str) -> Self {
        Self::new("invalid_request", format!("Invalid value for \"{field}\": {value}"))
    }

    pub fn bad_audience(audience: &str) -> Self {
        Self::new(
            "invalid_request",
            format!(
                "Invalid value for \"audience\": {audience}. This value should be the full resource name of the Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token for the list of possible formats."
            ),
        )
    }

    pub fn invalid_target() -> Self {
        Self::new(
            "invalid_target",
            "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.",
        )
    }

    pub fn issuer_mismatch(issuer: &str, expected: &str) -> Self {
        Self::new(
            "invalid_grant",
            format!("The issuer in ID Token {issuer} does not match the expected ones: {expected}."),
        )
    }

    pub fn audience_mismatch(audiences: &[String]) -> Self {
        Self::new(
            "invalid_grant",
            format!(
                "The audience in ID Token [{}] does not match the expected audience.",
                audiences.join(", ")
            ),
        )
    }

    pub fn malformed() -> Self {
        Self::new("invalid_grant", "Unable to parse the ID Token.")
    }

    /// The verifier's refusal, in STS's terms.
    pub fn from_verifier(err: &StsError) -> Self {
        match err.code {
            "ExpiredTokenException" => Self::new("invalid_grant", "ID Token expired."),
            "IDPCommunicationError" => Self::new(
                "invalid_grant",
                "Unable to fetch the OIDC discovery document or keys of the identity provider.",
            ),
            _ if err.message.contains("signature") || err.message.starts_with("Couldn't retrieve") => {
                Self::new("invalid_grant", "Invalid ID Token signature.")
            }
            _ => Self::malformed(),
        }
    }
}

impl IntoResponse for StsRefusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}

/// A refusal of IAM Credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamError {
    pub code: u16,
    pub message: String,
    /// `UNAUTHENTICATED`, `PERMISSION_DENIED`, `INVALID_ARGUMENT`, `NOT_FOUND`.
    pub status: &'static str,
}

impl IamError {
    pub fn unauthenticated() -> Self {
        Self {
            code: 401,
            message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.".into(),
            status: "UNAUTHENTICATED",
        }
    }

    /// Google says the same whether the account is missing or the caller may not use it.
    pub fn denied() -> Self {
        Self {
            code: 403,
            message: "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).".into(),
            status: "PERMISSION_DENIED",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            message: message.into(),
            status: "INVALID_ARGUMENT",
        }
    }

    pub fn not_found(path: &str) -> Self {
        Self {
            code: 404,
            message: format!("Requested entity was not found: {path}"),
            status: "NOT_FOUND",
        }
    }
}

impl IntoResponse for IamError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::BAD_REQUEST);
        let mut error = json!({"code": self.code, "message": self.message, "status": self.status});
        if self.status == "PERMISSION_DENIED" {
            error["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "iam.googleapis.com",
                "metadata": {"permission": "iam.serviceAccounts.getAccessToken"}
            }]);
        }
        (status, Json(json!({"error": error}))).into_response()
    }
}
