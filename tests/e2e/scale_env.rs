//! A fleet of Identities for the scale check (tests/e2e/scale.rs) and the scale benchmark
//! (benches/scale.rs): K namespaces with one two-link profile each, the chart's RBAC and
//! ServiceAccount token for the controller (so API Priority and Fairness applies to it as in
//! a cluster), a local STS with an optional request quota, objects created through the kube
//! client, and a watch (not list polling) to see them converge. The controller's API
//! requests are counted from the API server's audit log, filtered by its user.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use atmos_auth_controller::api::{AuthProfile, Identity};
use atmos_auth_testenv::controlplane::{AuditEvent, ControlPlane};
use atmos_auth_testenv::sts::{LocalSts, OidcIssuer, RateLimit};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::fixture::{
    ADMIN_ROLE, ControllerProcess, NETWORK_ROLE, kubectl, ready, service_account_kubeconfig, sts_config,
    terraform_token_grant,
};

/// Verbs that change something.
pub const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The fleet's namespaces, controller identity and STS.
pub struct Fleet {
    pub client: Client,
    pub namespaces: Vec<String>,
    /// `system:serviceaccount:<release>:aac-<prefix>-atmos-auth-controller`.
    pub user: String,
    kubeconfig: PathBuf,
    pub sts: LocalSts,
}

impl Fleet {
    /// Namespaces `e2e-<prefix>-0..k`, each with the `terraform` ServiceAccount, a profile
    /// `k8s` (OIDC -> admin -> network) and a Role letting the controller mint tokens for
    /// `terraform`; the chart installed in `e2e-<prefix>-system` (watching only the fleet's
    /// namespaces when `scoped`, else all); a local STS with `quota`.
    pub async fn new(
        cp: &ControlPlane,
        prefix: &str,
        k: usize,
        scoped: bool,
        quota: Option<RateLimit>,
    ) -> Result<Self> {
        let client = cp.client().await?;
        let release = format!("e2e-{prefix}-system");
        let namespaces: Vec<String> = (0..k).map(|i| format!("e2e-{prefix}-{i}")).collect();
        let nss: Api<Namespace> = Api::all(client.clone());
        for ns in namespaces.iter().chain([&release]) {
            let obj: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?;
            nss.create(&PostParams::default(), &obj)
                .await
                .with_context(|| format!("creating namespace {ns}"))?;
        }
        let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/atmos-auth-controller");
        let watch = format!("controller.watchNamespaces={}", serde_json::to_string(&namespaces)?);
        let mut values = vec!["--set", "crds.install=false", "--set", "admissionPolicy.enabled=false"];
        if scoped {
            values.extend(["--set-json", watch.as_str()]);
        }
        // A release name of its own: the chart's ClusterRoleBinding is named after the release,
        // and one shared with another fleet (or tests/e2e/chart_rbac.rs) on this control plane
        // would bind the other release's ServiceAccount only, whichever applied last.
        let release_name = format!("aac-{prefix}");
        let rendered = atmos_auth_testenv::helm::template(&chart, &release_name, &release, &values)?;
        kubectl(cp, &["apply", "--server-side", "-f", "-"], Some(&rendered))?;
        let sa_name = format!("{release_name}-atmos-auth-controller");
        let sa_name = sa_name.as_str();
        for ns in &namespaces {
            crate::fixture::service_account(&client, ns, "terraform").await?;
            let grant = terraform_token_grant(ns, sa_name, &release);
            kubectl(cp, &["apply", "-f", "-"], Some(&grant))?;
            Api::<AuthProfile>::namespaced(client.clone(), ns)
                .patch(
                    "k8s",
                    &PatchParams::apply("e2e-scale").force(),
                    &Patch::Apply(profile()),
                )
                .await?;
        }
        // The chart's ServiceAccount's token, in a kubeconfig of its own.
        let name = format!("{prefix}-controller");
        let kubeconfig = service_account_kubeconfig(cp, &client, (&release, sa_name), &name, 6 * 3600).await?;
        let mut config = sts_config();
        config.rate_limit = quota;
        let issuer = OidcIssuer {
            url: cp.issuer().to_owned(),
            ca_pem: cp.ca_pem().to_owned(),
        };
        let sts = LocalSts::start(config, issuer)?;
        Ok(Self {
            client,
            user: format!("system:serviceaccount:{release}:{sa_name}"),
            namespaces,
            kubeconfig,
            sts,
        })
    }

    /// The controller binary with the chart's identity, watching the fleet.
    pub fn controller(&self, scoped: bool, extra: &[&str]) -> Result<ControllerProcess> {
        let scope = if scoped {
            self.namespaces.join(",")
        } else {
            String::new()
        };
        ControllerProcess::start_with_kubeconfig(
            &self.kubeconfig.display().to_string(),
            &scope,
            &self.sts.endpoint(),
            // The fleet's chart has no admission policies (admissionPolicy.enabled=false).
            &[&["--log-level", "warn", "--allow-unenforced-admission"], extra].concat(),
        )
    }

