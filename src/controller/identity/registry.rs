//! The image-pull Secret (`spec.imagePullSecret`) in the reconcile: one more output of the
//! same refresh. Gathered from the Secret cache like the credential Secret, judged against
//! its own record (`status.imagePullSecret`), and written after the credential Secret with
//! the same rules: a plain create the first time (409: someone else's, never touched), later
//! writes only over a Secret whose controller owner reference is this Identity, data replaced
//! whole when someone else changed it. An Identity without one never reaches this module.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;

use super::act::Pass;
use super::decide;
use super::plan::{Observed, SecretPlan};
use super::secret_plan::unrequested_too_soon;
use super::trigger::RenewReason;
use crate::api::{IdentityStatus, WrittenSecret};
use crate::controller::{Context, Error};
use crate::exchange::budget::Urgency;
use crate::exchange::ecr::{Login, RegistryToken};
use crate::exchange::renewal::Schedule;
use crate::exchange::sts::Session;
use crate::exchange::{Exchange, Request};
use crate::output::secret::{self, Existing, Record, WriteMode};
use crate::output::{dockerconfig, labels};
use crate::resolve::registry::RegistryPlan;
use crate::util::keyed::key;
use crate::util::time::rfc3339;

/// The image-pull Secret as the reconcile sees it.
#[derive(Debug, Clone)]
pub struct RegistryView {
    /// Its name.
    pub name: String,
    /// What the cache shows at the name (`None`: nothing cached).
    pub existing: Option<Existing>,
    /// This process wrote it and the cache does not show it yet.
    pub just_written: bool,
    /// The controller's record of its last write there.
    pub record: Option<WrittenSecret>,
}

/// Gathers the image-pull Secret of `plan` in `ns` for the Identity `owner_uid`.
pub fn gather(ctx: &Context, ns: &str, plan: &RegistryPlan, old: &IdentityStatus, owner_uid: &str) -> RegistryView {
    let name = plan.secret_name.clone();
    let existing = ctx
        .stores
        .secrets
        .get(&ObjectRef::new(&name).within(ns))
        .map(|m| super::gather::owned_view(&m.metadata, owner_uid, None));
    let just_written = existing.is_none() && ctx.memory.secret_writes.get(&key(ns, &name)).is_some();
    let record = old.image_pull_secret.clone().filter(|w| w.name == name);
    RegistryView {
        name,
        existing,
        just_written,
        record,
    }
}

/// What is wrong with the image-pull Secret, if anything: its refresh reason and whether
/// someone else changed it. `None`: it holds what the controller last wrote.
pub fn judge(view: &RegistryView) -> Option<RenewReason> {
    let Some(record) = &view.record else {
        return Some(RenewReason::SecretMissing);
    };
    match &view.existing {
        None if view.just_written => None,
        None | Some(Existing::Missing) => Some(RenewReason::SecretMissing),
        // Someone else's: the write's create reports the conflict.
        Some(Existing::Foreign) => Some(RenewReason::SecretMissing),
        Some(Existing::Owned { resource_version, .. }) => {
            (!covers(record, resource_version)).then_some(RenewReason::Tampered)
        }
    }
}

fn covers(record: &WrittenSecret, rv: &str) -> bool {
    Record {
        written: record.clone(),
        expiration: Timestamp::UNIX_EPOCH,
        renewal: Timestamp::UNIX_EPOCH,
    }
    .covers(rv)
}

