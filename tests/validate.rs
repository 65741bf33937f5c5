//! `validate` on the shipped examples (which must stay valid) and on a broken manifest.

use std::process::Command;

fn validate(files: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"))
        .arg("validate")
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_examples_are_valid() {
    let (ok, stdout, stderr) = validate(&["examples/profile.yaml", "examples/identities.yaml"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("3 resources checked, no problems"), "{stderr}");
}

#[test]
fn the_platform_examples_are_valid() {
    let (ok, stdout, stderr) = validate(&[
        "examples/platform/cluster-profile.yaml",
        "examples/platform/arc-runners/identity.yaml",
        "examples/platform/terraform/identity.yaml",
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("3 resources checked, no problems"), "{stderr}");
    // Without the profile, the Identities say which kind is missing.
    let (ok, stdout, _) = validate(&["examples/platform/terraform/identity.yaml"]);
    assert!(!ok);
    assert!(
        stdout.contains("spec.profile: ClusterAuthProfile \"platform\" is not in the files given"),
        "{stdout}"
    );
}

#[test]
fn every_problem_is_printed_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/profile.yaml")).unwrap();
    // Both via keys, and a role name with a space.
    let broken = profile
        .lines()
        .map(|l| {
            if l.contains("identity: acme/admin") {
                "        identity: acme/admin\n        provider: cluster-oidc".to_owned()
            } else {
                l.replace("role/network-admin", "role/network admin")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&bad, broken).unwrap();
    let (ok, stdout, _) = validate(&[bad.to_str().unwrap(), "examples/identities.yaml"]);
    assert!(!ok);
    assert!(stdout.contains("auth.identities.acme/network.via"), "{stdout}");
    assert!(
        stdout.contains("auth.identities.acme/network.principal.assume_role"),
        "{stdout}"
    );
}

/// A profile whose identity carries `spec.endpoint_url` (Atmos's STS endpoint for its calls),
/// which the controller refuses unless allow-listed.
fn profile_with_endpoint(dir: &std::path::Path) -> String {
    let path = dir.join("endpoint.yaml");
    let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/profile.yaml")).unwrap();
    let with_endpoint = profile.replace(
        "        region: us-east-2\n",
        "        region: us-east-2\n      spec:\n        endpoint_url: https://sts.internal.example\n",
    );
    assert_ne!(profile, with_endpoint, "examples/profile.yaml changed shape");
    std::fs::write(&path, with_endpoint).unwrap();
    path.display().to_string()
}

fn validate_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"))
        .arg("validate")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_controllers_settings_flags_and_environment_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let file = profile_with_endpoint(dir.path());

    let (ok, stdout, _) = validate(&[&file]);
    assert!(!ok);
    assert!(
        stdout.contains(
            "auth.identities.acme/admin.spec.endpoint_url: endpoint_url \"https://sts.internal.example\" is refused"
        ),
        "{stdout}"
    );
    let (ok, stdout, stderr) = validate(&["--allowed-endpoint", "https://sts.internal.example", &file]);
    assert!(ok, "{stdout}{stderr}");
    // The chart's environment variable works as the running controller's does.
    let (ok, stdout, stderr) = validate_env(
        &[&file],
        &[("ATMOS_AUTH_ALLOWED_ENDPOINTS", "https://sts.internal.example")],
    );
    assert!(ok, "{stdout}{stderr}");

    // Settings the controller would refuse to start with are refused here too.
    let (ok, stdout, stderr) = validate(&["--default-region", "Mars", "examples/profile.yaml"]);
    assert!(!ok);
    assert!(
        stderr.contains("--default-region: \"Mars\" is not an AWS region name"),
        "{stdout}{stderr}"
    );
    let (ok, _, stderr) = validate(&["--allowed-audience", "sts.amazonaws.com,api", "examples/profile.yaml"]);
    assert!(!ok);
    assert!(
        stderr.contains("--allowed-audience \"api\" is an audience the API server itself accepts"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = validate(&["--default-region", "eu-west-1", "examples/profile.yaml"]);
    assert!(ok, "{stdout}{stderr}");
}

#[test]
fn an_override_its_cluster_profile_does_not_allow_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("identity.yaml");
    std::fs::write(
        &identity,
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {name: tf, namespace: ci}\nspec:\n  profile: platform\n  profileKind: ClusterAuthProfile\n  principal: {session_name: tenant-run}\n",
    )
    .unwrap();
    let (ok, stdout, _) = validate(&["examples/platform/cluster-profile.yaml", identity.to_str().unwrap()]);
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("Identity ci/tf: spec.principal.session_name: ClusterAuthProfile platform allows no override"),
        "{stdout}"
    );
}

/// Real profiles mix people's identities (SSO, `aws/user`) with CI's: a kind that cannot run
/// is a note, and only an Identity that needs it fails.
#[test]
fn kinds_that_cannot_run_are_notes_until_an_identity_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/profile.yaml")).unwrap();
    let mixed = format!(
        "{profile}    dev/readonly:\n      kind: aws/permission-set\n      via: {{provider: sso}}\n      principal: \
         {{name: ReadOnlyAccess, account: {{id: \"123456789012\"}}}}\n"
    )
    .replace(
        "  providers:\n",
        "  providers:\n    sso: {kind: aws/iam-identity-center, region: us-east-1, start_url: https://x.awsapps.com/start}\n",
    );
    let file = dir.path().join("mixed.yaml");
    std::fs::write(&file, &mixed).unwrap();
    let file = file.display().to_string();

    let (ok, stdout, stderr) = validate(&[&file, "examples/identities.yaml"]);
    assert!(ok, "{stdout}{stderr}");
    let notes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 2, "{stdout}");
    assert!(
        notes
            .iter()
            .all(|n| n.ends_with("(kept: only an Identity that uses it fails)")),
        "{stdout}"
    );
    assert!(
        stdout.contains("AuthProfile infra/k8s: auth.providers.sso.kind: kind aws/iam-identity-center cannot run"),
        "{stdout}"
    );
    assert!(
        stdout.contains("AuthProfile infra/k8s: auth.identities.dev/readonly.kind: kind aws/permission-set cannot run"),
        "{stdout}"
    );
    assert!(stderr.contains("3 resources checked, no problems, 2 notes"), "{stderr}");

    let identity = dir.path().join("readonly.yaml");
    std::fs::write(
        &identity,
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {name: readonly, namespace: infra}\n\
         spec: {profile: k8s, identity: dev/readonly}\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = validate(&[&file, identity.to_str().unwrap()]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stdout
            .contains("Identity infra/readonly: auth.identities.dev/readonly.kind: kind aws/permission-set cannot run"),
        "{stdout}"
    );
}

#[test]
fn the_ecr_example_is_valid_and_its_image_pull_secret_explained() {
    let (ok, stdout, stderr) = validate(&["examples/ecr/profile.yaml", "examples/ecr/identity.yaml"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("2 resources checked, no problems"), "{stderr}");
    assert!(
        stdout.contains(
            "Identity ci/artifacts: spec.imagePullSecret: Secret ecr-pull of type kubernetes.io/dockerconfigjson (for imagePullSecrets) will log in to 210987654321.dkr.ecr.us-east-2.amazonaws.com (artifacts-ecr, as acme/artifacts)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("ecr:GetAuthorizationToken"), "{stdout}");
}

#[test]
fn an_image_pull_secret_naming_what_cannot_log_in_is_refused_by_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let identity = dir.path().join("identity.yaml");
    std::fs::write(
        &identity,
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {name: wrong, namespace: ci}\nspec:\n  profile: images\n  identity: acme/admin\n  imagePullSecret: {name: ecr-pull, integrations: [artifacts-ecr, missing]}\n",
    )
    .expect("write");
    let (ok, stdout, _) = validate(&["examples/ecr/profile.yaml", identity.to_str().expect("path")]);
    assert!(!ok);
    assert!(
        stdout.contains("auth.integrations.artifacts-ecr.via.identity: \"acme/artifacts\" is not one of this Identity's identities (acme/admin)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("spec.imagePullSecret.integrations[1]: the profile has no integration \"missing\""),
        "{stdout}"
    );
}

#[test]
fn the_azure_examples_are_valid() {
    let (ok, stdout, stderr) = validate(&["examples/azure/profile.yaml", "examples/azure/identity.yaml"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("2 resources checked, no problems"), "{stderr}");
}

#[test]
fn the_gcp_examples_are_valid() {
    let (ok, stdout, stderr) = validate(&["examples/gcp/profile.yaml", "examples/gcp/identity.yaml"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("2 resources checked, no problems"), "{stderr}");
}
