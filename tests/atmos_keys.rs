//! The AuthProfile schema accepts every key of Atmos's `auth:` block, so a pasted block
//! applies with kubectl's strict field validation. The key list is data read from Atmos's
//! structs (tests/atmos/auth-keys.txt says where from); this test walks the generated CRD.

use std::path::Path;

use atmos_auth_controller::api::AuthProfile;
use kube::CustomResourceExt;
use serde_json::Value;

/// The paths of tests/atmos/auth-keys.txt (comments and blank lines skipped).
fn atmos_paths() -> Vec<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/atmos/auth-keys.txt");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The AuthProfile's `spec` schema, as the binary generates it (tests/crds.rs keeps crds/
/// equal to it).
fn spec_schema() -> Value {
    let crd = serde_json::to_value(AuthProfile::crd()).expect("CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

/// Follows `path` through `schema`: `<name>` through `additionalProperties`, `[]` through
/// `items`, a key through `properties`. `Err` names the first step the schema lacks.
fn walk<'a>(schema: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut at = schema;
    let mut walked = Vec::new();
    for step in path.split('.') {
        let next = match step {
            "<name>" => at.get("additionalProperties"),
            "[]" => at.get("items"),
            key => at.get("properties").and_then(|p| p.get(key)),
        };
        walked.push(step);
        at = next.ok_or_else(|| format!("no {}", walked.join(".")))?;
    }
    Ok(at)
}

#[test]
fn the_authprofile_schema_has_every_atmos_auth_key() {
    let paths = atmos_paths();
    assert!(paths.len() >= 75, "only {} paths read", paths.len());
    let schema = spec_schema();
    let missing: Vec<String> = paths.iter().filter_map(|p| walk(&schema, p).err()).collect();
    assert!(
        missing.is_empty(),
        "the AuthProfile CRD lacks Atmos auth keys, so kubectl's strict validation refuses a pasted \
         block: {missing:#?}"
    );
}

#[test]
fn atmos_free_form_maps_stay_free_form() {
    // Where Atmos has map[string]interface{}, any key must pass too (with bounded values:
    // src/api/free_form.rs).
    let schema = spec_schema();
    for path in [
        "identities.<name>.principal",
        "identities.<name>.credentials",
        "identities.<name>.spec",
        "providers.<name>.spec",
        "keyring.spec",
    ] {
        let node = walk(&schema, path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            node["additionalProperties"].is_object() && node.get("properties").is_none(),
            "{path} must take any key: {node}"
        );
    }
}

#[test]
fn the_walk_fails_on_a_missing_key() {
    // The check above can fail: a key Atmos does not have is not found.
    let schema = spec_schema();
    assert_eq!(
        walk(&schema, "providers.<name>.no_such_key").unwrap_err(),
        "no providers.<name>.no_such_key"
    );
    assert!(walk(&schema, "identities.<name>.env.[].key").is_ok());
}
