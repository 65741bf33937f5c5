//! Whole profile.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn profile_report() {
    let prof = profile(
        r#"
providers: {gh: {kind: github/oidc, spec: {audience: sts.amazonaws.com}}, orphan: {kind: ''}}
identities:
  ci/admin: {kind: aws/assume-role, via: {provider: gh}, principal: {assume_role: "arn:aws:iam::123456789012:role/ci"}}
"#,
    );
    let report = validate_profile(&prof, &Settings::default());
    assert_eq!(report.default_identity.as_deref(), Some("acme/admin"));
    assert!(!report.is_ready());
    assert_eq!(
        report.problems,
        vec![p(
            "auth.providers.orphan.kind",
            Reason::InvalidProfile,
            "kind is required; the controller runs providers of kind kubernetes/oidc"
        )]
    );
    assert_eq!(
        report.identity_states(),
        vec![
            IdentityState {
                name: "acme/admin".into(),
                ready: true,
                chain: vec!["cluster-oidc".into(), "acme/admin".into()],
                chain_length: None,
                reason: None,
                message: None,
            },
            IdentityState {
                name: "acme/dns".into(),
                ready: true,
                chain: vec![
                    "cluster-oidc".into(),
                    "acme/admin".into(),
                    "acme/network".into(),
                    "acme/dns".into()
                ],
                chain_length: None,
                reason: None,
                message: None,
            },
            IdentityState {
                name: "acme/network".into(),
                ready: true,
                chain: vec!["cluster-oidc".into(), "acme/admin".into(), "acme/network".into()],
                chain_length: None,
                reason: None,
                message: None,
            },
            IdentityState {
                name: "ci/admin".into(),
                ready: false,
                chain: vec!["gh".into(), "ci/admin".into()],
                chain_length: None,
                reason: Some("UnsupportedKind".into()),
                message: Some(
                    "auth.providers.gh.kind: kind github/oidc cannot run in a cluster: github/oidc exists only inside a GitHub Actions job; use kind kubernetes/oidc with spec.service_account, or keep github/oidc in Atmos itself inside the job".into()
                ),
            },
        ]
    );
    assert_eq!(report.all_problems().len(), 2);
}

#[test]
fn profile_report_lists_a_shared_problem_once() {
    let prof = profile("identities: {acme/admin: {principal: {duration: 1m}}}");
    let report = validate_profile(&prof, &Settings::default());
    // acme/admin, acme/network and acme/dns all carry it; reported once overall.
    assert_eq!(report.identities.iter().filter(|i| !i.is_ready()).count(), 3);
    assert_eq!(
        report.all_problems(),
        vec![p(
            "auth.identities.acme/admin.principal.duration",
            Reason::InvalidProfile,
            "1m is shorter than the shortest session allowed (15m); use at least 15m"
        )]
    );
}

#[test]
fn valid_profile_is_ready() {
    let report = validate_profile(&profile(""), &Settings::default());
    assert!(report.is_ready());
    assert!(report.all_problems().is_empty());
}
