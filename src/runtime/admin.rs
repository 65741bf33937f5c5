//! The admin server: liveness and readiness, plain HTTP for the kubelet's probes. `/metrics`
//! is served apart ([`super::metrics_server`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use super::Readiness;

#[derive(Clone)]
struct AdminState {
    readiness: Arc<Readiness>,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState { readiness });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "admin server listening");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    match s.readiness.report() {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}
