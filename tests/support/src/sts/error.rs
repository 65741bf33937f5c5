//! STS errors as AWS reports them: a code, a message and an HTTP status.

use std::fmt;

/// An error answer of the STS Query API. Messages never contain tokens or secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

impl StsError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", 400, message)
    }

    /// AWS's wording for one failed model constraint.
    pub fn constraint(value: Option<&str>, member: &str, constraint: &str) -> Self {
        let value = match value {
            Some(v) => format!("'{v}'"),
            None => "null".to_owned(),
        };
        Self::validation(format!(
            "1 validation error detected: Value {value} at '{member}' failed to satisfy constraint: {constraint}"
        ))
    }

    /// AWS's answer beyond the account's request quota.
    pub fn throttling() -> Self {
        Self::new("Throttling", 400, "Rate exceeded")
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("AccessDenied", 403, message)
    }

    /// How ECR (a JSON service) says a policy does not allow the call.
    pub fn access_denied_exception(message: impl Into<String>) -> Self {
        Self::new("AccessDeniedException", 400, message)
    }

    pub fn invalid_identity_token(message: impl Into<String>) -> Self {
        Self::new("InvalidIdentityToken", 400, message)
    }

    pub fn expired_identity_token(message: impl Into<String>) -> Self {
        Self::new("ExpiredTokenException", 400, message)
    }

    pub fn idp_communication(message: impl Into<String>) -> Self {
        Self::new("IDPCommunicationError", 400, message)
    }

    pub fn expired_session() -> Self {
        Self::new(
            "ExpiredToken",
            403,
            "The security token included in the request is expired",
        )
    }

    pub fn invalid_client_token() -> Self {
        Self::new(
            "InvalidClientTokenId",
            403,
            "The security token included in the request is invalid.",
        )
    }

    pub fn signature_mismatch(message: impl Into<String>) -> Self {
        Self::new("SignatureDoesNotMatch", 403, message)
    }

    pub fn signature_mismatch_default() -> Self {
        Self::signature_mismatch(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
    }

    pub fn missing_authentication() -> Self {
        Self::new(
            "MissingAuthenticationToken",
            403,
            "Request is missing Authentication Token",
        )
    }

    pub fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::new("IncompleteSignature", 400, message)
    }

    pub fn invalid_action(message: impl Into<String>) -> Self {
        Self::new("InvalidAction", 400, message)
    }

    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new("MalformedPolicyDocument", 400, message)
    }

    pub fn packed_policy_too_large(message: impl Into<String>) -> Self {
        Self::new("PackedPolicyTooLarge", 400, message)
    }
}

impl fmt::Display for StsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for StsError {}
