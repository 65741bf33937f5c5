//! What every reconcile shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;

use super::Recorder;
use crate::api::{AuthProfile, ClusterAuthProfile, IdentityStatus};
use crate::exchange::Budget;
use crate::exchange::sts::{Exchanger, Session};
use crate::output::secret::Written;
use crate::output::tamper::Restores;
use crate::resolve::Settings;
use crate::telemetry::Metrics;
use crate::util::keyed::{ByName, Key};

/// What every reconcile of one watch scope shares, grouped by what it is: the watch caches
/// it reads, what this process remembers of its own writes, the outside services it calls,
/// and the operator's settings. Built by [`Context::new`] (production) or `Context::test`.
pub struct Context {
    /// Watch caches: read by the reconcile, written only by their watches.
    pub stores: Stores,
    /// What this process wrote or learned, per object, that the caches may not show yet.
    pub memory: Memory,
    /// The Kubernetes client, events, metrics and the credential exchange with its budget.
    pub services: Services,
    /// Operator limits on what profiles may ask for.
    pub settings: Settings,
    /// How the Identity reconcile treats what it cannot serve.
    pub options: Options,
    /// Set once the profile and namespace caches have synced: this scope's flag in the
    /// process's readiness (which sets it).
    synced: Arc<AtomicBool>,
}

/// The watch caches of one scope.
pub struct Stores {
    /// AuthProfiles.
    pub profiles: Store<AuthProfile>,
    /// ClusterAuthProfiles (always cluster-wide).
    pub cluster_profiles: Store<ClusterAuthProfile>,
    /// Namespaces as metadata (their labels decide ClusterAuthProfile selection): every one,
    /// or only the scope's own.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// The controller's Secrets, metadata only.
    pub secrets: Store<PartialObjectMeta<Secret>>,
}

/// The operator's flags that shape the Identity reconcile (beyond what profiles may ask for).
#[derive(Clone, Debug)]
pub struct Options {
    /// How long an Identity's Secrets keep their credentials once its profile is gone
    /// (`--profile-deletion-grace`): a GitOps delete-and-recreate within it changes nothing.
    pub profile_deletion_grace: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            profile_deletion_grace: crate::settings::PROFILE_DELETION_GRACE,
        }
    }
}

/// What this process remembers of its own work.
#[derive(Default)]
pub struct Memory {
    /// Per Identity, the record of the Secret write this process made that no status write
    /// has recorded yet.
    pub written: Written,
    /// By Secret name, the Secrets this process wrote that the watch cache may not show yet.
    pub secret_writes: crate::output::secret::SecretWrites,
    /// Per Identity, the restores of its Secret (spaced out so two writers cannot fight).
    pub restores: ByName<Restores>,
    /// Per Identity, when it was last refreshed without its spec or schedule asking.
    pub unrequested: ByName<Timestamp>,
    /// Per Identity, its current run of failed refreshes: (reason, Warning Event, count).
    pub failures: ByName<(String, String, i32)>,
    /// Statuses this process wrote that the cache may not show yet.
    pub statuses: StatusesWritten,
    /// Sessions obtained whose Secret write failed, for the retry.
    pub unwritten: Unwritten,
    /// Workloads restarted for new credentials, and restarts deferred.
    pub restarts: super::restarts::Restarts,
    /// When this process first found each Identity's profile missing: its Secrets are
    /// emptied a grace period later. Forgotten once the profile is back (a restart starts
    /// the grace period again: later, never sooner).
    pub profile_missing: ByName<Timestamp>,
}

/// The services outside the reconcile, one each per process (shared by every scope).
pub struct Services {
    /// API client.
    pub client: Client,
    /// Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The credential exchange (STS, its session cache and rate limit).
    pub exchanger: Arc<Exchanger>,
    /// Registry logins (ECR), through the same rate limit.
    pub ecr: Arc<crate::exchange::ecr::EcrExchanger>,
    /// Entra's token endpoint, to verify Azure federations.
    pub entra: Arc<crate::exchange::azure::EntraExchanger>,
    /// Google STS and IAM Credentials, to verify GCP federations.
    pub gcp: Arc<crate::exchange::gcp::GcpExchanger>,
    /// How often a settings-only Azure or GCP Secret's federation is verified again.
    pub azure_reverify_interval: std::time::Duration,
    /// The exchange's budget: turns for reconciles (the fair queue) and the rate limit.
    pub budget: Arc<Budget>,
    /// Whether the admission policies are in force (first issues wait for them).
    pub admission: Arc<super::admission::Admission>,
}

