//! The controller's image, built by scripts/build-image.sh without a container engine, and
//! proven in the image rather than on the host: the binary has no interpreter and needs no
//! shared library; the image goes through a real registry (distribution) and comes back with
//! crane; its unpacked filesystem is the root of a chroot in which its entry point runs as its
//! user with only what a pod would have mounted (ServiceAccount token and CA, the hosts file,
//! the `KUBERNETES_SERVICE_*` variables) against the local control plane and a TLS local STS
//! that it reaches by a name only the image's hosts file knows; until an Identity is Ready.
//!
//! `ATMOS_AUTH_IMAGE_PROFILE` picks the binary's cargo profile: `image-test` (default: the
//! release image's build without the optimisation) or `release` (what ships, minutes more).

#[allow(dead_code)]
#[path = "../e2e/fixture.rs"]
mod fixture;
#[allow(dead_code)]
mod spec;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use atmos_auth_testenv::certs::Ca;
use atmos_auth_testenv::sts::{LocalSts, OidcIssuer};
use serde_json::Value;

use fixture::*;
use spec::{env_value, in_root, repo};

/// The name the STS is reached by: in the image's hosts file only.
const STS_HOST: &str = "sts.test";

#[tokio::test]
async fn the_image_pulled_from_a_registry_runs_as_its_user_and_issues_credentials() -> Result<()> {
    let bin = registry_binaries()?;
    let crane = bin.join("crane");
    let registry = Registry::start(&bin)?;
    let reference = format!("127.0.0.1:{}/atmos-auth-controller:test", registry.port);
    build_image(&reference)?;

    // Back from the registry: its config and its filesystem.
    let config: Value = serde_json::from_slice(&run(Command::new(&crane).args(["config", &reference]))?)?;
    let c = &config["config"];
    assert_eq!(c["User"], spec::user(), "the user");
    let entrypoint: Vec<String> = serde_json::from_value(c["Entrypoint"].clone())?;
    let cmd: Vec<String> = serde_json::from_value(c["Cmd"].clone())?;
    assert_eq!(entrypoint, [env_value("IMAGE_BINARY")], "the entry point");
    assert_eq!(cmd, [env_value("IMAGE_CMD")], "the default arguments");
    let labels: std::collections::BTreeMap<String, String> = serde_json::from_value(c["Labels"].clone())?;
    assert_eq!(labels, spec::labels(), "the labels");
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );

    let dir = tempfile::tempdir()?;
    let root = dir.path().join("rootfs");
    std::fs::create_dir(&root)?;
    let tar = dir.path().join("fs.tar");
    run(Command::new(&crane).args(["export", &reference]).arg(&tar))?;
    run(Command::new("tar").arg("-xpf").arg(&tar).arg("-C").arg(&root))?;
    let report = sizes(&crane, &reference, &tar)?;
    eprintln!("image: {report}");

    let binary = in_root(&root, &env_value("IMAGE_BINARY"));
    assert_static(&binary)?;
    check_files(&root)?;

    // What a pod of the chart would have: its ServiceAccount's token and the cluster CA, the
    // hosts file kubelet writes, the Service variables. The STS's CA is added to the image's
    // bundle, as a ConfigMap mounted over it would be.
    let cp = control_plane();
    let client = cp.client().await?;
    chart_controller_kubeconfig(cp)?;
    let ns = namespace(&client, "image").await?;
    let ca = Ca::new("image test STS CA")?;
    let sts = LocalSts::start_tls(
        sts_config(),
        OidcIssuer {
            url: cp.issuer().to_owned(),
            ca_pem: cp.ca_pem().to_owned(),
        },
        &ca.issue_server(STS_HOST, &[STS_HOST])?,
    )?;
    let endpoint = format!("https://{STS_HOST}:{}", sts.addr().port());
    mount_pod_files(cp, &root, ca.cert_pem())?;
    let mut controller = ImageController::start(&root, &entrypoint, &cmd, cp.server_url(), &ns, &endpoint)?;

    apply(&client, &ns, &manifests(&endpoint)).await?;
    let issued = wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(90)).await;
    let log = controller.stop();
    issued.with_context(|| log_tail(&log))?;
    let data = secret_data(&client, &ns, "aws-admin").await?;
    let from_sts = sts.secrets_seen();
    assert!(
        data.values().any(|v| from_sts.iter().any(|s| v.contains(s.as_str()))),
        "the Secret holds a session the TLS STS issued; keys: {:?}",
        data.keys()
    );
    Ok(())
}

/// `tests/controlplane/build-binaries.sh registry`: distribution's `registry` and `crane`,
/// built from Go modules once per machine (one build at a time, as the control plane's).
fn registry_binaries() -> Result<PathBuf> {
    let lock = std::env::temp_dir().join("atmos-auth-build-binaries.lock");
    let out = run(Command::new("flock")
        .arg(&lock)
        .arg("bash")
        .arg(repo().join("tests/controlplane/build-binaries.sh"))
        .arg("registry")
        .stderr(Stdio::inherit()))?;
    let dir = PathBuf::from(String::from_utf8(out)?.trim());
    for tool in ["registry", "crane"] {
        ensure!(dir.join(tool).is_file(), "no {tool} in {}", dir.display());
    }
    Ok(dir)
}

