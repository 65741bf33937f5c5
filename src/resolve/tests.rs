//! Resolution and validation: one bad input per rule, with the exact message.

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

// ---------------------------------------------------------------- chains that resolve

#[test]
fn one_link_from_the_default_identity() {
    let got = resolve(&profile(""), &identity("profile: k8s"), "admin", &Settings::default()).unwrap();
    assert_eq!(
        got,
        Resolved {
            identity: "acme/admin".into(),
            chain: vec!["cluster-oidc".into(), "acme/admin".into()],
            token: TokenSource {
                provider: "cluster-oidc".into(),
                service_account: "terraform".into(),
                audience: "sts.amazonaws.com".into(),
                expiration_seconds: 600,
                endpoint: None,
            },
            links: vec![Link {
                identity: "acme/admin".into(),
                role_arn: ADMIN.into(),
                session_name: None,
                external_id: None,
                duration_seconds: 3600,
                region: "us-east-2".into(),
            }],
            region: "us-east-2".into(),
            secret: SecretPlan {
                name: "admin".into(),
                formats: vec![SecretFormat::Process],
                mount_path: DEFAULT_MOUNT_PATH.into(),
            },
            refresh_before_seconds: None,
            warnings: vec![],
        }
    );
}

#[test]
fn two_links_with_overrides_merged() {
    let got = resolve(
        &profile(""),
        &identity(
            r#"
profile: k8s
identity: acme/network
serviceAccountName: tf-network
refreshBefore: 20m
principal: {session_name: runner-network, duration: 45m}
secret: {name: aws-network, formats: [env, process, env], mountPath: /aws/}
"#,
        ),
        "network",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(got.identity, "acme/network");
    assert_eq!(got.chain, ["cluster-oidc", "acme/admin", "acme/network"]);
    assert_eq!(got.token.service_account, "tf-network");
    assert_eq!(
        got.links,
        vec![
            Link {
                identity: "acme/admin".into(),
                role_arn: ADMIN.into(),
                session_name: None,
                external_id: None,
                duration_seconds: 3600,
                region: "us-east-2".into(),
            },
            Link {
                identity: "acme/network".into(),
                role_arn: NETWORK.into(),
                session_name: Some("runner-network".into()),
                external_id: None,
                duration_seconds: 2700,
                region: "eu-west-1".into(),
            },
        ]
    );
    assert_eq!(got.region, "eu-west-1");
    assert_eq!(
        got.secret,
        SecretPlan {
            name: "aws-network".into(),
            formats: vec![SecretFormat::Process, SecretFormat::Env],
            mount_path: "/aws".into(),
        }
    );
    assert_eq!(got.refresh_before_seconds, Some(1200));
}

#[test]
fn three_links_inherit_region_and_keep_external_id() {
    let got = resolve(
        &profile(""),
        &identity("{profile: k8s, identity: acme/dns}"),
        "dns",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(got.chain, ["cluster-oidc", "acme/admin", "acme/network", "acme/dns"]);
    let regions: Vec<&str> = got.links.iter().map(|l| l.region.as_str()).collect();
    assert_eq!(regions, ["us-east-2", "eu-west-1", "eu-west-1"]);
    assert_eq!(got.links[2].external_id.as_deref(), Some("tenant-secret-42"));
    assert_eq!(got.links[2].duration_seconds, 1800);
    assert_eq!(got.region, "eu-west-1");
}

#[test]
fn region_defaults_to_us_east_1() {
    let prof = raw_profile(
        r#"
providers: {p: {kind: kubernetes/oidc, spec: {service_account: sa}}}
identities:
  a: {default: true, kind: aws/assume-role, via: {provider: p}, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}
"#,
    );
    let got = resolve(&prof, &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    assert_eq!(got.links[0].region, "us-east-1");
    assert_eq!(got.region, "us-east-1");

    // The operator's defaults apply where the profile and the Identity say nothing.
    let settings = Settings {
        default_region: "eu-central-1".to_owned(),
        default_refresh_before_seconds: Some(1200),
        ..Settings::default()
    };
    let got = resolve(&prof, &identity("profile: k8s"), "a", &settings).unwrap();
    assert_eq!(got.region, "eu-central-1");
    assert_eq!(got.refresh_before_seconds, Some(1200));
    let own = resolve(&prof, &identity("{profile: k8s, refreshBefore: 5m}"), "a", &settings).unwrap();
    assert_eq!(own.refresh_before_seconds, Some(300));
}

#[test]
fn session_duration_and_provider_settings() {
    let prof = profile(
        r#"
providers: {cluster-oidc: {spec: {expiration: 1h, endpoint_url: "https://sts.internal"}}}
identities: {acme/admin: {principal: {duration: 2h}}}
"#,
    );
    let settings = Settings {
        allowed_endpoints: vec!["https://sts.internal".into()],
        ..Settings::default()
    };
    let got = resolve(&prof, &identity("profile: k8s"), "a", &settings).unwrap();
    assert_eq!(got.links[0].duration_seconds, 7200);
    assert_eq!(got.token.expiration_seconds, 3600);
}

#[test]
fn spec_hash_follows_the_resolved_spec() {
    let a = resolve(&profile(""), &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    let b = resolve(&profile(""), &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    let c = resolve(
        &profile(""),
        &identity("{profile: k8s, refreshBefore: 10m}"),
        "a",
        &Settings::default(),
    )
    .unwrap();
    let d = resolve(
        &profile(""),
        &identity("{profile: k8s, principal: {session_name: other}}"),
        "a",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(a.spec_hash(), b.spec_hash());
    // refreshBefore only schedules: changing it must not renew every Secret at once.
    assert_eq!(a.spec_hash(), c.spec_hash());
    assert_ne!(a.spec_hash(), d.spec_hash());
    assert_eq!(a.spec_hash().len(), 64);
}

// ---------------------------------------------------------------- choosing the target

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

// ---------------------------------------------------------------- structure of the chain

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

// ---------------------------------------------------------------- kinds

#[test]
fn github_oidc_cannot_run() {
    let prof = profile("providers: {cluster-oidc: {kind: github/oidc}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.providers.cluster-oidc.kind",
            Reason::UnsupportedKind,
            "kind github/oidc cannot run in a cluster: github/oidc exists only inside a GitHub Actions job; use kind kubernetes/oidc with spec.service_account, or keep github/oidc in Atmos itself inside the job"
        )
    );
}

#[test]
fn sso_and_saml_need_a_person() {
    let prof = profile("providers: {cluster-oidc: {kind: aws/iam-identity-center}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")).message,
        "kind aws/iam-identity-center cannot run in a cluster: SSO needs a person to log in; use kind kubernetes/oidc with spec.service_account"
    );
    let prof = profile("providers: {cluster-oidc: {kind: aws/saml}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")).message,
        "kind aws/saml cannot run in a cluster: SAML needs a person to log in through a browser; use kind kubernetes/oidc with spec.service_account"
    );
    let prof = profile("providers: {cluster-oidc: {kind: azure/oidc}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")).message,
        "kind azure/oidc cannot run in a cluster: the controller runs only kubernetes/oidc; use kind kubernetes/oidc with spec.service_account"
    );
}

