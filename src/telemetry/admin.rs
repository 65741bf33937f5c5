//! The admin server: liveness, readiness and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::Metrics;

/// Readiness flags shared with the controllers.
#[derive(Default)]
pub struct Health {
    caches_synced: AtomicBool,
    /// True when this replica does not lead, or leads and its controllers run.
    serving: AtomicBool,
}

impl Health {
    /// The informer caches have synced.
    pub fn set_synced(&self) {
        self.caches_synced.store(true, Ordering::SeqCst);
    }

    /// Whether this replica can do its part (standby or running leader).
    pub fn set_serving(&self, v: bool) {
        self.serving.store(v, Ordering::SeqCst);
    }

    /// Ready to receive traffic.
    pub fn ready(&self) -> bool {
        self.caches_synced.load(Ordering::SeqCst) && self.serving.load(Ordering::SeqCst)
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
