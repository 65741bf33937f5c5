//! The reconcile's decisions as plain functions of their inputs (no clock, no randomness,
//! no I/O), in the manner of cert-manager's readiness condition builders: what a failed
//! refresh reports and when it retries, and what an issued Secret's condition says.

use std::time::Duration;

use jiff::Timestamp;

use crate::controller::Error;
use crate::exchange::renewal::{self, Schedule};
use crate::resolve::{Resolved, ResolvedSet};
use crate::util::redact::redact;
use crate::util::time::rfc3339;

/// What a failed refresh reports, and when the next attempt comes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Condition reason (and event reason, unless the old credentials have expired).
    pub reason: String,
    /// Condition and event message (redacted).
    pub message: String,
    /// Wait before the next attempt.
    pub wait: Duration,
    /// Consecutive failures, this one included.
    pub attempts: u32,
}

/// The outcome of the `attempts`-th consecutive failure `err` at `now`, for Secret `secret`
/// whose credentials (if any, for this spec) expire at `old_expiry`. Transient failures back
/// off quickly (5 s doubling to 5 min); the others slowly (1 min doubling to 1 h), because
/// what fixes them (a trust policy, a RoleBinding, a ServiceAccount) is often outside
/// anything the controller watches. Either way the next look is at the old credentials'
/// expiry at the latest, to report it.
pub fn retry(err: &Error, attempts: u32, old_expiry: Option<Timestamp>, secret: &str, now: Timestamp) -> Retry {
    let (reason, kept) = kept(err, old_expiry, secret, now);
    let transient = err.is_transient();
    // A throttled refresh went back in line before each backoff: the backoff counts rounds.
    let rounds = if err.throttled() {
        attempts.div_ceil(THROTTLED_IN_LINE)
    } else {
        attempts
    };
    let wait = if transient {
        renewal::backoff(rounds)
    } else {
        renewal::slow_retry(attempts)
    };
    let wait = capped(wait, old_expiry, now);
    let next = if transient {
        format!(" Retrying in {}s.", wait.as_secs())
    } else {
        format!(
            " Retried slowly (next in {}s): fix the spec, the role's trust policy or the controller's RBAC, then annotate the Identity to retry at once.",
            wait.as_secs()
        )
    };
    Retry {
        reason,
        message: redact(&format!("{err}.{kept}{next}")),
        wait,
        attempts,
    }
}

/// Consecutive `Throttling` answers per round: the first ones of each round go straight
/// back in line ([`back_in_line`]), the last backs off on a timer ([`retry`]).
pub const THROTTLED_IN_LINE: u32 = 3;

/// Whether the `attempts`-th consecutive failure `err` goes back in line for its account's
/// budget (STS throttled it, and not for the third time in a row): the account's rate backed
/// off, so the line is the wait; a quota that stays spent (other callers in the account)
/// falls back to a backoff of its own each third time.
pub fn back_in_line(err: &Error, attempts: u32) -> bool {
    err.throttled() && !attempts.is_multiple_of(THROTTLED_IN_LINE)
}

/// Like [`retry`] for a refresh STS throttled: it is back in line for its account's budget
/// (the gate triggers it when that allows, holding nothing meanwhile); `wait` is only the
/// look the reconcile takes by itself if nothing triggers it sooner.
pub fn throttled(err: &Error, attempts: u32, old_expiry: Option<Timestamp>, secret: &str, now: Timestamp) -> Retry {
    let (reason, kept) = kept(err, old_expiry, secret, now);
    let next = " Back in line for the STS budget of the role's account in its region, whose rate backed off.";
    Retry {
        reason,
        message: redact(&format!("{err}.{kept}{next}")),
        wait: capped(renewal::backoff(attempts), old_expiry, now),
        attempts,
    }
}

/// The reason a failure reports, and what it says of the credentials kept.
fn kept(err: &Error, old_expiry: Option<Timestamp>, secret: &str, now: Timestamp) -> (String, String) {
    match old_expiry {
        Some(e) if e > now => (
            err.reason().to_owned(),
            format!(
                " The previous credentials stay in Secret {secret} until {}.",
                rfc3339(e)
            ),
        ),
        Some(e) => (
            "Expired".to_owned(),
            format!(
                " The credentials in Secret {secret} expired at {}; they are kept, not deleted.",
                rfc3339(e)
            ),
        ),
        None => (err.reason().to_owned(), String::new()),
    }
}

