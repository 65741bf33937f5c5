//! kubectl's usual connection flags for the operator commands (`status`, `renew`,
//! `whoami`), so they behave the same as `kubectl atmos-auth ...` and as the binary.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// `--kubeconfig`, `--context`, `-n`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster ServiceAccount).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

impl KubeArgs {
    /// A client as the caller (their own rights) and the namespace to use.
    pub async fn connect(&self) -> Result<(Client, String), String> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let load = |e: &dyn std::fmt::Display| format!("cannot load the Kubernetes configuration: {e}");
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| load(&e))?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options).await.map_err(|e| load(&e))?,
            (None, None) => Config::infer().await.map_err(|e| load(&e))?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| format!("cannot create a Kubernetes client: {e}"))?;
        Ok((client, namespace))
    }
}

/// A Kubernetes API error reading `what`, as one sentence for a person.
pub fn api_error(what: &str, err: &kube::Error) -> String {
    verb_error(("read", "reading"), what, err)
}

/// A Kubernetes API error of `verb` (`doing`, its -ing form) on `what`: what was asked, and
/// for a refusal that the caller's own rights are used.
pub fn verb_error((verb, doing): (&str, &str), what: &str, err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) if s.code == 403 => {
            format!(
                "you may not {verb} {what} ({}); these commands use your own rights",
                s.message
            )
        }
        kube::Error::Api(s) if s.code == 404 => format!("{what} not found"),
        other => format!("{doing} {what}: {other}"),
    }
}
