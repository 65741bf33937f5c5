//! Whether the admission policies that decide who may mint which token are in force. The
//! controller mints tokens its requesters never see; the chart's ValidatingAdmissionPolicies
//! refuse an Identity or profile whose author could not mint those tokens themselves, and any
//! Secret write of the controller but to its own Secrets. With a policy missing, or bound
//! only with `Warn` or `Audit`, nothing checks that: the controller then refuses first issues
//! and spec changes (`AdmissionNotEnforced`), keeps renewing what exists, and says so, unless
//! the operator accepts the state (`--allow-unenforced-admission`). It never refuses to start:
//! Helm may install the policies after the Deployment. Read-only: the policies and bindings
//! are listed, every `--admission-check-interval`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use kube::{Api, Client, ResourceExt};

use crate::telemetry::Metrics;

/// The chart's policies, after its full name (`--admission-policy-prefix`).
pub const POLICIES: [&str; 5] = [
    "identity-serviceaccount",
    "authprofile-serviceaccounts",
    "clusterauthprofile-serviceaccounts",
    "controller-secrets",
    "controller-workloads",
];

/// Condition reason of an Identity refused because the policies are not enforced.
pub const NOT_ENFORCED: &str = "AdmissionNotEnforced";

/// What the operator asked for and what the last check found.
pub struct Admission {
    /// The policies' names start with this, then `-` and one of [`POLICIES`].
    prefix: String,
    /// How often they are checked: a refused Identity looks again this often.
    pub interval: Duration,
    /// `--allow-unenforced-admission`.
    allow: bool,
    /// What is missing (empty: in force); `None` before the first check.
    missing: Mutex<Option<Vec<String>>>,
}

impl Admission {
    /// Checks the policies named `prefix-...` every `interval`; `allow` accepts them not
    /// being enforced.
    pub fn new(prefix: &str, allow: bool, interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            prefix: prefix.to_owned(),
            interval,
            allow,
            missing: Mutex::new(None),
        })
    }

    /// Enforced as far as the reconcile is concerned (unit tests; no API server to ask).
    #[cfg(test)]
    pub fn enforced() -> Arc<Self> {
        Arc::new(Self {
            prefix: String::new(),
            interval: Duration::from_secs(30),
            allow: true,
            missing: Mutex::new(Some(Vec::new())),
        })
    }

    /// Whether a first issue or a spec change may go now, and if not why.
    pub fn refusal(&self) -> Option<Refusal> {
        if self.allow {
            return None;
        }
        match self.lock().as_deref() {
            Some([]) => None,
            None => Some(Refusal::NotChecked),
            Some(missing) => Some(Refusal::NotEnforced(refusal_message(missing))),
        }
    }

    /// Checks now; returns whether what it found changed. An API server that does not answer
    /// (a restart) changes nothing: the last answer stands.
    pub async fn check(&self, client: &Client, metrics: &Metrics) -> bool {
        let found = match list(client).await {
            Ok((policies, bindings)) => missing(&self.prefix, &policies, &bindings),
            Err(kube::Error::Api(s)) if s.code == 403 => vec![format!(
                "the controller may not read ValidatingAdmissionPolicies and their bindings ({}): grant it get \
                 and list on them (the chart does)",
                s.message
            )],
            Err(e) => {
                tracing::debug!(error = %e, "admission policies not checked; the last answer stands");
                return false;
            }
        };
        metrics.admission_enforced(found.is_empty());
        let mut was = self.lock();
        if was.as_ref() == Some(&found) {
            return false;
        }
        if found.is_empty() {
            tracing::info!(prefix = %self.prefix, "admission policies in force");
        } else if self.allow {
            tracing::warn!(missing = ?found, "admission policies not in force; accepted (--allow-unenforced-admission): nothing checks who may mint which token");
        } else {
            tracing::error!(missing = ?found, "admission policies not in force: first issues and spec changes are refused (AdmissionNotEnforced), existing credentials are renewed");
        }
        *was = Some(found);
        true
    }

    fn lock(&self) -> MutexGuard<'_, Option<Vec<String>>> {
        // Each update replaces the value whole.
        self.missing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a first issue or a spec change waits.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// The first check has not answered yet (moments after start): look again in a second.
    NotChecked,
    /// The policies are not in force: the Ready message.
    NotEnforced(String),
}

/// Checks every [`Admission::interval`] until the process ends (every second until the
/// first answer).
pub async fn run(admission: Arc<Admission>, client: Client, metrics: Arc<Metrics>) {
    loop {
        admission.check(&client, &metrics).await;
        let answered = admission.lock().is_some();
        let wait = if answered {
            admission.interval
        } else {
            Duration::from_secs(1)
        };
        tokio::time::sleep(wait).await;
    }
}

