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

/// An Identity's Ready condition: one series per Identity, its labels the condition's status
/// and reason now (value 1), in the manner of cert-manager's `certificate_ready_status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    /// Namespace.
    pub namespace: String,
    /// Identity object name.
    pub name: String,
    /// `True` or `False`.
    pub condition: String,
    /// The condition's reason (`CredentialsIssued`, `AccessDenied`, ...).
    pub reason: String,
}

/// An exchange's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExchangeLabels {
    /// `aws` (one value per cloud).
    pub cloud: String,
    /// `ok`, `throttled`, `refused`, `unavailable` or `error` ([`crate::controller::Error::exchange_result`]).
    pub result: String,
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
    alerting: Alerting,
}

/// The series alerts and the dashboard read (`charts/.../files/dashboard.json`, the
/// PrometheusRule): Ready per Identity, exchanges by result, late renewals, leadership.
struct Alerting {
    ready: Family<ReadyLabels, Gauge<i64, AtomicI64>>,
    /// The labels each Identity's ready series carries now: one series per Identity.
    ready_series: Mutex<HashMap<Key, ReadyLabels>>,
    exchanges: Family<ExchangeLabels, Counter>,
    renewal_delay: Histogram,
    late: Counter,
    leader: Gauge<i64, AtomicI64>,
}

