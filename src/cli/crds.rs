//! `crds`: the CustomResourceDefinitions, as checked in under `crds/`.

use std::process::ExitCode;

use kube::CustomResourceExt;

use crate::api::{AuthProfile, Identity};

/// Both CRDs as one multi-document YAML text.
pub fn yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in [AuthProfile::crd(), Identity::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

/// Prints [`yaml`].
pub fn print() -> ExitCode {
    match yaml() {
        Ok(y) => {
            print!("{y}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot render the CRDs: {e}");
            ExitCode::FAILURE
        }
    }
}
