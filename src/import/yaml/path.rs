//! Where a key is in a file, and how a note names it: Atmos's dotted form.

/// Where a key is, as segments from the document root (`auth`, `identities`, `acme/admin`).
pub(crate) type KeyPath = Vec<Segment>;

/// One step of a [`KeyPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// `auth.identities.acme/admin.env[0]`: Atmos's dotted form, names kept as written (a name
/// may contain `/` and `.`; the resolver prints paths the same way).
pub(crate) fn display_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A path of keys only (`["auth", "identities"]`), for tests.
#[cfg(test)]
pub(super) fn key(path: &[&str]) -> KeyPath {
    path.iter().map(|s| Segment::Key((*s).to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_like_atmos() {
        let mut path = key(&["auth", "identities", "acme/net.x", "env"]);
        path.push(Segment::Index(2));
        path.push(Segment::Key("value".into()));
        assert_eq!(display_path(&path), "auth.identities.acme/net.x.env[2].value");
    }
}
