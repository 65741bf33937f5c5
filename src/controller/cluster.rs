//! What ClusterAuthProfiles add to each watch scope: informers of the ClusterAuthProfiles
//! and of the namespaces (metadata only; their labels decide selection), the Identities each
//! change reconciles, and the ClusterAuthProfile status controller (one per process).

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, ResourceExt};

use super::conditions::{self, READY};
use super::decoded::Decoded;
use super::fanout::Fanout;
use super::{Error, Scope, WatchReports, Watches};
use crate::api::limits::MAX_STATUS_NAMESPACES;
use crate::api::{ClusterAuthProfile, ClusterAuthProfileStatus, Identity, ProfileKind};
use crate::resolve::overrides::not_allowed;
use crate::resolve::{Settings, summarize, validate_profile};
use crate::telemetry::{Metrics, ReconcileTimer};

type Events<K> = Pin<Box<dyn Stream<Item = Result<K, watcher::Error>> + Send>>;

/// The one ClusterAuthProfile watch of the process, shared by every scope and the status
/// controller: they are cluster-scoped, whatever the scopes.
pub type ClusterProfiles = Arc<Fanout<ClusterAuthProfile>>;

/// The process's ClusterAuthProfile watch, not yet running ([`Fanout::run`] it once every
/// scope and the status controller have subscribed); it reports its health and the objects it
/// skips to `reports`.
pub fn cluster_profiles(client: &Client, reports: &WatchReports) -> ClusterProfiles {
    let health = reports.watches.watch::<ClusterAuthProfile>("cluster-wide");
    let events = watcher(
        Api::<Decoded<ClusterAuthProfile>>::all(client.clone()),
        watcher::Config::default(),
    )
    .backoff(super::backoff::WatchBackoff::default())
    .inspect(move |e| health.observe(e))
    .boxed();
    Fanout::new(events, reports.skipped.clone())
}

/// What ClusterAuthProfiles add to one scope: the shared profiles, and the scope's namespace
/// informer.
pub struct ClusterCaches {
    /// ClusterAuthProfiles (always every one: they are cluster-scoped).
    pub profiles: ClusterProfiles,
    /// Namespaces, metadata only: every one for a cluster scope, the scope's own otherwise.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    pub(super) profile_stream: Events<ClusterAuthProfile>,
    pub(super) namespace_stream: Events<PartialObjectMeta<Namespace>>,
}

impl ClusterCaches {
    /// Resolves once both caches have synced (the process's readiness is the only waiter on
    /// the namespace store).
    pub async fn synced(profiles: ClusterProfiles, namespaces: Store<PartialObjectMeta<Namespace>>) -> bool {
        profiles.synced().await && namespaces.wait_until_ready().await.is_ok()
    }
}

/// The caches of `scope`: the shared ClusterAuthProfiles (only their spec changes and
/// deletions trigger Identities) and the scope's namespaces (a namespace-limited controller
/// reads only its own namespace object, through a field selector).
pub fn caches(client: &Client, scope: &Scope, profiles: &ClusterProfiles, watches: &Watches) -> ClusterCaches {
    let profile_stream = profiles.subscribe_spec_changes().boxed();
    let (config, health) = match scope {
        Scope::Cluster => (watcher::Config::default(), watches.watch::<Namespace>("(every one)")),
        Scope::Namespace(ns) => (
            watcher::Config::default().fields(&format!("metadata.name={ns}")),
            watches.watch::<Namespace>(&format!("(only {ns})")),
        ),
    };
    let (namespaces, ns_writer) = reflector::store();
    // Only labels matter: keep nothing else, and react only when they change.
    let namespace_stream = watcher(Api::<PartialObjectMeta<Namespace>>::all(client.clone()), config)
        .backoff(super::backoff::WatchBackoff::default())
        .inspect(move |e| health.observe(e))
        .modify(|meta| {
            meta.metadata.managed_fields = None;
            meta.metadata.annotations = None;
        })
        .reflect(ns_writer)
        .touched_objects()
        .predicate_filter(predicates::labels, Default::default())
        .boxed();
    ClusterCaches {
        profiles: profiles.clone(),
        namespaces,
        profile_stream,
        namespace_stream,
    }
}

