//! Principal.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn assume_role_required() {
    let prof = raw_profile(
        r#"
providers: {p: {kind: kubernetes/oidc, spec: {service_account: sa}}}
identities: {a: {default: true, kind: aws/assume-role, via: {provider: p}}}
"#,
    );
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.a.principal.assume_role",
            Reason::InvalidProfile,
            "assume_role is required for kind aws/assume-role: the IAM role ARN, arn:aws:iam::<12-digit account>:role/<name>"
        )
    );
}

#[test]
fn assume_role_must_be_a_role_arn() {
    let prof = profile(r#"identities: {acme/admin: {principal: {assume_role: "arn:aws:iam::123:role/admin"}}}"#);
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.principal.assume_role",
            Reason::InvalidProfile,
            "\"arn:aws:iam::123:role/admin\" is not a valid IAM role ARN: account \"123\" is not 12 digits; expected arn:aws:iam::<12-digit account>:role/<name>"
        )
    );
    let long = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(65));
    let prof = profile(&format!(
        "identities: {{acme/admin: {{principal: {{assume_role: \"{long}\"}}}}}}"
    ));
    assert_eq!(
        only(&prof, &identity("profile: k8s")).message,
        format!(
            "\"{long}\" is not a valid IAM role ARN: the role name has 65 characters, at most 64 are allowed; expected arn:aws:iam::<12-digit account>:role/<name>"
        )
    );
}

#[test]
fn duration_too_short() {
    let prof = profile("identities: {acme/admin: {principal: {duration: 10m}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.principal.duration",
            Reason::InvalidProfile,
            "10m is shorter than the shortest session allowed (15m); use at least 15m"
        )
    );
    // A test setting lowers the floor.
    let settings = Settings {
        min_session_seconds: 60,
        ..Settings::default()
    };
    assert!(resolve(&prof, &identity("profile: k8s"), "a", &settings).is_ok());
}

#[test]
fn duration_too_long() {
    let prof = profile("identities: {acme/admin: {principal: {duration: 13h}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.principal.duration",
            Reason::InvalidProfile,
            "13h is longer than 12h, the longest session AWS grants; use at most 12h (and at most the role's MaxSessionDuration)"
        )
    );
}

#[test]
fn chained_duration_at_most_one_hour() {
    let prof = profile("identities: {acme/network: {principal: {duration: 1h30m}}}");
    assert_eq!(
        only(&prof, &identity("{profile: k8s, identity: acme/network}")),
        p(
            "auth.identities.acme/network.principal.duration",
            Reason::InvalidProfile,
            "1h30m is longer than 1h: AWS limits a chained session (via.identity) to 1h; use at most 1h"
        )
    );
    // The first link may be longer.
    let prof = profile("identities: {acme/admin: {principal: {duration: 1h30m}}}");
    assert!(resolve(&prof, &identity("profile: k8s"), "a", &Settings::default()).is_ok());
}

#[test]
fn external_id_on_a_first_link_is_not_sent() {
    // Atmos ignores it there (AssumeRoleWithWebIdentity has no external id): a warning.
    let prof = profile("identities: {acme/admin: {principal: {external_id: s3cr3t-value}}}");
    let got = resolve(&prof, &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    assert_eq!(got.links[0].external_id, None);
    assert_eq!(got.warnings.len(), 1);
    assert_eq!(got.warnings[0].path, "auth.identities.acme/admin.principal.external_id");
    assert!(!got.warnings[0].to_string().contains("s3cr3t"));
}

#[test]
fn external_id_shape_without_echoing_it() {
    let prof = profile("identities: {acme/dns: {principal: {external_id: 'not allowed!'}}}");
    let problem = only(&prof, &identity("{profile: k8s, identity: acme/dns}"));
    assert_eq!(
        problem,
        p(
            "auth.identities.acme/dns.principal.external_id",
            Reason::InvalidProfile,
            "external_id must be 2 to 1224 characters of [A-Za-z0-9+=,.@:/_-]"
        )
    );
    assert!(!problem.to_string().contains("not allowed!"));
}

#[test]
fn explicit_session_name_is_rewritten() {
    let got = resolve(
        &profile(""),
        &identity("{profile: k8s, principal: {session_name: runner/one}}"),
        "a",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(got.links[0].session_name.as_deref(), Some("runner-one"));
    assert_eq!(got.warnings[0].path, "spec.principal.session_name");
}

#[test]
fn region_shape() {
    let prof = profile("identities: {acme/admin: {principal: {region: 'US East'}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.principal.region",
            Reason::InvalidProfile,
            "\"US East\" is not an AWS region name such as us-east-2"
        )
    );
    // A provider's region is not used (a warning), so its shape is not checked.
    let prof = profile("providers: {cluster-oidc: {region: 'us-east-2\nx'}}");
    let got = resolve(&prof, &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    assert_eq!(got.warnings[0].path, "auth.providers.cluster-oidc.region");
}

#[test]
fn identity_name_must_fit_a_config_section() {
    let prof = profile(
        r#"identities: {"acme/bad name": {kind: aws/assume-role, via: {provider: cluster-oidc}, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}}"#,
    );
    assert_eq!(
        only(&prof, &identity("{profile: k8s, identity: acme/bad name}")),
        p(
            "auth.identities.acme/bad name",
            Reason::InvalidProfile,
            "identity name \"acme/bad name\" cannot be a section of an AWS config file; use at most 253 letters, digits and - _ . / @ : + = ,"
        )
    );
}

#[test]
fn a_known_principal_key_of_another_type_is_refused() {
    // The schema cannot type a free-form map's values; the decode keeps such a value among
    // the other keys (api::free_form::take) and the resolver names it.
    let prof = profile("identities: {acme/admin: {principal: {duration: 3600}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.principal.duration",
            Reason::InvalidProfile,
            "duration must be a string, not 3600; quote it"
        )
    );
}
