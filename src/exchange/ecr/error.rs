//! Registry login failures, in the shape every refresh error has: a condition `reason()` and
//! whether a quick retry may help. A session without `ecr:GetAuthorizationToken` has its
//! own reason, `EcrPermissionDenied`, so status says which permission the role lacks.

use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The reason of a login refused for want of `ecr:GetAuthorizationToken`.
pub const PERMISSION_DENIED: &str = "EcrPermissionDenied";

/// A failed login. Messages are ECR's own (redacted of anything secret by the caller's
/// redactor as a last line of defence; ECR's messages carry no token).
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    /// The session may not call `GetAuthorizationToken`.
    #[error(
        "GetAuthorizationToken for {registry} refused: {message}; grant the identity's role ecr:GetAuthorizationToken (resource \"*\") and, to pull, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the repositories"
    )]
    PermissionDenied { registry: String, message: String },
    /// ECR answered with another error code.
    #[error("GetAuthorizationToken for {registry} failed: {code}: {message}")]
    Rejected {
        registry: String,
        code: String,
        message: String,
        status: Option<u16>,
    },
    /// No answer (connection, timeout).
    #[error("GetAuthorizationToken for {registry} failed: {detail}")]
    Transport { registry: String, detail: String },
    /// An answer that cannot be used.
    #[error("GetAuthorizationToken for {registry}: ECR sent an answer that cannot be used: {detail}")]
    BadResponse { registry: String, detail: String },
}

impl EcrError {
    /// Condition reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::PermissionDenied { .. } => PERMISSION_DENIED,
            Self::Rejected { code, .. } => code,
            Self::Transport { .. } => "EcrUnreachable",
            Self::BadResponse { .. } => "EcrBadResponse",
        }
    }

    /// Whether a retry with backoff may help; a refusal waits for IAM or the spec to change.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::PermissionDenied { .. } => false,
            Self::Rejected { code, status, .. } => {
                code.contains("Throttl") || code == "ServerException" || status.is_none_or(|s| s >= 500)
            }
            Self::Transport { .. } | Self::BadResponse { .. } => true,
        }
    }
}

/// An SDK failure of either ECR client as an [`EcrError`].
pub(super) fn from_sdk<E>(registry: &str, err: SdkError<E, aws_smithy_runtime_api::http::Response>) -> EcrError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let registry = registry.to_owned();
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_owned();
            let message = se.err().message().unwrap_or_default().to_owned();
            if code == "AccessDeniedException" || code == "AccessDenied" {
                return EcrError::PermissionDenied { registry, message };
            }
            EcrError::Rejected {
                registry,
                code,
                message,
                status: Some(se.raw().status().as_u16()),
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => EcrError::Transport {
            registry,
            detail: DisplayErrorContext(&err).to_string(),
        },
        _ => EcrError::BadResponse {
            registry,
            detail: DisplayErrorContext(&err).to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_permission_has_its_own_reason_and_waits() {
        let e = EcrError::PermissionDenied {
            registry: "r".into(),
            message: "not authorized to perform: ecr:GetAuthorizationToken".into(),
        };
        assert_eq!(e.reason(), "EcrPermissionDenied");
        assert!(!e.is_transient());
        assert!(
            e.to_string()
                .contains("grant the identity's role ecr:GetAuthorizationToken")
        );
        let throttled = EcrError::Rejected {
            registry: "r".into(),
            code: "ThrottlingException".into(),
            message: String::new(),
            status: Some(400),
        };
        assert!(throttled.is_transient());
    }
}
