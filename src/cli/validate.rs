//! `validate FILE...`: the controller's resolver, offline, over manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::api::{AuthProfileSpec, IdentitySpec};
use crate::resolve::{Settings, resolve, validate_profile};

/// Arguments of `validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Manifest files (multi-document YAML); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Token audiences the controller allows (as `run --allowed-audience`).
    #[arg(long = "allowed-audience", default_value = "sts.amazonaws.com")]
    pub allowed_audiences: Vec<String>,
}

struct Doc {
    file: String,
    kind: String,
    namespace: String,
    name: String,
    spec: serde_json::Value,
    /// Atmos YAML functions in the document (`path: !env X`): never evaluated in a cluster.
    functions: Vec<String>,
}

/// Checks every AuthProfile and every Identity (against the profile of the same namespace
/// found in the files) and prints each problem; exit 1 when there is any.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let settings = Settings {
        allowed_audiences: args.allowed_audiences.clone(),
        ..Settings::default()
    };
    let mut docs = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for file in &args.files {
        match read_docs(file) {
            Ok(d) => docs.extend(d),
            Err(e) => problems.push(e),
        }
    }
    for doc in &docs {
        for function in &doc.functions {
            problems.push(format!(
                "{}: {} {}/{}: {function} is an Atmos YAML function; neither kubectl nor the controller evaluates \
                 it (kubectl applies the bare argument): write the value itself",
                doc.file, doc.kind, doc.namespace, doc.name
            ));
        }
    }
    let mut checked = 0;
    for doc in docs.iter().filter(|d| d.kind == "AuthProfile") {
        checked += 1;
        for p in crate::schema_limits::profile(&doc.spec) {
            problems.push(format!(
                "{}: AuthProfile {}/{}: {}",
                doc.file,
                doc.namespace,
                doc.name,
                one_line(&p.to_string())
            ));
        }
        match spec::<AuthProfileSpec>(&doc.spec) {
            Ok(spec) => {
                for p in validate_profile(&spec, &settings).all_problems() {
                    problems.push(format!(
                        "{}: AuthProfile {}/{}: {}",
                        doc.file,
                        doc.namespace,
                        doc.name,
                        one_line(&p.to_string())
                    ));
                }
            }
            Err(e) => problems.push(format!("{}: AuthProfile {}/{}: {e}", doc.file, doc.namespace, doc.name)),
        }
    }
    // Each profile parsed once, found by (namespace, name): a platform's manifest has
    // thousands of Identities.
    let profiles: std::collections::HashMap<(&str, &str), AuthProfileSpec> = docs
        .iter()
        .filter(|d| d.kind == "AuthProfile")
        .filter_map(|d| {
            Some((
                (d.namespace.as_str(), d.name.as_str()),
                spec::<AuthProfileSpec>(&d.spec).ok()?,
            ))
        })
        .collect();
    for doc in docs.iter().filter(|d| d.kind == "Identity") {
        checked += 1;
        for p in crate::schema_limits::identity(&doc.spec) {
            problems.push(format!(
                "{}: Identity {}/{}: {}",
                doc.file,
                doc.namespace,
                doc.name,
                one_line(&p.to_string())
            ));
        }
        let spec = match spec::<IdentitySpec>(&doc.spec) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{}: Identity {}/{}: {e}", doc.file, doc.namespace, doc.name));
                continue;
            }
        };
        let Some(profile) = profiles.get(&(doc.namespace.as_str(), spec.profile.as_str())) else {
            problems.push(format!(
                "{}: Identity {}/{}: spec.profile: AuthProfile {:?} is not in the files given",
                doc.file, doc.namespace, doc.name, spec.profile
            ));
            continue;
        };
        if let Err(ps) = resolve(profile, &spec, &doc.name, &settings) {
            for p in ps {
                problems.push(format!(
                    "{}: Identity {}/{}: {}",
                    doc.file,
                    doc.namespace,
                    doc.name,
                    one_line(&p.to_string())
                ));
            }
        }
    }
    for p in &problems {
        // A name may hold control characters (a newline, a terminal escape): print them escaped.
        let printable: String = p
            .chars()
            .flat_map(|c| match c {
                '\n' => vec![c],
                c if c.is_control() => c.escape_default().collect(),
                c => vec![c],
            })
            .collect();
        println!("{printable}");
    }
    if problems.is_empty() {
        eprintln!("{checked} resources checked, no problems");
        ExitCode::SUCCESS
    } else {
        eprintln!("{checked} resources checked, {} problems", problems.len());
        ExitCode::FAILURE
    }
}

/// A resource's problem on one line: control characters in names escaped (`a\nb`).
fn one_line(problem: &str) -> String {
    problem
        .chars()
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            if c.is_control() {
                Box::new(c.escape_default())
            } else {
                Box::new(std::iter::once(c))
            }
        })
        .collect()
}

/// The spec as `T`; a type error names its field (`spec.identities.a.principal.duration:
/// invalid type: integer, expected a string`), as the API server would.
fn spec<T: serde::de::DeserializeOwned>(spec: &serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(spec).map_err(|e| match e.path().to_string().as_str() {
        "." => format!("spec: {}", e.inner()),
        path => format!("spec.{path}: {}", e.inner()),
    })
}

fn read_docs(path: &PathBuf) -> Result<Vec<Doc>, String> {
    // The shared reader and its budget (a 10 000-document manifest reads; an alias bomb stops).
    let source = path.display().to_string();
    let text = crate::yaml::read(path).map_err(|e| e.to_string())?;
    let values: Vec<serde_json::Value> =
        crate::yaml::documents(&source, &text, crate::yaml::Schema::Kubernetes).map_err(|e| e.to_string())?;
    // A plain JSON value drops YAML tags silently (`!env X` reads as "X"): find them apart.
    let functions = crate::import::yaml_functions(&text).map_err(|e| format!("{source}: {e}"))?;
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let found = functions
                .iter()
                .filter(|f| f.document == i)
                .map(|f| format!("{}: {}", f.path, f.function))
                .collect::<Vec<_>>();
            (v, found)
        })
        .filter(|(v, _)| {
            v.get("apiVersion")
                .and_then(|a| a.as_str())
                .is_some_and(|a| a.starts_with(crate::api::GROUP))
        })
        .map(|(v, functions)| Doc {
            functions,
            file: path.display().to_string(),
            kind: v["kind"].as_str().unwrap_or_default().to_owned(),
            namespace: v["metadata"]["namespace"].as_str().unwrap_or("default").to_owned(),
            name: v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            spec: v.get("spec").cloned().unwrap_or(serde_json::Value::Null),
        })
        .collect())
}
