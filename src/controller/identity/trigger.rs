//! Why renew now: a pure decision over (now, the Secret's annotations, the resolved spec's
//! hash), a chain of trigger policies in the manner of cert-manager's: the first that fires
//! wins. The plan ([`super::plan`]) asks it for a Secret this Identity owns.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;

use crate::output::labels;

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
        }
    }
}

impl fmt::Display for RenewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an existing Secret says about its credentials (its annotations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretState {
    /// [`labels::SPEC_HASH`].
    pub spec_hash: Option<String>,
    /// [`labels::EXPIRATION`].
    pub expiration: Option<Timestamp>,
    /// [`labels::RENEWAL_TIME`].
    pub renewal_time: Option<Timestamp>,
}

impl SecretState {
    /// Reads the controller's annotations. A missing, empty or unparsable value counts as
    /// missing (and so leads to a renewal).
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let text = |key: &str| annotations.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let time = |key: &str| text(key).and_then(|v| v.parse::<Timestamp>().ok());
        Self {
            spec_hash: text(labels::SPEC_HASH).map(str::to_owned),
            expiration: time(labels::EXPIRATION),
            renewal_time: time(labels::RENEWAL_TIME),
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

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn annotations_parsed_tolerantly() {
        let full = BTreeMap::from([
            (labels::SPEC_HASH.to_owned(), "abc".to_owned()),
            (labels::EXPIRATION.to_owned(), "2026-01-01T01:00:00Z".to_owned()),
            (labels::RENEWAL_TIME.to_owned(), "2026-01-01T00:40:00+00:00".to_owned()),
            ("other".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(
            SecretState::from_annotations(&full),
            SecretState {
                spec_hash: Some("abc".into()),
                expiration: Some(ts("2026-01-01T01:00:00Z")),
                renewal_time: Some(ts("2026-01-01T00:40:00Z")),
            }
        );
        let garbage = BTreeMap::from([
            (labels::SPEC_HASH.to_owned(), "  ".to_owned()),
            (labels::EXPIRATION.to_owned(), "tomorrow".to_owned()),
            (labels::RENEWAL_TIME.to_owned(), "2026-13-01T00:00:00Z".to_owned()),
        ]);
        assert_eq!(SecretState::from_annotations(&garbage), SecretState::default());
        assert_eq!(SecretState::from_annotations(&BTreeMap::new()), SecretState::default());
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
    }
}
