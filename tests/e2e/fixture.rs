//! What every end-to-end test stands on: the shared local control plane with the CRDs
//! installed, a verifying local STS per test, and controller processes (the real binary)
//! scoped to the test's own namespace, so tests run in parallel and count STS calls alone.
//! The controllers run as the chart's ServiceAccount, under the chart's RBAC and admission
//! policies, as in a cluster (the admin would pass every check a policy makes of them).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use atmos_auth_controller::api::{AuthProfile, Identity};
use atmos_auth_testenv::controlplane::{self, ControlPlane};
use atmos_auth_testenv::sts::{LocalSts, OidcIssuer, StsConfig};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

pub const ACCOUNT: &str = "123456789012";
pub const ADMIN_ROLE: &str = "arn:aws:iam::123456789012:role/e2e-admin";
pub const NETWORK_ROLE: &str = "arn:aws:iam::123456789012:role/e2e-network";
pub const AUDIT_ROLE: &str = "arn:aws:iam::123456789012:role/e2e-audit";
/// The role an EKS pod identity webhook (IRSA) would hand a pod of ServiceAccount `irsa`.
pub const IRSA_ROLE: &str = "arn:aws:iam::123456789012:role/e2e-irsa";
/// Shortest session the tests' STS and controllers accept (AWS: 900 s).
pub const MIN_SESSION: u32 = 20;

/// The control plane with both CRDs established.
pub fn control_plane() -> &'static ControlPlane {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let cp = controlplane::shared();
    let ready = READY.get_or_init(|| {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(install_crds(cp)).map_err(|e| format!("{e:#}"))
        })
        .join()
        .unwrap_or_else(|_| Err("CRD install panicked".into()))
    });
    if let Err(e) = ready {
        panic!("installing the CRDs failed: {e}");
    }
    cp
}

/// The checked-in CRD files (tests/crds.rs keeps them equal to the generated ones).
pub const CRD_FILES: [&str; 3] = [
    "authprofiles.auth.atmos.tools.yaml",
    "clusterauthprofiles.auth.atmos.tools.yaml",
    "identities.auth.atmos.tools.yaml",
];

/// Installs the CRDs on `cp` and waits until they are established (for a private control
/// plane; [`control_plane`] does it once for the shared one).
pub async fn install_crds(cp: &ControlPlane) -> Result<()> {
    let crds = CRD_FILES.iter().map(|f| crd(f)).collect::<Result<Vec<_>>>()?;
    install_crd_objects(cp, crds).await
}

/// The checked-in CRD `file` (one of [`CRD_FILES`]).
pub fn crd(file: &str) -> Result<CustomResourceDefinition> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds").join(file);
    Ok(serde_saphyr::from_str(&std::fs::read_to_string(path)?)?)
}

/// Server-side applies `crds` on `cp` and waits until each is established.
pub async fn install_crd_objects(cp: &ControlPlane, crds: Vec<CustomResourceDefinition>) -> Result<()> {
    let client = cp.client().await?;
    let api: Api<CustomResourceDefinition> = Api::all(client);
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &PatchParams::apply("e2e").force(), &Patch::Apply(&crd))
            .await?;
        wait_for(Duration::from_secs(30), || async {
            let c = api.get(&name).await?;
            Ok(c.status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True")))
        })
        .await
        .with_context(|| format!("CRD {name} not established"))?;
    }
    Ok(())
}

