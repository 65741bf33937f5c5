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

/// Libraries whose verbose levels print request bodies (the AWS SDK's trace of
/// `AssumeRoleWithWebIdentity` carries the ServiceAccount token; HTTP stacks and kube's client
/// may print TokenRequest responses). Their debug and trace events are never emitted, whatever
/// the filter asks for.
const BODY_LOGGING_TARGETS: [&str; 7] = [
    "aws_smithy",
    "aws_sdk",
    "aws_config",
    "hyper",
    "h2",
    "kube_client",
    "tower",
];

/// Whether an event may be logged at all.
pub fn safe_to_log(meta: &Metadata<'_>) -> bool {
    let verbose = *meta.level() == Level::TRACE || *meta.level() == Level::DEBUG;
    !(verbose && BODY_LOGGING_TARGETS.iter().any(|t| meta.target().starts_with(t)))
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
        assert!(!safe_to_log(&meta(
            "aws_smithy_runtime::client::orchestrator",
            Level::TRACE
        )));
        assert!(!safe_to_log(&meta("kube_client::client", Level::DEBUG)));
        assert!(safe_to_log(&meta(
            "aws_smithy_runtime::client::orchestrator",
            Level::WARN
        )));
        assert!(safe_to_log(&meta("atmos_auth_controller::controller", Level::TRACE)));
    }
}