/// The Identities of `store` that name ClusterAuthProfile `profile`.
pub fn identities_of_profile(store: &Store<Identity>, profile: &ClusterAuthProfile) -> Vec<ObjectRef<Identity>> {
    let name = profile.name_any();
    store
        .state()
        .into_iter()
        .filter(|i| i.spec.profile_ref_kind() == ProfileKind::ClusterAuthProfile && i.spec.profile == name)
        .map(|i| ObjectRef::from_obj(&*i))
        .collect()
}

/// The Identities of `store` in namespace `ns` that name a ClusterAuthProfile.
pub fn identities_in_namespace(store: &Store<Identity>, ns: &PartialObjectMeta<Namespace>) -> Vec<ObjectRef<Identity>> {
    let name = ns.name_any();
    store
        .state()
        .into_iter()
        .filter(|i| {
            i.spec.profile_ref_kind() == ProfileKind::ClusterAuthProfile
                && i.namespace().as_deref() == Some(name.as_str())
        })
        .map(|i| ObjectRef::from_obj(&*i))
        .collect()
}

/// What the ClusterAuthProfile status controller needs.
pub struct ClusterContext {
    /// API client.
    pub client: Client,
    /// Operator limits (as for AuthProfiles).
    pub settings: Settings,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Every scope's Identities: who uses which profile is read from them.
    pub identities: Vec<Store<Identity>>,
    /// Every scope's namespaces (their labels decide selection).
    pub namespaces: Vec<Store<PartialObjectMeta<Namespace>>>,
}

impl ClusterContext {
    /// The namespaces whose Identities use `profile` and may (selected, overrides allowed).
    fn namespaces_using(&self, profile: &ClusterAuthProfile) -> BTreeSet<String> {
        let labels = |ns: &str| {
            self.namespaces
                .iter()
                .find_map(|s| s.get(&ObjectRef::new(ns)))
                .and_then(|m| m.metadata.labels.clone())
                .unwrap_or_default()
        };
        let identities: Vec<Arc<Identity>> = self.identities.iter().flat_map(Store::state).collect();
        namespaces_using(profile, identities.iter().map(AsRef::as_ref), labels)
    }
}

/// The namespaces with an Identity that names `profile` and may use it: its namespace is
/// selected (`labels` of a namespace by name) and the profile allows its overrides.
pub fn namespaces_using<'a>(
    profile: &ClusterAuthProfile,
    identities: impl Iterator<Item = &'a Identity>,
    labels: impl Fn(&str) -> BTreeMap<String, String>,
) -> BTreeSet<String> {
    let name = profile.name_any();
    let allowed = profile.spec.allowed_overrides.as_deref().unwrap_or_default();
    identities
        .filter(|i| i.spec.profile_ref_kind() == ProfileKind::ClusterAuthProfile && i.spec.profile == name)
        .filter_map(|i| {
            let ns = i.namespace()?;
            let may =
                profile.spec.selects(&ns, &labels(&ns)) && not_allowed(&i.spec.overrides, &name, allowed).is_empty();
            may.then_some(ns)
        })
        .collect()
}

/// How often the status looks again at who uses a profile without an Identity change: a
/// namespace's relabelling changes its selection, and only the Identity controllers watch
/// namespaces.
const USAGE_RECHECK: Duration = Duration::from_secs(30);

/// Runs the ClusterAuthProfile status controller (once per process) until `shutdown`, on the
/// process's one ClusterAuthProfile watch (`trigger`: a subscription made before it runs);
/// `identity_changes`: every scope's Identity subscriptions, so a profile's users are counted
/// when an Identity comes, goes or changes its profile.
pub async fn run(
    ctx: Arc<ClusterContext>,
    profiles: &ClusterProfiles,
    trigger: impl Stream<Item = Result<ClusterAuthProfile, watcher::Error>> + Send + 'static,
    identity_changes: Vec<Events<Identity>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let users = futures::stream::select_all(identity_changes);
    Controller::for_stream(trigger, profiles.store())
        .watches_stream(users, |i: Identity| {
            (i.spec.profile_ref_kind() == ProfileKind::ClusterAuthProfile).then(|| ObjectRef::new(&i.spec.profile))
        })
        .trigger_backoff(super::backoff::WatchBackoff::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

async fn reconcile(obj: Arc<ClusterAuthProfile>, ctx: Arc<ClusterContext>) -> Result<Action, Error> {
    let _timer = ReconcileTimer::start(&ctx.metrics, "clusterauthprofile");
    let old = obj.status.clone().unwrap_or_default();
    let used = ctx.namespaces_using(&obj);
    let status = status_of(&obj, &old, &ctx.settings, used, Timestamp::now());
    if status != old {
        let api: Api<ClusterAuthProfile> = Api::all(ctx.client.clone());
        api.patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&conditions::status_patch(&old, &status)),
        )
        .await?;
    }
    Ok(Action::requeue(USAGE_RECHECK))
}

