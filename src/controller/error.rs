//! The controller layer's one error type: each lower layer's error converted once.

use crate::exchange::sts::StsError;
use crate::exchange::token::TokenError;
use crate::output::secret::SecretError;

/// Why a refresh or a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No ServiceAccount token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// STS refused or did not answer.
    #[error(transparent)]
    Sts(#[from] StsError),
    /// A registry login failed.
    #[error(transparent)]
    Ecr(#[from] crate::exchange::ecr::EcrError),
    /// Entra refused or did not answer.
    #[error(transparent)]
    Entra(#[from] crate::exchange::azure::EntraError),
    /// Google refused or did not answer.
    #[error(transparent)]
    Gcp(#[from] crate::exchange::gcp::GcpError),
    /// The Secret could not be written.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Any other API call.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object without namespace, name or UID.
    #[error("object without {0}")]
    Metadata(&'static str),
}

/// An exchange's failure is its layer's own: the token source's or the cloud's.
impl From<crate::exchange::ExchangeError> for Error {
    fn from(e: crate::exchange::ExchangeError) -> Self {
        match e {
            crate::exchange::ExchangeError::Token(e) => Self::Token(e),
            crate::exchange::ExchangeError::Sts(e) => Self::Sts(e),
            crate::exchange::ExchangeError::Ecr(e) => Self::Ecr(e),
            crate::exchange::ExchangeError::Entra(e) => Self::Entra(e),
            crate::exchange::ExchangeError::Gcp(e) => Self::Gcp(e),
        }
    }
}

impl Error {
    /// Whether STS's endpoint gave no answer (it is then down for every Identity).
    pub fn endpoint_down(&self) -> bool {
        match self {
            Self::Sts(e) => e.endpoint_down(),
            Self::Entra(e) => e.endpoint_down(),
            Self::Gcp(e) => e.endpoint_down(),
            _ => false,
        }
    }

    /// Whether STS throttled the call (the account's quota in its region is spent).
    pub fn throttled(&self) -> bool {
        matches!(self, Self::Sts(e) if e.throttled())
    }

    /// Condition reason for this failure: each layer's own.
    pub fn reason(&self) -> &str {
        match self {
            Self::Token(e) => e.reason(),
            Self::Sts(e) => e.reason(),
            Self::Ecr(e) => e.reason(),
            Self::Entra(e) => e.reason(),
            Self::Gcp(e) => e.reason(),
            Self::Secret(e) => e.reason(),
            Self::Kube(_) | Self::Metadata(_) => "ApiError",
        }
    }

    /// The `result` label of `atmos_auth_exchanges_total` for an exchange that failed so.
    pub fn exchange_result(&self) -> &'static str {
        match self {
            Self::Sts(e) if crate::exchange::sts::is_throttled(e) => "throttled",
            Self::Sts(e) if e.endpoint_down() => "unavailable",
            Self::Entra(e) if e.is_throttling() => "throttled",
            Self::Entra(crate::exchange::azure::EntraError::Unreachable { .. }) => "unavailable",
            Self::Gcp(e) if e.is_throttling() => "throttled",
            Self::Gcp(e) if e.endpoint_down() => "unavailable",
            e if !e.is_transient() => "refused",
            _ => "error",
        }
    }

    /// Transient failures back off and retry quickly; the others are retried slowly.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Token(e) => e.is_transient(),
            Self::Sts(e) => e.is_transient(),
            Self::Ecr(e) => e.is_transient(),
            Self::Entra(e) => e.is_transient(),
            Self::Gcp(e) => e.is_transient(),
            Self::Secret(e) => e.is_transient(),
            Self::Kube(_) => true,
            Self::Metadata(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: &str, status: u16) -> Error {
        Error::Sts(StsError::Rejected {
            action: "AssumeRole",
            role: "r".into(),
            code: code.into(),
            message: "m".into(),
            status: Some(status),
        })
    }

    #[test]
    fn exchange_results_tell_throttling_refusal_and_no_answer_apart() {
        assert_eq!(rejected("Throttling", 400).exchange_result(), "throttled");
        assert_eq!(rejected("AccessDenied", 403).exchange_result(), "refused");
        assert_eq!(rejected("ServiceUnavailable", 503).exchange_result(), "unavailable");
        let down = Error::Sts(StsError::Transport {
            action: "AssumeRole",
            role: "r".into(),
            detail: "connection refused".into(),
        });
        assert_eq!(down.exchange_result(), "unavailable");
        assert_eq!(rejected("InternalFailure", 400).exchange_result(), "error");
    }

    #[test]
    fn entra_exchange_results_are_told_apart_as_sts_ones() {
        use crate::exchange::azure::EntraError;
        let entra = |code: u32, status: u16| {
            Error::Entra(EntraError::Rejected {
                client_id: "c".into(),
                tenant: "t".into(),
                error: "invalid_request".into(),
                code: Some(code),
                description: format!("AADSTS{code}: m"),
                status,
            })
        };
        assert_eq!(entra(50196, 429).exchange_result(), "throttled");
        assert_eq!(entra(70021, 400).exchange_result(), "refused");
        let down = Error::Entra(EntraError::Unreachable {
            client_id: "c".into(),
            tenant: "t".into(),
            detail: "connection refused".into(),
        });
        assert_eq!(down.exchange_result(), "unavailable");
    }
}
