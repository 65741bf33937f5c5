//! Names of the labels and annotations the controller puts on the Secrets it owns.

/// Label selecting the Secrets this controller manages (the metadata watch filters on it).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "atmos-auth-controller";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "atmos-auth-controller";
/// Hash of the resolved spec the Secret's credentials were made for.
pub const SPEC_HASH: &str = "auth.atmos.tools/spec-hash";
/// RFC 3339 expiry of the credentials in the Secret.
pub const EXPIRATION: &str = "auth.atmos.tools/expiration";
/// RFC 3339 time the controller renews them.
pub const RENEWAL_TIME: &str = "auth.atmos.tools/renewal-time";
/// RFC 3339 time the credentials were issued.
pub const ISSUED_AT: &str = "auth.atmos.tools/issued-at";
/// Atmos identity name the Secret serves.
pub const IDENTITY: &str = "auth.atmos.tools/identity";
/// On a Secret this Identity no longer uses (its `spec.secret.name` changed): the name of
/// the Secret that replaced it. Its credentials and renewal annotations are gone; the garbage
/// collector removes it with the Identity.
pub const SUPERSEDED_BY: &str = "auth.atmos.tools/superseded-by";

/// RFC 3339 time the controller last restored the Secret after someone else changed its data.
pub const RESTORED_AT: &str = "auth.atmos.tools/restored-at";
/// How many restores in a row (restores are spaced out: see [`crate::output::tamper`]).
pub const RESTORES: &str = "auth.atmos.tools/restores";
/// The per-identity data keys of a Secret that holds several identities (`,`-separated):
/// a later write, or emptying the Secret, removes them by name.
pub const DATA_KEYS: &str = "auth.atmos.tools/data-keys";
/// On a Secret whose Identity may no longer use its profile (its namespace left a
/// ClusterAuthProfile's selection): why its credentials were removed.
pub const REVOKED: &str = "auth.atmos.tools/revoked";
/// On an Identity: a renewal asked for (`renew`), as an RFC 3339 time; whoever may patch the
/// Identity may ask. Served through the same budget, at most once per
/// [`crate::settings::MIN_UNREQUESTED_REFRESH`].
pub const RENEW_REQUESTED_AT: &str = "auth.atmos.tools/renew-requested-at";

/// The annotations that say when a Secret's credentials were made and are renewed: removed
/// from a superseded Secret, so it never counts as holding credentials.
pub const RENEWAL_ANNOTATIONS: [&str; 4] = [SPEC_HASH, EXPIRATION, RENEWAL_TIME, ISSUED_AT];

/// Every annotation the controller writes on a Secret: the only ones its Secret cache keeps
/// (a `kubectl apply`-made copy of the whole object is never read).
pub const OWN_ANNOTATIONS: [&str; 10] = [
    SPEC_HASH,
    EXPIRATION,
    RENEWAL_TIME,
    ISSUED_AT,
    IDENTITY,
    SUPERSEDED_BY,
    RESTORED_AT,
    RESTORES,
    DATA_KEYS,
    REVOKED,
];

/// The data keys a Secret may hold: every fixed one, and the per-identity ones its
/// [`DATA_KEYS`] annotation lists.
pub fn data_keys(annotations: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<String> = crate::output::render::ALL_KEYS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    if let Some(list) = annotations.get(DATA_KEYS) {
        keys.extend(
            list.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned),
        );
    }
    keys
}
