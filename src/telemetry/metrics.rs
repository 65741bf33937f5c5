//! Prometheus metrics, named in the manner of cert-manager's
//! `certmanager_certificate_expiration_timestamp_seconds`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicI64;

use crate::util::keyed::Key;

use crate::exchange::budget::BudgetObserver;
use crate::exchange::sts::CallObserver;

/// Distinct `region` label values kept on throttling series; later ones count as `other`,
/// so a profile naming made-up regions cannot grow the series without bound.
const MAX_REGIONS: usize = 32;

/// Labels naming one Identity.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IdentityLabels {
    /// Namespace.
    pub namespace: String,
    /// Identity object name.
    pub name: String,
    /// Atmos identity name.
    pub identity: String,
}

/// A reason label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// CamelCase reason.
    pub reason: String,
}

/// An STS call's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StsLabels {
    /// STS action.
    pub action: String,
    /// `ok` or the AWS error code.
    pub outcome: String,
}

/// A controller label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `identity` or `authprofile`.
    pub controller: String,
}

/// A failed reconcile's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `identity`, `authprofile` or `clusterauthprofile`.
    pub controller: String,
    /// The error's reason (`ApiError`, `SecretWriteFailed`, ...).
    pub reason: String,
}

/// A kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `Identity`, `AuthProfile` or `ClusterAuthProfile`.
    pub kind: String,
}

/// A region label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabels {
    /// The STS region (at most 32 distinct values, then `other`).
    pub region: String,
}

/// All metrics of the process.
pub struct Metrics {
    registry: Registry,
    renewals: Family<ReasonLabels, Counter>,
    failures: Family<ReasonLabels, Counter>,
    sts_latency: Family<StsLabels, Histogram>,
    expiration: Family<IdentityLabels, Gauge<i64, AtomicI64>>,
    renewal_time: Family<IdentityLabels, Gauge<i64, AtomicI64>>,
    reconcile: Family<ControllerLabels, Histogram>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    undecodable: Family<KindLabels, Counter>,
    admission: Gauge<i64, AtomicI64>,
    /// The labels each Identity's series carry now, by (namespace, name): a series whose
    /// labels change (a new `spec.identity`) replaces the old one rather than leaving it
    /// frozen, where it would fire false expiry alerts.
    series: Mutex<HashMap<Key, IdentityLabels>>,
    sts_queue_calls: Gauge<i64, AtomicI64>,
    sts_queue_wait: Histogram,
    sts_throttled: Family<RegionLabels, Counter>,
    /// The regions with a throttling series.
    regions: Mutex<std::collections::HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("atmos_auth");
        let renewals = Family::<ReasonLabels, Counter>::default();
        let failures = Family::<ReasonLabels, Counter>::default();
        let sts_latency = Family::<StsLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        let expiration = Family::<IdentityLabels, Gauge<i64, AtomicI64>>::default();
        let renewal_time = Family::<IdentityLabels, Gauge<i64, AtomicI64>>::default();
        let reconcile = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "renewals",
            "Secrets written with new credentials, by trigger reason",
            renewals.clone(),
        );
        registry.register(
            "renewal_failures",
            "Failed refresh attempts, by reason",
            failures.clone(),
        );
        registry.register(
            "sts_call_duration_seconds",
            "STS call latency, by action and outcome",
            sts_latency.clone(),
        );
        registry.register(
            "identity_expiration_timestamp_seconds",
            "When the credentials in an Identity's Secret expire (Unix seconds)",
            expiration.clone(),
        );
        registry.register(
            "identity_renewal_timestamp_seconds",
            "When the controller renews an Identity's credentials (Unix seconds)",
            renewal_time.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error (retried by the error policy), by controller and reason",
            reconcile_errors.clone(),
        );
        let undecodable = Family::<KindLabels, Counter>::default();
        registry.register(
            "undecodable_objects",
            "Objects skipped by a watch because they do not decode as the current CRD describes them (each version once), by kind",
            undecodable.clone(),
        );
        let admission = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "admission_enforced",
            "1 when the admission policies that check who may mint which token are installed and bound with Deny, else 0",
            admission.clone(),
        );
        let sts_queue_calls = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "sts_queue_calls",
            "STS calls waiting in the fair queue for a turn and their account's rate budget",
            sts_queue_calls.clone(),
        );
        let sts_queue_wait = Histogram::new(exponential_buckets(0.01, 2.0, 15));
        registry.register(
            "sts_queue_wait_seconds",
            "How long a refresh waited in the fair queue for its turn and its account's rate budget",
            sts_queue_wait.clone(),
        );
        let sts_throttled = Family::<RegionLabels, Counter>::default();
        registry.register(
            "sts_throttled",
            "STS answers Throttling, by region (the account's quota in that region is spent)",
            sts_throttled.clone(),
        );
        Self {
            sts_queue_calls,
            sts_queue_wait,
            sts_throttled,
            regions: Mutex::default(),
            registry,
            undecodable,
            admission,
            renewals,
            failures,
            sts_latency,
            expiration,
            renewal_time,
            reconcile,
            reconcile_errors,
            series: Mutex::default(),
        }
    }
}

