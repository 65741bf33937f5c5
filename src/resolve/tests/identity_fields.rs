//! The Identity's own fields.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn refresh_before() {
    assert_eq!(
        only(&profile(""), &identity("{profile: k8s, refreshBefore: 0s}")),
        p(
            "spec.refreshBefore",
            Reason::InvalidIdentity,
            "0s is not greater than 0; use a Go duration such as 20m, or leave it out to renew at two thirds of the session"
        )
    );
    assert_eq!(
        only(&profile(""), &identity("{profile: k8s, refreshBefore: twenty}")),
        p(
            "spec.refreshBefore",
            Reason::InvalidIdentity,
            "\"twenty\" is not a duration; use a Go duration such as 1h, 90m or 1h30m"
        )
    );
}

#[test]
fn secret_name_and_mount_path() {
    assert_eq!(
        only(&profile(""), &identity("{profile: k8s, secret: {name: AWS}}")),
        p(
            "spec.secret.name",
            Reason::InvalidIdentity,
            "\"AWS\" is not a valid Secret name: a DNS-1123 subdomain is at most 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit"
        )
    );
    assert_eq!(
        only(&profile(""), &identity("{profile: k8s, secret: {mountPath: aws}}")),
        p(
            "spec.secret.mountPath",
            Reason::InvalidIdentity,
            "\"aws\" must be an absolute path of letters, digits and . _ / - (no .. and not /): it is written into credential_process = cat <mountPath>/credential_process.json"
        )
    );
}

#[test]
fn formats_default_and_dedup() {
    let formats = |spec: &str| {
        resolve(&profile(""), &identity(spec), "a", &Settings::default())
            .unwrap()
            .secret
            .formats
    };
    assert_eq!(formats("profile: k8s"), [SecretFormat::Process]);
    assert_eq!(
        formats("{profile: k8s, secret: {formats: []}}"),
        [SecretFormat::Process]
    );
    assert_eq!(
        formats("{profile: k8s, secret: {formats: [env, files, env, process]}}"),
        [SecretFormat::Process, SecretFormat::Files, SecretFormat::Env]
    );
}

#[test]
fn overridden_fields_are_reported_on_the_identity() {
    assert_eq!(
        only(&profile(""), &identity("{profile: k8s, principal: {duration: 5m}}")),
        p(
            "spec.principal.duration",
            Reason::InvalidIdentity,
            "5m is shorter than the shortest session allowed (15m); use at least 15m"
        )
    );
    assert_eq!(
        only(&profile(""), &identity("{profile: k8s, kind: aws/user}")),
        p(
            "spec.kind",
            Reason::UnsupportedKind,
            "kind aws/user cannot run in a cluster: the controller does not store long-lived access keys; use kind aws/assume-role via a kubernetes/oidc provider"
        )
    );
}

#[test]
fn every_problem_is_reported() {
    let prof = profile(
        r#"
providers: {cluster-oidc: {spec: {audience: other}}}
identities:
  acme/admin: {principal: {assume_role: nope, external_id: abc}, spec: {endpoint_url: "https://x"}}
  acme/network: {principal: {duration: 2h}}
"#,
    );
    let got = problems(
        &prof,
        &identity("{profile: k8s, identity: acme/network, refreshBefore: -5m, secret: {mountPath: rel}}"),
    );
    let paths: Vec<(&str, Reason)> = got.iter().map(|p| (p.path.as_str(), p.reason)).collect();
    assert_eq!(
        paths,
        [
            ("auth.providers.cluster-oidc.spec.audience", Reason::AudienceNotAllowed),
            (
                "auth.identities.acme/admin.principal.assume_role",
                Reason::InvalidProfile
            ),
            (
                "auth.identities.acme/admin.spec.endpoint_url",
                Reason::EndpointNotAllowed
            ),
            // (external_id on the first link: a warning, as Atmos ignores it)
            (
                "auth.identities.acme/network.principal.duration",
                Reason::InvalidProfile
            ),
            ("spec.refreshBefore", Reason::InvalidIdentity),
            ("spec.secret.mountPath", Reason::InvalidIdentity),
        ]
    );
    let (reason, message) = summarize(&got).unwrap();
    assert_eq!(reason, Reason::AudienceNotAllowed);
    assert!(message.starts_with("auth.providers.cluster-oidc.spec.audience: audience \"other\""));
}
