//! What the controller recorded of a Secret it wrote, and whether the Secret as it stands is
//! that write. Anyone who may write a Secret may also set its annotations, so renewal is
//! never decided from them: the status write that follows each Secret write records the
//! version the API server gave the write and a hash of the data written
//! ([`crate::api::WrittenSecret`]). A Secret at that version is the controller's own; at
//! any other version it is read once, and its data compared with the hash. Pure.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use sha2::{Digest, Sha256};

use crate::api::{IdentityStatus, WrittenSecret};

/// The controller's record of the Secret it wrote, with the times it was issued for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Version, data hash, spec hash (and the Secret's name).
    pub written: WrittenSecret,
    /// When the credentials expire.
    pub expiration: Timestamp,
    /// When they are renewed.
    pub renewal: Timestamp,
}

impl Record {
    /// The record `status` holds for Secret `name`: none if it names another Secret or any
    /// part is missing or unreadable (the Secret is then read and rewritten).
    pub fn from_status(status: &IdentityStatus, name: &str) -> Option<Self> {
        let written = status.written.clone().filter(|w| w.name == name)?;
        let time = |t: &Option<String>| t.as_deref().and_then(|v| v.parse::<Timestamp>().ok());
        Some(Self {
            written,
            expiration: time(&status.expiration)?,
            renewal: time(&status.renewal_time)?,
        })
    }

    /// Whether the Secret at version `rv` is what this record describes: this version, or an
    /// older one (a watch cache that has not shown the write yet).
    pub fn covers(&self, rv: &str) -> bool {
        match (revision(rv), revision(&self.written.resource_version)) {
            (Some(seen), Some(ours)) => seen <= ours,
            // Opaque versions (not etcd's numbers): only the same one is ours.
            _ => rv == self.written.resource_version,
        }
    }

    /// The newer of two records (by version): what this process wrote may be ahead of the
    /// status it has managed to write.
    pub fn newer(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.covers(&a.written.resource_version) { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// The same record at version `rv` (a read found the same data there).
    pub fn at_version(&self, rv: &str) -> Self {
        let mut r = self.clone();
        r.written.resource_version = rv.to_owned();
        r
    }
}

/// A resourceVersion as a number (they are etcd revisions, which only grow).
fn revision(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

/// SHA-256 of a Secret's data, hex: every key and value, each length-prefixed, in key
/// order, so no two different data maps hash alike by shifting bytes between entries.
pub fn data_hash(data: &BTreeMap<String, ByteString>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.0.len() as u64).to_be_bytes());
        h.update(&v.0);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    fn status(name: &str, rv: &str) -> IdentityStatus {
        IdentityStatus {
            expiration: Some("2026-01-01T01:00:00Z".into()),
            renewal_time: Some("2026-01-01T00:40:00Z".into()),
            written: Some(WrittenSecret {
                name: name.into(),
                resource_version: rv.into(),
                data_hash: "d".into(),
                spec_hash: "s".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_data_hash_tells_any_change_apart() {
        let a = data_hash(&data(&[("config", "x"), ("credential_process.json", "y")]));
        assert_eq!(
            a,
            data_hash(&data(&[("credential_process.json", "y"), ("config", "x")]))
        );
        assert_ne!(
            a,
            data_hash(&data(&[("config", "x"), ("credential_process.json", "z")]))
        );
        assert_ne!(
            a,
            data_hash(&data(&[("config", "xc"), ("redential_process.json", "y")]))
        );
        assert_ne!(
            a,
            data_hash(&data(&[
                ("config", "x"),
                ("credential_process.json", "y"),
                ("credentials", "")
            ]))
        );
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn a_record_is_read_from_the_status_for_its_own_secret_only() {
        let r = Record::from_status(&status("creds", "10"), "creds").unwrap();
        assert_eq!(r.written.resource_version, "10");
        assert_eq!(r.renewal, "2026-01-01T00:40:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(Record::from_status(&status("creds", "10"), "other"), None);
        let mut no_times = status("creds", "10");
        no_times.expiration = None;
        assert_eq!(Record::from_status(&no_times, "creds"), None);
        assert_eq!(Record::from_status(&IdentityStatus::default(), "creds"), None);
    }

    #[test]
    fn only_the_recorded_version_or_an_older_cached_one_is_covered() {
        let r = Record::from_status(&status("creds", "10"), "creds").unwrap();
        assert!(r.covers("10"));
        assert!(r.covers("9"), "a cache that has not shown the write yet");
        assert!(!r.covers("11"), "written since by someone else");
        assert!(!r.covers("abc"));
        let opaque = Record::from_status(&status("creds", "abc"), "creds").unwrap();
        assert!(opaque.covers("abc") && !opaque.covers("abd"));
    }

    #[test]
    fn the_newer_record_wins() {
        let old = Record::from_status(&status("creds", "10"), "creds");
        let new = Record::from_status(&status("creds", "12"), "creds");
        assert_eq!(Record::newer(old.clone(), new.clone()), new);
        assert_eq!(Record::newer(new.clone(), old.clone()), new);
        assert_eq!(Record::newer(None, old.clone()), old);
        assert_eq!(Record::newer(old.clone(), None), old);
        assert_eq!(new.unwrap().at_version("15").written.resource_version, "15");
    }
}
