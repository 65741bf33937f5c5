//! The reconcile's decision: one pure function from what was observed ([`Observed`]) to what
//! to do ([`Plan`]). Written as chains of small named policies, in the manner of
//! cert-manager's trigger policies: each looks at the observation and either decides or
//! leaves it to the next. No clock (the observation carries `now`), no I/O.

use jiff::Timestamp;

use super::decide;
use super::trigger::RenewReason;
use crate::api::{IdentityStatus, ProfileKind};
use crate::exchange::budget::Urgency;
use crate::output::secret::{Existing, Record};
use crate::output::tamper::Restores;
use crate::resolve::{Problem, Reason, ResolvedSet, summarize};

pub use super::secret_plan::{plan_existing, plan_secret};

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

/// The Identity's Secret, as the watch cache shows it.
#[derive(Debug)]
pub enum SecretView {
    /// What stands at the name.
    Known(Existing),
    /// The cache shows nothing there, and this Identity has not confirmed the name is free
    /// (a Secret without the controller's label is not cached): read it before calling STS.
    NotCached,
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
    /// What the controller recorded of its last write of that Secret: the newer of the
    /// status's record and this process's own last write.
    pub record: Option<Record>,
    /// The restores of that Secret this process made.
    pub restores: Restores,
    /// When this process last made a refresh of this Identity that neither its spec nor its
    /// schedule asked for.
    pub last_unrequested: Option<Timestamp>,
    /// A renewal request (`renew`) the status has not answered yet.
    pub renew_request: Option<String>,
    /// The image-pull Secret, for an Identity that has one.
    pub registry: Option<super::registry::RegistryView>,
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
    /// A refresh that neither the spec nor the schedule asked for (`reason`), too soon
    /// after the last refresh or restore: wait until `at`, so that no writer of the Secret
    /// can make the controller call STS at will, nor two writers fight.
    Wait {
        reason: RenewReason,
        message: String,
        at: Timestamp,
    },
    /// Fresh credentials for this spec, as `record` says: bring the status up to date
    /// (recording a new version that holds the same data), look again at renewal.
    UpToDate { record: Record },
    /// Exchange and write now, at the STS budget's turn for `urgency`.
    Refresh {
        trigger: RenewReason,
        urgency: Urgency,
        /// Expiry of the credentials in the Secret for this spec, if any.
        old_expiry: Option<Timestamp>,
        /// With a restore of tampered data: the event to publish.
        tampered: Option<String>,
        /// Whether `data` is replaced whole (the Secret holds data the controller cannot
        /// vouch for), conditional on the version read.
        restore: bool,
        /// Whether neither the spec nor the schedule asked for it (the next such refresh
        /// waits [`crate::settings::MIN_UNREQUESTED_REFRESH`]).
        unrequested: bool,
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
    let mut secret = plan_secret(o, o.secret.as_ref()?, (ns, name), &hash);
    if let Some(view) = &o.registry {
        secret = super::registry::amend(o, (ns, view), secret);
    }
    let pull = set.registry.as_ref().map(|r| r.secret_name.as_str());
    let pull_moved = o.old.image_pull_secret.as_ref().map(|w| w.name.as_str()) != pull;
    Some(Plan::Serve {
        supersede: decide::may_have_superseded(o.old.secret_name.as_deref(), name) || pull_moved,
        secret,
        hash,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use jiff::SignedDuration;
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::output::labels;
    use crate::output::secret::Live;
    use crate::resolve::{Settings, resolve_set};

    pub(crate) const NS: &str = "team";

    pub(crate) fn t0() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    pub(crate) fn at(minutes: i64) -> Timestamp {
        t0().checked_add(SignedDuration::from_mins(minutes)).unwrap()
    }

    pub(crate) fn set() -> ResolvedSet {
        let profile = serde_json::from_value(serde_json::json!({
            "providers": {"oidc": {"kind": "kubernetes/oidc", "spec": {"audience": "sts.amazonaws.com", "service_account": "tf"}}},
            "identities": {"admin": {"default": true, "kind": "aws/assume-role", "via": {"provider": "oidc"},
                "principal": {"assume_role": "arn:aws:iam::123456789012:role/admin"}}}
        }))
        .unwrap();
        let spec = serde_json::from_value(serde_json::json!({"profile": "p", "secret": {"name": "creds"}})).unwrap();
        resolve_set(&profile, &spec, "app", &Settings::default()).unwrap()
    }

    /// The controller's record of a Secret issued at t0 for `hash`, expiring at 60 min,
    /// renewed at 40, written at version `rv` with data hashing to `d1`.
    pub(crate) fn record(hash: &str, rv: &str) -> Record {
        Record {
            written: crate::api::WrittenSecret {
                name: "creds".into(),
                resource_version: rv.into(),
                data_hash: "d1".into(),
                spec_hash: hash.into(),
            },
            expiration: at(60),
            renewal: at(40),
        }
    }

    /// Annotations anyone who may write the Secret can set: here, claiming it expired.
    pub(crate) fn forged_expired() -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::EXPIRATION.to_owned(), "2000-01-01T00:00:00Z".to_owned()),
            (labels::RENEWAL_TIME.to_owned(), "2000-01-01T00:00:00Z".to_owned()),
            (labels::SPEC_HASH.to_owned(), "forged".to_owned()),
        ])
    }

    /// This Identity's Secret at version `rv`, seen in the cache (`live` none) or read live
    /// (data hash, field managers owning data keys).
    pub(crate) fn owned(rv: &str, live: Option<(&str, &[&str])>) -> SecretView {
        SecretView::Known(Existing::Owned {
            uid: "u".into(),
            annotations: forged_expired(),
            labels: BTreeMap::new(),
            resource_version: rv.into(),
            live: live.map(|(hash, writers)| Live {
                data_hash: hash.into(),
                writers: writers.iter().map(|s| (*s).to_owned()).collect(),
            }),
        })
    }

    /// A synced, usable, resolved observation at `now` with `secret`, its status naming
    /// Secret `creds`, nothing recorded.
    pub(crate) fn observed(now: Timestamp, secret: SecretView) -> Observed<()> {
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
            record: None,
            restores: Restores::default(),
            last_unrequested: None,
            renew_request: None,
            registry: None,
        }
    }

    /// [`observed`] with the record of an issue at t0 for the current spec at version 7.
    pub(crate) fn recorded(now: Timestamp, secret: SecretView) -> Observed<()> {
        let mut o = observed(now, secret);
        o.record = Some(record(&set().spec_hash(), "7"));
        o
    }

    pub(crate) fn secret_plan(o: &Observed<()>) -> SecretPlan {
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
}
