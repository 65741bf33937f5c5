//! The reconcile's decision: one pure function from what was observed ([`Observed`]) to what
//! to do ([`Plan`]). Written as chains of small named policies, in the manner of
//! cert-manager's trigger policies: each looks at the observation and either decides or
//! leaves it to the next. No clock (the observation carries `now`), no I/O.

use jiff::Timestamp;

use super::decide;
use super::trigger::{self, RenewReason, SecretState};
use crate::api::{IdentityStatus, ProfileKind};
use crate::exchange::budget::Urgency;
use crate::output::secret::{Existing, SecretError};
use crate::output::tamper;
use crate::resolve::{Problem, Reason, ResolvedSet, summarize};

/// Whether the Identity may use the profile it names.
#[derive(Debug)]
pub enum ProfileUse<P> {
    /// Found, and usable by this Identity: `P` is the profile.
    Usable(P),
    /// No such profile: the Identity's Secrets are emptied at `revoke_at` (a grace period
    /// after it was first found missing) unless it is back by then.
    NotFound {
        kind: ProfileKind,
        name: String,
        revoke_at: Timestamp,
    },
    /// A ClusterAuthProfile that does not select the Identity's namespace.
    NamespaceNotSelected { profile: String },
    /// A ClusterAuthProfile, and the namespace's labels are not cached yet: not selected
    /// until they are (fail closed), looked at again soon.
    NamespaceNotCached,
    /// A ClusterAuthProfile that does not allow some of the Identity's overrides.
    OverridesRefused { problems: Vec<Problem> },
}

/// The Identity's Secret, as the watch cache shows it and newer where this process wrote
/// since.
#[derive(Debug)]
pub enum SecretView {
    /// What stands at the name.
    Known(Existing),
    /// The cache shows nothing there, and this Identity has not confirmed the name is free
    /// (a Secret without the controller's label is not cached): read it before calling STS.
    NotCached,
    /// The cache shows another writer of the data: read the live metadata (a restore is
    /// conditional on it) before deciding.
    Suspect,
}

/// What one reconcile needs to decide, gathered from the object, the caches and what this
/// process remembers.
#[derive(Debug)]
pub struct Observed<P> {
    /// The reconcile's clock.
    pub now: Timestamp,
    /// Whether the profile and namespace caches have synced (before that, "not found" would
    /// be a false alarm).
    pub synced: bool,
    /// Whether the Identity is being deleted.
    pub deleting: bool,
    /// The status the reconcile starts from (this process's last write if the cache is behind).
    pub old: IdentityStatus,
    /// Whether it may use its profile (`None` when synced is false or it is being deleted).
    pub profile: Option<ProfileUse<P>>,
    /// The resolution against a usable profile.
    pub resolved: Option<Result<ResolvedSet, Vec<Problem>>>,
    /// The Secret at the resolved name (`None` until resolved).
    pub secret: Option<SecretView>,
}

/// What the reconcile does.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// The caches have not synced (or do not show the namespace yet): look again in a second.
    WaitForCaches,
    /// Being deleted: no token, no Secret write (the garbage collector removes the Secret).
    Nothing,
    /// Report why the spec cannot be served and wait for a change.
    Refuse { reason: String, message: String },
    /// Report why the spec cannot be served; unless something changes first, the Identity's
    /// Secrets are emptied ([`Plan::Revoke`]) at `at`.
    RevokeLater {
        reason: String,
        message: String,
        at: Timestamp,
    },
    /// The Identity may not use its profile: empty its Secrets, report, wait for a change.
    Revoke { reason: String, message: String },
    /// Resolved: first empty the Secrets it wrote under earlier names (`supersede`), then
    /// see to the Secret; `hash`: the resolved set's spec hash, computed once per reconcile.
    Serve {
        supersede: bool,
        secret: SecretPlan,
        hash: String,
    },
}

