//! Turns at the STS budget for reconciles. A reconcile that must call STS asks for a turn
//! with what it expects to cost ([`Demand`]) and joins the [`FairQueue`]; if it is next in
//! line, a slot is free and its account's budget is there, it goes at once. Otherwise it
//! returns, holding no reconcile slot and no budget while it waits. When a slot frees or a
//! budget refills, the gate pops the next key whose budget is there, pays for its expected
//! calls ([`Limiter::reserve`]) and triggers that Identity's reconcile, which then finds its
//! turn granted. The turn's calls spend that prepayment instead of waiting for the bucket;
//! what it did not spend goes back when the turn ends.
//!
//! Budget before the slot, rather than a slot given back while a call waits: a turn then
//! never sleeps holding a slot (nor a kube worker), and one account out of budget cannot fill
//! the slots with turns that wait for it while another account's budget goes unused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use tokio::sync::Notify;

use super::health::{Admit, Health};
use super::limit::{Demand, Limiter, Prepaid, Quota};
use super::queue::{FairQueue, Urgency};
use super::{BudgetObserver, EndpointReports};
use crate::util::keyed::Key;

/// A granted turn not taken within this long (the Identity was deleted, or no longer needs
/// a refresh) goes back to the pool.
const GRANT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the dispatcher looks without being woken (stale grants, due probes).
const TICK: Duration = Duration::from_millis(500);

/// A turn handed out by the dispatcher and not yet taken by its reconcile.
struct Grant {
    at: Instant,
    /// What was paid for it.
    demand: Demand,
}

#[derive(Default)]
struct State {
    queue: FairQueue<Key>,
    granted: HashMap<Key, Grant>,
    /// When each waiting key joined the line.
    since: HashMap<Key, Instant>,
    /// Turns in use or granted.
    busy: usize,
    /// Where granted keys are sent: one trigger per watch scope.
    triggers: Vec<mpsc::UnboundedSender<Key>>,
    /// The endpoints that are down, and the refreshes parked until they answer.
    health: Health,
}

impl State {
    /// Grants `key` a turn now, paid with `demand`, and triggers its reconcile.
    fn grant(&mut self, key: Key, demand: Demand, now: Instant) {
        self.busy += 1;
        self.granted.insert(key.clone(), Grant { at: now, demand });
        self.triggers.retain(|t| t.unbounded_send(key.clone()).is_ok());
    }

    /// Gives back `key`'s granted turn, if it holds one: what was paid for it.
    fn ungrant(&mut self, key: &Key) -> Option<Demand> {
        let grant = self.granted.remove(key)?;
        self.busy -= 1;
        Some(grant.demand)
    }

    /// Takes `key` out of line.
    fn unqueue(&mut self, key: &Key) {
        self.queue.remove(key);
        self.since.remove(key);
    }
}

/// The process's gate (one, like the STS budget it guards).
pub struct Gate {
    state: Mutex<State>,
    slots: usize,
    wake: Notify,
    limiter: Arc<Limiter>,
    observer: OnceLock<Arc<dyn BudgetObserver>>,
}

/// What asking for a turn gave.
pub enum Turn {
    /// Go: the slot is held until this is dropped.
    Go(Permit),
    /// Wait: the reconcile is triggered again when its turn comes.
    Queued {
        /// The STS calls queued for its account and region, its own included.
        calls: u64,
        /// Its account and region, if it calls STS at all.
        quota: Option<Quota>,
    },
}

/// A held turn, with the calls paid for it.
pub struct Permit {
    gate: Arc<Gate>,
    prepaid: Arc<Prepaid>,
}

impl Permit {
    /// Runs the turn's exchanges, spending what was paid for it before any bucket.
    pub async fn run<F: std::future::Future>(&self, exchanges: F) -> F::Output {
        super::limit::with_prepaid(self.prepaid.clone(), exchanges).await
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.lock().busy -= 1;
        self.gate.limiter.refund(&self.prepaid.take_left());
        self.gate.wake.notify_one();
    }
}

