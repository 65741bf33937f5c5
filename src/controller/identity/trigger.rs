//! Why renew now: a pure decision over (now, what the controller recorded of its last write,
//! the resolved spec's hash), a chain of trigger policies in the manner of cert-manager's:
//! the first that fires wins. The plan ([`super::plan`]) asks it for a Secret this Identity
//! owns and whose version or data the record vouches for; never from the Secret's
//! annotations, which anyone who may write the Secret can set.

use std::fmt;

use jiff::Timestamp;

use crate::output::secret::Record;

/// Why the controller renews now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RenewReason {
    /// No Secret yet.
    SecretMissing,
    /// The Secret's credentials were made for another resolved spec (or it does not say).
    SpecChanged,
    /// Renewal time has come.
    Renewing,
    /// The credentials have expired (or their expiry is unknown).
    Expired,
    /// Someone else changed the Secret's data: it is restored with fresh credentials.
    Tampered,
    /// The controller holds no record of the Secret's data (written by an earlier release,
    /// or its credentials were removed): rewritten whole with fresh credentials.
    Unrecorded,
    /// Someone who may patch the Identity asked for a renewal (`renew`).
    Requested,
}

impl RenewReason {
    /// The CamelCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            RenewReason::SecretMissing => "SecretMissing",
            RenewReason::SpecChanged => "SpecChanged",
            RenewReason::Renewing => "Renewing",
            RenewReason::Expired => "Expired",
            RenewReason::Tampered => "SecretTampered",
            RenewReason::Unrecorded => "SecretUnrecorded",
            RenewReason::Requested => "RenewRequested",
        }
    }
}

impl fmt::Display for RenewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the controller recorded of the credentials in a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretState {
    /// The resolved spec they were made for.
    pub spec_hash: Option<String>,
    /// Their expiry.
    pub expiration: Option<Timestamp>,
    /// Their renewal time.
    pub renewal_time: Option<Timestamp>,
}

impl SecretState {
    /// The state `record` describes.
    pub fn from_record(record: &Record) -> Self {
        Self {
            spec_hash: Some(record.written.spec_hash.clone()),
            expiration: Some(record.expiration),
            renewal_time: Some(record.renewal),
        }
    }
}

/// The reason to renew now, or `None` (requeue at renewal time). The first policy that
/// fires wins:
/// 1. no Secret: `SecretMissing`;
/// 2. spec hash absent or different: `SpecChanged`;
/// 3. expiry unknown or `now >= expiration`: `Expired`;
/// 4. renewal time unknown or `now >= renewal_time`: `Renewing`.
pub fn renewal_reason(now: Timestamp, secret: Option<&SecretState>, spec_hash: &str) -> Option<RenewReason> {
    let Some(secret) = secret else {
        return Some(RenewReason::SecretMissing);
    };
    if secret.spec_hash.as_deref() != Some(spec_hash) {
        return Some(RenewReason::SpecChanged);
    }
    if secret.expiration.is_none_or(|e| now >= e) {
        return Some(RenewReason::Expired);
    }
    if secret.renewal_time.is_none_or(|r| now >= r) {
        return Some(RenewReason::Renewing);
    }
    None
}

/// A renewal request not answered yet: the annotation's value when it differs from the
/// request the status answered.
pub fn pending_request(asked: Option<&str>, answered: Option<&str>) -> Option<String> {
    asked
        .filter(|a| !a.is_empty() && Some(*a) != answered)
        .map(str::to_owned)
}

/// How a pending request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Renew now (through the STS budget, as a renewal).
    Renew,
    /// Credentials written at this time, less than the minimum interval ago, answer it: a
    /// request costs at most one refresh per interval, however often it is made.
    AlreadyFresh(Timestamp),
}

