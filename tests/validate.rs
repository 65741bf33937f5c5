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
