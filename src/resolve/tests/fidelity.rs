//! Atmos's behaviour (v1.226.0, `pkg/auth/identities/aws/assume_role.go`): what a pasted
//! profile gets, warnings included, and the secrets a resource must never hold.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::api::{AuthProfileSpec, IdentitySpec};

const ADMIN: &str = "arn:aws:iam::123456789012:role/admin";
const NETWORK: &str = "arn:aws:iam::123456789012:role/network";

/// A provider and a two-link chain, with `patch` deep-merged over it.
fn profile(patch: Value) -> AuthProfileSpec {
    let mut base = json!({
        "providers": {"p": {"kind": "kubernetes/oidc", "spec": {"service_account": "terraform"}}},
        "identities": {
            "admin": {"kind": "aws/assume-role", "default": true, "via": {"provider": "p"},
                      "principal": {"assume_role": ADMIN}},
            "network": {"kind": "aws/assume-role", "via": {"identity": "admin"},
                        "principal": {"assume_role": NETWORK}}
        }
    });
    deep_merge(&mut base, patch);
    serde_json::from_value(base).unwrap()
}

fn identity(name: &str) -> IdentitySpec {
    serde_json::from_value(json!({"profile": "k8s", "identity": name})).unwrap()
}

fn ok(profile: &AuthProfileSpec, spec: &IdentitySpec, settings: &Settings) -> Resolved {
    match resolve(profile, spec, "obj", settings) {
        Ok(r) => r,
        Err(problems) => panic!("{problems:#?}"),
    }
}

