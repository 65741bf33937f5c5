//! `import`: Atmos config files (atmos.yaml, profile directories) to `AuthProfile` and
//! `Identity` manifests.
//!
//! The steps follow Atmos's own loading, so what is imported means what it means to Atmos:
//! 1. read each file's first YAML document with its tags ([`yaml`]): anchors, aliases and
//!    merge keys expanded, Atmos YAML functions (`!env`, `!exec`, ...) never evaluated but
//!    left out and reported, `!unset`/`!append` honoured;
//! 2. merge the files left to right as Viper and Atmos do ([`merge`]);
//! 3. keep the `auth:` keys the resource holds, explain the others ([`convert`]);
//! 4. map `github/oidc` to `kubernetes/oidc` when ServiceAccounts are given;
//! 5. check everything with the controller's own resolver ([`crate::resolve`]).
//!
//! Everything here is pure: [`files`] reads the disk, the CLI prints.

mod convert;
pub mod files;
mod github;
mod merge;
mod registry;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{AuthProfile, AuthProfileSpec, Identity, IdentitySpec};
use crate::resolve::{Problem, Reason, Settings, Warning, resolve_set, rules, validate_profile};

/// One config file's text and the name it is reported under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The path as given (or `-` for standard input).
    pub source: String,
    /// Its text.
    pub text: String,
}

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The AuthProfile's name (and every Identity's `spec.profile`).
    pub name: String,
    /// `metadata.namespace` of every object; left out when `None`.
    pub namespace: Option<String>,
    /// `--service-account` values: `SA` (the provider's default) or `IDENTITY=SA`.
    pub service_accounts: Vec<String>,
    /// Also build one Identity per identity that can run in a cluster.
    pub identities: bool,
    /// The controller's settings the resolver checks against (audience allow-list, ...).
    pub settings: Settings,
}

/// Why nothing could be imported (problems of the profile itself are [`Imported::problems`]).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A directory holds no Atmos config file.
    #[error("{path}: no *.yaml or *.yml file below this directory")]
    EmptyDirectory {
        /// The directory.
        path: String,
    },
    /// A file is not YAML, or not a mapping.
    #[error("{file}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// None of the files has an `auth:` block.
    #[error("no auth: block in {sources}")]
    NoAuth {
        /// The files read, comma-separated.
        sources: String,
    },
    /// A bad `--service-account`, `--name` or `--namespace` value.
    #[error("{flag}: {why}")]
    Flag {
        /// The flag and its value as given.
        flag: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// The manifests could not be written as YAML.
    #[error("cannot write the manifests as YAML: {0}")]
    Render(String),
}

/// A key left out, a mapping made, or something else a person should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Where: `auth.logs`, `profiles/ci/atmos.yaml: auth.identities.a.principal.assume_role`.
    pub path: String,
    /// What was done and why.
    pub message: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The result of an import.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The AuthProfile.
    pub profile: AuthProfile,
    /// One Identity per runnable identity (with `--identities`), in identity name order.
    pub identities: Vec<Identity>,
    /// What was left out, mapped or should be known.
    pub notes: Vec<Note>,
    /// Providers and identities the resource accepts but the controller cannot run, with why
    /// (the AuthProfile's status will say the same).
    pub not_runnable: Vec<Problem>,
    /// Secrets left out, then the resolver's warnings (keys kept but not used in a cluster,
    /// values used as Atmos uses them): the same lines as `validate` and the AuthProfile's
    /// `status.warnings`.
    pub warnings: Vec<Warning>,
    /// What the resolver refuses: when there is any, the manifests should not be applied.
    pub problems: Vec<Problem>,
}

impl Imported {
    /// The manifests as multi-document YAML: the AuthProfile, then the Identities.
    pub fn manifests(&self) -> Result<String, ImportError> {
        let mut out = serde_saphyr::to_string(&self.profile).map_err(|e| ImportError::Render(e.to_string()))?;
        for identity in &self.identities {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(identity).map_err(|e| ImportError::Render(e.to_string()))?);
        }
        Ok(out)
    }
}

/// An Atmos YAML function found in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Index of the YAML document in the text.
    pub document: usize,
    /// Where, from the document's root (`spec.identities.acme/admin.principal.assume_role`).
    pub path: String,
    /// The tag and its argument (`!env ROLE_ARN`).
    pub function: String,
}

/// Atmos YAML functions (`!env`, `!exec`, ...) in a multi-document text. Used by `validate`:
/// in a manifest nobody evaluates them, and kubectl applies the bare argument.
pub fn yaml_functions(text: &str) -> Result<Vec<Function>, ImportError> {
    yaml::find_functions(text)
        .map(|found| {
            found
                .into_iter()
                .map(|(document, path, function)| Function {
                    document,
                    path,
                    function,
                })
                .collect()
        })
        .map_err(|message| ImportError::Yaml {
            file: "-".into(),
            message,
        })
}

