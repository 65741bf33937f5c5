use std::process::ExitCode;

use clap::Parser;

use atmos_auth_controller::cli::{Cli, Command};

/// jemalloc, not glibc's malloc: the reconciles' short-lived buffers (JSON bodies, STS
/// answers), freed on several threads, stayed in glibc's arenas as RSS, about as much again
/// as the live caches after a burst (see Cargo.toml).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Installed as `kubectl-atmos_auth`: kubectl's plugin, with the operator commands only.
    if atmos_auth_controller::cli::plugin::started_as_plugin(std::env::args_os().next().as_ref()) {
        return atmos_auth_controller::cli::plugin::main();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Crds(args) => atmos_auth_controller::cli::crds::run(&args),
        Command::Validate(args) => atmos_auth_controller::cli::validate::run(&args),
        Command::Import(args) => atmos_auth_controller::cli::import::run(&args),
        Command::Status(args) => atmos_auth_controller::cli::status::run(&args),
        Command::Whoami(args) => atmos_auth_controller::cli::whoami::run(&args),
        Command::Renew(args) => atmos_auth_controller::cli::renew::run(&args),
        Command::Run(args) => {
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(atmos_auth_controller::cli::run::run(*args))
        }
    }
}
