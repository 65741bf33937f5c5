//! The container image recipe (the Dockerfile), held to what scripts/build-image.sh builds.

use std::collections::BTreeMap;
use std::fs;

use serde_json::Value;

use crate::fixture::*;
use crate::image_spec;

#[test]
fn dockerfile_builds_the_scripts_image_from_existing_paths() {
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
    for line in &instructions {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
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
    assert_eq!(froms[1], "FROM scratch", "the runtime is the staged files alone");
    let build = instructions
        .iter()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build");
    // The same binary as scripts/build-image.sh: static glibc for the one installed target.
    let rustflags = format!("RUSTFLAGS={}", image_spec::env_value("IMAGE_RUSTFLAGS"));
    for flag in [
        "--release",
        "--locked",
        "--bin atmos-auth-controller",
        rustflags.as_str(),
        "--target x86_64-unknown-linux-gnu",
    ] {
        assert!(
            build.contains(flag),
            "the Dockerfile's cargo build lacks {flag}: {build}"
        );
    }
    assert!(
        build.contains("scripts/image-rootfs.sh target/x86_64-unknown-linux-gnu/release/atmos-auth-controller /rootfs"),
        "the build stage stages the files with the script's own staging step: {build}"
    );
    let script = fs::read_to_string(repo().join("scripts/build-image.sh")).unwrap();
    assert!(
        script.contains("image-rootfs.sh")
            && script.contains("RUSTFLAGS=\"$IMAGE_RUSTFLAGS\"")
            && script.contains("TARGET=x86_64-unknown-linux-gnu"),
        "scripts/build-image.sh stages and builds the same way"
    );
    assert!(
        instructions.iter().any(|l| l == "COPY --from=build /rootfs /"),
        "the runtime copies the staged root"
    );
    let home = format!("/home/{}", image_spec::env_value("IMAGE_USER_NAME"));
    assert!(
        instructions
            .iter()
            .any(|l| *l == format!("COPY --from=build --chown={} /rootfs{home} {home}", image_spec::user())),
        "the user's home is the user's, as in the script's layer"
    );

    // The config: scripts/image.env and Cargo.toml, which scripts/build-image.sh reads.
    let last = |prefix: &str| -> String {
        instructions
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix}"))
            .to_owned()
    };
    assert_eq!(last("USER "), image_spec::user(), "the image's user");
    assert_eq!(last("EXPOSE "), image_spec::env_value("IMAGE_PORT"));
    let exec = |prefix: &str| -> Vec<String> { serde_json::from_str(&last(prefix)).expect("exec form") };
    assert_eq!(exec("ENTRYPOINT "), [image_spec::env_value("IMAGE_BINARY")]);
    assert_eq!(exec("CMD "), [image_spec::env_value("IMAGE_CMD")]);
    let labels: BTreeMap<String, String> = instructions
        .iter()
        .filter_map(|l| l.strip_prefix("LABEL "))
        .flat_map(label_pairs)
        .collect();
    assert_eq!(labels, image_spec::labels(), "the Dockerfile's labels");

    let values = yaml_file(&chart_dir().join("values.yaml")).remove(0);
    let chart = yaml_file(&chart_dir().join("Chart.yaml")).remove(0);
    // GHCR links an image to its repository by the source label; the chart pulls the
    // image of its appVersion from values.yaml's repository.
    let repository = values["image"]["repository"].as_str().expect("image.repository");
    let labels = image_spec::labels();
    assert_eq!(
        repository.strip_prefix("ghcr.io/"),
        labels["org.opencontainers.image.source"].strip_prefix("https://github.com/"),
        "the image's source label names the repository values.yaml pulls from"
    );
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(labels["org.opencontainers.image.version"].as_str()),
        "the image's version label is the chart's appVersion"
    );
    assert_eq!(
        values["podSecurityContext"]["runAsUser"].to_string(),
        image_spec::env_value("IMAGE_UID"),
        "the chart runs as the image's user"
    );
}

/// `key="value" key2="value 2"` of a LABEL instruction.
fn label_pairs(line: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = line.trim();
    while let Some((key, after)) = rest.split_once("=\"") {
        let (value, tail) = after.split_once('"').expect("a closing quote");
        pairs.push((key.trim().to_owned(), value.to_owned()));
        rest = tail.trim();
    }
    assert!(rest.is_empty(), "LABEL in key=\"value\" form: {line}");
    pairs
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
