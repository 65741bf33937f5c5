//! Golden tests of `import`, run as a user runs it: the binary, on Atmos config files.
//!
//! Each directory `tests/import/cases/<case>/` holds:
//! - `args`: the command line after `import`, one argument per line, paths relative to
//!   `tests/import/` (the working directory, so inputs can be shared between cases);
//! - `expected`: exit code, stdout and stderr, exactly (`UPDATE_GOLDEN=1` rewrites it: review
//!   the diff, the messages are part of the contract);
//! - `chains` (cases that import): the chains Atmos builds for the profile, written by hand
//!   from Atmos's rules (`identity: provider -> identity -> ... -> identity`), not generated.
//!
//! For every case that imports, the round trip is checked too: `validate -` of the printed
//! manifests passes, noting exactly the not-runnable kinds `import` listed, and the
//! controller's resolver builds exactly the `chains`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::io::Write as _;

use atmos_auth_controller::api::AuthProfile;
use atmos_auth_controller::resolve::{Settings, validate_profile};
use pretty_assertions::assert_eq;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[String], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("stdin written");
    }
    let out = child.wait_with_output().expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn render(run: &Run) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

fn case(name: &str) {
    let dir = root().join("cases").join(name);
    let args_text = std::fs::read_to_string(dir.join("args")).expect("args file");
    let mut args = vec!["import".to_owned()];
    args.extend(
        args_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
    );
    let out = run(&args, None);
    let actual = render(&out);
    let expected_path = dir.join("expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &actual).expect("golden written");
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    assert_eq!(actual, expected, "case {name}: import {args_text}");
    // Fixtures mark fake secrets `not-a-real-...`: never printed, not even in notes.
    assert!(
        !actual.contains("not-a-real-"),
        "case {name}: a secret value was printed"
    );
    // Fixtures' `!exec` would create this file if anything ran it.
    assert!(
        !Path::new("/tmp/atmos-auth-import-ran-exec").exists(),
        "case {name}: !exec was run"
    );

    if out.code != 0 {
        assert_eq!(out.stdout, "", "case {name}: nothing printed when import fails");
        assert!(!dir.join("chains").exists(), "case {name} fails: it has no chains");
        return;
    }
    round_trip(name, &dir, &out);
}

/// `validate` agrees with `import`, and the resolver builds the chains Atmos builds.
fn round_trip(name: &str, dir: &Path, out: &Run) {
    let validated = run(&["validate".into(), "-".into()], Some(&out.stdout));
    let listed: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("not runnable in a cluster: "))
        .collect();
    // `FILE: AuthProfile NS/NAME: PATH: MESSAGE` -> `PATH: MESSAGE`.
    fn strip(l: &str) -> &str {
        let l = l.split_once(": AuthProfile ").map_or(l, |(_, rest)| rest);
        l.split_once(": ").map_or(l, |(_, rest)| rest)
    }
    let validated_stdout = validated.stdout.as_str();
    let problems: Vec<&str> = validated_stdout
        .lines()
        .filter(|l| !l.starts_with("warning: ") && !l.starts_with("note: ") && !l.starts_with("info: "))
        .collect();
    assert_eq!(problems, Vec::<&str>::new(), "case {name}: validate of the output");
    // Kinds that cannot run are notes: the profile is fine, an Identity needing one is not.
    let noted: Vec<&str> = validated_stdout
        .lines()
        .filter_map(|l| l.strip_prefix("note: "))
        .map(|l| {
            l.strip_suffix(" (kept: only an Identity that uses it fails)")
                .unwrap_or(l)
        })
        .map(strip)
        .collect();
    assert_eq!(noted, listed, "case {name}: validate's notes\n{}", validated.stderr);
    // One channel: validate warns exactly as import did, but for the secrets import left out
    // (they are not in the manifest).
    let warned: Vec<&str> = validated_stdout
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .map(strip)
        .collect();
    let import_warned: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .filter(|l| !l.split_once(": ").is_some_and(|(_, m)| m.starts_with("left out: ")))
        .collect();
    assert_eq!(warned, import_warned, "case {name}: validate's warnings");
    assert_eq!(validated.code, 0, "case {name}: validate's exit code");

    let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&out.stdout).expect("output is YAML");
    let profile: AuthProfile = serde_json::from_value(docs[0].clone()).expect("first document is an AuthProfile");
    let report = validate_profile(&profile.spec, &Settings::default());
    let chains: Vec<String> = report
        .identities
        .iter()
        .filter(|i| !i.chain.is_empty())
        .map(|i| format!("{}: {}", i.name, i.chain.join(" -> ")))
        .collect();
    let expected = std::fs::read_to_string(dir.join("chains")).expect("a case that imports has chains");
    let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(chains, expected, "case {name}: chains");
    // Every printed object is ours, and Identities name this profile.
    for doc in &docs[1..] {
        assert_eq!(doc["kind"], "Identity", "case {name}");
        assert_eq!(doc["spec"]["profile"], docs[0]["metadata"]["name"], "case {name}");
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                case(&stringify!($name).replace('_', "-"));
            }
        )*

        /// Every fixture directory has its test.
        #[test]
        fn every_case_is_listed() {
            let listed: Vec<String> = vec![$(stringify!($name).replace('_', "-")),*];
            let mut found: Vec<String> = std::fs::read_dir(root().join("cases"))
                .expect("cases directory")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            found.sort();
            let mut listed_sorted = listed.clone();
            listed_sorted.sort();
            assert_eq!(found, listed_sorted);
        }
    };
}