fn warning_lines(warnings: &[Warning]) -> Vec<String> {
    warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn session_name_is_rewritten_as_atmos_does_not_refused() {
    let prof = profile(json!({"identities": {"admin": {"principal": {"session_name": "ci/run_42 x"}}}}));
    let got = ok(&prof, &identity("admin"), &Settings::default());
    assert_eq!(got.links[0].session_name.as_deref(), Some("ci-run-42-x"));
    assert_eq!(
        warning_lines(&got.warnings),
        [
            "auth.identities.admin.principal.session_name: \"ci/run_42 x\" is sent as \"ci-run-42-x\": Atmos \
          replaces every character outside [A-Za-z0-9+=,.@-] with - and cuts the name to 64 characters, \
          and so does the controller"
        ]
    );
    // A name Atmos would send unchanged gets no warning; a long one is cut to 64.
    let long = "n".repeat(70);
    let prof = profile(json!({"identities": {"admin": {"principal": {"session_name": long}}}}));
    let got = ok(&prof, &identity("admin"), &Settings::default());
    assert_eq!(got.links[0].session_name.as_deref(), Some("n".repeat(64).as_str()));
    let prof = profile(json!({"identities": {"admin": {"principal": {"session_name": "runner-1"}}}}));
    assert!(ok(&prof, &identity("admin"), &Settings::default()).warnings.is_empty());
    // The Identity's own override is rewritten too, and reported at its path.
    let spec: IdentitySpec =
        serde_json::from_value(json!({"profile": "k8s", "principal": {"session_name": "a/b"}})).unwrap();
    let got = ok(&profile(json!({})), &spec, &Settings::default());
    assert_eq!(got.links[0].session_name.as_deref(), Some("a-b"));
    assert!(
        got.warnings[0].path == "spec.principal.session_name",
        "{:?}",
        got.warnings
    );
}

#[test]
fn external_id_on_a_web_identity_link_is_ignored_with_a_warning() {
    let prof = profile(json!({"identities": {
        "admin": {"principal": {"external_id": "tenant-secret-1"}},
        "network": {"principal": {"external_id": "tenant-secret-2"}}
    }}));
    let got = ok(&prof, &identity("network"), &Settings::default());
    assert_eq!(
        got.links[0].external_id, None,
        "not sent with AssumeRoleWithWebIdentity"
    );
    assert_eq!(got.links[1].external_id.as_deref(), Some("tenant-secret-2"));
    let lines = warning_lines(&got.warnings);
    assert_eq!(
        lines,
        [
            "auth.identities.admin.principal.external_id: not used: a link with via.provider calls \
          AssumeRoleWithWebIdentity, which takes no external id; Atmos ignores it there, and so does \
          the controller"
        ]
    );
    assert!(!lines.concat().contains("tenant-secret"), "values are never echoed");
    let report = validate_profile(&prof, &Settings::default());
    assert!(report.is_ready(), "{:#?}", report.all_problems());
}

#[test]
fn duration_comes_from_principal_duration_only() {
    let prof = profile(json!({"identities": {"admin": {"session": {"duration": "2h"}}}}));
    let got = ok(&prof, &identity("admin"), &Settings::default());
    assert_eq!(
        got.links[0].duration_seconds,
        Some(3600),
        "Atmos's default, not session.duration"
    );
    assert_eq!(
        warning_lines(&got.warnings),
        [
            "auth.identities.admin.session: not used: for aws/assume-role Atmos reads only \
          principal.duration (default 1h), and so does the controller; move the duration to \
          principal.duration"
        ]
    );
    let prof =
        profile(json!({"identities": {"admin": {"session": {"duration": "2h"}, "principal": {"duration": "90m"}}}}));
    assert_eq!(
        ok(&prof, &identity("admin"), &Settings::default()).links[0].duration_seconds,
        Some(5400)
    );
    // Not even parsed: a value Atmos does not read cannot make the profile fail.
    let prof = profile(json!({"identities": {"admin": {"session": {"duration": "soon"}}}}));
    assert!(validate_profile(&prof, &Settings::default()).is_ready());
}

#[test]
fn region_is_principal_then_parent_then_the_operators_default() {
    // The provider's region is not used (Atmos neither uses it for STS nor writes it).
    let prof = profile(json!({"providers": {"p": {"region": "us-east-2"}}}));
    let got = ok(&prof, &identity("network"), &Settings::default());
    let regions: Vec<&str> = got.links.iter().map(|l| l.region.as_str()).collect();
    assert_eq!(regions, ["us-east-1", "us-east-1"]);
    assert_eq!(got.region, "us-east-1");
    assert_eq!(
        warning_lines(&got.warnings),
        [
            "auth.providers.p.region: us-east-2 is not used: a chain's first link calls STS in us-east-1 \
          and its credentials are written for us-east-1 (the link's principal.region, else the operator's \
          default region), as Atmos does; to use us-east-2, set principal.region: us-east-2 on the \
          identities with via.provider: p"
        ]
    );
    // The operator's default region replaces us-east-1.
    let settings = Settings {
        default_region: "eu-central-1".to_owned(),
        ..Settings::default()
    };
    assert_eq!(ok(&prof, &identity("network"), &settings).region, "eu-central-1");
    // A parent's principal.region is inherited; the child's own wins.
    let prof = profile(json!({"identities": {"admin": {"principal": {"region": "us-west-2"}}}}));
    let got = ok(&prof, &identity("network"), &Settings::default());
    assert_eq!(got.region, "us-west-2");
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    let prof = profile(json!({"identities": {"admin": {"principal": {"region": "us-west-2"}},
                                             "network": {"principal": {"region": "eu-west-1"}}}}));
    let got = ok(&prof, &identity("network"), &Settings::default());
    let regions: Vec<&str> = got.links.iter().map(|l| l.region.as_str()).collect();
    assert_eq!(regions, ["us-west-2", "eu-west-1"]);
    // Same region on the provider and the first link: nothing to say.
    let prof = profile(json!({"providers": {"p": {"region": "us-west-2"}},
                              "identities": {"admin": {"principal": {"region": "us-west-2"}}}}));
    assert!(ok(&prof, &identity("admin"), &Settings::default()).warnings.is_empty());
}

#[test]
fn validate_profile_lists_each_warning_once() {
    let prof = profile(json!({
        "realm": "acme",
        "providers": {"p": {"region": "us-east-2"}},
        "identities": {"admin": {"alias": "adm", "session": {"duration": "1h"}}}
    }));
    let report = validate_profile(&prof, &Settings::default());
    assert!(report.is_ready(), "{:#?}", report.all_problems());
    let paths: Vec<String> = report.all_warnings().into_iter().map(|w| w.path).collect();
    assert_eq!(
        paths,
        [
            "auth.realm",
            "auth.identities.admin.alias",
            "auth.identities.admin.session",
            "auth.providers.p.region",
        ]
    );
}

#[test]
fn secrets_are_refused_with_where_they_belong() {
    let prof = profile(json!({
        "providers": {"saml": {"kind": "aws/saml", "password": "hunter2"}},
        "identities": {
            "admin": {"env": [{"key": "TF_VAR_stage", "value": "prod"}, {"key": "AWS_SECRET_ACCESS_KEY", "value": "s3cr3t"}]},
            "user": {"kind": "aws/user", "credentials": {"access_key_id": "AKIAEXAMPLE", "mfa_arn": "arn:aws:iam::123456789012:mfa/x"}}
        }
    }));
    let problems = validate_profile(&prof, &Settings::default()).all_problems();
    let found: Vec<(&str, Reason)> = problems.iter().map(|p| (p.path.as_str(), p.reason)).collect();
    for expected in [
        ("auth.providers.saml.password", Reason::InvalidProfile),
        ("auth.identities.admin.env[1]", Reason::InvalidProfile),
        ("auth.identities.user.credentials.access_key_id", Reason::InvalidProfile),
    ] {
        assert!(found.contains(&expected), "{expected:?} in {found:#?}");
    }
    let text = format!("{problems:?}");
    for value in ["hunter2", "s3cr3t", "AKIAEXAMPLE"] {
        assert!(!text.contains(value), "{value} echoed: {text}");
    }
    let env = problems.iter().find(|p| p.path.ends_with("env[1]")).unwrap();
    assert!(
        env.message
            .starts_with("refused: AWS_SECRET_ACCESS_KEY is named like a credential"),
        "{}",
        env.message
    );
    assert!(env.message.contains("Kubernetes Secret"), "{}", env.message);
    // An Identity's own env is checked at its own path.
    let spec: IdentitySpec =
        serde_json::from_value(json!({"profile": "k8s", "env": [{"key": "AWS_SESSION_TOKEN", "value": "t"}]})).unwrap();
    let problems = resolve(&profile(json!({})), &spec, "obj", &Settings::default()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].path, "spec.env[0]");
    assert_eq!(problems[0].reason, Reason::InvalidIdentity);
}
