//! Stopping: SIGTERM/SIGINT finish in-flight work and stop; losing the leadership Lease
//! exits at once.

use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Error;

/// A stop request, shared by every part of the process (controllers, admin server).
#[derive(Clone)]
pub struct Shutdown {
    signaled: Shared<BoxFuture<'static, ()>>,
}

impl Shutdown {
    /// Stops on SIGTERM or SIGINT.
    pub fn on_signals() -> Self {
        let (tx, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term => {},
            }
            tracing::info!("shutting down: finishing in-flight work");
            let _ = tx.send(true);
            // Keep the sender: dropping it would not wake anyone who waits for `true`.
            std::future::pending::<()>().await;
        });
        Self {
            signaled: async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
            .boxed()
            .shared(),
        }
    }

    /// Resolves once a stop was asked; cheap to clone, as the controllers need.
    pub fn signaled(&self) -> Shared<BoxFuture<'static, ()>> {
        self.signaled.clone()
    }
}

/// Where the leadership Lease lives and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
}

/// Leadership on a Lease: a standby holds no caches and reconciles nothing until it leads.
pub struct Leadership {
    leading: watch::Receiver<bool>,
    lease: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    on_loss: Option<JoinHandle<()>>,
}

impl Leadership {
    /// Joins the election. A 12 s lease renewed when 5 s remain: a standby takes over within
    /// 15 s of a crash, and a busy leader has time to renew.
    pub async fn join(client: &Client, lease: &LeaseConfig, instance: &str) -> Result<Self, Error> {
        let manager = LeaseManagerBuilder::new(client.clone(), &lease.name)
            .with_namespace(lease.namespace.clone())
            .with_identity(instance.to_owned())
            .with_duration(12)
            .with_grace(5)
            .with_create_mode(LeaseCreateMode::AutoCreate)
            .build()
            .await
            .map_err(|e| Error::Leader(e.to_string()))?;
        let (leading, lease) = manager.watch().await;
        Ok(Self {
            leading,
            lease,
            on_loss: None,
        })
    }

    /// Waits until this replica leads (true) or a stop is asked first (false). From then on,
    /// losing the Lease exits the process at once: the new leader may already be writing,
    /// and two writers would renew twice. The process restarts as a standby.
    pub async fn lead(&mut self, shutdown: &Shutdown) -> Result<bool, Error> {
        tokio::select! {
            r = self.leading.wait_for(|l| *l) => { r.map_err(|_| Error::Leader("leader election stopped".into()))?; }
            _ = shutdown.signaled() => return Ok(false),
        }
        let mut leading = self.leading.clone();
        let stop = shutdown.signaled();
        self.on_loss = Some(tokio::spawn(async move {
            tokio::select! {
                _ = stop => {},
                _ = leading.wait_for(|l| !*l) => {
                    tracing::error!("leadership lost: exiting");
                    std::process::exit(1);
                },
            }
        }));
        Ok(true)
    }

    /// Releases the Lease (after the controllers stopped) for a fast hand-over.
    pub async fn release(self) {
        if let Some(task) = self.on_loss {
            let _ = task.await;
        }
        // Dropping the last receiver makes the lease task release the lock.
        drop(self.leading);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.lease).await;
    }
}
