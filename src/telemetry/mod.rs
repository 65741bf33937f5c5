//! Logs and metrics (the runtime's admin server serves `/metrics`).

mod logging;
mod metrics;
mod timer;

pub use logging::{LogFormat, init};
pub use metrics::{IdentityLabels, Metrics};
pub use timer::ReconcileTimer;
