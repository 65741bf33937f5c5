//! Shared helpers of the chart tests: the tools, the renders, the installed control plane.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

use atmos_auth_testenv::{
    controlplane::{self, ControlPlane},
    helm,
};
use serde_json::{Value, json};

/// Release and namespace of the documented install.
pub const RELEASE: &str = "atmos-auth-controller";
pub const NAMESPACE: &str = "atmos-auth-system";
/// The controller's ServiceAccount after the documented install.
pub const CONTROLLER: &str = "system:serviceaccount:atmos-auth-system:atmos-auth-controller";
pub const TOKEN_CREATOR: &str = "atmos-auth-controller-token-creator";
/// The image repository the docs' install block is run with.
pub const TEST_IMAGE_REPO: &str = "registry.example.com/test/atmos-auth-controller";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart_dir() -> PathBuf {
    repo().join("charts/atmos-auth-controller")
}

/// `helm` (built on first use, see `atmos_auth_testenv::helm`) or `kubectl` from the control
/// plane's bin dir, run from the repository, with Helm's directories kept out of `$HOME`.
pub fn tool(name: &str) -> Command {
    let mut command = if name == "helm" {
        helm::command().expect("helm (tests/controlplane/build-binaries.sh helm)")
    } else {
        let dir =
            controlplane::k8s_bin_dir().expect("the control plane binaries (tests/controlplane/build-binaries.sh)");
        let mut command = Command::new(dir.join(name));
        helm::isolate(&mut command);
        command
    };
    command.current_dir(repo());
    command
}

/// The same, pointed at a control plane with the given kubeconfig.
pub fn tool_on(name: &str, kubeconfig: &Path) -> Command {
    let mut command = tool(name);
    command.env("KUBECONFIG", kubeconfig);
    command
}

pub fn describe(command: &Command) -> String {
    let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    format!("{} {}", command.get_program().to_string_lossy(), args.join(" "))
}

/// Runs with optional stdin and returns the whole output, whatever the exit status.
pub fn output(command: &mut Command, input: Option<&str>) -> Output {
    command.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", describe(command)));
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Runs and returns stdout; panics with both streams if it fails.
pub fn ok(command: &mut Command, input: Option<&str>) -> String {
    let out = output(command, input);
    assert!(
        out.status.success(),
        "{} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        describe(command),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Like [`ok`], and the API server (or kubectl) printed no warning: a deprecated field, a
/// Pod Security violation of a workload, an unknown field would all show up as one.
pub fn ok_without_warnings(command: &mut Command, input: Option<&str>) -> String {
    let out = output(command, input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Warning"),
        "{} failed or warned ({}):\n--- stdout\n{}\n--- stderr\n{stderr}",
        describe(command),
        out.status,
        String::from_utf8_lossy(&out.stdout),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// All YAML documents of a text, empty ones (comments only) dropped.
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

pub fn yaml_file(path: &Path) -> Vec<Value> {
    yaml_docs(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// `helm template` of the chart; `Err(message)` with Helm's own words when Helm refuses.
pub fn try_template(release: &str, namespace: &str, args: &[&str]) -> Result<String, String> {
    helm::template(&chart_dir(), release, namespace, args).map_err(|e| format!("{e:#}"))
}

pub fn template(release: &str, namespace: &str, args: &[&str]) -> String {
    try_template(release, namespace, args).unwrap_or_else(|e| panic!("helm template {args:?} failed:\n{e}"))
}

/// The rendered objects, in order.
pub fn render(args: &[&str]) -> Vec<Value> {
    yaml_docs(&template(RELEASE, NAMESPACE, args))
}

pub fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

pub fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn of_kind<'a>(objects: &'a [Value], k: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == k).collect()
}

pub fn the<'a>(objects: &'a [Value], k: &str) -> &'a Value {
    let found = of_kind(objects, k);
    assert_eq!(found.len(), 1, "expected exactly one {k}, found {}", found.len());
    found[0]
}

pub fn env_of(container: &Value) -> BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e.get("value").cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

pub fn strs(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// Every RBAC rule of the given objects, with the object it belongs to.
pub fn rules(objects: &[Value]) -> Vec<(String, Value)> {
    objects
        .iter()
        .filter(|o| matches!(kind(o), "ClusterRole" | "Role"))
        .flat_map(|o| {
            let owner = format!(
                "{} {}/{}",
                kind(o),
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                name(o)
            );
            o["rules"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |r| (owner.clone(), r))
        })
        .collect()
}

/// Numbers compared by value: the CRD generator writes `0.0` where Helm's YAML round trip
/// writes `0`.
pub fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), normalized(v))).collect()),
        other => other.clone(),
    }
}

