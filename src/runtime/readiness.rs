//! Readiness: one flag per watch scope, set once that scope's caches have synced. The same
//! flag gates the scope's reconciles (before it, "profile not found" would be a false alarm)
//! and feeds `/readyz`, so the two can never disagree; `/readyz` also names the watches that
//! have not listed yet, and why ([`Watches`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::controller::Watches;

/// Whether this process is ready: a standby is ready to take over as soon as it runs; a
/// process running the controllers once the cache of every scope has synced.
#[derive(Default)]
pub struct Readiness {
    leading: AtomicBool,
    scopes: Mutex<Vec<Arc<AtomicBool>>>,
    /// Every watch of the process, with its health.
    watches: Arc<Watches>,
}

impl Readiness {
    /// A new scope's flag, not yet synced. Register every scope before [`Self::set_leading`].
    pub fn scope(&self) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.lock().push(flag.clone());
        flag
    }

    /// This process runs the controllers (it leads, or leader election is off).
    pub fn set_leading(&self) {
        self.leading.store(true, Ordering::SeqCst);
    }

    /// Ready to serve traffic (see the type's doc).
    pub fn ready(&self) -> bool {
        !self.leading.load(Ordering::SeqCst) || self.lock().iter().all(|s| s.load(Ordering::SeqCst))
    }

    /// The process's watches, which report their health here.
    pub fn watches(&self) -> Arc<Watches> {
        self.watches.clone()
    }

    /// `/readyz`'s answer: `Ok`, or what it waits for (the watches not listed yet, and why).
    pub fn report(&self) -> Result<(), String> {
        if self.ready() {
            return Ok(());
        }
        let waiting = self.watches.not_synced();
        if waiting.is_empty() {
            return Err("not ready: the caches are syncing".to_owned());
        }
        Err(format!(
            "not ready: waiting for these watches to list:\n{}",
            waiting.join("\n")
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<AtomicBool>>> {
        // A panic while holding this lock cannot leave the list half-updated.
        self.scopes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Marks `flag` synced once the scope's caches (AuthProfiles, ClusterAuthProfiles,
/// namespaces, and the Secrets, without which a restart would GET every Secret) have synced.
/// The only waiter on each store's readiness: kube's readiness future keeps one waker, so
/// concurrent waiters can sleep forever.
pub fn mark_when_synced(caches: &crate::controller::Caches, flag: Arc<AtomicBool>) {
    let (profiles, secrets) = (caches.profiles.clone(), caches.secrets.clone());
    let (cluster, namespaces) = (caches.cluster.profiles.clone(), caches.cluster.namespaces.clone());
    tokio::spawn(async move {
        if profiles.synced().await
            && secrets.wait_until_ready().await.is_ok()
            && crate::controller::ClusterCaches::synced(cluster, namespaces).await
        {
            flag.store(true, Ordering::SeqCst);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::Readiness;

    #[test]
    fn a_leader_is_ready_once_every_scope_has_synced() {
        let r = Readiness::default();
        let (a, b) = (r.scope(), r.scope());
        assert!(r.ready(), "a standby is ready");
        r.set_leading();
        assert!(!r.ready());
        a.store(true, Ordering::SeqCst);
        assert!(!r.ready());
        b.store(true, Ordering::SeqCst);
        assert!(r.ready());
    }
}