#[test]
fn identity_kinds_that_cannot_run() {
    let cases = [
        (
            "aws/permission-set",
            "kind aws/permission-set cannot run in a cluster: it needs an AWS IAM Identity Center (SSO) login by a person; use kind aws/assume-role via a kubernetes/oidc provider",
        ),
        (
            "aws/user",
            "kind aws/user cannot run in a cluster: the controller does not store long-lived access keys; use kind aws/assume-role via a kubernetes/oidc provider",
        ),
        (
            "aws/assume-root",
            "kind aws/assume-root cannot run in a cluster: it needs a management-account session for a root task, which the controller does not hold; use kind aws/assume-role",
        ),
        (
            "aws/ambient",
            "kind aws/ambient is for Atmos running inside a consumer pod, where it uses the credentials the controller mounted; the controller itself runs kind aws/assume-role",
        ),
        (
            "gcp/service-account",
            "kind gcp/service-account cannot run in a cluster; the controller runs kind aws/assume-role via a kubernetes/oidc provider",
        ),
    ];
    for (kind, message) in cases {
        let prof = profile(&format!("identities: {{acme/admin: {{kind: {kind}}}}}"));
        assert_eq!(
            only(&prof, &identity("profile: k8s")),
            p("auth.identities.acme/admin.kind", Reason::UnsupportedKind, message),
            "{kind}"
        );
    }
    // A kind without `via` (aws/ambient, aws/user) gets only its kind problem.
    let prof = raw_profile("identities: {a: {default: true, kind: aws/ambient}}");
    assert_eq!(only(&prof, &identity("profile: k8s")).reason, Reason::UnsupportedKind);
}

// ---------------------------------------------------------------- principal

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
fn duration_not_a_duration() {
    let prof = profile("identities: {acme/admin: {principal: {duration: an hour}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.principal.duration",
            Reason::InvalidProfile,
            "\"an hour\" is not a duration; use a Go duration such as 1h, 90m or 1h30m"
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

// ---------------------------------------------------------------- provider

#[test]
fn audience_not_allowed() {
    let prof = profile("providers: {cluster-oidc: {spec: {audience: https://kubernetes.default.svc}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.providers.cluster-oidc.spec.audience",
            Reason::AudienceNotAllowed,
            "audience \"https://kubernetes.default.svc\" is not allowed: the controller requests tokens only for sts.amazonaws.com; use one of them, or ask the operator to allow it"
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
fn endpoint_refused_unless_allowed() {
    let prof = profile("providers: {cluster-oidc: {spec: {endpoint_url: 'https://evil.example'}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.providers.cluster-oidc.spec.endpoint_url",
            Reason::EndpointNotAllowed,
            "endpoint_url \"https://evil.example\" is refused: the STS endpoint is the controller's configuration, not the profile's; remove endpoint_url, or ask the operator to allow-list it"
        )
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

// ---------------------------------------------------------------- the Identity's own fields

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
providers: {cluster-oidc: {spec: {audience: other, endpoint_url: "https://x"}}}
identities:
  acme/admin: {principal: {assume_role: nope, external_id: abc}}
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
                "auth.providers.cluster-oidc.spec.endpoint_url",
                Reason::EndpointNotAllowed
            ),
            (
                "auth.identities.acme/admin.principal.assume_role",
                Reason::InvalidProfile
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

// ---------------------------------------------------------------- whole profile

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
                reason: None,
                message: None,
            },
            IdentityState {
                name: "acme/network".into(),
                ready: true,
                chain: vec!["cluster-oidc".into(), "acme/admin".into(), "acme/network".into()],
                reason: None,
                message: None,
            },
            IdentityState {
                name: "ci/admin".into(),
                ready: false,
                chain: vec!["gh".into(), "ci/admin".into()],
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