/// The STS roles every test may use: e2e-admin trusts the `terraform` ServiceAccount of any
/// `e2e-*` namespace; e2e-network trusts e2e-admin sessions; e2e-audit also demands an
/// external id; e2e-irsa trusts the `irsa` ServiceAccount (the consumer tests' IRSA stand-in).
pub fn sts_config() -> StsConfig {
    let yaml = format!(
        r#"
account: "{ACCOUNT}"
min_session_seconds: {MIN_SESSION}
max_chained_session_seconds: 3600
roles:
  - arn: {ADMIN_ROLE}
    max_session_seconds: 3600
    web_identity:
      audiences: [sts.amazonaws.com]
      subjects: ["system:serviceaccount:e2e-*:terraform"]
  - arn: {NETWORK_ROLE}
    max_session_seconds: 3600
    trusted_roles: [{ADMIN_ROLE}]
  - arn: {AUDIT_ROLE}
    max_session_seconds: 3600
    trusted_roles: [{ADMIN_ROLE}]
    external_id: audit-ext-id
  - arn: {IRSA_ROLE}
    max_session_seconds: 3600
    web_identity:
      audiences: [sts.amazonaws.com]
      subjects: ["system:serviceaccount:e2e-*:irsa"]
"#
    );
    match StsConfig::from_yaml_str(&yaml) {
        Ok(c) => c,
        Err(e) => panic!("bad test STS config: {e:#}"),
    }
}

/// A local STS that verifies tokens against the control plane's issuer.
pub fn start_sts(cp: &ControlPlane) -> LocalSts {
    let issuer = OidcIssuer {
        url: cp.issuer().to_owned(),
        ca_pem: cp.ca_pem().to_owned(),
    };
    match LocalSts::start(sts_config(), issuer) {
        Ok(s) => s,
        Err(e) => panic!("local STS failed to start: {e:#}"),
    }
}

/// A controller process. Killed on drop, and by the kernel if the test process dies.
pub struct ControllerProcess {
    child: Child,
    pub log: PathBuf,
    pub admin: String,
    /// Where `/metrics` is served (plain HTTP unless a test asks for HTTPS).
    pub metrics: String,
    _dir: tempfile::TempDir,
}

impl ControllerProcess {
    /// Starts the real binary against `cp` as the chart's ServiceAccount, with the chart's
    /// RBAC and admission policies ([`chart_controller_kubeconfig`]), watching `namespace`,
    /// calling `sts_endpoint`. With `--lease-namespace NS` in `extra` the controller is also
    /// granted Leases in NS (the chart grants them only in its release namespace).
    pub fn start(cp: &ControlPlane, namespace: &str, sts_endpoint: &str, extra: &[&str]) -> Result<Self> {
        let kubeconfig = chart_controller_kubeconfig(cp)?.display().to_string();
        grant_leases(cp, extra)?;
        Self::start_with_kubeconfig(&kubeconfig, namespace, sts_endpoint, extra)
    }

    /// Like [`Self::start`], as the cluster admin: no RBAC limit, no admission policy on the
    /// controller's writes (so it is started with `--allow-unenforced-admission`). Only where
    /// the chart cannot stand (see each caller).
    #[allow(dead_code)]
    pub fn start_as_admin(cp: &ControlPlane, namespace: &str, sts_endpoint: &str, extra: &[&str]) -> Result<Self> {
        let kubeconfig = cp.kubeconfig_path().display().to_string();
        let allow = [("ATMOS_AUTH_ALLOW_UNENFORCED_ADMISSION", "true")];
        Self::spawn(&kubeconfig, Some(namespace), sts_endpoint, extra, &allow)
    }

    /// Like [`Self::start`], with another identity's kubeconfig; an empty `namespace`
    /// watches every namespace.
    pub fn start_with_kubeconfig(
        kubeconfig: &str,
        namespace: &str,
        sts_endpoint: &str,
        extra: &[&str],
    ) -> Result<Self> {
        let scope = (!namespace.is_empty()).then_some(namespace);
        Self::spawn(kubeconfig, scope, sts_endpoint, extra, &[])
    }

    /// Like [`Self::start`], watching every namespace (only on a private control plane: it
    /// would reconcile other tests' Identities).
    #[allow(dead_code)]
    pub fn start_cluster_wide(cp: &ControlPlane, sts_endpoint: &str) -> Result<Self> {
        let kubeconfig = chart_controller_kubeconfig(cp)?.display().to_string();
        Self::spawn(&kubeconfig, None, sts_endpoint, &[], &[])
    }