cases!(
    seed,
    seed_service_account,
    seed_per_identity,
    base_and_profiles,
    chain_three_deep,
    all_keys,
    anchors,
    yaml_functions,
    bad_cycle,
    bad_missing_provider,
    bad_missing_identity,
    bad_both_via,
    bad_neither_via,
    bad_two_defaults,
    bad_unknown_kind,
    bad_malformed_arn,
    bad_duration,
    bad_yaml,
    bad_function_in_required_key,
    // Atmos's own profiles (tests/import/atmos/README.md says where each comes from).
    atmos_demo_auth,
    atmos_landing,
    atmos_scenario_auth,
    atmos_profile_ci,
    atmos_profile_eks,
);

/// `import` takes the running controller's settings flags (and their environment variables):
/// an allow-listed `endpoint_url` imports, a region the controller would refuse is refused.
#[test]
fn the_controllers_settings_flags_are_honoured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let atmos = dir.path().join("atmos.yaml");
    std::fs::write(
        &atmos,
        "auth:\n  providers:\n    gh:\n      kind: github/oidc\n      region: us-east-2\n      spec:\n        \
         audience: sts.amazonaws.com\n  identities:\n    acme/admin:\n      default: true\n      kind: \
         aws/assume-role\n      via: {provider: gh}\n      principal: {assume_role: \"arn:aws:iam::123456789012:role/admin\"}\n      \
         spec: {endpoint_url: https://sts.internal.example}\n",
    )
    .expect("atmos.yaml written");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            "import".to_owned(),
            atmos.display().to_string(),
            "--service-account".into(),
            "terraform".into(),
        ];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };

    let refused = run(&args(&[]), None);
    assert_eq!(refused.code, 1, "{}", render(&refused));
    assert_eq!(refused.stdout, "");
    assert!(
        refused.stderr.contains(
            "error: auth.identities.acme/admin.spec.endpoint_url: endpoint_url \"https://sts.internal.example\" is refused"
        ),
        "{}",
        refused.stderr
    );
    let allowed = run(&args(&["--allowed-endpoint", "https://sts.internal.example"]), None);
    assert_eq!(allowed.code, 0, "{}", render(&allowed));
    assert!(
        allowed.stdout.contains("endpoint_url: https://sts.internal.example"),
        "{}",
        allowed.stdout
    );

    let region = run(
        &args(&[
            "--allowed-endpoint",
            "https://sts.internal.example",
            "--default-region",
            "Mars",
        ]),
        None,
    );
    assert_eq!(region.code, 1, "{}", render(&region));
    assert_eq!(region.stdout, "");
    assert!(
        region
            .stderr
            .contains("--default-region: \"Mars\" is not an AWS region name"),
        "{}",
        region.stderr
    );
}

/// The Atmos profile of `examples/atmos-in-pod/` reads, with Atmos's profile-directory order
/// and `!unset`, as exactly one `aws/ambient` identity and nothing of the base's auth.
#[test]
fn atmos_in_pod_example_profile() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/atmos-in-pod/project");
    let out = run(
        &[
            "import".into(),
            project.join("atmos.yaml").display().to_string(),
            project.join("profiles/in-cluster").display().to_string(),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&out.stdout).expect("YAML");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["metadata"]["name"], "in-cluster");
    assert_eq!(
        docs[0]["spec"],
        serde_json::json!({"providers": {}, "identities": {"acme/network": {"kind": "aws/ambient", "default": true}}})
    );
    assert!(
        out.stderr.contains(
            "not runnable in a cluster: auth.identities.acme/network.kind: kind aws/ambient is for Atmos running \
             inside a consumer pod"
        ),
        "{}",
        out.stderr
    );
}

/// `--cluster` prints a ClusterAuthProfile selecting `--namespace` by name, and Identities
/// that name it; `validate` resolves them against it.
#[test]
fn cluster_prints_a_cluster_profile_and_identities_naming_it() {
    let args: Vec<String> = [
        "import",
        "seed/profiles/github/atmos.yaml",
        "--service-account",
        "terraform",
        "--identities",
        "--namespace",
        "infra",
        "--cluster",
    ]
    .map(str::to_owned)
    .to_vec();
    let out = run(&args, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("imported ClusterAuthProfile github"),
        "{}",
        out.stderr
    );
    let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&out.stdout).expect("output is YAML");
    assert_eq!(docs[0]["kind"], "ClusterAuthProfile");
    assert!(docs[0]["metadata"].get("namespace").is_none(), "cluster-scoped");
    assert_eq!(docs[0]["spec"]["namespaces"], serde_json::json!(["infra"]));
    assert!(docs.len() > 1);
    for doc in &docs[1..] {
        assert_eq!(doc["kind"], "Identity");
        assert_eq!(doc["metadata"]["namespace"], "infra");
        assert_eq!(doc["spec"]["profileKind"], "ClusterAuthProfile");
        assert_eq!(doc["spec"]["profile"], "github");
    }
    let validated = run(&["validate".into(), "-".into()], Some(&out.stdout));
    assert_eq!(validated.code, 0, "{}{}", validated.stdout, validated.stderr);

    // Without --namespace it selects nothing, and says so.
    let out = run(
        &args[..args.len() - 3]
            .iter()
            .cloned()
            .chain(["--cluster".to_owned()])
            .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("selects no namespace"), "{}", out.stderr);
}
