//! The operator's settings: every default in one place (those that shape resolution are
//! defined beside it, in [`crate::resolve::settings`], and re-exported here), and the one
//! group of flags that sets them for `run`, `validate` and `import`, so an offline check agrees with the running
//! controller given the same flags (or the same `ATMOS_AUTH_*` environment).

use std::time::Duration;

pub use crate::resolve::settings::{
    AWS_MIN_SESSION_SECONDS, AWS_STS_AUDIENCES, AZURE_AUTHORITY_HOSTS, AZURE_DEFAULT_AUDIENCE, DEFAULT_AUDIENCE,
    DEFAULT_REGION, GCP_IAM_CREDENTIALS_URL, GCP_POOL_PROVIDER_AUDIENCES, GCP_STS_URL, MIN_TOKEN_SECONDS,
    PROVIDER_KIND, Settings, audience_matches, is_aws_sts_audience,
};

/// Budget for one STS call, retries included (`--sts-timeout`).
pub const STS_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an Identity's Secrets keep their credentials once its profile is gone
/// (`--profile-deletion-grace`).
pub const PROFILE_DELETION_GRACE: Duration = Duration::from_secs(600);
/// How soon a reconcile that failed (an API error) runs again.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(15);
/// The shortest time between two refreshes of one Identity that neither its spec nor its
/// schedule asked for (its Secret deleted, its data changed, a Secret the controller holds
/// no record of), so a loop of such changes cannot make it call STS at will.
pub const MIN_UNREQUESTED_REFRESH: Duration = Duration::from_secs(10);

/// Audiences the API server itself accepts by default: a token minted for one of them would
/// authenticate to the cluster, so the controller must never mint it for a profile.
const API_SERVER_AUDIENCES: [&str; 4] = [
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
    "kubernetes",
    "api",
];

/// A setting the controller refuses to start with (or to check manifests against).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `--default-region` is not a region name.
    #[error("--default-region: {0}")]
    Region(String),
    /// An allowed audience would let tokens authenticate to the cluster.
    #[error(
        "--allowed-audience {0:?} is an audience the API server itself accepts: tokens minted for it would \
         authenticate to the cluster; allow only cloud audiences such as {DEFAULT_AUDIENCE}"
    )]
    ApiServerAudience(String),
    /// `--azure-authority-host` is not `ENVIRONMENT=https://HOST/`.
    #[error(
        "--azure-authority-host {0:?}: {1}; write ENVIRONMENT=https://HOST/ with ENVIRONMENT one of \
         public, usgovernment, china (Atmos's cloud_environment), for example \
         public=https://login.microsoftonline.com/"
    )]
    AuthorityHost(String, &'static str),
    /// `--gcp-sts-url` or `--gcp-iam-credentials-url` is not a URL the SDKs may be given.
    #[error("{0} {1:?}: {2}; write an https:// URL such as https://sts.googleapis.com/v1/token")]
    GcpUrl(&'static str, String, &'static str),
    /// `--default-refresh-before` does not fit in seconds.
    #[error("--default-refresh-before {0:?} is too long; use a duration shorter than the session, such as 20m")]
    RefreshBefore(Duration),
}

