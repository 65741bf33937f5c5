//! Gathering what one reconcile decides from: the Identity, its profile and whether it may
//! use it, the resolved set, the Secret as the watch cache shows it (newer where this process
//! wrote since), the status this process wrote last, and the clock. Reads caches and process
//! memory only; the one API read ([`read_live`]) happens when the plan asks for it.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::plan::{Observed, ProfileUse, SecretView};
use crate::api::{AuthProfile, AuthProfileSpec, ClusterAuthProfile, Identity, ProfileKind};
use crate::controller::{Context, Error};
use crate::output::secret::{self, Existing};
use crate::resolve::overrides::not_allowed;
use crate::resolve::resolve_set;
use crate::util::keyed::{Key, key};

/// The profile an Identity may use.
#[derive(Debug)]
pub enum Held {
    Namespaced(Arc<AuthProfile>),
    Cluster(Arc<ClusterAuthProfile>),
}

impl Held {
    pub fn spec(&self) -> &AuthProfileSpec {
        match self {
            Self::Namespaced(p) => &p.spec,
            Self::Cluster(p) => &p.spec.auth,
        }
    }
}

/// What the reconcile of `obj` in `ns` sees at `now`.
pub fn gather(obj: &Identity, ns: &str, ctx: &Context, now: Timestamp) -> Observed<Held> {
    let name = obj.name_any();
    // The status this process wrote last, while the cache has not shown it yet.
    let old = ctx
        .memory
        .statuses
        .newer_than(&key(ns, &name), obj.metadata.resource_version.as_deref())
        .or_else(|| obj.status.clone())
        .unwrap_or_default();
    let mut o = Observed {
        now,
        synced: ctx.profiles_synced(),
        deleting: obj.metadata.deletion_timestamp.is_some(),
        old,
        profile: None,
        resolved: None,
        secret: None,
    };
    if !o.synced || o.deleting {
        return o;
    }
    let profile = profile_use(obj, ns, ctx, now);
    if let ProfileUse::Usable(held) = &profile {
        let resolved = resolve_set(held.spec(), &obj.spec, &name, &ctx.settings);
        if let (Ok(set), Some(uid)) = (&resolved, obj.metadata.uid.as_deref()) {
            // An Identity already queued for its STS turn confirmed the name before it queued.
            let confirmed = ctx.services.budget.knows(&key(ns, &name));
            o.secret = Some(cached_view(ctx, (ns, &set.first().secret.name), uid, confirmed));
        }
        o.resolved = Some(resolved);
    }
    o.profile = Some(profile);
    o
}

/// Finds the Identity's profile and whether it may use it: a ClusterAuthProfile must select
/// the Identity's namespace and allow each of its overrides. A missing profile comes with the
/// time its Identity's Secrets are emptied: a grace period after this process first found it
/// missing (remembered until it is back).
fn profile_use(obj: &Identity, ns: &str, ctx: &Context, now: Timestamp) -> ProfileUse<Held> {
    let spec = &obj.spec;
    let who = key(ns, &obj.name_any());
    let found = if spec.profile_ref_kind() == ProfileKind::AuthProfile {
        ctx.stores
            .profiles
            .get(&ObjectRef::new(&spec.profile).within(ns))
            .map(Held::Namespaced)
    } else {
        ctx.stores
            .cluster_profiles
            .get(&ObjectRef::new(&spec.profile))
            .map(Held::Cluster)
    };
    let Some(held) = found else {
        return ProfileUse::NotFound {
            kind: spec.profile_ref_kind(),
            name: spec.profile.clone(),
            revoke_at: revoke_at(ctx, who, now),
        };
    };
    ctx.memory.profile_missing.remove(&who);
    let profile = match held {
        Held::Cluster(profile) => profile,
        namespaced => return ProfileUse::Usable(namespaced),
    };
    // Fail closed: a namespace the cache does not show yet (created a moment ago) is not one
    // without labels, which `NotIn` and `DoesNotExist` selectors would admit.
    let Some(labels) = ctx
        .stores
        .namespaces
        .get(&ObjectRef::new(ns))
        .map(|m| m.metadata.labels.clone().unwrap_or_default())
    else {
        return ProfileUse::NamespaceNotCached;
    };
    if !profile.spec.selects(ns, &labels) {
        return ProfileUse::NamespaceNotSelected {
            profile: spec.profile.clone(),
        };
    }
    // A platform's chain is used as written: overrides only where the profile allows them.
    let allowed = profile.spec.allowed_overrides.as_deref().unwrap_or_default();
    let problems = not_allowed(&spec.overrides, &spec.profile, allowed);
    if !problems.is_empty() {
        return ProfileUse::OverridesRefused { problems };
    }
    ProfileUse::Usable(Held::Cluster(profile))
}

