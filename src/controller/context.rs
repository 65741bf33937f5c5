//! What every reconcile shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use crate::api::AuthProfile;
use crate::queue::gate::Gate;
use crate::secret::Written;
use crate::resolve::Settings;
use crate::sts::Exchanger;
use crate::telemetry::Metrics;

/// Shared state of the controllers.
pub struct Context {
    /// API client.
    pub client: Client,
    /// AuthProfiles from the informer cache.
    pub profiles: Store<AuthProfile>,
    /// The controller's Secrets (metadata) from the informer cache.
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// What this process wrote that the cache may not show yet.
    pub written: Written,
    /// Turns at the STS budget, one gate per process (shared by every scope).
    pub gate: Arc<Gate>,
    /// STS exchanges and the parent-session cache, one per process (shared by every scope).
    pub exchanger: Arc<Exchanger>,
    /// Operator limits on what profiles may ask for.
    pub settings: Settings,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Set once the AuthProfile cache has synced: this scope's flag in the process's
    /// [`crate::runtime::Readiness`] (see [`crate::runtime::mark_when_synced`]).
    pub profiles_synced: Arc<AtomicBool>,
}

impl Context {
    /// Whether the AuthProfile cache has synced.
    pub fn profiles_synced(&self) -> bool {
        self.profiles_synced.load(Ordering::SeqCst)
    }
}