/// What to do about the resolved Secret.
#[derive(Debug, PartialEq)]
pub enum SecretPlan {
    /// Read its live metadata, then plan again with what it shows ([`plan_secret`]).
    ReadLive,
    /// Someone else's Secret stands at the name: report it, look again in five minutes (it
    /// is not watched), never touch it.
    Conflict { message: String },
    /// Someone else changed its data and a restore was made a moment ago: wait until `at`,
    /// so two writers cannot fight.
    WaitToRestore { message: String, at: Timestamp },
    /// Fresh credentials for this spec: bring the status up to date, look again at renewal.
    UpToDate { expiration: Timestamp, renewal: Timestamp },
    /// Exchange and write now, at the STS budget's turn for `urgency`.
    Refresh {
        trigger: RenewReason,
        urgency: Urgency,
        /// Expiry of the credentials in the Secret for this spec, if any.
        old_expiry: Option<Timestamp>,
        /// With a restore: the other writers of the data, and the event to publish.
        tampered: Option<String>,
    },
}

/// A policy of the reconcile: decides, or leaves it to the next.
type Policy<P> = fn(&Observed<P>, &str) -> Option<Plan>;

/// The decision for `o`, an Identity in namespace `ns`.
pub fn plan<P>(o: &Observed<P>, ns: &str) -> Plan {
    let policies: [Policy<P>; 5] = [caches_not_synced, being_deleted, profile_unusable, spec_invalid, serve];
    policies.iter().find_map(|p| p(o, ns)).unwrap_or(Plan::Nothing)
}

fn caches_not_synced<P>(o: &Observed<P>, _: &str) -> Option<Plan> {
    (!o.synced).then_some(Plan::WaitForCaches)
}

fn being_deleted<P>(o: &Observed<P>, _: &str) -> Option<Plan> {
    o.deleting.then_some(Plan::Nothing)
}

fn profile_unusable<P>(o: &Observed<P>, ns: &str) -> Option<Plan> {
    match o.profile.as_ref()? {
        ProfileUse::Usable(_) => None,
        ProfileUse::NamespaceNotCached => Some(Plan::WaitForCaches),
        ProfileUse::NotFound { kind, name, revoke_at } => {
            let missing = match kind {
                ProfileKind::AuthProfile => {
                    format!("AuthProfile {ns}/{name} not found: apply it, or fix spec.profile")
                }
                ProfileKind::ClusterAuthProfile => {
                    format!("ClusterAuthProfile {name} not found: apply it, or fix spec.profile (or spec.profileKind)")
                }
            };
            let reason = decide::PROFILE_NOT_FOUND.to_owned();
            Some(if o.now >= *revoke_at {
                Plan::Revoke {
                    reason,
                    message: decide::profile_gone_message(&missing),
                }
            } else {
                Plan::RevokeLater {
                    reason,
                    message: decide::profile_missing_message(&missing, *revoke_at),
                    at: *revoke_at,
                }
            })
        }
        ProfileUse::NamespaceNotSelected { profile } => Some(Plan::Revoke {
            reason: decide::NAMESPACE_NOT_ALLOWED.to_owned(),
            message: decide::not_allowed_message(ns, profile),
        }),
        ProfileUse::OverridesRefused { problems } => {
            let (reason, summary) = summarize(problems)?;
            Some(Plan::Revoke {
                reason: reason.as_str().to_owned(),
                message: decide::override_refused_message(&summary),
            })
        }
    }
}

fn spec_invalid<P>(o: &Observed<P>, _: &str) -> Option<Plan> {
    let problems = o.resolved.as_ref()?.as_ref().err()?;
    let (reason, message) = summarize(problems).unwrap_or((Reason::InvalidIdentity, String::new()));
    Some(Plan::Refuse {
        reason: reason.as_str().to_owned(),
        message,
    })
}

fn serve<P>(o: &Observed<P>, ns: &str) -> Option<Plan> {
    let set = o.resolved.as_ref()?.as_ref().ok()?;
    let name = &set.first().secret.name;
    let hash = set.spec_hash();
    Some(Plan::Serve {
        supersede: decide::may_have_superseded(o.old.secret_name.as_deref(), name),
        secret: plan_secret(o.now, o.secret.as_ref()?, (ns, name), &hash, &o.old),
        hash,
    })
}

