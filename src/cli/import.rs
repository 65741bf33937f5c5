//! `import PATH...`: Atmos config files to AuthProfile (and Identity) manifests on stdout,
//! notes and problems on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::import::{self, Options, files};
use crate::settings::SettingsArgs;

/// Arguments of `import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// atmos.yaml files and profile directories (every *.yaml/*.yml below, in Atmos's order),
    /// deep-merged left to right as Atmos merges `--profile a,b` over the base config; `-`
    /// reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// AuthProfile name. Default: the profile directory's name (`profiles/github/atmos.yaml`
    /// gives `github`).
    #[arg(long)]
    pub name: Option<String>,
    /// Namespace of every object. Default: none (kubectl's current namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// `SA`: turn github/oidc providers into kubernetes/oidc requesting tokens of this
    /// ServiceAccount. `IDENTITY=SA` (with --identities): that identity's Identity uses SA.
    /// Repeat for several.
    #[arg(long = "service-account", value_name = "[IDENTITY=]SA")]
    pub service_accounts: Vec<String>,
    /// Also print one Identity per identity that can run in a cluster.
    #[arg(long)]
    pub identities: bool,
    /// Print a ClusterAuthProfile (cluster-scoped) instead of an AuthProfile. It selects the
    /// namespace of `--namespace` by name (`spec.namespaces`), or none without it; Identities
    /// name it with `profileKind: ClusterAuthProfile`.
    #[arg(long)]
    pub cluster: bool,
    /// What profiles may ask for: give the flags (or environment) of the running controller.
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Prints the manifests when the controller's resolver accepts them (kinds that cannot run
/// in a cluster are listed, not refused: the resource accepts them); exit 1 otherwise, with
/// nothing on stdout, so `import ... | kubectl apply -f -` applies nothing broken.
pub fn run(args: &ImportArgs) -> ExitCode {
    let settings = match args.settings.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let inputs = match files::read_inputs(&args.paths) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = args.name.clone().unwrap_or_else(|| match args.paths.last() {
        Some(last) => import::default_name(last, last.is_dir()),
        None => "atmos".to_owned(),
    });
    let options = Options {
        name,
        namespace: args.namespace.clone(),
        service_accounts: args.service_accounts.clone(),
        identities: args.identities,
        settings,
    };
    let imported = match import::import(&inputs, &options) {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    for warning in &imported.warnings {
        eprintln!("warning: {warning}");
    }
    for problem in &imported.not_runnable {
        eprintln!("not runnable in a cluster: {problem}");
    }
    for problem in &imported.problems {
        eprintln!("error: {problem}");
    }
    if !imported.problems.is_empty() {
        let n = imported.problems.len();
        eprintln!(
            "{n} {}: no manifests printed",
            if n == 1 { "problem" } else { "problems" }
        );
        return ExitCode::FAILURE;
    }
    let manifests = match if args.cluster {
        cluster_manifests(&imported, args.namespace.as_deref())
    } else {
        imported.manifests().map_err(|e| e.to_string())
    } {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sources: Vec<&str> = inputs.iter().map(|i| i.source.as_str()).collect();
    if args.cluster && args.namespace.is_none() {
        eprintln!(
            "note: the ClusterAuthProfile selects no namespace: set spec.namespaceSelector or spec.namespaces (or pass --namespace)"
        );
    }
    print!("# atmos-auth-controller import of {}\n{manifests}", sources.join(", "));
    let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    eprintln!(
        "imported {} {} ({}, {}){}",
        if args.cluster {
            "ClusterAuthProfile"
        } else {
            "AuthProfile"
        },
        options.name,
        count(imported.profile.spec.providers.len(), "provider", "providers"),
        count(imported.profile.spec.identities.len(), "identity", "identities"),
        if args.identities {
            format!(" and {}", count(imported.identities.len(), "Identity", "Identities"))
        } else {
            String::new()
        }
    );
    ExitCode::SUCCESS
}

/// The import as a ClusterAuthProfile selecting `namespace` (if any) by name, then the
/// Identities naming it.
fn cluster_manifests(imported: &import::Imported, namespace: Option<&str>) -> Result<String, String> {
    use crate::api::{ClusterAuthProfile, ClusterAuthProfileSpec, ProfileKind};
    let profile = ClusterAuthProfile::new(
        &imported.profile.metadata.name.clone().unwrap_or_default(),
        ClusterAuthProfileSpec {
            auth: imported.profile.spec.clone(),
            namespace_selector: None,
            namespaces: namespace.map(|ns| vec![ns.to_owned()]),
            allowed_overrides: None,
        },
    );
    let mut out = serde_saphyr::to_string(&profile).map_err(|e| e.to_string())?;
    for identity in &imported.identities {
        let mut identity = identity.clone();
        identity.spec.profile_kind = Some(ProfileKind::ClusterAuthProfile);
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&identity).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
