//! What each STS call is sent, as Atmos sends it (v1.226.1,
//! `pkg/auth/identities/aws/assume_role.go`, `pkg/auth/cloud/aws/resolver.go`): the endpoint
//! and the duration.

use pretty_assertions::assert_eq;

use super::*;

fn allowing(endpoints: &[&str]) -> Settings {
    Settings {
        allowed_endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
        ..Settings::default()
    }
}

fn resolved(prof: &AuthProfileSpec, spec: &str, settings: &Settings) -> Resolved {
    match resolve(prof, &identity(spec), "net", settings) {
        Ok(r) => r,
        Err(problems) => panic!("{problems:#?}"),
    }
}

/// Atmos: `GetBaseEndpointConfigOption(i.config, nil)` for both AssumeRoleWithWebIdentity
/// (assume_role.go:250) and AssumeRole (assume_role.go:64): each call goes to the endpoint
/// of the identity making it, never to its provider's or its parent's.
#[test]
fn each_call_goes_to_its_identitys_endpoint() {
    let prof = profile(
        "identities: {acme/admin: {spec: {endpoint_url: 'https://sts.admin.example'}}, \
                      acme/dns: {spec: {endpoint_url: 'https://sts.dns.example'}}}",
    );
    let settings = allowing(&["https://sts.admin.example", "https://sts.dns.example"]);
    let got = resolved(&prof, "{profile: k8s, identity: acme/dns}", &settings);
    let endpoints: Vec<Option<&str>> = got.links.iter().map(|l| l.endpoint.as_deref()).collect();
    assert_eq!(
        endpoints,
        [Some("https://sts.admin.example"), None, Some("https://sts.dns.example")]
    );
}

/// Atmos's `baseEndpointURL` (resolver.go:41-49): `spec.endpoint_url`, else the legacy
/// `credentials.aws.resolver.url`; an empty one is none.
#[test]
fn the_legacy_resolver_url_is_read_after_spec_endpoint_url() {
    let legacy = "identities: {acme/admin: {credentials: {aws: {resolver: {url: 'https://sts.legacy.example'}}}}}";
    let settings = allowing(&["https://sts.legacy.example", "https://sts.new.example"]);
    let got = resolved(&profile(legacy), "profile: k8s", &settings);
    assert_eq!(got.links[0].endpoint.as_deref(), Some("https://sts.legacy.example"));

    let mut both = profile(legacy);
    both.identities.get_mut("acme/admin").unwrap().spec =
        Some(serde_json::json!({"endpoint_url": "https://sts.new.example"}));
    assert_eq!(
        resolved(&both, "profile: k8s", &settings).links[0].endpoint.as_deref(),
        Some("https://sts.new.example")
    );

    let empty = profile("identities: {acme/admin: {spec: {endpoint_url: ''}}}");
    assert_eq!(
        resolved(&empty, "profile: k8s", &Settings::default()).links[0].endpoint,
        None
    );
}

#[test]
fn an_identitys_endpoint_must_be_allow_listed() {
    let prof = profile("identities: {acme/admin: {spec: {endpoint_url: 'https://evil.example'}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.spec.endpoint_url",
            Reason::EndpointNotAllowed,
            "endpoint_url \"https://evil.example\" is refused: the controller sends STS calls to its own \
             endpoint or one the operator allow-listed (--allowed-endpoint); remove it, or ask the operator to \
             allow-list it"
        )
    );
    let legacy = profile("identities: {acme/admin: {credentials: {aws: {resolver: {url: 'https://evil.example'}}}}}");
    assert_eq!(
        only(&legacy, &identity("profile: k8s")).path,
        "auth.identities.acme/admin.credentials.aws.resolver.url"
    );
}

/// Atmos uses a provider's `endpoint_url` only for SSO and SAML logins
/// (`providers/aws/sso.go:215`, `saml.go:300`): a kubernetes/oidc provider's is not used, so
/// it is not refused either, and a warning says where it belongs.
#[test]
fn a_providers_endpoint_is_not_used_and_says_so() {
    let prof = profile("providers: {cluster-oidc: {spec: {endpoint_url: 'https://evil.example'}}}");
    let got = resolved(&prof, "{profile: k8s, identity: acme/network}", &Settings::default());
    assert!(got.links.iter().all(|l| l.endpoint.is_none()));
    let warnings: Vec<String> = validate_profile(&prof, &Settings::default())
        .all_warnings()
        .iter()
        .map(ToString::to_string)
        .filter(|w| w.contains("endpoint_url"))
        .collect();
    assert_eq!(
        warnings,
        [
            "auth.providers.cluster-oidc.spec.endpoint_url: not used: Atmos sends AssumeRoleWithWebIdentity and \
          AssumeRole to the endpoint of the identity that makes the call (its spec.endpoint_url) and uses a \
          provider's only for SSO and SAML logins, and so does the controller; move it to spec.endpoint_url of \
          the identities that should use it"
        ]
    );
}