/// What to do about Secret `ns/name` seen as `view`, for credentials of spec `hash`; `old`:
/// the status the reconcile started from.
pub fn plan_secret(
    now: Timestamp,
    view: &SecretView,
    (ns, name): (&str, &str),
    hash: &str,
    old: &IdentityStatus,
) -> SecretPlan {
    match view {
        SecretView::NotCached | SecretView::Suspect => SecretPlan::ReadLive,
        SecretView::Known(existing) => plan_existing(now, existing, (ns, name), hash, old),
    }
}

/// [`plan_secret`] for what is known to stand at the name.
pub fn plan_existing(
    now: Timestamp,
    existing: &Existing,
    (ns, name): (&str, &str),
    hash: &str,
    old: &IdentityStatus,
) -> SecretPlan {
    let state = match existing {
        Existing::Missing => None,
        Existing::Foreign => return foreign(ns, name, old),
        Existing::Owned {
            tampered_by,
            annotations,
            ..
        } if !tampered_by.is_empty() => return tampered(now, (ns, name), &tampered_by.join(", "), annotations),
        Existing::Owned { annotations, .. } => Some(SecretState::from_annotations(annotations)),
    };
    match trigger::renewal_reason(now, state.as_ref(), hash) {
        Some(trigger) => refresh(trigger, state.as_ref().and_then(|s| s.expiration), None),
        None => up_to_date(state.unwrap_or_default()),
    }
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
/// restore was made a moment ago.
fn tampered(
    now: Timestamp,
    (ns, name): (&str, &str),
    writers: &str,
    annotations: &std::collections::BTreeMap<String, String>,
) -> SecretPlan {
    if let Some(at) = tamper::Restores::from_annotations(annotations).next_allowed(now) {
        return SecretPlan::WaitToRestore {
            message: decide::tampered_message(ns, name, writers, Some(at)),
            at,
        };
    }
    let old_expiry = SecretState::from_annotations(annotations).expiration;
    let note = decide::tampered_message(ns, name, writers, None);
    refresh(RenewReason::Tampered, old_expiry, Some(note))
}

/// Credentials for this spec exist (expired ones first of all): a renewal, served before
/// first issues; else an issue.
fn refresh(trigger: RenewReason, old_expiry: Option<Timestamp>, tampered: Option<String>) -> SecretPlan {
    let urgency = match (trigger, old_expiry) {
        (RenewReason::SpecChanged, _) | (_, None) => Urgency::Issue,
        (_, Some(e)) => Urgency::Renewal(e.as_second()),
    };
    SecretPlan::Refresh {
        trigger,
        urgency,
        old_expiry,
        tampered,
    }
}

/// No renewal reason: both times are known (a missing one is a reason).
fn up_to_date(state: SecretState) -> SecretPlan {
    match (state.expiration, state.renewal_time) {
        (Some(expiration), Some(renewal)) => SecretPlan::UpToDate { expiration, renewal },
        (expiration, _) => refresh(RenewReason::Expired, expiration, None),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use jiff::SignedDuration;
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::output::labels;
    use crate::resolve::{Settings, resolve_set};

    const NS: &str = "team";

    fn t0() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn at(minutes: i64) -> Timestamp {
        t0().checked_add(SignedDuration::from_mins(minutes)).unwrap()
    }

    fn set() -> ResolvedSet {
        let profile = serde_json::from_value(serde_json::json!({
            "providers": {"oidc": {"kind": "kubernetes/oidc", "spec": {"audience": "sts.amazonaws.com", "service_account": "tf"}}},
            "identities": {"admin": {"default": true, "kind": "aws/assume-role", "via": {"provider": "oidc"},
                "principal": {"assume_role": "arn:aws:iam::123456789012:role/admin"}}}
        }))
        .unwrap();
        let spec = serde_json::from_value(serde_json::json!({"profile": "p", "secret": {"name": "creds"}})).unwrap();
        resolve_set(&profile, &spec, "app", &Settings::default()).unwrap()
    }

    /// Annotations of a Secret issued at t0 for `hash`, expiring at 60 min, renewed at 40.
    fn issued(hash: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::SPEC_HASH.to_owned(), hash.to_owned()),
            (labels::EXPIRATION.to_owned(), "2026-01-01T01:00:00Z".to_owned()),
            (labels::RENEWAL_TIME.to_owned(), "2026-01-01T00:40:00Z".to_owned()),
        ])
    }

    fn owned(annotations: BTreeMap<String, String>, tampered_by: &[&str]) -> SecretView {
        SecretView::Known(Existing::Owned {
            uid: "u".into(),
            annotations,
            labels: BTreeMap::new(),
            resource_version: "1".into(),
            tampered_by: tampered_by.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// A synced, usable, resolved observation at `now` with `secret`, its status naming
    /// Secret `creds`.
    fn observed(now: Timestamp, secret: SecretView) -> Observed<()> {
        Observed {
            now,
            synced: true,
            deleting: false,
            old: IdentityStatus {
                secret_name: Some("creds".into()),
                ..Default::default()
            },
            profile: Some(ProfileUse::Usable(())),
            resolved: Some(Ok(set())),
            secret: Some(secret),
        }
    }

    fn secret_plan(o: &Observed<()>) -> SecretPlan {
        match plan(o, NS) {
            Plan::Serve { secret, .. } => secret,
            other => panic!("not served: {other:?}"),
        }
    }

    #[test]
    fn before_the_caches_sync_it_looks_again() {
        let mut o = observed(t0(), SecretView::NotCached);
        o.synced = false;
        assert_eq!(plan(&o, NS), Plan::WaitForCaches);
    }

    #[test]
    fn an_identity_being_deleted_gets_nothing() {
        let mut o = observed(t0(), SecretView::NotCached);
        o.deleting = true;
        assert_eq!(plan(&o, NS), Plan::Nothing);
    }

    #[test]
    fn a_missing_profile_is_refused_with_its_kind_and_revoked_after_the_grace_period() {
        let mut o = observed(t0(), SecretView::NotCached);
        o.profile = Some(ProfileUse::NotFound {
            kind: ProfileKind::AuthProfile,
            name: "k8s".into(),
            revoke_at: at(10),
        });
        let Plan::RevokeLater {
            reason,
            message,
            at: when,
        } = plan(&o, NS)
        else {
            panic!()
        };
        assert_eq!((reason.as_str(), when), ("ProfileNotFound", at(10)));
        assert!(message.starts_with("AuthProfile team/k8s not found"), "{message}");
        assert!(message.contains("removed at 2026-01-01T00:10:00Z"), "{message}");
        o.profile = Some(ProfileUse::NotFound {
            kind: ProfileKind::ClusterAuthProfile,
            name: "platform".into(),
            revoke_at: at(10),
        });
        let Plan::RevokeLater { message, .. } = plan(&o, NS) else {
            panic!()
        };
        assert!(message.contains("spec.profileKind"), "{message}");
        o.now = at(10);
        let Plan::Revoke { reason, message } = plan(&o, NS) else {
            panic!()
        };
        assert_eq!(reason, "ProfileNotFound");
        assert!(message.contains("credentials were removed"), "{message}");
    }

    #[test]
    fn a_namespace_not_selected_is_revoked() {
        let mut o = observed(t0(), SecretView::NotCached);
        o.profile = Some(ProfileUse::NamespaceNotSelected {
            profile: "platform".into(),
        });
        let Plan::Revoke { reason, message } = plan(&o, NS) else {
            panic!()
        };
        assert_eq!(reason, "NamespaceNotAllowed");
        assert!(
            message.contains("namespace team is not selected by ClusterAuthProfile platform"),
            "{message}"
        );
    }

    #[test]
    fn an_override_not_allowed_is_revoked() {
        let mut o = observed(t0(), SecretView::NotCached);
        let problem = crate::resolve::overrides::not_allowed(
            &serde_json::from_value(serde_json::json!({"principal": {"session_name": "s"}})).unwrap(),
            "platform",
            &[],
        );
        o.profile = Some(ProfileUse::OverridesRefused { problems: problem });
        let Plan::Revoke { reason, message } = plan(&o, NS) else {
            panic!()
        };
        assert_eq!(reason, "OverrideNotAllowed");
        assert!(
            message.starts_with("spec.principal.session_name: ClusterAuthProfile platform"),
            "{message}"
        );
        assert!(message.contains("credentials were removed"), "{message}");
    }

    #[test]
    fn an_invalid_spec_is_refused_with_the_first_reason() {
        let mut o = observed(t0(), SecretView::NotCached);
        o.resolved = Some(Err(vec![Problem::new(
            "spec.identity",
            Reason::IdentityNotFound,
            "identity \"x\" is not in AuthProfile p",
        )]));
        let Plan::Refuse { reason, message } = plan(&o, NS) else {
            panic!()
        };
        assert_eq!(reason, "IdentityNotFound");
        assert_eq!(message, "spec.identity: identity \"x\" is not in AuthProfile p");
    }

    #[test]
    fn a_renamed_secret_supersedes_the_old_one() {
        let mut o = observed(t0(), SecretView::Known(Existing::Missing));
        assert!(matches!(plan(&o, NS), Plan::Serve { supersede: false, .. }));
        o.old.secret_name = Some("old".into());
        assert!(matches!(plan(&o, NS), Plan::Serve { supersede: true, .. }));
        o.old.secret_name = None;
        assert!(matches!(plan(&o, NS), Plan::Serve { supersede: true, .. }));
    }

    #[test]
    fn a_name_not_confirmed_free_or_a_suspect_secret_is_read_live() {
        assert_eq!(
            secret_plan(&observed(t0(), SecretView::NotCached)),
            SecretPlan::ReadLive
        );
        assert_eq!(secret_plan(&observed(t0(), SecretView::Suspect)), SecretPlan::ReadLive);
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
            }
        );
    }

    #[test]
    fn fresh_credentials_for_this_spec_are_up_to_date_until_renewal() {
        let hash = set().spec_hash();
        assert_eq!(
            secret_plan(&observed(at(10), owned(issued(&hash), &[]))),
            SecretPlan::UpToDate {
                expiration: at(60),
                renewal: at(40)
            }
        );
        let mut no_times = issued(&hash);
        no_times.remove(labels::RENEWAL_TIME);
        no_times.remove(labels::EXPIRATION);
        // Without an expiry the credentials count as expired.
        assert!(matches!(
            secret_plan(&observed(at(10), owned(no_times, &[]))),
            SecretPlan::Refresh {
                trigger: RenewReason::Expired,
                ..
            }
        ));
    }

    #[test]
    fn at_renewal_time_a_renewal_is_served_by_expiry() {
        let hash = set().spec_hash();
        assert_eq!(
            secret_plan(&observed(at(40), owned(issued(&hash), &[]))),
            SecretPlan::Refresh {
                trigger: RenewReason::Renewing,
                urgency: Urgency::Renewal(at(60).as_second()),
                old_expiry: Some(at(60)),
                tampered: None,
            }
        );
    }

    #[test]
    fn a_spec_change_is_an_issue_whatever_the_old_expiry() {
        assert_eq!(
            secret_plan(&observed(at(10), owned(issued("another-hash"), &[]))),
            SecretPlan::Refresh {
                trigger: RenewReason::SpecChanged,
                urgency: Urgency::Issue,
                old_expiry: Some(at(60)),
                tampered: None,
            }
        );
    }

    #[test]
    fn tampered_data_is_restored_unless_a_restore_was_just_made() {
        let hash = set().spec_hash();
        let SecretPlan::Refresh { trigger, tampered, .. } =
            secret_plan(&observed(at(10), owned(issued(&hash), &["kubectl-edit"])))
        else {
            panic!()
        };
        assert_eq!(trigger, RenewReason::Tampered);
        assert!(tampered.is_some_and(|n| n.contains("kubectl-edit")));
        let mut just_restored = issued(&hash);
        just_restored.extend(tamper::Restores::default().annotations_after(at(10)));
        let SecretPlan::WaitToRestore { at: when, message } =
            secret_plan(&observed(at(10), owned(just_restored, &["kubectl-edit"])))
        else {
            panic!()
        };
        assert!(when > at(10), "{when}");
        assert!(message.contains("kubectl-edit"), "{message}");
    }
}
