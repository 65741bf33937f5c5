//! The client-side STS rate limit: one token bucket per account and region (AWS's STS quota
//! is per account and region, and shared with every other caller in the account), whose
//! rate backs off when STS answers `Throttling` (halved, at most once per second) and creeps
//! back by one call per second per second of calls that pass (AIMD, as TCP and the AWS SDKs'
//! adaptive retry mode do). A `Throttling` answer for one account slows only that account's
//! bucket in that region.
//!
//! The gate ([`super::gate`]) grants a turn only when its first account's bucket has a
//! token, and pays for the turn's expected calls then ([`Limiter::reserve`]); the calls of
//! the turn spend that prepayment ([`Prepaid`], carried by the turn's task) instead of
//! waiting, and what a turn did not spend goes back. So no turn waits for rate budget while
//! it holds a slot: it waits in line, holding nothing.
//!
//! Not `governor`: its quota is fixed when the limiter is built, and a backing-off rate
//! would mean replacing the limiter (losing its state) on every change. The bucket below is
//! forty lines of arithmetic, tested as a plain function of time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Calls per second per account and region when the operator sets nothing. AWS's
/// documented STS quota is 600 requests per second per account and region, shared by every
/// caller in the account (CI, people, other controllers): the controller takes a small slice
/// of it.
pub const DEFAULT_RATE: f64 = 50.0;

/// The slowest the back-off goes, calls per second.
const MIN_RATE: f64 = 1.0;
/// Two throttled answers closer than this count as one (they report the same overload).
const BACKOFF_WINDOW: Duration = Duration::from_secs(1);

/// The quota an STS call is charged to: an account in a region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quota {
    /// The 12-digit account (empty when the role ARN names none).
    pub account: String,
    /// The region whose endpoint the call goes to.
    pub region: String,
}

impl Quota {
    /// The quota of a call that assumes `role_arn` in `region`: the role's account, the one
    /// account known before the call (an unsigned `AssumeRoleWithWebIdentity` has no caller
    /// account) and, in a chain within one account, the caller's as well.
    pub fn of(role_arn: &str, region: &str) -> Self {
        let account = role_arn
            .strip_prefix("arn:")
            .and_then(|r| r.split(':').nth(3))
            .unwrap_or_default();
        Self {
            account: account.to_owned(),
            region: region.to_owned(),
        }
    }
}

/// What one refresh is expected to cost: its STS calls per quota, its first call's first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    /// (quota, calls), in the order the calls are made.
    pub calls: Vec<(Quota, u32)>,
}

impl Demand {
    /// Adds one call charged to `quota`.
    pub fn add(&mut self, quota: Quota) {
        match self.calls.iter_mut().find(|(q, _)| *q == quota) {
            Some((_, n)) => *n += 1,
            None => self.calls.push((quota, 1)),
        }
    }

    /// The quota whose budget the turn waits for: its first call's.
    pub fn first(&self) -> Option<&Quota> {
        self.calls.first().map(|(q, _)| q)
    }

    /// How many calls in all.
    pub fn total(&self) -> u32 {
        self.calls.iter().map(|(_, n)| n).sum()
    }
}

/// The limit's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitSettings {
    /// Calls per second per account and region (the ceiling; the rate backs off below it).
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

/// One account's bucket in one region, as a function of the instants it is given.
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

    /// How long from `now` until a call could go (a whole token is there), taking nothing.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    /// Pays for `calls` at `now`, into debt if need be (the next turn waits for it).
    pub fn reserve(&mut self, calls: u32, now: Instant) {
        self.refill(now);
        self.tokens -= f64::from(calls);
    }

    /// Gives back `calls` paid for and not made.
    pub fn refund(&mut self, calls: u32, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens + f64::from(calls)).min(self.burst);
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

/// Calls a turn paid for at its grant and has not made yet, per quota.
#[derive(Debug, Default)]
pub struct Prepaid(Mutex<HashMap<Quota, u32>>);

impl Prepaid {
    /// Prepaid `demand`.
    pub fn new(demand: &Demand) -> Self {
        Self(Mutex::new(demand.calls.iter().cloned().collect()))
    }

    /// Spends one call of `quota`, if one is left.
    fn spend(&self, quota: &Quota) -> bool {
        let mut left = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match left.get_mut(quota) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// What is left, emptied.
    pub fn take_left(&self) -> Vec<(Quota, u32)> {
        let mut left = self.0.lock().unwrap_or_else(|p| p.into_inner());
        left.drain().filter(|(_, n)| *n > 0).collect()
    }
}

tokio::task_local! {
    /// The current turn's prepaid calls: carried by the reconcile's task, so that the seam
    /// and every exchanger's signature stay as they are.
    static PREPAID: Arc<Prepaid>;
}

/// Runs `fut` (a turn's exchanges) spending `prepaid` before any bucket.
pub async fn with_prepaid<F: std::future::Future>(prepaid: Arc<Prepaid>, fut: F) -> F::Output {
    PREPAID.scope(prepaid, fut).await
}

/// The process's limit: one [`Bucket`] per account and region.
pub struct Limiter {
    settings: LimitSettings,
    buckets: Mutex<HashMap<Quota, Bucket>>,
}

impl Limiter {
    /// A limiter with `settings` for every account and region.
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, quota: &Quota, f: impl FnOnce(&mut Bucket, Instant) -> T) -> T {
        let now = Instant::now();
        // A panic while holding this lock cannot leave a bucket half-updated.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry(quota.clone())
            .or_insert_with(|| Bucket::new(self.settings, now));
        f(bucket, now)
    }

