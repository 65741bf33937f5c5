//! `ClusterAuthProfile`: one `auth:` block for the namespaces it selects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::limits::{MAX_LIST_ITEMS, MAX_NAME_LEN, MAX_SELECTED_NAMESPACES, MAX_SHORT_LEN, MAX_STATUS_NAMESPACES};
use super::{AuthProfileSpec, Condition, IdentityState};

/// An `AuthProfile` for several namespaces: the same `auth:` block, plus which namespaces
/// may use it. An Identity names it with `spec.profileKind: ClusterAuthProfile`; its token is
/// still minted for a ServiceAccount of the Identity's own namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "auth.atmos.tools",
    version = "v1alpha1",
    kind = "ClusterAuthProfile",
    doc = "The `auth:` block of an atmos.yaml profile for the namespaces it selects (spec.namespaceSelector, spec.namespaces). Identities name it with spec.profileKind: ClusterAuthProfile; the ServiceAccount is always the Identity's own namespace's. The selection is a convenience, not a security boundary: the IAM trust policy must name each system:serviceaccount:NAMESPACE:NAME.",
    status = "ClusterAuthProfileStatus",
    shortname = "cap",
    category = "atmos",
    printcolumn = r#"{"name":"Identities","type":"integer","jsonPath":".status.identityCount"}"#,
    printcolumn = r#"{"name":"Namespaces","type":"integer","jsonPath":".status.namespaceCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct ClusterAuthProfileSpec {
    /// The atmos.yaml `auth:` block, as in an `AuthProfile`.
    #[serde(flatten)]
    pub auth: AuthProfileSpec,
    /// Namespaces whose labels match may use this profile (for example
    /// `matchLabels: {kubernetes.io/metadata.name: ci}`). `{}` selects every namespace.
    /// Whoever may label or create namespaces can opt one in: this is a convenience, the IAM
    /// trust policy is the boundary.
    #[serde(default, rename = "namespaceSelector", skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    /// Namespaces, by name, that may use this profile (added to those the selector
    /// selects). Leaving out both this and `namespaceSelector` selects no namespace. At most
    /// 256 names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SELECTED_NAMESPACES), inner(length(max = MAX_NAME_LEN)))]
    pub namespaces: Option<Vec<String>>,
    /// Fields an Identity that uses this profile may override, from `principal.assume_role`,
    /// `principal.session_name`, `principal.duration`, `principal.region`, `session.duration`
    /// and `env`. Left out or empty: none; the profile is used as written. `kind`, `via` and
    /// `principal.external_id` can never be overridden, and an overridden
    /// `principal.assume_role` never carries the profile's `external_id`. An Identity whose
    /// override is not listed gets `Ready=False`, reason `OverrideNotAllowed`, no token, and
    /// its Secrets emptied.
    #[serde(default, rename = "allowedOverrides", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 6))]
    pub allowed_overrides: Option<Vec<OverrideField>>,
}

/// A field an Identity may override over a ClusterAuthProfile's identity, when the profile
/// lists it in `allowedOverrides`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum OverrideField {
    /// Another role: the tenant picks which role the platform's parent session assumes.
    #[serde(rename = "principal.assume_role")]
    AssumeRole,
    /// The STS session name (what CloudTrail shows).
    #[serde(rename = "principal.session_name")]
    SessionName,
    /// The session length (within the role's and STS's limits).
    #[serde(rename = "principal.duration")]
    Duration,
    /// The region of the last link's STS call and of the credentials written.
    #[serde(rename = "principal.region")]
    Region,
    /// `session.duration` (kept, not used by the controller, as in Atmos's cluster use).
    #[serde(rename = "session.duration")]
    SessionDuration,
    /// The identity's `env` list.
    #[serde(rename = "env")]
    Env,
}

impl OverrideField {
    /// Every field a profile may list, in schema order.
    pub const ALL: [OverrideField; 6] = [
        Self::AssumeRole,
        Self::SessionName,
        Self::Duration,
        Self::Region,
        Self::SessionDuration,
        Self::Env,
    ];

    /// The field's path under an Identity's `spec` (`principal.assume_role`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssumeRole => "principal.assume_role",
            Self::SessionName => "principal.session_name",
            Self::Duration => "principal.duration",
            Self::Region => "principal.region",
            Self::SessionDuration => "session.duration",
            Self::Env => "env",
        }
    }
}

/// What the controller found in the profile and who uses it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAuthProfileStatus {
    /// `Ready` is True when every identity resolves and can run in a cluster.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of identities in the profile.
    #[serde(default)]
    pub identity_count: i64,
    /// The profile's default identity, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_identity: Option<String>,
    /// One entry per identity: its chain and whether it resolves.
    #[serde(default)]
    pub identities: Vec<IdentityState>,
    /// Keys kept but not used in a cluster, one line each; at most 50 and a count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 51))]
    pub warnings: Vec<String>,
    /// Namespaces with an Identity that uses this profile and is allowed to, in name order:
    /// the first 50 (see `namespaceCount`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_STATUS_NAMESPACES))]
    pub namespaces: Vec<String>,
    /// Number of namespaces using this profile.
    #[serde(default)]
    pub namespace_count: i64,
}

