//! `crds`: the CustomResourceDefinitions, as checked in under `crds/`.

use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{AuthProfile, ClusterAuthProfile, Identity};

/// Why the CRDs could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The CRD did not survive the description rewrite (a bug).
    #[error("CRD schema: {0}")]
    Json(#[from] serde_json::Error),
    /// YAML serialization failed.
    #[error("CRD YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

/// Each CRD as `(file name under crds/, YAML)`.
pub fn files() -> Result<Vec<(String, String)>, CrdError> {
    [AuthProfile::crd(), ClusterAuthProfile::crd(), Identity::crd()]
        .into_iter()
        .map(|crd| {
            let crd = with_joined_descriptions(crd)?;
            let name = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            Ok((name, format!("---\n{}", serde_saphyr::to_string(&crd)?)))
        })
        .collect()
}

/// Both CRDs as one multi-document YAML text.
pub fn yaml() -> Result<String, CrdError> {
    Ok(files()?.into_iter().map(|(_, y)| y).collect())
}

/// The CRD with every schema description's hard-wrapped lines joined (see [`join_wrapped`]).
fn with_joined_descriptions(crd: CustomResourceDefinition) -> Result<CustomResourceDefinition, CrdError> {
    let mut value = serde_json::to_value(crd)?;
    if let Some(versions) = value.pointer_mut("/spec/versions").and_then(|v| v.as_array_mut()) {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                join_descriptions(schema);
            }
        }
    }
    Ok(serde_json::from_value(value)?)
}

/// Rewrites every string `description` of a schema, at any depth. A property *named*
/// `description` is an object, so it is walked, not rewritten.
fn join_descriptions(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    serde_json::Value::String(text) if key == "description" => *text = join_wrapped(text),
                    other => join_descriptions(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(join_descriptions),
        _ => {}
    }
}

/// Joins the hard-wrapped lines of a doc comment into paragraphs, so `kubectl explain` wraps
/// sentences itself instead of breaking them mid-line. A blank line stays a paragraph break;
/// a list item (`- `, `* `, `1. `) starts its own line and takes its wrapped continuation
/// lines; fenced code blocks are kept line by line.
pub fn join_wrapped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim();
        let fence = trimmed.starts_with("```");
        if in_fence || fence {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(line.trim_end());
            out.push('\n');
            in_fence ^= fence;
        } else if trimmed.is_empty() {
            let kept = out.trim_end_matches('\n').len();
            out.truncate(kept);
            if !out.is_empty() {
                out.push_str("\n\n");
            }
        } else if out.is_empty() || out.ends_with('\n') {
            out.push_str(if is_list_item(trimmed) {
                line.trim_end()
            } else {
                trimmed
            });
        } else if is_list_item(trimmed) {
            out.push('\n');
            out.push_str(line.trim_end());
        } else {
            out.push(' ');
            out.push_str(trimmed);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// `- x`, `* x`, `+ x`, `1. x`, `1) x`.
fn is_list_item(line: &str) -> bool {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &line[digits..];
    if digits > 0 {
        rest.starts_with(". ") || rest.starts_with(") ")
    } else {
        ["- ", "* ", "+ "].iter().any(|bullet| line.starts_with(bullet))
    }
}

/// Arguments of `crds`.
#[derive(clap::Args, Debug)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory (as checked in under `crds/`).
    #[arg(long)]
    pub write: Option<PathBuf>,
}

/// Prints [`yaml`], or writes [`files`].
pub fn run(args: &CrdsArgs) -> ExitCode {
    let result = match &args.write {
        None => yaml().map(|y| print!("{y}")).map_err(|e| e.to_string()),
        Some(dir) => files().map_err(|e| e.to_string()).and_then(|files| {
            files.iter().try_for_each(|(name, y)| {
                let path = dir.join(name);
                std::fs::write(&path, y).map_err(|e| format!("{}: {e}", path.display()))
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the CRDs: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_become_one_paragraph() {
        assert_eq!(
            join_wrapped("Keeps a Secret fresh for one identity of an `AuthProfile` in the\nsame namespace."),
            "Keeps a Secret fresh for one identity of an `AuthProfile` in the same namespace."
        );
        assert_eq!(join_wrapped("One line."), "One line.");
        assert_eq!(join_wrapped("  trailing  \n"), "trailing");
    }

    #[test]
    fn paragraphs_list_items_and_code_keep_their_breaks() {
        let doc = "First paragraph, wrapped\nhere.\n\n\nSecond one:\n- item one, wrapped\n  onto two lines\n- item two\n1. numbered\n   more\n\n```yaml\nkey: value\n  nested: x\n```\nAfter the\ncode.";
        assert_eq!(
            join_wrapped(doc),
            "First paragraph, wrapped here.\n\nSecond one:\n- item one, wrapped onto two lines\n- item two\n1. numbered more\n\n```yaml\nkey: value\n  nested: x\n```\nAfter the code."
        );
    }

    #[test]
    fn generated_crds_have_no_line_broken_mid_sentence() {
        let yaml = yaml().expect("CRDs render");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&yaml).expect("YAML parses");
        let mut descriptions = Vec::new();
        fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| match v {
                    serde_json::Value::String(s) if k == "description" => out.push(s.clone()),
                    other => collect(other, out),
                }),
                serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
                _ => {}
            }
        }
        docs.iter().for_each(|d| collect(d, &mut descriptions));
        assert!(descriptions.len() > 20, "{}", descriptions.len());
        for d in &descriptions {
            for (a, b) in d.lines().zip(d.lines().skip(1)) {
                assert!(
                    a.is_empty() || b.is_empty() || is_list_item(b.trim()) || a.starts_with("```"),
                    "line broken mid-paragraph in {d:?}"
                );
            }
        }
    }
}