    /// A call charged to `quota`: spends the turn's prepayment, else waits for a slot (a
    /// call the turn did not expect, such as a cached parent that expired meanwhile).
    pub async fn acquire(&self, quota: &Quota) {
        if PREPAID.try_with(|p| p.spend(quota)).unwrap_or(false) {
            return;
        }
        let wait = self.with(quota, Bucket::take);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// How long until `quota` has a token (zero: now).
    pub fn wait(&self, quota: &Quota) -> Duration {
        self.with(quota, |b, now| b.wait(now))
    }

    /// Pays for `demand`'s calls now.
    pub fn reserve(&self, demand: &Demand) {
        for (q, n) in &demand.calls {
            self.with(q, |b, now| b.reserve(*n, now));
        }
    }

    /// Gives back calls paid for and not made.
    pub fn refund(&self, left: &[(Quota, u32)]) {
        for (q, n) in left {
            self.with(q, |b, now| b.refund(*n, now));
        }
    }

    /// STS throttled a call charged to `quota`.
    pub fn throttled(&self, quota: &Quota) {
        self.with(quota, Bucket::throttled);
    }

    /// A call charged to `quota` passed.
    pub fn passed(&self, quota: &Quota) {
        self.with(quota, |b, _| b.passed());
    }

    /// `quota`'s current rate, calls per second.
    pub fn rate(&self, quota: &Quota) -> f64 {
        self.with(quota, |b, _| b.rate())
    }

    /// The ceiling rate, calls per second per account and region.
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

    fn quota(account: &str, region: &str) -> Quota {
        Quota::of(&format!("arn:aws:iam::{account}:role/r"), region)
    }

    #[test]
    fn each_account_and_region_has_its_own_budget() {
        let l = Limiter::new(settings(1.0, 1));
        let wait = |q: &Quota| l.with(q, Bucket::take);
        let (a, b) = (quota("111111111111", "us-east-1"), quota("222222222222", "us-east-1"));
        assert_eq!(a.account, "111111111111");
        assert_eq!(wait(&a), Duration::ZERO);
        assert_eq!(wait(&b), Duration::ZERO, "another account, same region");
        assert_eq!(wait(&quota("111111111111", "eu-west-1")), Duration::ZERO);
        assert!(wait(&a) > Duration::from_millis(900));
    }

    #[test]
    fn throttling_for_one_account_leaves_another_untouched() {
        let l = Limiter::new(settings(40.0, 40));
        let (a, b) = (quota("111111111111", "us-east-1"), quota("222222222222", "us-east-1"));
        l.throttled(&a);
        assert_eq!(l.rate(&a), 20.0);
        assert_eq!(l.rate(&b), 40.0);
        assert!(l.wait(&a) > Duration::ZERO, "A's saved tokens are gone");
        assert_eq!(l.wait(&b), Duration::ZERO);
    }

    #[test]
    fn a_reservation_goes_into_debt_and_a_refund_pays_it_back() {
        let t0 = Instant::now();
        let mut b = Bucket::new(settings(10.0, 2), t0);
        assert_eq!(b.wait(t0), Duration::ZERO);
        // A turn of four calls with two tokens: the next turn waits for the debt (0.3 s).
        b.reserve(4, t0);
        assert!((b.wait(t0).as_secs_f64() - 0.3).abs() < 1e-9);
        // It made one: three come back, up to the burst.
        b.refund(3, t0);
        assert_eq!(b.wait(t0), Duration::ZERO);
        assert_eq!(b.take(t0), Duration::ZERO);
        assert!(b.take(t0) > Duration::ZERO, "never above the burst");
    }

    #[tokio::test]
    async fn a_turn_spends_its_prepayment_before_any_bucket() {
        let l = Limiter::new(settings(1.0, 1));
        let q = quota("111111111111", "us-east-1");
        let mut demand = Demand::default();
        demand.add(q.clone());
        demand.add(q.clone());
        assert_eq!((demand.total(), demand.first()), (2, Some(&q)));
        l.reserve(&demand);
        let prepaid = Arc::new(Prepaid::new(&demand));
        let started = Instant::now();
        // Two calls, paid for: neither waits, though the bucket is in debt.
        with_prepaid(prepaid.clone(), async {
            l.acquire(&q).await;
            l.acquire(&q).await;
        })
        .await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(prepaid.take_left().is_empty());
    }

    #[test]
    fn throttling_codes() {
        assert!(is_throttling("Throttling"));
        assert!(is_throttling("RequestLimitExceeded"));
        assert!(!is_throttling("AccessDenied"));
    }
}
