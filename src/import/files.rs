//! Reading the PATH arguments: files as given, directories the way Atmos loads a profile
//! directory. The only module of `import` that touches the disk.

use std::path::{Path, PathBuf};

use super::{ImportError, Input};

/// Reads every PATH, in order: a file as one input (`-`: standard input), a directory as
/// its config files in Atmos's order ([`profile_order`]).
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, ImportError> {
    let mut inputs = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        if path.as_os_str() == "-" {
            let text = std::io::read_to_string(std::io::stdin())
                .map_err(|source| ImportError::Read { path: shown, source })?;
            inputs.push(Input {
                source: "-".into(),
                text,
            });
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| ImportError::Read {
            path: shown.clone(),
            source,
        })?;
        let files = if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            let ordered = profile_order(found);
            if ordered.is_empty() {
                return Err(ImportError::EmptyDirectory { path: shown });
            }
            ordered
        } else {
            vec![path.clone()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| ImportError::Read {
                path: file.display().to_string(),
                source,
            })?;
            inputs.push(Input {
                source: file.display().to_string(),
                text,
            });
        }
    }
    Ok(inputs)
}

/// Every `*.yaml` / `*.yml` file below `dir`, recursively (symbolic links followed, as
/// Atmos's glob does).
fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let read_error = |source| ImportError::Read {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let meta = std::fs::metadata(&path).map_err(|source| ImportError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            walk(&path, found)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            found.push(path);
        }
    }
    Ok(())
}

/// Atmos's order for a profile directory (`SearchAtmosConfig`): where `x.yaml` and `x.yml`
/// sit side by side only `x.yaml` is read; then shallower files first, and files at the
/// same depth by path, compared as text (Go's string order, so `a-b/x` sorts before `a/x`). So `profiles/ci/atmos.yaml` is merged before
/// `profiles/ci/aws/roles.yaml`, whatever their names.
pub(crate) fn profile_order(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut kept: Vec<PathBuf> = files
        .iter()
        .filter(|file| {
            file.extension().and_then(|e| e.to_str()) != Some("yml") || !files.contains(&file.with_extension("yaml"))
        })
        .cloned()
        .collect();
    kept.sort_by(|a, b| {
        let depth = |p: &Path| p.parent().map_or(0, |d| d.components().count());
        depth(a).cmp(&depth(b)).then_with(|| a.as_os_str().cmp(b.as_os_str()))
    });
    kept
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn atmos_profile_directory_order() {
        let files = [
            "p/z/b.yaml",
            "p/z/a.yml",
            "p/b.yaml",
            "p/a.yml",
            "p/a.yaml",
            "p/z/y/deep.yaml",
            "p/atmos.yaml",
        ]
        .map(PathBuf::from)
        .to_vec();
        assert_eq!(
            profile_order(files),
            [
                "p/a.yaml",
                "p/atmos.yaml",
                "p/b.yaml",
                "p/z/a.yml",
                "p/z/b.yaml",
                "p/z/y/deep.yaml"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn reads_directories_recursively_and_files_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("ci/aws")).unwrap();
        std::fs::write(root.join("ci/aws/roles.yaml"), "auth: {}\n").unwrap();
        std::fs::write(root.join("ci/atmos.yaml"), "auth: {}\n").unwrap();
        std::fs::write(root.join("ci/README.md"), "not yaml").unwrap();
        std::fs::write(root.join("base.yaml"), "x: 1\n").unwrap();
        let inputs = read_inputs(&[root.join("base.yaml"), root.join("ci")]).unwrap();
        let sources: Vec<String> = inputs.iter().map(|i| i.source.clone()).collect();
        assert_eq!(
            sources,
            [
                root.join("base.yaml"),
                root.join("ci/atmos.yaml"),
                root.join("ci/aws/roles.yaml")
            ]
            .map(|p| p.display().to_string())
        );
        std::fs::create_dir(root.join("empty")).unwrap();
        let err = read_inputs(&[root.join("empty")]).unwrap_err().to_string();
        assert!(
            err.ends_with("empty: no *.yaml or *.yml file below this directory"),
            "{err}"
        );
        let err = read_inputs(&[root.join("missing.yaml")]).unwrap_err().to_string();
        assert!(err.contains("missing.yaml: No such file"), "{err}");
    }
}
