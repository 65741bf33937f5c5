//! The command line: `run`, `crds`, `validate`, `import`, and the operator commands
//! `status`, `whoami`, `renew` (also `kubectl atmos-auth ...`, see [`plugin`]).

pub mod crds;
pub mod import;
pub mod kube_args;
pub mod plugin;
pub mod renew;
pub mod run;
pub mod status;
pub mod status_view;
pub mod validate;
pub mod whoami;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reconciles Atmos auth profiles into Secrets of refreshed AWS role credentials.
#[derive(Parser, Debug)]
#[command(name = "atmos-auth-controller", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller against the cluster of the kubeconfig (or in-cluster config).
    Run(Box<run::RunArgs>),
    /// Print both CustomResourceDefinitions as YAML (or write one file each with --write).
    Crds(crds::CrdsArgs),
    /// Check AuthProfile and Identity manifests offline with the controller's resolver.
    Validate(validate::ValidateArgs),
    /// Convert atmos.yaml files and profile directories to AuthProfile (and Identity) manifests.
    Import(import::ImportArgs),
    /// Show Identities (chain, expiry, renewal, last error) or a profile and its users.
    Status(status::StatusArgs),
    /// Show who an Identity's credentials are (reads its Secret with your rights).
    Whoami(whoami::WhoamiArgs),
    /// Ask the controller for one renewal now (needs patch on the Identity).
    Renew(renew::RenewArgs),
}

/// Runs an operator command on a small runtime; an error is printed as `error: ...`.
fn block_on<F>(f: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
