//! The heavy tests take a lock so they run one at a time while the light ones run beside
//! them: together they would compete for the machine's two cores and stretch each other's
//! timing bounds. Two locks: one for those on the shared API server (fleets, kills, leader
//! election), one for those that start a control plane of their own (API server and etcd
//! restarts, the deep-profile check). A test of each kind may run at once: they share no
//! API server, and the suite's floor is the longer of the two queues, not their sum.

use std::time::Instant;

use tokio::sync::{Mutex, MutexGuard};

static HEAVY: Mutex<()> = Mutex::const_new(());
static OWN_CONTROL_PLANE: Mutex<()> = Mutex::const_new(());

/// The lock, held for the whole of a heavy test.
pub struct Heavy {
    _guard: MutexGuard<'static, ()>,
    since: Instant,
}

/// Takes the lock. A tokio mutex: each test has its own runtime, and a failed test releases
/// it without poisoning it for the next.
pub async fn heavy() -> Heavy {
    take(&HEAVY).await
}

/// The lock of the tests that start a control plane of their own.
pub async fn own_control_plane() -> Heavy {
    take(&OWN_CONTROL_PLANE).await
}

async fn take(lock: &'static Mutex<()>) -> Heavy {
    let waited = Instant::now();
    let guard = lock.lock().await;
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!(
        "HEAVY {test}: waited {:.1} s for the lock",
        waited.elapsed().as_secs_f64()
    );
    Heavy {
        _guard: guard,
        since: Instant::now(),
    }
}

impl Drop for Heavy {
    fn drop(&mut self) {
        // With --nocapture: what the heavy tests cost, one after another (the suite's floor).
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        eprintln!(
            "HEAVY {test}: held the lock {:.1} s",
            self.since.elapsed().as_secs_f64()
        );
    }
}

/// A fleet's size: `var` from the environment, else `ci` (small enough for CI; the
/// per-Identity counts the tests assert hold at any size). Larger runs are soak runs, e.g.
/// `E2E_SCALE_IDENTITIES=1000 E2E_LEADER_BURST=500 cargo test --test e2e -- scale restarts`.
pub fn fleet_size(var: &str, ci: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(ci)
}
