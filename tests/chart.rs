//! The Helm chart, the container image recipe and the consumer examples, checked with the
//! real `helm` and `kubectl` against a real kube-apiserver (the local control plane of
//! `atmos-auth-testenv`).
//!
//! Several control planes, so that the ways of installing never fight over the same
//! cluster-scoped objects (the CRDs and the token-creator ClusterRole carry Helm's ownership
//! annotations after `helm install`, and Helm refuses to adopt objects another tool made):
//! - the shared one gets the chart installed exactly as docs/install.md says (release
//!   `atmos-auth-controller` in `atmos-auth-system`) and carries the RBAC matrix, the
//!   admission policy and the examples;
//! - private ones receive `helm template` output through `kubectl apply --server-side`, run
//!   with the OwnerReferencesPermissionEnforcement admission plugin, or start with CRDs that
//!   `kubectl` applied before Helm.
//!
//! Not here: running the controller binary with the chart's ServiceAccount token against the
//! local STS (the end-to-end suite owns those fixtures), and `cargo build --release` for the
//! Dockerfile (slow on two cores: CI runs it; here only the Dockerfile's paths are checked).

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

use atmos_auth_testenv::controlplane::{self, ControlPlane};
use serde_json::{Value, json};

/// Release and namespace of the documented install.
const RELEASE: &str = "atmos-auth-controller";
const NAMESPACE: &str = "atmos-auth-system";
/// The controller's ServiceAccount after the documented install.
const CONTROLLER: &str = "system:serviceaccount:atmos-auth-system:atmos-auth-controller";
const TOKEN_CREATOR: &str = "atmos-auth-controller-token-creator";
/// `helm template` assumes Kubernetes 1.20 without a cluster; the chart needs 1.30+.
const KUBE_VERSION: &str = "1.35.4";
/// The image repository the docs' install block is run with.
const TEST_IMAGE_REPO: &str = "registry.example.com/test/atmos-auth-controller";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    repo().join("charts/atmos-auth-controller")
}

fn bin_dir() -> PathBuf {
    controlplane::k8s_bin_dir().expect("the control plane binaries (tests/controlplane/build-binaries.sh)")
}

/// Helm keeps its caches and repository config out of `$HOME`, so tests never read or
/// write the developer's own Helm setup.
fn helm_home() -> PathBuf {
    std::env::temp_dir().join(format!("atmos-auth-chart-test-helm-{}", std::process::id()))
}

/// Helm's directories, for any command that may run `helm`.
fn helm_env(command: &mut Command) -> &mut Command {
    let home = helm_home();
    command
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .current_dir(repo())
}

/// `helm` or `kubectl` from the control plane's bin dir, without a cluster.
fn tool(name: &str) -> Command {
    let mut command = Command::new(bin_dir().join(name));
    helm_env(&mut command);
    command
}

/// The same, pointed at a control plane with the given kubeconfig.
fn tool_on(name: &str, kubeconfig: &Path) -> Command {
    let mut command = tool(name);
    command.env("KUBECONFIG", kubeconfig);
    command
}

fn describe(command: &Command) -> String {
    let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    format!("{} {}", command.get_program().to_string_lossy(), args.join(" "))
}

/// Runs with optional stdin and returns the whole output, whatever the exit status.
fn output(command: &mut Command, input: Option<&str>) -> Output {
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
fn ok(command: &mut Command, input: Option<&str>) -> String {
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
fn ok_without_warnings(command: &mut Command, input: Option<&str>) -> String {
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
fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml_file(path: &Path) -> Vec<Value> {
    yaml_docs(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// `helm template` of the chart; `Err(stderr)` when Helm refuses.
fn try_template(release: &str, namespace: &str, args: &[&str]) -> Result<String, String> {
    let mut command = tool("helm");
    command
        .args(["template", release])
        .arg(chart_dir())
        .args(["--namespace", namespace, "--kube-version", KUBE_VERSION])
        .args(args);
    let out = output(&mut command, None);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn template(release: &str, namespace: &str, args: &[&str]) -> String {
    try_template(release, namespace, args).unwrap_or_else(|e| panic!("helm template {args:?} failed:\n{e}"))
}

/// The rendered objects, in order.
fn render(args: &[&str]) -> Vec<Value> {
    yaml_docs(&template(RELEASE, NAMESPACE, args))
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'a>(objects: &'a [Value], k: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == k).collect()
}

fn the<'a>(objects: &'a [Value], k: &str) -> &'a Value {
    let found = of_kind(objects, k);
    assert_eq!(found.len(), 1, "expected exactly one {k}, found {}", found.len());
    found[0]
}

fn env_of(container: &Value) -> BTreeMap<String, Value> {
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

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// Every RBAC rule of the given objects, with the object it belongs to.
fn rules(objects: &[Value]) -> Vec<(String, Value)> {
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
fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), normalized(v))).collect()),
        other => other.clone(),
    }
}

/// The JSON pointer of the first place where two values differ, with both sides.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
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
fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
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
fn installed() -> &'static ControlPlane {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let cp = controlplane::shared();
    if let Err(e) = INSTALLED.get_or_init(|| install_from_docs(cp)) {
        panic!("installing the chart as docs/install.md says failed: {e}");
    }
    cp
}