    /// Like [`Self::start`], with environment variables (`RUST_LOG` among them) set.
    pub fn start_with_env(
        cp: &ControlPlane,
        namespace: &str,
        sts_endpoint: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let kubeconfig = chart_controller_kubeconfig(cp)?.display().to_string();
        grant_leases(cp, extra)?;
        Self::spawn(&kubeconfig, Some(namespace), sts_endpoint, extra, env)
    }

    fn spawn(
        kubeconfig: &str,
        namespace: Option<&str>,
        sts_endpoint: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("controller.log");
        let port = free_port()?;
        let admin = format!("127.0.0.1:{port}");
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"));
        cmd.args([
            "run",
            "--log-format",
            "json",
            "--log-level",
            "atmos_auth_controller=debug,info",
        ])
        .args(["--kubeconfig", kubeconfig])
        .args(["--sts-endpoint", sts_endpoint, "--admin-addr", &admin])
        .args(namespace.map(|ns| ["--namespace", ns]).into_iter().flatten())
        .args(extra)
        .env("ATMOS_AUTH_TEST_MIN_SESSION_SECONDS", MIN_SESSION.to_string())
        // The tests read /metrics in plain HTTP; tests/e2e/metrics_auth.rs turns HTTPS on.
        .env("ATMOS_AUTH_METRICS_ADDR", &metrics)
        .env("ATMOS_AUTH_METRICS_PLAIN", "true")
        // The admission policies of the chart release the controllers run as.
        .env("ATMOS_AUTH_ADMISSION_POLICY_PREFIX", CHART_FULLNAME)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the child when
        // its parent thread exits. The spawning thread lives as long as the test process
        // (see `spawner`).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = spawner(cmd)?;
        Ok(Self {
            child,
            log,
            admin,
            metrics,
            _dir: dir,
        })
    }

