//! Logs and metrics (served by the admin server, [`crate::runtime`]).

mod logging;
mod metrics;
mod timer;

pub use logging::{LogFormat, init};
pub use metrics::{IdentityLabels, Metrics};
pub use timer::ReconcileTimer;
