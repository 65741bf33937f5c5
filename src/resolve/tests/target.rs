//! Choosing the target.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn named_identity_not_in_profile() {
    assert_eq!(
        only(&profile(""), &identity("{profile: k8s, identity: acme/nope}")),
        p(
            "spec.identity",
            Reason::IdentityNotFound,
            "identity \"acme/nope\" is not in AuthProfile k8s; name one of its identities: acme/admin, acme/dns, acme/network"
        )
    );
}

#[test]
fn a_cluster_profiles_identities_are_not_listed_to_the_identitys_author() {
    // Whoever writes an Identity may not be allowed to read the platform's ClusterAuthProfile:
    // the message must not list what it holds.
    let named = only(
        &profile(""),
        &identity("{profile: k8s, profileKind: ClusterAuthProfile, identity: acme/nope}"),
    );
    assert_eq!(named.reason, Reason::IdentityNotFound);
    assert_eq!(
        named.message,
        "identity \"acme/nope\" is not in ClusterAuthProfile k8s; its status lists its identities \
         (kubectl get clusterauthprofile k8s -o yaml), for those who may read it; or ask its owner"
    );
    let prof = profile("identities: {acme/admin: {default: false}}");
    let unnamed = only(&prof, &identity("{profile: k8s, profileKind: ClusterAuthProfile}"));
    assert_eq!(unnamed.reason, Reason::NoDefaultIdentity);
    for name in ["acme/admin", "acme/dns", "acme/network"] {
        assert!(!unnamed.message.contains(name), "{}", unnamed.message);
    }
}

#[test]
fn no_default_identity() {
    let prof = profile("identities: {acme/admin: {default: false}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "spec.identity",
            Reason::NoDefaultIdentity,
            "not set, and AuthProfile k8s has no identity marked default: true; name one of its identities here (acme/admin, acme/dns, acme/network) or mark one default: true in the profile"
        )
    );
    assert_eq!(
        only(&AuthProfileSpec::default(), &identity("profile: empty")),
        p(
            "spec.identity",
            Reason::NoDefaultIdentity,
            "not set, and AuthProfile empty has no identities"
        )
    );
}

#[test]
fn several_defaults() {
    let prof = profile("identities: {acme/network: {default: true}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "spec.identity",
            Reason::MultipleDefaultIdentities,
            "not set, and AuthProfile k8s marks several identities default: true (acme/admin, acme/network); name one here or keep a single default in the profile"
        )
    );
    // Naming one is fine for the Identity; the profile's own status reports the defaults.
    assert!(
        resolve(
            &prof,
            &identity("{profile: k8s, identity: acme/dns}"),
            "d",
            &Settings::default()
        )
        .is_ok()
    );
    let report = validate_profile(&prof, &Settings::default());
    assert_eq!(
        report.problems,
        vec![p(
            "auth.identities",
            Reason::MultipleDefaultIdentities,
            "several identities are marked default: true (acme/admin, acme/network); keep at most one"
        )]
    );
    assert_eq!(report.default_identity, None);
}