/// The answer at `now` to a request, for credentials last written at `last_refresh`.
pub fn answer_request(now: Timestamp, last_refresh: Option<Timestamp>, min: jiff::SignedDuration) -> Answer {
    match last_refresh {
        Some(at) if now < at + min => Answer::AlreadyFresh(at),
        _ => Answer::Renew,
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_state_is_the_record() {
        let record = Record {
            written: crate::api::WrittenSecret {
                name: "creds".into(),
                resource_version: "7".into(),
                data_hash: "d".into(),
                spec_hash: "abc".into(),
            },
            expiration: ts("2026-01-01T01:00:00Z"),
            renewal: ts("2026-01-01T00:40:00Z"),
        };
        assert_eq!(
            SecretState::from_record(&record),
            SecretState {
                spec_hash: Some("abc".into()),
                expiration: Some(ts("2026-01-01T01:00:00Z")),
                renewal_time: Some(ts("2026-01-01T00:40:00Z")),
            }
        );
    }

    #[test]
    fn renewal_reason_table() {
        let exp = ts("2026-01-01T01:00:00Z");
        let renew = ts("2026-01-01T00:40:00Z");
        let good = SecretState {
            spec_hash: Some("h".into()),
            expiration: Some(exp),
            renewal_time: Some(renew),
        };
        let with = |f: fn(&mut SecretState)| {
            let mut s = good.clone();
            f(&mut s);
            s
        };
        let before = ts("2026-01-01T00:10:00Z");
        let table: Vec<(&str, Timestamp, Option<SecretState>, Option<RenewReason>)> = vec![
            ("no secret", before, None, Some(RenewReason::SecretMissing)),
            ("fresh", before, Some(good.clone()), None),
            (
                "just before renewal",
                ts("2026-01-01T00:39:59.999Z"),
                Some(good.clone()),
                None,
            ),
            ("at renewal", renew, Some(good.clone()), Some(RenewReason::Renewing)),
            (
                "after renewal",
                ts("2026-01-01T00:50:00Z"),
                Some(good.clone()),
                Some(RenewReason::Renewing),
            ),
            ("at expiry", exp, Some(good.clone()), Some(RenewReason::Expired)),
            (
                "after expiry",
                ts("2026-01-02T00:00:00Z"),
                Some(good.clone()),
                Some(RenewReason::Expired),
            ),
            (
                "other hash",
                before,
                Some(with(|s| s.spec_hash = Some("x".into()))),
                Some(RenewReason::SpecChanged),
            ),
            (
                "no hash",
                before,
                Some(with(|s| s.spec_hash = None)),
                Some(RenewReason::SpecChanged),
            ),
            // Spec change beats expiry: the hash is checked first.
            (
                "other hash, expired",
                exp,
                Some(with(|s| s.spec_hash = Some("x".into()))),
                Some(RenewReason::SpecChanged),
            ),
            (
                "no expiration",
                before,
                Some(with(|s| s.expiration = None)),
                Some(RenewReason::Expired),
            ),
            (
                "no renewal time",
                before,
                Some(with(|s| s.renewal_time = None)),
                Some(RenewReason::Renewing),
            ),
            (
                "empty state",
                before,
                Some(SecretState::default()),
                Some(RenewReason::SpecChanged),
            ),
        ];
        for (name, now, state, want) in table {
            assert_eq!(renewal_reason(now, state.as_ref(), "h"), want, "{name}");
        }
        assert_eq!(RenewReason::SecretMissing.to_string(), "SecretMissing");
        assert_eq!(RenewReason::Expired.to_string(), "Expired");
        assert_eq!(RenewReason::Unrecorded.to_string(), "SecretUnrecorded");
    }

    #[test]
    fn a_request_is_pending_until_the_status_answers_it() {
        assert_eq!(pending_request(None, None), None);
        assert_eq!(pending_request(Some(""), None), None);
        assert_eq!(pending_request(Some("t1"), None), Some("t1".into()));
        assert_eq!(pending_request(Some("t1"), Some("t1")), None);
        assert_eq!(pending_request(Some("t2"), Some("t1")), Some("t2".into()));
    }

    #[test]
    fn a_request_within_the_interval_is_answered_by_the_last_refresh() {
        let min = jiff::SignedDuration::from_secs(10);
        let at = ts("2026-01-01T00:00:00Z");
        assert_eq!(
            answer_request(ts("2026-01-01T00:00:05Z"), Some(at), min),
            Answer::AlreadyFresh(at)
        );
        assert_eq!(answer_request(ts("2026-01-01T00:00:10Z"), Some(at), min), Answer::Renew);
        assert_eq!(answer_request(ts("2026-01-01T00:00:05Z"), None, min), Answer::Renew);
    }
}
