//! How the watches retry after an error (an API server or etcd restart): 0.5 s doubling to
//! 5 s, reset by the first event that gets through. kube's default goes up to 30 s, so after
//! a 20 s outage a watch could stay down for half a minute more, and new or changed objects
//! go unseen that long; a retry every 5 s per watch costs the API server next to nothing.
//!
//! A kube `Controller` also wraps all its trigger streams together in one more backoff
//! (`Controller::trigger_backoff`, kube's default unless set): an error from any one watch
//! pauses every trigger of the controller, for up to 30 s (jittered up to about 50 s) that
//! grows with each error and resets only after 120 s without one. After an API server
//! restart each watch reports its outage and then a 410 (its resource version is gone), one
//! after another, so the Identity watch stayed paused 80 s and more while renewals (the
//! controller's own requeues, not triggers) carried on. Hence [`NoTriggerPause`] where every
//! trigger stream backs off on its own, and [`WatchBackoff`] where the controller builds its
//! only watch itself.

use std::time::Duration;

use kube::runtime::utils::Backoff;

const FIRST: Duration = Duration::from_millis(500);
const MAX: Duration = Duration::from_secs(5);

/// The watches' backoff.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        // Up to a fifth off, so replicas and watches do not retry in step.
        Some(wait.mul_f64(1.0 - rand::random::<f64>() * 0.2))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST;
    }
}

/// The trigger backoff of a controller whose trigger streams each carry their own
/// [`WatchBackoff`]: no pause, so one watch's error never holds back the others.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTriggerPause;

impl Iterator for NoTriggerPause {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl Backoff for NoTriggerPause {
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_five_seconds_and_resets() {
        let mut b = WatchBackoff::default();
        let waits: Vec<Duration> = (0..6).filter_map(|_| b.next()).collect();
        let caps = [0.5, 1.0, 2.0, 4.0, 5.0, 5.0];
        for (wait, cap) in waits.iter().zip(caps) {
            assert!(
                wait.as_secs_f64() <= cap && wait.as_secs_f64() >= cap * 0.8,
                "{waits:?}"
            );
        }
        b.reset();
        assert!(b.next().is_some_and(|w| w <= FIRST));
    }
}
