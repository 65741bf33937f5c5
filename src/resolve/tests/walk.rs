//! Structure of the chain.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn identity_kind_required() {
    let prof = profile("identities: {acme/admin: {kind: ''}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.kind",
            Reason::InvalidProfile,
            "kind is required; the controller runs kind aws/assume-role"
        )
    );
}

#[test]
fn provider_kind_required() {
    let prof = profile("providers: {cluster-oidc: {kind: ''}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.providers.cluster-oidc.kind",
            Reason::InvalidProfile,
            "kind is required; the controller runs providers of kind kubernetes/oidc"
        )
    );
}

#[test]
fn via_both_set() {
    let prof = profile("identities: {acme/network: {via: {provider: cluster-oidc}}}");
    assert_eq!(
        only(&prof, &identity("{profile: k8s, identity: acme/network}")),
        p(
            "auth.identities.acme/network.via",
            Reason::InvalidProfile,
            "both provider and identity set; set exactly one: via.provider to start from a provider, or via.identity to chain from another identity"
        )
    );
}

#[test]
fn via_both_set_by_an_override() {
    assert_eq!(
        only(
            &profile(""),
            &identity("{profile: k8s, identity: acme/admin, via: {identity: acme/network}}")
        ),
        p(
            "spec.via",
            Reason::InvalidIdentity,
            "both provider and identity set; set exactly one: via.provider to start from a provider, or via.identity to chain from another identity (the Identity's spec.via is merged key by key over the profile's via, so it cannot switch between provider and identity; define another identity in the profile instead)"
        )
    );
}

#[test]
fn via_neither_set() {
    let prof = raw_profile(
        r#"
providers: {p: {kind: kubernetes/oidc, spec: {service_account: sa}}}
identities: {a: {default: true, kind: aws/assume-role, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}}
"#,
    );
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.a.via",
            Reason::InvalidProfile,
            "neither provider nor identity set; set exactly one: via.provider (a provider of this profile) or via.identity (another identity of this profile)"
        )
    );
}

#[test]
fn provider_does_not_exist() {
    let prof = profile("identities: {acme/admin: {via: {provider: github-oidc}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.via.provider",
            Reason::InvalidProfile,
            "provider \"github-oidc\" does not exist in the profile; providers: cluster-oidc"
        )
    );
}

#[test]
fn identity_does_not_exist() {
    let prof = profile("identities: {acme/network: {via: {identity: acme/root}}}");
    assert_eq!(
        only(&prof, &identity("{profile: k8s, identity: acme/network}")),
        p(
            "auth.identities.acme/network.via.identity",
            Reason::InvalidProfile,
            "identity \"acme/root\" does not exist in the profile; identities: acme/admin, acme/dns, acme/network"
        )
    );
}

#[test]
fn cycles_are_named() {
    let prof = profile(
        r#"
identities:
  acme/a: {kind: aws/assume-role, via: {identity: acme/b}, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}
  acme/b: {kind: aws/assume-role, via: {identity: acme/a}, principal: {assume_role: "arn:aws:iam::123456789012:role/b"}}
  acme/c: {kind: aws/assume-role, via: {identity: acme/b}, principal: {assume_role: "arn:aws:iam::123456789012:role/c"}}
  acme/self: {kind: aws/assume-role, via: {identity: acme/self}, principal: {assume_role: "arn:aws:iam::123456789012:role/s"}}
"#,
    );
    assert_eq!(
        only(&prof, &identity("{profile: k8s, identity: acme/a}")),
        p(
            "auth.identities.acme/b.via.identity",
            Reason::InvalidProfile,
            "circular dependency in the identity chain: acme/a -> acme/b -> acme/a; one identity of the cycle must start from a provider (via.provider)"
        )
    );
    // A cycle above the target is named from where it starts.
    assert_eq!(
        only(&prof, &identity("{profile: k8s, identity: acme/c}")).message,
        "circular dependency in the identity chain: acme/b -> acme/a -> acme/b; one identity of the cycle must start from a provider (via.provider)"
    );
    assert_eq!(
        only(&prof, &identity("{profile: k8s, identity: acme/self}")).message,
        "circular dependency in the identity chain: acme/self -> acme/self; one identity of the cycle must start from a provider (via.provider)"
    );
}