/// `--service-account` values, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAccounts {
    /// A bare `SA`: the provider's `spec.service_account`.
    pub default: Option<String>,
    /// `IDENTITY=SA`: that identity's Identity gets `serviceAccountName: SA`.
    pub per_identity: BTreeMap<String, String>,
}

impl ServiceAccounts {
    /// Parses `SA` and `IDENTITY=SA` values. The split is at the last `=`: Atmos names may
    /// contain `=`, ServiceAccount names may not.
    pub fn parse(values: &[String]) -> Result<Self, ImportError> {
        let mut out = Self::default();
        for value in values {
            let flag = || format!("--service-account {value}");
            let (identity, sa) = match value.rsplit_once('=') {
                Some((identity, sa)) => (Some(identity), sa),
                None => (None, value.as_str()),
            };
            rules::check_dns1123_subdomain(sa).map_err(|rule| ImportError::Flag {
                flag: flag(),
                why: format!("\"{sa}\" is not a valid ServiceAccount name: {rule}"),
            })?;
            match identity {
                Some("") => {
                    return Err(ImportError::Flag {
                        flag: flag(),
                        why: "the identity before = is empty; use IDENTITY=SA or a bare SA".into(),
                    });
                }
                Some(identity) => {
                    if let Some(earlier) = out.per_identity.insert(identity.to_owned(), sa.to_owned()) {
                        return Err(ImportError::Flag {
                            flag: flag(),
                            why: format!("identity {identity} already has ServiceAccount {earlier}; give one"),
                        });
                    }
                }
                None => {
                    if let Some(earlier) = out.default.replace(sa.to_owned()) {
                        return Err(ImportError::Flag {
                            flag: flag(),
                            why: format!(
                                "a default ServiceAccount ({earlier}) is already given; give one bare SA and \
                                 IDENTITY=SA for the others"
                            ),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn is_empty(&self) -> bool {
        self.default.is_none() && self.per_identity.is_empty()
    }
}

/// Imports `inputs`, merged left to right.
pub fn import(inputs: &[Input], options: &Options) -> Result<Imported, ImportError> {
    rules::check_dns1123_subdomain(&options.name).map_err(|rule| ImportError::Flag {
        flag: format!("--name {}", options.name),
        why: format!("not a valid object name: {rule}"),
    })?;
    if let Some(ns) = &options.namespace {
        check_dns1123_label(ns).map_err(|why| ImportError::Flag {
            flag: format!("--namespace {ns}"),
            why,
        })?;
    }
    let service_accounts = ServiceAccounts::parse(&options.service_accounts)?;
    if !service_accounts.per_identity.is_empty() && !options.identities {
        return Err(ImportError::Flag {
            flag: "--service-account IDENTITY=SA".into(),
            why: "a per-identity ServiceAccount is set on that identity's Identity object: add --identities".into(),
        });
    }

    let mut parsed = Vec::with_capacity(inputs.len());
    for input in inputs {
        parsed.push((input.source.clone(), yaml::parse_file(&input.source, &input.text)?));
    }
    let merged = merge::merge_files(parsed);
    let Some(auth) = merged.auth else {
        return Err(ImportError::NoAuth {
            sources: inputs.iter().map(|i| i.source.as_str()).collect::<Vec<_>>().join(", "),
        });
    };
    let converted = convert::to_spec(&auth);
    let mut notes: Vec<Note> = merged
        .notes
        .into_iter()
        .chain(converted.notes)
        .map(|(path, message)| Note { path, message })
        .collect();
    let mut spec = converted.spec;

    // `IDENTITY=SA` names an identity as Atmos's --identity does, regardless of case.
    let mut service_accounts = service_accounts;
    let names = crate::resolve::names::Names::new(&spec);
    let mut per_identity = BTreeMap::new();
    for (given, sa) in &service_accounts.per_identity {
        let flag = format!("--service-account {given}={sa}");
        match names.identity(given) {
            crate::resolve::names::Found::One(key) => {
                per_identity.insert(key.to_owned(), sa.clone());
            }
            found => {
                return Err(ImportError::Flag {
                    flag,
                    why: format!(
                        "the profile has {} identity {given}; identities: {}",
                        if found == crate::resolve::names::Found::None {
                            "no"
                        } else {
                            "more than one"
                        },
                        spec.identities.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    }
    service_accounts.per_identity = per_identity;
    notes.extend(github::map_providers(
        &mut spec,
        &service_accounts,
        options.namespace.as_deref(),
    ));

    let report = validate_profile(&spec, &options.settings);
    let mut warnings = converted.warnings;
    warnings.extend(report.all_warnings());
    let mut problems = converted.problems;
    let mut not_runnable = Vec::new();
    for problem in report.all_problems() {
        if problem.reason == Reason::UnsupportedKind {
            not_runnable.push(problem);
        } else {
            problems.push(problem);
        }
    }
    if problems.iter().any(|p| p.reason == Reason::MultipleDefaultIdentities) {
        notes.extend(default_notes(&spec, &merged.default_sources));
    }

    let mut identities = Vec::new();
    if options.identities {
        let mut taken = BTreeSet::new();
        for identity in &report.identities {
            if !identity.is_ready() {
                if identity.problems.iter().all(|p| p.reason == Reason::UnsupportedKind) {
                    notes.push(Note {
                        path: format!("auth.identities.{}", identity.name),
                        message: "no Identity made: it cannot run in a cluster (see below)".into(),
                    });
                }
                continue;
            }
            let object_name = object_name(&identity.name, &mut taken);
            if object_name != simple_object_name(&identity.name) && !simple_object_name(&identity.name).is_empty() {
                notes.push(Note {
                    path: format!("auth.identities.{}", identity.name),
                    message: format!("its Identity is named {object_name}: the plain name is taken by another"),
                });
            }
            let mut object = Identity::new(
                &object_name,
                IdentitySpec {
                    profile: options.name.clone(),
                    identity: Some(identity.name.clone()),
                    service_account_name: service_accounts.per_identity.get(&identity.name).cloned(),
                    image_pull_secret: registry::pull_secret(&spec, &identity.name, &object_name, &mut notes),
                    ..IdentitySpec::default()
                },
            );
            object.metadata.namespace = options.namespace.clone();
            if let Err(found) = resolve_set(&spec, &object.spec, &object_name, &options.settings) {
                problems.extend(
                    found
                        .into_iter()
                        .map(|p| Problem::new(format!("Identity {object_name}: {}", p.path), p.reason, p.message)),
                );
            }
            identities.push(object);
        }
    }

    let mut profile = AuthProfile::new(&options.name, spec);
    profile.metadata.namespace = options.namespace.clone();
    Ok(Imported {
        profile,
        identities,
        notes,
        not_runnable,
        warnings,
        problems,
    })
}

/// Where each `default: true` came from, for the two-defaults problem: a profile that sets
/// another identity's default leaves the base's default in place (Atmos merges maps key by
/// key), which Atmos in CI refuses as "multiple default identities".
fn default_notes(spec: &AuthProfileSpec, sources: &BTreeMap<String, Vec<(String, serde_json::Value)>>) -> Vec<Note> {
    spec.identities
        .iter()
        .filter(|(_, def)| def.default == Some(true))
        .map(|(name, _)| {
            let from = sources
                .get(&name.to_lowercase())
                .and_then(|s| s.iter().rev().find(|(_, v)| v == &serde_json::Value::Bool(true)))
                .map_or("an anchor or merge key", |(source, _)| source.as_str());
            Note {
                path: format!("auth.identities.{name}.default"),
                message: format!(
                    "true, set by {from}; files merge key by key, so a profile that makes another identity the \
                     default must also set default: false here"
                ),
            }
        })
        .collect()
}

/// An object name for an Atmos identity name: lowercase, runs of characters outside
/// `[a-z0-9]` as one `-`, at most 63 characters (`acme/admin` → `acme-admin`).
fn simple_object_name(atmos_name: &str) -> String {
    let mut out = String::new();
    for c in atmos_name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// [`simple_object_name`], made unique among `taken` with `-2`, `-3`, ...
fn object_name(atmos_name: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base = simple_object_name(atmos_name);
    if base.is_empty() {
        base = "identity".to_owned();
    }
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        let suffix = format!("-{n}");
        let keep = 63 - suffix.len();
        candidate = format!(
            "{}{suffix}",
            base.chars().take(keep).collect::<String>().trim_end_matches('-')
        );
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

/// Namespaces are DNS-1123 labels: at most 63 of `[a-z0-9-]`, starting and ending with a
/// letter or digit.
fn check_dns1123_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(
            "not a valid namespace: at most 63 lowercase letters, digits and '-', starting and ending with a \
             letter or digit"
                .to_owned(),
        )
    }
}

/// The AuthProfile's name when `--name` is not given: the profile directory's name (the
/// last PATH if it is a directory, else the directory of an `atmos.yaml`), else the file's
/// stem; lowercased and cleaned to an object name.
pub fn default_name(last_path: &std::path::Path, is_dir: bool) -> String {
    let stem = |p: &std::path::Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let raw = if is_dir {
        last_path.file_name().map(|s| s.to_string_lossy().into_owned())
    } else if stem(last_path).as_deref() == Some("atmos") {
        last_path
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .or_else(|| stem(last_path))
    } else {
        stem(last_path)
    };
    let name = simple_object_name(raw.as_deref().unwrap_or_default());
    if name.is_empty() { "atmos".to_owned() } else { name }
}

#[cfg(test)]
mod tests;
