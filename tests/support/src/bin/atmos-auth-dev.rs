//! `cargo dev`: the controller end to end on this machine. Starts the local control plane and
//! the verifying local STS, installs the CRDs, applies `examples/`, runs the controller and
//! mirrors each of its Secrets into `.dev/mount/<secret>/` the way the kubelet mounts a
//! volume, so the AWS CLI can use them. Ctrl-C stops everything and removes the temp dirs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use atmos_auth_testenv::controlplane::ControlPlane;
use atmos_auth_testenv::sts::{LocalSts, OidcIssuer, StsConfig};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;

const NAMESPACE: &str = "infra";

fn main() -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?;
    let dev = repo.join(".dev");
    let _ = std::fs::remove_dir_all(&dev);
    std::fs::create_dir_all(dev.join("mount"))?;

    // `cargo dev`'s launcher (tests/dev) built the controller beside this binary, in the same
    // cargo invocation, and started the control plane's Go build.
    let controller_bin = std::env::current_exe()?.with_file_name("atmos-auth-controller");
    if !controller_bin.is_file() {
        bail!(
            "no {} beside this tool: run it with `cargo dev`",
            controller_bin.display()
        );
    }
    let started = Instant::now();
    eprintln!("dev: starting the local control plane (the first run builds it from Go modules: minutes)");
    let cp = ControlPlane::start()?;
    std::fs::copy(cp.kubeconfig_path(), dev.join("kubeconfig"))?;
    std::os::unix::fs::symlink(cp.bin_dir(), dev.join("bin"))?;
    eprintln!("dev: control plane ready in {:?}", started.elapsed());

    let config = StsConfig::from_yaml_file(repo.join("examples/local/roles.yaml"))?;
    let sts = LocalSts::start(
        config,
        OidcIssuer {
            url: cp.issuer().to_owned(),
            ca_pem: cp.ca_pem().to_owned(),
        },
    )?;
    eprintln!("dev: local STS at {}", sts.endpoint());

    eprintln!("dev: the controller runs as admin (no chart RBAC, no admission policies), built without jemalloc");

    // CRDs, then the examples; each Identity's mountPath points at its local mirror so the
    // rendered `credential_process` line works on this machine.
    kubectl(&cp, &["apply", "--server-side", "-f", &path(&repo.join("crds"))])?;
    kubectl(
        &cp,
        &[
            "wait",
            "--for=condition=Established",
            "crd/identities.auth.atmos.tools",
            "crd/clusterauthprofiles.auth.atmos.tools",
            "crd/authprofiles.auth.atmos.tools",
        ],
    )?;
    for f in ["namespace.yaml", "profile.yaml", "identities.yaml"] {
        kubectl(
            &cp,
            &["apply", "--server-side", "-f", &path(&repo.join("examples").join(f))],
        )?;
    }
    for (identity, secret) in [("admin", "aws-admin"), ("network", "aws-network")] {
        let patch = format!(
            r#"{{"spec":{{"secret":{{"mountPath":"{}"}}}}}}"#,
            path(&dev.join("mount").join(secret))
        );
        kubectl(
            &cp,
            &[
                "-n", NAMESPACE, "patch", "identity", identity, "--type", "merge", "-p", &patch,
            ],
        )?;
    }

    let admin = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()
    );
    let metrics = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()
    );
    let log = std::fs::File::create(dev.join("controller.log"))?;
    let mut controller = Command::new(&controller_bin)
        .args([
            "run",
            "--kubeconfig",
            &path(cp.kubeconfig_path()),
            "--sts-endpoint",
            &sts.endpoint(),
        ])
        .args(["--admin-addr", &admin])
        // Plain HTTP on loopback, so a person can curl it (in a cluster: HTTPS, authorized).
        .args(["--metrics-addr", &metrics, "--metrics-plain"])
        // Development runs as the cluster admin, without the chart's admission policies.
        .arg("--allow-unenforced-admission")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the controller")?;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = rt.block_on(mirror_until_ctrl_c(&cp, &sts, &dev, &metrics, &mut controller));
    eprintln!("dev: stopping");
    // SAFETY: kill(2) on our own child's pid: SIGTERM lets it finish in-flight writes.
    unsafe {
        libc::kill(controller.id() as i32, libc::SIGTERM);
    }
    let _ = controller.wait();
    drop(sts);
    drop(cp);
    result
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> Result<()> {
    let out = cp.command("kubectl").args(args).output()?;
    if !out.status.success() {
        bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

async fn mirror_until_ctrl_c(
    cp: &ControlPlane,
    sts: &LocalSts,
    dev: &Path,
    metrics: &str,
    controller: &mut Child,
) -> Result<()> {
    let client = cp.client().await?;
    let secrets: Api<Secret> = Api::namespaced(client, NAMESPACE);
    let mut announced = false;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    // Ctrl-C or SIGTERM: both end the session cleanly.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if let Some(status) = controller.try_wait()? {
            bail!("the controller exited ({status}); see .dev/controller.log");
        }
        let list = secrets
            .list(&ListParams::default().labels("app.kubernetes.io/managed-by=atmos-auth-controller"))
            .await?;
        for s in list.items {
            let name = s.metadata.name.clone().unwrap_or_default();
            let rv = s.metadata.resource_version.clone().unwrap_or_default();
            if seen.get(&name) == Some(&rv) {
                continue;
            }
            write_volume(&dev.join("mount").join(&name), s.data.unwrap_or_default())?;
            eprintln!("dev: mirrored Secret {NAMESPACE}/{name} to .dev/mount/{name}/");
            seen.insert(name, rv);
        }
        if !announced && seen.contains_key("aws-admin") && seen.contains_key("aws-network") {
            announced = true;
            print_how_to_look(dev, &sts.endpoint(), metrics);
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Writes the keys as files, each through a temp file and a rename, as the kubelet's atomic
/// writer does, so a reader never sees half a file.
fn write_volume(dir: &PathBuf, data: BTreeMap<String, k8s_openapi::ByteString>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (key, value) in data {
        let tmp = dir.join(format!(".{key}.tmp"));
        std::fs::write(&tmp, &value.0)?;
        std::fs::rename(&tmp, dir.join(key))?;
    }
    Ok(())
}

fn print_how_to_look(dev: &Path, sts: &str, metrics: &str) {
    let d = dev.display();
    println!(
        r#"
The controller is running (log: {d}/controller.log, metrics: http://{metrics}/metrics).
It runs as the cluster admin, without the chart's RBAC and admission policies (for
example the one that lets its ServiceAccount write only its own Secrets): what works here
may still be refused in a cluster installed from the chart (`cargo test --test e2e` runs
it with both).
In another shell:

  export KUBECONFIG={d}/kubeconfig PATH={d}/bin:$PATH   # kubectl (and helm, once a test built it)
  kubectl get authprofiles,identities -n {NAMESPACE} -o wide
  kubectl get secret aws-network -n {NAMESPACE} -o yaml

The Secrets are mirrored into {d}/mount/<secret>/ as a volume mount would lay them out:

  AWS_CONFIG_FILE={d}/mount/aws-network/config AWS_PROFILE=acme/network \
    aws sts get-caller-identity --endpoint-url {sts}

Ctrl-C stops everything.
"#
    );
}
