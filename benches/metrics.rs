//! Metrics memory benchmark: what the series of N Identities cost in the exporter's
//! registry, measured by a counting allocator (bytes live on the heap), and how large a
//! scrape is. The Identities' series: expiry and renewal time (two per Identity, before
//! this round) and the Ready status (one per Identity); the other new series (exchanges by
//! result, the renewal-delay histogram, late renewals, leader) are a fixed handful whatever N.
//!
//! `cargo bench --bench metrics` (`METRICS_IDENTITIES`, default 10 000)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use atmos_auth_controller::telemetry::{IdentityLabels, Metrics};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let n: usize = std::env::var("METRICS_IDENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // Names as a fleet has them: 100 namespaces, Identity names of 12 characters.
    let who = |i: usize| (format!("team-{:03}", i % 100), format!("app-{i:08}"));
    let metrics = Metrics::default();
    let empty = live();
    for i in 0..n {
        let (namespace, name) = who(i);
        let labels = IdentityLabels {
            namespace,
            name,
            identity: "acme/admin".into(),
        };
        metrics.schedule(&labels, 1_800_000_000, 1_799_998_800);
    }
    let scheduled = live();
    for i in 0..n {
        let (namespace, name) = who(i);
        // A tenth not Ready, with an STS error code as reason.
        let (ok, reason) = if i % 10 == 0 {
            (false, "AccessDenied")
        } else {
            (true, "CredentialsIssued")
        };
        metrics.ready(&namespace, &name, ok, reason);
    }
    let with_ready = live();
    for result in ["ok", "throttled", "refused", "unavailable", "error"] {
        metrics.exchanged("aws", result);
    }
    metrics.renewal_served(10, 0, 60);
    metrics.leading(true);
    let all = live();
    let text = metrics.encode();
    let mib = |b: isize| b as f64 / (1024.0 * 1024.0);
    println!("Identities: {n}");
    println!(
        "expiry + renewal series (2 per Identity, existing): {:.1} MiB ({} B per Identity)",
        mib(scheduled - empty),
        (scheduled - empty) / n as isize
    );
    println!(
        "ready status series (1 per Identity, new): {:.1} MiB ({} B per Identity)",
        mib(with_ready - scheduled),
        (with_ready - scheduled) / n as isize
    );
    println!("other new series (fixed count): {} B", all - with_ready);
    println!(
        "scrape: {:.1} MiB of text, {} lines",
        mib(text.len() as isize),
        text.lines().count()
    );
}
