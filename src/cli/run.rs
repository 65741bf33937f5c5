//! `run`: flags to a [`runtime::Config`]; the process itself is [`crate::runtime`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::LazyLock;
use std::time::Duration;

use crate::exchange::budget::LimitSettings;
use crate::exchange::sts::StsSettings;
use crate::runtime::{self, LeaseConfig};
use crate::settings::{STS_TIMEOUT, SettingsArgs, parse_duration};
use crate::telemetry::{self, LogFormat};

/// [`STS_TIMEOUT`] as `--sts-timeout`'s default (`20s`), so `--help` shows it.
static STS_TIMEOUT_FLAG: LazyLock<String> = LazyLock::new(|| format!("{}s", STS_TIMEOUT.as_secs()));

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
    /// ECR endpoint URL for every registry login (`spec.imagePullSecret`). Default: AWS's
    /// regional endpoint of each registry (`api.ecr.<region>.amazonaws.com`). Profiles can
    /// never set it.
    #[arg(long, env = "ATMOS_AUTH_ECR_ENDPOINT")]
    pub ecr_endpoint: Option<String>,
    /// ECR Public endpoint URL for `aws/ecr-public` logins. Default: AWS's, in us-east-1.
    #[arg(long, env = "ATMOS_AUTH_ECR_PUBLIC_ENDPOINT")]
    pub ecr_public_endpoint: Option<String>,
    /// Budget for one STS call, retries included.
    #[arg(long, env = "ATMOS_AUTH_STS_TIMEOUT", default_value = STS_TIMEOUT_FLAG.as_str(), value_parser = parse_duration)]
    pub sts_timeout: Duration,
    /// STS calls per second per account and region (each account gets this rate in each
    /// region), this process's share of the account's STS quota (AWS: 600/s per account and
    /// region, shared by every caller). A call counts against the account of the role it
    /// assumes. Backs off, for that account and region only, when STS answers `Throttling`.
    #[arg(long, env = "ATMOS_AUTH_STS_RATE_LIMIT", default_value_t = crate::exchange::budget::limit::DEFAULT_RATE, value_parser = parse_rate)]
    pub sts_rate_limit: f64,
    /// STS calls per account and region that may go at once after a quiet period. Default: one second's worth.
    #[arg(long, env = "ATMOS_AUTH_STS_BURST")]
    pub sts_burst: Option<u32>,
    /// Identity reconciles at once (and STS refreshes in flight at once).
    #[arg(long, env = "ATMOS_AUTH_MAX_CONCURRENT_RECONCILES", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// What profiles may ask for (the same flags as `validate` and `import`).
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// How long an Identity's Secrets keep their credentials after its AuthProfile or
    /// ClusterAuthProfile is gone (a duration: `10m`): a GitOps delete-and-recreate within it
    /// changes nothing; after it they are emptied, as those of a namespace no longer selected.
    #[arg(long, env = "ATMOS_AUTH_PROFILE_DELETION_GRACE", default_value = "10m", value_parser = parse_duration)]
    pub profile_deletion_grace: Duration,
    /// The admission policies checked before a first issue or a spec change are named
    /// `PREFIX-identity-serviceaccount`, `PREFIX-authprofile-serviceaccounts`,
    /// `PREFIX-clusterauthprofile-serviceaccounts` and `PREFIX-controller-secrets` (the chart's
    /// full name; the chart sets it).
    #[arg(
        long,
        env = "ATMOS_AUTH_ADMISSION_POLICY_PREFIX",
        default_value = "atmos-auth-controller"
    )]
    pub admission_policy_prefix: String,
    /// Serve first issues and spec changes even when those policies are not installed and
    /// bound with Deny: nothing then checks who may mint which token.
    #[arg(long, env = "ATMOS_AUTH_ALLOW_UNENFORCED_ADMISSION", default_value_t = false)]
    pub allow_unenforced_admission: bool,
    /// How often the admission policies are checked.
    #[arg(long, env = "ATMOS_AUTH_ADMISSION_CHECK_INTERVAL", default_value = "30s", value_parser = parse_duration, hide = true)]
    pub admission_check_interval: Duration,
    /// PEM CA bundle trusted, besides the system's roots, for the Entra authority hosts
    /// (`--azure-authority-host`): for a private authority host (the tests' local Entra).
    #[arg(long, env = "ATMOS_AUTH_AZURE_CA_FILE")]
    pub azure_ca_file: Option<PathBuf>,
    /// PEM CA bundle trusted, besides the system's roots, for `--gcp-sts-url` and
    /// `--gcp-iam-credentials-url` (the tests' local GCP endpoint).
    #[arg(long, env = "ATMOS_AUTH_GCP_CA_FILE")]
    pub gcp_ca_file: Option<PathBuf>,
    /// How often an Azure or GCP Identity's federation is verified again (an exchange at Entra,
    /// or at Google STS and IAM Credentials) when its Secret holds settings only: nothing in it
    /// expires.
    #[arg(long, env = "ATMOS_AUTH_AZURE_REVERIFY_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub azure_reverify_interval: Duration,
    /// Watch only these namespaces (repeat, or comma-separated). Default: all namespaces.
    #[arg(long = "namespace", env = "ATMOS_AUTH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Write the status of ClusterAuthProfiles (validation, the namespaces using each).
    /// Default: true when watching every namespace, false otherwise: a controller limited to
    /// some namespaces sees only their Identities, and several such installs would overwrite
    /// each other's view. Set it on one install at most.
    #[arg(long, env = "ATMOS_AUTH_CLUSTER_PROFILE_STATUS")]
    pub cluster_profile_status: Option<bool>,
    /// Log format.
    #[arg(long, env = "ATMOS_AUTH_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (`info`, `debug`, `atmos_auth_controller=debug`); `RUST_LOG` wins.
    #[arg(long, env = "ATMOS_AUTH_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Address of `/healthz` and `/readyz` (plain HTTP, for the probes).
    #[arg(long, env = "ATMOS_AUTH_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,
    /// Address of `/metrics`: HTTPS, for callers Kubernetes authenticates and authorizes
    /// (`get` on the non-resource URL `/metrics`).
    #[arg(long, env = "ATMOS_AUTH_METRICS_ADDR", default_value = "0.0.0.0:8443")]
    pub metrics_addr: SocketAddr,
    /// Serve `/metrics` over plain HTTP to anyone instead.
    #[arg(long, env = "ATMOS_AUTH_METRICS_PLAIN", default_value_t = false)]
    pub metrics_plain: bool,
    /// `tls.crt` and `tls.key` for `/metrics` (a mounted Secret). Default: a self-signed
    /// certificate made at start.
    #[arg(long, env = "ATMOS_AUTH_METRICS_CERT_DIR")]
    pub metrics_cert_dir: Option<PathBuf>,
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
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format, &args.log_level);
    let result = match config(args) {
        Ok(config) => runtime::run(config).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "controller stopped");
            ExitCode::FAILURE
        }
    }
}