/// What is hashed for a chain without endpoints is what earlier releases hashed (so an
/// upgrade renews no Secret): the token's `endpoint` stays `null`, links have no `endpoint`.
#[test]
fn the_hashed_json_of_a_chain_without_endpoints_is_unchanged() {
    let got = resolved(&profile(""), "profile: k8s", &Settings::default());
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        r#"{"identity":"acme/admin","chain":["cluster-oidc","acme/admin"],"token":{"provider":"cluster-oidc","service_account":"terraform","audience":"sts.amazonaws.com","expiration_seconds":600,"endpoint":null},"links":[{"identity":"acme/admin","role_arn":"arn:aws:iam::123456789012:role/admin","session_name":null,"external_id":null,"duration_seconds":3600,"region":"us-east-2"}],"region":"us-east-2","secret":{"name":"net","formats":["process"],"mount_path":"/var/run/secrets/atmos-auth"}}"#
    );
}

/// Go's grammar, exactly: what `time.ParseDuration` takes is sent as whole seconds.
#[test]
fn durations_are_read_with_gos_grammar() {
    for (text, seconds) in [
        ("1.5h30m", 7200),
        ("2h", 7200),
        ("90m", 5400),
        ("15m0.9s", 900),
        ("1h0m0s", 3600),
    ] {
        let prof = profile(&format!(
            "identities: {{acme/admin: {{principal: {{duration: '{text}'}}}}}}"
        ));
        let got = resolved(&prof, "profile: k8s", &Settings::default());
        assert_eq!(got.links[0].duration_seconds, Some(seconds), "{text}");
        assert!(got.warnings.is_empty(), "{text}: {:?}", got.warnings);
    }
    // Empty, as absent: the default (Atmos sends none; STS's default is the same hour).
    let prof = profile("identities: {acme/admin: {principal: {duration: ''}}}");
    assert_eq!(
        resolved(&prof, "profile: k8s", &Settings::default()).links[0].duration_seconds,
        Some(3600)
    );
}

/// Atmos on a duration Go cannot parse: `log.Warn("Invalid duration specified ...")` and no
/// `DurationSeconds` (assume_role.go:110-115, 295-300): STS's default, 1h. A warning here,
/// nothing sent, and the profile stays usable.
#[test]
fn an_unparseable_duration_is_a_warning_and_sends_none() {
    for (text, go_error) in [
        ("2 hours", r#"time: unknown unit " hours" in duration "2 hours""#),
        ("PT2H", r#"time: invalid duration "PT2H""#),
        (" 20m ", r#"time: invalid duration " 20m ""#),
        ("1h 30m", r#"time: unknown unit "h " in duration "1h 30m""#),
        ("90", r#"time: missing unit in duration "90""#),
    ] {
        let prof = profile(&format!(
            "identities: {{acme/admin: {{principal: {{duration: '{text}'}}}}}}"
        ));
        let got = resolved(&prof, "profile: k8s", &Settings::default());
        assert_eq!(got.links[0].duration_seconds, None, "{text}");
        assert_eq!(
            got.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [format!(
                "auth.identities.acme/admin.principal.duration: {text:?} is not a Go duration ({go_error}): Atmos \
                 logs a warning and asks STS for its default session (1h), and so does the controller; write a Go \
                 duration such as 1h, 90m or 1h30m"
            )],
        );
        assert!(validate_profile(&prof, &Settings::default()).is_ready(), "{text}");
    }
    // The Identity's own override: the warning names the Identity's field.
    let got = resolved(
        &profile(""),
        "{profile: k8s, principal: {duration: soon}}",
        &Settings::default(),
    );
    assert_eq!(got.links[0].duration_seconds, None);
    assert!(
        got.warnings[0]
            .to_string()
            .starts_with("spec.principal.duration: \"soon\" is not a Go duration")
    );
}

/// A value Go parses but STS would refuse keeps the refusal: a status naming the field beats
/// an STS error at renewal time.
#[test]
fn a_parseable_duration_outside_what_sts_grants_is_refused() {
    for (text, message) in [
        (
            "13h",
            "13h is longer than 12h, the longest session AWS grants; use at most 12h (and at most the role's MaxSessionDuration)",
        ),
        (
            "10m",
            "10m is shorter than the shortest session allowed (15m); use at least 15m",
        ),
        (
            "0",
            "0 is shorter than the shortest session allowed (15m); use at least 15m",
        ),
        (
            "899.9s",
            "899.9s is shorter than the shortest session allowed (15m); use at least 15m",
        ),
        (
            "-1h",
            "\"-1h\" is negative: STS refuses it; use a Go duration such as 1h, 90m or 1h30m",
        ),
    ] {
        let prof = profile(&format!(
            "identities: {{acme/admin: {{principal: {{duration: '{text}'}}}}}}"
        ));
        assert_eq!(
            only(&prof, &identity("profile: k8s")),
            p(
                "auth.identities.acme/admin.principal.duration",
                Reason::InvalidProfile,
                message
            ),
            "{text}"
        );
    }
}
