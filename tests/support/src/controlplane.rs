//! A local Kubernetes control plane for tests: etcd, kube-apiserver and a trimmed
//! kube-controller-manager as plain processes on loopback (no kubelet, no containers).
//!
//! # Cleanup
//!
//! Every control plane gets a tiny supervisor process (`sh`, in its own process group so a
//! terminal Ctrl-C does not reach it) that reads child pids from a pipe whose write end only
//! the test process holds (close-on-exec, so no child inherits it). When that pipe reaches
//! EOF — the test process exited normally, panicked, or was killed with SIGKILL — the
//! supervisor kills the children and deletes the temp dir. `Drop` does the same eagerly for
//! instances that are dropped, then tells the supervisor to stand down.
//!
//! Why not `PR_SET_PDEATHSIG`: it fires when the *thread* that spawned the child exits (for
//! example when one `#[tokio::test]` runtime shuts down), not the process, and it cannot
//! delete the temp dir. The supervisor covers every way the test process can end, and
//! [`shared`] needs it because statics are never dropped.

use std::{
    fs,
    future::Future,
    io::Write,
    net::TcpListener,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{ClusterRoleBinding, RoleRef, Subject},
};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::certs::{Ca, CertKey, generate_key_pair};

mod restart;

/// The Kubernetes release `build-binaries.sh` builds.
pub const K8S_VERSION: &str = "v1.35.4";

/// How long each startup phase (apiserver ready, controller-manager working) may take.
/// Generous: two cores are often shared with a cargo build.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Kills the registered pids and deletes `$1` once stdin reaches EOF; a `done` line means the
/// owner already cleaned up. Only processes whose command line still mentions the temp dir
/// are killed, so a recycled pid is never hit.
const SUPERVISOR_SCRIPT: &str = r#"
trap '' INT HUP
dir=$1 pids=
while read -r line; do
  [ "$line" = done ] && exit 0
  pids="$pids $line"
done
ours() { grep -qaF -- "$dir" "/proc/$1/cmdline" 2>/dev/null; }
for pid in $pids; do ours "$pid" && kill -KILL "$pid"; done
for pid in $pids; do n=0; while ours "$pid" && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; done
rm -rf -- "$dir"
"#;

/// What the API server's audit log records: every request of a ServiceAccount (a
/// controller running with the chart's token, as in a cluster), at Metadata level, once
/// answered. Nothing of the admin or the control plane's own components, so the log stays
/// small; see [`ControlPlane::audit_events`].
const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"#;

/// One audited request (the fields the tests count by).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// `system:serviceaccount:NS:NAME`.
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `patch`, `update`, `delete`, ...
    pub verb: String,
    /// `secrets`, `identities`, `events`, `serviceaccounts`, ... (empty for non-resource URLs).
    pub resource: String,
    /// `status`, `token`, ... or empty.
    pub subresource: String,
    /// The object's namespace, if any.
    pub namespace: String,
    /// The object's name, if any.
    pub name: String,
    /// HTTP status of the answer.
    pub code: u16,
    /// When the API server received it (RFC 3339, microseconds).
    pub received: String,
}

/// Extra flags for the control plane's processes, appended after ours (a repeated flag's
/// last value wins).
#[derive(Clone, Debug, Default)]
pub struct ControlPlaneOptions {
    /// e.g. `--api-audiences=...` or `--feature-gates=...`.
    pub apiserver_args: Vec<String>,
    pub controller_manager_args: Vec<String>,
}

/// A running control plane. Dropping it kills the processes and removes its temp dir.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    bin_dir: PathBuf,
    ca: Ca,
    server_url: String,
    kubeconfig: PathBuf,
    config: kube::Config,
    startup_time: Duration,
    procs: Vec<Proc>,
    supervisor: Supervisor,
}

struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// Its flags, for [`ControlPlane::start_process`].
    args: Vec<String>,
}

struct Supervisor {
    child: Child,
    pids: ChildStdin,
}

