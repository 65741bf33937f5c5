//! Whether each STS endpoint answers. An endpoint that fails at the transport level (the
//! connection refused or reset, no answer in time, a 5xx) is down for every Identity that
//! calls it, not just the one that saw it fail: instead of each backing off on its own (after
//! an outage of length T the first retry came up to T later), the refreshes that need it are
//! parked, one of them probes it every [`PROBE_INTERVAL`] (one call at a time per endpoint),
//! and as soon as a call gets an answer all of them are released into the fair queue.
//! Pure bookkeeping over the instants it is given; the gate ([`super::gate`]) hands out the
//! probe's turn and the released turns.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::queue::Urgency;
use crate::util::keyed::Key;

/// How often a down endpoint is probed: short, so that credentials are issued again within
/// seconds of STS answering, and bounded, so an outage costs one call per interval.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// A probe whose refresh has not reported back in this long (its Identity was deleted, or
/// its reconcile failed before the call) no longer blocks the next one.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a refresh that needs an endpoint may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// The endpoint answers: call it.
    Go,
    /// The endpoint is down and this refresh is its probe: call it (once, no retry).
    Probe,
    /// The endpoint is down: wait, parked, until a probe gets an answer.
    Parked {
        /// When it went down.
        since: Instant,
    },
}

/// A down endpoint.
#[derive(Debug)]
struct Down {
    since: Instant,
    /// When the next probe may go.
    next_probe: Instant,
    /// The refresh probing it now, and since when.
    probe: Option<(Key, Instant)>,
    /// The refreshes waiting for it, with their urgency.
    parked: BTreeMap<Key, Urgency>,
}

/// The state of every endpoint that is down (one that answers has no entry).
#[derive(Debug, Default)]
pub struct Health {
    down: HashMap<String, Down>,
}

impl Health {
    /// Whether the refresh of `key` (at `urgency`) may call `endpoint` at `now`; a refresh
    /// told to wait is parked.
    pub fn admit(&mut self, endpoint: &str, key: &Key, urgency: Urgency, now: Instant) -> Admit {
        let Some(d) = self.down.get_mut(endpoint) else {
            return Admit::Go;
        };
        match &d.probe {
            Some((probe, _)) if probe == key => return Admit::Probe,
            None if now >= d.next_probe => {
                d.probe = Some((key.clone(), now));
                d.parked.remove(key);
                return Admit::Probe;
            }
            _ => {}
        }
        d.parked.insert(key.clone(), urgency);
        Admit::Parked { since: d.since }
    }

    /// A call to `endpoint` failed at the transport level at `now`: it is down (or still
    /// down); the probe, if any, is over and the next one waits [`PROBE_INTERVAL`].
    pub fn failed(&mut self, endpoint: &str, now: Instant) {
        let d = self.down.entry(endpoint.to_owned()).or_insert_with(|| Down {
            since: now,
            next_probe: now,
            probe: None,
            parked: BTreeMap::new(),
        });
        d.probe = None;
        d.next_probe = now + PROBE_INTERVAL;
    }

    /// The refresh of `key` failed because `endpoint` is down: it waits for a probe's answer.
    pub fn park(&mut self, endpoint: &str, key: &Key, urgency: Urgency) {
        if let Some(d) = self.down.get_mut(endpoint) {
            if d.probe.as_ref().is_some_and(|(p, _)| p == key) {
                d.probe = None;
            }
            d.parked.insert(key.clone(), urgency);
        }
    }

    /// A call to `endpoint` got an answer: it is up again. Returns the refreshes to release
    /// (into the fair queue), none if it was up.
    pub fn answered(&mut self, endpoint: &str) -> Vec<(Key, Urgency)> {
        self.down
            .remove(endpoint)
            .map(|d| d.parked.into_iter().collect())
            .unwrap_or_default()
    }

    /// The probes due at `now`: for each down endpoint with refreshes parked and no probe
    /// under way, the most urgent parked refresh becomes its probe.
    pub fn due_probes(&mut self, now: Instant) -> Vec<Key> {
        let mut due = Vec::new();
        for d in self.down.values_mut() {
            if d.probe
                .as_ref()
                .is_some_and(|(_, at)| now.duration_since(*at) > PROBE_TIMEOUT)
            {
                d.probe = None;
            }
            if d.probe.is_some() || now < d.next_probe {
                continue;
            }
            let Some((key, _)) = d.parked.iter().min_by_key(|(_, u)| **u).map(|(k, u)| (k.clone(), *u)) else {
                continue;
            };
            d.parked.remove(&key);
            d.probe = Some((key.clone(), now));
            due.push(key);
        }
        due
    }

