//! Who gets the next STS turn when there are more refreshes than budget: renewals of
//! credentials that exist before first issues and spec changes, earliest expiry first within
//! a namespace; and namespaces share by STS calls, not by turns. Each turn is charged the
//! calls it is expected to make (a 16-identity Secret with 10-link chains: up to 160), and
//! the next turn goes to the namespace charged least so far (start-time fair queueing: a
//! namespace that starts waiting is charged at least what the last one served was, so idle
//! time banks no credit). A namespace that spent more calls waits longer; one namespace's
//! thousands of Identities, or a flood of retry annotations, cannot starve another.
//!
//! A refresh waits for its own quota only (its first call's account and region): while one
//! account is out of budget (throttled), the refreshes of others are served past it.
//!
//! [`FairQueue`] is the pure order; [`super::gate::Gate`] hands out turns to reconciles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};

use super::limit::{Demand, Quota};
use crate::util::time::rfc3339;

/// A first issue waiting at least this long says so in its status.
const REPORT_ISSUE_WAIT_SECONDS: f64 = 60.0;

/// What an Identity waiting for its turn reports: (Ready, message), or nothing while the
/// wait ends before its credentials expire (so a storm costs no extra status writes). The
/// wait is estimated as the `calls` queued for its account and region at `rate`.
pub fn waiting_condition(now: Timestamp, expiry: Option<Timestamp>, calls: u64, rate: f64) -> Option<(bool, String)> {
    let wait = calls as f64 / rate.max(f64::MIN_POSITIVE);
    let done = now.checked_add(SignedDuration::from_secs_f64(wait.min(1e9))).ok()?;
    let queued =
        format!("{calls} STS call(s) queued for this account's rate limit in its region ({rate}/s), about {wait:.0}s");
    match expiry {
        Some(e) if e > now => (done >= e).then(|| {
            (
                true,
                format!(
                    "{queued}: longer than these credentials last; they expire at {} before their renewal. \
                     Raise --sts-rate-limit if the account's STS quota allows",
                    rfc3339(e)
                ),
            )
        }),
        _ => (wait >= REPORT_ISSUE_WAIT_SECONDS).then(|| (false, format!("{queued}; this Identity waits its turn"))),
    }
}

/// How urgent a refresh is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Urgency {
    /// Credentials exist and expire at the given Unix second: served first, earliest first.
    Renewal(i64),
    /// No credentials for this spec yet (first issue, spec change, retry after failure).
    Issue,
}

/// Waiting keys, best first: ((expiry or 0, arrival), key).
type Line<K> = BTreeSet<((i64, u64), K)>;

/// One class's waiting refreshes: per namespace, per quota waited for; and the namespaces
/// in the order they are served.
#[derive(Debug)]
struct Class<K> {
    lines: HashMap<String, BTreeMap<Option<Quota>, Line<K>>>,
    /// (charged, last served, namespace) of each namespace with refreshes waiting here.
    order: BTreeSet<(u64, u64, String)>,
}

impl<K: Ord + Clone> Class<K> {
    fn new() -> Self {
        Self {
            lines: HashMap::new(),
            order: BTreeSet::new(),
        }
    }

    /// The best ready refresh of the namespace charged least: (namespace, key).
    fn best(&self, ready: &mut impl FnMut(Option<&Quota>) -> bool) -> Option<(String, K)> {
        self.order.iter().find_map(|(_, _, ns)| {
            self.lines
                .get(ns)?
                .iter()
                .filter_map(|(q, line)| line.first().map(|(o, k)| (*o, q, k)))
                .filter(|(_, q, _)| ready(q.as_ref()))
                .min_by_key(|(o, _, _)| *o)
                .map(|(_, _, k)| (ns.clone(), k.clone()))
        })
    }
}

/// The cost so far of one namespace's turns.
#[derive(Clone, Copy, Debug, Default)]
struct Tenant {
    /// Calls charged.
    charged: u64,
    /// When it was last served (a sequence number): equal charges take turns.
    served: u64,
}

/// Where a waiting key sits.
#[derive(Clone, Debug)]
struct Slot {
    namespace: String,
    urgency: Urgency,
    order: (i64, u64),
    demand: Demand,
}

impl Slot {
    fn quota(&self) -> Option<Quota> {
        self.demand.first().cloned()
    }
}