impl Alerting {
    fn register(registry: &mut Registry) -> Self {
        let ready = Family::<ReadyLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "identity_ready_status",
            "An Identity's Ready condition: one series per Identity, value 1, labelled with the condition's status (True, False) and reason",
            ready.clone(),
        );
        let exchanges = Family::<ExchangeLabels, Counter>::default();
        registry.register(
            "exchanges",
            "Credential exchanges (one per identity of a refresh), by cloud and result: ok, throttled, refused (fix the spec or IAM), unavailable (no answer), error",
            exchanges.clone(),
        );
        // From a second to a day: a renewal served within seconds is on time.
        let renewal_delay = Histogram::new([1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 86_400.0]);
        registry.register(
            "renewal_delay_seconds",
            "How long after its renewal time each scheduled renewal was served",
            renewal_delay.clone(),
        );
        let late = Counter::default();
        registry.register(
            "renewals_late",
            "Renewals served late: after half the time between their renewal time and the old credentials' expiry had passed",
            late.clone(),
        );
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica runs the controllers (it holds the Lease, or runs without leader election), else 0",
            leader.clone(),
        );
        Self {
            ready,
            ready_series: Mutex::default(),
            exchanges,
            renewal_delay,
            late,
            leader,
        }
    }

    fn forget_ready(&self, key: &Key) {
        let before = self.ready_series.lock().ok().and_then(|mut s| s.remove(key));
        if let Some(labels) = before {
            self.ready.remove(&labels);
        }
    }
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
        let alerting = Alerting::register(&mut registry);
        Self {
            alerting,
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
        let gone: Vec<ReadyLabels> = match self.alerting.ready_series.lock() {
            Ok(mut series) => {
                let keys: Vec<_> = series.keys().filter(|(ns, n)| !keep(ns, n)).cloned().collect();
                keys.iter().filter_map(|k| series.remove(k)).collect()
            }
            Err(_) => Vec::new(),
        };
        for labels in gone {
            self.alerting.ready.remove(&labels);
        }
    }

    /// Identity `namespace/name` is gone: every series of it goes.
    pub fn gone(&self, namespace: &str, name: &str) {
        self.forget(namespace, name);
        self.alerting.forget_ready(&(namespace.to_owned(), name.to_owned()));
    }

    /// Identity `namespace/name`'s Ready condition is now `ready` with `reason`: its one
    /// ready series says so (the one of other labels goes).
    pub fn ready(&self, namespace: &str, name: &str, ready: bool, reason: &str) {
        let labels = ReadyLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            condition: if ready { "True" } else { "False" }.to_owned(),
            reason: reason.to_owned(),
        };
        let key = (labels.namespace.clone(), labels.name.clone());
        if let Ok(mut series) = self.alerting.ready_series.lock()
            && let Some(before) = series.insert(key, labels.clone())
            && before != labels
        {
            self.alerting.ready.remove(&before);
        }
        self.alerting.ready.get_or_create(&labels).set(1);
    }

    /// One exchange with `cloud` ended with `result` .
    pub fn exchanged(&self, cloud: &str, result: &str) {
        self.alerting
            .exchanges
            .get_or_create(&ExchangeLabels {
                cloud: cloud.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// A scheduled renewal served at `served` (Unix seconds): due at `renewal`, the old
    /// credentials expiring at `expiration`.
    pub fn renewal_served(&self, served: i64, renewal: i64, expiration: i64) {
        let delay = served.saturating_sub(renewal).max(0);
        #[allow(clippy::cast_precision_loss)] // seconds: far below 2^52
        self.alerting.renewal_delay.observe(delay as f64);
        if renewal_was_late(served, renewal, expiration) {
            self.alerting.late.inc();
        }
    }

    /// Whether this replica runs the controllers.
    pub fn leading(&self, leading: bool) {
        self.alerting.leader.set(i64::from(leading));
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

/// Late: served after half the margin between the renewal time and the expiry had passed
/// (the point the `AtmosAuthCredentialsExpiringWithoutRenewal` alert fires), or after expiry.
pub fn renewal_was_late(served: i64, renewal: i64, expiration: i64) -> bool {
    let margin = expiration.saturating_sub(renewal).max(0);
    served.saturating_sub(renewal) > margin / 2 || served >= expiration
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
    fn one_ready_series_per_identity_follows_its_condition_and_goes_with_it() {
        let m = Metrics::default();
        m.ready("ns", "app", false, "AccessDenied");
        m.ready("ns", "app", true, "CredentialsIssued");
        m.ready("ns", "other", false, "Throttling");
        let text = m.encode();
        assert!(
            text.contains(r#"atmos_auth_identity_ready_status{namespace="ns",name="app",condition="True",reason="CredentialsIssued"} 1"#),
            "{text}"
        );
        assert!(!text.contains("AccessDenied"), "{text}");
        // No credentials (forget) leaves the condition; gone or not re-listed takes it.
        m.forget("ns", "app");
        assert!(m.encode().contains(r#"name="app",condition="True""#));
        m.gone("ns", "app");
        m.retain(|_, name| name != "other");
        assert!(
            !m.encode().contains("atmos_auth_identity_ready_status{"),
            "{}",
            m.encode()
        );
    }

    #[test]
    fn a_renewal_is_late_past_half_its_margin_or_after_expiry() {
        // Renewal at 100, expiry at 160: late after 130.
        assert!(!renewal_was_late(100, 100, 160));
        assert!(!renewal_was_late(130, 100, 160));
        assert!(renewal_was_late(131, 100, 160));
        assert!(renewal_was_late(170, 100, 100));
        let m = Metrics::default();
        m.renewal_served(101, 100, 160);
        m.renewal_served(150, 100, 160);
        let text = m.encode();
        assert!(text.contains("atmos_auth_renewals_late_total 1"), "{text}");
        assert!(text.contains("atmos_auth_renewal_delay_seconds_count 2"), "{text}");
    }

    #[test]
    fn exchanges_count_by_cloud_and_result_and_leadership_shows() {
        let m = Metrics::default();
        assert!(m.encode().contains("atmos_auth_leader 0"));
        m.leading(true);
        m.exchanged("aws", "throttled");
        m.exchanged("aws", "throttled");
        let text = m.encode();
        assert!(text.contains("atmos_auth_leader 1"), "{text}");
        assert!(
            text.contains(r#"atmos_auth_exchanges_total{cloud="aws",result="throttled"} 2"#),
            "{text}"
        );
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
