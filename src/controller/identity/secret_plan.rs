//! What to do about the Identity's Secret, the part of the plan ([`super::plan`]) that judges
//! what stands at the name against the controller's record of its last write
//! ([`Record`]): only the version and the data hash count, never the Secret's annotations or
//! field manager names, which anyone who may write the Secret can set. Named policies, pure.

use jiff::{SignedDuration, Timestamp};

use super::decide;
use super::plan::{Observed, SecretPlan, SecretView};
use super::trigger::{self, RenewReason, SecretState};
use crate::api::IdentityStatus;
use crate::exchange::budget::Urgency;
use crate::output::secret::{Existing, Live, Record, SecretError};
use crate::settings::MIN_UNREQUESTED_REFRESH;

/// What to do about Secret `ns/name` seen as `view`, for credentials of spec `hash`.
pub fn plan_secret<P>(o: &Observed<P>, view: &SecretView, (ns, name): (&str, &str), hash: &str) -> SecretPlan {
    match view {
        SecretView::NotCached => SecretPlan::ReadLive,
        SecretView::Known(existing) => plan_existing(o, existing, (ns, name), hash),
    }
}

/// What a Secret of this Identity is, judged against the controller's record of its write.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// The recorded version (or an older one the cache still shows): the controller's write.
    Recorded(Record),
    /// Another version, not read yet (the cache holds no data).
    Unread,
    /// Another version holding the data the controller wrote (a `kubectl replace`, a label
    /// added): the record, at that version.
    SameData(Record),
    /// Another version with other data: someone else's write. The field managers that own
    /// data keys, to name in messages.
    Changed(Vec<String>),
    /// Nothing recorded for this Secret: its data cannot be vouched for.
    Unrecorded,
}

/// The verdict on a Secret at version `rv` (`live`: what a read found, if it was read).
/// Only the version and the data hash count; annotations and field manager names are
/// anyone's to set.
pub fn verify(record: Option<&Record>, rv: &str, live: Option<&Live>) -> Verdict {
    match (record, live) {
        (Some(r), _) if r.covers(rv) => Verdict::Recorded(r.clone()),
        (_, None) => Verdict::Unread,
        (Some(r), Some(l)) if l.data_hash == r.written.data_hash => Verdict::SameData(r.at_version(rv)),
        (Some(_), Some(l)) => Verdict::Changed(l.writers.clone()),
        (None, Some(_)) => Verdict::Unrecorded,
    }
}

/// [`plan_secret`] for what is known to stand at the name.
pub fn plan_existing<P>(o: &Observed<P>, existing: &Existing, (ns, name): (&str, &str), hash: &str) -> SecretPlan {
    let (rv, live) = match existing {
        Existing::Missing => return missing(o, (ns, name)),
        Existing::Foreign => return foreign(ns, name, &o.old),
        Existing::Owned {
            resource_version, live, ..
        } => (resource_version, live.as_ref()),
    };
    match verify(o.record.as_ref(), rv, live) {
        Verdict::Recorded(record) | Verdict::SameData(record) => from_record(o, record, hash),
        Verdict::Unread => SecretPlan::ReadLive,
        Verdict::Changed(writers) => tampered(o, (ns, name), &writers),
        Verdict::Unrecorded => unrecorded(o, (ns, name)),
    }
}

/// The Secret holds what the controller recorded: renew when the record says so, or when
/// someone asked (`renew`) and the credentials are older than the minimum interval.
fn from_record<P>(o: &Observed<P>, record: Record, hash: &str) -> SecretPlan {
    match trigger::renewal_reason(o.now, Some(&SecretState::from_record(&record)), hash) {
        Some(trigger) => refresh(trigger, Some(record.expiration), None, (false, false)),
        None if o.renew_request.is_some() && asked_and_due(o) => {
            refresh(RenewReason::Requested, Some(record.expiration), None, (false, false))
        }
        None => SecretPlan::UpToDate { record },
    }
}

/// Whether a pending request needs a refresh (not answered by one made a moment ago).
fn asked_and_due<P>(o: &Observed<P>) -> bool {
    let last = o.old.last_refresh_time.as_deref().and_then(|t| t.parse().ok());
    let min = SignedDuration::try_from(MIN_UNREQUESTED_REFRESH).unwrap_or(SignedDuration::ZERO);
    trigger::answer_request(o.now, last, min) == trigger::Answer::Renew
}

