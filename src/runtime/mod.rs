//! The process around the controllers, in the manner of Linkerd's kubert: one kube client,
//! one [`Readiness`], one [`Shutdown`], one STS [`Exchanger`] and one metrics registry per
//! process, the admin server (`/healthz`, `/readyz`, `/metrics`) and leader election.
//! `cli::run` only turns flags into a [`Config`].

mod admin;
mod metrics_server;
mod readiness;
mod shutdown;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::events::Reporter;
use kube::{Client, Config as KubeConfig};

use crate::controller::admission::Admission;
use crate::controller::{self, ClusterContext, Context, Recorder, Scope, Services, Skipped, Tuning, WatchReports};
use crate::exchange::Budget;
use crate::exchange::azure::EntraExchanger;
use crate::exchange::sts::{CallObserver, Exchanger, StsSettings};
use crate::settings::{self, AWS_MIN_SESSION_SECONDS, Settings, SettingsError};
use crate::telemetry::Metrics;
pub use metrics_server::MetricsServing;
pub use readiness::{Readiness, mark_when_synced};
pub use shutdown::{Leadership, LeaseConfig, Shutdown};

/// Why the process could not run (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig or in-cluster configuration.
    #[error("kubernetes client configuration: {0}")]
    Kubeconfig(String),
    /// A setting refused.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// An Azure setting refused.
    #[error("{0}")]
    Azure(String),
    /// Leader election failed.
    #[error("leader election: {0}")]
    Leader(String),
    /// The admin server failed.
    #[error("admin server: {0}")]
    Admin(std::io::Error),
}

/// Everything the process needs, resolved from flags.
#[derive(Clone, Debug)]
pub struct Config {
    /// Kubeconfig file; `None`: `KUBECONFIG`, `~/.kube/config`, then in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    /// What profiles may ask for.
    pub settings: Settings,
    /// Where and how STS is called.
    pub sts: StsSettings,
    /// Where registry logins (ECR, ECR Public) are made.
    pub ecr: crate::exchange::ecr::EcrSettings,
    /// Namespaces to watch; empty: all.
    pub namespaces: Vec<String>,
    /// Whether this process writes ClusterAuthProfile status.
    pub cluster_profile_status: bool,
    /// Address of `/healthz` and `/readyz` (plain HTTP).
    pub admin_addr: SocketAddr,
    /// How `/metrics` is served.
    pub metrics: MetricsServing,
    /// The leadership Lease; `None`: no election, this replica runs the controllers.
    pub lease: Option<LeaseConfig>,
    /// This replica's name in the Lease and in Events.
    pub instance: String,
    /// Identity reconciles at once; also the STS refreshes in flight at once.
    pub concurrency: u16,
    /// How long an Identity's Secrets keep their credentials once its profile is gone.
    pub profile_deletion_grace: Duration,
    /// The admission policies checked, and whether their absence is accepted.
    pub admission: AdmissionConfig,
    /// How Entra is called.
    pub azure: AzureConfig,
}

/// How Entra is called (its hosts are settings: `--azure-authority-host`).
#[derive(Clone, Debug)]
pub struct AzureConfig {
    /// Extra CAs trusted for the authority hosts (already checked to parse).
    pub ca_pem: Option<String>,
    /// How often a settings-only Secret's federation is verified again.
    pub reverify_interval: Duration,
    /// Budget for one token request.
    pub timeout: Duration,
    /// Extra CAs trusted for Google STS and IAM Credentials (`--gcp-ca-file`); GCP
    /// federations share the re-verify interval and timeout above.
    pub gcp_ca_pem: Option<String>,
}

/// Which admission policies the controller checks, and how.
#[derive(Clone, Debug)]
pub struct AdmissionConfig {
    /// Their names start with this (the chart's full name), then `-identity-serviceaccount`, ...
    pub prefix: String,
    /// Serve first issues and spec changes even when they are not in force.
    pub allow_unenforced: bool,
    /// How often they are checked.
    pub interval: Duration,
}