/// The status: the profile's validation (as an AuthProfile's) and the namespaces using it.
fn status_of(
    obj: &ClusterAuthProfile,
    old: &ClusterAuthProfileStatus,
    settings: &Settings,
    used: BTreeSet<String>,
    now: Timestamp,
) -> ClusterAuthProfileStatus {
    let generation = obj.metadata.generation;
    let report = validate_profile(&obj.spec.auth, settings);
    let mut status = ClusterAuthProfileStatus {
        conditions: old.conditions.clone(),
        observed_generation: generation,
        identity_count: obj.spec.auth.identities.len() as i64,
        default_identity: report.default_identity.clone(),
        identities: report.identity_states(),
        warnings: super::conditions::status_warnings(&report.all_warnings()),
        namespace_count: used.len() as i64,
        namespaces: used.into_iter().take(MAX_STATUS_NAMESPACES as usize).collect(),
    };
    let (ok, reason, msg) = match summarize(&report.all_problems()) {
        None => (
            true,
            "Valid".to_owned(),
            "every identity resolves and can run in a cluster".to_owned(),
        ),
        Some((reason, msg)) => (false, reason.as_str().to_owned(), msg),
    };
    conditions::set(&mut status.conditions, READY, ok, &reason, &msg, generation, now);
    status
}

fn error_policy(obj: Arc<ClusterAuthProfile>, err: &Error, ctx: Arc<ClusterContext>) -> Action {
    ctx.metrics.reconcile_failed("clusterauthprofile", err.reason());
    tracing::warn!(profile = %obj.name_any(), error = %err, "cluster profile reconcile failed");
    Action::requeue(crate::settings::ERROR_REQUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClusterAuthProfileSpec;

    #[test]
    fn status_lists_the_first_namespaces_and_counts_all() {
        let used: BTreeSet<String> = (0..60).map(|i| format!("ns-{i:02}")).collect();
        let mut obj = ClusterAuthProfile::new("platform", ClusterAuthProfileSpec::default());
        obj.metadata.generation = Some(3);
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let s = status_of(
            &obj,
            &ClusterAuthProfileStatus::default(),
            &Settings::default(),
            used,
            now,
        );
        assert_eq!(s.namespace_count, 60);
        assert_eq!(s.namespaces.len(), MAX_STATUS_NAMESPACES as usize);
        assert_eq!(s.namespaces[0], "ns-00");
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.conditions[0].type_, READY);
    }

    #[test]
    fn a_profile_is_used_where_an_identity_names_it_and_may() {
        let profile: ClusterAuthProfile = serde_json::from_value(serde_json::json!({
            "apiVersion": "auth.atmos.tools/v1alpha1", "kind": "ClusterAuthProfile",
            "metadata": {"name": "platform"},
            "spec": {"namespaces": ["a", "b", "c"], "allowedOverrides": ["principal.session_name"]}
        }))
        .unwrap();
        let identity = |ns: &str, spec: serde_json::Value| -> Identity {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "auth.atmos.tools/v1alpha1", "kind": "Identity",
                "metadata": {"name": "tf", "namespace": ns}, "spec": spec
            }))
            .unwrap()
        };
        let cluster = serde_json::json!({"profile": "platform", "profileKind": "ClusterAuthProfile"});
        let ids = [
            identity("a", cluster.clone()),
            // Allowed override.
            identity(
                "b",
                serde_json::json!({"profile": "platform", "profileKind": "ClusterAuthProfile", "principal": {"session_name": "x"}}),
            ),
            // Refused override: not a user.
            identity(
                "c",
                serde_json::json!({"profile": "platform", "profileKind": "ClusterAuthProfile", "principal": {"duration": "1h"}}),
            ),
            // Not selected.
            identity("d", cluster.clone()),
            // An AuthProfile of the same name.
            identity("e", serde_json::json!({"profile": "platform"})),
        ];
        let used = namespaces_using(&profile, ids.iter(), |_| BTreeMap::new());
        assert_eq!(used.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
