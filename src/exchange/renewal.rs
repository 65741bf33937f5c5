//! The arithmetic of renewal times, backoff and requeues, from a grant's real lifetime. No
//! clock: callers pass `now`. (Whether to renew now is the reconcile's trigger policy.)
//!
//! Renewal time (`renewal_time`), with `L` the real lifetime `expiration - issued` and `j`
//! the caller's jitter in `[0, 1]`:
//! - default: `issued + 2/3 L - j * 5% L`, so at least a third of the session (and at most
//!   38%) is left when renewal starts;
//! - with `refreshBefore = R`: the target `expiration - R` is clamped to
//!   `[issued + 10% L, issued + 2/3 L]`, then the same jitter is taken off (never going
//!   below `issued + 10% L`). So `R` can only make renewal earlier than the default: a
//!   Secret never holds less than a third of a session (SDKs re-run `credential_process` up
//!   to 15 minutes before expiry, and the kubelet needs time to update the mounted file),
//!   and a session is used for at least a tenth of its life, even when `R >= L` (then
//!   renewal comes at `issued + 10% L`, as early as allowed);
//! - `L <= 0` (already expired when issued): `issued`, renew at once.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Default renewal point, as a fraction of the lifetime.
pub const DEFAULT_RENEWAL_FRACTION: f64 = 2.0 / 3.0;
/// Earliest renewal point, as a fraction of the lifetime.
pub const MIN_RENEWAL_FRACTION: f64 = 0.1;
/// Most jitter taken off the renewal point, as a fraction of the lifetime.
pub const MAX_JITTER_FRACTION: f64 = 0.05;

/// When to renew credentials issued at `issued` that expire at `expiration`; see the module
/// documentation for the rule and its clamps. `jitter` is the caller's random number in
/// `[0, 1]` (values outside are clamped, NaN counts as 0).
pub fn renewal_time(
    issued: Timestamp,
    expiration: Timestamp,
    refresh_before_seconds: Option<i64>,
    jitter: f64,
) -> Timestamp {
    let lifetime_ms = expiration.duration_since(issued).as_millis();
    if lifetime_ms <= 0 {
        return issued;
    }
    let lifetime = lifetime_ms as f64;
    let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
    let earliest = lifetime * MIN_RENEWAL_FRACTION;
    let latest = lifetime * DEFAULT_RENEWAL_FRACTION;
    let target = match refresh_before_seconds {
        None => latest,
        Some(before) => (lifetime - before as f64 * 1000.0).clamp(earliest, latest),
    };
    let offset = (target - jitter * MAX_JITTER_FRACTION * lifetime).max(earliest);
    // `as` saturates; the offset lies within (0, lifetime).
    issued
        .checked_add(SignedDuration::from_millis(offset as i64))
        .unwrap_or(issued)
}

/// What a fresh session's times become: the real expiry (kept in the annotations), the
/// one consumers see, and when to renew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The credentials' real expiry.
    pub expiration: Timestamp,
    /// The expiry written for consumers ([`advertised_expiration`]).
    pub advertised: Timestamp,
    /// When to renew ([`renewal_time`]), cut to the whole second as it is written.
    pub renewal: Timestamp,
}

/// The schedule of a session issued at `issued` and expiring at `expiration`, with the
/// caller's `jitter` in `[0, 1]` (see [`renewal_time`]).
pub fn schedule(
    issued: Timestamp,
    expiration: Timestamp,
    refresh_before_seconds: Option<i64>,
    jitter: f64,
) -> Schedule {
    Schedule {
        expiration,
        advertised: advertised_expiration(issued, expiration),
        renewal: crate::util::time::whole_second(renewal_time(issued, expiration, refresh_before_seconds, jitter)),
    }
}

