//! The local STS's request quota: a token bucket over all actions that answers `Throttling`
//! (HTTP 400, as AWS does) beyond it.

use std::sync::Mutex;
use std::time::Instant;

use super::config::RateLimit;

pub struct Throttle {
    limit: RateLimit,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            state: Mutex::new((f64::from(limit.burst), Instant::now())),
        }
    }

    /// Whether a call at `now` is within the quota (and takes its token).
    pub fn admit(&self, now: Instant) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = *s;
        let refilled = (tokens + now.saturating_duration_since(at).as_secs_f64() * self.limit.rate)
            .min(f64::from(self.limit.burst));
        let admitted = refilled >= 1.0;
        *s = (if admitted { refilled - 1.0 } else { refilled }, at.max(now));
        admitted
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn admits_the_burst_then_the_rate() {
        let t = Throttle::new(RateLimit { rate: 10.0, burst: 2 });
        let t0 = Instant::now();
        assert!(t.admit(t0) && t.admit(t0));
        assert!(!t.admit(t0));
        assert!(!t.admit(t0 + Duration::from_millis(50)));
        assert!(t.admit(t0 + Duration::from_millis(100)));
    }
}
