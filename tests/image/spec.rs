//! What the controller's image is, in one place: scripts/image.env (read by
//! scripts/build-image.sh and scripts/image-rootfs.sh) and Cargo.toml. The chart tests hold
//! the Dockerfile to it, the image test holds a built image's config to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// scripts/image.env's `KEY=VALUE` lines.
pub fn image_env() -> BTreeMap<String, String> {
    let path = repo().join("scripts/image.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub fn env_value(key: &str) -> String {
    image_env()
        .remove(key)
        .unwrap_or_else(|| panic!("scripts/image.env has no {key}"))
}

/// The user the image runs as, `UID:GID`.
pub fn user() -> String {
    format!("{}:{}", env_value("IMAGE_UID"), env_value("IMAGE_GID"))
}

/// The labels the image carries (OCI annotations keys, read by registries and Artifact Hub).
pub fn labels() -> BTreeMap<String, String> {
    [
        ("title", env!("CARGO_PKG_NAME").to_owned()),
        ("description", env!("CARGO_PKG_DESCRIPTION").to_owned()),
        ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ("licenses", env!("CARGO_PKG_LICENSE").to_owned()),
        ("source", env_value("IMAGE_SOURCE")),
    ]
    .into_iter()
    .map(|(k, v)| (format!("org.opencontainers.image.{k}"), v))
    .collect()
}

/// `path` inside an unpacked image root.
pub fn in_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}