/// `wait`, but the next look no later than the old credentials' expiry.
fn capped(wait: Duration, old_expiry: Option<Timestamp>, now: Timestamp) -> Duration {
    match old_expiry.filter(|e| *e > now) {
        Some(e) => wait.min(renewal::requeue_after(now, e)),
        None => wait,
    }
}

/// What a refresh parked on a down STS `endpoint` reports (`err`: its own failure, if it
/// made the call), and when it looks again by itself: a probe's answer triggers it sooner.
/// The old credentials' state as in [`retry`]; the wait at most five minutes, and never past
/// their expiry.
pub fn parked(
    err: Option<&Error>,
    attempts: u32,
    old_expiry: Option<Timestamp>,
    (secret, endpoint): (&str, &str),
    now: Timestamp,
) -> Retry {
    let reason = err.map_or("StsUnreachable", Error::reason);
    let (reason, kept) = match old_expiry {
        Some(e) if e > now => (
            reason.to_owned(),
            format!(
                " The previous credentials stay in Secret {secret} until {}.",
                rfc3339(e)
            ),
        ),
        Some(e) => (
            "Expired".to_owned(),
            format!(
                " The credentials in Secret {secret} expired at {}; they are kept, not deleted.",
                rfc3339(e)
            ),
        ),
        None => (reason.to_owned(), String::new()),
    };
    let cause = err.map(|e| format!("{e}. ")).unwrap_or_default();
    let wait = Duration::from_secs(300);
    let wait = match old_expiry.filter(|e| *e > now) {
        Some(e) => wait.min(renewal::requeue_after(now, e)),
        None => wait,
    };
    Retry {
        reason,
        message: redact(&format!(
            "{cause}STS endpoint {endpoint} does not answer (no connection, no answer in time, or a 5xx): it is \
             probed every {}s for every Identity that needs it, and this one is refreshed as soon as it answers.{kept}",
            crate::exchange::budget::health::PROBE_INTERVAL.as_secs()
        )),
        wait,
        attempts,
    }
}

/// Condition reason of an Identity whose namespace a ClusterAuthProfile does not select
/// (also the value of the `auth.atmos.tools/revoked` annotation on its emptied Secrets).
pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";

/// The Ready message of an Identity whose namespace `ns` ClusterAuthProfile `profile` does
/// not select. Stable, so a repeated reconcile writes no status.
pub fn not_allowed_message(ns: &str, profile: &str) -> String {
    format!(
        "namespace {ns} is not selected by ClusterAuthProfile {profile} (spec.namespaceSelector, spec.namespaces): \
         no token is requested, and this Identity's credentials were removed from its Secrets \
         (annotation auth.atmos.tools/revoked); ask the profile's owner to select the namespace, \
         or use an AuthProfile in this namespace"
    )
}

/// Condition reason of an Identity whose profile is missing (also the value of the
/// `auth.atmos.tools/revoked` annotation on its Secrets once they are emptied).
pub const PROFILE_NOT_FOUND: &str = "ProfileNotFound";

/// The Ready message of an Identity whose profile is missing (`missing` says which and what
/// to do) while its Secrets keep their credentials, until `revoke_at`.
pub fn profile_missing_message(missing: &str, revoke_at: Timestamp) -> String {
    format!(
        "{missing}. Credentials already in this Identity's Secrets are removed at {} unless the profile is back by then",
        rfc3339(revoke_at)
    )
}

/// The Ready message of an Identity whose profile has been missing longer than the grace
/// period (`missing` says which and what to do).
pub fn profile_gone_message(missing: &str) -> String {
    format!(
        "{missing}. No token is requested, and this Identity's credentials were removed from its Secrets \
         (annotation auth.atmos.tools/revoked); they are issued again once the profile is back"
    )
}

/// The Ready message of an Identity whose override its ClusterAuthProfile does not allow
/// (`refused`: the problems, summarized).
pub fn override_refused_message(refused: &str) -> String {
    format!(
        "{refused}. No token is requested, and this Identity's credentials were removed from its \
         Secrets (annotation auth.atmos.tools/revoked)"
    )
}