/// A positive number of calls per second.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a positive number of calls per second, such as 50 or 0.5"
        )),
    }
}

/// A PEM CA bundle flag's file, checked to parse.
fn read_ca(path: Option<&std::path::Path>, flag: &str) -> Result<Option<String>, runtime::Error> {
    let Some(path) = path else {
        return Ok(None);
    };
    let pem =
        std::fs::read_to_string(path).map_err(|e| runtime::Error::Azure(format!("{flag} {}: {e}", path.display())))?;
    reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| runtime::Error::Azure(format!("{flag} {}: not a PEM CA bundle: {e}", path.display())))?;
    Ok(Some(pem))
}

fn config(args: RunArgs) -> Result<runtime::Config, runtime::Error> {
    let lease = args.leader_election.then(|| LeaseConfig {
        namespace: args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_owned()),
        name: args.lease_name.clone(),
    });
    let azure_ca_pem = match &args.azure_ca_file {
        None => None,
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| runtime::Error::Azure(format!("--azure-ca-file {}: {e}", path.display())))?;
            reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                runtime::Error::Azure(format!("--azure-ca-file {}: not a PEM CA bundle: {e}", path.display()))
            })?;
            Some(pem)
        }
    };
    let gcp_ca_pem = read_ca(args.gcp_ca_file.as_deref(), "--gcp-ca-file")?;
    Ok(runtime::Config {
        azure: runtime::AzureConfig {
            gcp_ca_pem,
            ca_pem: azure_ca_pem,
            reverify_interval: args.azure_reverify_interval,
            timeout: args.sts_timeout,
        },
        settings: args.settings.settings()?,
        sts: StsSettings {
            endpoint: args.sts_endpoint,
            operation_timeout: args.sts_timeout,
            limit: LimitSettings {
                rate: args.sts_rate_limit,
                // At least one call, whatever the rate rounds to.
                burst: args.sts_burst.unwrap_or(args.sts_rate_limit.ceil().max(1.0) as u32),
            },
        },
        ecr: crate::exchange::ecr::EcrSettings {
            endpoint: args.ecr_endpoint,
            public_endpoint: args.ecr_public_endpoint,
            operation_timeout: args.sts_timeout,
        },
        kubeconfig: args.kubeconfig,
        cluster_profile_status: args.cluster_profile_status.unwrap_or(args.namespaces.is_empty()),
        namespaces: args.namespaces,
        admin_addr: args.admin_addr,
        metrics: runtime::MetricsServing {
            addr: args.metrics_addr,
            plain: args.metrics_plain,
            cert_dir: args.metrics_cert_dir,
        },
        concurrency: args.max_concurrent_reconciles,
        profile_deletion_grace: args.profile_deletion_grace,
        admission: runtime::AdmissionConfig {
            prefix: args.admission_policy_prefix,
            allow_unenforced: args.allow_unenforced_admission,
            interval: args.admission_check_interval,
        },
        lease,
        instance: args
            .instance
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| format!("atmos-auth-controller-{}", std::process::id())),
    })
}

#[cfg(test)]
mod tests {
    use super::{STS_TIMEOUT, STS_TIMEOUT_FLAG, parse_duration, parse_rate};

    #[test]
    fn the_sts_timeout_flag_defaults_to_the_setting() {
        assert_eq!(parse_duration(&STS_TIMEOUT_FLAG), Ok(STS_TIMEOUT));
    }

    #[test]
    fn the_profile_deletion_grace_defaults_to_ten_minutes() {
        assert_eq!(parse_duration("10m"), Ok(crate::settings::PROFILE_DELETION_GRACE));
    }

    #[test]
    fn rates_are_positive_numbers() {
        assert_eq!(parse_rate("50"), Ok(50.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        for bad in ["0", "-1", "inf", "NaN", "fast"] {
            let err = parse_rate(bad).unwrap_err();
            assert!(err.contains("positive number of calls per second"), "{bad}: {err}");
        }
    }
}