/// A Kubernetes label selector over namespaces (`matchLabels`, `matchExpressions`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels a namespace must carry, all of them. At most 64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = MAX_LIST_ITEMS))]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Requirements a namespace must meet, all of them. At most 64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS))]
    pub match_expressions: Option<Vec<SelectorRequirement>>,
}

/// One requirement of a [`NamespaceSelector`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SelectorRequirement {
    /// Label key (at most 256 characters).
    #[schemars(length(max = MAX_SHORT_LEN))]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[schemars(extend("enum" = ["In", "NotIn", "Exists", "DoesNotExist"]))]
    pub operator: String,
    /// Values for `In` and `NotIn` (at most 64, each at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LIST_ITEMS), inner(length(max = MAX_SHORT_LEN)))]
    pub values: Option<Vec<String>>,
}

impl From<&NamespaceSelector> for LabelSelector {
    fn from(s: &NamespaceSelector) -> Self {
        LabelSelector {
            match_labels: s.match_labels.clone(),
            match_expressions: s.match_expressions.as_ref().map(|list| {
                list.iter()
                    .map(|r| LabelSelectorRequirement {
                        key: r.key.clone(),
                        operator: r.operator.clone(),
                        values: r.values.clone(),
                    })
                    .collect()
            }),
        }
    }
}

impl ClusterAuthProfileSpec {
    /// Whether namespace `name`, with `labels`, may use this profile: it is listed in
    /// `namespaces`, or `namespaceSelector` matches its labels. Neither set: no namespace. A
    /// selector that cannot be parsed (an unknown operator) selects nothing.
    pub fn selects(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        use kube::core::{Selector, SelectorExt};
        if self
            .namespaces
            .as_ref()
            .is_some_and(|list| list.iter().any(|n| n == name))
        {
            return true;
        }
        self.namespace_selector
            .as_ref()
            .and_then(|s| Selector::try_from(LabelSelector::from(s)).ok())
            .is_some_and(|s| s.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn selection_table() {
        let by_name = |n: &str| (("kubernetes.io/metadata.name").to_owned(), n.to_owned());
        let selector = |labels: &[(&str, &str)], exprs: Vec<SelectorRequirement>| NamespaceSelector {
            match_labels: (!labels.is_empty())
                .then(|| labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        };
        let req = |key: &str, op: &str, values: &[&str]| SelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        };
        let ns = |name: &str, extra: &[(&str, &str)]| {
            let mut l = labels(extra);
            let (k, v) = by_name(name);
            l.insert(k, v);
            l
        };
        let spec = |sel: Option<NamespaceSelector>, names: Option<Vec<&str>>| ClusterAuthProfileSpec {
            auth: AuthProfileSpec::default(),
            namespace_selector: sel,
            namespaces: names.map(|n| n.into_iter().map(str::to_owned).collect()),
            allowed_overrides: None,
        };
        let meta_in = req("kubernetes.io/metadata.name", "In", &["ci", "tf"]);
        // (case, spec, namespace, its labels, selected)
        type Case<'a> = (&'a str, ClusterAuthProfileSpec, &'a str, BTreeMap<String, String>, bool);
        let table: Vec<Case<'_>> = vec![
            ("nothing selects nothing", spec(None, None), "ci", ns("ci", &[]), false),
            (
                "empty list selects nothing",
                spec(None, Some(vec![])),
                "ci",
                ns("ci", &[]),
                false,
            ),
            ("listed", spec(None, Some(vec!["ci"])), "ci", ns("ci", &[]), true),
            ("not listed", spec(None, Some(vec!["ci"])), "tf", ns("tf", &[]), false),
            (
                "by name label",
                spec(Some(selector(&[], vec![meta_in.clone()])), None),
                "tf",
                ns("tf", &[]),
                true,
            ),
            (
                "name label not in set",
                spec(Some(selector(&[], vec![meta_in])), None),
                "x",
                ns("x", &[]),
                false,
            ),
            (
                "label match",
                spec(Some(selector(&[("team", "platform")], vec![])), None),
                "a",
                ns("a", &[("team", "platform")]),
                true,
            ),
            (
                "label mismatch",
                spec(Some(selector(&[("team", "platform")], vec![])), None),
                "a",
                ns("a", &[("team", "x")]),
                false,
            ),
            (
                "label missing",
                spec(Some(selector(&[("team", "platform")], vec![])), None),
                "a",
                ns("a", &[]),
                false,
            ),
            (
                "list or selector",
                spec(Some(selector(&[("team", "p")], vec![])), Some(vec!["b"])),
                "b",
                ns("b", &[]),
                true,
            ),
            (
                "empty selector selects all",
                spec(Some(NamespaceSelector::default()), None),
                "z",
                ns("z", &[]),
                true,
            ),
            (
                "exists",
                spec(Some(selector(&[], vec![req("atmos", "Exists", &[])])), None),
                "a",
                ns("a", &[("atmos", "")]),
                true,
            ),
            (
                "does not exist",
                spec(Some(selector(&[], vec![req("atmos", "DoesNotExist", &[])])), None),
                "a",
                ns("a", &[("atmos", "")]),
                false,
            ),
            (
                "bad operator selects nothing",
                spec(Some(selector(&[], vec![req("a", "Near", &["b"])])), None),
                "a",
                ns("a", &[("a", "b")]),
                false,
            ),
        ];
        for (case, spec, name, labels, want) in table {
            assert_eq!(spec.selects(name, &labels), want, "{case}");
        }
    }
}
