//! Entra failures, in the shape every refresh error has: a condition `reason()` and whether
//! a quick retry may help. Entra's own AADSTS code is kept and shown; the reason names what
//! to fix (the federated credential, the app, the tenant).

/// A failed token request at Entra. Messages are Entra's own description (never a token).
#[derive(Debug, thiserror::Error)]
pub enum EntraError {
    /// Entra answered with an error.
    #[error("Entra token request for app {client_id} in tenant {tenant} failed: {description}")]
    Rejected {
        /// The app (client) id.
        client_id: String,
        /// The tenant.
        tenant: String,
        /// The OAuth error (`invalid_request`, `unauthorized_client`, ...).
        error: String,
        /// Entra's AADSTS number, when the answer had one.
        code: Option<u32>,
        /// Entra's `error_description` (it starts with `AADSTS<code>:`).
        description: String,
        /// HTTP status.
        status: u16,
    },
    /// No answer: the connection failed or timed out.
    #[error("Entra token request for app {client_id} in tenant {tenant} got no answer: {detail}")]
    Unreachable {
        /// The app (client) id.
        client_id: String,
        /// The tenant.
        tenant: String,
        /// What went wrong.
        detail: String,
    },
    /// An answer that is not Entra's JSON.
    #[error("Entra token request for app {client_id} in tenant {tenant}: an answer that cannot be read: {detail}")]
    BadResponse {
        /// The app (client) id.
        client_id: String,
        /// The tenant.
        tenant: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// Entra's throttling code (too many requests for the tenant or app).
const THROTTLED: u32 = 50196;

impl EntraError {
    /// Whether the endpoint gave no answer a client can act on (it is then down for everyone).
    pub fn endpoint_down(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Rejected { status, .. } => *status >= 500,
            Self::BadResponse { .. } => false,
        }
    }

    /// Condition reason: what to fix, from Entra's code.
    pub fn reason(&self) -> &str {
        match self {
            Self::Rejected { code, status, .. } => match code {
                Some(70021 | 700211 | 700212 | 700213) => "FederatedCredentialNotFound",
                Some(700016) => "EntraAppNotFound",
                Some(90002) => "EntraTenantNotFound",
                Some(700024) => "FederatedTokenExpired",
                Some(700027 | 50027) => "FederatedTokenInvalid",
                Some(50166) => "EntraIssuerUnreachable",
                Some(THROTTLED) => "EntraThrottled",
                _ if *status == 429 => "EntraThrottled",
                _ => "EntraRefused",
            },
            Self::Unreachable { .. } => "EntraUnreachable",
            Self::BadResponse { .. } => "EntraBadResponse",
        }
    }

    /// Whether a retry with backoff may help; otherwise the app's federated credential,
    /// the app or the profile must change.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Rejected { code, status, .. } => {
                *status >= 500 || *status == 429 || matches!(code, Some(THROTTLED | 50166))
            }
            Self::Unreachable { .. } => true,
            Self::BadResponse { .. } => false,
        }
    }

    /// Whether Entra asked to slow down.
    pub fn is_throttling(&self) -> bool {
        self.reason() == "EntraThrottled"
    }
}
