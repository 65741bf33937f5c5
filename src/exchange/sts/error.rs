//! STS failures, in the shape every refresh error has: a condition `reason()` and whether
//! a quick retry may help (`is_transient()`); the others wait for a change of spec or IAM.

/// Error codes that only a change of spec or IAM can fix.
const FIX_THE_SPEC: [&str; 9] = [
    "AccessDenied",
    "InvalidIdentityToken",
    "ValidationError",
    "RegionDisabledException",
    "IDPRejectedClaim",
    "MalformedPolicyDocument",
    "PackedPolicyTooLarge",
    "InvalidParameterValue",
    "ExpiredTokenException",
];

/// Error codes worth a retry: throttling and service trouble (the SDK's own retry lists),
/// and a cached parent session that expired or was revoked (it is dropped from the cache, so
/// the retry starts over from the token).
const TRANSIENT: [&str; 13] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "IDPCommunicationError",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "ExpiredToken",
    "InvalidClientTokenId",
];

/// A failed STS call. Messages are STS's own (shown as is, redacted of anything secret).
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// STS answered with an error code.
    #[error("{action} for {role} failed: {code}: {message}")]
    Rejected {
        /// `AssumeRoleWithWebIdentity` or `AssumeRole`.
        action: &'static str,
        /// Role asked for.
        role: String,
        /// AWS error code.
        code: String,
        /// AWS error message.
        message: String,
        /// HTTP status, when known.
        status: Option<u16>,
    },
    /// No answer: the connection failed.
    #[error("{action} for {role} failed: {detail}")]
    Transport {
        /// `AssumeRoleWithWebIdentity` or `AssumeRole`.
        action: &'static str,
        /// Role asked for.
        role: String,
        /// What went wrong.
        detail: String,
    },
    /// No answer within the operation timeout (retries included).
    #[error("{action} for {role} timed out: {detail}")]
    Timeout {
        /// `AssumeRoleWithWebIdentity` or `AssumeRole`.
        action: &'static str,
        /// Role asked for.
        role: String,
        /// What the SDK said.
        detail: String,
    },
    /// An answer that is not STS's XML (a proxy's page, a truncated body).
    #[error("{action} for {role}: STS sent an answer that cannot be read: {detail}")]
    BadResponse {
        /// `AssumeRoleWithWebIdentity` or `AssumeRole`.
        action: &'static str,
        /// Role asked for.
        role: String,
        /// What the SDK said.
        detail: String,
    },
    /// Credentials that had expired when they arrived (a clock skew or an STS fault): never
    /// written over the Secret's current ones.
    #[error(
        "{action} for {role}: STS returned credentials that had already expired (at {expiration}); check the clocks of this node and of the STS endpoint"
    )]
    ExpiredOnArrival {
        /// `AssumeRoleWithWebIdentity` or `AssumeRole`.
        action: &'static str,
        /// Role asked for.
        role: String,
        /// Their expiry, RFC 3339.
        expiration: String,
    },
    /// STS answered without credentials.
    #[error("{action} for {role}: STS returned no credentials")]
    NoCredentials {
        /// `AssumeRoleWithWebIdentity` or `AssumeRole`.
        action: &'static str,
        /// Role asked for.
        role: String,
    },
}

impl StsError {
    /// Whether the endpoint gave no answer a client can act on: the connection failed, the
    /// call timed out, or a 5xx. The endpoint then counts as down for everyone.
    pub fn endpoint_down(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Rejected { status, .. } => status.is_some_and(|s| s >= 500),
            Self::BadResponse { .. } | Self::ExpiredOnArrival { .. } | Self::NoCredentials { .. } => false,
        }
    }

    /// Whether STS said "slow down" (the account's quota in the region is spent).
    pub fn throttled(&self) -> bool {
        matches!(self, Self::Rejected { code, .. } if crate::exchange::budget::limit::is_throttling(code))
    }

    /// Condition reason: the AWS error code, or a word for failures without one.
    pub fn reason(&self) -> &str {
        match self {
            Self::Rejected { code, .. } => code,
            Self::Transport { .. } => "StsUnreachable",
            Self::Timeout { .. } => "StsTimeout",
            Self::BadResponse { .. } => "StsBadResponse",
            Self::ExpiredOnArrival { .. } => "StsCredentialsExpired",
            Self::NoCredentials { .. } => "StsNoCredentials",
        }
    }

    /// Whether a retry with backoff may help; otherwise the spec, the trust policy or the
    /// role must change.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Rejected { code, status, .. } => {
                if FIX_THE_SPEC.contains(&code.as_str()) {
                    false
                } else {
                    // Other 4xx answers are the request's fault.
                    TRANSIENT.contains(&code.as_str()) || status.is_none_or(|s| s >= 500)
                }
            }
            Self::Transport { .. }
            | Self::Timeout { .. }
            | Self::BadResponse { .. }
            | Self::ExpiredOnArrival { .. }
            | Self::NoCredentials { .. } => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: &str, status: u16) -> StsError {
        StsError::Rejected {
            action: "AssumeRole",
            role: "r".into(),
            code: code.into(),
            message: "m".into(),
            status: Some(status),
        }
    }

    #[test]
    fn sorts_codes_into_classes() {
        for code in [
            "AccessDenied",
            "InvalidIdentityToken",
            "ValidationError",
            "RegionDisabledException",
        ] {
            assert!(!rejected(code, 400).is_transient(), "{code}");
        }
        for (code, status) in [
            ("Throttling", 400),
            ("ThrottlingException", 400),
            ("RequestLimitExceeded", 400),
            ("IDPCommunicationError", 400),
            ("ExpiredToken", 403),
            ("InternalFailure", 500),
            ("ServiceUnavailable", 503),
            ("SomethingNew", 502),
        ] {
            assert!(rejected(code, status).is_transient(), "{code}");
            assert_eq!(rejected(code, status).reason(), code);
        }
        let timeout = StsError::Transport {
            action: "AssumeRole",
            role: "r".into(),
            detail: "timeout".into(),
        };
        assert!(timeout.is_transient());
        assert_eq!(timeout.reason(), "StsUnreachable");
        assert!(!rejected("SomethingNew", 400).is_transient());
    }
}