impl Gate {
    /// A gate with `slots` turns at once, paying for turns from `limiter`.
    pub fn new(slots: usize, limiter: Arc<Limiter>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            slots: slots.max(1),
            wake: Notify::new(),
            limiter,
            observer: OnceLock::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update below leaves the state whole before it could panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the queue's length and waits are reported (once).
    pub fn observe(&self, observer: Arc<dyn BudgetObserver>) {
        let _ = self.observer.set(observer);
    }

    /// A stream of keys whose turn has come, for one watch scope's controller.
    pub fn trigger(&self) -> mpsc::UnboundedReceiver<Key> {
        let (tx, rx) = mpsc::unbounded();
        self.lock().triggers.push(tx);
        rx
    }

    fn permit(self: &Arc<Self>, demand: &Demand) -> Permit {
        Permit {
            gate: self.clone(),
            prepaid: Arc::new(Prepaid::new(demand)),
        }
    }

    /// Asks for `key`'s turn, expected to cost `demand`.
    pub fn enter(self: &Arc<Self>, key: &Key, urgency: Urgency, demand: Demand) -> Turn {
        let now = Instant::now();
        let mut s = self.lock();
        if let Some(grant) = s.granted.remove(key) {
            // Released after an outage, or a probe: granted before its cost was known.
            let paid = if grant.demand.calls.is_empty() {
                self.limiter.reserve(&demand);
                demand
            } else {
                grant.demand
            };
            return Turn::Go(self.permit(&paid));
        }
        let quota = demand.first().cloned();
        s.queue.push(key.clone(), &key.0, urgency, demand);
        s.since.entry(key.clone()).or_insert(now);
        let mine = self.fill(&mut s, now, Some(key));
        self.report(&s);
        match mine {
            Some(paid) => Turn::Go(self.permit(&paid)),
            None => Turn::Queued {
                calls: s.queue.calls_for(quota.as_ref()),
                quota,
            },
        }
    }

    /// Serves the line while slots are free: each key whose quota has budget, in fair order,
    /// paid for. `me` (the caller) is not triggered: what it was paid is returned.
    fn fill(&self, s: &mut State, now: Instant, me: Option<&Key>) -> Option<Demand> {
        let mut mine = None;
        while s.busy < self.slots {
            let limiter = &self.limiter;
            let Some((key, demand)) = s.queue.pop(|q| q.is_none_or(|q| limiter.wait(q).is_zero())) else {
                break;
            };
            limiter.reserve(&demand);
            if let (Some(o), Some(since)) = (self.observer.get(), s.since.remove(&key)) {
                o.waited(now.saturating_duration_since(since));
            }
            if Some(&key) == me {
                s.busy += 1;
                mine = Some(demand);
            } else {
                s.grant(key, demand, now);
            }
        }
        mine
    }

    fn report(&self, s: &State) {
        if let Some(o) = self.observer.get() {
            o.queued_calls(s.queue.calls());
        }
    }

    /// Gives back what `key`'s granted turn was paid, if it had one, and wakes the dispatcher.
    fn give_back(&self, mut s: std::sync::MutexGuard<'_, State>, key: &Key) {
        if let Some(paid) = s.ungrant(key) {
            drop(s);
            self.limiter.refund(&paid.calls);
            self.wake.notify_one();
        }
    }

    /// `key` needs no turn (any more): out of line, not parked, and a granted turn goes back.
    pub fn leave(&self, key: &Key) {
        let mut s = self.lock();
        s.unqueue(key);
        s.health.forget(key);
        self.give_back(s, key);
    }

    /// Whether the refresh of `key` may call `endpoint` now; parked (out of line, its granted
    /// turn given back) when it must wait for a probe's answer.
    pub fn admit(&self, endpoint: &str, key: &Key, urgency: Urgency) -> Admit {
        let mut s = self.lock();
        let admit = s.health.admit(endpoint, key, urgency, Instant::now());
        if let Admit::Parked { .. } = admit {
            s.unqueue(key);
            self.give_back(s, key);
        }
        admit
    }

    /// Parks `key` until `endpoint` answers; false when it is not known to be down.
    pub fn park(&self, endpoint: &str, key: &Key, urgency: Urgency) -> bool {
        let mut s = self.lock();
        if !s.health.is_down(endpoint) {
            return false;
        }
        s.health.park(endpoint, key, urgency);
        true
    }

    /// Puts `key` back in line after its turn (STS throttled it): served again when its
    /// account's budget allows, holding nothing meanwhile.
    pub fn requeue(&self, key: &Key, urgency: Urgency, demand: Demand) {
        let mut s = self.lock();
        s.queue.push(key.clone(), &key.0, urgency, demand);
        s.since.entry(key.clone()).or_insert_with(Instant::now);
        self.report(&s);
        drop(s);
        self.wake.notify_one();
    }

    /// Whether `key` waits for its turn or has been granted one.
    pub fn knows(&self, key: &Key) -> bool {
        let s = self.lock();
        s.queue.contains(key) || s.granted.contains_key(key)
    }

    /// How many wait.
    pub fn waiting(&self) -> usize {
        self.lock().queue.len()
    }

    /// How long until a waiting key's quota has budget (`TICK` at most; a freed slot or a
    /// new key wakes the dispatcher sooner).
    fn next_budget(&self, s: &State) -> Duration {
        if s.busy >= self.slots {
            return TICK;
        }
        s.queue
            .quotas()
            .map(|q| q.map_or(Duration::ZERO, |q| self.limiter.wait(q)))
            .min()
            .unwrap_or(TICK)
            .clamp(Duration::from_millis(1), TICK)
    }

    /// Hands out turns as slots free and budgets refill, and a turn to each probe that is due
    /// (a probe goes even when every slot is taken: it is one call); runs until the process
    /// ends.
    pub async fn dispatch(self: Arc<Self>) {
        let mut sleep = TICK;
        loop {
            let _ = tokio::time::timeout(sleep, self.wake.notified()).await;
            let now = Instant::now();
            let mut s = self.lock();
            let stale: Vec<Key> = s
                .granted
                .iter()
                .filter(|(_, g)| now.duration_since(g.at) > GRANT_TIMEOUT)
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                if let Some(paid) = s.ungrant(&k) {
                    self.limiter.refund(&paid.calls);
                }
            }
            for probe in s.health.due_probes(now) {
                s.grant(probe, Demand::default(), now);
            }
            self.fill(&mut s, now, None);
            self.report(&s);
            sleep = self.next_budget(&s);
        }
    }
}