/// No Secret at the name: a first issue, or, when the controller recorded one there (it was
/// deleted), a refresh the spec did not ask for.
fn missing<P>(o: &Observed<P>, (ns, name): (&str, &str)) -> SecretPlan {
    // A Secret the controller recorded was deleted: nobody asked for this refresh.
    let unrequested = o.record.is_some();
    if unrequested && let Some(at) = unrequested_too_soon(o) {
        return SecretPlan::Wait {
            reason: RenewReason::SecretMissing,
            message: decide::unrequested_wait_message(ns, name, "was deleted", at),
            at,
        };
    }
    refresh(RenewReason::SecretMissing, None, None, (false, unrequested))
}

/// When a refresh that neither the spec nor the schedule asked for may be made, if not now:
/// [`MIN_UNREQUESTED_REFRESH`] after the last such refresh.
pub fn unrequested_too_soon<P>(o: &Observed<P>) -> Option<Timestamp> {
    let last = o.last_unrequested?;
    let at = last
        .checked_add(SignedDuration::try_from(MIN_UNREQUESTED_REFRESH).ok()?)
        .ok()?;
    (at > o.now).then_some(at)
}

fn foreign(ns: &str, name: &str, old: &IdentityStatus) -> SecretPlan {
    let err = SecretError::Conflict {
        namespace: ns.to_owned(),
        name: name.to_owned(),
    };
    SecretPlan::Conflict {
        message: decide::conflict_message(old, name, &err.to_string()),
    }
}

/// Someone else wrote the data: restore it (fresh credentials, their keys removed), unless a
/// restore (or another unrequested refresh) was made a moment ago.
fn tampered<P>(o: &Observed<P>, (ns, name): (&str, &str), writers: &[String]) -> SecretPlan {
    let who = if writers.is_empty() {
        "a writer other than the controller".to_owned()
    } else {
        writers.join(", ")
    };
    if let Some(at) = o.restores.next_allowed(o.now).max(unrequested_too_soon(o)) {
        return SecretPlan::Wait {
            reason: RenewReason::Tampered,
            message: decide::tampered_message(ns, name, &who, Some(at)),
            at,
        };
    }
    let old_expiry = o.record.as_ref().map(|r| r.expiration);
    let note = decide::tampered_message(ns, name, &who, None);
    refresh(RenewReason::Tampered, old_expiry, Some(note), (true, true))
}

/// An owned Secret the controller holds no record of (written by an earlier release, or
/// emptied when its credentials were revoked): rewritten whole with fresh credentials.
fn unrecorded<P>(o: &Observed<P>, (ns, name): (&str, &str)) -> SecretPlan {
    if let Some(at) = unrequested_too_soon(o) {
        return SecretPlan::Wait {
            reason: RenewReason::Unrecorded,
            message: decide::unrequested_wait_message(ns, name, "holds data the controller has no record of", at),
            at,
        };
    }
    let old_expiry = o.old.expiration.as_deref().and_then(|e| e.parse::<Timestamp>().ok());
    refresh(RenewReason::Unrecorded, old_expiry, None, (true, true))
}