/// The first `sh` block of docs/install.md after `marker`.
fn docs_block_after(marker: &str) -> String {
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
fn docs_install_block() -> String {
    docs_block_after("*Tested* (`helm_install_from_docs`")
}

/// Runs a shell block from the docs with `helm` and `kubectl` first on PATH, against the
/// given control plane; Err(output) if it fails.
fn run_docs_block(cp: &ControlPlane, block: &str) -> Result<String, String> {
    let path = format!(
        "{}:{}",
        cp.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = Command::new("bash");
    helm_env(&mut bash)
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

fn run_docs_install(cp: &ControlPlane) -> Result<String, String> {
    run_docs_block(cp, &docs_install_block())
}

fn install_from_docs(cp: &ControlPlane) -> Result<(), String> {
    run_docs_install(cp)?;
    // The CRDs must serve before any test writes an AuthProfile or Identity.
    let wait = output(
        tool_on("kubectl", cp.kubeconfig_path()).args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/authprofiles.auth.atmos.tools",
            "crd/identities.auth.atmos.tools",
        ]),
        None,
    );
    if !wait.status.success() {
        return Err(String::from_utf8_lossy(&wait.stderr).into_owned());
    }
    Ok(())
}

fn kubectl(cp: &ControlPlane) -> Command {
    tool_on("kubectl", cp.kubeconfig_path())
}

/// Creates (or updates) objects as the admin.
fn apply_admin(cp: &ControlPlane, yaml: &str) {
    ok(kubectl(cp).args(["apply", "--server-side", "-f", "-"]), Some(yaml));
}

/// Waits until the controller-manager has made the namespace's `default` ServiceAccount
/// (pods cannot be admitted, even in dry-run, without it).
fn wait_for_default_service_account(cp: &ControlPlane, namespace: &str) {
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

// ---------------------------------------------------------------------------------------
// The chart, rendered
// ---------------------------------------------------------------------------------------

#[test]
fn helm_lint_strict() {
    let chart = chart_dir();
    for args in [
        vec![],
        vec![
            "--set-json",
            r#"controller.watchNamespaces=["team-a","team-b"]"#,
            "--set",
            "replicaCount=2",
        ],
        vec![
            "--set",
            "rbac.tokenCreator.clusterWide=true",
            "--set",
            "serviceMonitor.enabled=true",
        ],
    ] {
        let out = ok(tool("helm").args(["lint", "--strict"]).arg(&chart).args(&args), None);
        assert!(out.contains("0 chart(s) failed"), "helm lint {args:?}:\n{out}");
    }
}

#[test]
fn template_default_values_is_cluster_wide_and_hardened() {
    let objects = render(&[]);
    let kinds: BTreeSet<&str> = objects.iter().map(kind).collect();
    for expected in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "Deployment",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ] {
        assert!(
            kinds.contains(expected),
            "no {expected} in the default render: {kinds:?}"
        );
    }
    assert!(
        !kinds.contains("PodDisruptionBudget"),
        "one replica needs no PodDisruptionBudget"
    );
    assert!(!kinds.contains("ServiceMonitor"), "the ServiceMonitor is opt-in");

    // Cluster-wide: one binding of the controller's own ClusterRole, none of the token
    // creator. The only Role is the Lease's, in the release namespace.
    let bindings = of_kind(&objects, "ClusterRoleBinding");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0]["roleRef"]["name"], RELEASE);
    assert_eq!(
        bindings[0]["subjects"],
        json!([{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}])
    );
    let lease_role = the(&objects, "Role");
    assert_eq!(lease_role["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        lease_role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["atmos-auth-controller"], "verbs": ["get", "patch"]},
        ])
    );
    let token_creator = of_kind(&objects, "ClusterRole")
        .into_iter()
        .find(|r| name(r) == TOKEN_CREATOR)
        .expect("the token-creator ClusterRole");
    assert_eq!(
        token_creator["rules"],
        json!([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}])
    );

    // The pod: non-root, read-only root, no escalation, no capabilities, seccomp, limits.
    let deployment = the(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], RELEASE);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], "ghcr.io/atmos-tools/atmos-auth-controller:0.1.0");
    assert_eq!(c["args"], json!(["run"]));
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(c["resources"][bound][resource].is_string(), "no {bound}.{resource}");
        }
    }
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");

    // Flags reach the controller as its environment variables.
    let env = env_of(c);
    assert_eq!(
        env["ATMOS_AUTH_LEADER_ELECTION"], "true",
        "leader election is on by default"
    );
    assert_eq!(env["ATMOS_AUTH_LEASE_NAMESPACE"], NAMESPACE);
    assert_eq!(env["ATMOS_AUTH_ALLOWED_AUDIENCES"], "sts.amazonaws.com");
    assert_eq!(env["ATMOS_AUTH_ADMIN_ADDR"], "0.0.0.0:8080");
    assert_eq!(env["ATMOS_AUTH_LOG_FORMAT"], "json");
    assert!(env.contains_key("POD_NAME") && env.contains_key("POD_NAMESPACE"));
    assert!(!env.contains_key("ATMOS_AUTH_NAMESPACES"), "all namespaces by default");
    assert!(
        !env.contains_key("ATMOS_AUTH_STS_ENDPOINT"),
        "AWS's endpoints by default"
    );

    // The metrics Service selects the pod and targets the admin port.
    let service = the(&objects, "Service");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http-admin");

    // The admission policy checks the token right, and its binding enforces it.
    let policy = the(&objects, "ValidatingAdmissionPolicy");
    let policy_text = policy.to_string();
    assert!(policy_text.contains("subresource('token')") && policy_text.contains("check('create')"));
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let binding = the(&objects, "ValidatingAdmissionPolicyBinding");
    assert_eq!(binding["spec"]["policyName"], name(policy));
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));

    // CRDs survive `helm uninstall` by default.
    for crd in of_kind(&objects, "CustomResourceDefinition") {
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    }
}