/// The Ready message of an Identity whose Secret holds credentials for its current spec
/// (with several identities, the earliest expiry and renewal).
pub fn issued_message(set: &ResolvedSet, expiration: Timestamp, renewal: Timestamp) -> String {
    if set.multi {
        return format!(
            "Secret {} holds credentials for {} identities ({}), the first expiring at {}; all renewed at {}",
            set.first().secret.name,
            set.items.len(),
            set.names(),
            rfc3339(expiration),
            rfc3339(renewal)
        );
    }
    single_issued_message(set.first(), expiration, renewal)
}

fn single_issued_message(resolved: &Resolved, expiration: Timestamp, renewal: Timestamp) -> String {
    format!(
        "Secret {} holds credentials for {} ({}), valid until {}; renewal at {}",
        resolved.secret.name,
        resolved.identity,
        resolved.chain.join(" -> "),
        rfc3339(expiration),
        rfc3339(renewal)
    )
}

/// The `Renewed` event's note.
pub fn renewed_note(trigger: &str, assumed_role_arn: &str, secret: &str, schedule: &Schedule) -> String {
    format!(
        "{trigger}: credentials for {assumed_role_arn} written to Secret {secret}, valid until {}, renewal at {}",
        rfc3339(schedule.expiration),
        rfc3339(schedule.renewal)
    )
}

/// The Ready message of an Identity whose Secret name is taken by a Secret it does not own:
/// `conflict` as is, unless this Identity wrote that Secret before (its status says so),
/// in which case someone removed or replaced the owner reference: from then on the Secret is
/// theirs.
pub fn conflict_message(old: &crate::api::IdentityStatus, secret: &str, conflict: &str) -> String {
    if old.secret_name.as_deref() == Some(secret) && old.expiration.is_some() {
        format!(
            "{conflict}. This Identity wrote it before: its owner reference to this Identity was removed or replaced, so the Secret is no longer the controller's and is never written again"
        )
    } else {
        conflict.to_owned()
    }
}

/// What a Secret changed by someone else reports: who changed it (field managers), and when
/// it is restored (`None`: now).
pub fn tampered_message(namespace: &str, secret: &str, writers: &str, restore_at: Option<Timestamp>) -> String {
    let when = match restore_at {
        None => "it is restored now with fresh credentials and their keys removed".to_owned(),
        Some(at) => format!(
            "it is restored at {} (restores are spaced out so that two writers cannot fight; stop the other writer)",
            rfc3339(at)
        ),
    };
    format!("Secret {namespace}/{secret} was changed by {writers}: its data belongs to the controller, so {when}")
}

/// What an Identity reports while a refresh nobody asked for waits: Secret `namespace/secret`
/// `what` (was deleted, ...), and is written again at `at`.
pub fn unrequested_wait_message(namespace: &str, secret: &str, what: &str, at: Timestamp) -> String {
    format!(
        "Secret {namespace}/{secret} {what}: it is written again with fresh credentials at {} (at most one refresh \
         every {}s that neither the spec nor the renewal schedule asked for)",
        rfc3339(at),
        crate::settings::MIN_UNREQUESTED_REFRESH.as_secs()
    )
}

/// The order to refresh several identities in: by chain length (fewest links first), then
/// as listed. A chain's target link always runs, but its parents come from the cache, so an
/// identity that is another's parent must run first for the other to reuse its session.
pub fn refresh_order(items: &[Resolved]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].links.len(), i));
    order
}

