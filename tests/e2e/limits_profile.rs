//! Profiles at the CRD limits (`src/api/limits.rs`) with chains at the resolver's limit
//! (`MAX_CHAIN_LINKS`), for the limits test and `benches/limits.rs`. The same shape as the
//! resolver's unit test `a_profile_at_the_limits_resolves`.

use atmos_auth_controller::api::limits::{MAX_IDENTITIES, MAX_NAME_LEN, MAX_PROVIDERS};
use atmos_auth_controller::resolve::MAX_CHAIN_LINKS;
use serde_json::{Value, json};

/// `prefix` padded with `n` to the longest name the schema allows.
pub fn long_name(prefix: &str) -> String {
    format!("{prefix}{}", "n".repeat(MAX_NAME_LEN as usize - prefix.len()))
}

pub fn provider_name(i: usize) -> String {
    long_name(&format!("provider-{i:02}-"))
}

pub fn identity_name(chain: usize, link: usize) -> String {
    long_name(&format!("chain-{chain:02}/link-{link:02}/"))
}

/// A manifest `AuthProfile` `name`: the most providers and identities, names of the longest
/// length, identities in chains of `MAX_CHAIN_LINKS` links (the last chain shorter), long
/// role ARNs, session names and external ids.
pub fn at_limits(name: &str) -> Value {
    let mut providers = serde_json::Map::new();
    for i in 0..MAX_PROVIDERS as usize {
        providers.insert(
            provider_name(i),
            json!({"kind": "kubernetes/oidc", "region": "us-east-2",
                "spec": {"audience": "sts.amazonaws.com", "service_account": "terraform", "expiration": "1h"}}),
        );
    }
    let mut identities = serde_json::Map::new();
    for n in 0..MAX_IDENTITIES as usize {
        let (chain, link) = (n / MAX_CHAIN_LINKS, n % MAX_CHAIN_LINKS);
        let via = if link == 0 {
            json!({"provider": provider_name(chain % MAX_PROVIDERS as usize)})
        } else {
            json!({"identity": identity_name(chain, link - 1)})
        };
        let mut principal = json!({
            "assume_role": format!("arn:aws:iam::123456789012:role/{}/{:0<64}", "p".repeat(200), format!("r{chain:02}-{link:02}-")),
            "duration": "1h",
            "session_name": format!("{:x<64}", format!("s{chain}-{link}-")),
        });
        if link > 0 {
            principal["external_id"] = json!("e".repeat(1224));
            principal["region"] = json!(format!("eu-west-{}", link % 3 + 1));
        }
        identities.insert(
            identity_name(chain, link),
            json!({"kind": "aws/assume-role", "via": via, "principal": principal}),
        );
    }
    manifest(name, providers, identities)
}

/// A manifest `AuthProfile` `name` with one chain of `len` identities from one provider (the
/// shape that made chain walks quadratic).
pub fn line(name: &str, len: usize) -> Value {
    let mut identities = serde_json::Map::new();
    for i in 0..len {
        let via = if i == 0 {
            json!({"provider": "p"})
        } else {
            json!({"identity": format!("a{:03}", i - 1)})
        };
        identities.insert(
            format!("a{i:03}"),
            json!({"kind": "aws/assume-role", "via": via,
                "principal": {"assume_role": format!("arn:aws:iam::123456789012:role/a{i}")}}),
        );
    }
    let mut providers = serde_json::Map::new();
    providers.insert(
        "p".into(),
        json!({"kind": "kubernetes/oidc", "spec": {"service_account": "terraform"}}),
    );
    manifest(name, providers, identities)
}

fn manifest(
    name: &str,
    providers: serde_json::Map<String, Value>,
    identities: serde_json::Map<String, Value>,
) -> Value {
    json!({
        "apiVersion": "auth.atmos.tools/v1alpha1",
        "kind": "AuthProfile",
        "metadata": {"name": name},
        "spec": {"providers": providers, "identities": identities},
    })
}
