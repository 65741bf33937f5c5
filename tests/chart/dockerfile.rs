//! The container image recipe.

use std::fs;

use serde_json::Value;

use crate::fixture::*;

#[test]
fn dockerfile_copies_existing_paths_into_a_non_root_distroless_image() {
    let dockerfile = fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let dockerignore = fs::read_to_string(repo().join(".dockerignore")).unwrap();
    // .dockerignore is an allow-list: exclude everything, re-include what the build needs.
    let ignore: Vec<&str> = dockerignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        ignore.first(),
        Some(&"*"),
        ".dockerignore starts by excluding everything"
    );
    let included: Vec<&str> = ignore
        .iter()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();

    let instructions: Vec<String> = dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut copied = 0;
    let mut runtime_copy_dest = None;
    for line in &instructions {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
            runtime_copy_dest = words.last().map(|s| s.to_string());
            continue;
        }
        let (sources, _dest) = words.split_at(words.len() - 1);
        for source in sources.iter().filter(|w| !w.starts_with("--")) {
            let source = source.trim_end_matches('/');
            assert!(
                repo().join(source).exists(),
                "Dockerfile copies {source}, which does not exist"
            );
            assert!(
                included
                    .iter()
                    .any(|inc| source == *inc || source.starts_with(&format!("{inc}/"))),
                "Dockerfile copies {source}, which .dockerignore leaves out of the build context"
            );
            copied += 1;
        }
    }
    assert!(copied >= 4, "Cargo.toml, Cargo.lock, src, the workspace member");

    // Every workspace member's manifest must be in the context, or cargo cannot load the
    // workspace.
    let cargo: Value = toml_members(&fs::read_to_string(repo().join("Cargo.toml")).unwrap());
    for member in strs(&cargo).into_iter().filter(|m| *m != ".") {
        assert!(
            instructions
                .iter()
                .any(|l| l.starts_with("COPY ") && l.contains(member)),
            "workspace member {member} is not copied"
        );
    }

    let froms: Vec<&String> = instructions.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(
        froms[0].contains("rust:"),
        "the build stage is the official Rust image: {}",
        froms[0]
    );
    assert!(
        froms[1].contains("gcr.io/distroless/cc"),
        "the runtime is distroless cc (glibc): {}",
        froms[1]
    );
    let build = instructions
        .iter()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build");
    assert!(
        build.contains("--release") && build.contains("--locked") && build.contains("--bin atmos-auth-controller"),
        "{build}"
    );
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert_eq!(
        user, "65532:65532",
        "non-root, and the uid the chart's podSecurityContext sets"
    );
    let entrypoint = instructions
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("exec form");
    assert_eq!(
        Some(&entrypoint[0]),
        runtime_copy_dest.as_ref(),
        "the entrypoint is the binary copied from the build stage"
    );

    let values = yaml_file(&chart_dir().join("values.yaml")).remove(0);
    assert_eq!(values["podSecurityContext"]["runAsUser"], 65532);
}

/// `[workspace] members = [...]` of a Cargo.toml, without a TOML parser (none is a
/// dependency): the one-line array form this repository uses.
fn toml_members(cargo_toml: &str) -> Value {
    let line = cargo_toml
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    let array = line.split_once('=').unwrap().1.trim();
    serde_json::from_str(array).expect("members = [\"...\"] on one line")
}