    /// `key` needs no refresh any more: out of every parking lot, and no longer a probe.
    pub fn forget(&mut self, key: &Key) {
        for d in self.down.values_mut() {
            d.parked.remove(key);
            if d.probe.as_ref().is_some_and(|(p, _)| p == key) {
                d.probe = None;
            }
        }
    }

    /// Whether `endpoint` is down.
    pub fn is_down(&self, endpoint: &str) -> bool {
        self.down.contains_key(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    const EP: &str = "https://sts.us-east-1.amazonaws.com";

    fn k(name: &str) -> Key {
        ("ns".to_owned(), name.to_owned())
    }

    #[test]
    fn an_endpoint_that_answers_lets_everyone_go() {
        let mut h = Health::default();
        assert_eq!(h.admit(EP, &k("a"), Urgency::Issue, Instant::now()), Admit::Go);
        assert!(h.answered(EP).is_empty());
    }

    #[test]
    fn a_down_endpoint_parks_everyone_but_one_probe_per_interval() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.failed(EP, t0);
        h.park(EP, &k("a"), Urgency::Renewal(100));
        // Before the interval: nobody calls.
        assert_eq!(
            h.admit(EP, &k("b"), Urgency::Renewal(50), t0 + Duration::from_secs(1)),
            Admit::Parked { since: t0 }
        );
        assert!(h.due_probes(t0 + Duration::from_secs(1)).is_empty());
        // At the interval: the most urgent parked refresh probes, and only it.
        let at = t0 + PROBE_INTERVAL;
        assert_eq!(h.due_probes(at), [k("b")]);
        assert!(h.due_probes(at).is_empty(), "one probe at a time");
        assert_eq!(h.admit(EP, &k("b"), Urgency::Renewal(50), at), Admit::Probe);
        assert_eq!(h.admit(EP, &k("c"), Urgency::Issue, at), Admit::Parked { since: t0 });
        // The probe fails: parked again, the next probe one interval later.
        h.failed(EP, at);
        h.park(EP, &k("b"), Urgency::Renewal(50));
        assert!(h.due_probes(at + Duration::from_secs(1)).is_empty());
        assert_eq!(h.due_probes(at + PROBE_INTERVAL), [k("b")]);
    }

    #[test]
    fn a_refresh_arriving_when_a_probe_is_due_probes_itself() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.failed(EP, t0);
        assert_eq!(h.admit(EP, &k("a"), Urgency::Issue, t0 + PROBE_INTERVAL), Admit::Probe);
        assert_eq!(
            h.admit(EP, &k("b"), Urgency::Issue, t0 + PROBE_INTERVAL),
            Admit::Parked { since: t0 }
        );
    }

    #[test]
    fn an_answer_releases_every_parked_refresh() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.failed(EP, t0);
        for (name, u) in [("a", Urgency::Issue), ("b", Urgency::Renewal(7))] {
            h.park(EP, &k(name), u);
        }
        h.park("other", &k("c"), Urgency::Issue);
        let mut released = h.answered(EP);
        released.sort();
        assert_eq!(released, [(k("a"), Urgency::Issue), (k("b"), Urgency::Renewal(7))]);
        assert!(!h.is_down(EP));
        assert_eq!(h.admit(EP, &k("a"), Urgency::Issue, t0), Admit::Go);
    }

    #[test]
    fn a_forgotten_or_silent_probe_does_not_block_the_next() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.failed(EP, t0);
        h.park(EP, &k("a"), Urgency::Issue);
        h.park(EP, &k("b"), Urgency::Issue);
        let first = h.due_probes(t0 + PROBE_INTERVAL);
        assert_eq!(first.len(), 1);
        h.forget(&first[0]);
        assert_eq!(h.due_probes(t0 + PROBE_INTERVAL).len(), 1, "the probe was forgotten");
        assert!(h.due_probes(t0 + PROBE_INTERVAL + Duration::from_secs(30)).is_empty());
        assert_eq!(
            h.due_probes(t0 + PROBE_INTERVAL + PROBE_TIMEOUT * 2).len(),
            0,
            "nobody left"
        );
    }
}
