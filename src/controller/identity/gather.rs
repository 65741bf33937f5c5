//! Gathering what one reconcile decides from: the Identity, its profile and whether it may
//! use it, the resolved set, the Secret as the watch cache shows it, the controller's record
//! of its last write there (the status's, or this process's newer one), the status this
//! process wrote last, and the clock. Reads caches and process memory only; the one API read
//! ([`read_live`]) happens when the plan asks for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::plan::{Observed, ProfileUse, SecretView};
use super::trigger;
use crate::api::{AuthProfile, AuthProfileSpec, ClusterAuthProfile, Identity, IdentityStatus, ProfileKind};
use crate::controller::{Context, Error};
use crate::output::secret::{Existing, Live, Record, data_hash};
use crate::output::tamper::data_writers;
use crate::resolve::overrides::not_allowed;
use crate::resolve::{Problem, Reason, ResolvedSet, resolve_set};
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
        record: None,
        restores: Default::default(),
        last_unrequested: None,
        renew_request: None,
        registry: None,
    };
    if !o.synced || o.deleting {
        return o;
    }
    o.renew_request = trigger::pending_request(
        obj.annotations()
            .get(crate::output::labels::RENEW_REQUESTED_AT)
            .map(String::as_str),
        o.old.renew_requested_at.as_deref(),
    );
    let profile = profile_use(obj, ns, ctx, now);
    if let ProfileUse::Usable(held) = &profile {
        let resolved = resolve_set(held.spec(), &obj.spec, &name, &ctx.settings).and_then(exchanged_here);
        if let (Ok(set), Some(uid)) = (&resolved, obj.metadata.uid.as_deref()) {
            let me = key(ns, &name);
            let secret = &set.first().secret.name;
            o.record = record(ctx, &me, &o.old, secret);
            // An Identity already queued for its STS turn confirmed the name before it queued.
            let confirmed = ctx.services.budget.knows(&me) && o.record.is_none();
            o.secret = Some(cached_view(ctx, (ns, secret), uid, confirmed));
            o.restores = ctx.memory.restores.get(&me).unwrap_or_default();
            o.last_unrequested = ctx.memory.unrequested.get(&me);
            o.registry = set
                .registry
                .as_ref()
                .map(|plan| super::registry::gather(ctx, ns, plan, &o.old, uid));
        }
        o.resolved = Some(resolved);
    }
    o.profile = Some(profile);
    o
}

/// A resolved set this controller can serve: one Azure or GCP identity per Secret, so a list
/// with one is refused with a reason saying why and what to do instead of reaching an
/// exchanger. Kept refused on purpose: a pod reads one set of these settings (the SDKs take
/// one client, tenant, credentials file and token file from the environment), so a second
/// identity's keys would overwrite the first's.
fn exchanged_here(set: ResolvedSet) -> Result<ResolvedSet, Vec<Problem>> {
    match set.items.iter().find_map(|r| r.federation.as_ref().map(|f| (r, f))) {
        Some((r, f)) if set.multi => {
            let cloud = f.target.cloud();
            let (article, reads) = if cloud == "GCP" {
                ("a", "one GOOGLE_APPLICATION_CREDENTIALS configuration")
            } else {
                ("an", "one AZURE_CLIENT_ID/ARM_CLIENT_ID, tenant and token file")
            };
            Err(vec![Problem::new(
                "spec.identities",
                Reason::UnsupportedKind,
                format!(
                    "{id} is {article} {cloud} identity, and a Secret holds one {cloud} identity: \
                     a pod's SDKs and Terraform read {reads} from its environment, so several \
                     would overwrite each other; set spec.identity: {id} instead of \
                     spec.identities, with one Identity (and Secret) per {cloud} identity; no \
                     Secret is written",
                    id = r.identity,
                ),
            )])
        }
        _ => Ok(set),
    }
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

/// The controller's record of Secret `name`: the newer of what the status says and what
/// this process wrote since (a status write that failed, or one the cache has not shown).
fn record(ctx: &Context, me: &Key, old: &IdentityStatus, name: &str) -> Option<Record> {
    let mine = ctx.memory.written.get(me).filter(|r| r.written.name == name);
    Record::newer(Record::from_status(old, name), mine)
}

/// Secret `ns/name` as the metadata cache shows it. `confirmed`: this Identity already
/// confirmed the name is free and wrote nothing there since (so nothing in the cache means
/// nothing there).
fn cached_view(ctx: &Context, (ns, name): (&str, &str), owner_uid: &str, confirmed: bool) -> SecretView {
    let Some(meta) = ctx.stores.secrets.get(&ObjectRef::new(name).within(ns)) else {
        return if confirmed {
            SecretView::Known(Existing::Missing)
        } else {
            // Not labelled (not cached), or this process wrote it and the cache is behind.
            SecretView::NotCached
        };
    };
    SecretView::Known(owned_view(&meta.metadata, owner_uid, None))
}

/// What `meta` (cached or live) says stands at the name for the Identity with `owner_uid`:
/// someone else's Secret, or this Identity's, with what a live read found (`live`).
pub(super) fn owned_view(meta: &ObjectMeta, owner_uid: &str, live: Option<Live>) -> Existing {
    let owned = meta
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == owner_uid && o.controller == Some(true));
    if !owned {
        return Existing::Foreign;
    }
    Existing::Owned {
        uid: meta.uid.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        // The cache drops labels; only a restore uses them, and it reads the Secret first.
        labels: meta.labels.clone().unwrap_or_default(),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        live,
    }
}