/// The flags that build [`Settings`], flattened into `run`, `validate` and `import`. Each has
/// the environment variable the chart sets, so the three commands read the same values.
#[derive(clap::Args, Clone, Debug)]
pub struct SettingsArgs {
    /// Token audiences a provider may request (repeat, or comma-separated); `aws-sts` stands
    /// for AWS STS's global and regional audiences (sts.amazonaws.com, sts.<region>.amazonaws.com);
    /// `*` stands for any run of characters other than `/`.
    #[arg(
        long = "allowed-audience",
        env = "ATMOS_AUTH_ALLOWED_AUDIENCES",
        value_delimiter = ',',
        default_values = [AWS_STS_AUDIENCES, AZURE_DEFAULT_AUDIENCE, GCP_POOL_PROVIDER_AUDIENCES]
    )]
    pub allowed_audiences: Vec<String>,
    /// Entra authority host per Atmos `cloud_environment`, `ENVIRONMENT=https://HOST/` (repeat,
    /// or comma-separated): the only hosts Azure tokens are exchanged at and written into pod
    /// settings as AZURE_AUTHORITY_HOST. Default: Atmos's public, usgovernment and china hosts.
    #[arg(
        long = "azure-authority-host",
        env = "ATMOS_AUTH_AZURE_AUTHORITY_HOSTS",
        value_delimiter = ',',
        default_values_t = AZURE_AUTHORITY_HOSTS.iter().map(|(e, h)| format!("{e}={h}")).collect::<Vec<_>>()
    )]
    pub azure_authority_hosts: Vec<String>,
    /// Google STS's token URL: the only place GCP tokens are exchanged, and the `token_url`
    /// written into pods' `external_account` configuration.
    #[arg(long = "gcp-sts-url", env = "ATMOS_AUTH_GCP_STS_URL", default_value = GCP_STS_URL)]
    pub gcp_sts_url: String,
    /// IAM Credentials' base URL (`https://HOST/`): impersonation, and the
    /// `service_account_impersonation_url` written into pods' configuration.
    #[arg(
        long = "gcp-iam-credentials-url",
        env = "ATMOS_AUTH_GCP_IAM_CREDENTIALS_URL",
        default_value = GCP_IAM_CREDENTIALS_URL
    )]
    pub gcp_iam_credentials_url: String,
    /// `spec.endpoint_url` values profiles may carry (repeat, or comma-separated). Default none.
    #[arg(
        long = "allowed-endpoint",
        env = "ATMOS_AUTH_ALLOWED_ENDPOINTS",
        value_delimiter = ','
    )]
    pub allowed_endpoints: Vec<String>,
    /// Region for links when neither they nor a parent link set `principal.region` (Atmos's
    /// default; a provider's `region` is not used).
    #[arg(long, env = "ATMOS_AUTH_DEFAULT_REGION", default_value = DEFAULT_REGION)]
    pub default_region: String,
    /// Renew this long before expiry when an Identity sets no refreshBefore (a duration:
    /// `20m`). Default: at two thirds of each session. Never later than that point.
    #[arg(long, env = "ATMOS_AUTH_DEFAULT_REFRESH_BEFORE", value_parser = parse_duration)]
    pub default_refresh_before: Option<Duration>,
    /// TESTS ONLY: shortest session a link may ask for, seconds (AWS's minimum is 900).
    #[arg(
        long,
        env = "ATMOS_AUTH_TEST_MIN_SESSION_SECONDS",
        default_value_t = AWS_MIN_SESSION_SECONDS,
        hide = true
    )]
    pub min_session_seconds: i64,
}

impl SettingsArgs {
    /// The settings these flags ask for, checked.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        crate::resolve::rules::check_region(&self.default_region).map_err(SettingsError::Region)?;
        check_audiences(&self.allowed_audiences, None)?;
        let default_refresh_before_seconds = self
            .default_refresh_before
            .map(|d| i64::try_from(d.as_secs()).map_err(|_| SettingsError::RefreshBefore(d)))
            .transpose()?;
        Ok(Settings {
            allowed_audiences: self.allowed_audiences.clone(),
            azure_authority_hosts: self
                .azure_authority_hosts
                .iter()
                .map(|entry| parse_authority_host(entry))
                .collect::<Result<_, _>>()?,
            gcp_sts_url: parse_gcp_url(&self.gcp_sts_url, "--gcp-sts-url", false)?,
            gcp_iam_credentials_url: parse_gcp_url(&self.gcp_iam_credentials_url, "--gcp-iam-credentials-url", true)?,
            allowed_endpoints: self.allowed_endpoints.clone(),
            min_session_seconds: self.min_session_seconds,
            min_token_seconds: MIN_TOKEN_SECONDS,
            default_region: self.default_region.clone(),
            default_refresh_before_seconds,
        })
    }
}

/// `ENVIRONMENT=https://HOST/` to the pair, the host ending in `/` as the Azure SDKs expect.
fn parse_authority_host(entry: &str) -> Result<(String, String), SettingsError> {
    let bad = |why| SettingsError::AuthorityHost(entry.to_owned(), why);
    let (env, host) = entry.split_once('=').ok_or_else(|| bad("no ="))?;
    if !AZURE_AUTHORITY_HOSTS.iter().any(|(known, _)| *known == env) {
        return Err(bad("unknown environment"));
    }
    let rest = host
        .strip_prefix("https://")
        .ok_or_else(|| bad("the host must be an https:// URL (MSAL refuses any other)"))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(bad("the URL must be a host (and port) only"));
    }
    Ok((env.to_owned(), format!("https://{authority}/")))
}

/// A GCP endpoint flag: an `http(s)://` URL without query, fragment or credentials (google-auth
/// accepts plain http, which only a test on loopback should use); `base`: a base URL, given
/// a trailing `/`.
fn parse_gcp_url(url: &str, flag: &'static str, base: bool) -> Result<String, SettingsError> {
    let bad = |why| SettingsError::GcpUrl(flag, url.to_owned(), why);
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("not an https:// URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', '@', ' ']) {
        return Err(bad("the URL must be a host (and port) and a path only"));
    }
    if base && !url.ends_with('/') {
        return Ok(format!("{url}/"));
    }
    Ok(url.to_owned())
}