impl Context {
    /// The context of one scope: its `stores`, the process's `services`, `settings` and
    /// `options`, and the scope's readiness flag `synced`.
    pub fn new(
        stores: Stores,
        services: Services,
        (settings, options): (Settings, Options),
        synced: Arc<AtomicBool>,
    ) -> Self {
        Self {
            stores,
            memory: Memory::default(),
            services,
            settings,
            options,
            synced,
        }
    }

    /// A context for unit tests: `client` (a scripted API), `stores`, default settings, a
    /// gate of one slot, no STS endpoint (tests pass their own exchange), caches synced.
    #[cfg(test)]
    pub fn test(client: Client, stores: Stores, metrics: Arc<Metrics>) -> Self {
        use crate::exchange::sts::StsSettings;
        let recorder = Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: "atmos-auth-controller".into(),
                instance: None,
            },
        );
        let budget = Arc::new(Budget::new(1, Default::default()));
        let services = Services {
            client,
            recorder,
            metrics,
            exchanger: Arc::new(Exchanger::new(StsSettings::default(), (budget.limiter(), None), None)),
            ecr: Arc::new(crate::exchange::ecr::EcrExchanger::new(
                Default::default(),
                budget.limiter(),
            )),
            entra: Arc::new(
                crate::exchange::azure::EntraExchanger::new(
                    (budget.limiter(), None),
                    std::time::Duration::from_secs(5),
                    None,
                )
                .expect("an Entra client without extra CAs"),
            ),
            gcp: Arc::new(
                crate::exchange::gcp::GcpExchanger::new(
                    (budget.limiter(), None),
                    std::time::Duration::from_secs(5),
                    None,
                )
                .expect("a GCP client without extra CAs"),
            ),
            azure_reverify_interval: std::time::Duration::from_secs(3600),
            budget,
            admission: super::admission::Admission::enforced(),
        };
        Self::new(
            stores,
            services,
            (Settings::default(), Options::default()),
            Arc::new(AtomicBool::new(true)),
        )
    }
}

/// The last status this process wrote per Identity, with the resourceVersion the write
/// returned, until the Identity watch delivers that version: a reconcile that runs in
/// between (its Secret's watch event came first) starts from it, not from the older cached
/// status, and so does not write the same status again.
#[derive(Default)]
pub struct StatusesWritten(ByName<(u64, IdentityStatus)>);

/// A resourceVersion as a number. They are etcd revisions, which only grow; one that is not
/// a number counts as newer than anything remembered, so the cache is trusted.
fn revision(rv: Option<&str>) -> u64 {
    rv.and_then(|v| v.parse().ok()).unwrap_or(u64::MAX)
}

impl StatusesWritten {
    /// Records a status write that the API server answered with `rv`.
    pub fn wrote(&self, key: Key, rv: Option<&str>, status: IdentityStatus) {
        let rv = revision(rv);
        if rv != u64::MAX {
            self.0.insert(key, (rv, status));
        }
    }

    /// The status written last, if the object a reconcile was handed (at `cached_rv`) is
    /// older than it; once one is as new, the write is forgotten. (Not when the watch
    /// delivers it: a reconcile may have been handed its object before that.)
    pub fn newer_than(&self, key: &Key, cached_rv: Option<&str>) -> Option<IdentityStatus> {
        self.0.with(|s| {
            let (rv, status) = s.get(key)?;
            if revision(cached_rv) < *rv {
                return Some(status.clone());
            }
            s.remove(key);
            None
        })
    }
}

/// Per Identity, the sessions of a refresh whose Secret write failed (an API server or etcd
/// outage), with the spec hash they were made for: the retry writes them instead of calling
/// STS again, while they are before their renewal point. Empty unless writes fail.
#[derive(Default)]
pub struct Unwritten(ByName<(String, Vec<Session>)>);

