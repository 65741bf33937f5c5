//! The watches' health: whether each has listed once, and if not, why. A watch that fails
//! for a reason only the operator can fix (its CRD missing, RBAC refusing the list) is
//! logged as an error naming the resource and what to do, and `/readyz` names every watch
//! that has not synced: otherwise a controller started without one of its CRDs logs that it
//! runs and then says nothing while it reconciles nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kube::Resource;
use kube::runtime::watcher;

/// How often the same failure of one watch is logged again (it retries every 5 s).
const RELOG: Duration = Duration::from_secs(60);

/// Every watch of the process.
#[derive(Default)]
pub struct Watches(Mutex<Vec<Arc<Watch>>>);

impl Watches {
    /// Registers the watch of `K` described by `scope` ("in namespace team", "cluster-wide").
    pub fn watch<K: Resource<DynamicType = ()>>(&self, scope: &str) -> Arc<Watch> {
        let watch = Arc::new(Watch {
            resource: resource_name::<K>(),
            scope: scope.to_owned(),
            synced: AtomicBool::new(false),
            failure: Mutex::default(),
        });
        self.lock().push(watch.clone());
        watch
    }

    /// The watches that have not listed yet, each with its last failure.
    pub fn not_synced(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|w| !w.synced.load(Ordering::SeqCst))
            .map(|w| {
                let failure = w.failure();
                match &failure.last {
                    Some(why) => format!("{} {}: {why}", w.resource, w.scope),
                    None => format!("{} {}: listing", w.resource, w.scope),
                }
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Watch>>> {
        // Each update is one push: a panic cannot leave the list half-made.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One watch: the resource (`plural.group`), where it looks, whether it has listed once.
pub struct Watch {
    resource: String,
    scope: String,
    synced: AtomicBool,
    failure: Mutex<Failure>,
}

#[derive(Default)]
struct Failure {
    /// What the last failure said (cleared once the watch lists).
    last: Option<String>,
    /// When it was last logged.
    logged: Option<Instant>,
}

impl Watch {
    /// Takes in one item of the watch's stream.
    pub fn observe<K>(&self, item: &Result<watcher::Event<K>, watcher::Error>) {
        match item {
            Ok(watcher::Event::InitDone) => {
                let recovered = self.failure().last.take();
                self.synced.store(true, Ordering::SeqCst);
                if let Some(was) = recovered {
                    tracing::info!(resource = %self.resource, scope = %self.scope, was = %was, "watch listed again");
                }
            }
            Ok(_) => {}
            Err(e) => self.failed(e),
        }
    }

    fn failed(&self, e: &watcher::Error) {
        let (fatal, why) = explain(&self.resource, e);
        let mut f = self.failure();
        let again = f.last.as_deref() != Some(why.as_str()) || f.logged.is_none_or(|t| t.elapsed() >= RELOG);
        if again {
            if fatal {
                tracing::error!(resource = %self.resource, scope = %self.scope, error = %why, "watch failed: nothing that depends on it is reconciled until it works");
            } else {
                tracing::warn!(resource = %self.resource, scope = %self.scope, error = %why, "watch failed; retrying");
            }
            f.logged = Some(Instant::now());
        }
        f.last = Some(why);
    }

    fn failure(&self) -> MutexGuard<'_, Failure> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `plural.group` of `K` (`plural` alone for the core group): how RBAC and `kubectl` name it.
pub fn resource_name<K: Resource<DynamicType = ()>>() -> String {
    let group = K::group(&());
    if group.is_empty() {
        K::plural(&()).into_owned()
    } else {
        format!("{}.{group}", K::plural(&()))
    }
}

/// What a watch failure of `resource` means and what to do, and whether only the operator can
/// fix it (a 404: the CRD is missing; a 403: RBAC refuses the list or watch).
pub fn explain(resource: &str, e: &watcher::Error) -> (bool, String) {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.as_ref()),
        watcher::Error::WatchError(s) => Some(s.as_ref()),
        _ => None,
    };
    match status.map(|s| (s.code, s.message.as_str())) {
        Some((404, _)) if resource.contains('.') => (
            true,
            format!(
                "the API server does not serve {resource}: its CustomResourceDefinition is not installed (an \
                 upgrade that skipped the CRDs?); install the controller's CRDs (kubectl apply --server-side -f \
                 crds/, or the chart with crds.install=true)"
            ),
        ),
        Some((403, message)) => (
            true,
            format!(
                "the controller may not list and watch {resource}: grant its ServiceAccount list and watch on \
                 it (the chart's RBAC does; docs/install.md lists every rule): {message}"
            ),
        ),
        _ => (false, crate::util::redact::redact(&e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> watcher::Error {
        let status = kube::core::Status {
            code,
            message: "the server could not find the requested resource".into(),
            ..kube::core::Status::failure("", "")
        };
        watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn a_missing_crd_or_a_refused_list_says_what_to_do() {
        let (fatal, why) = explain("clusterauthprofiles.auth.atmos.tools", &api_error(404));
        assert!(fatal);
        assert!(
            why.contains("does not serve clusterauthprofiles.auth.atmos.tools"),
            "{why}"
        );
        assert!(why.contains("crds.install=true"), "{why}");
        let (fatal, why) = explain("secrets", &api_error(403));
        assert!(fatal);
        assert!(why.contains("may not list and watch secrets"), "{why}");
        let (fatal, _) = explain("secrets", &api_error(500));
        assert!(!fatal);
    }

    #[test]
    fn readiness_names_the_watches_not_listed_yet_and_why() {
        let w = Watches::default();
        let profiles = w.watch::<crate::api::ClusterAuthProfile>("cluster-wide");
        let secrets = w.watch::<k8s_openapi::api::core::v1::Secret>("in namespace team");
        profiles.observe::<()>(&Err(api_error(404)));
        secrets.observe::<()>(&Ok(watcher::Event::InitDone));
        let waiting = w.not_synced();
        assert_eq!(waiting.len(), 1, "{waiting:?}");
        assert!(
            waiting[0].starts_with("clusterauthprofiles.auth.atmos.tools cluster-wide: the API server does not serve"),
            "{waiting:?}"
        );
        profiles.observe::<()>(&Ok(watcher::Event::InitDone));
        assert!(w.not_synced().is_empty());
    }
}