async fn list(
    client: &Client,
) -> Result<(Vec<ValidatingAdmissionPolicy>, Vec<ValidatingAdmissionPolicyBinding>), kube::Error> {
    let policies = Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .list(&Default::default())
        .await?
        .items;
    let bindings = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .list(&Default::default())
        .await?
        .items;
    Ok((policies, bindings))
}

/// What keeps the policies named `prefix-...` from being enforced: a policy not installed, or
/// one with no binding that denies (`validationActions` with `Deny`). Empty: in force.
pub fn missing(
    prefix: &str,
    policies: &[ValidatingAdmissionPolicy],
    bindings: &[ValidatingAdmissionPolicyBinding],
) -> Vec<String> {
    POLICIES
        .iter()
        .filter_map(|suffix| {
            let name = format!("{prefix}-{suffix}");
            if !policies.iter().any(|p| p.name_any() == name) {
                return Some(format!("ValidatingAdmissionPolicy {name} is not installed"));
            }
            let bound: Vec<&ValidatingAdmissionPolicyBinding> = bindings
                .iter()
                .filter(|b| b.spec.as_ref().and_then(|s| s.policy_name.as_deref()) == Some(name.as_str()))
                .collect();
            let actions = |b: &ValidatingAdmissionPolicyBinding| {
                b.spec
                    .as_ref()
                    .and_then(|s| s.validation_actions.clone())
                    .unwrap_or_default()
            };
            if bound.iter().any(|b| actions(b).iter().any(|a| a == "Deny")) {
                return None;
            }
            Some(match bound.as_slice() {
                [] => format!("ValidatingAdmissionPolicy {name} has no binding"),
                some => {
                    let all: Vec<String> = some.iter().flat_map(|b| actions(b)).collect();
                    format!("ValidatingAdmissionPolicy {name} is bound with validationActions {all:?}, not Deny")
                }
            })
        })
        .collect()
}

/// The Ready message of an Identity refused because of `missing`.
pub fn refusal_message(missing: &[String]) -> String {
    format!(
        "the admission policies that check who may mint which token are not in force ({}): no first issue \
         or spec change is served until they are (install the chart with admissionPolicy.enabled=true and \
         validationActions [Deny]), or until the operator accepts it with --allow-unenforced-admission; \
         existing credentials are still renewed",
        missing.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str) -> ValidatingAdmissionPolicy {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": {}})).unwrap()
    }

    fn binding(policy: &str, actions: &[&str]) -> ValidatingAdmissionPolicyBinding {
        serde_json::from_value(serde_json::json!({"metadata": {"name": policy},
            "spec": {"policyName": policy, "validationActions": actions}}))
        .unwrap()
    }

    #[test]
    fn every_policy_must_be_installed_and_bound_with_deny() {
        let names: Vec<String> = POLICIES.iter().map(|s| format!("aac-{s}")).collect();
        let policies: Vec<_> = names.iter().map(|n| policy(n)).collect();
        let deny: Vec<_> = names.iter().map(|n| binding(n, &["Deny"])).collect();
        assert!(missing("aac", &policies, &deny).is_empty());
        // Another release's policies do not count.
        assert_eq!(missing("other", &policies, &deny).len(), POLICIES.len());
        // One policy gone, one bound to warn only, one unbound.
        let mut bindings = deny.clone();
        bindings[1] = binding(&names[1], &["Warn", "Audit"]);
        bindings.remove(2);
        let found = missing("aac", &policies[1..], &bindings);
        assert_eq!(
            found,
            [
                "ValidatingAdmissionPolicy aac-identity-serviceaccount is not installed".to_owned(),
                "ValidatingAdmissionPolicy aac-authprofile-serviceaccounts is bound with validationActions [\"Warn\", \"Audit\"], not Deny".to_owned(),
                "ValidatingAdmissionPolicy aac-clusterauthprofile-serviceaccounts has no binding".to_owned(),
            ]
        );
    }

    #[test]
    fn refused_until_checked_and_in_force_unless_accepted() {
        let a = Admission::new("aac", false, Duration::from_secs(30));
        assert_eq!(a.refusal(), Some(Refusal::NotChecked));
        *a.lock() = Some(vec!["ValidatingAdmissionPolicy aac-x is not installed".into()]);
        let Some(Refusal::NotEnforced(m)) = a.refusal() else {
            panic!()
        };
        assert!(
            m.contains("aac-x is not installed") && m.contains("--allow-unenforced-admission"),
            "{m}"
        );
        *a.lock() = Some(Vec::new());
        assert!(a.refusal().is_none());
        let accepted = Admission::new("aac", true, Duration::from_secs(30));
        assert!(accepted.refusal().is_none());
    }
}