#[test]
fn template_namespaced_install_uses_roles_only() {
    let objects = render(&["--set-json", r#"controller.watchNamespaces=["team-a","team-b"]"#]);
    // No cluster-wide binding at all: the token creator stays unbound, and the controller's
    // rules come as a Role per watched namespace.
    assert!(
        of_kind(&objects, "ClusterRoleBinding").is_empty(),
        "a namespaced install binds nothing cluster-wide"
    );
    let cluster_roles: Vec<&str> = of_kind(&objects, "ClusterRole").into_iter().map(name).collect();
    assert!(
        !cluster_roles.contains(&RELEASE),
        "the controller's rules are not a ClusterRole: {cluster_roles:?}"
    );
    let roles: BTreeMap<(&str, &str), &Value> = of_kind(&objects, "Role")
        .into_iter()
        .map(|r| ((r["metadata"]["namespace"].as_str().unwrap(), name(r)), r))
        .collect();
    let default_rules = render(&[]);
    let cluster_role = of_kind(&default_rules, "ClusterRole")
        .into_iter()
        .find(|r| name(r) == RELEASE)
        .unwrap();
    for ns in ["team-a", "team-b"] {
        let role = roles
            .get(&(ns, RELEASE))
            .unwrap_or_else(|| panic!("no Role in {ns}: {:?}", roles.keys()));
        assert_eq!(
            role["rules"], cluster_role["rules"],
            "the same rules as the cluster-wide install"
        );
        let binding = of_kind(&objects, "RoleBinding")
            .into_iter()
            .find(|b| b["metadata"]["namespace"] == ns && name(b) == RELEASE)
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    }
    assert!(roles.contains_key(&(NAMESPACE, "atmos-auth-controller-leader-election")));
    assert_eq!(roles.len(), 3, "{:?}", roles.keys());
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(env["ATMOS_AUTH_NAMESPACES"], "team-a,team-b");

    // clusterWide tokens in a namespaced install: a RoleBinding per watched namespace, still
    // nothing cluster-wide.
    let objects = render(&[
        "--set-json",
        r#"controller.watchNamespaces=["team-a","team-b"]"#,
        "--set",
        "rbac.tokenCreator.clusterWide=true",
    ]);
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    let token_bindings: Vec<&str> = of_kind(&objects, "RoleBinding")
        .into_iter()
        .filter(|b| b["roleRef"]["name"] == TOKEN_CREATOR)
        .map(|b| b["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(token_bindings, ["team-a", "team-b"]);

    // And in a cluster-wide install, one ClusterRoleBinding.
    let objects = render(&["--set", "rbac.tokenCreator.clusterWide=true"]);
    assert!(
        of_kind(&objects, "ClusterRoleBinding")
            .iter()
            .any(|b| b["roleRef"]["name"] == TOKEN_CREATOR)
    );
}

#[test]
fn template_ha_adds_pdb_and_forces_leader_election() {
    let objects = render(&["--set", "replicaCount=2", "--set", "leaderElection.enabled=false"]);
    let pdb = the(&objects, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        the(&objects, "Deployment")["spec"]["selector"]["matchLabels"]
    );
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(
        env["ATMOS_AUTH_LEADER_ELECTION"], "true",
        "two replicas must never renew in parallel"
    );

    // One replica with leader election off: no Lease, no Lease Role.
    let objects = render(&["--set", "leaderElection.enabled=false"]);
    assert!(of_kind(&objects, "Role").is_empty());
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert!(!env.contains_key("ATMOS_AUTH_LEADER_ELECTION"));

    let objects = render(&["--set", "serviceMonitor.enabled=true", "--set", "service.enabled=false"]);
    let monitor = the(&objects, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(
        of_kind(&objects, "Service").len(),
        1,
        "the ServiceMonitor brings its Service"
    );
}

#[test]
fn deployment_settings_are_accepted_by_the_controller_binary() {
    // The chart speaks to the binary through environment variables and arguments; a renamed
    // flag or an unparsable value would only show up as a crash loop in a real cluster. Run
    // the real binary with the rendered settings and a kubeconfig that does not exist: it
    // must get past argument parsing (clap exits 2) and stop at the kubeconfig (exit 1).
    let cases: [&[&str]; 3] = [
        &[],
        &[
            "--set-json",
            r#"controller.watchNamespaces=["team-a","team-b"]"#,
            "--set",
            "replicaCount=2",
        ],
        &[
            "--set",
            "controller.stsEndpoint=https://sts.us-east-2.amazonaws.com",
            "--set",
            "controller.stsTimeout=1m30s",
            "--set-json",
            r#"controller.allowedEndpoints=["https://sts.example.com"]"#,
            "--set-json",
            r#"controller.allowedAudiences=["sts.amazonaws.com","sts.example.com"]"#,
            "--set",
            "controller.logFormat=text",
            "--set",
            "controller.logLevel=atmos_auth_controller=debug\\,info",
            "--set",
            "controller.adminPort=9090",
            "--set-json",
            r#"controller.extraArgs=["--lease-name=custom"]"#,
        ],
    ];
    for args in cases {
        let objects = render(args);
        let container = &the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        let mut command = Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"));
        command.env_clear();
        for (name, value) in env_of(container) {
            // Downward-API values (POD_NAME, POD_NAMESPACE) get stand-ins.
            command.env(&name, value.as_str().unwrap_or("from-the-downward-api"));
        }
        command
            .args(strs(&container["args"]))
            .args(["--kubeconfig", "/nonexistent/kubeconfig"]);
        let out = output(&mut command, None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}\n{text}", describe(&command));
        assert!(
            text.contains("/nonexistent/kubeconfig"),
            "{args:?}: stopped before the kubeconfig:\n{text}"
        );
    }
}

/// Verbs the controller never needs and that would let it, or whoever controls it, do more
/// than its job.
const FORBIDDEN_VERBS: [&str; 6] = [
    "delete",
    "deletecollection",
    "update",
    "bind",
    "escalate",
    "impersonate",
];

#[test]
fn chart_rules_have_no_wildcards_and_no_dangerous_verbs() {
    let renders = [
        render(&[]),
        render(&[
            "--set-json",
            r#"controller.watchNamespaces=["team-a"]"#,
            "--set",
            "replicaCount=3",
        ]),
        render(&[
            "--set",
            "rbac.tokenCreator.clusterWide=true",
            "--set",
            "rbac.ownerReferencesPermissionEnforcement=true",
        ]),
    ];
    for objects in &renders {
        for (owner, rule) in rules(objects) {
            for field in ["apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"] {
                assert!(
                    !strs(&rule[field]).iter().any(|s| s.contains('*')),
                    "wildcard in {owner}: {rule}"
                );
            }
            assert!(rule.get("nonResourceURLs").is_none(), "{owner}: {rule}");
            // The aggregated edit role is for people, not for the controller.
            if owner.ends_with("-edit") {
                continue;
            }
            // The one update, opt-in (see owner_references_permission_enforcement_needs_its_value).
            if strs(&rule["resources"]) == ["identities/finalizers"] {
                assert_eq!(strs(&rule["verbs"]), ["update"]);
                continue;
            }
            for verb in strs(&rule["verbs"]) {
                assert!(!FORBIDDEN_VERBS.contains(&verb), "{owner} grants {verb}: {rule}");
            }
            let resources = strs(&rule["resources"]);
            assert!(
                !resources.iter().any(|r| r.starts_with("pods") || *r == "configmaps"),
                "{owner}: {rule}"
            );
            if resources.contains(&"serviceaccounts/token") {
                assert_eq!(
                    owner,
                    format!("ClusterRole -/{TOKEN_CREATOR}"),
                    "only the token creator mints tokens"
                );
            }
        }
    }
}

#[test]
fn schema_rejects_wrong_values_with_clear_messages() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "controller.logFormat=xml"],
            "at '/controller/logFormat': value must be one of 'json', 'text'",
        ),
        (&["--set", "replicaCount=0"], "at '/replicaCount'"),
        (
            &["--set", "controler.logLevel=debug"],
            "additional properties 'controler' not allowed",
        ),
        (
            &["--set-json", r#"controller.watchNamespaces=["Team_A"]"#],
            "at '/controller/watchNamespaces/0'",
        ),
        (
            &["--set", "controller.stsTimeout=twenty"],
            "at '/controller/stsTimeout'",
        ),
        (
            &["--set", "controller.stsEndpoint=sts.amazonaws.com"],
            "at '/controller/stsEndpoint'",
        ),
        (
            &["--set-json", "controller.allowedAudiences=[]"],
            "at '/controller/allowedAudiences'",
        ),
        (&["--set", "image.digest=latest"], "at '/image/digest'"),
        (
            &["--set-json", r#"admissionPolicy.validationActions=["Block"]"#],
            "at '/admissionPolicy/validationActions/0'",
        ),
        (
            &["--set", "securityContext.readOnlyRootFilesystem=false"],
            "at '/securityContext/readOnlyRootFilesystem': value must be true",
        ),
        (
            &["--set", "securityContext.allowPrivilegeEscalation=true"],
            "at '/securityContext/allowPrivilegeEscalation'",
        ),
        (
            &["--set", "podSecurityContext.runAsNonRoot=false"],
            "at '/podSecurityContext/runAsNonRoot'",
        ),
        (
            &["--set-json", r#"securityContext.capabilities.add=["NET_ADMIN"]"#],
            "at '/securityContext/capabilities/add'",
        ),
        (
            &["--set", "resources.limits=null"],
            "at '/resources': missing property 'limits'",
        ),
        (
            &["--set", "rbac.tokenCreator.clusterWide=yes"],
            "at '/rbac/tokenCreator/clusterWide'",
        ),
    ];
    let mut failures = Vec::new();
    for (args, expected) in cases {
        match try_template(RELEASE, NAMESPACE, args) {
            Ok(_) => failures.push(format!("{args:?} was accepted")),
            Err(stderr)
                if stderr.contains("values don't meet the specifications of the schema")
                    && stderr.contains(expected) => {}
            Err(stderr) => failures.push(format!("{args:?}: expected {expected:?} in:\n{stderr}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn helm_install_with_a_wrong_value_fails_before_touching_the_cluster() {
    let cp = controlplane::shared();
    let out = output(
        tool_on("helm", cp.kubeconfig_path())
            .args(["install", "wrong-values"])
            .arg(chart_dir())
            .args([
                "--namespace",
                "wrong-values",
                "--create-namespace",
                "--set",
                "controller.logFormat=xml",
            ]),
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("at '/controller/logFormat': value must be one of 'json', 'text'"),
        "{stderr}"
    );
    let ns = output(kubectl(cp).args(["get", "namespace", "wrong-values"]), None);
    assert!(!ns.status.success(), "nothing may be created, not even the namespace");
}

#[test]
fn chart_crds_equal_the_generated_crds() {
    const REGENERATE: &str = "regenerate the chart's copy with \
        `cargo run -q -- crds --write charts/atmos-auth-controller/files/crds`";
    let yaml_files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let ours = yaml_files(&chart_dir().join("files/crds"));

    // Byte for byte: the generator's own files (`atmos-auth-controller crds --write`) ...
    let generated: BTreeMap<String, Vec<u8>> = atmos_auth_controller::cli::crds::files()
        .unwrap()
        .into_iter()
        .map(|(name, text)| (name, text.into_bytes()))
        .collect();
    assert_eq!(generated.len(), 2);
    assert!(
        ours == generated,
        "charts/atmos-auth-controller/files/crds/ differs from `atmos-auth-controller crds` \
         (chart: {:?}, generated: {:?}): {REGENERATE}",
        ours.keys(),
        generated.keys()
    );
    // ... and the checked-in crds/ (which has its own drift test against the generator).
    let checked_in = yaml_files(&repo().join("crds"));
    assert!(
        ours == checked_in,
        "charts/atmos-auth-controller/files/crds/ differs from crds/: {REGENERATE}"
    );

    // What the chart installs is those CRDs, plus only its labels and Helm's keep policy:
    // the template's YAML round trip changes nothing else.
    let expected: BTreeMap<String, Value> = yaml_docs(&atmos_auth_controller::cli::crds::yaml().unwrap())
        .into_iter()
        .map(|crd| (name(&crd).to_owned(), normalized(&crd)))
        .collect();
    let rendered: BTreeMap<String, Value> = of_kind(&render(&[]), "CustomResourceDefinition")
        .into_iter()
        .map(|crd| {
            let mut crd = crd.clone();
            let meta = crd["metadata"].as_object_mut().unwrap();
            meta.remove("labels");
            meta.remove("annotations");
            (name(&crd).to_owned(), normalized(&crd))
        })
        .collect();
    assert!(
        rendered == expected,
        "the chart renders its CRDs differently from `atmos-auth-controller crds` at {}",
        first_difference(&json!(rendered), &json!(expected), String::new()).unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------
// The chart, on a real API server
// ---------------------------------------------------------------------------------------

#[test]
fn rendered_manifests_apply_server_side() {
    // A private control plane: `kubectl apply` here, `helm install` on the shared one.
    let cp = ControlPlane::start().expect("a private control plane");
    let kubeconfig = cp.kubeconfig_path();
    ok(
        tool_on("kubectl", kubeconfig).args(["create", "namespace", "atmos-auth-rendered"]),
        None,
    );
    ok(
        tool_on("kubectl", kubeconfig).args(["create", "namespace", "team-a"]),
        None,
    );
    ok(
        tool_on("kubectl", kubeconfig).args(["create", "namespace", "team-b"]),
        None,
    );
    let renders = [
        ("default", template("rendered", "atmos-auth-rendered", &[])),
        (
            "namespaced, HA",
            template(
                "rendered-ns",
                "atmos-auth-rendered",
                &[
                    "--set-json",
                    r#"controller.watchNamespaces=["team-a","team-b"]"#,
                    "--set",
                    "replicaCount=2",
                ],
            ),
        ),
    ];
    for (what, manifests) in &renders {
        let count = yaml_docs(manifests).len();
        // Dry run first: every object is validated (schemas, CEL of the policy, RBAC
        // escalation checks) without creating anything ...
        let dry = ok_without_warnings(
            tool_on("kubectl", kubeconfig).args(["apply", "--server-side", "--dry-run=server", "-f", "-"]),
            Some(manifests),
        );
        assert_eq!(
            dry.lines().filter(|l| l.contains("(server dry run)")).count(),
            count,
            "{what}:\n{dry}"
        );
        // ... then for real.
        let real = ok_without_warnings(
            tool_on("kubectl", kubeconfig).args(["apply", "--server-side", "-f", "-"]),
            Some(manifests),
        );
        assert_eq!(
            real.lines().filter(|l| l.contains("serverside-applied")).count(),
            count,
            "{what}:\n{real}"
        );
    }
    let deployments = ok(
        tool_on("kubectl", kubeconfig).args(["get", "deployments", "-n", "atmos-auth-rendered", "-o", "name"]),
        None,
    );
    assert_eq!(
        deployments.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "deployment.apps/rendered-atmos-auth-controller",
            "deployment.apps/rendered-ns-atmos-auth-controller"
        ])
    );
    ok(
        tool_on("kubectl", kubeconfig).args([
            "get",
            "poddisruptionbudget",
            "-n",
            "atmos-auth-rendered",
            "rendered-ns-atmos-auth-controller",
        ]),
        None,
    );
    ok(
        tool_on("kubectl", kubeconfig).args(["get", "role", "-n", "team-b", "rendered-ns-atmos-auth-controller"]),
        None,
    );
}

#[test]
fn owner_references_permission_enforcement_needs_its_value() {
    // Some clusters (OpenShift) enable the OwnerReferencesPermissionEnforcement admission
    // plugin: whoever sets blockOwnerDeletion on an owner reference, as the controller does on
    // each Secret it writes, must be allowed to update the owner's finalizers. Show that the
    // default rules are refused there and the chart's value fixes it.
    let cp = ControlPlane::start_with(controlplane::ControlPlaneOptions {
        apiserver_args: vec!["--enable-admission-plugins=OwnerReferencesPermissionEnforcement".into()],
        ..Default::default()
    })
    .expect("a private control plane with OwnerReferencesPermissionEnforcement");
    let kubeconfig = cp.kubeconfig_path();
    let kubectl = || tool_on("kubectl", kubeconfig);
    ok(kubectl().args(["create", "namespace", "atmos-auth-system"]), None);
    ok(kubectl().args(["create", "namespace", "owners"]), None);
    let apply = |args: &[&str]| {
        let manifests = template(RELEASE, NAMESPACE, args);
        ok(
            tool_on("kubectl", kubeconfig).args(["apply", "--server-side", "-f", "-"]),
            Some(&manifests),
        );
    };
    apply(&[]);
    ok(
        kubectl().args(["wait", "--for=condition=Established", "crd/identities.auth.atmos.tools"]),
        None,
    );
    ok(
        kubectl().args(["apply", "--server-side", "-f", "-"]),
        Some(&identity_yaml("owners", "owner", Some("tf"))),
    );
    let uid = ok(
        kubectl().args([
            "get",
            "identity",
            "owner",
            "-n",
            "owners",
            "-o",
            "jsonpath={.metadata.uid}",
        ]),
        None,
    );
    // The owner reference kube's controller_owner_ref() builds.
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "owned",
            "namespace": "owners",
            "ownerReferences": [{
                "apiVersion": "auth.atmos.tools/v1alpha1",
                "kind": "Identity",
                "name": "owner",
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
    })
    .to_string();
    let create_as_controller = || {
        output(
            tool_on("kubectl", kubeconfig).args(["create", "--dry-run=server", "-f", "-", "--as", CONTROLLER]),
            Some(&secret),
        )
    };
    let refused = create_as_controller();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("blockOwnerDeletion"),
        "{stderr}"
    );

    apply(&["--set", "rbac.ownerReferencesPermissionEnforcement=true"]);
    let out = eventually("the finalizers rule to take effect", Duration::from_secs(10), || {
        let out = create_as_controller();
        out.status.success().then_some(out)
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("created (server dry run)"));
}

#[test]
fn helm_adopts_crds_applied_before_with_the_docs_snippet() {
    // The development and end-to-end setups apply crds/ with kubectl; the docs show how to
    // hand those CRDs to Helm. Without that step the install must fail, with it succeed.
    let cp = ControlPlane::start().expect("a private control plane");
    ok(
        tool_on("kubectl", cp.kubeconfig_path())
            .args(["apply", "--server-side", "-f"])
            .arg(repo().join("crds")),
        None,
    );
    let refused = run_docs_install(&cp).expect_err("Helm must not silently adopt CRDs it did not create");
    assert!(
        refused.contains("cannot be imported into the current release"),
        "{refused}"
    );
    run_docs_block(
        &cp,
        &docs_block_after("`helm_adopts_crds_applied_before_with_the_docs_snippet`"),
    )
    .unwrap_or_else(|e| panic!("the adoption snippet: {e}"));
    run_docs_install(&cp).unwrap_or_else(|e| panic!("install after adoption: {e}"));
    let crd = ok(
        tool_on("kubectl", cp.kubeconfig_path()).args(["get", "crd", "identities.auth.atmos.tools", "-o", "json"]),
        None,
    );
    let crd: Value = serde_json::from_str(&crd).unwrap();
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
        "now managed by the release"
    );
}

#[test]
fn helm_install_from_docs() {
    let cp = installed();
    let status = ok(
        tool_on("helm", cp.kubeconfig_path()).args(["status", RELEASE, "-n", NAMESPACE, "-o", "json"]),
        None,
    );
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed");

    let get = |args: &[&str]| -> Value {
        serde_json::from_str(&ok(kubectl(cp).args(args).args(["-o", "json"]), None)).unwrap()
    };
    let deployment = get(&["get", "deployment", RELEASE, "-n", NAMESPACE]);
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["image"],
        format!("{TEST_IMAGE_REPO}:0.1.0"),
        "the docs' --set image.* reached the pod"
    );
    for (kind, name) in [
        ("serviceaccount", RELEASE),
        ("service", "atmos-auth-controller-metrics"),
        ("role", "atmos-auth-controller-leader-election"),
        ("rolebinding", "atmos-auth-controller-leader-election"),
    ] {
        get(&["get", kind, name, "-n", NAMESPACE]);
    }
    for (kind, name) in [
        ("clusterrole", RELEASE),
        ("clusterrolebinding", RELEASE),
        ("clusterrole", TOKEN_CREATOR),
        (
            "validatingadmissionpolicy",
            "atmos-auth-controller-identity-serviceaccount",
        ),
        (
            "validatingadmissionpolicybinding",
            "atmos-auth-controller-identity-serviceaccount",
        ),
    ] {
        get(&["get", kind, name]);
    }
    let crd = get(&["get", "crd", "identities.auth.atmos.tools"]);
    assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");

    // Nothing the chart made binds the token creator.
    let bindings = get(&[
        "get",
        "clusterrolebindings,rolebindings",
        "-A",
        "-l",
        "app.kubernetes.io/instance=atmos-auth-controller",
    ]);
    for binding in bindings["items"].as_array().unwrap() {
        assert_ne!(binding["roleRef"]["name"], TOKEN_CREATOR, "{binding}");
    }
    // No wildcard in what is installed either.
    let roles = get(&[
        "get",
        "clusterroles,roles",
        "-A",
        "-l",
        "app.kubernetes.io/instance=atmos-auth-controller",
    ]);
    let roles = roles["items"].as_array().unwrap().clone();
    assert!(roles.len() >= 5, "{} roles", roles.len());
    for (owner, rule) in rules(&roles) {
        assert!(!rule.to_string().contains('*'), "wildcard in {owner}: {rule}");
    }

    // The documented command is also the upgrade command: running it again succeeds.
    let notes =
        run_docs_install(cp).unwrap_or_else(|e| panic!("running the docs' install block again (upgrade) failed: {e}"));
    // NOTES.txt tells the newcomer the one step the install cannot do for them.
    assert!(
        notes.contains("The controller may not mint ServiceAccount tokens anywhere yet"),
        "{notes}"
    );
    assert!(
        notes.contains("--clusterrole=atmos-auth-controller-token-creator"),
        "{notes}"
    );
    assert!(
        notes.contains("--serviceaccount=atmos-auth-system:atmos-auth-controller"),
        "{notes}"
    );
    let status: Value = serde_json::from_str(&ok(
        tool_on("helm", cp.kubeconfig_path()).args(["status", RELEASE, "-n", NAMESPACE, "-o", "json"]),
        None,
    ))
    .unwrap();
    assert_eq!(status["version"], 2);
}

/// One `kubectl auth can-i` question for the controller's ServiceAccount.
struct Can {
    verb: &'static str,
    resource: &'static str,
    /// `-n NS`, or all namespaces when None.
    namespace: Option<&'static str>,
    subresource: Option<&'static str>,
    allowed: bool,
}

const fn can(verb: &'static str, resource: &'static str, namespace: Option<&'static str>, allowed: bool) -> Can {
    Can {
        verb,
        resource,
        namespace,
        subresource: None,
        allowed,
    }
}

const fn can_sub(
    verb: &'static str,
    resource: &'static str,
    sub: &'static str,
    namespace: Option<&'static str>,
    allowed: bool,
) -> Can {
    Can {
        verb,
        resource,
        namespace,
        subresource: Some(sub),
        allowed,
    }
}

#[test]
fn rbac_matrix_of_the_controller() {
    let cp = installed();
    // A namespace whose admin granted the controller one ServiceAccount (`granted`), as
    // docs/install.md shows, and has another one (`other`) it must not use.
    apply_admin(
        cp,
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: rbac-matrix}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: granted, namespace: rbac-matrix}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: other, namespace: rbac-matrix}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: atmos-auth-controller-token-creator, namespace: rbac-matrix}
rules:
  - apiGroups: [""]
    resources: ["serviceaccounts/token"]
    verbs: ["create"]
    resourceNames: ["granted"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: atmos-auth-controller-token-creator, namespace: rbac-matrix}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: atmos-auth-controller-token-creator}
subjects: [{kind: ServiceAccount, name: atmos-auth-controller, namespace: atmos-auth-system}]
---
# The shipped ClusterRole bound for a whole namespace: every ServiceAccount there.
apiVersion: v1
kind: Namespace
metadata: {name: rbac-matrix-all}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: atmos-auth-controller-token-creator, namespace: rbac-matrix-all}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: atmos-auth-controller-token-creator}
subjects: [{kind: ServiceAccount, name: atmos-auth-controller, namespace: atmos-auth-system}]
"#,
    );
    const NS: Option<&str> = Some("rbac-matrix");
    const OWN: Option<&str> = Some(NAMESPACE);
    const ALL: Option<&str> = None;
    let matrix = [
        // Its caches and status.
        can("list", "authprofiles.auth.atmos.tools", ALL, true),
        can("watch", "identities.auth.atmos.tools", ALL, true),
        can("get", "identities.auth.atmos.tools", NS, true),
        can_sub("patch", "identities.auth.atmos.tools", "status", NS, true),
        can_sub("patch", "authprofiles.auth.atmos.tools", "status", NS, true),
        // It never writes the spec of what people wrote.
        can("create", "identities.auth.atmos.tools", NS, false),
        can("update", "identities.auth.atmos.tools", NS, false),
        can("patch", "identities.auth.atmos.tools", NS, false),
        can("delete", "authprofiles.auth.atmos.tools", NS, false),
        can_sub("update", "identities.auth.atmos.tools", "status", NS, false),
        can_sub("update", "identities.auth.atmos.tools", "finalizers", NS, false),
        // Secrets: read metadata, create, apply; never delete or update.
        can("list", "secrets", ALL, true),
        can("watch", "secrets", ALL, true),
        can("get", "secrets", NS, true),
        can("create", "secrets", NS, true),
        can("patch", "secrets", NS, true),
        can("delete", "secrets", NS, false),
        can("deletecollection", "secrets", NS, false),
        can("update", "secrets", NS, false),
        // Events.
        can("create", "events.events.k8s.io", NS, true),
        can("patch", "events.events.k8s.io", NS, true),
        can("delete", "events.events.k8s.io", NS, false),
        // Its Lease, in its own namespace only.
        can("create", "leases.coordination.k8s.io", OWN, true),
        can("get", "leases.coordination.k8s.io/atmos-auth-controller", OWN, true),
        can("patch", "leases.coordination.k8s.io/atmos-auth-controller", OWN, true),
        can("patch", "leases.coordination.k8s.io/kube-scheduler", OWN, false),
        can("delete", "leases.coordination.k8s.io/atmos-auth-controller", OWN, false),
        can("create", "leases.coordination.k8s.io", NS, false),
        can(
            "get",
            "leases.coordination.k8s.io/atmos-auth-controller",
            Some("kube-system"),
            false,
        ),
        // Tokens: only for the ServiceAccounts a namespace admin granted.
        can_sub("create", "serviceaccounts/granted", "token", NS, true),
        can_sub("create", "serviceaccounts/other", "token", NS, false),
        can_sub("create", "serviceaccounts", "token", NS, false),
        can_sub(
            "create",
            "serviceaccounts/anything",
            "token",
            Some("rbac-matrix-all"),
            true,
        ),
        can_sub("create", "serviceaccounts/granted", "token", Some("default"), false),
        can_sub("create", "serviceaccounts/default", "token", OWN, false),
        can_sub("create", "serviceaccounts", "token", ALL, false),
        can("get", "serviceaccounts", NS, false),
        // Nothing else: no pods, no ConfigMaps, no RBAC, no impersonation.
        can("get", "pods", NS, false),
        can("list", "pods", ALL, false),
        can("create", "pods", NS, false),
        can_sub("get", "pods", "log", NS, false),
        can_sub("create", "pods", "exec", NS, false),
        can("get", "configmaps", NS, false),
        can("list", "namespaces", ALL, false),
        can("get", "nodes", ALL, false),
        can("create", "customresourcedefinitions.apiextensions.k8s.io", ALL, false),
        can("create", "rolebindings.rbac.authorization.k8s.io", NS, false),
        can("create", "clusterrolebindings.rbac.authorization.k8s.io", ALL, false),
        can("bind", "clusterroles.rbac.authorization.k8s.io", ALL, false),
        can("bind", "roles.rbac.authorization.k8s.io", NS, false),
        can("escalate", "clusterroles.rbac.authorization.k8s.io", ALL, false),
        can("escalate", "roles.rbac.authorization.k8s.io", NS, false),
        can("impersonate", "users", ALL, false),
        can("impersonate", "groups", ALL, false),
        can("impersonate", "serviceaccounts", NS, false),
        can(
            "update",
            "validatingadmissionpolicies.admissionregistration.k8s.io",
            ALL,
            false,
        ),
    ];
    let mut wrong = Vec::new();
    for case in &matrix {
        let mut command = kubectl(cp);
        command.args(["auth", "can-i", case.verb, case.resource, "--as", CONTROLLER]);
        match case.namespace {
            Some(ns) => command.args(["-n", ns]),
            None => command.arg("--all-namespaces"),
        };
        if let Some(sub) = case.subresource {
            command.arg(format!("--subresource={sub}"));
        }
        let out = output(&mut command, None);
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // can-i exits 0 for yes, 1 for no; anything else is an error of the question.
        let allowed = match (out.status.code(), answer.as_str()) {
            (Some(0), "yes") => true,
            (Some(1), "no") => false,
            _ => panic!(
                "{}: {answer} {}",
                describe(&command),
                String::from_utf8_lossy(&out.stderr)
            ),
        };
        if allowed != case.allowed {
            wrong.push(format!(
                "{} {} {}in {}: expected {}, got {}",
                case.verb,
                case.resource,
                case.subresource
                    .map(|s| format!("(subresource {s}) "))
                    .unwrap_or_default(),
                case.namespace.unwrap_or("all namespaces"),
                if case.allowed { "yes" } else { "no" },
                answer
            ));
        }
    }
    assert!(wrong.is_empty(), "RBAC of {CONTROLLER}:\n{}", wrong.join("\n"));
}

