//! Log setup: JSON for clusters, text for people.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Crates (by name prefix) whose debug and trace events may carry a token, a secret key or
/// a session token: the AWS SDK (`aws_sigv4` logs each canonical request; with
/// `LOG_SIGNABLE_BODY`/`LOG_SENSITIVE_BODIES` the runtime logs the bodies that carry the
/// ServiceAccount token and the issued credentials), the TLS and HTTP stack, and kube's client
/// (TokenRequest responses). Their debug and trace events are never emitted, whatever
/// `RUST_LOG` or `--log-level` asks for, so the guarantee does not rest on their defaults.
const QUIET_CRATE_PREFIXES: [&str; 10] = [
    "aws_",
    "rustls",
    "tokio_rustls",
    "hyper",
    "h2",
    "http",
    "tower",
    "reqwest",
    "axum",
    "kube_client",
];

/// Whether an event may be logged at all.
pub fn safe_to_log(meta: &Metadata<'_>) -> bool {
    let verbose = *meta.level() == Level::TRACE || *meta.level() == Level::DEBUG;
    !(verbose && is_quiet_crate(meta.target()))
}

/// Whether `target` (`crate::module`, or a `log` record's target) belongs to a quiet crate.
fn is_quiet_crate(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    QUIET_CRATE_PREFIXES.iter().any(|p| krate.starts_with(p))
}

/// Installs the global subscriber. `level` is an `EnvFilter` directive (`info`,
/// `atmos_auth_controller=debug`); `RUST_LOG` wins when set.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let layer = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer.with_filter(filter_fn(safe_to_log)))
        .try_init();
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing::callsite::Identifier;
    use tracing::field::FieldSet;
    use tracing::metadata::Kind;

    use super::safe_to_log;

    struct Site;
    impl tracing::callsite::Callsite for Site {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!()
        }
    }
    static SITE: Site = Site;

    fn meta(target: &'static str, level: Level) -> tracing::Metadata<'static> {
        tracing::Metadata::new(
            "e",
            target,
            level,
            None,
            None,
            None,
            FieldSet::new(&[], Identifier(&SITE)),
            Kind::EVENT,
        )
    }

    #[test]
    fn request_bodies_of_libraries_are_never_logged() {
        for target in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_sigv4::http_request::sign",
            "aws_runtime::env_config",
            "aws_sdk_sts::operation",
            "aws_config",
            "aws_credential_types::provider",
            "rustls::client::hs",
            "tokio_rustls",
            "hyper_util::client::legacy::pool",
            "h2::codec",
            "http_body_util",
            "tower::buffer",
            "reqwest::connect",
            "kube_client::client",
        ] {
            for level in [Level::TRACE, Level::DEBUG] {
                assert!(!safe_to_log(&meta(target, level)), "{target} at {level}");
            }
        }
        assert!(safe_to_log(&meta(
            "aws_smithy_runtime::client::orchestrator",
            Level::WARN
        )));
        assert!(safe_to_log(&meta("atmos_auth_controller::controller", Level::TRACE)));
        assert!(safe_to_log(&meta("kube_runtime::controller", Level::DEBUG)));
    }
}