    /// The process id (for benches/scale.rs, which reads its CPU time and peak memory).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The controller's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> Result<bool> {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("controller did not stop within 20 s of SIGTERM")
    }

    /// Waits up to `timeout` for the process to exit on its own; its success, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<bool>> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status.success()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(None)
    }

    /// SIGKILL, as a crashed node would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET on the admin server (`/metrics`: on the metrics server, plain in these tests).
    pub async fn admin_get(&self, path: &str) -> Result<(u16, String)> {
        let at = if path == "/metrics" { &self.metrics } else { &self.admin };
        let resp = reqwest::Client::new().get(format!("http://{at}{path}")).send().await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns children from one thread that never exits, so PR_SET_PDEATHSIG fires only when
/// the whole test process dies.
fn spawner(cmd: Command) -> Result<Child> {
    use std::sync::Mutex;
    use std::sync::mpsc::{Sender, channel};
    type Job = (Command, Sender<std::io::Result<Child>>);
    static TX: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = channel();
    tx.lock()
        .map_err(|_| anyhow::anyhow!("spawner poisoned"))?
        .send((cmd, reply_tx))?;
    Ok(reply_rx.recv()??)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The usual test setup: namespace `e2e-<name>` with a `terraform` ServiceAccount, a
/// verifying STS, and a controller watching that namespace.
pub struct Scenario {
    pub cp: &'static ControlPlane,
    pub client: Client,
    pub ns: String,
    pub sts: LocalSts,
    pub controller: ControllerProcess,
}

impl Scenario {
    pub async fn start(name: &str) -> Result<Self> {
        let cp = control_plane();
        let client = cp.client().await?;
        let ns = namespace(&client, name).await?;
        let sts = start_sts(cp);
        let controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
        Ok(Self {
            cp,
            client,
            ns,
            sts,
            controller,
        })
    }
}

/// `kubectl ARGS` as the admin, with optional stdin; stdout, or an error with stderr.
pub fn kubectl(cp: &ControlPlane, args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = cp
        .command("kubectl")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Release and namespace of the chart whose ServiceAccount, RBAC and admission policies the
/// controllers of [`ControllerProcess::start`] run with.
pub const CHART_RELEASE: &str = "e2e";
pub const CHART_NAMESPACE: &str = "e2e-controller-system";
/// The chart's ServiceAccount of release [`CHART_RELEASE`].
pub const CHART_SERVICE_ACCOUNT: &str = "e2e-atmos-auth-controller";
/// The full name of release [`CHART_RELEASE`]: its admission policies' prefix.
pub const CHART_FULLNAME: &str = "e2e-atmos-auth-controller";

/// A kubeconfig with a token of the chart's ServiceAccount, after installing the chart on
/// `cp` (once per control plane): release [`CHART_RELEASE`] in [`CHART_NAMESPACE`], the CRDs
/// left to [`install_crds`], token rights for every ServiceAccount (each test has its own
/// namespaces), admission policies on. Waits until RBAC and the Secret policy are in force,
/// so no controller starts into a 403 it would take for a missing grant.
pub fn chart_controller_kubeconfig(cp: &ControlPlane) -> Result<PathBuf> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    // Failures too: every test of a control plane would otherwise wait for the same timeout.
    static INSTALLED: OnceLock<Mutex<HashMap<PathBuf, Result<PathBuf, String>>>> = OnceLock::new();
    let mut installed = INSTALLED
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| anyhow::anyhow!("chart install map poisoned"))?;
    let key = cp.kubeconfig_path().to_path_buf();
    let result = installed
        .entry(key)
        .or_insert_with(|| install_chart(cp).map_err(|e| format!("{e:#}")));
    result
        .clone()
        .map_err(|e| anyhow::anyhow!("installing the chart for the e2e controllers: {e}"))
}

fn install_chart(cp: &ControlPlane) -> Result<PathBuf> {
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {CHART_NAMESPACE}}}\n");
    kubectl(cp, &["apply", "--server-side", "-f", "-"], Some(&namespace))?;
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/atmos-auth-controller");
    let rendered = atmos_auth_testenv::helm::template(
        &chart,
        CHART_RELEASE,
        CHART_NAMESPACE,
        &[
            "--set",
            "crds.install=false",
            "--set",
            "rbac.tokenCreator.clusterWide=true",
        ],
    )?;
    kubectl(
        cp,
        &["apply", "--server-side", "-n", CHART_NAMESPACE, "-f", "-"],
        Some(&rendered),
    )?;
    let user = format!("system:serviceaccount:{CHART_NAMESPACE}:{CHART_SERVICE_ACCOUNT}");
    let deadline = Instant::now() + Duration::from_secs(60);
    // What is not in force yet, if anything.
    let missing = || -> Option<String> {
        // (`kubectl auth can-i` reads `serviceaccounts/token` as a name: --subresource.)
        for check in [
            &["create", "serviceaccounts", "--subresource=token"][..],
            &["patch", "secrets"],
            &["watch", "identities.auth.atmos.tools"],
        ] {
            let mut args = vec!["auth", "can-i"];
            args.extend(check);
            args.extend(["--as", &user, "-n", "default"]);
            if let Err(e) = kubectl(cp, &args, None) {
                return Some(format!("{}: {e:#}", check.join(" ")));
            }
        }
        // An unlabelled Secret of the controller's: refused once the policy is loaded.
        let probe = "apiVersion: v1\nkind: Secret\nmetadata: {name: e2e-policy-probe}\n";
        let args = [
            "create",
            "--dry-run=server",
            "-n",
            CHART_NAMESPACE,
            "--as",
            &user,
            "-f",
            "-",
        ];
        match kubectl(cp, &args, Some(probe)) {
            Err(e) if format!("{e:#}").contains("controller-secrets") => None,
            Err(e) => Some(format!("the Secret policy: {e:#}")),
            Ok(_) => Some("the Secret policy: an unlabelled Secret was admitted".to_owned()),
        }
    };
    while let Some(what) = missing() {
        if Instant::now() > deadline {
            bail!("the chart's RBAC or Secret admission policy not in force after 60 s: {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Long enough for any test run; never printed (kubectl's stdout is only returned).
    let token = kubectl(
        cp,
        &[
            "create",
            "token",
            CHART_SERVICE_ACCOUNT,
            "-n",
            CHART_NAMESPACE,
            "--duration",
            "24h",
        ],
        None,
    )?;
    cp.token_kubeconfig("e2e-chart-controller", token.trim())
}

/// With `--lease-namespace NS` in a controller's arguments: a Role and RoleBinding in NS that
/// let the chart's ServiceAccount use Leases there, as the chart's own Lease Role does in its
/// release namespace (tests elect in their own namespace, so replicas of parallel tests never
/// share a Lease).
fn grant_leases(cp: &ControlPlane, extra: &[&str]) -> Result<()> {
    let Some(ns) = extra
        .iter()
        .position(|a| *a == "--lease-namespace")
        .and_then(|i| extra.get(i + 1))
    else {
        return Ok(());
    };
    let grant = format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: e2e-leader-election, namespace: {ns}}}
rules:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [create, get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: e2e-leader-election, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: e2e-leader-election}}
subjects:
  - {{kind: ServiceAccount, name: {CHART_SERVICE_ACCOUNT}, namespace: {CHART_NAMESPACE}}}
