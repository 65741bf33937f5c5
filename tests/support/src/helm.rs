//! Helm for the tests: the binary `tests/controlplane/build-binaries.sh helm` builds on first
//! use (only tests that use it pay for it; `cargo dev` never does), stamped with its
//! Kubernetes version as an official release is, so `helm template` needs no
//! `--kube-version`. Every command gets Helm directories of its own, never the developer's.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

use anyhow::{Context, Result, anyhow, ensure};

use crate::controlplane::build_binaries;

/// The directory holding `helm`: `$ATMOS_AUTH_K8S_BIN`, else the control plane's cache
/// directory, where it is built the first time (about a minute and a half).
pub fn bin_dir() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(dir) = std::env::var_os("ATMOS_AUTH_K8S_BIN") {
        return Ok(dir.into());
    }
    DIR.get_or_init(|| build_binaries("helm", "helm").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Helm's cache, config and data directories for this process: tests never read or write
/// the developer's repositories, registry logins or plugins. Helm creates them only when it
/// needs them (repository and registry commands, which the tests do not run).
fn home() -> PathBuf {
    std::env::temp_dir().join(format!("atmos-auth-helm-{}", std::process::id()))
}

/// Points Helm's directories away from `$HOME` for a command that may run `helm` (for
/// example a shell running a block of the docs).
pub fn isolate(command: &mut Command) -> &mut Command {
    let home = home();
    command
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
}

/// `helm`, isolated by [`isolate`]; building it first if needed.
pub fn command() -> Result<Command> {
    let mut command = Command::new(bin_dir()?.join("helm"));
    isolate(&mut command);
    Ok(command)
}

/// `helm template RELEASE CHART --namespace NAMESPACE ARGS...`: the rendered manifests, or an
/// error that carries Helm's own message (a schema violation names the value).
pub fn template(chart: &Path, release: &str, namespace: &str, args: &[&str]) -> Result<String> {
    let out = command()?
        .args(["template", release])
        .arg(chart)
        .args(["--namespace", namespace])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running helm template")?;
    ensure!(
        out.status.success(),
        "helm template {release} {} {args:?} failed: {}",
        chart.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
