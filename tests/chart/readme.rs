//! The chart README's table of values is what `values.yaml` says: every value, its default
//! and its `# --` description (or its nearest parent's), in file order; and every key that
//! `values.schema.json` accepts is documented, including optional ones `values.yaml` leaves
//! out. On a difference the test prints the table to paste.

use std::collections::BTreeMap;
use std::fs;

use serde_json::Value;

use crate::fixture::chart_dir;

/// `# -- text` blocks (with their `# ...` continuation lines), by the dotted path of the key
/// they precede.
fn descriptions(values_yaml: &str) -> BTreeMap<String, String> {
    let mut docs = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<Vec<String>> = None;
    for line in values_yaml.lines() {
        let trimmed = line.trim_start();
        if let Some(text) = trimmed.strip_prefix("# --") {
            pending = Some(vec![text.trim().to_owned()]);
        } else if let (Some(text), Some(p)) = (trimmed.strip_prefix('#'), pending.as_mut()) {
            p.push(text.trim().to_owned());
        } else if trimmed.is_empty() || trimmed.starts_with('#') {
            pending = None;
        } else if let Some((key, _)) = trimmed.split_once(':')
            && !trimmed.starts_with('-')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let indent = line.len() - trimmed.len();
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, key.to_owned()));
            let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
            if let Some(p) = pending.take() {
                docs.insert(path.join("."), p.join(" "));
            }
        }
    }
    docs
}

/// Every leaf of `values` (a scalar, a list, or an empty map) with its default, in file order.
fn leaves(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// Every key path the schema describes (objects with properties are descended into).
fn schema_paths(prefix: &str, schema: &Value, out: &mut Vec<String>) {
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    for (k, v) in props {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if v["properties"].as_object().is_some_and(|p| !p.is_empty()) {
            schema_paths(&path, v, out);
        } else {
            out.push(path);
        }
    }
}

/// A description: the key's own, else its nearest parent's.
fn describe(docs: &BTreeMap<String, String>, path: &str) -> Option<String> {
    let mut p = path;
    loop {
        if let Some(d) = docs.get(p) {
            return Some(d.clone());
        }
        p = &p[..p.rfind('.')?];
    }
}

#[test]
fn the_readme_documents_every_value_with_its_default() {
    let dir = chart_dir();
    let text = fs::read_to_string(dir.join("values.yaml")).unwrap();
    let values: Value = atmos_auth_controller::util::yaml::documents(
        "values.yaml",
        &text,
        atmos_auth_controller::util::yaml::Schema::Kubernetes,
    )
    .unwrap()
    .remove(0);
    let docs = descriptions(&text);
    let mut rows = Vec::new();
    leaves("", &values, &mut rows);

    let mut undocumented = Vec::new();
    let mut lines = Vec::new();
    for (path, default) in &rows {
        let d = describe(&docs, path).unwrap_or_else(|| {
            undocumented.push(path.clone());
            String::new()
        });
        lines.push(format!("| `{path}` | `{default}` | {} |", d.replace('|', "\\|")));
    }
    assert!(
        undocumented.is_empty(),
        "values.yaml has no `# --` description for {undocumented:?}"
    );

    // Each value's row, word for word; a row for a key values.yaml no longer has is stale.
    let readme = fs::read_to_string(dir.join("README.md")).unwrap();
    let wrong: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !readme.lines().any(|r| r == *l))
        .collect();
    assert!(
        wrong.is_empty(),
        "charts/atmos-auth-controller/README.md lacks these rows (or has them otherwise), from values.yaml:\n{}",
        wrong.join("\n")
    );
    let table_rows = readme.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(
        table_rows,
        lines.len(),
        "the README's values table has rows for keys values.yaml does not have"
    );

    // Keys the schema accepts that values.yaml leaves unset are named in the README too.
    let schema: Value = serde_json::from_str(&fs::read_to_string(dir.join("values.schema.json")).unwrap()).unwrap();
    let mut paths = Vec::new();
    schema_paths("", &schema, &mut paths);
    let documented = |p: &str| {
        rows.iter()
            .any(|(r, _)| r == p || r.starts_with(&format!("{p}.")) || p.starts_with(&format!("{r}.")))
            || readme.contains(&format!("`{p}`"))
    };
    let missing: Vec<&String> = paths.iter().filter(|p| !documented(p)).collect();
    assert!(
        missing.is_empty(),
        "values.schema.json accepts {missing:?}, which the README does not name"
    );
}

#[test]
fn artifact_hub_annotations_name_the_image_the_crds_and_valid_examples() {
    use atmos_auth_controller::util::yaml::{Schema, documents};
    let dir = chart_dir();
    let chart: Value = documents(
        "Chart.yaml",
        &fs::read_to_string(dir.join("Chart.yaml")).unwrap(),
        Schema::Kubernetes,
    )
    .unwrap()
    .remove(0);
    let annotation = |key: &str| -> Vec<Value> {
        let text = chart["annotations"][key]
            .as_str()
            .unwrap_or_else(|| panic!("no annotation {key}"));
        documents::<Value>(key, text, Schema::Kubernetes)
            .unwrap()
            .remove(0)
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(chart["annotations"]["artifacthub.io/license"], "Apache-2.0");

    // The image: values.yaml's repository at the chart's appVersion (its default tag).
    let values: Value = documents(
        "values.yaml",
        &fs::read_to_string(dir.join("values.yaml")).unwrap(),
        Schema::Kubernetes,
    )
    .unwrap()
    .remove(0);
    let image = format!(
        "{}:{}",
        values["image"]["repository"].as_str().unwrap(),
        chart["appVersion"].as_str().unwrap()
    );
    assert_eq!(annotation("artifacthub.io/images")[0]["image"], image.as_str());

    // The CRDs: exactly those the chart installs, each with an example.
    let mut shipped: Vec<String> = fs::read_dir(dir.join("files/crds"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".yaml")
                .to_owned()
        })
        .collect();
    shipped.sort();
    let crds = annotation("artifacthub.io/crds");
    let mut named: Vec<String> = crds.iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect();
    named.sort();
    assert_eq!(named, shipped);
    let examples = annotation("artifacthub.io/crdsExamples");
    for crd in &crds {
        assert!(
            examples.iter().any(|e| e["kind"] == crd["kind"]),
            "no example of {}",
            crd["kind"]
        );
    }

    // The examples pass the controller's own validation.
    let file = tempfile::NamedTempFile::new().unwrap();
    let text: Vec<String> = examples.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    fs::write(file.path(), text.join("\n---\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"))
        .arg("validate")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the crdsExamples do not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
