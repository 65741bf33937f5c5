//! Logs, metrics and the admin HTTP server (`/healthz`, `/readyz`, `/metrics`).

mod admin;
mod logging;
mod metrics;
mod timer;

pub use admin::serve;
pub use logging::{LogFormat, init};
pub use metrics::{IdentityLabels, Metrics};
pub use timer::ReconcileTimer;
