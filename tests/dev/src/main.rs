//! `cargo dev` (the alias in `.cargo/config.toml`) runs this launcher, which has no
//! dependencies and so compiles in about a second. On a new machine it:
//! 1. starts the control plane's Go build (`tests/controlplane/build-binaries.sh`) in the
//!    background, under the lock the test support takes, so the dev tool finds it done or
//!    waits for it instead of building twice;
//! 2. builds the dev tool and the controller in one cargo invocation: one feature set, so the
//!    dependencies they share (kube, k8s-openapi, tokio, rustls...) compile once. Run as two
//!    invocations, the second recompiled them with other features (minutes on two cores).
//!    The controller is built without its `jemalloc` feature;
//! 3. replaces itself with the dev tool (`atmos-auth-dev`), which finds the controller
//!    binary beside it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    match launch() {
        // `launch` only returns on failure: on success the process is the dev tool.
        Err(message) => {
            eprintln!("dev: {message}");
            ExitCode::FAILURE
        }
    }
}

fn launch() -> Result<std::convert::Infallible, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // `cargo run` put this binary in the target's profile directory: the two others go there too.
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .ok_or("cannot tell where this launcher's binary is")?;

    start_control_plane_build(&repo)?;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // At a lower priority than the Go build: on a new machine that build is the longer one
    // (about 530 s of the 540 on two cores), so the Rust build fills the cores it leaves idle.
    let built = Command::new("nice")
        .args(["-n", "5"])
        .arg(cargo)
        .args(["build", "-p", "atmos-auth-testenv", "-p", "atmos-auth-controller"])
        // Without jemalloc (the system allocator): its C build is the longest step of a cold
        // Rust build here (about 100 s on two cores), and a local run does not need it.
        .arg("--no-default-features")
        .args(["--bin", "atmos-auth-dev", "--bin", "atmos-auth-controller"])
        .current_dir(&repo)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("starting cargo build: {e}"))?;
    if !built.success() {
        return Err(format!(
            "cargo build of the dev tool and the controller failed ({built})"
        ));
    }

    let error = Command::new(bin_dir.join("atmos-auth-dev"))
        .args(std::env::args_os().skip(1))
        .exec();
    Err(format!("running {}: {error}", bin_dir.join("atmos-auth-dev").display()))
}

/// Starts the Go build of etcd and the Kubernetes binaries, which takes minutes on a new
/// machine and a moment once they are cached; its progress lines go to stderr. It holds the
/// same lock as `atmos_auth_testenv::controlplane::build_binaries`, which the dev tool calls.
fn start_control_plane_build(repo: &Path) -> Result<(), String> {
    if std::env::var_os("ATMOS_AUTH_K8S_BIN").is_some() {
        return Ok(()); // binaries given: nothing to build
    }
    let script = repo.join("tests/controlplane/build-binaries.sh");
    let lock: PathBuf = std::env::temp_dir().join("atmos-auth-build-binaries.lock");
    Command::new("flock")
        .arg(&lock)
        .arg("bash")
        .arg(&script)
        .arg("control-plane")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("starting {}: {e}", script.display()))
}
