//! The exchange's budget: how many calls per second each account gets in each region
//! ([`limit`]), who gets the next turn when refreshes outnumber it ([`queue`], sharing by
//! STS calls, handed out by [`gate`] only when the turn's account has budget), and which
//! endpoints are down, parking the refreshes that need them ([`health`]).
//! One per process, whatever the watch scopes: the quotas it guards are the accounts'.

pub mod gate;
pub mod health;
pub mod limit;
pub mod queue;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::util::keyed::Key;
use gate::Gate;
pub use gate::Turn;
pub use health::Admit;
pub use limit::{Demand, LimitSettings, Limiter, Quota};
pub use queue::Urgency;

/// The process's exchange budget: the rate limiter every exchanger calls through, and the
/// gate reconciles take turns at.
pub struct Budget {
    gate: Arc<Gate>,
    limiter: Arc<Limiter>,
}

impl Budget {
    /// `slots` turns at once, calls limited by `limit` per account and region.
    pub fn new(slots: usize, limit: LimitSettings) -> Self {
        let limiter = Arc::new(Limiter::new(limit));
        Self {
            gate: Gate::new(slots, limiter.clone()),
            limiter,
        }
    }

    /// Reports the queue's length and each turn's wait to `observer`.
    pub fn observe(&self, observer: Arc<dyn BudgetObserver>) {
        self.gate.observe(observer);
    }

    /// The rate limiter, for the exchangers to call through.
    pub fn limiter(&self) -> Arc<Limiter> {
        self.limiter.clone()
    }

    /// Where the exchangers report whether each endpoint answered.
    pub fn reports(&self) -> Arc<dyn EndpointReports> {
        self.gate.clone()
    }

    /// Whether the refresh of `key` may call `endpoint` now ([`health::Health::admit`]); a
    /// refresh told to wait is parked until a probe gets an answer.
    pub fn admit(&self, endpoint: &str, key: &Key, urgency: Urgency) -> Admit {
        self.gate.admit(endpoint, key, urgency)
    }

    /// The refresh of `key` failed because `endpoint` does not answer: parked until it does.
    /// False when `endpoint` is not known to be down (the refresh backs off on its own).
    pub fn park(&self, endpoint: &str, key: &Key, urgency: Urgency) -> bool {
        self.gate.park(endpoint, key, urgency)
    }

    /// Hands out turns as slots free and budgets refill; runs until the process ends.
    pub async fn dispatch(&self) {
        self.gate.clone().dispatch().await;
    }

    /// A stream of Identities whose turn has come, for one watch scope's controller.
    pub fn trigger(&self) -> futures::channel::mpsc::UnboundedReceiver<Key> {
        self.gate.trigger()
    }

    /// Asks for `key`'s turn, expected to cost `demand`.
    pub fn enter(&self, key: &Key, urgency: Urgency, demand: Demand) -> Turn {
        self.gate.enter(key, urgency, demand)
    }

    /// STS throttled `key`'s turn: back in line for its account's budget.
    pub fn requeue(&self, key: &Key, urgency: Urgency, demand: Demand) {
        self.gate.requeue(key, urgency, demand);
    }

    /// `key` needs no turn (any more), nor a probe's answer.
    pub fn leave(&self, key: &Key) {
        self.gate.leave(key);
    }

    /// Whether `key` waits for its turn or has been granted one.
    pub fn knows(&self, key: &Key) -> bool {
        self.gate.knows(key)
    }

    /// What an Identity waiting behind `calls` queued for `quota` reports at `now`, its
    /// credentials expiring at `expiry` (see [`queue::waiting_condition`]).
    pub fn waiting_condition(
        &self,
        now: Timestamp,
        expiry: Option<Timestamp>,
        (calls, quota): (u64, Option<&Quota>),
    ) -> Option<(bool, String)> {
        let rate = quota.map_or_else(|| self.limiter.ceiling(), |q| self.limiter.rate(q));
        queue::waiting_condition(now, expiry, calls, rate)
    }
}

/// What the exchangers tell the budget after each call: whether its endpoint answered.
pub trait EndpointReports: Send + Sync {
    /// Any answer from STS (an error code too, but a 5xx).
    fn answered(&self, endpoint: &str);
    /// No answer: the connection failed, the call timed out, or a 5xx.
    fn failed(&self, endpoint: &str);
}

/// What the budget reports (metrics).
pub trait BudgetObserver: Send + Sync {
    /// The STS calls waiting in line now.
    fn queued_calls(&self, calls: u64);
    /// A turn was granted after waiting this long in line (zero: at once).
    fn waited(&self, wait: Duration);
}