fn identity_yaml(namespace: &str, name: &str, service_account: Option<&str>) -> String {
    let sa = service_account
        .map(|sa| format!("\n  serviceAccountName: {sa}"))
        .unwrap_or_default();
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  profile: k8s{sa}\n"
    )
}

#[test]
fn admission_policy_two_users() {
    let cp = installed();
    const NS: &str = "vap-team";
    // alice may create tokens for ServiceAccount tf, bob may not; both may write Identities.
    // carol is a namespace editor (the `edit` rules: tokens for every ServiceAccount).
    apply_admin(
        cp,
        &format!(
            r#"
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: tf, namespace: {NS}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: other, namespace: {NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: identity-writer, namespace: {NS}}}
rules:
  - apiGroups: ["auth.atmos.tools"]
    resources: ["identities"]
    verbs: ["get", "create", "update", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: identity-writer, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: identity-writer}}
subjects:
  - {{apiGroup: rbac.authorization.k8s.io, kind: User, name: vap-alice}}
  - {{apiGroup: rbac.authorization.k8s.io, kind: User, name: vap-bob}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: tf-token, namespace: {NS}}}
rules:
  - apiGroups: [""]
    resources: ["serviceaccounts/token"]
    verbs: ["create"]
    resourceNames: ["tf"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: tf-token, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: tf-token}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: vap-alice}}]