/// First backoff after a transient failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Longest backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Wait after `failed_attempts` consecutive transient failures: 5 s, 10 s, 20 s, ... capped
/// at 5 min (0 attempts counts as 1).
pub fn backoff(failed_attempts: u32) -> Duration {
    let doublings = failed_attempts.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

/// Shortest requeue: never a busy loop.
pub const MIN_REQUEUE: Duration = Duration::from_secs(1);

/// How long to wait from `now` until `at` (a renewal time), rounded up to whole seconds so
/// the next look is not a hair early, and at least [`MIN_REQUEUE`].
pub fn requeue_after(now: Timestamp, at: Timestamp) -> Duration {
    let wait = at.duration_since(now);
    if wait <= SignedDuration::ZERO {
        return MIN_REQUEUE;
    }
    let secs = wait.as_secs() + i64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(u64::try_from(secs).unwrap_or(u64::MAX)).max(MIN_REQUEUE)
}

/// Retry delay for failures only a change of spec, IAM or RBAC fixes: twelve times the
/// transient backoff (1 min, 2 min, 4 min, ...), capped at an hour as cert-manager does.
pub fn slow_retry(failed_attempts: u32) -> Duration {
    (backoff(failed_attempts) * 12).min(Duration::from_secs(3600))
}

/// The expiry written into the Secret for consumers: a little before the real one (a tenth
/// of the lifetime, at most a minute). aws-sdk-go-v2 re-runs `credential_process` exactly at
/// the advertised expiry, so a request signed in its last milliseconds could reach STS
/// after the real expiry; advertising it early closes that gap. The renewed file is already
/// in place by then (renewal leaves at least a third of the session).
pub fn advertised_expiration(issued: Timestamp, expiration: Timestamp) -> Timestamp {
    let lifetime = (expiration.as_second() - issued.as_second()).max(0);
    let margin = (lifetime / 10).min(60);
    Timestamp::from_second(expiration.as_second() - margin).unwrap_or(expiration)
}

#[cfg(test)]
mod tests {
    #[test]
    fn slow_retry_starts_at_a_minute_and_stops_at_an_hour() {
        assert_eq!(super::slow_retry(1), Duration::from_secs(60));
        assert_eq!(super::slow_retry(2), Duration::from_secs(120));
        assert_eq!(super::slow_retry(30), Duration::from_secs(3600));
    }

    #[test]
    fn advertised_expiration_is_a_tenth_early_at_most_a_minute() {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        assert_eq!(super::advertised_expiration(t(0), t(3600)), t(3540));
        assert_eq!(super::advertised_expiration(t(0), t(30)), t(27));
        assert_eq!(super::advertised_expiration(t(100), t(100)), t(100));
    }

    use pretty_assertions::assert_eq;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn default_renewal_at_two_thirds_minus_jitter() {
        let issued = ts("2026-01-01T00:00:00Z");
        let exp = ts("2026-01-01T01:00:00Z");
        assert_eq!(renewal_time(issued, exp, None, 0.0), ts("2026-01-01T00:40:00Z"));
        // full jitter: 5% of 1h = 3 min earlier
        assert_eq!(renewal_time(issued, exp, None, 1.0), ts("2026-01-01T00:37:00Z"));
        assert_eq!(renewal_time(issued, exp, None, 0.5), ts("2026-01-01T00:38:30Z"));
        // out-of-range jitter is clamped
        assert_eq!(renewal_time(issued, exp, None, 7.0), ts("2026-01-01T00:37:00Z"));
        assert_eq!(renewal_time(issued, exp, None, -1.0), ts("2026-01-01T00:40:00Z"));
        assert_eq!(renewal_time(issued, exp, None, f64::NAN), ts("2026-01-01T00:40:00Z"));
    }

    #[test]
    fn jitter_bounds_keep_a_third() {
        let issued = ts("2026-01-01T00:00:00Z");
        for lifetime_s in [60_i64, 900, 3600, 43200] {
            let exp = issued.checked_add(SignedDuration::from_secs(lifetime_s)).unwrap();
            for i in 0..=100 {
                let j = f64::from(i) / 100.0;
                for rb in [
                    None,
                    Some(1),
                    Some(lifetime_s / 4),
                    Some(lifetime_s / 2),
                    Some(lifetime_s * 2),
                ] {
                    let at = renewal_time(issued, exp, rb, j);
                    let used = at.duration_since(issued).as_millis() as f64;
                    let l = (lifetime_s * 1000) as f64;
                    assert!(used >= l * 0.1 - 1.0, "{lifetime_s} {j} {rb:?}: {used}");
                    assert!(used <= l * 2.0 / 3.0 + 1.0, "{lifetime_s} {j} {rb:?}: {used}");
                    if rb.is_none() {
                        assert!(used >= l * (2.0 / 3.0 - 0.05) - 1.0);
                    }
                }
            }
        }
    }

    #[test]
    fn refresh_before_clamps() {
        let issued = ts("2026-01-01T00:00:00Z");
        let exp = ts("2026-01-01T01:00:00Z");
        // 45m before expiry: at 15m (between 10% and 2/3)
        assert_eq!(
            renewal_time(issued, exp, Some(45 * 60), 0.0),
            ts("2026-01-01T00:15:00Z")
        );
        assert_eq!(
            renewal_time(issued, exp, Some(45 * 60), 1.0),
            ts("2026-01-01T00:12:00Z")
        );
        // 5m before expiry would leave too little: the default 2/3 point
        assert_eq!(renewal_time(issued, exp, Some(5 * 60), 0.0), ts("2026-01-01T00:40:00Z"));
        assert_eq!(renewal_time(issued, exp, Some(5 * 60), 1.0), ts("2026-01-01T00:37:00Z"));
        // longer than the session: as early as allowed, 10% of the lifetime
        assert_eq!(
            renewal_time(issued, exp, Some(2 * 3600), 0.0),
            ts("2026-01-01T00:06:00Z")
        );
        assert_eq!(renewal_time(issued, exp, Some(3600), 1.0), ts("2026-01-01T00:06:00Z"));
        // jitter never goes below the 10% floor
        assert_eq!(
            renewal_time(issued, exp, Some(53 * 60), 1.0),
            ts("2026-01-01T00:06:00Z")
        );
    }

    #[test]
    fn schedule_table() {
        let issued = ts("2026-01-01T00:00:00.250Z");
        let exp = ts("2026-01-01T01:00:00Z");
        let table: Vec<(&str, Option<i64>, f64, &str, &str)> = vec![
            // (case, refreshBefore, jitter, advertised, renewal)
            ("default", None, 0.0, "2026-01-01T00:59:00Z", "2026-01-01T00:40:00Z"),
            ("full jitter", None, 1.0, "2026-01-01T00:59:00Z", "2026-01-01T00:37:00Z"),
            (
                "refreshBefore 45m",
                Some(45 * 60),
                0.0,
                "2026-01-01T00:59:00Z",
                "2026-01-01T00:15:00Z",
            ),
        ];
        for (case, rb, jitter, advertised, renewal) in table {
            let s = schedule(issued, exp, rb, jitter);
            assert_eq!(s.expiration, exp, "{case}");
            assert_eq!(s.advertised, ts(advertised), "{case}");
            assert_eq!(s.renewal, ts(renewal), "{case}");
        }
    }

    #[test]
    fn degenerate_lifetimes() {
        let issued = ts("2026-01-01T00:00:00Z");
        assert_eq!(renewal_time(issued, issued, None, 0.5), issued);
        assert_eq!(renewal_time(issued, ts("2025-12-31T00:00:00Z"), Some(60), 0.5), issued);
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let secs: Vec<u64> = [0, 1, 2, 3, 4, 5, 6, 7, 8, 100, u32::MAX]
            .into_iter()
            .map(|n| backoff(n).as_secs())
            .collect();
        assert_eq!(secs, [5, 5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
    }

    #[test]
    fn requeue_rounds_up_and_never_spins() {
        let now = ts("2026-01-01T00:00:00Z");
        assert_eq!(
            requeue_after(now, ts("2026-01-01T00:40:00Z")),
            Duration::from_secs(2400)
        );
        assert_eq!(
            requeue_after(now, ts("2026-01-01T00:00:10.2Z")),
            Duration::from_secs(11)
        );
        assert_eq!(
            requeue_after(now, ts("2026-01-01T00:00:00.001Z")),
            Duration::from_secs(1)
        );
        assert_eq!(requeue_after(now, now), Duration::from_secs(1));
        assert_eq!(requeue_after(now, ts("2025-01-01T00:00:00Z")), Duration::from_secs(1));
    }
}
