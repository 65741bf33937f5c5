//! Size limits in the CRD schemas, so the API server refuses an oversize profile or
//! Identity with its own message before the controller reads it: one namespace's writer must
//! not exhaust the controller that renews every namespace's Secrets. Each limit is far above
//! what a real Atmos profile uses.

/// Providers per profile (`auth.providers`). Real profiles have a handful.
pub const MAX_PROVIDERS: u32 = 64;
/// Identities per profile (`auth.identities`). Real profiles have tens.
pub const MAX_IDENTITIES: u32 = 256;
/// Provider and identity names and references to them, and Kubernetes object names: the
/// DNS-1123 subdomain length.
pub const MAX_NAME_LEN: u32 = 253;
/// Short values: kinds, regions, durations, audiences, session names, tags, env keys.
pub const MAX_SHORT_LEN: u32 = 256;
/// Long values: role ARNs (IAM's limit is 2048), URLs, external ids, mount paths.
pub const MAX_LONG_LEN: u32 = 2048;
/// An `env` value.
pub const MAX_VALUE_LEN: u32 = 4096;
/// Entries of an `env` or `tags` list.
pub const MAX_LIST_ITEMS: u32 = 64;
/// Entries of an Identity's `secret.formats` (three formats; repeats are allowed and merged).
pub const MAX_FORMATS: u32 = 8;

/// CEL rule on a name-keyed map: every key at most [`MAX_NAME_LEN`] characters (a
/// structural schema cannot bound keys otherwise).
pub(crate) fn names_at_most_253() -> serde_json::Value {
    serde_json::json!([{
        "rule": format!("self.all(name, size(name) <= {MAX_NAME_LEN})"),
        "message": format!("names must be at most {MAX_NAME_LEN} characters"),
    }])
}

/// Namespaces a `ClusterAuthProfile` may name in `spec.namespaces`.
pub const MAX_SELECTED_NAMESPACES: u32 = 256;
/// Namespaces listed in a `ClusterAuthProfile`'s status (the rest are counted).
pub const MAX_STATUS_NAMESPACES: u32 = 50;
/// Identities one Identity may put in its Secret (`spec.identities`): every pod that mounts
/// the Secret holds every one of them, so the list stays short.
pub const MAX_SECRET_IDENTITIES: u32 = 16;