impl Metrics {
    /// One renewal written, triggered by `reason`.
    pub fn renewed(&self, reason: &str) {
        self.renewals
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// One failed attempt.
    pub fn failed(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Records an Identity's expiry and next renewal, replacing its series of other labels.
    pub fn schedule(&self, labels: &IdentityLabels, expiration: i64, renewal: i64) {
        let key = (labels.namespace.clone(), labels.name.clone());
        if let Ok(mut series) = self.series.lock()
            && let Some(before) = series.insert(key, labels.clone())
            && before != *labels
        {
            self.expiration.remove(&before);
            self.renewal_time.remove(&before);
        }
        self.expiration.get_or_create(labels).set(expiration);
        self.renewal_time.get_or_create(labels).set(renewal);
    }

    /// Drops an Identity's series: it is gone, or its Secret no longer holds the
    /// credentials they describe.
    pub fn forget(&self, namespace: &str, name: &str) {
        let before = match self.series.lock() {
            Ok(mut series) => series.remove(&(namespace.to_owned(), name.to_owned())),
            Err(_) => None,
        };
        if let Some(labels) = before {
            self.expiration.remove(&labels);
            self.renewal_time.remove(&labels);
        }
    }

    /// Drops the series of every Identity for which `keep(namespace, name)` is false (those
    /// gone while a watch was down).
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        let gone: Vec<IdentityLabels> = match self.series.lock() {
            Ok(mut series) => {
                let keys: Vec<_> = series.keys().filter(|(ns, n)| !keep(ns, n)).cloned().collect();
                keys.iter().filter_map(|k| series.remove(k)).collect()
            }
            Err(_) => Vec::new(),
        };
        for labels in gone {
            self.expiration.remove(&labels);
            self.renewal_time.remove(&labels);
        }
    }

    /// One reconcile of `controller` took `elapsed`.
    pub fn reconciled(&self, controller: &str, elapsed: Duration) {
        self.reconcile
            .get_or_create(&ControllerLabels {
                controller: controller.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// One reconcile of `controller` ended in an error with `reason` (counted by the error
    /// policy, as kube-rs's controller-rs does).
    pub fn reconcile_failed(&self, controller: &str, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                controller: controller.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// One object of `kind` skipped: it does not decode.
    pub fn skipped(&self, kind: &str) {
        self.undecodable
            .get_or_create(&KindLabels { kind: kind.to_owned() })
            .inc();
    }

    /// Whether the admission policies were in force at the last check.
    pub fn admission_enforced(&self, enforced: bool) {
        self.admission.set(i64::from(enforced));
    }

    /// Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl CallObserver for Metrics {
    fn sts_call(&self, action: &'static str, outcome: &str, elapsed: Duration) {
        self.sts_latency
            .get_or_create(&StsLabels {
                action: action.to_owned(),
                outcome: outcome.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn throttled(&self, region: &str) {
        let region = match self.regions.lock() {
            Ok(mut seen) if seen.contains(region) || seen.len() < MAX_REGIONS => {
                seen.insert(region.to_owned());
                region.to_owned()
            }
            _ => "other".to_owned(),
        };
        self.sts_throttled.get_or_create(&RegionLabels { region }).inc();
    }
}

impl BudgetObserver for Metrics {
    fn queued_calls(&self, calls: u64) {
        self.sts_queue_calls.set(i64::try_from(calls).unwrap_or(i64::MAX));
    }

    fn waited(&self, wait: Duration) {
        self.sts_queue_wait.observe(wait.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(identity: &str) -> IdentityLabels {
        IdentityLabels {
            namespace: "ns".into(),
            name: "app".into(),
            identity: identity.into(),
        }
    }

    #[test]
    fn a_new_identity_replaces_the_old_series_and_forget_drops_all() {
        let m = Metrics::default();
        m.schedule(&labels("acme/admin"), 100, 50);
        m.schedule(&labels("acme/network"), 200, 150);
        let text = m.encode();
        assert!(!text.contains("acme/admin"), "{text}");
        assert!(text.contains(r#"identity="acme/network"} 200"#), "{text}");
        m.forget("ns", "app");
        assert!(!m.encode().contains("acme/network"));
    }

    #[test]
    fn retain_drops_only_the_series_not_kept() {
        let m = Metrics::default();
        let at = |ns: &str, name: &str| IdentityLabels {
            namespace: ns.into(),
            name: name.into(),
            identity: "acme/admin".into(),
        };
        m.schedule(&at("ns", "listed"), 100, 50);
        m.schedule(&at("ns", "gone"), 100, 50);
        m.schedule(&at("other", "gone"), 100, 50);
        assert!(m.encode().contains(r#"namespace="ns",name="gone""#));
        // A re-list of namespace `ns` saw only `listed`; another scope's series stay.
        m.retain(|ns, name| ns != "ns" || name == "listed");
        let text = m.encode();
        assert!(text.contains(r#"name="listed""#), "{text}");
        assert!(text.contains(r#"namespace="other""#), "{text}");
        assert!(!text.contains(r#"namespace="ns",name="gone""#), "{text}");
    }

    #[test]
    fn the_sts_queue_and_throttling_series() {
        let m = Metrics::default();
        m.queued_calls(160);
        m.waited(Duration::from_millis(300));
        m.throttled("us-east-1");
        m.throttled("us-east-1");
        for i in 0..40 {
            m.throttled(&format!("made-up-{i}"));
        }
        let text = m.encode();
        assert!(text.contains("atmos_auth_sts_queue_calls 160"), "{text}");
        assert!(text.contains("atmos_auth_sts_queue_wait_seconds_count 1"), "{text}");
        assert!(
            text.contains("atmos_auth_sts_queue_wait_seconds_bucket{le=\"0.32\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("atmos_auth_sts_throttled_total{region=\"us-east-1\"} 2"),
            "{text}"
        );
        // Bounded: 32 regions, then `other`.
        assert!(
            text.contains("atmos_auth_sts_throttled_total{region=\"other\"} 9"),
            "{text}"
        );
    }
}
