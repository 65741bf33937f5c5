//! The controllers (Identity, AuthProfile, ClusterAuthProfile) and how they are wired to the
//! API server.

pub mod admission;
mod backoff;
mod cluster;
mod conditions;
mod context;
mod decoded;
mod error;
mod events;
mod fanout;
mod identity;
mod profile;
mod restarts;
mod secrets;
mod watches;

use std::collections::HashSet;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{AuthProfile, Identity};
pub use cluster::{ClusterCaches, ClusterContext, ClusterProfiles, cluster_profiles, run as run_cluster_profiles};
pub use context::{Context, Memory, Options, Services, Stores};
use decoded::Decoded;
pub use decoded::{Skipped, WatchReports};
pub use error::Error;
pub use events::Recorder;
pub use fanout::Fanout;
pub use watches::Watches;

/// `kubectl apply`'s copy of the whole object: never read, so never cached.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Where the controllers look.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every namespace.
    Cluster,
    /// One namespace.
    Namespace(String),
}

impl Scope {
    /// Whether `namespace` is watched by this scope.
    fn contains(&self, namespace: &str) -> bool {
        match self {
            Self::Cluster => true,
            Self::Namespace(ns) => ns == namespace,
        }
    }

    /// Where the scope looks, for messages.
    fn describe(&self) -> String {
        match self {
            Self::Cluster => "in every namespace".to_owned(),
            Self::Namespace(ns) => format!("in namespace {ns}"),
        }
    }

    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self {
            Self::Cluster => Api::all(client.clone()),
            Self::Namespace(ns) => Api::namespaced(client.clone(), ns),
        }
    }
}

/// Informer caches the controllers read, started before the controllers so readiness can
/// wait on them. One watch per resource per scope (ClusterAuthProfiles: one per process),
/// each feeding every controller that needs it.
pub struct Caches {
    /// AuthProfiles: the Identity controller's store and triggers, and the AuthProfile
    /// controller's.
    pub profiles: Arc<Fanout<AuthProfile>>,
    /// ClusterAuthProfiles and namespaces.
    pub cluster: ClusterCaches,
    /// The controller's Secrets, metadata only: the reconcile reads them here, not with a GET.
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// Identities: the Identity controller's, and (for the ClusterAuthProfile status) which
    /// Identities use which profile.
    pub identities: Arc<Fanout<Identity>>,
    /// AuthProfile spec changes and deletions, for the Identities that use them.
    profile_stream: Events<AuthProfile>,
    /// Every AuthProfile change, for the AuthProfile (status) controller.
    profile_status_stream: Events<AuthProfile>,
    /// The Identities a Secret change concerns ([`secrets::cache`]).
    secret_triggers: std::pin::Pin<Box<dyn Stream<Item = ObjectRef<Identity>> + Send>>,
}

type Events<K> = std::pin::Pin<Box<dyn Stream<Item = Result<K, watcher::Error>> + Send>>;

impl Caches {
    /// The stores a scope's reconciles read.
    pub fn stores(&self) -> Stores {
        Stores {
            profiles: self.profiles.store(),
            cluster_profiles: self.cluster.profiles.store(),
            namespaces: self.cluster.namespaces.clone(),
            secrets: self.secrets.clone(),
        }
    }
}

/// Starts the AuthProfile, namespace and Secret informers for `scope`, on the process's
/// ClusterAuthProfile watch `cluster_profiles`; each watch reports its health and the objects
/// it skips to `reports`.
pub fn caches(client: &Client, scope: &Scope, cluster_profiles: &ClusterProfiles, reports: &WatchReports) -> Caches {
    let (secrets, secret_triggers) = secrets::cache(client, scope, &reports.watches);
    let health = reports.watches.watch::<AuthProfile>(&scope.describe());
    let events = watcher(scope.api::<Decoded<AuthProfile>>(client), watcher::Config::default())
        .backoff(backoff::WatchBackoff::default())
        .inspect(move |e| health.observe(e))
        .boxed();
    let profiles = Fanout::new(events, reports.skipped.clone());
    let profile_stream = profiles.subscribe_spec_changes().boxed();
    let profile_status_stream = profiles.subscribe().boxed();
    // Both subscribers exist: the watch may run.
    tokio::spawn(profiles.clone().run());
    let health = reports.watches.watch::<Identity>(&scope.describe());
    let identities = watcher(scope.api::<Decoded<Identity>>(client), watcher::Config::default())
        .backoff(backoff::WatchBackoff::default())
        .inspect(move |e| health.observe(e))
        // The cache needs spec, status and our annotations; managedFields and the last-applied
        // copy of the whole object are most of an applied object's size.
        .modify(|d: &mut Decoded<Identity>| {
            let m = d.meta_mut();
            m.managed_fields = None;
            if let Some(a) = m.annotations.as_mut() {
                a.remove(LAST_APPLIED);
            }
        })
        .boxed();
    Caches {
        identities: Fanout::new(identities, reports.skipped.clone()),
        cluster: cluster::caches(client, scope, cluster_profiles, &reports.watches),
        profiles,
        secrets,
        profile_stream,
        profile_status_stream,
        secret_triggers,
    }
}

