//! The client-side STS rate limit: one token bucket per region (AWS's STS quota is per
//! account and region, and shared with every other caller in the account), whose rate backs
//! off when STS answers `Throttling` (halved, at most once per second) and creeps back by one
//! call per second per second of calls that pass (AIMD, as TCP and the AWS SDKs' adaptive
//! retry mode do).
//!
//! Not `governor`: its quota is fixed when the limiter is built, and a backing-off rate
//! would mean replacing the limiter (losing its state) on every change. The bucket below is
//! forty lines of arithmetic, tested as a plain function of time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Calls per second per region when the operator sets nothing. AWS's documented STS quota
/// is 600 requests per second per account and region, shared by every caller in the
/// account (CI, people, other controllers): the controller takes a small slice of it.
pub const DEFAULT_RATE: f64 = 50.0;

/// The slowest the back-off goes, calls per second.
const MIN_RATE: f64 = 1.0;
/// Two throttled answers closer than this count as one (they report the same overload).
const BACKOFF_WINDOW: Duration = Duration::from_secs(1);

/// The limit's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitSettings {
    /// Calls per second per region (the ceiling; the rate backs off below it).
    pub rate: f64,
    /// Calls that may go at once after a quiet period.
    pub burst: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            rate: DEFAULT_RATE,
            burst: DEFAULT_RATE as u32,
        }
    }
}

/// One region's bucket, as a function of the instants it is given.
#[derive(Clone, Debug)]
pub struct Bucket {
    ceiling: f64,
    burst: f64,
    rate: f64,
    /// Tokens at `at`; negative: calls already promised a later slot.
    tokens: f64,
    at: Instant,
    last_backoff: Option<Instant>,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(settings: LimitSettings, now: Instant) -> Self {
        // The operator's rate as given (the flag accepts any positive rate, such as 0.5/s);
        // MIN_RATE only bounds how far `Throttling` answers push it down.
        let ceiling = settings.rate.max(f64::MIN_POSITIVE);
        let burst = f64::from(settings.burst.max(1));
        Self {
            ceiling,
            burst,
            rate: ceiling,
            tokens: burst,
            at: now,
            last_backoff: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = self.at.max(now);
    }

    /// Takes one token for a call asked for at `now`; returns how long the call must wait.
    /// Callers are served in the order they ask (each waits for the slot it reserved).
    pub fn take(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// STS answered `Throttling` at `now`: halve the rate (once per window) and drop the
    /// tokens saved up, so the next calls wait.
    pub fn throttled(&mut self, now: Instant) {
        self.refill(now);
        if self
            .last_backoff
            .is_some_and(|t| now.saturating_duration_since(t) < BACKOFF_WINDOW)
        {
            return;
        }
        self.last_backoff = Some(now);
        self.rate = (self.rate / 2.0).max(MIN_RATE.min(self.ceiling));
        self.tokens = self.tokens.min(0.0);
    }

    /// A call passed: the rate grows by one call per second for every second's worth of calls.
    pub fn passed(&mut self) {
        self.rate = (self.rate + 1.0 / self.rate).min(self.ceiling);
    }

    /// The current rate, calls per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// The process's limit: one [`Bucket`] per region.
pub struct Limiter {
    settings: LimitSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// A limiter with `settings` for every region.
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, region: &str, f: impl FnOnce(&mut Bucket, Instant) -> T) -> T {
        let now = Instant::now();
        // A panic while holding this lock cannot leave a bucket half-updated.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry(region.to_owned())
            .or_insert_with(|| Bucket::new(self.settings, now));
        f(bucket, now)
    }

    /// Waits for `region`'s next slot.
    pub async fn acquire(&self, region: &str) {
        let wait = self.with(region, Bucket::take);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// STS throttled a call in `region`.
    pub fn throttled(&self, region: &str) {
        self.with(region, Bucket::throttled);
    }

    /// A call in `region` passed.
    pub fn passed(&self, region: &str) {
        self.with(region, |b, _| b.passed());
    }

    /// The ceiling rate, calls per second per region.
    pub fn ceiling(&self) -> f64 {
        self.settings.rate
    }
}

/// Whether an STS error code means "slow down".
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: f64, burst: u32) -> LimitSettings {
        LimitSettings { rate, burst }
    }

    /// When each of `n` calls asked at once may go, seconds from the start.
    fn slots(bucket: &mut Bucket, at: Instant, n: usize) -> Vec<f64> {
        (0..n).map(|_| bucket.take(at).as_secs_f64()).collect()
    }

    #[test]
    fn a_burst_goes_at_once_then_the_rate_paces() {
        let t0 = Instant::now();
        let mut b = Bucket::new(settings(10.0, 3), t0);
        let s = slots(&mut b, t0, 6);
        assert_eq!(&s[..3], [0.0, 0.0, 0.0]);
        for (got, want) in s[3..].iter().zip([0.1, 0.2, 0.3]) {
            assert!((got - want).abs() < 1e-9, "{s:?}");
        }
    }

    #[test]
    fn n_calls_take_n_over_rate() {
        // The storm bound: 1 000 calls at 50/s with a burst of 50 end after (1000-50)/50 s.
        let t0 = Instant::now();
        let mut b = Bucket::new(settings(50.0, 50), t0);
        let last = slots(&mut b, t0, 1000).pop().unwrap();
        assert!((last - 19.0).abs() < 1e-6, "{last}");
    }

    #[test]
    fn tokens_refill_with_time_up_to_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(settings(10.0, 2), t0);
        slots(&mut b, t0, 2);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(slots(&mut b, later, 3), [0.0, 0.0, 0.1]);
    }

