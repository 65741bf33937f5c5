//! Status conditions, in the shape of `metav1.Condition`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Kubernetes-convention condition (`type`, `status`, `reason`, `message`,
/// `observedGeneration`, `lastTransitionTime`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word a program can match on.
    pub reason: String,
    /// What happened and what to do, for a person.
    pub message: String,
    /// The `.metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
}
