//! Every test owns its namespace (`e2e-<name>`): two tests naming the same one fight over it
//! on the shared API server (one fails with AlreadyExists, or both see the other's objects).
//! Checked from the sources, so a collision fails here, by name, not as a flaky test.

use std::collections::BTreeMap;

#[test]
fn each_test_names_its_own_namespace() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for opener in ["namespace(&client, \"", "Scenario::start(\""] {
            for part in text.split(opener).skip(1) {
                let name = part.split('"').next().unwrap_or_default().to_owned();
                seen.entry(name).or_default().push(file.clone());
            }
        }
    }
    let shared: Vec<String> = seen
        .iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(name, files)| format!("e2e-{name}: {}", files.join(", ")))
        .collect();
    assert!(
        seen.len() > 20,
        "found only {} namespaces: the patterns no longer match",
        seen.len()
    );
    assert!(shared.is_empty(), "namespaces named by more than one test: {shared:?}");
}