/// Refuses an allow-list that contains the API server's own audience: a well-known default,
/// or `issuer` (the cluster's ServiceAccount issuer, known only to `run`).
pub fn check_audiences(allowed: &[String], issuer: Option<&str>) -> Result<(), SettingsError> {
    // `aws-sts` covers an issuer only if the issuer were an STS audience, which no cluster's is.
    // A pattern entry (`*`) is refused when it matches one of them, as an exact entry is.
    let covers = |aud: &String, known: &str| {
        audience_matches(aud, known) || (aud == AWS_STS_AUDIENCES && is_aws_sts_audience(known))
    };
    match allowed.iter().find(|aud| {
        API_SERVER_AUDIENCES.iter().any(|known| covers(aud, known)) || issuer.is_some_and(|i| covers(aud, i))
    }) {
        Some(aud) => Err(SettingsError::ApiServerAudience(aud.clone())),
        None => Ok(()),
    }
}

/// A duration flag (`20s`, `1m`, `1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 20s or 1m: {e}"))?;
    d.try_into().map_err(|_| format!("{s:?} must be positive"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: SettingsArgs,
    }

    fn parse(args: &[&str]) -> Result<Settings, SettingsError> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).expect("flags parse");
        cli.settings.settings()
    }

    #[test]
    fn no_flags_give_the_defaults() {
        // Unless the environment sets them (the test runner does not).
        if std::env::vars().any(|(k, _)| k.starts_with("ATMOS_AUTH_")) {
            return;
        }
        assert_eq!(parse(&[]), Ok(Settings::default()));
    }

    #[test]
    fn flags_reach_the_settings() {
        let s = parse(&[
            "--allowed-audience",
            "a,b",
            "--allowed-endpoint",
            "https://sts.example",
            "--default-region",
            "eu-west-1",
            "--default-refresh-before",
            "20m",
        ])
        .expect("valid");
        assert_eq!(s.allowed_audiences, ["a", "b"]);
        assert_eq!(s.allowed_endpoints, ["https://sts.example"]);
        assert_eq!(s.default_region, "eu-west-1");
        assert_eq!(s.default_refresh_before_seconds, Some(1200));
    }

    #[test]
    fn bad_settings_are_refused_with_the_flag_named() {
        let err = parse(&["--default-region", "Mars"]).unwrap_err();
        assert!(err.to_string().starts_with("--default-region: \"Mars\""), "{err}");
        let err = parse(&["--allowed-audience", "sts.amazonaws.com,api"]).unwrap_err();
        assert_eq!(err, SettingsError::ApiServerAudience("api".into()));
    }

    #[test]
    fn gcp_urls_come_from_the_flags_checked() {
        let s = parse(&[
            "--gcp-sts-url",
            "https://127.0.0.1:9443/v1/token",
            "--gcp-iam-credentials-url",
            "https://127.0.0.1:9443",
        ])
        .expect("valid");
        assert_eq!(s.gcp_sts_url, "https://127.0.0.1:9443/v1/token");
        assert_eq!(s.gcp_iam_credentials_url, "https://127.0.0.1:9443/");
        for bad in [
            "sts.googleapis.com/v1/token",
            "https://user@sts.example/v1/token",
            "https://x/?a=b",
            "https:///v1",
        ] {
            let err = parse(&["--gcp-sts-url", bad]).unwrap_err();
            assert!(
                matches!(&err, SettingsError::GcpUrl("--gcp-sts-url", url, _) if url == bad),
                "{err}"
            );
        }
    }

    #[test]
    fn authority_hosts_come_from_the_flag_checked() {
        let s = parse(&["--azure-authority-host", "public=https://127.0.0.1:8443"]).expect("valid");
        assert_eq!(s.azure_authority_host("public"), Some("https://127.0.0.1:8443/"));
        assert_eq!(s.azure_authority_host("china"), None);
        for bad in [
            "public=http://127.0.0.1:8443/",
            "mars=https://login.example/",
            "public=https://login.example/tenant",
            "https://login.example/",
        ] {
            let err = parse(&["--azure-authority-host", bad]).unwrap_err();
            assert!(
                matches!(&err, SettingsError::AuthorityHost(entry, _) if entry == bad),
                "{err}"
            );
        }
    }

    #[test]
    fn an_audience_pattern_that_covers_the_api_server_is_refused() {
        let list = vec!["https://kubernetes.*.svc".to_owned()];
        assert!(check_audiences(&list, None).is_err());
        let list = vec!["https://127.0.0.1:*".to_owned()];
        assert!(check_audiences(&list, Some("https://127.0.0.1:6443")).is_err());
        let list = vec!["api://*".to_owned()];
        assert!(check_audiences(&list, Some("https://127.0.0.1:6443")).is_ok());
    }

    #[test]
    fn the_api_servers_own_audiences_are_refused() {
        let ok = vec![DEFAULT_AUDIENCE.to_owned()];
        assert!(check_audiences(&ok, Some("https://127.0.0.1:6443")).is_ok());
        for bad in ["https://kubernetes.default.svc", "https://127.0.0.1:6443", "api"] {
            let list = vec![DEFAULT_AUDIENCE.to_owned(), bad.to_owned()];
            let err = check_audiences(&list, Some("https://127.0.0.1:6443")).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
