//! `crds`: the CustomResourceDefinitions, as checked in under `crds/`.

use std::path::PathBuf;
use std::process::ExitCode;

use kube::CustomResourceExt;

use crate::api::{AuthProfile, Identity};

/// Each CRD as `(file name under crds/, YAML)`.
pub fn files() -> Result<Vec<(String, String)>, serde_saphyr::SerializeError> {
    [AuthProfile::crd(), Identity::crd()]
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            Ok((name, format!("---\n{}", serde_saphyr::to_string(&crd)?)))
        })
        .collect()
}

/// Both CRDs as one multi-document YAML text.
pub fn yaml() -> Result<String, serde_saphyr::SerializeError> {
    Ok(files()?.into_iter().map(|(_, y)| y).collect())
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
