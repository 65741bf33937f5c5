//! What every reconcile shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use super::usage::Usage;
use crate::api::{AuthProfile, ClusterAuthProfile};
use crate::resolve::Settings;
use crate::sts::Exchanger;
use crate::telemetry::Metrics;

/// Shared state of the controllers.
pub struct Context {
    /// API client.
    pub client: Client,
    /// AuthProfiles from the informer cache.
    pub profiles: Store<AuthProfile>,
    /// ClusterAuthProfiles (always cluster-wide).
    pub cluster_profiles: Store<ClusterAuthProfile>,
    /// Namespaces as metadata (their labels decide ClusterAuthProfile selection): every one,
    /// or only the scope's own.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Which Identities use which ClusterAuthProfile (shared by every scope).
    pub usage: Arc<Usage>,
    /// STS exchanges and the parent-session cache, one per process (shared by every scope).
    pub exchanger: Arc<Exchanger>,
    /// Operator limits on what profiles may ask for.
    pub settings: Settings,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Set once the profile and namespace caches have synced: this scope's flag in the process's
    /// [`crate::runtime::Readiness`] (see [`crate::runtime::mark_when_synced`]).
    pub profiles_synced: Arc<AtomicBool>,
}

impl Context {
    /// Whether the profile and namespace caches have synced.
    pub fn profiles_synced(&self) -> bool {
        self.profiles_synced.load(Ordering::SeqCst)
    }
}