/// The control plane shared by all tests of one test binary, started on first use.
///
/// Safe to call from any thread or `#[tokio::test]` runtime: startup runs on its own thread
/// and runtime, and the processes belong to no runtime. Never dropped; the supervisor tears
/// it down when the test process exits. Panics if it cannot start (every caller then fails
/// with the same message instead of retrying).
pub fn shared() -> &'static ControlPlane {
    static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
    match SHARED.get_or_init(|| ControlPlane::start().map_err(|e| format!("{e:#}"))) {
        Ok(control_plane) => control_plane,
        Err(e) => panic!("the shared control plane failed to start: {e}"),
    }
}

impl ControlPlane {
    pub fn start() -> Result<Self> {
        Self::start_with(ControlPlaneOptions::default())
    }

    /// Blocks until the apiserver is ready and the controller-manager has created the
    /// `default` ServiceAccount. Retries twice if a picked port was taken meanwhile.
    pub fn start_with(options: ControlPlaneOptions) -> Result<Self> {
        let mut attempt = 1;
        loop {
            let opts = options.clone();
            // A fresh thread and runtime: callers may be inside a runtime (block_on would
            // panic there) and must not own anything the control plane needs later.
            let result = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(Self::launch(opts))
            })
            .join()
            .map_err(|_| anyhow!("control plane startup thread panicked"))?;
            match result {
                Err(e) if attempt < 3 && format!("{e:#}").contains("address already in use") => {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn launch(options: ControlPlaneOptions) -> Result<Self> {
        let started = Instant::now();
        let bin_dir = k8s_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("atmos-auth-cp-").tempdir()?;
        // First, so the dir is removed even if we die during the steps below.
        let supervisor = Supervisor::spawn(dir.path())?;
        let d = dir.path().to_path_buf();
        let file = |name: &str| d.join(name).to_string_lossy().into_owned();

        let [etcd_port, peer_port, api_port, kcm_port] = free_ports()?;
        let server_url = format!("https://127.0.0.1:{api_port}");
        let ca = Ca::new("atmos-auth-test-ca")?;
        let serving = ca.issue_server(
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )?;
        let sa_key = generate_key_pair()?;
        write(&d.join("ca.crt"), ca.cert_pem())?;
        write(&d.join("apiserver.crt"), &serving.cert_pem)?;
        write(&d.join("apiserver.key"), &serving.key_pem)?;
        write(&d.join("sa.key"), &sa_key.private_pem)?;
        write(&d.join("sa.pub"), &sa_key.public_pem)?;
        let admin = ca.issue_client("admin", &["system:masters"])?;
        let kubeconfig = d.join("admin.kubeconfig");
        write_kubeconfig(
            &kubeconfig,
            &server_url,
            ca.cert_pem(),
            "admin",
            &Credentials::Cert(&admin),
        )?;
        let kcm = ca.issue_client("system:kube-controller-manager", &[])?;
        write_kubeconfig(
            &d.join("kcm.kubeconfig"),
            &server_url,
            ca.cert_pem(),
            "kube-controller-manager",
            &Credentials::Cert(&kcm),
        )?;
        let config = config_from_kubeconfig(&kubeconfig).await?;

        let mut cp = ControlPlane {
            dir,
            bin_dir,
            ca,
            server_url: server_url.clone(),
            kubeconfig,
            config,
            startup_time: Duration::ZERO,
            procs: Vec::new(),
            supervisor,
        };
        // From here on, an error drops `cp`, which kills what was started.

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        cp.spawn(
            "etcd",
            vec![
                "--name=test".into(),
                format!("--data-dir={}", file("etcd")),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=test={peer_url}"),
                // The data is thrown away; fsync would only slow every write.
                "--unsafe-no-fsync".into(),
            ],
        )?;
        // The apiserver would start anyway, but its first etcd dials fail and back off.
        let http = cp.http_client()?;
        let etcd_health = format!("{etcd_url}/health");
        cp.wait_for("etcd /health", "etcd", || {
            let request = http.get(&etcd_health);
            async move { Ok(request.send().await?.status().is_success()) }
        })
        .await?;

        write(&d.join("audit-policy.yaml"), AUDIT_POLICY)?;
        let mut apiserver_args = vec![
            format!("--audit-policy-file={}", file("audit-policy.yaml")),
            format!("--audit-log-path={}", file("audit.log")),
            // No rotation (its default is at 100 MB): counts must see every request.
            "--audit-log-maxsize=100000".into(),
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", file("apiserver")),
            format!("--tls-cert-file={}", file("apiserver.crt")),
            format!("--tls-private-key-file={}", file("apiserver.key")),
            format!("--client-ca-file={}", file("ca.crt")),
            "--authorization-mode=Node,RBAC".into(),
            "--anonymous-auth=true".into(),
            // --api-audiences defaults to the issuer, so tokens for other audiences (such as
            // sts.amazonaws.com) are rejected by the apiserver, as in a real cluster.
            format!("--service-account-issuer={server_url}"),
            // Without it the discovery document points at a non-loopback address.
            format!("--service-account-jwks-uri={server_url}/openid/v1/jwks"),
            format!("--service-account-key-file={}", file("sa.pub")),
            format!("--service-account-signing-key-file={}", file("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            // Endpoints may not point at loopback: the `kubernetes` Service's reconciler
            // would only log errors.
            "--endpoint-reconciler-type=none".into(),
        ];
        apiserver_args.extend(options.apiserver_args);
        cp.spawn("kube-apiserver", apiserver_args)?;

        let readyz = format!("{server_url}/readyz");
        cp.wait_for("kube-apiserver /readyz", "kube-apiserver", || {
            let request = http.get(&readyz);
            async move { Ok(request.send().await?.status().is_success()) }
        })
        .await?;

        let client = kube::Client::try_from(cp.config.clone())?;
        // Anyone may fetch the OIDC discovery document and JWKS, as on EKS.
        bind_cluster_role(
            &client,
            "system:service-account-issuer-discovery",
            "Group",
            "system:unauthenticated",
        )
        .await?;
        // With --use-service-account-credentials=false every loop runs as the controller-
        // manager's own user, whose bootstrap role cannot delete (GC) or publish ConfigMaps.
        bind_cluster_role(&client, "cluster-admin", "User", "system:kube-controller-manager").await?;

        let kcm_kubeconfig = file("kcm.kubeconfig");
        let mut kcm_args = vec![
            format!("--kubeconfig={kcm_kubeconfig}"),
            format!("--authentication-kubeconfig={kcm_kubeconfig}"),
            format!("--authorization-kubeconfig={kcm_kubeconfig}"),
            // We set no front-proxy (requestheader) CA, so don't look for one forever.
            "--authentication-skip-lookup=true".into(),
            "--leader-elect=false".into(),
            // deployment and replicaset: a restart target's restart shows as a new ReplicaSet
            // (its pods are never scheduled: no kubelet here).
            "--controllers=namespace-controller,garbage-collector-controller,deployment-controller,replicaset-controller,\
             serviceaccount-controller,root-ca-certificate-publisher-controller"
                .into(),
            format!("--root-ca-file={}", file("ca.crt")),
            format!("--service-account-private-key-file={}", file("sa.key")),
            "--use-service-account-credentials=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={kcm_port}"),
            format!("--cert-dir={}", file("kcm")),
        ];
        kcm_args.extend(options.controller_manager_args);
        cp.spawn("kube-controller-manager", kcm_args)?;

        let service_accounts = Api::<ServiceAccount>::namespaced(client, "default");
        cp.wait_for("the default ServiceAccount", "kube-controller-manager", || {
            let service_accounts = service_accounts.clone();
            async move { Ok(service_accounts.get_opt("default").await?.is_some()) }
        })
        .await?;

        cp.startup_time = started.elapsed();
        tracing::info!(server = %server_url, dir = %cp.dir().display(), elapsed = ?cp.startup_time, "control plane started");
        eprintln!(
            "atmos-auth-testenv: control plane at {server_url} started in {:.1} s (logs in {})",
            cp.startup_time.as_secs_f64(),
            cp.dir().display()
        );
        Ok(cp)
    }

    /// Admin kubeconfig (embedded certificates).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The CA that signed the serving certificate and all client certificates.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The service-account token issuer; equal to [`Self::server_url`].
    pub fn issuer(&self) -> &str {
        &self.server_url
    }

    /// The API server's audit log (JSON lines; see [`AUDIT_POLICY`]).
    pub fn audit_log(&self) -> PathBuf {
        self.dir().join("audit.log")
    }

    /// Every audited request so far, in order.
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>> {
        let text = fs::read_to_string(self.audit_log()).unwrap_or_default();
        let field = |v: &serde_json::Value, path: &[&str]| {
            path.iter()
                .try_fold(v, |v, k| v.get(*k))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        // The API server may be writing the last line as this reads it: only whole lines
        // (ended by a newline) are events yet.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).context("an audit log line")?;
                Ok(AuditEvent {
                    user: field(&v, &["user", "username"]),
                    verb: field(&v, &["verb"]),
                    resource: field(&v, &["objectRef", "resource"]),
                    subresource: field(&v, &["objectRef", "subresource"]),
                    namespace: field(&v, &["objectRef", "namespace"]),
                    name: field(&v, &["objectRef", "name"]),
                    code: v
                        .pointer("/responseStatus/code")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|c| u16::try_from(c).ok())
                        .unwrap_or(0),
                    received: field(&v, &["requestReceivedTimestamp"]),
                })
            })
            .collect()
    }

    /// Where etcd, kube-apiserver, kube-controller-manager and kubectl live (and helm, once
    /// [`crate::helm`] has built it).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The temp dir: certificates, kubeconfigs, etcd data and one `<process>.log` each.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// Pids of etcd, kube-apiserver and kube-controller-manager (for teardown checks).
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Admin `kube::Config`.
    pub fn config(&self) -> kube::Config {
        self.config.clone()
    }

    /// A new admin client. Async only to require a runtime: a `kube::Client` lives on the
    /// runtime that created it, so make one per test.
    pub async fn client(&self) -> Result<kube::Client> {
        Ok(kube::Client::try_from(self.config())?)
    }

    /// An HTTP client that trusts the CA and sends no credentials (anonymous requests).
    pub fn http_client(&self) -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem().as_bytes())?)
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?)
    }

    /// A kubeconfig for a client certificate with this user name and groups (no RBAC is
    /// granted; bind roles as the test needs).
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> Result<PathBuf> {
        let cert = self.ca.issue_client(user, groups)?;
        let path = self.dir().join(format!("user-{}.kubeconfig", file_safe(user)));
        write_kubeconfig(&path, &self.server_url, self.ca_pem(), user, &Credentials::Cert(&cert))?;
        Ok(path)
    }

    /// A kubeconfig that authenticates with a bearer token, e.g. a ServiceAccount token.
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> Result<PathBuf> {
        let path = self.dir().join(format!("token-{}.kubeconfig", file_safe(name)));
        write_kubeconfig(&path, &self.server_url, self.ca_pem(), name, &Credentials::Token(token))?;
        Ok(path)
    }

    /// `kubectl`, … from [`Self::bin_dir`], with `KUBECONFIG` set to the admin one (for helm,
    /// [`crate::helm::command`]).
    pub fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(tool));
        command.env("KUBECONFIG", &self.kubeconfig);
        command
    }

    fn spawn(&mut self, name: &'static str, args: Vec<String>) -> Result<()> {
        let log = self.dir().join(format!("{name}.log"));
        let out = fs::File::create(&log)?;
        let child = Command::new(self.bin_dir.join(name))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Terminal signals go to the test process only; the supervisor does the rest.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.bin_dir.join(name).display()))?;
        let pid = child.id();
        self.procs.push(Proc { name, child, log, args });
        self.supervisor.watch(pid)
    }

    /// Polls `ready` until it returns true, failing early if a process exits.
    async fn wait_for<F, Fut>(&mut self, what: &str, log_of: &str, mut ready: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        let mut last_error = None;
        loop {
            for proc in &mut self.procs {
                if let Some(status) = proc.child.try_wait()? {
                    bail!(
                        "{} exited ({status}) while waiting for {what}\n{}",
                        proc.name,
                        tail(&proc.log)
                    );
                }
            }
            match ready().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_error = Some(format!("{e:#}")),
            }
            if Instant::now() > deadline {
                let log = self.dir().join(format!("{log_of}.log"));
                bail!(
                    "{what} not ready after {PHASE_TIMEOUT:?} (last error: {})\n{}",
                    last_error.as_deref().unwrap_or("none"),
                    tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for proc in self.procs.iter_mut().rev() {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
        let _ = writeln!(self.supervisor.pids, "done");
        let _ = self.supervisor.child.wait();
        // The TempDir field removes the dir after this.
    }
}

impl Supervisor {
    fn spawn(dir: &Path) -> Result<Self> {
        let mut child = Command::new("sh")
            .args(["-c", SUPERVISOR_SCRIPT, "atmos-auth-cp-supervisor"])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the control plane supervisor (sh)")?;
        let pids = child.stdin.take().context("supervisor stdin")?;
        Ok(Self { child, pids })
    }

    fn watch(&mut self, pid: u32) -> Result<()> {
        writeln!(self.pids, "{pid}").context("registering a pid with the supervisor")
    }
}

/// A `kube::Config` for any kubeconfig file.
pub async fn config_from_kubeconfig(path: &Path) -> Result<kube::Config> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
}

/// The directory with the control plane binaries: `$ATMOS_AUTH_K8S_BIN`, else what
/// `tests/controlplane/build-binaries.sh` prints (it builds them on first use, minutes).
/// Helm is not among them unless [`crate::helm`] built it: `cargo dev` never needs it.
pub fn k8s_bin_dir() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(dir) = std::env::var_os("ATMOS_AUTH_K8S_BIN") {
        return Ok(dir.into());
    }
    DIR.get_or_init(|| build_binaries("control-plane", "kube-apiserver").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Runs `build-binaries.sh TARGET` (`control-plane`, `helm`, `registry` or `all`) and returns the
/// directory it prints, checked to hold `expected`.
pub(crate) fn build_binaries(target: &str, expected: &str) -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../controlplane/build-binaries.sh");
    ensure!(
        script.is_file(),
        "{} not found (this crate was built elsewhere?); set ATMOS_AUTH_K8S_BIN",
        script.display()
    );
    // Test binaries run in parallel; one build at a time (the script is not re-entrant).
    let lock = std::env::temp_dir().join("atmos-auth-build-binaries.lock");
    let output = Command::new("flock")
        .arg(&lock)
        .arg("bash")
        .arg(&script)
        .arg(target)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        output.status.success(),
        "{} {target} failed: {}",
        script.display(),
        output.status
    );
    let dir = PathBuf::from(String::from_utf8(output.stdout)?.trim());
    ensure!(dir.join(expected).is_file(), "no {expected} in {}", dir.display());
    Ok(dir)
}

