//! When a workload that reads credentials only at start is restarted: after the Secret's
//! credentials change, debounced so that one window sees at most one restart per workload,
//! however many Identities (or identities of one Secret) rotate together. Pure: the I/O is in
//! `controller::restarts`. The workload's own pod-template annotation is the record, so
//! the debounce holds across Identities, controller restarts and replicas.

use jiff::{SignedDuration, Timestamp};

/// The pod template annotation the controller sets (an RFC 3339 time): a new value makes
/// the workload's controller roll its pods, as `kubectl rollout restart` does.
pub const RESTARTED_AT: &str = "auth.atmos.tools/restartedAt";

/// What to do for one workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Its pods started after the credentials were written: nothing to do.
    UpToDate,
    /// Restart it now.
    Now,
    /// It was restarted less than a window ago: restart it at this time.
    At(Timestamp),
}

/// The debounce window for credentials that expire at `expiry`: a tenth of their remaining
/// lifetime, so pods restarted at its end still hold credentials for nine tenths of it.
pub fn window(now: Timestamp, expiry: Timestamp) -> SignedDuration {
    (expiry.duration_since(now) / 10).max(SignedDuration::ZERO)
}

/// Whether the workload last restarted at `restarted` needs a restart for credentials
/// written at `written`, with the debounce `window`.
pub fn decide(written: Timestamp, restarted: Option<Timestamp>, window: SignedDuration, now: Timestamp) -> Restart {
    match restarted {
        Some(r) if r >= written => Restart::UpToDate,
        Some(r) if now < r + window => Restart::At(r + window),
        _ => Restart::Now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        format!("2026-12-07T{s}Z").parse().unwrap()
    }

    #[test]
    fn never_restarted_restarts_now() {
        assert_eq!(
            decide(t("10:00:00"), None, SignedDuration::from_mins(4), t("10:00:01")),
            Restart::Now
        );
    }

    #[test]
    fn restarted_after_the_write_is_up_to_date() {
        // Another Identity's rotation restarted it after this one's write: its pods have both.
        let w = SignedDuration::from_mins(4);
        assert_eq!(
            decide(t("10:00:00"), Some(t("10:00:05")), w, t("10:00:06")),
            Restart::UpToDate
        );
        assert_eq!(
            decide(t("10:00:00"), Some(t("10:00:00")), w, t("10:00:06")),
            Restart::UpToDate
        );
    }

    #[test]
    fn restarted_within_the_window_waits_for_its_end() {
        let w = SignedDuration::from_mins(4);
        assert_eq!(
            decide(t("10:01:00"), Some(t("10:00:30")), w, t("10:01:01")),
            Restart::At(t("10:04:30"))
        );
    }

    #[test]
    fn restarted_before_the_window_restarts_now() {
        let w = SignedDuration::from_mins(4);
        assert_eq!(
            decide(t("10:30:00"), Some(t("10:00:00")), w, t("10:30:01")),
            Restart::Now
        );
        // At the window's end exactly, the deferred restart goes.
        assert_eq!(
            decide(t("10:01:00"), Some(t("10:00:30")), w, t("10:04:30")),
            Restart::Now
        );
    }

    #[test]
    fn the_window_is_a_tenth_of_the_remaining_lifetime() {
        // 1-hour sessions renewed at two thirds: 20 minutes left, a 2-minute window.
        assert_eq!(window(t("10:40:00"), t("11:00:00")), SignedDuration::from_mins(2));
        assert_eq!(window(t("11:00:01"), t("11:00:00")), SignedDuration::ZERO);
    }
}
