//! STS failures, sorted into the two classes the controller acts on.

/// What the controller does about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The spec, the trust policy or the role must change: report, no retry loop.
    FixTheSpec,
    /// Worth retrying with exponential backoff.
    Transient,
}

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
    /// No answer: connection, timeout, or an unparseable response.
    #[error("{action} for {role} failed: {detail}")]
    Transport {
        /// `AssumeRoleWithWebIdentity` or `AssumeRole`.
        action: &'static str,
        /// Role asked for.
        role: String,
        /// What went wrong.
        detail: String,
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
    /// Which class of failure this is.
    pub fn class(&self) -> Class {
        match self {
            Self::Rejected { code, status, .. } => {
                if FIX_THE_SPEC.contains(&code.as_str()) {
                    Class::FixTheSpec
                } else if TRANSIENT.contains(&code.as_str()) || status.is_none_or(|s| s >= 500) {
                    Class::Transient
                } else {
                    // Other 4xx answers are the request's fault.
                    Class::FixTheSpec
                }
            }
            Self::Transport { .. } | Self::NoCredentials { .. } => Class::Transient,
        }
    }

    /// The AWS error code, or a word for transport failures; used as the condition reason.
    pub fn code(&self) -> &str {
        match self {
            Self::Rejected { code, .. } => code,
            Self::Transport { .. } => "StsUnreachable",
            Self::NoCredentials { .. } => "StsNoCredentials",
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
            assert_eq!(rejected(code, 400).class(), Class::FixTheSpec, "{code}");
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
            assert_eq!(rejected(code, status).class(), Class::Transient, "{code}");
        }
        let timeout = StsError::Transport {
            action: "AssumeRole",
            role: "r".into(),
            detail: "timeout".into(),
        };
        assert_eq!(timeout.class(), Class::Transient);
        assert_eq!(rejected("SomethingNew", 400).class(), Class::FixTheSpec);
    }
}