enum Credentials<'a> {
    Cert(&'a CertKey),
    Token(&'a str),
}

fn write_kubeconfig(path: &Path, server: &str, ca_pem: &str, user: &str, credentials: &Credentials) -> Result<()> {
    let credentials = match credentials {
        Credentials::Cert(cert) => format!(
            "client-certificate-data: {}\n    client-key-data: {}",
            B64.encode(&cert.cert_pem),
            B64.encode(&cert.key_pem)
        ),
        Credentials::Token(token) => format!("token: {}", serde_json::to_string(token)?),
    };
    let user = serde_json::to_string(user)?;
    write(
        path,
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: atmos-auth-test\n  cluster:\n    \
             server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  \
             user:\n    {credentials}\ncontexts:\n- name: atmos-auth-test\n  context:\n    \
             cluster: atmos-auth-test\n    user: {user}\ncurrent-context: atmos-auth-test\n",
            ca = B64.encode(ca_pem),
        ),
    )
}

async fn bind_cluster_role(client: &kube::Client, role: &str, kind: &str, subject: &str) -> Result<()> {
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("atmos-auth-testenv:{}", file_safe(subject))),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: kind.into(),
            name: subject.into(),
            namespace: None,
        }]),
    };
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .with_context(|| format!("binding {role} to {kind} {subject}"))?;
    Ok(())
}

fn free_ports<const N: usize>() -> Result<[u16; N]> {
    // Hold all listeners at once so the ports differ; the OS does not hand them out again
    // right away, and a rare clash is retried by `start_with`.
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The last lines of a log, for error messages.
fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(40);
    format!("--- last lines of {} ---\n{}", log.display(), lines[start..].join("\n"))
}
