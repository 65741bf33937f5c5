//! The malformed-input corpus (`tests/corpus/*.yaml`) through `validate`, and the YAML
//! reader's budget on large and hostile manifests.
//!
//! Each case is one file whose leading comments say what is expected:
//! - `# validate: TEXT` (repeatable): `validate` fails and prints TEXT, a field path and
//!   what is wrong; `# validate: ok`: it passes.
//! - `# warns: TEXT` (repeatable): `validate` prints the warning TEXT.
//! - `# notes: TEXT` (repeatable): `validate` prints the note TEXT (a kind that cannot run in
//!   a cluster, which only an Identity that needs it makes a problem).
//! - `# api: accepted | refused TEXT | unread`: what the API server does with it (TEXT in
//!   its message; note that it writes schema paths as `spec.identities.a.kind` and CEL rule
//!   paths as `spec.identities[a].via`); `unread`: the YAML reader refuses it before any
//!   request.
//! - `# status: AuthProfile|Identity REASON` (repeatable): the Ready condition's reason the
//!   controller sets. The last two are checked on the real API server by the e2e test
//!   `corpus` (tests/e2e/corpus.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One case file's expectations.
#[derive(Debug, Default)]
struct Case {
    path: PathBuf,
    validate: Vec<String>,
    validate_ok: bool,
    warns: Vec<String>,
    notes: Vec<String>,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("case file");
            let mut case = Case {
                path,
                ..Case::default()
            };
            for line in text.lines().take_while(|l| l.starts_with('#')) {
                if let Some(v) = line.strip_prefix("# warns: ") {
                    case.warns.push(v.to_owned());
                }
                if let Some(v) = line.strip_prefix("# notes: ") {
                    case.notes.push(v.to_owned());
                }
                if let Some(v) = line.strip_prefix("# validate: ") {
                    if v == "ok" {
                        case.validate_ok = true;
                    } else {
                        case.validate.push(v.to_owned());
                    }
                }
            }
            case
        })
        .collect()
}

fn validate(files: &[&Path]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"))
        .arg("validate")
        .args(files)
        .output()
        .expect("run validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_corpus_case_gets_its_expected_verdict_naming_the_field() {
    let cases = cases();
    assert!(cases.len() >= 50, "only {} corpus cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        assert!(
            case.validate_ok == case.validate.is_empty(),
            "{name}: say `# validate: ok` or what validate prints"
        );
        let (ok, stdout, stderr) = validate(&[&case.path]);
        for (prefix, wanted) in [("warning: ", &case.warns), ("note: ", &case.notes)] {
            for want in wanted {
                if !stdout
                    .lines()
                    .any(|l| l.starts_with(prefix) && l.contains(want.as_str()))
                {
                    failures.push(format!("{name}: expected the {prefix}{want:?} in:\n{stdout}"));
                }
            }
        }
        if case.validate_ok {
            if !ok {
                failures.push(format!("{name}: expected valid, got:\n{stdout}{stderr}"));
            }
            continue;
        }
        if ok {
            failures.push(format!("{name}: expected problems, validate passed:\n{stderr}"));
        }
        for want in &case.validate {
            if !stdout.contains(want.as_str()) {
                failures.push(format!("{name}: expected {want:?} in:\n{stdout}{stderr}"));
            }
        }
        // Every problem names the file, the resource and a field (or, for a file the reader
        // refuses, the line). Other lines continue a problem (the reader's snippet).
        let file = format!("{}: ", case.path.display());
        if !stdout.starts_with(&file) {
            failures.push(format!("{name}: output does not start with the file:\n{stdout}"));
        }
        for line in stdout.lines() {
            let Some(rest) = line.strip_prefix(&file) else { continue };
            let named = rest.starts_with("line ")
                || rest.starts_with("invalid YAML")
                || ["AuthProfile ", "Identity "].iter().any(|kind| {
                    rest.strip_prefix(kind)
                        .and_then(|r| r.split_once(": "))
                        .is_some_and(|(_, field)| field.starts_with("auth.") || field.starts_with("spec"))
                });
            if !named {
                failures.push(format!("{name}: a problem that names no field: {line}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A platform's rendered manifest: a profile and 10 000 Identities in 10 namespaces. Before
/// the shared reader, serde-saphyr's default budget stopped it at 1 024 documents.
#[test]
fn validate_reads_a_ten_thousand_document_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("platform.yaml");
    let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/profile.yaml"))
        .expect("example profile");
    let mut text = String::new();
    for ns in 0..10 {
        text.push_str("---\n");
        text.push_str(&profile.replace("namespace: infra", &format!("namespace: team-{ns}")));
    }
    for i in 0..10_000 {
        text.push_str(&format!(
            "---\napiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata:\n  name: id-{i}\n  namespace: team-{}\n  \
             labels: {{app.kubernetes.io/managed-by: platform, team: t{}}}\nspec:\n  profile: k8s\n  identity: acme/network\n  \
             secret: {{name: aws-{i}, formats: [process]}}\n",
            i % 10,
            i % 10
        ));
    }
    std::fs::write(&path, text).expect("write");
    let started = std::time::Instant::now();
    let (ok, stdout, stderr) = validate(&[&path]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("10010 resources checked, no problems"), "{stderr}");
    eprintln!("validate of 10 010 resources: {:?}", started.elapsed());
}

/// Hostile YAML stops early with the limit that was hit and where.
#[test]
fn validate_stops_hostile_yaml_with_the_limit_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("docs.yaml");
    std::fs::write(&docs, "---\na: 1\n".repeat(100_001)).expect("write");
    let (ok, stdout, _) = validate(&[&docs]);
    assert!(!ok);
    assert!(
        stdout.contains("docs.yaml: line 200001, column 1: 100001 documents, more than 100000 (limit MAX_DOCUMENTS)"),
        "{stdout}"
    );
    let huge = dir.path().join("huge.yaml");
    std::fs::write(&huge, format!("a: {}\n", "x".repeat(64 * 1024 * 1024))).expect("write");
    let (ok, stdout, _) = validate(&[&huge]);
    assert!(!ok);
    assert!(
        stdout.contains("huge.yaml: the YAML text is over 64 MiB (limit MAX_INPUT_BYTES)"),
        "{stdout}"
    );
}
