//! The exchange's budget: how many calls per second each region's STS gets ([`limit`]), who
//! gets the next turn when refreshes outnumber it ([`queue`], handed out by [`gate`]), and
//! which endpoints are down, parking the refreshes that need them ([`health`]).
//! One per process, whatever the watch scopes: the quota it guards is the account's.

pub mod gate;
pub mod health;
pub mod limit;
pub mod queue;

use std::sync::Arc;

use jiff::Timestamp;

use crate::util::keyed::Key;
use gate::Gate;
pub use gate::Turn;
pub use health::Admit;
pub use limit::{LimitSettings, Limiter};
pub use queue::Urgency;

/// The process's exchange budget: the rate limiter every exchanger calls through, and the
/// gate reconciles take turns at.
pub struct Budget {
    gate: Arc<Gate>,
    limiter: Arc<Limiter>,
}

impl Budget {
    /// `slots` turns at once, calls limited by `limit` per region.
    pub fn new(slots: usize, limit: LimitSettings) -> Self {
        Self {
            gate: Gate::new(slots),
            limiter: Arc::new(Limiter::new(limit)),
        }
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

    /// Hands out turns as slots free; runs until the process ends.
    pub async fn dispatch(&self) {
        self.gate.clone().dispatch().await;
    }

    /// A stream of Identities whose turn has come, for one watch scope's controller.
    pub fn trigger(&self) -> futures::channel::mpsc::UnboundedReceiver<Key> {
        self.gate.trigger()
    }

    /// Asks for `key`'s turn.
    pub fn enter(&self, key: &Key, urgency: Urgency) -> Turn {
        self.gate.enter(key, urgency)
    }

    /// `key` needs no turn (any more), nor a probe's answer.
    pub fn leave(&self, key: &Key) {
        self.gate.leave(key);
    }

    /// Whether `key` waits for its turn or has been granted one.
    pub fn knows(&self, key: &Key) -> bool {
        self.gate.knows(key)
    }

    /// What an Identity waiting behind `waiting` others reports at `now`, its credentials
    /// expiring at `expiry` (see [`queue::waiting_condition`]).
    pub fn waiting_condition(
        &self,
        now: Timestamp,
        expiry: Option<Timestamp>,
        waiting: usize,
    ) -> Option<(bool, String)> {
        queue::waiting_condition(now, expiry, waiting, self.limiter.ceiling())
    }
}

/// What the exchangers tell the budget after each call: whether its endpoint answered.
pub trait EndpointReports: Send + Sync {
    /// Any answer from STS (an error code too, but a 5xx).
    fn answered(&self, endpoint: &str);
    /// No answer: the connection failed, the call timed out, or a 5xx.
    fn failed(&self, endpoint: &str);
}