"#
    );
    kubectl(cp, &["apply", "--server-side", "-f", "-"], Some(&grant))?;
    let user = format!("system:serviceaccount:{CHART_NAMESPACE}:{CHART_SERVICE_ACCOUNT}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while kubectl(
        cp,
        &[
            "auth",
            "can-i",
            "patch",
            "leases.coordination.k8s.io",
            "--as",
            &user,
            "-n",
            ns,
        ],
        None,
    )
    .is_err()
    {
        if Instant::now() > deadline {
            bail!("the Lease grant in {ns} not in force after 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// What a namespace admin applies so the controller's ServiceAccount `controller_sa` (in
/// `controller_ns`) may mint tokens for `terraform` in `ns`, and for nothing else.
pub fn terraform_token_grant(ns: &str, controller_sa: &str, controller_ns: &str) -> String {
    format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: atmos-auth-token-terraform, namespace: {ns}}}
rules:
  - apiGroups: [""]
    resources: [serviceaccounts/token]
    resourceNames: [terraform]
    verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: atmos-auth-token-terraform, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: atmos-auth-token-terraform}}
subjects:
  - {{kind: ServiceAccount, name: {controller_sa}, namespace: {controller_ns}}}
"#
    )
}

/// A kubeconfig named `name` that authenticates as ServiceAccount `ns/sa` with a token of
/// `seconds` (the chart's controller identity, not cluster admin).
pub async fn service_account_kubeconfig(
    cp: &ControlPlane,
    client: &Client,
    (ns, sa): (&str, &str),
    name: &str,
    seconds: i64,
) -> Result<PathBuf> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(seconds),
            ..Default::default()
        },
        ..Default::default()
    };
    let tr = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &Default::default(), &req)
        .await?;
    let token = tr.status.map(|s| s.token).unwrap_or_default();
    cp.token_kubeconfig(name, &token)
}

/// The last lines of a controller log, for a failure message.
pub fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    format!(
        "controller log (tail):\n{}",
        lines[lines.len().saturating_sub(30)..].join("\n")
    )
}

/// A fresh namespace `e2e-<name>` with a `terraform` ServiceAccount.
pub async fn namespace(client: &Client, name: &str) -> Result<String> {
    let ns = format!("e2e-{name}");
    let nss: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?;
    nss.create(&PostParams::default(), &obj)
        .await
        .with_context(|| format!("creating namespace {ns}"))?;
    service_account(client, &ns, "terraform").await?;
    Ok(ns)
}

/// A token of ServiceAccount `ns/sa` for the API server (an hour).
pub async fn service_account_token(client: &Client, ns: &str, sa: &str) -> Result<String> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let tr = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &Default::default(), &req)
        .await?;
    Ok(tr.status.map(|s| s.token).unwrap_or_default())
}

/// Creates a ServiceAccount.
pub async fn service_account(client: &Client, ns: &str, name: &str) -> Result<()> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &sa).await?;
    Ok(())
}

