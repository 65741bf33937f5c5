//! Logs, metrics and the admin HTTP server (`/healthz`, `/readyz`, `/metrics`).

mod admin;
mod logging;
mod metrics;

pub use admin::{Health, serve};
pub use logging::{LogFormat, init};
pub use metrics::{IdentityLabels, Metrics};
