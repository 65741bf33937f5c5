//! Who gets the next STS call when there are more refreshes than budget: renewals of
//! credentials that exist before first issues and spec changes, earliest expiry first — but
//! namespaces take turns (round robin within each class), so one namespace's thousands of
//! Identities, or a flood of retry annotations, cannot starve another namespace.
//!
//! [`FairQueue`] is the pure order; [`super::gate::Gate`] hands out turns to reconciles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};

use crate::util::time::rfc3339;

/// A first issue waiting at least this long says so in its status.
const REPORT_ISSUE_WAIT_SECONDS: f64 = 60.0;

/// What an Identity waiting for its turn reports: (Ready, message), or nothing while the
/// wait ends before its credentials expire (so a storm costs no extra status writes). The
/// wait is estimated as everything queued at the rate limit's ceiling.
pub fn waiting_condition(
    now: Timestamp,
    expiry: Option<Timestamp>,
    waiting: usize,
    rate: f64,
) -> Option<(bool, String)> {
    let wait = waiting as f64 / rate.max(f64::MIN_POSITIVE);
    let done = now.checked_add(SignedDuration::from_secs_f64(wait.min(1e9))).ok()?;
    let queued =
        format!("{waiting} refreshes are queued for the STS rate limit ({rate}/s per region), about {wait:.0}s");
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

/// A namespace's waiting keys, best first: ((expiry or 0, arrival), key).
type Line<K> = BTreeSet<((i64, u64), K)>;

/// One class's waiting refreshes, per namespace, and whose turn is next.
#[derive(Debug)]
struct Class<K> {
    /// Namespace -> (order key, key), best first.
    by_namespace: BTreeMap<String, Line<K>>,
    /// The namespace served last; the next turn is the one after it.
    last: Option<String>,
}

impl<K: Ord + Clone> Class<K> {
    fn new() -> Self {
        Self {
            by_namespace: BTreeMap::new(),
            last: None,
        }
    }

    fn pop(&mut self) -> Option<K> {
        let next = match &self.last {
            Some(last) => self
                .by_namespace
                .range::<String, _>((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded))
                .next()
                .or_else(|| self.by_namespace.iter().next()),
            None => self.by_namespace.iter().next(),
        }
        .map(|(ns, _)| ns.clone())?;
        let set = self.by_namespace.get_mut(&next)?;
        let first = set.pop_first().map(|(_, k)| k);
        if set.is_empty() {
            self.by_namespace.remove(&next);
        }
        self.last = Some(next);
        first
    }
}

/// Where a waiting key sits.
#[derive(Clone, Debug)]
struct Slot {
    namespace: String,
    urgency: Urgency,
    order: (i64, u64),
}

/// The waiting refreshes, in the order described in the module doc. Keys are unique: a key
/// pushed again moves to its new place.
#[derive(Debug)]
pub struct FairQueue<K> {
    renewals: Class<K>,
    issues: Class<K>,
    slots: HashMap<K, Slot>,
    seq: u64,
}

impl<K: Ord + Clone + std::hash::Hash> Default for FairQueue<K> {
    fn default() -> Self {
        Self {
            renewals: Class::new(),
            issues: Class::new(),
            slots: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Ord + Clone + std::hash::Hash> FairQueue<K> {
    /// Adds `key` (or moves it, keeping its place in line when nothing about it changed).
    pub fn push(&mut self, key: K, namespace: &str, urgency: Urgency) {
        if let Some(slot) = self.slots.get(&key)
            && slot.urgency == urgency
            && slot.namespace == namespace
        {
            return;
        }
        self.remove(&key);
        self.seq += 1;
        let order = match urgency {
            Urgency::Renewal(expiry) => (expiry, self.seq),
            Urgency::Issue => (0, self.seq),
        };
        let class = match urgency {
            Urgency::Renewal(_) => &mut self.renewals,
            Urgency::Issue => &mut self.issues,
        };
        class
            .by_namespace
            .entry(namespace.to_owned())
            .or_default()
            .insert((order, key.clone()));
        self.slots.insert(
            key,
            Slot {
                namespace: namespace.to_owned(),
                urgency,
                order,
            },
        );
    }

    /// Takes `key` out of line, if it waits.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(slot) = self.slots.remove(key) else {
            return false;
        };
        let class = match slot.urgency {
            Urgency::Renewal(_) => &mut self.renewals,
            Urgency::Issue => &mut self.issues,
        };
        if let Some(set) = class.by_namespace.get_mut(&slot.namespace) {
            set.remove(&(slot.order, key.clone()));
            if set.is_empty() {
                class.by_namespace.remove(&slot.namespace);
            }
        }
        true
    }

    /// The next key to serve.
    pub fn pop(&mut self) -> Option<K> {
        let key = self.renewals.pop().or_else(|| self.issues.pop())?;
        self.slots.remove(&key);
        Some(key)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_reported_only_when_it_matters() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let in_secs = |s: i64| now.checked_add(SignedDuration::from_secs(s)).unwrap();
        // 1 000 queued at 50/s: 20 s. Credentials for another hour: nothing to say.
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

    fn drain(q: &mut FairQueue<String>) -> Vec<String> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn renewals_first_earliest_expiry_first() {
        let mut q = FairQueue::default();
        q.push("new".to_owned(), "a", Urgency::Issue);
        q.push("late".to_owned(), "a", Urgency::Renewal(300));
        q.push("soon".to_owned(), "a", Urgency::Renewal(100));
        q.push("newer".to_owned(), "a", Urgency::Issue);
        assert_eq!(drain(&mut q), ["soon", "late", "new", "newer"]);
        assert!(q.is_empty());
    }

    #[test]
    fn namespaces_take_turns_so_a_flood_cannot_starve_another() {
        let mut q = FairQueue::default();
        for i in 0..1000 {
            q.push(format!("big-{i:04}"), "big", Urgency::Renewal(100));
        }
        q.push("small-0".to_owned(), "small", Urgency::Renewal(900));
        q.push("small-1".to_owned(), "small", Urgency::Renewal(900));
        let first: Vec<String> = (0..4).filter_map(|_| q.pop()).collect();
        assert_eq!(first, ["big-0000", "small-0", "big-0001", "small-1"]);
        assert_eq!(q.len(), 998);
    }

    #[test]
    fn a_flood_of_retries_in_one_namespace_does_not_starve_another() {
        let mut q = FairQueue::default();
        for i in 0..500 {
            q.push(format!("retry-{i}"), "noisy", Urgency::Issue);
        }
        q.push("quiet".to_owned(), "quiet", Urgency::Issue);
        let first: Vec<String> = (0..2).filter_map(|_| q.pop()).collect();
        assert!(first.contains(&"quiet".to_owned()), "{first:?}");
    }

    #[test]
    fn pushing_again_keeps_the_place_or_moves_on_change() {
        let mut q = FairQueue::default();
        q.push("x".to_owned(), "a", Urgency::Issue);
        q.push("y".to_owned(), "a", Urgency::Issue);
        q.push("x".to_owned(), "a", Urgency::Issue);
        assert_eq!(q.len(), 2);
        q.push("y".to_owned(), "a", Urgency::Renewal(5));
        assert_eq!(drain(&mut q), ["y", "x"]);
    }

    #[test]
    fn removed_keys_are_not_served() {
        let mut q = FairQueue::default();
        q.push("x".to_owned(), "a", Urgency::Issue);
        q.push("y".to_owned(), "b", Urgency::Renewal(1));
        assert!(q.remove(&"y".to_owned()));
        assert!(!q.remove(&"y".to_owned()));
        assert!(!q.contains(&"y".to_owned()));
        assert_eq!(drain(&mut q), ["x"]);
    }
}
