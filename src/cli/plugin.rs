//! `kubectl atmos-auth ...`: the same binary installed (or linked) as `kubectl-atmos_auth`
//! on the PATH, which kubectl's plugin lookup finds (a `-` in a plugin's command is `_` in
//! its file name). Started under that name it offers only the operator commands.

use std::ffi::OsString;
use std::path::Path;

use clap::{Parser, Subcommand};

use super::{renew, status, whoami};

/// The file name kubectl looks for.
pub const PLUGIN_NAME: &str = "kubectl-atmos_auth";

/// Operator commands for atmos-auth-controller's Identities and profiles.
#[derive(Parser, Debug)]
#[command(name = "kubectl atmos-auth", version, about)]
pub struct PluginCli {
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// The plugin's subcommands.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Show Identities (chain, expiry, renewal, last error) or a profile and its users.
    Status(status::StatusArgs),
    /// Show who an Identity's credentials are (reads its Secret with your rights).
    Whoami(whoami::WhoamiArgs),
    /// Ask the controller for one renewal now (needs patch on the Identity).
    Renew(renew::RenewArgs),
}

/// Whether the process was started as the kubectl plugin (`argv[0]`'s file name).
pub fn started_as_plugin(argv0: Option<&OsString>) -> bool {
    argv0
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == PLUGIN_NAME || n.starts_with(&format!("{PLUGIN_NAME}.")))
}

/// Runs the plugin's command line.
pub fn main() -> std::process::ExitCode {
    match PluginCli::parse().command {
        PluginCommand::Status(args) => status::run(&args),
        PluginCommand::Whoami(args) => whoami::run(&args),
        PluginCommand::Renew(args) => renew::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_is_recognised_by_its_file_name_only() {
        let yes = |s: &str| started_as_plugin(Some(&OsString::from(s)));
        assert!(yes("/usr/local/bin/kubectl-atmos_auth"));
        assert!(yes("kubectl-atmos_auth"));
        assert!(yes("C:/bin/kubectl-atmos_auth.exe"));
        assert!(!yes("/usr/bin/atmos-auth-controller"));
        assert!(!yes("/tmp/kubectl-atmos_auth-old/atmos-auth-controller"));
        assert!(!started_as_plugin(None));
    }

    #[test]
    fn the_plugin_takes_kubectls_flags() {
        let cli = PluginCli::try_parse_from([
            "kubectl atmos-auth",
            "status",
            "--kubeconfig",
            "/k",
            "--context",
            "c",
            "-n",
            "infra",
            "network",
            "-o",
            "json",
        ])
        .unwrap();
        let PluginCommand::Status(a) = cli.command else {
            panic!("not status")
        };
        assert_eq!(a.kube.context.as_deref(), Some("c"));
        assert_eq!(a.kube.namespace.as_deref(), Some("infra"));
        assert_eq!(a.target.as_deref(), Some("network"));
        assert!(PluginCli::try_parse_from(["kubectl atmos-auth", "run"]).is_err());
    }
}