/// Server-side applies YAML documents (AuthProfile / Identity / anything typed as JSON).
pub async fn apply(client: &Client, ns: &str, yaml: &str) -> Result<()> {
    // The project's one YAML reader and budget (a bench applies 10 000 Identities at once).
    let docs: Vec<serde_json::Value> = atmos_auth_controller::util::yaml::documents(
        "manifest",
        yaml,
        atmos_auth_controller::util::yaml::Schema::Kubernetes,
    )?;
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let pp = PatchParams::apply("e2e-test").force();
        match kind.as_str() {
            "AuthProfile" => {
                Api::<AuthProfile>::namespaced(client.clone(), ns)
                    .patch(&name, &pp, &Patch::Apply(&doc))
                    .await?;
            }
            "Identity" => {
                Api::<Identity>::namespaced(client.clone(), ns)
                    .patch(&name, &pp, &Patch::Apply(&doc))
                    .await?;
            }
            "Secret" => {
                Api::<Secret>::namespaced(client.clone(), ns)
                    .patch(&name, &pp, &Patch::Apply(&doc))
                    .await?;
            }
            other => bail!("apply: unsupported kind {other}"),
        }
    }
    Ok(())
}

/// Polls `f` every 200 ms until it returns true or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match f().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(format!("{e:#}")),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} (last error: {last:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Identity's Ready condition as (status, reason, message).
pub fn ready(identity: &Identity) -> Option<(String, String, String)> {
    identity
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until the Identity's Ready condition has `reason`; returns the Identity.
pub async fn wait_reason(client: &Client, ns: &str, name: &str, reason: &str, timeout: Duration) -> Result<Identity> {
    let api: Api<Identity> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + timeout;
    loop {
        let i = api.get(name).await?;
        let r = ready(&i);
        if r.as_ref().is_some_and(|(_, rs, _)| rs == reason) {
            return Ok(i);
        }
        if Instant::now() > deadline {
            bail!("Identity {ns}/{name} never reached reason {reason} in {timeout:?}; last Ready: {r:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `issued-at` annotation of a Secret the controller wrote (changes on every renewal).
pub async fn issued_at(secrets: &Api<Secret>, name: &str) -> Result<String> {
    let m = secrets.get_metadata(name).await?;
    Ok(m.metadata
        .annotations
        .and_then(|a| a.get(atmos_auth_controller::output::labels::ISSUED_AT).cloned())
        .unwrap_or_default())
}

/// A Secret's data as strings.
pub async fn secret_data(client: &Client, ns: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let s = Api::<Secret>::namespaced(client.clone(), ns).get(name).await?;
    Ok(s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect())
}

/// The credentials in a `process`-format Secret, as `(key id, secret, token, expiration)`.
pub fn process_credentials(data: &BTreeMap<String, String>) -> Result<(String, String, String, String)> {
    let json: serde_json::Value = serde_json::from_str(
        data.get("credential_process.json")
            .context("no credential_process.json")?,
    )?;
    let s = |k: &str| json[k].as_str().map(str::to_owned).with_context(|| format!("no {k}"));
    Ok((
        s("AccessKeyId")?,
        s("SecretAccessKey")?,
        s("SessionToken")?,
        s("Expiration")?,
    ))
}

/// A real aws-sdk-sts client for `endpoint`; signed with `credentials` when given.
pub fn sts_client(endpoint: &str, credentials: Option<(&str, &str, &str)>) -> aws_sdk_sts::Client {
    use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut conf = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .http_client(http);
    if let Some((key, secret, token)) = credentials {
        conf = conf.credentials_provider(Credentials::new(key, secret, Some(token.to_owned()), None, "e2e"));
    }
    aws_sdk_sts::Client::from_conf(conf.build())
}

/// `GetCallerIdentity` with the given credentials through the real aws-sdk-sts, signed.
pub async fn caller_arn(endpoint: &str, key: &str, secret: &str, token: &str) -> Result<String> {
    let out = sts_client(endpoint, Some((key, secret, token)))
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "GetCallerIdentity failed: {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            )
        })?;
    out.arn.context("no ARN")
}