/// Runs the controllers until SIGTERM or SIGINT (or exits on leadership loss).
pub async fn run(config: Config) -> Result<(), Error> {
    let client = client(config.kubeconfig.clone()).await?;
    settings::check_audiences(&config.settings.allowed_audiences, issuer(&client).await.as_deref())?;
    if config.settings.min_session_seconds < AWS_MIN_SESSION_SECONDS {
        tracing::warn!(
            seconds = config.settings.min_session_seconds,
            "test setting: sessions shorter than AWS's 15 minutes are allowed"
        );
    }
    let metrics = Arc::new(Metrics::default());
    let readiness = Arc::new(Readiness::default());
    let shutdown = Shutdown::on_signals();
    let admin = tokio::spawn(admin::serve(config.admin_addr, readiness.clone(), shutdown.signaled()));
    let serving = metrics_server::serve(
        config.metrics.clone(),
        client.clone(),
        metrics.clone(),
        shutdown.signaled(),
    );
    tokio::spawn(async move {
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });

    let mut leadership = match &config.lease {
        Some(lease) => Some(Leadership::join(&client, lease, &config.instance).await?),
        None => None,
    };
    if let Some(l) = leadership.as_mut() {
        tracing::info!(instance = %config.instance, "waiting for leadership");
        if !l.lead(&shutdown).await? {
            return finish(admin).await;
        }
        tracing::info!(instance = %config.instance, "leading");
    }

    metrics.leading(true);
    controllers(&config, &client, &readiness, &metrics, &shutdown).await;
    metrics.leading(false);
    if let Some(l) = leadership {
        l.release().await;
    }
    finish(admin).await
}