/// Credentials for this spec exist (expired ones first of all): a renewal, served before
/// first issues; else an issue. `restore`: data replaced whole; `unrequested`: neither the
/// spec nor the schedule asked for it.
fn refresh(
    trigger: RenewReason,
    old_expiry: Option<Timestamp>,
    tampered: Option<String>,
    (restore, unrequested): (bool, bool),
) -> SecretPlan {
    let urgency = match (trigger, old_expiry) {
        (RenewReason::SpecChanged, _) | (_, None) => Urgency::Issue,
        (_, Some(e)) => Urgency::Renewal(e.as_second()),
    };
    SecretPlan::Refresh {
        trigger,
        urgency,
        old_expiry,
        tampered,
        restore,
        unrequested,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pretty_assertions::assert_eq;

    use super::super::plan::tests::*;
    use super::*;
    use crate::output::labels;
    use crate::output::tamper::Restores;

    #[test]
    fn a_name_not_confirmed_free_is_read_live() {
        assert_eq!(
            secret_plan(&observed(t0(), SecretView::NotCached)),
            SecretPlan::ReadLive
        );
    }

    #[test]
    fn a_foreign_secret_is_a_conflict() {
        let SecretPlan::Conflict { message } = secret_plan(&observed(t0(), SecretView::Known(Existing::Foreign)))
        else {
            panic!()
        };
        assert!(
            message.contains("Secret team/creds exists and is not owned by this Identity"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_secret_is_a_first_issue() {
        assert_eq!(
            secret_plan(&observed(t0(), SecretView::Known(Existing::Missing))),
            SecretPlan::Refresh {
                trigger: RenewReason::SecretMissing,
                urgency: Urgency::Issue,
                old_expiry: None,
                tampered: None,
                restore: false,
                unrequested: false,
            }
        );
    }

    #[test]
    fn the_recorded_version_is_up_to_date_until_the_recorded_renewal() {
        let want = SecretPlan::UpToDate {
            record: record(&set().spec_hash(), "7"),
        };
        // The recorded version, or an older one a cache that has not shown the write shows.
        assert_eq!(secret_plan(&recorded(at(10), owned("7", None))), want);
        assert_eq!(secret_plan(&recorded(at(10), owned("6", None))), want);
    }

    #[test]
    fn forged_annotations_decide_nothing() {
        // The Secret claims to have expired (the annotations of `owned`): nothing renews.
        assert!(matches!(
            secret_plan(&recorded(at(10), owned("7", None))),
            SecretPlan::UpToDate { .. }
        ));
        // A forged future expiry does not stop the renewal the record schedules either.
        let mut far = observed(at(41), SecretView::NotCached);
        far.secret = Some(SecretView::Known(Existing::Owned {
            uid: "u".into(),
            annotations: BTreeMap::from([
                (labels::EXPIRATION.to_owned(), "2100-01-01T00:00:00Z".to_owned()),
                (labels::RENEWAL_TIME.to_owned(), "2100-01-01T00:00:00Z".to_owned()),
            ]),
            labels: BTreeMap::new(),
            resource_version: "7".into(),
            live: None,
        }));
        far.record = Some(record(&set().spec_hash(), "7"));
        assert!(matches!(
            secret_plan(&far),
            SecretPlan::Refresh {
                trigger: RenewReason::Renewing,
                ..
            }
        ));
    }

    #[test]
    fn at_renewal_time_a_renewal_is_served_by_expiry() {
        assert_eq!(
            secret_plan(&recorded(at(40), owned("7", None))),
            SecretPlan::Refresh {
                trigger: RenewReason::Renewing,
                urgency: Urgency::Renewal(at(60).as_second()),
                old_expiry: Some(at(60)),
                tampered: None,
                restore: false,
                unrequested: false,
            }
        );
    }

    #[test]
    fn a_renewal_request_renews_unless_credentials_were_written_within_the_interval() {
        // at(n) is n minutes after t0; the credentials were written at t0.
        let mut o = recorded(at(10), owned("7", None));
        o.old.last_refresh_time = Some(rfc3339_of(t0()));
        o.renew_request = Some("2026-01-01T00:10:00Z".into());
        assert_eq!(
            secret_plan(&o),
            SecretPlan::Refresh {
                trigger: RenewReason::Requested,
                urgency: Urgency::Renewal(at(60).as_second()),
                old_expiry: Some(at(60)),
                tampered: None,
                restore: false,
                unrequested: false,
            }
        );
        // Written five seconds ago: that refresh answers the request.
        o.old.last_refresh_time = Some("2026-01-01T00:09:55Z".into());
        assert!(matches!(secret_plan(&o), SecretPlan::UpToDate { .. }));
        // No request: nothing to do before the renewal time.
        o.renew_request = None;
        o.old.last_refresh_time = Some(rfc3339_of(t0()));
        assert!(matches!(secret_plan(&o), SecretPlan::UpToDate { .. }));
    }

    fn rfc3339_of(t: Timestamp) -> String {
        crate::util::time::rfc3339(t)
    }

    #[test]
    fn a_scheduled_renewal_is_never_held_back_by_the_unrequested_interval() {
        let mut o = recorded(at(40), owned("7", None));
        o.last_unrequested = Some("2026-01-01T00:39:59Z".parse().unwrap());
        assert!(matches!(
            secret_plan(&o),
            SecretPlan::Refresh {
                trigger: RenewReason::Renewing,
                ..
            }
        ));
    }

    #[test]
    fn a_spec_change_is_an_issue_whatever_the_old_expiry() {
        let mut o = recorded(at(10), owned("7", None));
        o.record = Some(record("another-hash", "7"));
        assert_eq!(
            secret_plan(&o),
            SecretPlan::Refresh {
                trigger: RenewReason::SpecChanged,
                urgency: Urgency::Issue,
                old_expiry: Some(at(60)),
                tampered: None,
                restore: false,
                unrequested: false,
            }
        );
    }

    #[test]
    fn another_version_is_read_once_before_deciding() {
        assert_eq!(secret_plan(&recorded(at(10), owned("8", None))), SecretPlan::ReadLive);
        assert_eq!(verify(Some(&record("h", "7")), "8", None), Verdict::Unread);
    }

    #[test]
    fn the_same_data_at_another_version_is_recorded_not_renewed() {
        // A `kubectl replace` (an encryption-key rotation), a label added: one read, and the
        // new version recorded; no STS call.
        assert_eq!(
            secret_plan(&recorded(at(10), owned("8", Some(("d1", &["kubectl-replace"]))))),
            SecretPlan::UpToDate {
                record: record(&set().spec_hash(), "8"),
            }
        );
    }

    #[test]
    fn changed_data_is_restored_whatever_field_manager_wrote_it() {
        // Written under the controller's own field manager name: no other manager shows.
        let SecretPlan::Refresh {
            trigger,
            tampered,
            restore,
            urgency,
            ..
        } = secret_plan(&recorded(at(10), owned("8", Some(("d2", &[])))))
        else {
            panic!()
        };
        assert_eq!((trigger, restore), (RenewReason::Tampered, true));
        assert!(matches!(
            secret_plan(&recorded(at(10), owned("8", Some(("d2", &[]))))),
            SecretPlan::Refresh { unrequested: true, .. }
        ));
        assert_eq!(urgency, Urgency::Renewal(at(60).as_second()));
        let note = tampered.unwrap();
        assert!(note.contains("changed by a writer other than the controller"), "{note}");
        let SecretPlan::Refresh { tampered, .. } =
            secret_plan(&recorded(at(10), owned("8", Some(("d2", &["kubectl-edit"])))))
        else {
            panic!()
        };
        assert!(tampered.is_some_and(|n| n.contains("kubectl-edit")));
    }

    #[test]
    fn restores_are_spaced_out() {
        let mut o = recorded(at(10), owned("8", Some(("d2", &["kubectl-edit"]))));
        o.restores = Restores::default().after(at(10));
        let SecretPlan::Wait {
            reason,
            at: when,
            message,
        } = secret_plan(&o)
        else {
            panic!()
        };
        assert_eq!(reason, RenewReason::Tampered);
        assert!(when > at(10), "{when}");
        assert!(message.contains("kubectl-edit"), "{message}");
    }

    #[test]
    fn unrequested_refreshes_wait_for_the_minimum_interval() {
        let just = |o: &mut Observed<()>| o.last_unrequested = Some("2026-01-01T00:09:55Z".parse().unwrap());
        // Tampered 5 s after the last refresh: restored 10 s after it.
        let mut o = recorded(at(10), owned("8", Some(("d2", &[]))));
        just(&mut o);
        let SecretPlan::Wait { reason, at: when, .. } = secret_plan(&o) else {
            panic!()
        };
        assert_eq!(reason, RenewReason::Tampered);
        assert_eq!(when, "2026-01-01T00:10:05Z".parse::<Timestamp>().unwrap());
        // Deleted 5 s after the last refresh: the same.
        let mut o = recorded(at(10), SecretView::Known(Existing::Missing));
        just(&mut o);
        let SecretPlan::Wait {
            reason,
            at: when,
            message,
        } = secret_plan(&o)
        else {
            panic!()
        };
        assert_eq!(reason, RenewReason::SecretMissing);
        assert_eq!(when, "2026-01-01T00:10:05Z".parse::<Timestamp>().unwrap());
        assert!(message.contains("was deleted"), "{message}");
        // Deleted long after the last one (the first issue, asked for, does not count):
        // written again at once, and it counts for the next.
        let mut o = recorded(at(10), SecretView::Known(Existing::Missing));
        o.old.last_refresh_time = Some("2026-01-01T00:09:59Z".into());
        assert!(matches!(
            secret_plan(&o),
            SecretPlan::Refresh {
                trigger: RenewReason::SecretMissing,
                unrequested: true,
                ..
            }
        ));
    }

    #[test]
    fn a_secret_without_a_record_is_read_then_rewritten_whole() {
        assert_eq!(secret_plan(&observed(at(10), owned("8", None))), SecretPlan::ReadLive);
        assert!(matches!(
            secret_plan(&observed(at(10), owned("8", Some(("d1", &[]))))),
            SecretPlan::Refresh {
                trigger: RenewReason::Unrecorded,
                restore: true,
                tampered: None,
                ..
            }
        ));
    }
}
