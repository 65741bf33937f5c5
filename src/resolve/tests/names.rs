//! Names as Atmos reads them (v1.226.1): Viper lower-cases atmos.yaml's keys, so an identity's
//! name is its lower-cased form everywhere Atmos sends or writes it; a name a person gives is
//! matched regardless of case (`pkg/auth/manager.go` `resolveIdentityName`); a `via`
//! reference is compared as written with the lower-cased names
//! (`pkg/auth/manager_chain.go` `buildChainRecursive`, `pkg/auth/validation/validator.go`).

use pretty_assertions::assert_eq;

use super::*;

fn warning_lines(warnings: &[Warning]) -> Vec<String> {
    warnings.iter().map(ToString::to_string).collect()
}

/// `spec.identity` is what `--identity` is to Atmos: matched regardless of case.
#[test]
fn spec_identity_is_found_regardless_of_case() {
    let got = resolve(
        &profile(""),
        &identity("{profile: k8s, identity: ACME/Network}"),
        "net",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(got.identity, "acme/network");
    assert_eq!(got.chain, ["cluster-oidc", "acme/admin", "acme/network"]);
    // A list too, and a name listed twice in two spellings is listed twice.
    let set = resolve_set(
        &profile(""),
        &identity("{profile: k8s, identities: [ACME/admin, acme/Network]}"),
        "net",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(set.names(), "acme/admin,acme/network");
    let twice = resolve_set(
        &profile(""),
        &identity("{profile: k8s, identities: [acme/admin, ACME/ADMIN]}"),
        "net",
        &Settings::default(),
    )
    .unwrap_err();
    assert_eq!(
        twice[0].to_string(),
        "spec.identities[1]: \"ACME/ADMIN\" is listed twice (as \"acme/admin\": names are matched regardless of \
         case, as Atmos matches them)"
    );
}

/// `via.identity` and `via.provider` find names regardless of case; where Atmos would not
/// (a reference with capitals never equals a lower-cased name), a warning says so.
#[test]
fn via_references_are_found_regardless_of_case_with_a_warning_where_atmos_finds_none() {
    let prof = raw_profile(
        r#"
providers: {Cluster-OIDC: {kind: kubernetes/oidc, spec: {service_account: terraform}}}
identities:
  Acme/Admin: {default: true, kind: aws/assume-role, via: {provider: cluster-oidc}, principal: {assume_role: "arn:aws:iam::123456789012:role/admin"}}
  acme/network: {kind: aws/assume-role, via: {identity: ACME/Admin}, principal: {assume_role: "arn:aws:iam::123456789012:role/network-admin"}}
"#,
    );
    let got = resolve(
        &prof,
        &identity("{profile: k8s, identity: acme/network}"),
        "net",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(got.chain, ["Cluster-OIDC", "Acme/Admin", "acme/network"]);
    assert_eq!(
        warning_lines(&got.warnings),
        [
            "auth.identities.acme/network.via.identity: \"ACME/Admin\" is found regardless of case here, but not \
             by Atmos, which lower-cases names and compares via.identity as written; write via.identity: \
             acme/admin so Atmos finds it too"
        ]
    );
    // A lower-case reference is what Atmos finds: no warning, though the name has capitals.
    let report = validate_profile(&prof, &Settings::default());
    assert!(report.is_ready(), "{:#?}", report.all_problems());
    let admin = report.identities.iter().find(|i| i.name == "Acme/Admin").unwrap();
    assert!(
        admin.warnings.iter().all(|w| !w.path.ends_with("via.provider")),
        "{:?}",
        admin.warnings
    );
    // The profile's validation and the Identity's resolution agree (the shared walk and the
    // one-by-one walk give the same warnings).
    let network = report.identities.iter().find(|i| i.name == "acme/network").unwrap();
    assert_eq!(network.chain, got.chain);
    assert!(network.warnings.iter().any(|w| w.path.ends_with("via.identity")));
}

/// The name Atmos sends and writes is lower-case: the `[profile ...]` section and
/// `AWS_PROFILE` (`Resolved::identity`), the default session name (each link's identity) and
/// a several-identity Secret's data key; a warning says so where the written name differs.
#[test]
fn a_name_with_capitals_is_lower_case_where_it_is_sent_or_written() {
    let prof = raw_profile(
        r#"
providers: {p: {kind: kubernetes/oidc, spec: {service_account: terraform}}}
identities:
  Acme/SuperAdmin: {default: true, kind: aws/assume-role, via: {provider: p}, principal: {assume_role: "arn:aws:iam::123456789012:role/admin"}}
"#,
    );
    let got = resolve(&prof, &identity("profile: k8s"), "net", &Settings::default()).unwrap();
    assert_eq!(got.identity, "acme/superadmin");
    assert_eq!(got.links[0].identity, "acme/superadmin");
    assert_eq!(session_name(&got.links[0].identity, 7), "atmos-acme-superadmin-7");
    assert_eq!(process_key(&got.identity), process_key("acme/superadmin"));
    assert_eq!(
        warning_lines(&got.warnings),
        [
            "auth.identities.Acme/SuperAdmin: Atmos lower-cases names (as Viper reads atmos.yaml), so this \
             identity is acme/superadmin there: its credentials are written as [profile acme/superadmin] \
             (AWS_PROFILE=acme/superadmin) and its default session name is atmos-acme-superadmin-<unix time>; so \
             does the controller"
        ]
    );
    let report = validate_profile(&prof, &Settings::default());
    assert_eq!(report.all_warnings().len(), 1, "{:?}", report.all_warnings());
}

/// Two spellings of one name are one entry to Atmos, and which definition wins there is not
/// defined: a problem of the profile, and of any lookup that finds both.
#[test]
fn names_that_differ_only_in_case_are_a_problem() {
    let prof = profile(
        "identities: {ACME/Admin: {kind: aws/assume-role, via: {provider: cluster-oidc}, principal: {assume_role: \
         'arn:aws:iam::123456789012:role/other'}}}",
    );
    let report = validate_profile(&prof, &Settings::default());
    assert_eq!(
        report.problems,
        [p(
            "auth.identities.acme/admin",
            Reason::InvalidProfile,
            "ACME/Admin, acme/admin differ only in letter case: Atmos lower-cases names (as acme/admin), so they \
             are one identity there and which definition wins is not defined; rename one, or merge them"
        )]
    );
    let found = problems(&prof, &identity("{profile: k8s, identity: acme/network}"));
    assert_eq!(
        found.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
        ["auth.identities.acme/network.via.identity"]
    );
    let target = problems(&prof, &identity("{profile: k8s, identity: acme/admin}"));
    assert_eq!(target[0].path, "spec.identity");
    assert!(target[0].message.contains("differ only in letter case"), "{target:?}");
}