/// The credential Secret's plan, made to refresh when it is up to date but the image-pull
/// Secret is not (deleted, changed by someone else), spaced out as every refresh nobody
/// asked for is.
pub fn amend<P>(o: &Observed<P>, (ns, view): (&str, &RegistryView), plan: SecretPlan) -> SecretPlan {
    // Someone else's Secret at the name (labelled, another owner): never written, and no
    // exchange made for it.
    if matches!(view.existing, Some(Existing::Foreign))
        && matches!(plan, SecretPlan::UpToDate { .. } | SecretPlan::Refresh { .. })
    {
        let err = crate::output::secret::SecretError::Conflict {
            namespace: ns.to_owned(),
            name: view.name.clone(),
        };
        return SecretPlan::Conflict {
            message: format!("{err} (spec.imagePullSecret.name)"),
        };
    }
    let SecretPlan::UpToDate { record } = &plan else {
        return plan;
    };
    let Some(trigger) = judge(view) else {
        return plan;
    };
    let what = if trigger == RenewReason::Tampered {
        "was changed by a writer other than the controller"
    } else {
        "is missing"
    };
    let wait = o.restores.next_allowed(o.now).max(unrequested_too_soon(o));
    if let Some(at) = wait {
        return SecretPlan::Wait {
            reason: trigger,
            message: decide::unrequested_wait_message(ns, &view.name, what, at),
            at,
        };
    }
    SecretPlan::Refresh {
        trigger,
        urgency: Urgency::Renewal(record.expiration.as_second()),
        old_expiry: Some(record.expiration),
        tampered: (trigger == RenewReason::Tampered)
            .then(|| format!("image-pull Secret {ns}/{} {what}: restored", view.name)),
        restore: false,
        unrequested: true,
    }
}

/// Logs in to every registry of `plan` with the sessions of the set (in its order).
pub async fn login_all(
    ctx: &Context,
    ns: &str,
    plan: &RegistryPlan,
    sessions: &[Session],
    now: Timestamp,
) -> Result<Vec<RegistryToken>, Error> {
    let mut tokens = Vec::with_capacity(plan.logins.len());
    for login in &plan.logins {
        let Some(session) = sessions.get(login.item) else {
            return Err(Error::Metadata("session"));
        };
        let input = Login {
            login,
            credentials: &session.credentials,
        };
        let request = Request {
            namespace: ns,
            input: &input,
            now,
            keep: false,
            // A login signs with a session: no ServiceAccount token.
            token: Box::pin(async { Ok(String::new()) }),
        };
        tokens.push(ctx.services.ecr.exchange(request).await?);
    }
    Ok(tokens)
}