/// The waiting refreshes, in the order described in the module doc. Keys are unique: a key
/// pushed again moves to its new place.
#[derive(Debug)]
pub struct FairQueue<K> {
    renewals: Class<K>,
    issues: Class<K>,
    slots: HashMap<K, Slot>,
    tenants: HashMap<String, Tenant>,
    /// The charge of the turn served last, before it was charged (the virtual time).
    now: u64,
    /// Calls waiting, per quota waited for.
    calls: HashMap<Option<Quota>, u64>,
    seq: u64,
}

impl<K: Ord + Clone + std::hash::Hash> Default for FairQueue<K> {
    fn default() -> Self {
        Self {
            renewals: Class::new(),
            issues: Class::new(),
            slots: HashMap::new(),
            tenants: HashMap::new(),
            now: 0,
            calls: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Ord + Clone + std::hash::Hash> FairQueue<K> {
    fn class(&mut self, urgency: Urgency) -> &mut Class<K> {
        match urgency {
            Urgency::Renewal(_) => &mut self.renewals,
            Urgency::Issue => &mut self.issues,
        }
    }

    fn waits(&self, namespace: &str) -> bool {
        self.renewals.lines.contains_key(namespace) || self.issues.lines.contains_key(namespace)
    }

    /// Adds `key` expected to cost `demand` (or moves it, keeping its place in line when its
    /// namespace and urgency did not change).
    pub fn push(&mut self, key: K, namespace: &str, urgency: Urgency, demand: Demand) {
        if let Some(slot) = self.slots.get(&key)
            && slot.urgency == urgency
            && slot.namespace == namespace
            && slot.quota() == demand.first().cloned()
        {
            let before = u64::from(slot.demand.total());
            let count = self.calls.entry(slot.quota()).or_default();
            *count = (*count + u64::from(demand.total())).saturating_sub(before);
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.demand = demand;
            }
            return;
        }
        self.remove(&key);
        self.seq += 1;
        let order = match urgency {
            Urgency::Renewal(expiry) => (expiry, self.seq),
            Urgency::Issue => (0, self.seq),
        };
        // A namespace that starts waiting banks nothing from its idle time.
        if !self.waits(namespace) {
            let now = self.now;
            let t = self.tenants.entry(namespace.to_owned()).or_default();
            t.charged = t.charged.max(now);
        }
        let tenant = self.tenants.get(namespace).copied().unwrap_or_default();
        let quota = demand.first().cloned();
        *self.calls.entry(quota.clone()).or_default() += u64::from(demand.total());
        let class = self.class(urgency);
        class
            .order
            .insert((tenant.charged, tenant.served, namespace.to_owned()));
        class
            .lines
            .entry(namespace.to_owned())
            .or_default()
            .entry(quota)
            .or_default()
            .insert((order, key.clone()));
        self.slots.insert(
            key,
            Slot {
                namespace: namespace.to_owned(),
                urgency,
                order,
                demand,
            },
        );
    }

    /// Takes `key` out of line, if it waits.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(slot) = self.slots.remove(key) else {
            return false;
        };
        if let Some(n) = self.calls.get_mut(&slot.quota()) {
            *n = n.saturating_sub(u64::from(slot.demand.total()));
            if *n == 0 {
                self.calls.remove(&slot.quota());
            }
        }
        let tenant = self.tenants.get(&slot.namespace).copied().unwrap_or_default();
        let class = self.class(slot.urgency);
        if let Some(lines) = class.lines.get_mut(&slot.namespace) {
            if let Some(line) = lines.get_mut(&slot.quota()) {
                line.remove(&(slot.order, key.clone()));
                if line.is_empty() {
                    lines.remove(&slot.quota());
                }
            }
            if lines.is_empty() {
                class.lines.remove(&slot.namespace);
                class
                    .order
                    .remove(&(tenant.charged, tenant.served, slot.namespace.clone()));
            }
        }
        true
    }

