//! `spec.rolloutRestartTargets`: after an Identity's Secret gets new credentials, each named
//! workload's pod template gets [`RESTARTED_AT`], debounced by the workload's own annotation
//! ([`crate::output::restart`]). The controller holds no blanket right: the namespace grants
//! `get` and `patch` per named workload, and an admission policy lets its patch change only
//! that annotation. A restart deferred to the end of a window is a timer that triggers the
//! Identity's reconcile again.

use std::time::Duration;

use futures::channel::mpsc;
use jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

use super::Context;
use crate::api::{Identity, RestartTarget};
use crate::output::restart::{RESTARTED_AT, Restart, decide, window};
use crate::util::keyed::{ByName, Key};
use crate::util::time::rfc3339;

/// What this process knows of each Identity's restarts.
#[derive(Default)]
pub struct Restarts {
    /// Per Identity: what this process wrote and which write's restarts are done.
    state: ByName<Track>,
    /// Reconcile triggers for deferred restarts, one per controller of the scope.
    triggers: std::sync::Mutex<Vec<mpsc::UnboundedSender<Key>>>,
}

/// One Identity's restart bookkeeping.
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    /// When this process last wrote it new credentials, and when they expire (earliest).
    written: Option<(Timestamp, Timestamp)>,
    /// The newest write whose restarts are all done (`None`: not checked by this process).
    handled: Option<Timestamp>,
}

impl Restarts {
    /// The Identity `key` got new credentials at `at`, expiring at `expiry`.
    pub fn wrote(&self, key: Key, at: Timestamp, expiry: Timestamp) {
        self.state
            .with(|m| m.entry(key).or_default().written = Some((at, expiry)));
    }

    /// Forgets a deleted Identity.
    pub fn forget(&self, key: &Key) {
        self.state.remove(key);
    }

    /// Keeps only the Identities for which `keep(namespace, name)` holds (after a re-list).
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.state.retain(keep);
    }

    /// A stream of Identities whose deferred restart is due.
    pub fn trigger(&self) -> mpsc::UnboundedReceiver<Key> {
        let (tx, rx) = mpsc::unbounded();
        self.triggers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    fn later(&self, key: Key, at: Timestamp) {
        let senders = self.triggers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let wait = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            for tx in senders {
                let _ = tx.unbounded_send(key.clone());
            }
        });
    }
}

/// Restarts `obj`'s targets whose pods predate its latest credentials, now or at the end of
/// their window. Failures are events, never a failed reconcile: the credentials are written.
pub async fn follow(ctx: &Context, obj: &Identity, ns: &str, now: Timestamp) {
    let targets = match &obj.spec.rollout_restart_targets {
        Some(t) if !t.is_empty() => t,
        _ => return,
    };
    let key: Key = (ns.to_owned(), obj.metadata.name.clone().unwrap_or_default());
    // What status records (a write by an earlier process), or this process's own newer write.
    let parse = |t: Option<&String>| t.and_then(|t| t.parse::<Timestamp>().ok());
    let status = obj.status.as_ref();
    let recorded =
        parse(status.and_then(|s| s.last_refresh_time.as_ref())).zip(parse(status.and_then(|s| s.expiration.as_ref())));
    let track = ctx.memory.restarts.state.get(&key).unwrap_or_default();
    let Some((written, expiry)) = track.written.max(recorded) else {
        return;
    };
    if track.handled.is_some_and(|h| h >= written) {
        return;
    }
    let win = window(now, expiry);
    let mut all_done = true;
    for target in targets {
        match restart_one(ctx, ns, target, written, win, now).await {
            Ok(Some(at)) => {
                all_done = false;
                ctx.memory.restarts.later(key.clone(), at);
            }
            Ok(None) => {}
            Err(note) => {
                all_done = false;
                // A target that stays unpatchable fails at every reconcile: one Event, its
                // series counting the repeats.
                super::identity::warn_failed(ctx, obj, &key, "RestartFailed", note).await;
            }
        }
    }
    if all_done {
        ctx.memory
            .restarts
            .state
            .with(|m| m.entry(key).or_default().handled = Some(written));
    }
}

/// One workload: `Ok(Some(at))` when its restart is deferred to `at`.
async fn restart_one(
    ctx: &Context,
    ns: &str,
    target: &RestartTarget,
    written: Timestamp,
    win: jiff::SignedDuration,
    now: Timestamp,
) -> Result<Option<Timestamp>, String> {
    let gvk = GroupVersionKind::gvk("apps", "v1", target.kind.as_str());
    let ar = ApiResource::from_gvk_with_plural(&gvk, target.kind.resource());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.services.client.clone(), ns, &ar);
    let what = format!("{} {ns}/{}", target.kind.as_str(), target.name);
    // One retry after a conflict: another Identity restarted it in between.
    for _ in 0..2 {
        let obj = api.get(&target.name).await.map_err(|e| explain(&what, "get", &e))?;
        let restarted = obj
            .data
            .pointer(&format!(
                "/spec/template/metadata/annotations/{}",
                RESTARTED_AT.replace('/', "~1")
            ))
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<Timestamp>().ok());
        match decide(written, restarted, win, now) {
            Restart::UpToDate => return Ok(None),
            Restart::At(at) => return Ok(Some(at)),
            Restart::Now => {}
        }
        // The resourceVersion makes the patch conditional: two Identities rotating together
        // restart the workload once.
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": obj.metadata.resource_version},
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: rfc3339(now)}}}},
        });
        match api
            .patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(workload = %what, "restarted for new credentials");
                return Ok(None);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(explain(&what, "patch", &e)),
        }
    }
    Err(format!(
        "{what}: changed by others twice while being restarted; retried at the next renewal"
    ))
}

fn explain(what: &str, verb: &str, err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) if s.code == 403 => format!(
            "{what} was not restarted: the controller may not {verb} it; grant it get and patch on that workload \
             (a Role with resourceNames bound to the controller's ServiceAccount, docs/operations.md)"
        ),
        kube::Error::Api(s) if s.code == 404 => {
            format!("{what} was not restarted: it does not exist (spec.rolloutRestartTargets)")
        }
        other => format!("{what} was not restarted: {verb} failed: {other}"),
    }
}