/// Whether Secrets under other names may hold this Identity's credentials: the name it last
/// reported differs from the current one (or it never reported one).
pub fn may_have_superseded(reported: Option<&str>, current: &str) -> bool {
    reported != Some(current)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::exchange::sts::StsError;
    use crate::output::secret::SecretError;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn unreachable() -> Error {
        Error::Sts(StsError::Transport {
            action: "AssumeRole",
            role: "arn:aws:iam::1:role/r".into(),
            detail: "connection refused".into(),
        })
    }

    fn denied() -> Error {
        Error::Sts(StsError::Rejected {
            action: "AssumeRole",
            role: "arn:aws:iam::1:role/r".into(),
            code: "AccessDenied".into(),
            message: "not authorized".into(),
            status: Some(403),
        })
    }

    fn throttling() -> Error {
        Error::Sts(StsError::Rejected {
            action: "AssumeRole",
            role: "arn:aws:iam::1:role/r".into(),
            code: "Throttling".into(),
            message: "Rate exceeded".into(),
            status: Some(400),
        })
    }

    #[test]
    fn a_throttled_refresh_goes_back_in_line_twice_then_backs_off_by_rounds() {
        let now = ts("2026-01-01T00:00:00Z");
        let lines: Vec<bool> = (1..=7).map(|a| back_in_line(&throttling(), a)).collect();
        assert_eq!(lines, [true, true, false, true, true, false, true]);
        assert!(!back_in_line(&denied(), 1), "only Throttling");
        let r = throttled(&throttling(), 1, None, "aws", now);
        assert_eq!(r.reason, "Throttling");
        assert!(
            r.message.contains("Rate exceeded") && r.message.contains("Back in line"),
            "{}",
            r.message
        );
        // The third in a row waits 5 s, the sixth 10 s: as a refresh with three tries a round.
        let waits: Vec<u64> = [3, 6]
            .iter()
            .map(|a| retry(&throttling(), *a, None, "aws", now).wait.as_secs())
            .collect();
        assert_eq!(waits, [5, 10]);
    }

    #[test]
    fn a_refresh_parked_on_a_down_endpoint_says_so_and_waits_for_the_probe() {
        let now = ts("2026-01-01T00:00:00Z");
        let soon = ts("2026-01-01T00:01:00Z");
        let r = parked(Some(&unreachable()), 2, Some(soon), ("creds", "http://sts"), now);
        assert_eq!(r.reason, "StsUnreachable");
        assert!(r.message.starts_with("AssumeRole for arn:aws:iam::1:role/r failed: connection refused. STS endpoint http://sts does not answer"), "{}", r.message);
        assert!(
            r.message.contains("probed every 2s")
                && r.message.contains("stay in Secret creds until 2026-01-01T00:01:00Z"),
            "{}",
            r.message
        );
        assert_eq!(r.wait, Duration::from_secs(60), "not past the old credentials' expiry");
        assert_eq!(r.attempts, 2);
        let expired = parked(None, 1, Some(ts("2025-12-31T23:00:00Z")), ("creds", "http://sts"), now);
        assert_eq!(
            (expired.reason.as_str(), expired.wait),
            ("Expired", Duration::from_secs(300))
        );
    }

    #[test]
    fn retry_table() {
        let now = ts("2026-01-01T00:00:00Z");
        let soon = ts("2026-01-01T00:00:30Z");
        let later = ts("2026-01-01T02:00:00Z");
        let past = ts("2025-12-31T23:00:00Z");
        // (case, error, attempts, old expiry, reason, wait, message contains)
        type Case = (
            &'static str,
            Error,
            u32,
            Option<Timestamp>,
            &'static str,
            u64,
            &'static str,
        );
        let table: Vec<Case> = vec![
            (
                "transient, no Secret",
                unreachable(),
                1,
                None,
                "StsUnreachable",
                5,
                "Retrying in 5s.",
            ),
            (
                "transient backs off",
                unreachable(),
                4,
                None,
                "StsUnreachable",
                40,
                "Retrying in 40s.",
            ),
            (
                "transient, valid Secret",
                unreachable(),
                1,
                Some(later),
                "StsUnreachable",
                5,
                "The previous credentials stay in Secret s until 2026-01-01T02:00:00Z.",
            ),
            (
                "backoff cut at expiry",
                unreachable(),
                8,
                Some(soon),
                "StsUnreachable",
                30,
                "Retrying in 30s.",
            ),
            (
                "expired",
                unreachable(),
                3,
                Some(past),
                "Expired",
                20,
                "expired at 2025-12-31T23:00:00Z; they are kept, not deleted.",
            ),
            (
                "fix the spec",
                denied(),
                1,
                None,
                "AccessDenied",
                60,
                "Retried slowly (next in 60s)",
            ),
            (
                "fix the spec, capped",
                denied(),
                30,
                None,
                "AccessDenied",
                3600,
                "next in 3600s",
            ),
            (
                "fix the spec, cut at expiry",
                denied(),
                1,
                Some(soon),
                "AccessDenied",
                30,
                "until 2026-01-01T00:00:30Z",
            ),
            (
                "foreign Secret",
                Error::Secret(SecretError::Conflict {
                    namespace: "ns".into(),
                    name: "s".into(),
                }),
                1,
                None,
                "SecretConflict",
                60,
                "not owned by this Identity",
            ),
        ];
        for (case, err, attempts, old, reason, wait, text) in table {
            let r = retry(&err, attempts, old, "s", now);
            assert_eq!(r.reason, reason, "{case}");
            assert_eq!(r.wait, Duration::from_secs(wait), "{case}");
            assert_eq!(r.attempts, attempts, "{case}");
            assert!(r.message.contains(text), "{case}: {}", r.message);
            assert!(r.message.starts_with(&err.to_string()), "{case}: {}", r.message);
        }
    }

    #[test]
    fn messages_say_names_and_whole_second_times() {
        let resolved = Resolved {
            identity: "acme/admin".into(),
            chain: vec!["oidc".into(), "acme/admin".into()],
            token: crate::resolve::TokenSource {
                provider: "oidc".into(),
                service_account: "sa".into(),
                audience: "sts.amazonaws.com".into(),
                expiration_seconds: 600,
            },
            links: Vec::new(),
            region: "us-east-1".into(),
            secret: crate::resolve::SecretPlan {
                name: "creds".into(),
                formats: Vec::new(),
                mount_path: "/m".into(),
            },
            refresh_before_seconds: None,
            warnings: Vec::new(),
            federation: None,
        };
        let exp = ts("2026-01-01T01:00:00.9Z");
        let renew = ts("2026-01-01T00:40:00Z");
        assert_eq!(
            issued_message(
                &ResolvedSet {
                    items: vec![resolved.clone()],
                    multi: false,
                    registry: None,
                },
                exp,
                renew
            ),
            "Secret creds holds credentials for acme/admin (oidc -> acme/admin), valid until 2026-01-01T01:00:00Z; renewal at 2026-01-01T00:40:00Z"
        );
        let two = ResolvedSet {
            items: vec![
                resolved.clone(),
                Resolved {
                    identity: "acme/b".into(),
                    ..resolved
                },
            ],
            multi: true,
            registry: None,
        };
        assert_eq!(
            issued_message(&two, exp, renew),
            "Secret creds holds credentials for 2 identities (acme/admin,acme/b), the first expiring at 2026-01-01T01:00:00Z; all renewed at 2026-01-01T00:40:00Z"
        );
        let s = Schedule {
            expiration: exp,
            advertised: exp,
            renewal: renew,
        };
        assert_eq!(
            renewed_note("SecretMissing", "arn:r", "creds", &s),
            "SecretMissing: credentials for arn:r written to Secret creds, valid until 2026-01-01T01:00:00Z, renewal at 2026-01-01T00:40:00Z"
        );
    }

    #[test]
    fn parents_are_refreshed_before_their_children() {
        let with_links = |n: usize| Resolved {
            identity: format!("i{n}"),
            chain: Vec::new(),
            token: crate::resolve::TokenSource {
                provider: "p".into(),
                service_account: "sa".into(),
                audience: "a".into(),
                expiration_seconds: 600,
            },
            links: (0..n)
                .map(|k| crate::resolve::Link {
                    identity: format!("l{k}"),
                    role_arn: "arn".into(),
                    session_name: None,
                    external_id: None,
                    duration_seconds: Some(900),
                    region: "us-east-1".into(),
                    endpoint: None,
                })
                .collect(),
            region: "us-east-1".into(),
            secret: crate::resolve::SecretPlan {
                name: "s".into(),
                formats: Vec::new(),
                mount_path: "/m".into(),
            },
            refresh_before_seconds: None,
            warnings: Vec::new(),
            federation: None,
        };
        let items = [with_links(2), with_links(3), with_links(1), with_links(2)];
        assert_eq!(refresh_order(&items), [2, 0, 3, 1]);
    }

    #[test]
    fn superseded_secrets_are_looked_for_when_the_name_moves() {
        assert!(may_have_superseded(None, "a"));
        assert!(may_have_superseded(Some("b"), "a"));
        assert!(!may_have_superseded(Some("a"), "a"));
    }
}
