//! `local-sts --config roles.yaml --issuer URL --issuer-ca FILE [--port N]`
//!
//! Runs the verifying local STS for the local run mode until interrupted. Prints the endpoint
//! on the first line of stdout.

use anyhow::{Context, Result, bail};
use atmos_auth_testenv::sts::{LocalSts, OidcIssuer, StsConfig};

const USAGE: &str = "usage: local-sts --config roles.yaml --issuer URL [--issuer-ca FILE] [--port N]";

struct Args {
    config: String,
    issuer: String,
    issuer_ca: Option<String>,
    port: Option<u16>,
}

fn parse_args() -> Result<Args> {
    let (mut config, mut issuer, mut issuer_ca, mut port) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if name == "-h" || name == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let mut value = || -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().with_context(|| format!("{name} needs a value\n{USAGE}")),
            }
        };
        match name.as_str() {
            "--config" => config = Some(value()?),
            "--issuer" => issuer = Some(value()?),
            "--issuer-ca" => issuer_ca = Some(value()?),
            "--port" => port = Some(value()?.parse().context("--port must be a port number")?),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(Args {
        config: config.with_context(|| format!("--config is required\n{USAGE}"))?,
        issuer: issuer.with_context(|| format!("--issuer is required\n{USAGE}"))?,
        issuer_ca,
        port,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args()?;
    let mut config = StsConfig::from_yaml_file(&args.config)?;
    if let Some(port) = args.port {
        config.port = Some(port);
    }
    let ca_pem = match &args.issuer_ca {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading the issuer CA {path}"))?,
        None => String::new(),
    };
    let sts = LocalSts::start(
        config,
        OidcIssuer {
            url: args.issuer,
            ca_pem,
        },
    )?;
    println!("{}", sts.endpoint());
    wait_for_signal().await?;
    drop(sts);
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
