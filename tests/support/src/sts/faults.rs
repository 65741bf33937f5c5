//! Fault injection: make the local STS misbehave as a real endpoint (or what stands in front
//! of it) can — slow answers, 500s, throttling, bodies that are not STS's XML, credentials
//! already expired on arrival — and revoke the sessions it issued, as IAM's "revoke active
//! sessions" does. Faults touch `AssumeRole` and `AssumeRoleWithWebIdentity` only.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use super::error::StsError;

/// One way of misbehaving, in force until cleared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally, but only after this long.
    Slow(Duration),
    /// `500 InternalFailure`.
    InternalError,
    /// `503 ServiceUnavailable`, as a regional endpoint in an outage answers every call.
    Unavailable,
    /// `400 Throttling: Rate exceeded`.
    Throttling,
    /// `200` with a body that is not XML an SDK can read.
    MalformedBody,
    /// A normal answer whose credentials expired a minute before they were issued.
    ExpiredCredentials,
}

impl Fault {
    /// The error answer this fault gives instead of running the action, if it does.
    pub(super) fn error(&self) -> Option<StsError> {
        match self {
            Self::InternalError => Some(StsError {
                code: "InternalFailure",
                message: "The request processing has failed because of an unknown error.".into(),
                status: 500,
            }),
            Self::Unavailable => Some(StsError {
                code: "ServiceUnavailable",
                message: "Service is unable to handle request.".into(),
                status: 503,
            }),
            Self::Throttling => Some(StsError {
                code: "Throttling",
                message: "Rate exceeded".into(),
                status: 400,
            }),
            _ => None,
        }
    }
}

/// The local STS's fault state.
#[derive(Default)]
pub struct Faults {
    current: Mutex<Option<Fault>>,
    revoked: Mutex<HashSet<String>>,
}

impl Faults {
    pub fn set(&self, fault: Option<Fault>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    pub fn current(&self) -> Option<Fault> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Revokes these sessions (by access key id).
    pub fn revoke(&self, access_key_ids: impl IntoIterator<Item = String>) {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(access_key_ids);
    }

    pub fn is_revoked(&self, access_key_id: &str) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(access_key_id)
    }
}

/// Whether faults apply to `action`.
pub fn applies_to(action: &str) -> bool {
    matches!(action, "AssumeRole" | "AssumeRoleWithWebIdentity")
}

/// A success body with every `<Expiration>` moved to a minute before `now`.
pub fn expire(body: &str, now: jiff::Timestamp) -> String {
    let past = super::xml::timestamp(now - jiff::SignedDuration::from_secs(60));
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("<Expiration>") {
        let open = start + "<Expiration>".len();
        let Some(len) = rest[open..].find("</Expiration>") else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&past);
        rest = &rest[open + len..];
    }
    out.push_str(rest);
    out
}

/// What [`Fault::MalformedBody`] sends: an HTML error page, as a proxy would.
pub const MALFORMED_BODY: &str = "<html><body><h1>502 Bad Gateway</h1><p>upstream closed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_rewrites_every_expiration() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let body = "<A><Expiration>2026-01-01T01:00:00Z</Expiration><B/><Expiration>x</Expiration></A>";
        assert_eq!(
            expire(body, now),
            "<A><Expiration>2025-12-31T23:59:00Z</Expiration><B/><Expiration>2025-12-31T23:59:00Z</Expiration></A>"
        );
    }
}
