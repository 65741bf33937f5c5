//! The command line: `run`, `crds`, `validate`, `import`.

pub mod crds;
pub mod import;
pub mod run;
pub mod validate;

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
}
