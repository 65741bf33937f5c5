//! Resolution and validation: one bad input per rule, with the exact message. One file per
//! part of the resolver.

mod azure;
mod chains;
mod fidelity;
mod gcp;
mod identity_fields;
mod kinds;
mod limits;
mod link;
mod names;
mod provider;
mod registry;
mod report;
mod sts_call;
mod target;
mod walk;

use pretty_assertions::assert_eq;
use serde_json::Value;

use super::*;
use crate::api::{AuthProfileSpec, DEFAULT_MOUNT_PATH, IdentitySpec, IdentityState, SecretFormat};

const BASE: &str = r#"
providers:
  cluster-oidc:
    kind: kubernetes/oidc
    spec:
      audience: sts.amazonaws.com
      service_account: terraform
identities:
  acme/admin:
    default: true
    kind: aws/assume-role
    via: {provider: cluster-oidc}
    principal: {assume_role: "arn:aws:iam::123456789012:role/admin", region: us-east-2}
  acme/network:
    kind: aws/assume-role
    via: {identity: acme/admin}
    principal:
      assume_role: "arn:aws:iam::123456789012:role/network-admin"
      duration: 1h
      region: eu-west-1
  acme/dns:
    kind: aws/assume-role
    via: {identity: acme/network}
    principal:
      assume_role: "arn:aws:iam::210987654321:role/dns"
      external_id: "tenant-secret-42"
      duration: 30m
"#;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// The base profile with `patch` (YAML) deep-merged over it.
fn profile(patch: &str) -> AuthProfileSpec {
    let mut base = yaml(BASE);
    if !patch.trim().is_empty() {
        deep_merge(&mut base, yaml(patch));
    }
    serde_json::from_value(base).unwrap()
}

fn raw_profile(text: &str) -> AuthProfileSpec {
    serde_json::from_value(yaml(text)).unwrap()
}

fn identity(text: &str) -> IdentitySpec {
    serde_json::from_value(yaml(text)).unwrap()
}

fn problems(profile: &AuthProfileSpec, identity: &IdentitySpec) -> Vec<Problem> {
    resolve(profile, identity, "net", &Settings::default()).unwrap_err()
}

/// The one problem of resolving `identity` against `profile`.
fn only(profile: &AuthProfileSpec, identity: &IdentitySpec) -> Problem {
    let mut all = problems(profile, identity);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

fn p(path: &str, reason: Reason, message: &str) -> Problem {
    Problem::new(path, reason, message)
}

const ADMIN: &str = "arn:aws:iam::123456789012:role/admin";
const NETWORK: &str = "arn:aws:iam::123456789012:role/network-admin";
