//! The `/metrics` server. It lists every namespace, Identity and expiry, so by default it is
//! served over HTTPS only, to callers Kubernetes authenticates (TokenReview of their bearer
//! token) and authorizes (SubjectAccessReview: `get` on the non-resource URL `/metrics`), as
//! controller-runtime's secure metrics server does; Prometheus binds the chart's
//! `-metrics-reader` ClusterRole. The certificate comes from `--metrics-cert-dir`
//! (`tls.crt`, `tls.key`), else is made at start (self-signed). `--metrics-plain` serves it
//! over plain HTTP to anyone, for clusters that want that. The probes are on the admin
//! address, plain, apart.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::telemetry::Metrics;

/// How `/metrics` is served.
#[derive(Clone, Debug)]
pub struct MetricsServing {
    /// Its address.
    pub addr: SocketAddr,
    /// Plain HTTP, no authentication (`--metrics-plain`).
    pub plain: bool,
    /// `tls.crt` and `tls.key` here; `None`: a self-signed certificate made at start.
    pub cert_dir: Option<std::path::PathBuf>,
}

#[derive(Clone)]
struct MetricsState {
    metrics: Arc<Metrics>,
    /// Asks the API server who a caller is and what it may do; `None`: plain, no checks.
    client: Option<Client>,
}

/// Serves `/metrics` as `serving` says until `shutdown` resolves.
pub async fn serve(
    serving: MetricsServing,
    client: Client,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let tcp = tokio::net::TcpListener::bind(serving.addr).await?;
    if serving.plain {
        let app = router(MetricsState { metrics, client: None });
        tracing::warn!(addr = %serving.addr, "metrics served over plain HTTP to anyone (--metrics-plain)");
        return axum::serve(tcp, app).with_graceful_shutdown(shutdown).await;
    }
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(serving.cert_dir.as_deref())?));
    let app = router(MetricsState {
        metrics,
        client: Some(client),
    });
    tracing::info!(addr = %serving.addr, "metrics served over HTTPS to authorized callers");
    axum::serve(TlsListener { tcp, acceptor }, app)
        .with_graceful_shutdown(shutdown)
        .await
}

fn router(state: MetricsState) -> Router {
    Router::new().route("/metrics", get(metrics_text)).with_state(state)
}

async fn metrics_text(State(s): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(client) = &s.client
        && let Err((code, why)) = authorize(client, &headers).await
    {
        return (code, why).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

/// Whether the caller's bearer token belongs to someone allowed `get` on `/metrics`.
async fn authorize(client: &Client, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or((StatusCode::UNAUTHORIZED, "a bearer token is required".to_owned()))?;
    let unavailable = |e: kube::Error| {
        tracing::warn!(error = %e, "metrics: the API server did not answer a review");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the API server did not answer".to_owned(),
        )
    };
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(unavailable)?
        .status
        .unwrap_or_default();
    let Some(user) = reviewed.user.filter(|_| reviewed.authenticated == Some(true)) else {
        return Err((StatusCode::UNAUTHORIZED, "the token was not accepted".to_owned()));
    };
    let access = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            groups: user.groups,
            uid: user.uid,
            extra: user.extra,
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some("/metrics".to_owned()),
                verb: Some("get".to_owned()),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let allowed = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &access)
        .await
        .map_err(unavailable)?
        .status
        .is_some_and(|s| s.allowed);
    if allowed {
        Ok(())
    } else {
        let who = user.username.unwrap_or_default();
        Err((
            StatusCode::FORBIDDEN,
            format!("{who} may not get /metrics (bind the chart's -metrics-reader ClusterRole)"),
        ))
    }
}

/// The server's TLS: the certificate in `dir`, else a self-signed one.
fn tls_config(dir: Option<&Path>) -> io::Result<ServerConfig> {
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let (certs, key) = match dir {
        Some(dir) => {
            let certs = CertificateDer::pem_file_iter(dir.join("tls.crt"))
                .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad(format!("{}: {e}", dir.join("tls.crt").display())))?;
            let key = PrivateKeyDer::from_pem_file(dir.join("tls.key"))
                .map_err(|e| bad(format!("{}: {e}", dir.join("tls.key").display())))?;
            (certs, key)
        }
        None => {
            let made =
                rcgen::generate_simple_self_signed(vec!["atmos-auth-controller".to_owned(), "localhost".to_owned()])
                    .map_err(|e| bad(format!("making a self-signed certificate: {e}")))?;
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
            (vec![made.cert.der().clone()], key)
        }
    };
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| bad(format!("TLS configuration: {e}")))
}

/// TCP connections after their TLS handshake; a failed handshake drops only that connection.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(e)) => tracing::debug!(error = %e, "metrics: TLS handshake failed"),
                Err(_) => tracing::debug!("metrics: TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