---
# `edit` is aggregated by a controller this control plane does not run: bind its parts.
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: carol-edit, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:aggregate-to-edit}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: vap-carol}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: carol-edit-identities, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: atmos-auth-controller-edit}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: vap-carol}}]
"#
        ),
    );
    let alice = cp.user_kubeconfig("vap-alice", &[]).unwrap();
    let bob = cp.user_kubeconfig("vap-bob", &[]).unwrap();
    let carol = cp.user_kubeconfig("vap-carol", &[]).unwrap();
    let create = |who: &Path, yaml: &str, dry_run: bool| -> Output {
        let mut command = tool_on("kubectl", who);
        command.args(["create", "-f", "-"]);
        if dry_run {
            command.arg("--dry-run=server");
        }
        output(&mut command, Some(yaml))
    };
    let denied = |out: &Output| -> Option<String> {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success()
            && stderr.contains("ValidatingAdmissionPolicy 'atmos-auth-controller-identity-serviceaccount'"))
        .then_some(stderr)
    };

    // The API server picks the policy up asynchronously after `helm install`.
    let uses_tf = identity_yaml(NS, "network", Some("tf"));
    let message = eventually("the admission policy to refuse bob", Duration::from_secs(30), || {
        denied(&create(&bob, &uses_tf, true))
    });
    assert!(
        message.contains("user vap-bob may not create tokens for ServiceAccount tf in namespace vap-team"),
        "{message}"
    );

    // bob, for real: refused. alice: created.
    assert!(denied(&create(&bob, &uses_tf, false)).is_some());
    let out = create(&alice, &uses_tf, false);
    assert!(
        out.status.success(),
        "alice may create it: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // alice's right covers tf only: not another ServiceAccount, not "whatever the profile says".
    let uses_other = identity_yaml(NS, "other", Some("other"));
    assert!(
        denied(&create(&alice, &uses_other, true)).is_some(),
        "alice may not use ServiceAccount other"
    );
    let from_profile = identity_yaml(NS, "from-profile", None);
    let message = denied(&create(&alice, &from_profile, true))
        .expect("without serviceAccountName alice needs every ServiceAccount");
    assert!(
        message.contains("name the ServiceAccount in spec.serviceAccountName"),
        "{message}"
    );

    // Updates: a spec change is checked against the updater, a metadata change is not.
    let patch = |who: &Path, body: &str| -> Output {
        output(
            tool_on("kubectl", who).args(["patch", "identity", "network", "-n", NS, "--type=merge", "-p", body]),
            None,
        )
    };
    assert!(
        denied(&patch(&bob, r#"{"spec":{"identity":"acme/admin"}}"#)).is_some(),
        "bob may not retarget alice's Identity"
    );
    let out = patch(&bob, r#"{"metadata":{"labels":{"team":"network"}}}"#);
    assert!(
        out.status.success(),
        "a label needs no token right: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        denied(&patch(&alice, r#"{"spec":{"serviceAccountName":"other"}}"#)).is_some(),
        "alice may not switch to other"
    );
    let out = patch(&alice, r#"{"spec":{"identity":"acme/network"}}"#);
    assert!(
        out.status.success(),
        "alice may change her own Identity: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A namespace editor may mint tokens for every ServiceAccount, so may leave the name out.
    let out = create(&carol, &from_profile, false);
    assert!(
        out.status.success(),
        "an editor may use the profile's ServiceAccount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Consumer examples
// ---------------------------------------------------------------------------------------

fn examples_dir() -> PathBuf {
    repo().join("examples/consumers")
}

/// Every YAML file of the examples, sorted; Helm values files are not manifests.
fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&examples_dir(), &mut files);
    files.sort();
    files
}

fn is_values_file(path: &Path) -> bool {
    path.file_name().unwrap().to_string_lossy().contains("values")
}

/// All example objects (manifests only).
fn example_objects() -> Vec<Value> {
    example_files()
        .iter()
        .filter(|p| !is_values_file(p))
        .flat_map(|p| yaml_file(p))
        .collect()
}

/// The pod templates: each Job's, and the runner template of each ARC values file, with the
/// namespace they run in and a name for messages.
fn example_pod_templates() -> Vec<(String, String, Value)> {
    let mut pods = Vec::new();
    for path in example_files() {
        let file = path.strip_prefix(repo()).unwrap().display().to_string();
        if is_values_file(&path) {
            // ARC's chart installs the scale set into its release namespace, which the
            // values do not name: it is the namespace of the Identity whose Secret the
            // runner template mounts.
            let values = &yaml_file(&path)[0];
            let secret = values["template"]["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|v| v["secret"]["secretName"].as_str())
                .unwrap_or_else(|| panic!("{file}: the runner template mounts no Secret"));
            let (namespace, _) = example_identities()
                .into_keys()
                .find(|(_, s)| s == secret)
                .unwrap_or_else(|| panic!("{file}: no example Identity writes Secret {secret}"));
            pods.push((file, namespace, values["template"].clone()));
        } else {
            for object in yaml_file(&path) {
                if kind(&object) == "Job" {
                    let namespace = object["metadata"]["namespace"].as_str().unwrap().to_owned();
                    pods.push((
                        format!("{file} Job {}", name(&object)),
                        namespace,
                        object["spec"]["template"].clone(),
                    ));
                }
            }
        }
    }
    assert!(pods.len() >= 3, "the ARC runner and two Terraform Jobs");
    pods
}

#[test]
fn examples_apply_as_a_namespace_admin() {
    let cp = installed();
    let objects = example_objects();
    let namespaces: Vec<String> = objects
        .iter()
        .filter(|o| kind(o) == "Namespace")
        .map(|o| name(o).to_owned())
        .collect();
    assert!(namespaces.len() >= 3, "{namespaces:?}");

    // The cluster admin's part: the namespaces, and a namespace admin for each of them.
    ok(
        kubectl(cp)
            .args(["apply", "--server-side", "-f"])
            .arg(examples_dir().join("namespaces.yaml")),
        None,
    );
    for ns in &namespaces {
        // `admin` and `edit` are aggregated by a controller this control plane does not run:
        // bind their parts, and the chart's roles that a real cluster aggregates into them.
        for role in [
            "system:aggregate-to-admin",
            "system:aggregate-to-edit",
            "system:aggregate-to-view",
            "atmos-auth-controller-edit",
            "atmos-auth-controller-view",
        ] {
            let binding = format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: 'ns-admin-{}', namespace: {ns}}}\n\
                 roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: '{role}'}}\n\
                 subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: examples-ns-admin}}]\n",
                role.replace(':', "-")
            );
            apply_admin(cp, &binding);
        }
        wait_for_default_service_account(cp, ns);
    }
    let admin = cp.user_kubeconfig("examples-ns-admin", &[]).unwrap();

    // Every manifest, first with server-side dry-run as the cluster admin (schemas, CEL
    // rules, defaulting: nothing is created, so a RoleBinding cannot see the Role of the
    // same file yet, which only the admin's escalation check does not need) ...
    let manifests: Vec<PathBuf> = example_files()
        .into_iter()
        .filter(|p| !is_values_file(p) && !p.ends_with("namespaces.yaml"))
        .collect();
    for path in &manifests {
        ok_without_warnings(
            kubectl(cp)
                .args(["apply", "--server-side", "--dry-run=server", "-f"])
                .arg(path),
            None,
        );
    }
    // ... then for real as the namespace admin. The controller's token grants pass RBAC's
    // escalation check, and the Identities the admission policy, only because that admin
    // may mint those tokens themselves.
    for path in &manifests {
        let mut command = tool_on("kubectl", &admin);
        command.args(["apply", "--server-side", "-f"]).arg(path);
        // The policy may reach the API server's cache after this test starts: retry while
        // it refuses, fail on anything else.
        eventually(&format!("{} to apply", path.display()), Duration::from_secs(30), || {
            let out = output(&mut command, None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("Warning"), "{}: {stderr}", describe(&command));
            assert!(
                out.status.success() || stderr.contains("ValidatingAdmissionPolicy"),
                "{} failed:\n{stderr}",
                describe(&command)
            );
            out.status.success().then_some(())
        });
    }
    let identities = ok(kubectl(cp).args(["get", "identities", "-A", "-o", "name"]), None);
    for expected in [
        "identity.auth.atmos.tools/plan-env",
        "identity.auth.atmos.tools/apply",
        "identity.auth.atmos.tools/ci-plan",
    ] {
        assert!(identities.contains(expected), "{expected} missing:\n{identities}");
    }

    // Pod templates as Pods: the Pod schema and the namespaces' `restricted` level are
    // enforced on Pods (a Job only warns). ARC's CRDs are absent on purpose: the runner
    // template of its values is what we validate.
    for (what, namespace, template) in example_pod_templates() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "template-check", "namespace": namespace, "labels": template["metadata"]["labels"]},
            "spec": template["spec"],
        });
        let out = ok_without_warnings(
            tool_on("kubectl", &admin).args(["create", "--dry-run=server", "-f", "-"]),
            Some(&pod.to_string()),
        );
        assert!(
            out.contains("created (server dry run)"),
            "{what} was not accepted as a Pod: {out}"
        );
    }
}

