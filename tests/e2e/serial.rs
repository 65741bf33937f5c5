//! The heavy tests (fleets, private control planes, kills, leader election) take this lock
//! so they run one at a time while the light ones run beside them: together they would
//! compete for the machine's two cores and stretch each other's timing bounds.

use std::time::Instant;

use tokio::sync::{Mutex, MutexGuard};

static HEAVY: Mutex<()> = Mutex::const_new(());

/// The lock, held for the whole of a heavy test.
pub struct Heavy {
    _guard: MutexGuard<'static, ()>,
    since: Instant,
}

/// Takes the lock. A tokio mutex: each test has its own runtime, and a failed test releases
/// it without poisoning it for the next.
pub async fn heavy() -> Heavy {
    let waited = Instant::now();
    let guard = HEAVY.lock().await;
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!("HEAVY {test}: waited {:.1} s for the lock", waited.elapsed().as_secs_f64());
    Heavy {
        _guard: guard,
        since: Instant::now(),
    }
}

impl Drop for Heavy {
    fn drop(&mut self) {
        // With --nocapture: what the heavy tests cost, one after another (the suite's floor).
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        eprintln!("HEAVY {test}: held the lock {:.1} s", self.since.elapsed().as_secs_f64());
    }
}

/// A fleet's size: `var` from the environment, else `ci` (small enough for CI; the
/// per-Identity counts the tests assert hold at any size). Larger runs are soak runs, e.g.
/// `E2E_SCALE_IDENTITIES=1000 E2E_LEADER_BURST=500 cargo test --test e2e -- scale restarts`.
pub fn fleet_size(var: &str, ci: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(ci)
}
