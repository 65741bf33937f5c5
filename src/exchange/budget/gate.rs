//! Turns at the STS budget for reconciles. A reconcile that must call STS asks for a turn:
//! with nobody waiting and a free slot it goes at once; otherwise it joins the
//! [`FairQueue`] and returns, keeping no reconcile slot while it waits. When a slot frees,
//! the gate pops the next key and triggers that Identity's reconcile, which then finds its
//! turn granted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use tokio::sync::Notify;

use super::EndpointReports;
use super::health::{Admit, Health};
use super::queue::{FairQueue, Urgency};
use crate::util::keyed::Key;

/// A granted turn not taken within this long (the Identity was deleted, or no longer needs
/// a refresh) goes back to the pool.
const GRANT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the dispatcher looks without being woken (stale grants, due probes).
const TICK: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    queue: FairQueue<Key>,
    /// Turns handed out by the dispatcher, not yet taken by their reconcile.
    granted: HashMap<Key, Instant>,
    /// Turns in use or granted.
    busy: usize,
    /// Where granted keys are sent: one trigger per watch scope.
    triggers: Vec<mpsc::UnboundedSender<Key>>,
    /// The endpoints that are down, and the refreshes parked until they answer.
    health: Health,
}

impl State {
    /// Grants `key` a turn now and triggers its reconcile.
    fn grant(&mut self, key: Key, now: Instant) {
        self.busy += 1;
        self.granted.insert(key.clone(), now);
        self.triggers.retain(|t| t.unbounded_send(key.clone()).is_ok());
    }

    /// Gives back `key`'s granted turn, if it holds one; whether it did.
    fn ungrant(&mut self, key: &Key) -> bool {
        let had = self.granted.remove(key).is_some();
        if had {
            self.busy -= 1;
        }
        had
    }
}

/// The process's gate (one, like the STS budget it guards).
pub struct Gate {
    state: Mutex<State>,
    slots: usize,
    wake: Notify,
}

/// What asking for a turn gave.
pub enum Turn {
    /// Go: the slot is held until this is dropped.
    Go(Permit),
    /// Wait: the reconcile is triggered again when its turn comes; `ahead` refreshes wait.
    Queued {
        /// How many wait in all.
        waiting: usize,
    },
}

/// A held turn.
pub struct Permit {
    gate: Arc<Gate>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.lock().busy -= 1;
        self.gate.wake.notify_one();
    }
}

impl Gate {
    /// A gate with `slots` turns at once.
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            slots: slots.max(1),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update below leaves the state whole before it could panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A stream of keys whose turn has come, for one watch scope's controller.
    pub fn trigger(&self) -> mpsc::UnboundedReceiver<Key> {
        let (tx, rx) = mpsc::unbounded();
        self.lock().triggers.push(tx);
        rx
    }

    /// Asks for `key`'s turn.
    pub fn enter(self: &Arc<Self>, key: &Key, urgency: Urgency) -> Turn {
        let mut s = self.lock();
        if s.granted.remove(key).is_some() {
            return Turn::Go(Permit { gate: self.clone() });
        }
        if s.queue.is_empty() && s.busy < self.slots {
            s.busy += 1;
            return Turn::Go(Permit { gate: self.clone() });
        }
        s.queue.push(key.clone(), &key.0, urgency);
        Turn::Queued { waiting: s.queue.len() }
    }

    /// `key` needs no turn (any more): out of line, not parked, and a granted turn goes back.
    pub fn leave(&self, key: &Key) {
        let mut s = self.lock();
        s.queue.remove(key);
        s.health.forget(key);
        if s.ungrant(key) {
            drop(s);
            self.wake.notify_one();
        }
    }

    /// Whether the refresh of `key` may call `endpoint` now; parked (out of line, its granted
    /// turn given back) when it must wait for a probe's answer.
    pub fn admit(&self, endpoint: &str, key: &Key, urgency: Urgency) -> Admit {
        let mut s = self.lock();
        let admit = s.health.admit(endpoint, key, urgency, Instant::now());
        if let Admit::Parked { .. } = admit {
            s.queue.remove(key);
            if s.ungrant(key) {
                drop(s);
                self.wake.notify_one();
            }
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

    /// Whether `key` waits for its turn or has been granted one.
    pub fn knows(&self, key: &Key) -> bool {
        let s = self.lock();
        s.queue.contains(key) || s.granted.contains_key(key)
    }

    /// How many wait.
    pub fn waiting(&self) -> usize {
        self.lock().queue.len()
    }

    /// Hands out turns as slots free, and a turn to each probe that is due (a probe goes even
    /// when every slot is taken: it is one call); runs until the process ends.
    pub async fn dispatch(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(TICK, self.wake.notified()).await;
            let now = Instant::now();
            let mut s = self.lock();
            let stale: Vec<Key> = s
                .granted
                .iter()
                .filter(|(_, t)| now.duration_since(**t) > GRANT_TIMEOUT)
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                s.ungrant(&k);
            }
            for probe in s.health.due_probes(now) {
                s.grant(probe, now);
            }
            while s.busy < self.slots
                && let Some(key) = s.queue.pop()
            {
                s.grant(key, now);
            }
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
        // Through the fair queue: renewals first, earliest expiry first, namespaces taking turns.
        for (key, urgency) in released {
            let ns = key.0.clone();
            s.queue.push(key, &ns, urgency);
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

    #[tokio::test]
    async fn turns_beyond_the_slots_wait_and_come_back_in_fair_order() {
        let gate = Gate::new(1);
        let mut trigger = gate.trigger();
        tokio::spawn(gate.clone().dispatch());
        let Turn::Go(first) = gate.enter(&key("a", "0"), Urgency::Issue) else {
            panic!("a free slot is taken at once");
        };
        for i in 1..4 {
            assert!(matches!(
                gate.enter(&key("a", &i.to_string()), Urgency::Issue),
                Turn::Queued { .. }
            ));
        }
        assert!(matches!(
            gate.enter(&key("b", "0"), Urgency::Issue),
            Turn::Queued { waiting: 4 }
        ));
        drop(first);
        let next = trigger.next().await.unwrap();
        assert_eq!(next, key("a", "1"));
        // The triggered reconcile finds its turn granted; the slot is its own until dropped.
        let Turn::Go(p) = gate.enter(&next, Urgency::Issue) else {
            panic!("granted");
        };
        drop(p);
        assert_eq!(trigger.next().await.unwrap(), key("b", "0"), "namespaces take turns");
    }

    #[tokio::test]
    async fn parked_refreshes_are_released_through_the_fair_queue_when_a_probe_answers() {
        let gate = Gate::new(4);
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
        let Turn::Go(p) = gate.enter(&probe, Urgency::Renewal(100)) else {
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
        let gate = Gate::new(1);
        let mut trigger = gate.trigger();
        tokio::spawn(gate.clone().dispatch());
        let Turn::Go(p) = gate.enter(&key("a", "0"), Urgency::Issue) else {
            panic!()
        };
        gate.enter(&key("a", "1"), Urgency::Issue);
        gate.enter(&key("a", "2"), Urgency::Issue);
        drop(p);
        assert_eq!(trigger.next().await.unwrap(), key("a", "1"));
        // The Identity was deleted meanwhile: its granted turn frees the slot for the next.
        gate.leave(&key("a", "1"));
        assert_eq!(trigger.next().await.unwrap(), key("a", "2"));
        assert_eq!(gate.waiting(), 0);
    }
}
