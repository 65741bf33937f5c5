//! `validate FILE...`: the controller's resolver, offline, over manifests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::api::{AuthProfileSpec, ClusterAuthProfileSpec, IdentitySpec, OverrideField, ProfileKind};
use crate::resolve::overrides::not_allowed;
use crate::resolve::{Reason, resolve_set, validate_profile};
use crate::settings::SettingsArgs;

/// Arguments of `validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Manifest files (multi-document YAML); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// What profiles may ask for: give the flags (or environment) of the running controller.
    #[command(flatten)]
    pub settings: SettingsArgs,
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

/// Checks every AuthProfile, ClusterAuthProfile and Identity (against the profile it names
/// found in the files: an AuthProfile of its namespace, or a ClusterAuthProfile) and prints
/// each problem, then each warning (`warning: ...`: a key kept but not used in a cluster, a
/// value used as Atmos uses it), then each note (`note: ...`: a provider or identity of a
/// kind that cannot run in a cluster, which an Identity that needs it reports as its
/// problem); exit 1 when there is a problem, 0 with warnings and notes alone.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let settings = match args.settings.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut docs = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    // What an Identity's image-pull Secret will hold: the field explained for its author.
    let mut explained: Vec<String> = Vec::new();
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
    for doc in docs
        .iter()
        .filter(|d| d.kind == "AuthProfile" || d.kind == "ClusterAuthProfile")
    {
        checked += 1;
        let (kind, at) = (&doc.kind, located(doc));
        let limits = if kind == "ClusterAuthProfile" {
            crate::api::schema_limits::cluster_profile(&doc.spec)
        } else {
            crate::api::schema_limits::profile(&doc.spec)
        };
        for p in limits {
            problems.push(format!("{}: {kind} {at}: {}", doc.file, one_line(&p)));
        }
        match profile_spec(doc) {
            Ok(spec) => {
                let report = validate_profile(&spec, &settings);
                for p in report.all_problems() {
                    let line = format!("{}: {kind} {at}: {}", doc.file, one_line(&p.to_string()));
                    // A kind that cannot run in a cluster is the resource's to keep (real
                    // profiles mix people's identities with CI's): a note; an Identity that
                    // needs it fails below, with its own line.
                    if p.reason == Reason::UnsupportedKind {
                        notes.push(line);
                    } else {
                        problems.push(line);
                    }
                }
                for w in report.all_warnings() {
                    warnings.push(format!("{}: {kind} {at}: {}", doc.file, one_line(&w.to_string())));
                }
                if kind == "ClusterAuthProfile"
                    && doc.spec.get("namespaceSelector").is_none()
                    && doc.spec.get("namespaces").is_none()
                {
                    warnings.push(format!(
                        "{}: {kind} {at}: spec: selects no namespace: set spec.namespaceSelector (for example matchLabels kubernetes.io/metadata.name) or spec.namespaces",
                        doc.file
                    ));
                }
            }
            Err(e) => problems.push(format!("{}: {kind} {at}: {e}", doc.file)),
        }
    }
    // Each profile parsed once, found by (namespace, name): a platform's manifest has
    // thousands of Identities.
    // With a ClusterAuthProfile's `allowedOverrides` (`None` for an AuthProfile).
    type Parsed = (AuthProfileSpec, Option<Vec<OverrideField>>);
    let profiles: std::collections::HashMap<(ProfileKind, &str, &str), Parsed> = docs
        .iter()
        .filter_map(|d| {
            let (key, allowed) = match d.kind.as_str() {
                "AuthProfile" => ((ProfileKind::AuthProfile, d.namespace.as_str(), d.name.as_str()), None),
                "ClusterAuthProfile" => (
                    (ProfileKind::ClusterAuthProfile, "", d.name.as_str()),
                    Some(spec::<Vec<OverrideField>>(&d.spec["allowedOverrides"]).unwrap_or_default()),
                ),
                _ => return None,
            };
            Some((key, (profile_spec(d).ok()?, allowed)))
        })
        .collect();
    for doc in docs.iter().filter(|d| d.kind == "Identity") {
        checked += 1;
        // Every line about this Identity: `file: Identity ns/name: what`.
        let line = |what: &str| {
            format!(
                "{}: Identity {}/{}: {}",
                doc.file,
                doc.namespace,
                doc.name,
                one_line(what)
            )
        };
        problems.extend(crate::api::schema_limits::identity(&doc.spec).iter().map(|p| line(p)));
        let spec = match spec::<IdentitySpec>(&doc.spec) {
            Ok(s) => s,
            Err(e) => {
                problems.push(line(&e));
                continue;
            }
        };
        let kind = spec.profile_ref_kind();
        let key = match kind {
            ProfileKind::ClusterAuthProfile => (kind, "", spec.profile.as_str()),
            ProfileKind::AuthProfile => (kind, doc.namespace.as_str(), spec.profile.as_str()),
        };
        let Some((profile, allowed)) = profiles.get(&key) else {
            problems.push(line(&format!(
                "spec.profile: {} {:?} is not in the files given",
                kind.as_str(),
                spec.profile
            )));
            continue;
        };
        // As the controller: a platform's profile allows only the overrides it lists.
        let refused = allowed
            .as_ref()
            .map(|a| not_allowed(&spec.overrides, &spec.profile, a))
            .unwrap_or_default();
        problems.extend(refused.iter().map(|p| line(&p.to_string())));
        match resolve_set(profile, &spec, &doc.name, &settings) {
            Ok(set) => {
                // The profile's own warnings are printed with the profile, once.
                let mut lines: Vec<String> = set
                    .items
                    .iter()
                    .flat_map(|r| &r.warnings)
                    .filter(|w| w.path.starts_with("spec."))
                    .map(|w| line(&w.to_string()))
                    .collect();
                lines.dedup();
                warnings.extend(lines);
                explained.extend(image_pull_secret(&set).map(|e| line(&e)));
            }
            Err(ps) => problems.extend(ps.iter().map(|p| line(&p.to_string()))),
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
    // `info:`, not `note:`: notes are what a profile keeps but cannot run.
    for e in &explained {
        println!("info: {e}");
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    for n in &notes {
        println!("note: {n} (kept: only an Identity that uses it fails)");
    }
    let count = |n: usize, one: &str, many: &str| match n {
        0 => String::new(),
        1 => format!(", 1 {one}"),
        n => format!(", {n} {many}"),
    };
    let warned = format!(
        "{}{}",
        count(warnings.len(), "warning", "warnings"),
        count(notes.len(), "note", "notes")
    );
    if problems.is_empty() {
        eprintln!("{checked} resources checked, no problems{warned}");
        ExitCode::SUCCESS
    } else {
        eprintln!("{checked} resources checked, {} problems{warned}", problems.len());
        ExitCode::FAILURE
    }
}

/// What `spec.imagePullSecret` makes of a resolved set: the Secret, its registries, the
/// identity whose session logs in to each, and the permission that needs.
fn image_pull_secret(set: &crate::resolve::ResolvedSet) -> Option<String> {
    let plan = set.registry.as_ref()?;
    let logins: Vec<String> = plan
        .logins
        .iter()
        .map(|l| {
            let identity = set.items.get(l.item).map_or("?", |r| r.identity.as_str());
            format!("{} ({}, as {identity})", l.host(), l.integration)
        })
        .collect();
    Some(format!(
        "spec.imagePullSecret: Secret {} of type kubernetes.io/dockerconfigjson (for imagePullSecrets) will log in to {}; \
         renewed with the credentials, at two thirds of the earliest expiry; each identity's role needs \
         ecr:GetAuthorizationToken (ecr-public: also sts:GetServiceBearerToken), else the Identity is not Ready with reason EcrPermissionDenied",
        plan.secret_name,
        logins.join(", ")
    ))
}

/// `namespace/name`, or `name` for a cluster-scoped resource.
fn located(doc: &Doc) -> String {
    if doc.kind == "ClusterAuthProfile" {
        doc.name.clone()
    } else {
        format!("{}/{}", doc.namespace, doc.name)
    }
}

/// The `auth:` block of an AuthProfile or ClusterAuthProfile document.
fn profile_spec(doc: &Doc) -> Result<AuthProfileSpec, String> {
    if doc.kind == "ClusterAuthProfile" {
        spec::<ClusterAuthProfileSpec>(&doc.spec).map(|s| s.auth)
    } else {
        spec::<AuthProfileSpec>(&doc.spec)
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

fn read_docs(path: &Path) -> Result<Vec<Doc>, String> {
    // The shared reader and its budget (a 10 000-document manifest reads; an alias bomb stops).
    let source = path.display().to_string();
    let text = crate::util::yaml::read(path).map_err(|e| e.to_string())?;
    let values: Vec<serde_json::Value> =
        crate::util::yaml::documents(&source, &text, crate::util::yaml::Schema::Kubernetes)
            .map_err(|e| e.to_string())?;
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
