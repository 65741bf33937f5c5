//! Counts of the STS calls served, per action and per outcome.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The outcomes of one action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCalls {
    /// Every call of the action.
    pub total: u64,
    /// Calls answered with credentials or an identity.
    pub ok: u64,
    /// Failed calls per error code (`AccessDenied`, `ValidationError`, ...).
    pub errors: BTreeMap<String, u64>,
}

/// Calls per action (`AssumeRoleWithWebIdentity`, `AssumeRole`, `GetCallerIdentity`, or
/// whatever unknown action a client asked for). Served as JSON at `GET /_local/calls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    pub actions: BTreeMap<String, ActionCalls>,
}

impl CallCounts {
    /// All calls of `action`.
    pub fn total(&self, action: &str) -> u64 {
        self.actions.get(action).map_or(0, |a| a.total)
    }

    /// Successful calls of `action`.
    pub fn ok(&self, action: &str) -> u64 {
        self.actions.get(action).map_or(0, |a| a.ok)
    }

    /// Calls of `action` that failed with `code`.
    pub fn errors(&self, action: &str, code: &str) -> u64 {
        self.actions
            .get(action)
            .and_then(|a| a.errors.get(code))
            .copied()
            .unwrap_or(0)
    }

    /// All calls of all actions.
    pub fn all(&self) -> u64 {
        self.actions.values().map(|a| a.total).sum()
    }
}

/// One call that named a role, in the order served: which role, and with which external id
/// (not a secret: a role's trust condition), so a test can prove a value never reached STS
/// with the wrong role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleCall {
    pub action: String,
    pub role_arn: String,
    pub external_id: Option<String>,
    /// `RoleSessionName`, if given: a test whose Identities each send their own counts the
    /// exchanges per Identity.
    pub session_name: Option<String>,
    /// The error code, if the call failed.
    pub error: Option<String>,
    /// When it was served, milliseconds since the Unix epoch (a test of an outage counts the
    /// calls made during it).
    #[serde(default)]
    pub at_millis: u64,
}

#[derive(Default)]
pub struct CallCounter {
    counts: Mutex<CallCounts>,
    roles: Mutex<Vec<RoleCall>>,
}

impl CallCounter {
    fn with<T>(&self, f: impl FnOnce(&mut CallCounts) -> T) -> T {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut counts)
    }

    /// Records one call; `error` is the error code if it failed.
    pub fn record(&self, action: &str, error: Option<&str>) {
        self.with(|counts| {
            let entry = counts.actions.entry(action.to_owned()).or_default();
            entry.total += 1;
            match error {
                None => entry.ok += 1,
                Some(code) => *entry.errors.entry(code.to_owned()).or_default() += 1,
            }
        });
    }

    /// Records the role (and external id) a call named.
    pub fn record_role(&self, call: RoleCall) {
        self.roles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(call);
    }

    /// Every call that named a role, oldest first.
    pub fn role_calls(&self) -> Vec<RoleCall> {
        self.roles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> CallCounts {
        self.with(|counts| counts.clone())
    }

    pub fn reset(&self) {
        self.with(|counts| *counts = CallCounts::default());
        self.roles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}
