//! The CRDs checked in under crds/ are exactly what the binary generates.

use std::path::Path;

#[test]
fn checked_in_crds_match_the_generated_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let files = atmos_auth_controller::cli::crds::files().expect("CRDs render");
    let mut stale = Vec::new();
    for (name, yaml) in &files {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    let on_disk = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert!(
        stale.is_empty() && on_disk == files.len(),
        "crds/ is out of date ({stale:?}, {on_disk} files for {} CRDs): run `cargo run -- crds --write crds/`",
        files.len()
    );
}