/// The JSON pointer of the first place where two values differ, with both sides.
pub fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let path = format!("{at}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(x), Some(y)) => first_difference(x, y, path),
                    (x, y) => Some(format!("{path}: {x:?} vs {y:?}")),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{at}/{i}"))),
        _ => (a != b).then(|| format!("{at}: {a} vs {b}")),
    }
}

/// Polls `f` until it returns `Some`, for up to `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// The shared control plane with the chart installed by the docs' own install block.
pub fn installed() -> &'static ControlPlane {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let cp = controlplane::shared();
    if let Err(e) = INSTALLED.get_or_init(|| install_from_docs(cp)) {
        panic!("installing the chart as docs/install.md says failed: {e}");
    }
    cp
}

/// The first `sh` block of docs/install.md after `marker`.
pub fn docs_block_after(marker: &str) -> String {
    let docs = fs::read_to_string(repo().join("docs/install.md")).unwrap();
    let start = docs
        .find(marker)
        .unwrap_or_else(|| panic!("docs/install.md no longer says {marker:?}"));
    let rest = &docs[start..];
    let open = rest.find("```sh\n").expect("a ```sh block after the marker") + "```sh\n".len();
    let close = rest[open..].find("```").unwrap();
    rest[open..open + close].to_owned()
}

/// The install block that docs/install.md marks as tested.
pub fn docs_install_block() -> String {
    docs_block_after("*Tested* (`helm_install_from_docs`")
}

/// Runs a shell block from the docs with `helm` and `kubectl` first on PATH, against the
/// given control plane; Err(output) if it fails.
pub fn run_docs_block(cp: &ControlPlane, block: &str) -> Result<String, String> {
    let path = format!(
        "{}:{}:{}",
        helm::bin_dir()
            .expect("helm (tests/controlplane/build-binaries.sh helm)")
            .display(),
        cp.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = Command::new("bash");
    helm::isolate(&mut bash)
        .current_dir(repo())
        .args(["-euo", "pipefail", "-c", block])
        .env("PATH", path)
        .env("KUBECONFIG", cp.kubeconfig_path())
        .env("IMAGE_REPO", TEST_IMAGE_REPO);
    let out = output(&mut bash, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{block}\n{text}"))
    }
}

pub fn run_docs_install(cp: &ControlPlane) -> Result<String, String> {
    run_docs_block(cp, &docs_install_block())
}

pub fn install_from_docs(cp: &ControlPlane) -> Result<(), String> {
    run_docs_install(cp)?;
    // The CRDs must serve before any test writes an AuthProfile or Identity.
    let wait = output(
        tool_on("kubectl", cp.kubeconfig_path()).args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/authprofiles.auth.atmos.tools",
            "crd/identities.auth.atmos.tools",
            "crd/clusterauthprofiles.auth.atmos.tools",
        ]),
        None,
    );
    if !wait.status.success() {
        return Err(String::from_utf8_lossy(&wait.stderr).into_owned());
    }
    Ok(())
}

pub fn kubectl(cp: &ControlPlane) -> Command {
    tool_on("kubectl", cp.kubeconfig_path())
}

/// Creates (or updates) objects as the admin.
pub fn apply_admin(cp: &ControlPlane, yaml: &str) {
    ok(kubectl(cp).args(["apply", "--server-side", "-f", "-"]), Some(yaml));
}

/// Waits until the controller-manager has made the namespace's `default` ServiceAccount
/// (pods cannot be admitted, even in dry-run, without it).
pub fn wait_for_default_service_account(cp: &ControlPlane, namespace: &str) {
    eventually(
        &format!("ServiceAccount {namespace}/default"),
        Duration::from_secs(60),
        || {
            output(
                kubectl(cp).args(["get", "serviceaccount", "default", "-n", namespace]),
                None,
            )
            .status
            .success()
            .then_some(())
        },
    );
}

pub fn identity_yaml(namespace: &str, name: &str, service_account: Option<&str>) -> String {
    let sa = service_account
        .map(|sa| format!("\n  serviceAccountName: {sa}"))
        .unwrap_or_default();
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  profile: k8s{sa}\n"
    )
}
