//! Which Identities a change to the controller's Secrets concerns. Like kube's `owns`, by
//! the controller owner reference, with two additions: a Secret whose owner reference was
//! removed still reaches the Identity that owned it (so its status says at once that the
//! Secret is no longer its own), and a Secret deleted while the watch was down (an API server
//! restart) reaches its owner after the re-list. The same watch feeds the Secret metadata
//! cache the reconcile reads instead of a GET.

use std::collections::HashSet;

use futures::stream::BoxStream;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use super::Scope;
use crate::api::Identity;
use crate::output::labels;
use crate::util::keyed::Key;

/// The controller's Secrets as a metadata cache, and the Identities a change to one of them
/// concerns. Selected by label; foreign annotations (a `kubectl apply`-made Secret keeps its
/// whole data in one), labels and managedFields are dropped at once: a version other than the
/// one the controller recorded is what shows someone else's write.
pub fn cache(
    client: &Client,
    scope: &Scope,
    watches: &super::Watches,
) -> (
    Store<PartialObjectMeta<Secret>>,
    BoxStream<'static, ObjectRef<Identity>>,
) {
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
    let mut tracker = Tracker::new();
    let store = tracker.store.clone();
    let health = watches.watch::<Secret>(&format!("{} labelled {selector}", scope.describe()));
    let triggers = watcher(
        scope.api::<PartialObjectMeta<Secret>>(client),
        watcher::Config::default().labels(&selector),
    )
    .backoff(super::backoff::WatchBackoff::default())
    .inspect(move |e| health.observe(e))
    .modify(|meta| {
        let m = &mut meta.metadata;
        // Who wrote what is judged by version and data hash, not field manager names.
        m.managed_fields = None;
        // Selected by label already; owner references stay (they map a Secret to its Identity).
        m.labels = None;
        m.creation_timestamp = None;
        if let Some(a) = m.annotations.as_mut() {
            a.retain(|k, _| labels::OWN_ANNOTATIONS.contains(&k.as_str()));
        }
    })
    .filter_map(move |event| {
        let refs = match event {
            Ok(event) => tracker.event(event),
            // Logged and reported by its health (above); the watcher retries with backoff.
            Err(_) => Vec::new(),
        };
        futures::future::ready((!refs.is_empty()).then(|| stream::iter(refs)))
    })
    .flatten()
    .boxed();
    (store, triggers)
}

/// The controller owner of kind Identity, if any.
fn owner(meta: &PartialObjectMeta<Secret>) -> Option<ObjectRef<Identity>> {
    let ns = meta.namespace()?;
    meta.owner_references()
        .iter()
        .find(|o| {
            o.controller == Some(true) && o.kind == Identity::kind(&()) && o.api_version == Identity::api_version(&())
        })
        .map(|o| ObjectRef::new(&o.name).within(&ns))
}

/// Feeds the metadata cache and compares each event with what the cache held before it: the
/// cache is the only record of each Secret's version and owner (a map of its own beside it
/// cost some 0.35 KiB per Secret).
struct Tracker {
    store: Store<PartialObjectMeta<Secret>>,
    writer: reflector::store::Writer<PartialObjectMeta<Secret>>,
    /// Keys listed since the current re-list began (the cache shows the state before the
    /// re-list until it is done).
    listing: Option<HashSet<Key>>,
}

impl Tracker {
    fn new() -> Self {
        let (store, writer) = reflector::store();
        Self {
            store,
            writer,
            listing: None,
        }
    }

    /// The Identities `event` concerns; then the cache takes it in.
    fn event(&mut self, event: watcher::Event<PartialObjectMeta<Secret>>) -> Vec<ObjectRef<Identity>> {
        let refs = self.concerns(&event);
        self.writer.apply_watcher_event(&event);
        refs
    }

