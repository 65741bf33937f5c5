//! GCP failures, in the shape every refresh error has: a condition `reason()` and whether a
//! quick retry may help. Google's own error and message are kept and shown; the reason names
//! what to fix (the pool provider, the service account's grant).

/// A failed call to Google STS or IAM Credentials. Messages are Google's own (never a token).
#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    /// STS refused the token exchange.
    #[error("Google STS token exchange for {audience} failed: {error}: {description}")]
    StsRejected {
        /// The pool provider (the exchange's `audience`).
        audience: String,
        /// The OAuth error (`invalid_grant`, `invalid_target`, `invalid_request`, ...).
        error: String,
        /// STS's `error_description`.
        description: String,
        /// HTTP status.
        status: u16,
    },
    /// IAM Credentials refused `generateAccessToken`.
    #[error("generateAccessToken for service account {service_account} failed: {api_status} ({code}): {message}")]
    IamRejected {
        /// The impersonated service account.
        service_account: String,
        /// Google's API status (`PERMISSION_DENIED`, `UNAUTHENTICATED`, ...).
        api_status: String,
        /// Its HTTP code.
        code: u16,
        /// Google's message.
        message: String,
    },
    /// No answer: the connection failed or timed out.
    #[error("{what} got no answer: {detail}")]
    Unreachable {
        /// Which call (`Google STS token exchange for ...`).
        what: String,
        /// What went wrong.
        detail: String,
    },
    /// An answer that is not Google's JSON.
    #[error("{what}: an answer that cannot be read: {detail}")]
    BadResponse {
        /// Which call.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
}

impl GcpError {
    /// Whether the endpoint gave no answer a client can act on (it is then down for everyone).
    pub fn endpoint_down(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::StsRejected { status, .. } => *status >= 500,
            Self::IamRejected { code, .. } => *code >= 500,
            Self::BadResponse { .. } => false,
        }
    }

    /// Condition reason: what to fix, from Google's error.
    pub fn reason(&self) -> &str {
        match self {
            Self::StsRejected { status: 429, .. } | Self::IamRejected { code: 429, .. } => "GcpThrottled",
            Self::StsRejected { error, description, .. } => match error.as_str() {
                "invalid_target" => "WorkloadIdentityPoolNotFound",
                "invalid_grant" if description.contains("audience") => "WorkloadIdentityAudienceMismatch",
                "invalid_grant" if description.contains("issuer") => "WorkloadIdentityIssuerMismatch",
                "invalid_grant" if description.contains("expired") => "FederatedTokenExpired",
                "invalid_grant" => "FederatedTokenInvalid",
                _ => "GcpStsRefused",
            },
            Self::IamRejected { api_status, .. } => match api_status.as_str() {
                "PERMISSION_DENIED" => "ServiceAccountImpersonationDenied",
                "UNAUTHENTICATED" => "GcpUnauthenticated",
                "INVALID_ARGUMENT" => "GcpInvalidArgument",
                "RESOURCE_EXHAUSTED" => "GcpThrottled",
                _ => "GcpIamRefused",
            },
            Self::Unreachable { .. } => "GcpUnreachable",
            Self::BadResponse { .. } => "GcpBadResponse",
        }
    }

    /// Whether a retry with backoff may help; otherwise the pool provider, the service
    /// account's grants or the profile must change.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::StsRejected { status, .. } => *status >= 500 || *status == 429,
            Self::IamRejected { code, .. } => *code >= 500 || *code == 429 || self.is_throttling(),
            Self::Unreachable { .. } => true,
            Self::BadResponse { .. } => false,
        }
    }

    /// Whether Google asked to slow down.
    pub fn is_throttling(&self) -> bool {
        self.reason() == "GcpThrottled"
    }
}
