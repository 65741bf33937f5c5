//! Provider.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn audience_not_allowed() {
    let prof = profile("providers: {cluster-oidc: {spec: {audience: https://kubernetes.default.svc}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.providers.cluster-oidc.spec.audience",
            Reason::AudienceNotAllowed,
            "audience \"https://kubernetes.default.svc\" is not allowed: the controller requests tokens only for aws-sts (sts.amazonaws.com and sts.<region>.amazonaws.com), api://AzureADTokenExchange, //iam.googleapis.com/projects/*/locations/global/workloadIdentityPools/*/providers/*; use one of them, or ask the operator to allow it"
        )
    );
}

#[test]
fn audience_defaults_to_sts() {
    let prof = raw_profile(
        r#"
providers: {p: {kind: kubernetes/oidc, spec: {service_account: sa}}}
identities: {a: {default: true, kind: aws/assume-role, via: {provider: p}, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}}
"#,
    );
    let got = resolve(&prof, &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    assert_eq!(got.token.audience, "sts.amazonaws.com");
    let settings = Settings {
        allowed_audiences: vec!["custom".into()],
        ..Settings::default()
    };
    assert_eq!(
        resolve(&prof, &identity("profile: k8s"), "a", &settings).unwrap_err()[0].reason,
        Reason::AudienceNotAllowed
    );
}

#[test]
fn token_expiration_at_least_ten_minutes() {
    let prof = profile("providers: {cluster-oidc: {spec: {expiration: 5m}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.providers.cluster-oidc.spec.expiration",
            Reason::InvalidProfile,
            "5m is shorter than the shortest token lifetime allowed (10m, the TokenRequest minimum); use at least 10m"
        )
    );
    let prof = profile("providers: {cluster-oidc: {spec: {expiration: soon}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")).message,
        "\"soon\" is not a duration; use a Go duration such as 1h, 90m or 1h30m"
    );
}

#[test]
fn service_account_required() {
    let prof = raw_profile(
        r#"
providers: {p: {kind: kubernetes/oidc}}
identities: {a: {default: true, kind: aws/assume-role, via: {provider: p}, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}}
"#,
    );
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "spec.serviceAccountName",
            Reason::InvalidIdentity,
            "no ServiceAccount: set spec.serviceAccountName or the provider's spec.service_account"
        )
    );
    // Not a problem of the profile on its own.
    assert!(validate_profile(&prof, &Settings::default()).is_ready());
    let got = resolve(
        &prof,
        &identity("{profile: k8s, serviceAccountName: tf}"),
        "a",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(got.token.service_account, "tf");
}

#[test]
fn service_account_names() {
    assert_eq!(
        only(&profile(""), &identity("{profile: k8s, serviceAccountName: TF_Runner}")),
        p(
            "spec.serviceAccountName",
            Reason::InvalidIdentity,
            "\"TF_Runner\" is not a valid ServiceAccount name: a DNS-1123 subdomain is at most 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit"
        )
    );
    let prof = profile("providers: {cluster-oidc: {spec: {service_account: Terraform}}}");
    let problem = only(&prof, &identity("profile: k8s"));
    assert_eq!(problem.path, "auth.providers.cluster-oidc.spec.service_account");
    assert_eq!(problem.reason, Reason::InvalidProfile);
    // The Identity's name replaces the provider's, which is then not checked.
    assert!(
        resolve(
            &prof,
            &identity("{profile: k8s, serviceAccountName: tf}"),
            "a",
            &Settings::default()
        )
        .is_ok()
    );
}

#[test]
fn token_expiration_at_most_one_hour() {
    let prof = profile("providers: {cluster-oidc: {spec: {expiration: 1h}}}");
    assert_eq!(
        resolve(&prof, &identity("profile: k8s"), "a", &Settings::default())
            .unwrap()
            .token
            .expiration_seconds,
        3600
    );
    for text in ["61m", "1h0m1s", "24h", "8760h"] {
        let prof = profile(&format!(
            "providers: {{cluster-oidc: {{spec: {{expiration: {text}}}}}}}"
        ));
        assert_eq!(
            only(&prof, &identity("profile: k8s")),
            p(
                "auth.providers.cluster-oidc.spec.expiration",
                Reason::InvalidProfile,
                &format!(
                    "{text} is longer than 1h, the longest token lifetime allowed: the token is used once, for the first STS call, and a longer one only widens what a leaked token allows; use at most 1h (default 10m)"
                )
            ),
            "{text}"
        );
    }
}