    fn concerns(&mut self, event: &watcher::Event<PartialObjectMeta<Secret>>) -> Vec<ObjectRef<Identity>> {
        match event {
            watcher::Event::Init => {
                self.listing = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(meta) => {
                if let Some(listing) = self.listing.as_mut() {
                    listing.insert(key(meta));
                }
                self.apply(meta)
            }
            watcher::Event::Apply(meta) => self.apply(meta),
            watcher::Event::InitDone => {
                // Gone while the watch was down: the Delete event was never seen.
                let Some(listed) = self.listing.take() else {
                    return Vec::new();
                };
                self.store
                    .state()
                    .iter()
                    .filter(|m| !listed.contains(&key(m)))
                    .filter_map(|m| owner(m))
                    .collect()
            }
            watcher::Event::Delete(meta) => {
                let before = self.before(meta).and_then(|b| owner(&b));
                both(owner(meta), before)
            }
        }
    }

    /// What the cache holds of `meta`'s Secret.
    fn before(&self, meta: &PartialObjectMeta<Secret>) -> Option<std::sync::Arc<PartialObjectMeta<Secret>>> {
        self.store.get(&ObjectRef::from_obj(meta))
    }

    /// A Secret created or changed: its owner now and the one before, unless only its
    /// version is what we saw already (a re-list).
    fn apply(&self, meta: &PartialObjectMeta<Secret>) -> Vec<ObjectRef<Identity>> {
        match self.before(meta) {
            Some(before) if before.resource_version() == meta.resource_version() => Vec::new(),
            Some(before) => both(owner(meta), owner(&before)),
            None => both(owner(meta), None),
        }
    }
}

fn key(meta: &PartialObjectMeta<Secret>) -> Key {
    (meta.namespace().unwrap_or_default(), meta.name_any())
}

fn both(a: Option<ObjectRef<Identity>>, b: Option<ObjectRef<Identity>>) -> Vec<ObjectRef<Identity>> {
    let mut refs: Vec<ObjectRef<Identity>> = a.into_iter().chain(b).collect();
    refs.dedup();
    refs
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;

    fn secret(name: &str, rv: &str, owner: Option<&str>) -> PartialObjectMeta<Secret> {
        PartialObjectMeta::<Secret> {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                owner_references: owner.map(|o| {
                    vec![OwnerReference {
                        api_version: Identity::api_version(&()).into_owned(),
                        kind: "Identity".into(),
                        name: o.into(),
                        uid: format!("uid-{o}"),
                        controller: Some(true),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(refs: Vec<ObjectRef<Identity>>) -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn owner_changes_reach_the_old_owner_and_relists_are_quiet() {
        let mut t = Tracker::new();
        assert_eq!(
            names(t.event(watcher::Event::Apply(secret("s", "1", Some("a"))))),
            ["a"]
        );
        // The same version again (a re-list): nothing.
        assert!(t.event(watcher::Event::Apply(secret("s", "1", Some("a")))).is_empty());
        // Owner reference removed: the Identity that owned it still hears of it, once.
        assert_eq!(names(t.event(watcher::Event::Apply(secret("s", "2", None)))), ["a"]);
        assert!(t.event(watcher::Event::Apply(secret("s", "3", None))).is_empty());
        assert_eq!(
            names(t.event(watcher::Event::Delete(secret("s", "3", None)))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_secret_gone_during_an_outage_reaches_its_owner_after_the_relist() {
        let mut t = Tracker::new();
        t.event(watcher::Event::Apply(secret("kept", "1", Some("a"))));
        t.event(watcher::Event::Apply(secret("gone", "1", Some("b"))));
        assert!(t.event(watcher::Event::Init).is_empty());
        assert!(
            t.event(watcher::Event::InitApply(secret("kept", "1", Some("a"))))
                .is_empty()
        );
        assert_eq!(names(t.event(watcher::Event::InitDone)), ["b"]);
        assert!(t.event(watcher::Event::InitDone).is_empty());
    }
}
