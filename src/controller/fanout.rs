//! One watch, several consumers: a store, and for each subscriber every object the watch
//! applies or deletes. Why not kube's shared reflector: it does not pass deletions on, and an
//! Identity must hear that its profile is gone. Subscribers are made before the watch runs
//! ([`Fanout::run`]), so each sees the initial list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use super::decoded::{Decoded, Skipped};

/// A watch's events, typed.
pub type Events<K> = std::pin::Pin<Box<dyn Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send>>;

/// What [`Fanout::run`] takes: the watch (objects decoded one by one), the store's writer,
/// the synced flag, and where skipped objects are reported.
type Root<K> = (
    Events<Decoded<K>>,
    reflector::store::Writer<K>,
    watch::Sender<bool>,
    Arc<Skipped>,
);

/// One watch of `K` shared by its subscribers.
pub struct Fanout<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<(K, bool)>>>,
    synced: watch::Receiver<bool>,
    root: Mutex<Option<Root<K>>>,
    observer: Mutex<Option<Observer<K>>>,
}

/// Sees every event of the watch, after the store applied it (process memory that follows
/// the objects: a deleted object's bookkeeping, a re-list's leftovers).
pub type Observer<K> = Box<dyn FnMut(&watcher::Event<K>) + Send>;

impl<K> Fanout<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    /// A fan-out of `events` (a watcher stream of objects decoded one by one, backoff
    /// applied), not yet running; objects that did not decode are reported to `skipped`.
    pub fn new(events: Events<Decoded<K>>, skipped: Arc<Skipped>) -> Arc<Self> {
        let (store, writer) = reflector::store();
        let (tx, synced) = watch::channel(false);
        Arc::new(Self {
            store,
            subscribers: Mutex::default(),
            synced,
            root: Mutex::new(Some((events, writer, tx, skipped))),
            observer: Mutex::default(),
        })
    }

    /// The store the watch fills.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every object the watch applies or deletes from now on, as a controller trigger stream.
    pub fn subscribe(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        self.changes().map(|(obj, _)| Ok(obj))
    }

    /// Only the objects whose spec changed (a new generation) or that were deleted: what the
    /// objects that use them care about (status writes must not retrigger them; kube's
    /// generation predicate drops deletions, hence this filter).
    pub fn subscribe_spec_changes(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let mut generations: HashMap<ObjectRef<K>, Option<i64>> = HashMap::new();
        self.changes().filter_map(move |(obj, deleted)| {
            let key = ObjectRef::from_obj(&obj);
            let out = if deleted {
                generations.remove(&key);
                Some(Ok(obj))
            } else {
                let generation = obj.meta().generation;
                (generations.insert(key, generation) != Some(generation)).then_some(Ok(obj))
            };
            futures::future::ready(out)
        })
    }

    fn changes(&self) -> mpsc::UnboundedReceiver<(K, bool)> {
        let (tx, rx) = mpsc::unbounded();
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    /// Sets what sees every event (before [`Self::run`]).
    pub fn observe(&self, observer: Observer<K>) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    /// Resolves once the store holds the first full list. Any number may wait (kube's own
    /// readiness future keeps one waker).
    pub async fn synced(&self) -> bool {
        let mut rx = self.synced.clone();
        rx.wait_for(|s| *s).await.is_ok()
    }

    /// Runs the watch until it ends (it does not: the watcher retries). Call once; a second
    /// call returns at once.
    pub async fn run(self: Arc<Self>) {
        let Some((events, writer, synced, skipped)) = self.root.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let store = self.store.clone();
        let mut stream = events
            .filter_map(move |e| futures::future::ready(keep_decoded(e, &store, &skipped)))
            .reflect(writer)
            .boxed();
        while let Some(event) = stream.next().await {
            if let (Ok(e), Some(observe)) = (&event, self.observer.lock().unwrap_or_else(|p| p.into_inner()).as_mut()) {
                observe(e);
            }
            let change = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                Ok(watcher::Event::Delete(o)) => (o, true),
                Ok(watcher::Event::InitDone) => {
                    synced.send_replace(true);
                    continue;
                }
                Ok(watcher::Event::Init) => continue,
                // The watcher backs off and retries on its own (its health logs why);
                // subscribers see no errors.
                Err(_) => continue,
            };
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            // A subscriber that went away (its controller stopped) is dropped.
            subs.retain(|tx| tx.unbounded_send(change.clone()).is_ok());
        }
    }
}

/// `event` with the objects that decoded; those that did not are reported and skipped (a
/// deleted one is deleted as the store last held it, if it ever decoded).
fn keep_decoded<K>(
    event: Result<watcher::Event<Decoded<K>>, watcher::Error>,
    store: &Store<K>,
    skipped: &Skipped,
) -> Option<Result<watcher::Event<K>, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let ok = |d: Decoded<K>| match d {
        Decoded::Ok(obj) => Some(obj),
        Decoded::Bad(bad) => {
            skipped.report::<K>(&bad);
            None
        }
    };
    let event = match event {
        Err(e) => return Some(Err(e)),
        Ok(e) => e,
    };
    Some(Ok(match event {
        watcher::Event::Apply(d) => watcher::Event::Apply(ok(d)?),
        watcher::Event::InitApply(d) => watcher::Event::InitApply(ok(d)?),
        watcher::Event::Delete(Decoded::Ok(obj)) => watcher::Event::Delete(obj),
        watcher::Event::Delete(Decoded::Bad(bad)) => {
            let name = bad.metadata.name.as_deref()?;
            let at = match bad.metadata.namespace.as_deref() {
                Some(ns) => ObjectRef::new(name).within(ns),
                None => ObjectRef::new(name),
            };
            watcher::Event::Delete(store.get(&at)?.as_ref().clone())
        }
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    }))
}
