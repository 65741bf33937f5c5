//! A map by (namespace, name) behind a mutex: what the process remembers per object between
//! reconciles (statuses and Secrets it wrote, sessions a failed write left, ClusterAuthProfile
//! usage). One type, so forgetting and pruning after a re-list work the same for each.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// (namespace, name) of an object.
pub type Key = (String, String);

/// `V` per (namespace, name).
pub struct ByName<V>(Mutex<HashMap<Key, V>>);

impl<V> Default for ByName<V> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<V> ByName<V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, V>> {
        // Every update is one map operation: a panic cannot leave an entry half-made.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets `key`'s value.
    pub fn insert(&self, key: Key, value: V) {
        self.lock().insert(key, value);
    }

    /// Takes `key`'s value out.
    pub fn remove(&self, key: &Key) -> Option<V> {
        self.lock().remove(key)
    }

    /// Keeps only the entries for which `keep(namespace, name)` is true.
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.lock().retain(|(ns, name), _| keep(ns, name));
    }

    /// Runs `f` on the map, under the lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut HashMap<Key, V>) -> R) -> R {
        f(&mut self.lock())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl<V: Clone> ByName<V> {
    /// A copy of `key`'s value.
    pub fn get(&self, key: &Key) -> Option<V> {
        self.lock().get(key).cloned()
    }
}

/// The key of `namespace`/`name`.
pub fn key(namespace: &str, name: &str) -> Key {
    (namespace.to_owned(), name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_keeps_what_the_predicate_names() {
        let m = ByName::default();
        m.insert(key("a", "x"), 1);
        m.insert(key("a", "y"), 2);
        m.insert(key("b", "x"), 3);
        m.retain(|ns, name| ns == "b" || name == "x");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&key("a", "y")), None);
        assert_eq!(m.remove(&key("b", "x")), Some(3));
    }
}
