//! A drop guard that records one reconcile's duration however the reconcile ends: `Ok`, `Err`
//! through `?`, or a panic.

use std::time::Instant;

use super::Metrics;

/// Records `atmos_auth_reconcile_duration_seconds{controller}` when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: &'static str,
    started: Instant,
}

impl<'a> ReconcileTimer<'a> {
    /// Starts timing one reconcile of `controller` (`identity`, `authprofile`).
    pub fn start(metrics: &'a Metrics, controller: &'static str) -> Self {
        Self {
            metrics,
            controller,
            started: Instant::now(),
        }
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics.reconciled(self.controller, self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(metrics: &Metrics) -> String {
        metrics
            .encode()
            .lines()
            .find(|l| l.starts_with("atmos_auth_reconcile_duration_seconds_count{controller=\"identity\"}"))
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn a_failed_reconcile_is_timed_too() {
        let metrics = Metrics::default();
        let failing = || -> Result<(), ()> {
            let _timer = ReconcileTimer::start(&metrics, "identity");
            Err(())?;
            Ok(())
        };
        assert!(failing().is_err());
        assert!(count(&metrics).ends_with(" 1"), "{}", metrics.encode());
    }
}
