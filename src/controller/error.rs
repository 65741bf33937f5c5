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
    /// Entra refused or did not answer.
    #[error(transparent)]
    Entra(#[from] crate::exchange::azure::EntraError),
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
            crate::exchange::ExchangeError::Entra(e) => Self::Entra(e),
        }
    }
}

impl Error {
    /// Whether STS's endpoint gave no answer (it is then down for every Identity).
    pub fn endpoint_down(&self) -> bool {
        match self {
            Self::Sts(e) => e.endpoint_down(),
            Self::Entra(e) => e.endpoint_down(),
            _ => false,
        }
    }

    /// Condition reason for this failure: each layer's own.
    pub fn reason(&self) -> &str {
        match self {
            Self::Token(e) => e.reason(),
            Self::Sts(e) => e.reason(),
            Self::Entra(e) => e.reason(),
            Self::Secret(e) => e.reason(),
            Self::Kube(_) | Self::Metadata(_) => "ApiError",
        }
    }

    /// Transient failures back off and retry quickly; the others are retried slowly.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Token(e) => e.is_transient(),
            Self::Sts(e) => e.is_transient(),
            Self::Entra(e) => e.is_transient(),
            Self::Secret(e) => e.is_transient(),
            Self::Kube(_) => true,
            Self::Metadata(_) => false,
        }
    }
}