/// How the Identity controller runs.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Reconciles at once (kube's controller concurrency).
    pub concurrency: u16,
}

/// Runs both controllers until `shutdown` resolves; in-flight reconciles finish first.
pub async fn run(
    ctx: Arc<Context>,
    caches: Caches,
    scope: Scope,
    tuning: Tuning,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let (identity_store, identity_stream) = identity_watch(&ctx, &scope, &caches.identities);

    // A profile change reconciles the Identities that use it; so does a ClusterAuthProfile's,
    // and a namespace's relabelling (selection).
    let store_for_map = identity_store.clone();
    let identity_store_c = identity_store.clone();
    let profile_to_identities = move |p: AuthProfile| {
        let ns = p.namespace().unwrap_or_default();
        let name = p.name_any();
        store_for_map
            .state()
            .into_iter()
            .filter(|i| {
                i.namespace().as_deref() == Some(ns.as_str())
                    && i.spec.profile_ref_kind() == crate::api::ProfileKind::AuthProfile
                    && i.spec.profile == name
            })
            .map(|i| ObjectRef::from_obj(&*i))
            .collect::<Vec<_>>()
    };

    // A turn at the STS budget has come (see crate::exchange::budget::gate).
    let turns = ctx
        .services
        .budget
        .trigger()
        .map(|(ns, name)| ObjectRef::<Identity>::new(&name).within(&ns));

    let identities = Controller::for_stream(identity_stream, identity_store)
        .with_config(kube::runtime::controller::Config::default().concurrency(tuning.concurrency))
        // Each trigger stream backs off on its own: see backoff.rs.
        .trigger_backoff(backoff::NoTriggerPause)
        // A change to a Secret reaches the Identity that owns (or owned) it.
        .reconcile_on(caches.secret_triggers)
        .watches_stream(caches.profile_stream, profile_to_identities)
        .watches_stream(caches.cluster.profile_stream, {
            let store = identity_store_c.clone();
            move |p| cluster::identities_of_profile(&store, &p)
        })
        .watches_stream(caches.cluster.namespace_stream, {
            let store = identity_store_c;
            move |n| cluster::identities_in_namespace(&store, &n)
        })
        .reconcile_on(turns)
        // A workload restart deferred to the end of its window (see restarts.rs).
        .reconcile_on(
            ctx.memory
                .restarts
                .trigger()
                .map(|(ns, name)| ObjectRef::<Identity>::new(&name).within(&ns)),
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(identity::reconcile, identity::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));

    let profiles = Controller::for_stream(caches.profile_status_stream, caches.profiles.store())
        .trigger_backoff(backoff::WatchBackoff::default())
        .graceful_shutdown_on(shutdown)
        .run(profile::reconcile, profile::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));

    tracing::info!(?scope, "controllers running");
    futures::join!(identities, profiles);
    tracing::info!("controllers stopped");
}

/// The scope's Identity watch, run: its store, and the reconcile triggers it gives. Only spec
/// (generation) and annotation changes trigger a reconcile, so the controller's own status
/// writes never start another attempt (backoff stays honest); annotating an Identity is the
/// manual retry.
fn identity_watch(
    ctx: &Arc<Context>,
    scope: &Scope,
    identities: &Arc<Fanout<Identity>>,
) -> (
    Store<Identity>,
    impl Stream<Item = Result<Identity, watcher::Error>> + Send + 'static,
) {
    let remembered = ctx.clone();
    let scope = scope.clone();
    let mut listing: Option<HashSet<crate::util::keyed::Key>> = None;
    // A deleted Identity is never reconciled again: drop its per-Identity series (and its
    // last written status) here; after a re-list, those of Identities deleted while the
    // watch was down (no Delete event ever comes for them).
    identities.observe(Box::new(move |event| match event {
        watcher::Event::Delete(obj) => {
            remembered.forget_identity(&(obj.namespace().unwrap_or_default(), obj.name_any()));
        }
        watcher::Event::Init => listing = Some(HashSet::new()),
        watcher::Event::InitApply(obj) => {
            if let Some(l) = listing.as_mut() {
                l.insert((obj.namespace().unwrap_or_default(), obj.name_any()));
            }
        }
        watcher::Event::InitDone => {
            if let Some(listed) = listing.take() {
                remembered.retain_identities(|ns, name| {
                    !scope.contains(ns) || listed.contains(&(ns.to_owned(), name.to_owned()))
                });
            }
        }
        watcher::Event::Apply(_) => {}
    }));
    let stream = identities.subscribe().predicate_filter(
        predicates::generation.combine(predicates::annotations),
        Default::default(),
    );
    // Every subscriber exists (the ClusterAuthProfile status subscribed before the scopes ran).
    tokio::spawn(identities.clone().run());
    (identities.store(), stream)
}