    #[test]
    fn throttling_halves_the_rate_once_per_window_and_recovery_is_additive() {
        let t0 = Instant::now();
        let mut b = Bucket::new(settings(40.0, 40), t0);
        b.throttled(t0);
        assert_eq!(b.rate(), 20.0);
        // The same overload reported by many calls in flight: one halving.
        b.throttled(t0 + Duration::from_millis(500));
        assert_eq!(b.rate(), 20.0);
        b.throttled(t0 + Duration::from_secs(2));
        assert_eq!(b.rate(), 10.0);
        // The saved tokens are gone: the next call waits a slot.
        assert!(b.take(t0 + Duration::from_secs(2)) > Duration::ZERO);
        // Each passing call adds 1/rate: one call/s more per second of calls, so after n calls
        // rate² has grown by 2n: from 10/s, 100 calls give sqrt(300).
        for _ in 0..100 {
            b.passed();
        }
        assert!((b.rate() - 300f64.sqrt()).abs() < 0.1, "{}", b.rate());
        for _ in 0..10_000 {
            b.passed();
        }
        assert_eq!(b.rate(), 40.0, "never above the ceiling");
    }

    #[test]
    fn the_rate_never_drops_below_the_floor() {
        let t0 = Instant::now();
        let mut b = Bucket::new(settings(4.0, 1), t0);
        for i in 0..10 {
            b.throttled(t0 + Duration::from_secs(2 * i));
        }
        assert_eq!(b.rate(), MIN_RATE);
    }

    #[test]
    fn a_rate_below_one_call_per_second_is_kept() {
        // `--sts-rate-limit 0.5`: one call every two seconds, not the throttling floor's one.
        let t0 = Instant::now();
        let mut b = Bucket::new(settings(0.5, 1), t0);
        assert_eq!(b.take(t0), Duration::ZERO);
        assert_eq!(b.take(t0), Duration::from_secs(2));
        b.throttled(t0);
        assert_eq!(b.rate(), 0.5, "throttling never raises the rate above the operator's");
    }

    #[test]
    fn regions_have_separate_budgets() {
        let l = Limiter::new(settings(1.0, 1));
        let wait = |r: &str| l.with(r, Bucket::take);
        assert_eq!(wait("us-east-1"), Duration::ZERO);
        assert_eq!(wait("eu-west-1"), Duration::ZERO);
        assert!(wait("us-east-1") > Duration::from_millis(900));
    }

    #[test]
    fn throttling_codes() {
        assert!(is_throttling("Throttling"));
        assert!(is_throttling("RequestLimitExceeded"));
        assert!(!is_throttling("AccessDenied"));
    }
}
