//! Waits on what the controller shows on its `/metrics`, in place of fixed sleeps: to prove
//! that something does NOT happen after a change, a test waits until the controller has
//! reconciled after the change (and is idle again), then looks.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::fixture::ControllerProcess;

const IDENTITY_RECONCILES: &str = "atmos_auth_reconcile_duration_seconds_count{controller=\"identity\"}";

/// Identity reconciles the controller has finished (successful or not): the count of
/// `atmos_auth_reconcile_duration_seconds`, recorded as each reconcile ends.
pub async fn reconciles(controller: &ControllerProcess) -> Result<u64> {
    let (code, text) = controller.admin_get("/metrics").await?;
    anyhow::ensure!(code == 200, "/metrics answered {code}");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(IDENTITY_RECONCILES))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64))
}

/// Waits until no Identity reconcile has ended for `quiet`; returns the count then (a mark
/// for [`reconciled_past`]: nothing was in flight when it was taken, but for a reconcile
/// longer than `quiet`).
pub async fn idle(controller: &ControllerProcess, quiet: Duration, timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut last = reconciles(controller).await?;
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = reconciles(controller).await?;
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return Ok(now);
        }
        if Instant::now() > deadline {
            bail!("the controller was still reconciling after {timeout:?} ({now} reconciles)");
        }
    }
}

/// Waits until the controller has ended `more` Identity reconciles after `mark` (from
/// [`idle`] or [`reconciles`]), then until it is idle again; returns the count then.
pub async fn reconciled_past(controller: &ControllerProcess, mark: u64, more: u64, timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = reconciles(controller).await?;
        if now >= mark + more {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {more} reconciles after the mark in {timeout:?}",
                now - mark.min(now)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    idle(
        controller,
        QUIET,
        deadline.saturating_duration_since(Instant::now()).max(QUIET * 4),
    )
    .await
}

/// How long without a reconcile counts as idle: far above one reconcile of these tests
/// (milliseconds), so a follow-up triggered by the controller's own write is seen first.
pub const QUIET: Duration = Duration::from_secs(1);