/// Identities of the examples by (namespace, Secret name).
fn example_identities() -> BTreeMap<(String, String), Value> {
    example_objects()
        .into_iter()
        .filter(|o| kind(o) == "Identity")
        .map(|o| {
            let ns = o["metadata"]["namespace"].as_str().unwrap().to_owned();
            let secret = o["spec"]["secret"]["name"].as_str().unwrap_or(name(&o)).to_owned();
            ((ns, secret), o)
        })
        .collect()
}

#[test]
fn example_pods_use_the_secret_formats_as_designed() {
    let identities = example_identities();
    let mut process_pods = 0;
    let mut env_pods = 0;
    for (what, namespace, template) in example_pod_templates() {
        let spec = &template["spec"];
        let volumes: BTreeMap<&str, &str> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["name"].as_str()?, v["secret"]["secretName"].as_str()?)))
            .collect();
        for c in spec["containers"].as_array().unwrap() {
            let env = env_of(c);
            for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
                assert!(!env.contains_key(key), "{what}: static {key}");
            }
            let env_from: Vec<&str> = c["envFrom"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["secretRef"]["name"].as_str())
                .collect();
            let mounts: Vec<(&Value, &str)> = c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| Some((m, *volumes.get(m["name"].as_str()?)?)))
                .collect();
            assert!(
                env_from.is_empty() || mounts.is_empty(),
                "{what}: envFrom and a credentials mount in one container silently disable renewal"
            );
            for secret in &env_from {
                let identity = &identities[&(namespace.clone(), (*secret).to_owned())];
                assert_eq!(
                    identity["spec"]["secret"]["formats"],
                    json!(["env"]),
                    "{what}: envFrom needs the env format"
                );
                assert!(!env.contains_key("AWS_CONFIG_FILE") && !env.contains_key("AWS_PROFILE"));
                env_pods += 1;
            }
            for (mount, secret) in mounts {
                let identity = identities
                    .get(&(namespace.clone(), secret.to_owned()))
                    .unwrap_or_else(|| panic!("{what}: no Identity writes Secret {namespace}/{secret}"));
                let formats = &identity["spec"]["secret"]["formats"];
                assert!(
                    formats.is_null() || *formats == json!(["process"]),
                    "{what}: mount the process format alone"
                );
                let mount_path = identity["spec"]["secret"]["mountPath"]
                    .as_str()
                    .unwrap_or("/var/run/secrets/atmos-auth");
                assert_eq!(
                    mount["mountPath"], mount_path,
                    "{what}: credential_process reads from the Identity's mountPath"
                );
                assert!(
                    mount.get("subPath").is_none(),
                    "{what}: a subPath mount is never updated"
                );
                assert_eq!(
                    env.get("AWS_CONFIG_FILE"),
                    Some(&json!(format!("{mount_path}/config"))),
                    "{what}"
                );
                assert_eq!(
                    env.get("AWS_PROFILE"),
                    Some(&identity["spec"]["identity"]),
                    "{what}: the profile is the identity name"
                );
                process_pods += 1;
            }
        }
    }
    assert!(
        process_pods >= 2 && env_pods >= 1,
        "process mounts {process_pods}, envFrom {env_pods}"
    );
}