    /// Creates Identities `id-0..n`, the i-th in namespace i mod k, 32 requests at a time.
    pub async fn create_identities(&self, n: usize) -> Result<()> {
        futures::stream::iter(0..n)
            .map(|i| {
                let api: Api<Identity> =
                    Api::namespaced(self.client.clone(), &self.namespaces[i % self.namespaces.len()]);
                async move {
                    let obj: Identity = serde_json::from_value(serde_json::json!({
                        "apiVersion": "auth.atmos.tools/v1alpha1", "kind": "Identity",
                        "metadata": {"name": format!("id-{i}")},
                        "spec": {"profile": "k8s", "identity": "acme/network"}
                    }))?;
                    api.create(&PostParams::default(), &obj).await?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(32)
            .try_collect::<()>()
            .await
    }

    /// Waits on a watch of every Identity until `n` satisfy `done`; returns the time taken.
    pub async fn wait_identities(
        &self,
        n: usize,
        timeout: Duration,
        done: impl Fn(&Identity) -> bool,
    ) -> Result<Duration> {
        let started = Instant::now();
        let fleet: HashSet<&String> = self.namespaces.iter().collect();
        let api: Api<Identity> = Api::all(self.client.clone());
        let mut stream = watcher(api, watcher::Config::default()).applied_objects().boxed();
        let mut ok: HashSet<(String, String)> = HashSet::new();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        while ok.len() < n {
            tokio::select! {
                () = &mut deadline => bail!("only {}/{n} Identities done after {timeout:?}", ok.len()),
                item = stream.next() => {
                    let Some(obj) = item.transpose()? else { bail!("the watch ended") };
                    let ns = obj.namespace().unwrap_or_default();
                    if !fleet.contains(&ns) {
                        continue;
                    }
                    let key = (ns, obj.name_any());
                    if done(&obj) {
                        ok.insert(key);
                    } else {
                        ok.remove(&key);
                    }
                }
            }
        }
        Ok(started.elapsed())
    }

    /// The fleet's Secrets' annotations, by (namespace, name) (for benches/scale.rs).
    #[allow(dead_code)]
    pub async fn secret_annotations(&self) -> Result<HashMap<(String, String), BTreeMap<String, String>>> {
        let mut out = HashMap::new();
        for ns in &self.namespaces {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
            for s in api.list_metadata(&ListParams::default()).await?.items {
                if s.labels().contains_key("app.kubernetes.io/managed-by") {
                    out.insert((ns.clone(), s.name_any()), s.annotations().clone());
                }
            }
        }
        Ok(out)
    }

    /// The controller's audited requests after the first `mark` audit events.
    pub fn requests_since(&self, cp: &ControlPlane, mark: usize) -> Result<Vec<AuditEvent>> {
        Ok(cp
            .audit_events()?
            .into_iter()
            .skip(mark)
            .filter(|e| e.user == self.user)
            .collect())
    }
}

/// The number of audit events so far (a mark for [`Fleet::requests_since`]).
pub fn audit_mark(cp: &ControlPlane) -> Result<usize> {
    Ok(cp.audit_events()?.len())
}

/// Requests by "verb resource[/subresource]", leader-election Leases apart.
pub fn by_verb(events: &[AuditEvent]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        let what = if e.subresource.is_empty() {
            format!("{} {}", e.verb, e.resource)
        } else {
            format!("{} {}/{}", e.verb, e.resource, e.subresource)
        };
        *out.entry(what).or_default() += 1;
    }
    out
}

/// Writes among `events`, Leases apart (reported separately).
pub fn writes(events: &[AuditEvent]) -> Vec<&AuditEvent> {
    events
        .iter()
        .filter(|e| WRITES.contains(&e.verb.as_str()) && e.resource != "leases")
        .collect()
}

/// Ready with credentials issued.
pub fn issued(i: &Identity) -> bool {
    ready(i).is_some_and(|r| r.0 == "True" && r.1 == "CredentialsIssued")
}

/// The profile of every fleet namespace: OIDC -> admin -> network, one-hour sessions.
fn profile() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "auth.atmos.tools/v1alpha1", "kind": "AuthProfile",
        "metadata": {"name": "k8s"},
        "spec": {
            "providers": {"cluster-oidc": {
                "kind": "kubernetes/oidc",
                "spec": {"audience": "sts.amazonaws.com", "service_account": "terraform"}
            }},
            "identities": {
                "acme/admin": {
                    "default": true, "kind": "aws/assume-role", "via": {"provider": "cluster-oidc"},
                    "principal": {"assume_role": ADMIN_ROLE, "duration": "1h", "region": "us-east-2"}
                },
                "acme/network": {
                    "kind": "aws/assume-role", "via": {"identity": "acme/admin"},
                    "principal": {"assume_role": NETWORK_ROLE, "duration": "1h"}
                }
            }
        }
    })
}

/// The controller's resident and peak memory, KiB (VmRSS, VmHWM), and CPU seconds (for
/// benches/scale.rs).
#[allow(dead_code)]
pub fn proc_stats(pid: u32) -> (u64, u64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or_default().split(' ').collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (kib("VmRSS:"), kib("VmHWM:"), ticks as f64 / 100.0)
}