/// Runs the controllers of every scope, and the ClusterAuthProfile status controller if this
/// process writes it, on the process's one client, budget, exchanger and ClusterAuthProfile
/// watch, until `shutdown`.
async fn controllers(
    config: &Config,
    client: &Client,
    readiness: &Readiness,
    metrics: &Arc<Metrics>,
    shutdown: &Shutdown,
) {
    let config = config.clone();
    let (client, metrics) = (client.clone(), metrics.clone());
    let scopes: Vec<Scope> = if config.namespaces.is_empty() {
        vec![Scope::Cluster]
    } else {
        config.namespaces.iter().cloned().map(Scope::Namespace).collect()
    };
    let synced: Vec<_> = scopes.iter().map(|_| readiness.scope()).collect();
    readiness.set_leading();
    // One budget for the process: the STS quota it guards is the account's, whatever the
    // scopes.
    let budget = Arc::new(Budget::new(usize::from(config.concurrency), config.sts.limit));
    budget.observe(metrics.clone());
    let exchanger = Arc::new(Exchanger::new(
        config.sts.clone(),
        (budget.limiter(), Some(budget.reports())),
        Some(metrics.clone() as Arc<dyn CallObserver>),
    ));
    let ecr = Arc::new(crate::exchange::ecr::EcrExchanger::new(
        config.ecr.clone(),
        budget.limiter(),
    ));
    let entra = match EntraExchanger::new(
        (budget.limiter(), Some(budget.reports())),
        config.azure.timeout,
        config.azure.ca_pem.as_deref(),
    ) {
        Ok(entra) => Arc::new(entra),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Entra client; Azure Identities will fail");
            return;
        }
    };
    let gcp = match crate::exchange::gcp::GcpExchanger::new(
        (budget.limiter(), Some(budget.reports())),
        config.azure.timeout,
        config.azure.gcp_ca_pem.as_deref(),
    ) {
        Ok(gcp) => Arc::new(gcp),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the GCP client; GCP Identities will fail");
            return;
        }
    };
    tokio::spawn({
        let budget = budget.clone();
        async move { budget.dispatch().await }
    });
    let a = &config.admission;
    let admission = Admission::new(&a.prefix, a.allow_unenforced, a.interval);
    tokio::spawn(controller::admission::run(
        admission.clone(),
        client.clone(),
        metrics.clone(),
    ));
    let reporter = Reporter {
        controller: "atmos-auth-controller".to_owned(),
        instance: Some(config.instance.clone()),
    };
    // One ClusterAuthProfile watch for the process: every scope subscribes, then it runs.
    let reports = WatchReports {
        watches: readiness.watches(),
        skipped: Skipped::new(metrics.clone(), Recorder::new(client.clone(), reporter.clone())),
    };
    let cluster_profiles = controller::cluster_profiles(&client, &reports);
    // What the ClusterAuthProfile status reads from each scope, if this process writes it.
    let (mut identities, mut namespaces, mut identity_changes) = (Vec::new(), Vec::new(), Vec::new());
    let runs: Vec<_> = scopes
        .into_iter()
        .zip(synced)
        .map(|(scope, synced)| {
            let caches = controller::caches(&client, &scope, &cluster_profiles, &reports);
            mark_when_synced(&caches, synced.clone());
            if config.cluster_profile_status {
                identities.push(caches.identities.store());
                namespaces.push(caches.cluster.namespaces.clone());
                identity_changes.push(caches.identities.subscribe().boxed());
            }
            let services = Services {
                client: client.clone(),
                recorder: Recorder::new(client.clone(), reporter.clone()),
                metrics: metrics.clone(),
                exchanger: exchanger.clone(),
                ecr: ecr.clone(),
                entra: entra.clone(),
                gcp: gcp.clone(),
                azure_reverify_interval: config.azure.reverify_interval,
                budget: budget.clone(),
                admission: admission.clone(),
            };
            let options = controller::Options {
                profile_deletion_grace: config.profile_deletion_grace,
            };
            let settings = (config.settings.clone(), options);
            let ctx = Arc::new(Context::new(caches.stores(), services, settings, synced));
            let tuning = Tuning {
                concurrency: config.concurrency,
            };
            controller::run(ctx, caches, scope, tuning, shutdown.signaled())
        })
        .collect();
    // One ClusterAuthProfile status controller for the process, whatever the scopes, if it
    // is the one that writes their status.
    let cluster_ctx = Arc::new(ClusterContext {
        client: client.clone(),
        settings: config.settings.clone(),
        metrics: metrics.clone(),
        identities,
        namespaces,
    });
    let signaled = shutdown.signaled();
    let status_trigger = config.cluster_profile_status.then(|| cluster_profiles.subscribe());
    tokio::spawn(cluster_profiles.clone().run());
    let cluster = async move {
        if let Some(trigger) = status_trigger {
            controller::run_cluster_profiles(cluster_ctx, &cluster_profiles, trigger, identity_changes, signaled).await;
        }
    };
    futures::join!(futures::future::join_all(runs), cluster);
}

/// The kube client of `kubeconfig`, or of the default configuration.
async fn client(kubeconfig: Option<PathBuf>) -> Result<Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(&path)
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
            KubeConfig::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| Error::Kubeconfig(e.to_string()))?
        }
        None => KubeConfig::infer()
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))
}

/// The cluster's ServiceAccount issuer (its default API audience), from the discovery document.
async fn issuer(client: &Client) -> Option<String> {
    let req = http::Request::get("/.well-known/openid-configuration")
        .body(Vec::new())
        .ok()?;
    let text = client.request_text(req).await.ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc.get("issuer")?.as_str().map(str::to_owned)
}

/// Waits (briefly) for the admin server to stop.
async fn finish(admin: tokio::task::JoinHandle<std::io::Result<()>>) -> Result<(), Error> {
    match tokio::time::timeout(Duration::from_secs(5), admin).await {
        Ok(Ok(Err(e))) => Err(Error::Admin(e)),
        _ => Ok(()),
    }
}