/// Writes the image-pull Secret with `tokens`, expiring and renewed as `schedule` says;
/// returns the record of the write. Someone else's Secret at the name is a conflict.
pub async fn write(
    pass: &Pass<'_>,
    (plan, view): (&RegistryPlan, Option<&RegistryView>),
    tokens: &[RegistryToken],
    (hash, schedule): (&str, &Schedule),
) -> Result<WrittenSecret, Error> {
    let (ctx, ns) = (pass.ctx, pass.ns.as_str());
    let api: Api<Secret> = Api::namespaced(ctx.services.client.clone(), ns);
    let restore = view.is_some_and(|v| judge(v) == Some(RenewReason::Tampered));
    let existing = match view.and_then(|v| v.existing.clone()) {
        // Read whole before replacing data someone else wrote (labels are not cached).
        Some(Existing::Owned { .. }) if restore => {
            super::gather::read_live(ctx, (ns, &plan.secret_name), &pass.uid).await?
        }
        Some(e) => e,
        None => Existing::Missing,
    };
    let annotations = BTreeMap::from([
        (labels::SPEC_HASH.to_owned(), hash.to_owned()),
        (labels::EXPIRATION.to_owned(), rfc3339(schedule.expiration)),
        (labels::RENEWAL_TIME.to_owned(), rfc3339(schedule.renewal)),
        (labels::ISSUED_AT.to_owned(), pass.now.to_string()),
        (labels::DATA_KEYS.to_owned(), dockerconfig::KEY.to_owned()),
    ]);
    let owner = pass
        .obj
        .controller_owner_ref(&())
        .ok_or(Error::Metadata("name or uid"))?;
    let mut desired = secret::desired(ns, &plan.secret_name, owner, dockerconfig::render(tokens), annotations);
    desired.type_ = Some(dockerconfig::SECRET_TYPE.to_owned());
    let data_hash = secret::data_hash(desired.data.as_ref().unwrap_or(&BTreeMap::new()));
    let written_annotations = desired.metadata.annotations.clone().unwrap_or_default();
    let mode = if restore {
        WriteMode::Restore
    } else {
        WriteMode::Apply { prune: false }
    };
    let outcome = secret::write(&api, &existing, &desired, mode).await?;
    ctx.memory.secret_writes.insert(
        key(ns, &plan.secret_name),
        secret::SecretWrite {
            uid: outcome.uid,
            owner: pass.uid.clone(),
            annotations: written_annotations,
        },
    );
    Ok(WrittenSecret {
        name: plan.secret_name.clone(),
        resource_version: outcome.resource_version,
        data_hash,
        spec_hash: hash.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(existing: Option<Existing>, record: Option<&str>) -> RegistryView {
        RegistryView {
            name: "pull".into(),
            existing,
            just_written: false,
            record: record.map(|rv| WrittenSecret {
                name: "pull".into(),
                resource_version: rv.into(),
                data_hash: "d".into(),
                spec_hash: "h".into(),
            }),
        }
    }

    fn owned(rv: &str) -> Existing {
        Existing::Owned {
            uid: "u".into(),
            annotations: BTreeMap::new(),
            labels: BTreeMap::new(),
            resource_version: rv.into(),
            live: None,
        }
    }

    #[test]
    fn the_recorded_version_or_an_older_one_is_the_controllers_own() {
        assert_eq!(judge(&view(Some(owned("7")), Some("7"))), None);
        assert_eq!(judge(&view(Some(owned("6")), Some("7"))), None);
    }

    #[test]
    fn a_newer_version_is_someone_elses_edit() {
        assert_eq!(judge(&view(Some(owned("8")), Some("7"))), Some(RenewReason::Tampered));
    }

    #[test]
    fn an_up_to_date_credential_plan_refreshes_for_its_image_pull_secret_or_reports_a_conflict() {
        use super::super::plan::tests::{record, t0};
        let o = super::super::plan::tests::observed(t0(), super::super::plan::SecretView::NotCached);
        let up_to_date = || SecretPlan::UpToDate {
            record: record("h", "7"),
        };
        assert!(matches!(
            amend(&o, ("team", &view(Some(owned("7")), Some("7"))), up_to_date()),
            SecretPlan::UpToDate { .. }
        ));
        match amend(&o, ("team", &view(Some(owned("9")), Some("7"))), up_to_date()) {
            SecretPlan::Refresh {
                trigger,
                restore,
                unrequested,
                tampered,
                ..
            } => {
                assert_eq!(trigger, RenewReason::Tampered);
                // The credential Secret is not restored: only the image-pull Secret is.
                assert!(!restore && unrequested && tampered.is_some());
            }
            other => panic!("{other:?}"),
        }
        match amend(&o, ("team", &view(Some(Existing::Foreign), Some("7"))), up_to_date()) {
            SecretPlan::Conflict { message } => assert!(message.contains("team/pull"), "{message}"),
            other => panic!("{other:?}"),
        }
        // Too soon after a refresh nobody asked for: waits.
        let mut soon = super::super::plan::tests::observed(t0(), super::super::plan::SecretView::NotCached);
        soon.last_unrequested = Some(t0());
        assert!(matches!(
            amend(&soon, ("team", &view(None, Some("7"))), up_to_date()),
            SecretPlan::Wait { .. }
        ));
    }

    #[test]
    fn deleted_or_never_written_is_missing_unless_just_written() {
        assert_eq!(judge(&view(None, Some("7"))), Some(RenewReason::SecretMissing));
        assert_eq!(judge(&view(Some(owned("7")), None)), Some(RenewReason::SecretMissing));
        let mut v = view(None, Some("7"));
        v.just_written = true;
        assert_eq!(judge(&v), None);
    }
}
