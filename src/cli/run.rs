//! `run`: the controller process — kube client, admin server, leader election, controllers,
//! graceful shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Config};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tokio::sync::watch;

use crate::controller::{self, Context, Scope};
use crate::resolve::Settings;
use crate::sts::{Exchanger, StsSettings};
use crate::telemetry::{self, Health, LogFormat, Metrics};

/// Arguments of `run`. A flag given twice keeps its last value (extra arguments can
/// override the chart's defaults).
#[derive(clap::Args, Debug)]
#[command(args_override_self = true)]
pub struct RunArgs {
    /// Kubeconfig file; default: `KUBECONFIG`, `~/.kube/config`, then in-cluster config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// STS endpoint URL for every call. Default: AWS's regional endpoint of each link.
    /// Profiles can never set it.
    #[arg(long, env = "ATMOS_AUTH_STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,
    /// Budget for one STS call, retries included.
    #[arg(long, env = "ATMOS_AUTH_STS_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub sts_timeout: Duration,
    /// Token audiences a provider may request (repeat, or comma-separated).
    #[arg(
        long = "allowed-audience",
        env = "ATMOS_AUTH_ALLOWED_AUDIENCES",
        value_delimiter = ',',
        default_value = "sts.amazonaws.com"
    )]
    pub allowed_audiences: Vec<String>,
    /// `spec.endpoint_url` values profiles may carry (repeat, or comma-separated). Default none.
    #[arg(
        long = "allowed-endpoint",
        env = "ATMOS_AUTH_ALLOWED_ENDPOINTS",
        value_delimiter = ','
    )]
    pub allowed_endpoints: Vec<String>,
    /// Region for links whose chain names no principal.region (Atmos's default: us-east-1).
    #[arg(long, env = "ATMOS_AUTH_DEFAULT_REGION", default_value = "us-east-1")]
    pub default_region: String,
    /// Renew this long before expiry when an Identity sets no refreshBefore (a duration:
    /// `20m`). Default: at two thirds of each session. Never later than that point.
    #[arg(long, env = "ATMOS_AUTH_DEFAULT_REFRESH_BEFORE", value_parser = parse_duration)]
    pub default_refresh_before: Option<Duration>,
    /// Watch only these namespaces (repeat, or comma-separated). Default: all namespaces.
    #[arg(long = "namespace", env = "ATMOS_AUTH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Log format.
    #[arg(long, env = "ATMOS_AUTH_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (`info`, `debug`, `atmos_auth_controller=debug`); `RUST_LOG` wins.
    #[arg(long, env = "ATMOS_AUTH_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "ATMOS_AUTH_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,
    /// Elect a leader on a Lease so only one replica renews.
    #[arg(long, env = "ATMOS_AUTH_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,
    /// Namespace of the Lease; default: the pod's namespace (`POD_NAMESPACE`) or `default`.
    #[arg(long, env = "ATMOS_AUTH_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, env = "ATMOS_AUTH_LEASE_NAME", default_value = "atmos-auth-controller")]
    pub lease_name: String,
    /// This replica's name in the Lease and in Events; default: `POD_NAME` or the host name.
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// TESTS ONLY: shortest session a link may ask for, seconds (AWS's minimum is 900).
    #[arg(
        long,
        env = "ATMOS_AUTH_TEST_MIN_SESSION_SECONDS",
        default_value_t = 900,
        hide = true
    )]
    pub min_session_seconds: i64,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 20s or 1m: {e}"))?;
    d.try_into().map_err(|_| format!("{s:?} must be positive"))
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format, &args.log_level);
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "controller stopped");
            ExitCode::FAILURE
        }
    }
}

async fn client(args: &RunArgs) -> Result<Client, String> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc =
                kube::config::Kubeconfig::read_from(path).map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| e.to_string())?
        }
        None => Config::infer().await.map_err(|e| e.to_string())?,
    };
    Client::try_from(config).map_err(|e| e.to_string())
}

/// Audiences the API server itself accepts by default: a token minted for one of them would
/// authenticate to the cluster, so the controller must never mint it for a profile.
const API_SERVER_AUDIENCES: [&str; 4] = [
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
    "kubernetes",
    "api",
];