/// Seconds of an Atmos duration such as `1h`, `90m` or `1h30m`.
fn seconds(duration: &str) -> u64 {
    let mut total = 0;
    let mut number = 0;
    for c in duration.chars() {
        let unit = match c {
            '0'..='9' => {
                number = number * 10 + u64::from(c.to_digit(10).unwrap());
                continue;
            }
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => panic!("unexpected duration {duration}"),
        };
        total += number * unit;
        number = 0;
    }
    total
}

#[test]
fn env_jobs_end_within_one_session() {
    // Environment variables are never renewed: a Job using the `env` format must be stopped
    // (activeDeadlineSeconds) before its session ends.
    let objects = example_objects();
    let identities = example_identities();
    let mut checked = 0;
    for job in objects.iter().filter(|o| kind(o) == "Job") {
        let ns = job["metadata"]["namespace"].as_str().unwrap();
        for c in job["spec"]["template"]["spec"]["containers"].as_array().unwrap() {
            for secret in c["envFrom"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["secretRef"]["name"].as_str())
            {
                let identity = &identities[&(ns.to_owned(), secret.to_owned())];
                let profile = objects
                    .iter()
                    .find(|o| {
                        kind(o) == "AuthProfile"
                            && o["metadata"]["namespace"] == ns
                            && o["metadata"]["name"] == identity["spec"]["profile"]
                    })
                    .unwrap();
                let def = &profile["spec"]["identities"][identity["spec"]["identity"].as_str().unwrap()];
                let session = seconds(def["principal"]["duration"].as_str().unwrap_or("1h"));
                let deadline = job["spec"]["activeDeadlineSeconds"].as_u64().unwrap_or(u64::MAX);
                assert!(
                    deadline < session,
                    "Job {ns}/{} may outlive its {session} s session",
                    name(job)
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 1, "the plan Job");
}

#[test]
fn trust_policies_name_exactly_the_example_service_accounts() {
    // Role name -> the `sub` of every example Identity whose chain starts with that role.
    let objects = example_objects();
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for identity in objects.iter().filter(|o| kind(o) == "Identity") {
        let ns = identity["metadata"]["namespace"].as_str().unwrap();
        let profile = objects
            .iter()
            .find(|o| {
                kind(o) == "AuthProfile"
                    && o["metadata"]["namespace"] == ns
                    && o["metadata"]["name"] == identity["spec"]["profile"]
            })
            .unwrap_or_else(|| panic!("Identity {ns}/{} names a missing profile", name(identity)));
        let def = &profile["spec"]["identities"][identity["spec"]["identity"].as_str().unwrap()];
        assert!(
            def["via"]["provider"].is_string(),
            "the examples' identities start at the provider"
        );
        let role = def["principal"]["assume_role"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let sa = identity["spec"]["serviceAccountName"]
            .as_str()
            .expect("examples always name the ServiceAccount");
        assert!(
            objects
                .iter()
                .any(|o| kind(o) == "ServiceAccount" && o["metadata"]["namespace"] == ns && name(o) == sa),
            "ServiceAccount {ns}/{sa} is not in the examples"
        );
        expected
            .entry(role)
            .or_default()
            .insert(format!("system:serviceaccount:{ns}:{sa}"));
    }
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in fs::read_dir(examples_dir().join("aws")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(role) = file.strip_prefix("trust-policy-").and_then(|f| f.strip_suffix(".json")) else {
            continue;
        };
        let policy: Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{file}: {e}"));
        for statement in policy["Statement"].as_array().unwrap() {
            assert_eq!(statement["Effect"], "Allow");
            assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity", "{file}");
            let provider = statement["Principal"]["Federated"].as_str().unwrap();
            let issuer = provider
                .split_once(":oidc-provider/")
                .expect("an IAM OIDC provider ARN")
                .1;
            let conditions = statement["Condition"]["StringEquals"]
                .as_object()
                .expect("StringEquals, never StringLike");
            assert_eq!(conditions[&format!("{issuer}:aud")], "sts.amazonaws.com", "{file}");
            let subs = &conditions[&format!("{issuer}:sub")];
            let subs: Vec<&str> = if let Some(s) = subs.as_str() {
                vec![s]
            } else {
                strs(subs)
            };
            found
                .entry(role.to_owned())
                .or_default()
                .extend(subs.into_iter().map(str::to_owned));
        }
    }
    assert_eq!(
        found, expected,
        "trust policies vs the ServiceAccounts of the example Identities"
    );
}

// ---------------------------------------------------------------------------------------
// Container image
// ---------------------------------------------------------------------------------------

#[test]
fn dockerfile_copies_existing_paths_into_a_non_root_distroless_image() {
    let dockerfile = fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let dockerignore = fs::read_to_string(repo().join(".dockerignore")).unwrap();
    // .dockerignore is an allow-list: exclude everything, re-include what the build needs.
    let ignore: Vec<&str> = dockerignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        ignore.first(),
        Some(&"*"),
        ".dockerignore starts by excluding everything"
    );
    let included: Vec<&str> = ignore
        .iter()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();

    let instructions: Vec<String> = dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut copied = 0;
    let mut runtime_copy_dest = None;
    for line in &instructions {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
            runtime_copy_dest = words.last().map(|s| s.to_string());
            continue;
        }
        let (sources, _dest) = words.split_at(words.len() - 1);
        for source in sources.iter().filter(|w| !w.starts_with("--")) {
            let source = source.trim_end_matches('/');
            assert!(
                repo().join(source).exists(),
                "Dockerfile copies {source}, which does not exist"
            );
            assert!(
                included
                    .iter()
                    .any(|inc| source == *inc || source.starts_with(&format!("{inc}/"))),
                "Dockerfile copies {source}, which .dockerignore leaves out of the build context"
            );
            copied += 1;
        }
    }
    assert!(copied >= 4, "Cargo.toml, Cargo.lock, src, the workspace member");

    // Every workspace member's manifest must be in the context, or cargo cannot load the
    // workspace.
    let cargo: Value = toml_members(&fs::read_to_string(repo().join("Cargo.toml")).unwrap());
    for member in strs(&cargo).into_iter().filter(|m| *m != ".") {
        assert!(
            instructions
                .iter()
                .any(|l| l.starts_with("COPY ") && l.contains(member)),
            "workspace member {member} is not copied"
        );
    }

    let froms: Vec<&String> = instructions.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(
        froms[0].contains("rust:"),
        "the build stage is the official Rust image: {}",
        froms[0]
    );
    assert!(
        froms[1].contains("gcr.io/distroless/cc"),
        "the runtime is distroless cc (glibc): {}",
        froms[1]
    );
    let build = instructions
        .iter()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build");
    assert!(
        build.contains("--release") && build.contains("--locked") && build.contains("--bin atmos-auth-controller"),
        "{build}"
    );
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert_eq!(
        user, "65532:65532",
        "non-root, and the uid the chart's podSecurityContext sets"
    );
    let entrypoint = instructions
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("exec form");
    assert_eq!(
        Some(&entrypoint[0]),
        runtime_copy_dest.as_ref(),
        "the entrypoint is the binary copied from the build stage"
    );

    let values = yaml_file(&chart_dir().join("values.yaml")).remove(0);
    assert_eq!(values["podSecurityContext"]["runAsUser"], 65532);
}

/// `[workspace] members = [...]` of a Cargo.toml, without a TOML parser (none is a
/// dependency): the one-line array form this repository uses.
fn toml_members(cargo_toml: &str) -> Value {
    let line = cargo_toml
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    let array = line.split_once('=').unwrap().1.trim();
    serde_json::from_str(array).expect("members = [\"...\"] on one line")
}