    /// The next key to serve among those whose quota is `ready`, with its expected cost,
    /// charged to its namespace.
    pub fn pop(&mut self, mut ready: impl FnMut(Option<&Quota>) -> bool) -> Option<(K, Demand)> {
        let (ns, key) = self
            .renewals
            .best(&mut ready)
            .or_else(|| self.issues.best(&mut ready))?;
        let slot = self.slots.get(&key)?.clone();
        self.remove(&key);
        let calls = u64::from(slot.demand.total().max(1));
        let before = self.tenants.get(&ns).copied().unwrap_or_default();
        self.now = self.now.max(before.charged);
        self.seq += 1;
        let after = Tenant {
            charged: before.charged + calls,
            served: self.seq,
        };
        self.tenants.insert(ns.clone(), after);
        for class in [&mut self.renewals, &mut self.issues] {
            if class.order.remove(&(before.charged, before.served, ns.clone())) {
                class.order.insert((after.charged, after.served, ns.clone()));
            }
        }
        Some((key, slot.demand))
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether `key` waits.
    pub fn contains(&self, key: &K) -> bool {
        self.slots.contains_key(key)
    }

    /// The STS calls waiting, in all.
    pub fn calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// The STS calls waiting for `quota`'s budget.
    pub fn calls_for(&self, quota: Option<&Quota>) -> u64 {
        self.calls.get(&quota.cloned()).copied().unwrap_or(0)
    }

    /// The quotas refreshes wait for.
    pub fn quotas(&self) -> impl Iterator<Item = Option<&Quota>> {
        self.calls.keys().map(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_reported_only_when_it_matters() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let in_secs = |s: i64| now.checked_add(SignedDuration::from_secs(s)).unwrap();
        // 1 000 calls queued at 50/s: 20 s. Credentials for another hour: nothing to say.
        assert_eq!(waiting_condition(now, Some(in_secs(3600)), 1000, 50.0), None);
        // ... but only 10 s left: they will expire while waiting, and the status says so.
        let (ready, msg) = waiting_condition(now, Some(in_secs(10)), 1000, 50.0).unwrap();
        assert!(ready, "still valid now");
        assert!(msg.contains("expire at 2026-01-01T00:00:10Z"), "{msg}");
        assert!(msg.contains("about 20s"), "{msg}");
        // A first issue: silent for a short wait, reported for a long one.
        assert_eq!(waiting_condition(now, None, 100, 50.0), None);
        let (ready, msg) = waiting_condition(now, None, 10_000, 50.0).unwrap();
        assert!(!ready);
        assert!(msg.contains("about 200s"), "{msg}");
    }

    fn q(account: &str) -> Quota {
        Quota::of(&format!("arn:aws:iam::{account}:role/r"), "us-east-1")
    }

    /// `calls` calls charged to account A.
    fn cost(calls: u32) -> Demand {
        let mut d = Demand::default();
        for _ in 0..calls {
            d.add(q("111111111111"));
        }
        d
    }

    fn push(queue: &mut FairQueue<String>, key: &str, ns: &str, urgency: Urgency) {
        queue.push(key.to_owned(), ns, urgency, cost(1));
    }

    fn next(queue: &mut FairQueue<String>) -> Option<String> {
        queue.pop(|_| true).map(|(k, _)| k)
    }

    fn drain(q: &mut FairQueue<String>) -> Vec<String> {
        std::iter::from_fn(|| next(q)).collect()
    }

    #[test]
    fn renewals_first_earliest_expiry_first() {
        let mut q = FairQueue::default();
        push(&mut q, "new", "a", Urgency::Issue);
        push(&mut q, "late", "a", Urgency::Renewal(300));
        push(&mut q, "soon", "a", Urgency::Renewal(100));
        push(&mut q, "newer", "a", Urgency::Issue);
        assert_eq!(drain(&mut q), ["soon", "late", "new", "newer"]);
        assert!(q.is_empty());
    }

    #[test]
    fn namespaces_take_turns_so_a_flood_cannot_starve_another() {
        let mut q = FairQueue::default();
        for i in 0..1000 {
            push(&mut q, &format!("big-{i:04}"), "big", Urgency::Renewal(100));
        }
        push(&mut q, "small-0", "small", Urgency::Renewal(900));
        push(&mut q, "small-1", "small", Urgency::Renewal(900));
        let first: Vec<String> = (0..4).filter_map(|_| next(&mut q)).collect();
        assert_eq!(first, ["big-0000", "small-0", "big-0001", "small-1"]);
        assert_eq!(q.len(), 998);
    }

    #[test]
    fn namespaces_share_by_calls_not_by_turns() {
        // "chains" makes 10 calls a turn (a 10-link chain), "plain" one.
        let mut queue = FairQueue::default();
        for i in 0..50 {
            queue.push(format!("chains-{i:02}"), "chains", Urgency::Renewal(1), cost(10));
            queue.push(format!("plain-{i:02}"), "plain", Urgency::Renewal(1), cost(1));
        }
        let mut calls: HashMap<String, u32> = HashMap::new();
        for _ in 0..33 {
            let (key, demand) = queue.pop(|_| true).unwrap();
            *calls.entry(key.split('-').next().unwrap().to_owned()).or_default() += demand.total();
        }
        // 33 turns: 3 of ten calls, 30 of one; by turns it would have been 17 and 16.
        assert_eq!((calls["chains"], calls["plain"]), (30, 30));
        assert_eq!(queue.calls(), 47 * 10 + 20);
    }

    #[test]
    fn a_namespace_that_was_idle_banks_no_credit() {
        let mut queue = FairQueue::default();
        for i in 0..100 {
            push(&mut queue, &format!("busy-{i:03}"), "busy", Urgency::Issue);
        }
        let _ = (0..90).filter_map(|_| next(&mut queue)).count();
        // "late" arrives after "busy" was charged 90 calls: they alternate from here.
        push(&mut queue, "late-0", "late", Urgency::Issue);
        push(&mut queue, "late-1", "late", Urgency::Issue);
        let turns: Vec<String> = (0..4).filter_map(|_| next(&mut queue)).collect();
        assert_eq!(turns, ["late-0", "busy-090", "late-1", "busy-091"]);
    }

    #[test]
    fn a_refresh_waiting_for_its_accounts_budget_holds_up_no_other_account() {
        let mut queue = FairQueue::default();
        let mut b = Demand::default();
        b.add(q("222222222222"));
        queue.push("a-0".to_owned(), "a", Urgency::Renewal(1), cost(1));
        queue.push("a-1".to_owned(), "a", Urgency::Renewal(2), b.clone());
        queue.push("b-0".to_owned(), "b", Urgency::Renewal(9), b);
        assert_eq!((queue.calls_for(Some(&q("111111111111"))), queue.calls()), (1, 3));
        // Account A is out of budget: its refresh waits, the others are served past it.
        let not_a = |quota: Option<&Quota>| quota != Some(&q("111111111111"));
        assert_eq!(queue.pop(not_a).map(|(k, _)| k).as_deref(), Some("a-1"));
        assert_eq!(queue.pop(not_a).map(|(k, _)| k).as_deref(), Some("b-0"));
        assert!(queue.pop(not_a).is_none());
        assert_eq!(drain(&mut queue), ["a-0"]);
        assert_eq!(queue.calls(), 0);
    }

    #[test]
    fn a_flood_of_retries_in_one_namespace_does_not_starve_another() {
        let mut q = FairQueue::default();
        for i in 0..500 {
            push(&mut q, &format!("retry-{i}"), "noisy", Urgency::Issue);
        }
        push(&mut q, "quiet", "quiet", Urgency::Issue);
        let first: Vec<String> = (0..2).filter_map(|_| next(&mut q)).collect();
        assert!(first.contains(&"quiet".to_owned()), "{first:?}");
    }

    #[test]
    fn pushing_again_keeps_the_place_or_moves_on_change() {
        let mut q = FairQueue::default();
        push(&mut q, "x", "a", Urgency::Issue);
        push(&mut q, "y", "a", Urgency::Issue);
        push(&mut q, "x", "a", Urgency::Issue);
        assert_eq!(q.len(), 2);
        push(&mut q, "y", "a", Urgency::Renewal(5));
        assert_eq!(drain(&mut q), ["y", "x"]);
    }

    #[test]
    fn removed_keys_are_not_served() {
        let mut q = FairQueue::default();
        push(&mut q, "x", "a", Urgency::Issue);
        push(&mut q, "y", "b", Urgency::Renewal(1));
        assert!(q.remove(&"y".to_owned()));
        assert!(!q.remove(&"y".to_owned()));
        assert!(!q.contains(&"y".to_owned()));
        assert_eq!(drain(&mut q), ["x"]);
    }
}
