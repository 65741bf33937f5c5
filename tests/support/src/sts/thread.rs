//! An axum server on a thread of its own with its own Tokio runtime, so it outlives the
//! runtimes of the tests that use it. Optionally behind TLS.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

pub struct ServerThread {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// In a mutex only so that the server can live in a `static` (`Receiver` is not `Sync`).
    stopped: Mutex<Option<mpsc::Receiver<()>>>,
    thread: Option<JoinHandle<()>>,
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let handshake = self.acceptor.accept(stream);
            match tokio::time::timeout(Duration::from_secs(5), handshake).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl ServerThread {
    pub fn spawn(name: &str, listener: TcpListener, app: Router, tls: Option<TlsAcceptor>) -> Result<Self> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .with_context(|| format!("building the {name} runtime"))?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (stopped_tx, stopped_rx) = mpsc::channel();
        let thread_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let served = runtime.block_on(async move {
                    let tcp = tokio::net::TcpListener::from_std(listener)?;
                    let shutdown = async {
                        let _ = shutdown_rx.await;
                    };
                    match tls {
                        None => axum::serve(tcp, app).with_graceful_shutdown(shutdown).await,
                        Some(acceptor) => {
                            axum::serve(TlsListener { tcp, acceptor }, app)
                                .with_graceful_shutdown(shutdown)
                                .await
                        }
                    }
                });
                if let Err(err) = served {
                    tracing::error!(server = thread_name, error = %err, "server stopped");
                }
                runtime.shutdown_timeout(Duration::from_secs(1));
                let _ = stopped_tx.send(());
            })
            .with_context(|| format!("spawning the {name} thread"))?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown_tx),
            stopped: Mutex::new(Some(stopped_rx)),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Wait a little for the port to be released, but never hang a test on it.
        let stopped = self
            .stopped
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(stopped) = stopped
            && stopped.recv_timeout(Duration::from_secs(3)).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// A TLS acceptor serving `cert` (PEM certificate and PKCS#8 key), with ring as kube's and
/// the AWS SDK's TLS.
pub fn tls_acceptor(cert: &crate::certs::CertKey) -> Result<TlsAcceptor> {
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading the server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).context("reading the server key")?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("building the TLS config")?;
    Ok(TlsAcceptor::from(std::sync::Arc::new(config)))
}
