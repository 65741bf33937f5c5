//! The admin server: liveness, readiness and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::Metrics;

/// Readiness shared with the controllers.
#[derive(Default)]
pub struct Health {
    leading: AtomicBool,
    /// Watch scopes (namespaces) whose caches have not synced yet.
    unsynced: AtomicUsize,
}

impl Health {
    /// This replica runs the controllers (it leads, or leader election is off) over `scopes`
    /// watch scopes, each of which reports [`Health::scope_synced`] once.
    pub fn set_leading(&self, scopes: usize) {
        self.unsynced.store(scopes, Ordering::SeqCst);
        self.leading.store(true, Ordering::SeqCst);
    }

    /// One scope's caches have synced.
    pub fn scope_synced(&self) {
        let _ = self
            .unsynced
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Ready: a standby is ready to take over as soon as it runs; a leader once the caches of
    /// every scope have synced.
    pub fn ready(&self) -> bool {
        !self.leading.load(Ordering::SeqCst) || self.unsynced.load(Ordering::SeqCst) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn a_leader_is_ready_once_every_scope_has_synced() {
        let h = Health::default();
        assert!(h.ready(), "a standby is ready");
        h.set_leading(2);
        assert!(!h.ready());
        h.scope_synced();
        assert!(!h.ready());
        h.scope_synced();
        assert!(h.ready());
    }
}

#[derive(Clone)]
struct AdminState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { health, metrics });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "admin server listening");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    if s.health.ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics_text(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}