/// Refuses an allow-list that contains the API server's own audience (its issuer, or a
/// well-known default).
fn check_audiences(allowed: &[String], issuer: Option<&str>) -> Result<(), String> {
    for aud in allowed {
        let own = API_SERVER_AUDIENCES.contains(&aud.as_str()) || issuer.is_some_and(|i| i == aud);
        if own {
            return Err(format!(
                "--allowed-audience {aud:?} is an audience the API server itself accepts: tokens minted for \
                 it would authenticate to the cluster; allow only cloud audiences such as sts.amazonaws.com"
            ));
        }
    }
    Ok(())
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

async fn serve(args: RunArgs) -> Result<(), String> {
    crate::resolve::rules::check_region(&args.default_region).map_err(|e| format!("--default-region: {e}"))?;
    let client = client(&args).await?;
    check_audiences(&args.allowed_audiences, issuer(&client).await.as_deref())?;
    let instance = args
        .instance
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("atmos-auth-controller-{}", std::process::id()));
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(signals(stop_tx));
    let stopped = {
        let rx = stop_rx.clone();
        move || wait_true(rx.clone())
    };

    let admin = tokio::spawn(telemetry::serve(
        args.admin_addr,
        health.clone(),
        metrics.clone(),
        stopped(),
    ));

    let settings = Settings {
        allowed_audiences: args.allowed_audiences.clone(),
        allowed_endpoints: args.allowed_endpoints.clone(),
        min_session_seconds: args.min_session_seconds,
        default_region: args.default_region.clone(),
        default_refresh_before_seconds: args.default_refresh_before.map(|d| d.as_secs() as i64),
        ..Settings::default()
    };
    let sts = StsSettings {
        endpoint: args.sts_endpoint.clone(),
        operation_timeout: args.sts_timeout,
        ..StsSettings::default()
    };
    if args.min_session_seconds < 900 {
        tracing::warn!(
            seconds = args.min_session_seconds,
            "test setting: sessions shorter than AWS's 15 minutes are allowed"
        );
    }

    // Leadership: a standby holds no caches and reconciles nothing until it leads. A 12 s lease
    // renewed when 5 s remain: a standby takes over within 15 s of a crash, and a busy
    // leader has time to renew.
    let leader = if args.leader_election {
        let ns = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_owned());
        let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(ns)
            .with_identity(instance.clone())
            .with_duration(12)
            .with_grace(5)
            .with_create_mode(LeaseCreateMode::AutoCreate)
            .build()
            .await
            .map_err(|e| format!("leader election: {e}"))?;
        let (rx, task) = manager.watch().await;
        Some((rx, task))
    } else {
        None
    };
    let (mut leader, lease_task) = match leader {
        Some((rx, task)) => (Some(rx), Some(task)),
        None => (None, None),
    };

    let scopes: Vec<Scope> = if args.namespaces.is_empty() {
        vec![Scope::Cluster]
    } else {
        args.namespaces.iter().cloned().map(Scope::Namespace).collect()
    };

    if let Some(rx) = leader.as_mut() {
        tracing::info!(%instance, "waiting for leadership");
        tokio::select! {
            r = rx.wait_for(|l| *l) => { r.map_err(|_| "leader election stopped".to_owned())?; }
            _ = stopped() => { return finish(admin).await; }
        }
        tracing::info!(%instance, "leading");
    }

    health.set_leading(scopes.len());
    let reporter = Reporter {
        controller: "atmos-auth-controller".to_owned(),
        instance: Some(instance.clone()),
    };
    let mut runs = Vec::new();
    for scope in scopes {
        let caches = controller::caches(&client, &scope);
        let ctx = Arc::new(Context {
            client: client.clone(),
            profiles: caches.profiles.clone(),
            exchanger: Exchanger::new(sts.clone(), Some(metrics.clone() as Arc<dyn crate::sts::CallObserver>)),
            settings: settings.clone(),
            recorder: Recorder::new(client.clone(), reporter.clone()),
            metrics: metrics.clone(),
            profiles_synced: Arc::default(),
        });
        // The only waiter on the profile cache's readiness (see Context::profiles_synced).
        let profiles = caches.profiles.clone();
        let (health, synced) = (health.clone(), ctx.profiles_synced.clone());
        tokio::spawn(async move {
            if profiles.wait_until_ready().await.is_ok() {
                synced.store(true, std::sync::atomic::Ordering::SeqCst);
                health.scope_synced();
            }
        });
        // Stop on a signal, or when leadership is lost (a replica that lost its lease must
        // not write; it exits and comes back as a standby).
        let lost = leader.clone();
        let stop = stopped();
        let shutdown = async move {
            match lost {
                Some(mut rx) => {
                    tokio::select! {
                        _ = stop => {},
                        _ = rx.wait_for(|l| !*l) => {
                            // The new leader may already be writing: stop at once rather than
                            // finish in-flight work (two writers would renew twice). The
                            // process restarts as a standby.
                            tracing::error!("leadership lost: exiting");
                            std::process::exit(1);
                        },
                    }
                }
                None => stop.await,
            }
        };
        let shared = futures::FutureExt::shared(Box::pin(shutdown));
        runs.push(controller::run(ctx, caches, scope, shared));
    }
    futures::future::join_all(runs).await;
    if let (Some(rx), Some(task)) = (leader, lease_task) {
        // Dropping the receiver makes the lease task release the lock for a fast hand-over.
        drop(rx);
        let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
    }
    finish(admin).await
}

async fn finish(admin: tokio::task::JoinHandle<std::io::Result<()>>) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(5), admin).await {
        Ok(Ok(Err(e))) => Err(format!("admin server: {e}")),
        _ => Ok(()),
    }
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

async fn signals(tx: watch::Sender<bool>) {
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
}

#[cfg(test)]
mod tests {
    use super::check_audiences;

    #[test]
    fn the_api_servers_own_audiences_are_refused() {
        let ok = vec!["sts.amazonaws.com".to_owned()];
        assert!(check_audiences(&ok, Some("https://127.0.0.1:6443")).is_ok());
        for bad in ["https://kubernetes.default.svc", "https://127.0.0.1:6443", "api"] {
            let list = vec!["sts.amazonaws.com".to_owned(), bad.to_owned()];
            let err = check_audiences(&list, Some("https://127.0.0.1:6443")).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
