//! The image-pull Secret: which integrations an Identity logs in with, as Atmos defines them.

use pretty_assertions::assert_eq;

use super::*;
use crate::resolve::registry::{RegistryKind, RegistryLogin};

const INTEGRATIONS: &str = r#"
integrations:
  ecr-main:
    kind: aws/ecr
    via: {identity: acme/network}
    spec: {registry: {account_id: "123456789012", region: us-east-2}}
  ecr-public:
    kind: aws/ecr-public
    via: {identity: acme/network}
  ecr-manual:
    kind: aws/ecr
    via: {identity: acme/network}
    spec: {auto_provision: false, registry: {account_id: "210987654321", region: eu-west-1}}
  ecr-admin:
    kind: aws/ecr
    via: {identity: acme/admin}
    spec: {registry: {account_id: "123456789012", region: us-west-2}}
  eks:
    kind: aws/eks
    via: {identity: acme/network}
    spec: {cluster: {name: prod, region: us-east-2}}
  by-provider:
    kind: aws/ecr
    via: {provider: cluster-oidc}
    spec: {registry: {account_id: "123456789012", region: us-east-2}}
"#;

fn set(spec: &str) -> Result<ResolvedSet, Vec<Problem>> {
    resolve_set(&profile(INTEGRATIONS), &identity(spec), "net", &Settings::default())
}

#[test]
fn left_out_it_takes_the_identitys_auto_provisioned_ecr_integrations() {
    let set = set("{profile: p, identity: acme/network, imagePullSecret: {name: pull}}").unwrap();
    let plan = set.registry.unwrap();
    assert_eq!(plan.secret_name, "pull");
    let hosts: Vec<String> = plan.logins.iter().map(RegistryLogin::host).collect();
    // Name order; auto_provision: false, other identities, other kinds and via.provider left out.
    assert_eq!(
        hosts,
        ["123456789012.dkr.ecr.us-east-2.amazonaws.com", "public.ecr.aws"]
    );
    assert_eq!(plan.logins[1].kind, RegistryKind::EcrPublic);
    assert_eq!(plan.logins[1].region, "us-east-1");
}

#[test]
fn named_integrations_are_taken_whatever_auto_provision_says() {
    let set =
        set("{profile: p, identity: acme/network, imagePullSecret: {name: pull, integrations: [ecr-manual]}}").unwrap();
    let hosts: Vec<String> = set.registry.unwrap().logins.iter().map(RegistryLogin::host).collect();
    assert_eq!(hosts, ["210987654321.dkr.ecr.eu-west-1.amazonaws.com"]);
}

#[test]
fn each_login_uses_the_session_of_its_via_identity_in_a_list() {
    let set = set("{profile: p, identities: [acme/admin, acme/network], imagePullSecret: {name: pull, integrations: [ecr-main, ecr-admin]}}").unwrap();
    let items: Vec<usize> = set.registry.unwrap().logins.iter().map(|l| l.item).collect();
    assert_eq!(items, [1, 0]);
}

#[test]
fn without_an_image_pull_secret_the_hash_is_unchanged() {
    let with = set("{profile: p, identity: acme/network, imagePullSecret: {name: pull}}").unwrap();
    let without = set("{profile: p, identity: acme/network}").unwrap();
    assert_eq!(without.registry, None);
    assert_eq!(without.spec_hash(), without.first().spec_hash());
    assert_ne!(with.spec_hash(), without.spec_hash());
}

#[test]
fn what_cannot_be_a_login_is_refused_with_its_field() {
    let problems = set("{profile: p, identity: acme/network, imagePullSecret: {name: acme-network-creds, integrations: [eks, by-provider, ecr-admin, nope]}}").unwrap_err();
    let got: Vec<(&str, &str)> = problems.iter().map(|p| (p.path.as_str(), p.reason.as_str())).collect();
    assert_eq!(
        got,
        [
            ("auth.integrations.eks.kind", "UnsupportedKind"),
            ("auth.integrations.by-provider.via.provider", "UnsupportedKind"),
            ("auth.integrations.ecr-admin.via.identity", "InvalidIdentity"),
            ("spec.imagePullSecret.integrations[3]", "InvalidIdentity"),
        ]
    );
    assert!(
        problems[1]
            .message
            .contains("kubernetes/oidc provider yields a ServiceAccount token"),
        "{}",
        problems[1].message
    );
}

#[test]
fn a_registry_needs_a_12_digit_account_and_a_region() {
    let bad = profile(
        r#"
integrations:
  no-account: {kind: aws/ecr, via: {identity: acme/admin}, spec: {registry: {region: us-east-2}}}
  short: {kind: aws/ecr, via: {identity: acme/admin}, spec: {registry: {account_id: "1234", region: us-east-2}}}
  no-region: {kind: aws/ecr, via: {identity: acme/admin}, spec: {registry: {account_id: "123456789012"}}}
  public-eu: {kind: aws/ecr-public, via: {identity: acme/admin}, spec: {registry: {region: eu-west-1}}}
"#,
    );
    let spec = identity(
        "{profile: p, imagePullSecret: {name: pull, integrations: [no-account, short, no-region, public-eu]}}",
    );
    let problems = resolve_set(&bad, &spec, "net", &Settings::default()).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "auth.integrations.no-account.spec.registry.account_id",
            "auth.integrations.short.spec.registry.account_id",
            "auth.integrations.no-region.spec.registry.region",
            "auth.integrations.public-eu.spec.registry.region",
        ]
    );
}

#[test]
fn the_same_name_as_the_credential_secret_or_no_selection_is_refused() {
    let problems = set("{profile: p, identity: acme/dns, imagePullSecret: {name: net}}").unwrap_err();
    let got: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(got, ["spec.imagePullSecret.name", "spec.imagePullSecret.integrations"]);
    assert!(problems[1].message.contains("selects no integration"));
}