impl Unwritten {
    /// Keeps `sessions`, made for spec `hash`, for `key`'s next attempt.
    pub fn keep(&self, key: Key, hash: &str, sessions: Vec<Session>) {
        self.0.insert(key, (hash.to_owned(), sessions));
    }

    /// Takes `key`'s kept sessions if they were made for `hash` and are all still usable
    /// at `now`; anything else kept for `key` is dropped.
    pub fn take(&self, key: &Key, hash: &str, now: Timestamp) -> Option<Vec<Session>> {
        let (h, sessions) = self.0.remove(key)?;
        (h == hash && sessions.iter().all(|s| s.usable_at(now))).then_some(sessions)
    }
}

impl Context {
    /// Identity `key` is gone: drop everything the process remembers of it (metric series,
    /// last status written, sessions left unwritten).
    pub fn forget_identity(&self, key: &Key) {
        self.services.metrics.gone(&key.0, &key.1);
        self.memory.statuses.0.remove(key);
        self.memory.unwritten.0.remove(key);
        self.memory.profile_missing.remove(key);
        self.memory.restarts.forget(key);
        self.memory.written.remove(key);
        self.memory.restores.remove(key);
        self.memory.unrequested.remove(key);
        self.memory.failures.remove(key);
    }

    /// The same for every Identity for which `keep(namespace, name)` is false (after a
    /// re-list: those deleted while the watch was down).
    pub fn retain_identities(&self, keep: impl Fn(&str, &str) -> bool) {
        self.services.metrics.retain(&keep);
        self.memory.statuses.0.retain(&keep);
        self.memory.unwritten.0.retain(&keep);
        self.memory.profile_missing.retain(&keep);
        self.memory.restarts.retain(&keep);
        self.memory.written.retain(&keep);
        self.memory.restores.retain(&keep);
        self.memory.unrequested.retain(&keep);
        self.memory.failures.retain(&keep);
    }

    /// Whether the profile and namespace caches have synced.
    pub fn profiles_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_status_counts_until_the_cache_shows_its_version() {
        let w = StatusesWritten::default();
        let key = ("ns".to_owned(), "a".to_owned());
        let status = IdentityStatus {
            secret_name: Some("s".into()),
            ..Default::default()
        };
        w.wrote(key.clone(), Some("120"), status.clone());
        assert_eq!(w.newer_than(&key, Some("100")), Some(status.clone()));
        assert_eq!(w.0.len(), 1, "an older version does not include the write");
        assert_eq!(w.newer_than(&key, Some("120")), None);
        assert!(w.0.is_empty(), "forgotten once an object as new was seen");
        assert_eq!(w.newer_than(&key, Some("100")), None);
        w.wrote(key.clone(), Some("130"), status);
        w.0.remove(&key);
        assert!(w.0.is_empty());
    }

    #[test]
    fn unwritten_sessions_serve_one_retry_of_the_same_spec_while_usable() {
        let issued: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let session = Session {
            credentials: crate::exchange::credentials::Credentials {
                access_key_id: "ASIA".into(),
                secret_access_key: "s".into(),
                session_token: "t".into(),
                expiration: "2026-01-01T01:00:00Z".parse().unwrap(),
            },
            assumed_role_arn: "arn".into(),
            session_name: "n".into(),
            issued,
        };
        let u = Unwritten::default();
        let key = ("ns".to_owned(), "a".to_owned());
        let soon: Timestamp = "2026-01-01T00:00:15Z".parse().unwrap();
        u.keep(key.clone(), "h1", vec![session.clone()]);
        assert!(u.take(&key, "h1", soon).is_some());
        assert!(u.take(&key, "h1", soon).is_none(), "taken once");
        // Another spec, or past the renewal point (40 minutes into the hour): not reused.
        u.keep(key.clone(), "h1", vec![session.clone()]);
        assert!(u.take(&key, "h2", soon).is_none());
        assert!(u.take(&key, "h1", soon).is_none(), "a mismatch drops it");
        u.keep(key.clone(), "h1", vec![session]);
        assert!(u.take(&key, "h1", "2026-01-01T00:40:00Z".parse().unwrap()).is_none());
    }
}