impl EndpointReports for Gate {
    fn answered(&self, endpoint: &str) {
        let mut s = self.lock();
        let released = s.health.answered(endpoint);
        if released.is_empty() {
            return;
        }
        tracing::info!(
            endpoint,
            parked = released.len(),
            "STS endpoint answers again: parked refreshes released"
        );
        // Through the fair queue: renewals first, earliest expiry first, namespaces sharing
        // by calls. Their cost is not known here: one call each until their reconcile asks.
        let now = Instant::now();
        for (key, urgency) in released {
            let ns = key.0.clone();
            s.since.entry(key.clone()).or_insert(now);
            s.queue.push(key, &ns, urgency, Demand::default());
        }
        drop(s);
        self.wake.notify_one();
    }

    fn failed(&self, endpoint: &str) {
        let mut s = self.lock();
        if !s.health.is_down(endpoint) {
            tracing::warn!(
                endpoint,
                "STS endpoint does not answer: refreshes that need it wait for a probe's answer"
            );
        }
        s.health.failed(endpoint, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn key(ns: &str, name: &str) -> Key {
        (ns.to_owned(), name.to_owned())
    }

    /// One call charged to `account`.
    fn call(account: &str) -> Demand {
        let mut d = Demand::default();
        d.add(Quota::of(&format!("arn:aws:iam::{account}:role/r"), "us-east-1"));
        d
    }

    /// A gate whose budget never runs out.
    fn gate(slots: usize) -> Arc<Gate> {
        let limiter = Limiter::new(super::super::LimitSettings {
            rate: 1e6,
            burst: 1_000_000,
        });
        Gate::new(slots, Arc::new(limiter))
    }

    #[tokio::test]
    async fn turns_beyond_the_slots_wait_and_come_back_in_fair_order() {
        let gate = gate(1);
        let mut trigger = gate.trigger();
        tokio::spawn(gate.clone().dispatch());
        let Turn::Go(first) = gate.enter(&key("a", "0"), Urgency::Issue, call("1")) else {
            panic!("a free slot is taken at once");
        };
        for i in 1..4 {
            assert!(matches!(
                gate.enter(&key("a", &i.to_string()), Urgency::Issue, call("1")),
                Turn::Queued { .. }
            ));
        }
        assert!(matches!(
            gate.enter(&key("b", "0"), Urgency::Issue, call("1")),
            Turn::Queued { calls: 4, .. }
        ));
        drop(first);
        // Namespace b has had no turn yet: it goes before a's second.
        assert_eq!(trigger.next().await.unwrap(), key("b", "0"));
        let Turn::Go(b) = gate.enter(&key("b", "0"), Urgency::Issue, call("1")) else {
            panic!("granted");
        };
        drop(b);
        let next = trigger.next().await.unwrap();
        assert_eq!(next, key("a", "1"));
        // The triggered reconcile finds its turn granted; the slot is its own until dropped.
        let Turn::Go(p) = gate.enter(&next, Urgency::Issue, call("1")) else {
            panic!("granted");
        };
        drop(p);
        assert_eq!(trigger.next().await.unwrap(), key("a", "2"));
    }

    #[tokio::test]
    async fn parked_refreshes_are_released_through_the_fair_queue_when_a_probe_answers() {
        let gate = gate(4);
        let mut trigger = gate.trigger();
        tokio::spawn(gate.clone().dispatch());
        const EP: &str = "http://sts";
        gate.failed(EP);
        for (name, u) in [("late", Urgency::Renewal(200)), ("soon", Urgency::Renewal(100))] {
            assert!(matches!(gate.admit(EP, &key("a", name), u), Admit::Parked { .. }));
        }
        assert!(gate.park(EP, &key("b", "x"), Urgency::Issue));
        assert!(!gate.park("http://other", &key("b", "y"), Urgency::Issue));
        // One probe per interval, the most urgent first.
        let probe = trigger.next().await.unwrap();
        assert_eq!(probe, key("a", "soon"));
        assert_eq!(gate.admit(EP, &probe, Urgency::Renewal(100)), Admit::Probe);
        let Turn::Go(p) = gate.enter(&probe, Urgency::Renewal(100), call("1")) else {
            panic!("the probe's turn was granted");
        };
        // It gets an answer: the others go, through the queue, renewals first.
        gate.answered(EP);
        drop(p);
        assert_eq!(trigger.next().await.unwrap(), key("a", "late"));
        assert_eq!(trigger.next().await.unwrap(), key("b", "x"));
        assert_eq!(gate.admit(EP, &key("b", "x"), Urgency::Issue), Admit::Go);
    }

    #[tokio::test]
    async fn a_turn_not_needed_goes_back() {
        let gate = gate(1);
        let mut trigger = gate.trigger();
        tokio::spawn(gate.clone().dispatch());
        let Turn::Go(p) = gate.enter(&key("a", "0"), Urgency::Issue, call("1")) else {
            panic!()
        };
        gate.enter(&key("a", "1"), Urgency::Issue, call("1"));
        gate.enter(&key("a", "2"), Urgency::Issue, call("1"));
        drop(p);
        assert_eq!(trigger.next().await.unwrap(), key("a", "1"));
        // The Identity was deleted meanwhile: its granted turn frees the slot for the next.
        gate.leave(&key("a", "1"));
        assert_eq!(trigger.next().await.unwrap(), key("a", "2"));
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_turn_waits_for_its_accounts_budget_holding_no_slot() {
        // One call a second with no burst to spare: A's second turn must wait a second.
        let limiter = Arc::new(Limiter::new(super::super::LimitSettings { rate: 1.0, burst: 1 }));
        let gate = Gate::new(4, limiter.clone());
        let mut trigger = gate.trigger();
        tokio::spawn(gate.clone().dispatch());
        let Turn::Go(first) = gate.enter(&key("a", "0"), Urgency::Issue, call("1")) else {
            panic!("budget and a slot: at once");
        };
        assert!(matches!(
            gate.enter(&key("a", "1"), Urgency::Issue, call("1")),
            Turn::Queued { calls: 1, .. }
        ));
        // Account 2 has its own budget: it goes past A's waiting turn, at once.
        let Turn::Go(other) = gate.enter(&key("b", "0"), Urgency::Issue, call("2")) else {
            panic!("another account's budget is there");
        };
        // A's waiting turn holds no slot: only the two that go do.
        assert_eq!(gate.lock().busy, 2);
        // The turn spends what was paid for it: its call does not wait.
        let started = Instant::now();
        first.run(limiter.acquire(&call("1").calls[0].0)).await;
        assert!(started.elapsed() < Duration::from_millis(200));
        drop((first, other));
        // A's budget refills within a second: the dispatcher grants the waiting turn then.
        let next = tokio::time::timeout(Duration::from_secs(3), trigger.next())
            .await
            .unwrap();
        assert_eq!(next, Some(key("a", "1")));
    }
}