/// A distribution registry on a free loopback port, plain HTTP, storage in a temp dir.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(bin: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n",
                dir.path().join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(bin.join("registry"))
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut registry = Self { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = registry.child.try_wait()? {
                bail!("the registry exited ({status}): {}", registry.log());
            }
            ensure!(Instant::now() < deadline, "the registry is not listening after 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(registry)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's command, pushing to `reference`.
fn build_image(reference: &str) -> Result<()> {
    let profile = std::env::var("ATMOS_AUTH_IMAGE_PROFILE").unwrap_or_else(|_| "image-test".to_owned());
    let start = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/build-image.sh"))
        .args(["--profile", &profile, "--push", reference])
        .stderr(Stdio::inherit());
    // What cargo set for this test binary: build scripts that watch such variables (ring's)
    // would rebuild, and everything above them, whenever the command alternates between a
    // shell and this test.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
        ]
        .iter()
        .any(|p| key.starts_with(p))
        {
            cmd.env_remove(key.as_ref());
        }
    }
    run(&mut cmd)?;
    eprintln!("image built ({profile}) and pushed in {:?}", start.elapsed());
    Ok(())
}

/// No program interpreter, no shared library: the binary runs on an empty base.
fn assert_static(binary: &Path) -> Result<()> {
    let headers = String::from_utf8(run(Command::new("readelf").arg("--program-headers").arg(binary))?)?;
    let dynamic = String::from_utf8(run(Command::new("readelf").arg("--dynamic").arg(binary))?)?;
    assert!(
        !headers.contains("INTERP"),
        "the image's binary has a program interpreter:\n{headers}"
    );
    assert!(
        !dynamic.contains("NEEDED"),
        "the image's binary needs shared libraries:\n{dynamic}"
    );
    Ok(())
}

/// The user's entries, the CA bundle (with the root AWS's STS endpoints chain to), the licences.
fn check_files(root: &Path) -> Result<()> {
    let (uid, gid, name) = (
        env_value("IMAGE_UID"),
        env_value("IMAGE_GID"),
        env_value("IMAGE_USER_NAME"),
    );
    let passwd = std::fs::read_to_string(in_root(root, "/etc/passwd"))?;
    assert!(
        passwd.lines().any(|l| l.starts_with(&format!("{name}:x:{uid}:{gid}:"))),
        "/etc/passwd: {passwd}"
    );
    let group = std::fs::read_to_string(in_root(root, "/etc/group"))?;
    assert!(
        group.lines().any(|l| l == format!("{name}:x:{gid}:")),
        "/etc/group: {group}"
    );

    let bundle = std::fs::read_to_string(in_root(root, &env_value("IMAGE_CA_BUNDLE")))?;
    assert!(bundle.matches("BEGIN CERTIFICATE").count() > 100, "a full CA bundle");
    let amazon = std::fs::read_to_string("/usr/share/ca-certificates/mozilla/Amazon_Root_CA_1.crt")
        .context("Debian's ca-certificates package (the image's bundle) on the test machine")?;
    let body: String = amazon.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        bundle.lines().collect::<String>().contains(&body),
        "the bundle holds Amazon Root CA 1"
    );

    let licenses = in_root(root, &env_value("IMAGE_LICENSE_DIR"));
    assert_eq!(
        std::fs::read_to_string(licenses.join("LICENSE"))?,
        std::fs::read_to_string(repo().join("LICENSE"))?
    );
    let deps = std::fs::read_to_string(licenses.join("DEPENDENCIES.tsv"))?;
    for krate in ["kube-client", "tokio", "aws-sdk-sts", "ring", "tikv-jemalloc-sys"] {
        let row = deps
            .lines()
            .find(|l| l.starts_with(&format!("{krate}\t")))
            .with_context(|| format!("{krate} not in DEPENDENCIES.tsv"))?;
        let version = row.split('\t').nth(1).unwrap_or_default();
        let dir = licenses.join("crates").join(format!("{krate}-{version}"));
        ensure!(
            std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()),
            "no licence files of {krate} in {}",
            dir.display()
        );
    }
    Ok(())
}

/// The ServiceAccount volume (token, ca.crt, namespace) of the chart's controller, the hosts
/// file, and the STS's CA appended to the image's bundle.
fn mount_pod_files(cp: &atmos_auth_testenv::controlplane::ControlPlane, root: &Path, sts_ca: &str) -> Result<()> {
    let token = kubectl(
        cp,
        &[
            "create",
            "token",
            CHART_SERVICE_ACCOUNT,
            "-n",
            CHART_NAMESPACE,
            "--duration",
            "1h",
        ],
        None,
    )?;
    let sa = in_root(root, "/var/run/secrets/kubernetes.io/serviceaccount");
    std::fs::create_dir_all(&sa)?;
    std::fs::write(sa.join("token"), token.trim())?;
    std::fs::write(sa.join("ca.crt"), cp.ca_pem())?;
    std::fs::write(sa.join("namespace"), CHART_NAMESPACE)?;
    std::fs::write(
        in_root(root, "/etc/hosts"),
        format!("127.0.0.1\tlocalhost\n127.0.0.1\t{STS_HOST}\n"),
    )?;
    let bundle = in_root(root, &env_value("IMAGE_CA_BUNDLE"));
    let mut text = std::fs::read_to_string(&bundle)?;
    text.push_str(sts_ca);
    std::fs::write(&bundle, text)?;
    Ok(())
}