/// Secret `ns/name` as the API server has it now (a GET): its metadata, and the hash of its
/// data (the data itself is dropped at once) with the field managers that own data keys.
pub async fn read_live(ctx: &Context, (ns, name): (&str, &str), owner_uid: &str) -> Result<Existing, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.services.client.clone(), ns);
    let Some(secret) = api.get_opt(name).await? else {
        return Ok(Existing::Missing);
    };
    let live = Live {
        data_hash: data_hash(secret.data.as_ref().unwrap_or(&BTreeMap::new())),
        writers: data_writers(secret.managed_fields()),
    };
    Ok(owned_view(&secret.metadata, owner_uid, Some(live)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{Settings, resolve_set};

    #[test]
    fn one_azure_identity_per_secret_is_served_a_list_is_refused() {
        let profile: AuthProfileSpec = serde_json::from_value(serde_json::json!({
            "providers": {"entra": {"kind": "azure/oidc", "spec": {
                "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "client_id": "11111111-2222-3333-4444-555555555555", "service_account": "tf"}}},
            "identities": {"azure/prod": {"kind": "azure/subscription", "default": true,
                "via": {"provider": "entra"},
                "principal": {"subscription_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}}}
        }))
        .unwrap();
        let spec = serde_json::from_value(serde_json::json!({"profile": "p"})).unwrap();
        let set = resolve_set(&profile, &spec, "azure", &Settings::default()).unwrap();
        assert!(exchanged_here(set).is_ok());
        let spec = serde_json::from_value(serde_json::json!({"profile": "p", "identities": ["azure/prod"]})).unwrap();
        let set = resolve_set(&profile, &spec, "azure", &Settings::default()).unwrap();
        let problems = exchanged_here(set).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "spec.identities");
        assert_eq!(problems[0].reason, Reason::UnsupportedKind);
        assert_eq!(
            problems[0].message,
            "azure/prod is an Azure identity, and a Secret holds one Azure identity: a pod's SDKs \
             and Terraform read one AZURE_CLIENT_ID/ARM_CLIENT_ID, tenant and token file from its \
             environment, so several would overwrite each other; set spec.identity: azure/prod \
             instead of spec.identities, with one Identity (and Secret) per Azure identity; no \
             Secret is written"
        );
    }

    #[test]
    fn a_list_with_a_gcp_identity_is_refused_saying_why() {
        let profile: AuthProfileSpec = serde_json::from_value(serde_json::json!({
            "providers": {"wif": {"kind": "gcp/workload-identity-federation", "spec": {
                "project_number": "123456789012", "workload_identity_pool_id": "k8s-pool",
                "workload_identity_provider_id": "cluster", "service_account": "tf"}}},
            "identities": {"gcp/prod": {"kind": "gcp/project", "default": true,
                "via": {"provider": "wif"}, "principal": {"project_id": "acme-prod"}}}
        }))
        .unwrap();
        let spec = serde_json::from_value(serde_json::json!({"profile": "p", "identities": ["gcp/prod"]})).unwrap();
        let set = resolve_set(&profile, &spec, "gcp", &Settings::default()).unwrap();
        let problems = exchanged_here(set).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "spec.identities");
        assert!(
            problems[0]
                .message
                .starts_with("gcp/prod is a GCP identity, and a Secret holds one GCP identity: a pod's SDKs and Terraform read one GOOGLE_APPLICATION_CREDENTIALS configuration"),
            "{}",
            problems[0].message
        );
        assert!(
            problems[0]
                .message
                .contains("set spec.identity: gcp/prod instead of spec.identities")
        );
    }
}
