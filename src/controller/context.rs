//! What every reconcile shares.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use crate::api::{AuthProfile, IdentityStatus};
use crate::queue::gate::Gate;
use crate::resolve::Settings;
use crate::secret::Written;
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
    /// Secrets this process wrote that the cache may not show yet.
    pub written: Written,
    /// Statuses this process wrote that the cache may not show yet.
    pub statuses: StatusesWritten,
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

/// The last status this process wrote per Identity (as a hash), until the Identity cache
/// shows it: a reconcile that runs in between (its Secret's watch event came first) would
/// otherwise write the same status again.
#[derive(Default)]
pub struct StatusesWritten(Mutex<HashMap<(String, String), u64>>);

impl StatusesWritten {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), u64>> {
        // Each update is a single insert or remove.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hash(status: &IdentityStatus) -> u64 {
        let mut h = DefaultHasher::new();
        serde_json::to_string(status).unwrap_or_default().hash(&mut h);
        h.finish()
    }

    /// Records a status write.
    pub fn wrote(&self, key: (String, String), status: &IdentityStatus) {
        self.lock().insert(key, Self::hash(status));
    }

    /// Whether `status` is the one last written for `key`.
    pub fn is_last(&self, key: &(String, String), status: &IdentityStatus) -> bool {
        self.lock().get(key) == Some(&Self::hash(status))
    }

    /// The cache shows the status: nothing to remember.
    pub fn caught_up(&self, key: &(String, String)) {
        self.lock().remove(key);
    }
}

impl Context {
    /// Whether the AuthProfile cache has synced.
    pub fn profiles_synced(&self) -> bool {
        self.profiles_synced.load(Ordering::SeqCst)
    }
}