/// When the Secrets of Identity `who`, whose profile is missing at `now`, are emptied: the
/// grace period after this process first found it missing.
fn revoke_at(ctx: &Context, who: Key, now: Timestamp) -> Timestamp {
    let since = ctx.memory.profile_missing.with(|m| *m.entry(who).or_insert(now));
    let grace = jiff::SignedDuration::try_from(ctx.options.profile_deletion_grace).unwrap_or(jiff::SignedDuration::MAX);
    since.checked_add(grace).unwrap_or(Timestamp::MAX)
}

/// Secret `ns/name` as the metadata cache shows it, newer where this process wrote since.
/// `confirmed`: this Identity already confirmed the name is free (so nothing in the cache
/// means nothing there). The cache keeps the managedFields entries of other writers of
/// `data` ([`crate::output::tamper::writes_data`]), so a tampered Secret shows as suspect.
fn cached_view(ctx: &Context, (ns, name): (&str, &str), owner_uid: &str, confirmed: bool) -> SecretView {
    let at = key(ns, name);
    let mine = ctx.memory.written.get(&at);
    let Some(meta) = ctx.stores.secrets.get(&ObjectRef::new(name).within(ns)) else {
        return if confirmed && mine.is_none() {
            SecretView::Known(Existing::Missing)
        } else {
            // Not labelled (not cached), or this process wrote it and the cache is behind.
            SecretView::NotCached
        };
    };
    match owned_view(ctx, &at, &meta, owner_uid) {
        // A tampered Secret: the restore is conditional on the live metadata, read first.
        Existing::Owned { tampered_by, .. } if !tampered_by.is_empty() => SecretView::Suspect,
        existing => SecretView::Known(existing),
    }
}

/// What `meta` (cached or live) says stands at `at` for the Identity with `owner_uid`:
/// someone else's Secret, or this Identity's, its annotations the newer of `meta`'s and this
/// process's own last write, with the other writers of its data `meta` shows (none when this
/// process's write is newer: it replaced `data` whole).
fn owned_view(ctx: &Context, at: &Key, meta: &PartialObjectMeta<Secret>, owner_uid: &str) -> Existing {
    if !secret::owned_by(meta, owner_uid) {
        return Existing::Foreign;
    }
    let (caught_up, newer) = secret::newer_view(meta, ctx.memory.written.get(at).as_ref());
    if caught_up {
        // Process memory, not an API write: the cache shows this process's write now.
        ctx.memory.written.remove(at);
    }
    let tampered_by = match newer {
        Some(_) => Vec::new(),
        None => crate::output::tamper::data_writers(meta.managed_fields()),
    };
    Existing::Owned {
        uid: meta.uid().unwrap_or_default(),
        annotations: newer.unwrap_or_else(|| meta.annotations().clone()),
        // The cache drops labels; only a restore uses them, and it reads the live metadata.
        labels: meta.labels().clone(),
        resource_version: meta.resource_version().unwrap_or_default(),
        tampered_by,
    }
}

/// Secret `ns/name` as the API server has it now (a GET of its metadata), with the other
/// writers of its data that a restore removes.
pub async fn read_live(ctx: &Context, (ns, name): (&str, &str), owner_uid: &str) -> Result<Existing, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.services.client.clone(), ns);
    let at = key(ns, name);
    let Some(live): Option<PartialObjectMeta<Secret>> = api.get_metadata_opt(name).await? else {
        ctx.memory.written.remove(&at);
        return Ok(Existing::Missing);
    };
    Ok(owned_view(ctx, &at, &live, owner_uid))
}