fn manifests(endpoint: &str) -> String {
    format!(
        r#"apiVersion: auth.atmos.tools/v1alpha1
kind: AuthProfile
metadata: {{name: k8s}}
spec:
  providers:
    oidc: {{kind: kubernetes/oidc, spec: {{audience: sts.amazonaws.com, service_account: terraform}}}}
  identities:
    admin:
      default: true
      kind: aws/assume-role
      via: {{provider: oidc}}
      principal: {{assume_role: "{ADMIN_ROLE}", region: us-east-1}}
      spec: {{endpoint_url: "{endpoint}"}}
---
apiVersion: auth.atmos.tools/v1alpha1
kind: Identity
metadata: {{name: admin}}
spec:
  profile: k8s
  secret: {{name: aws-admin}}
"#
    )
}

/// The image's entry point in a chroot of its filesystem, as its user, with a pod's
/// environment only.
struct ImageController {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ImageController {
    fn start(
        root: &Path,
        entrypoint: &[String],
        cmd: &[String],
        server: &str,
        ns: &str,
        endpoint: &str,
    ) -> Result<Self> {
        let port = server.rsplit(':').next().context("the API server's port")?;
        let free = || -> Result<String> {
            Ok(format!(
                "127.0.0.1:{}",
                std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()
            ))
        };
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("controller.log");
        let out = std::fs::File::create(&log)?;
        // `--help` first: a chroot that cannot run the image fails here, with its reason.
        let probe = isolated(root, entrypoint)
            .arg("--help")
            .env_clear()
            .output()
            .context("starting chroot or unshare")?;
        ensure!(
            probe.status.success(),
            "running the image's entry point in its root failed ({}): {}",
            probe.status,
            String::from_utf8_lossy(&probe.stderr)
        );
        let child = isolated(root, entrypoint)
            .args(cmd)
            .env_clear()
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", port)
            .env("POD_NAME", "atmos-auth-controller-image-test")
            .env("POD_NAMESPACE", CHART_NAMESPACE)
            .env("ATMOS_AUTH_NAMESPACES", ns)
            .env("ATMOS_AUTH_ALLOWED_ENDPOINTS", endpoint)
            .env("ATMOS_AUTH_ADMISSION_POLICY_PREFIX", CHART_FULLNAME)
            .env("ATMOS_AUTH_TEST_MIN_SESSION_SECONDS", MIN_SESSION.to_string())
            .env("ATMOS_AUTH_ADMIN_ADDR", free()?)
            .env("ATMOS_AUTH_METRICS_ADDR", free()?)
            .env("ATMOS_AUTH_METRICS_PLAIN", "true")
            .env("ATMOS_AUTH_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Self { child, log, _dir: dir })
    }

    /// Stops the controller; its log.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ImageController {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `root` as `/` for the image's user: chroot(8) when this process may (root), else a user
/// namespace (`unshare --root`), mapping this user to the image's.
fn isolated(root: &Path, entrypoint: &[String]) -> Command {
    let (uid, gid) = (env_value("IMAGE_UID"), env_value("IMAGE_GID"));
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new(which("chroot"));
        c.arg(format!("--userspec={uid}:{gid}")).arg(root);
        c
    } else {
        let mut c = Command::new(which("unshare"));
        c.args(["--user", &format!("--map-user={uid}"), &format!("--map-group={gid}")])
            .arg(format!("--root={}", root.display()));
        c
    };
    cmd.args(entrypoint);
    cmd
}

/// `tool` on this process's PATH: the child's environment is cleared, so it has none to
/// search (and the default search path leaves out /usr/sbin).
fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// The pushed image's size: its compressed layers as the registry holds them, and its files.
fn sizes(crane: &Path, reference: &str, fs_tar: &Path) -> Result<String> {
    let manifest: Value = serde_json::from_slice(&run(Command::new(crane).args(["manifest", reference]))?)?;
    let compressed: u64 = manifest["layers"]
        .as_array()
        .context("layers")?
        .iter()
        .filter_map(|l| l["size"].as_u64())
        .sum();
    let uncompressed = std::fs::metadata(fs_tar)?.len();
    Ok(format!(
        "{compressed} bytes compressed ({:.1} MiB), {uncompressed} bytes uncompressed ({:.1} MiB)",
        compressed as f64 / 1048576.0,
        uncompressed as f64 / 1048576.0
    ))
}

/// Runs `cmd`; its stdout, or an error with its stderr.
fn run(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}
