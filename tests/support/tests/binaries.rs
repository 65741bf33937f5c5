//! The binaries `tests/controlplane/build-binaries.sh` builds: one multi-call binary for the
//! Kubernetes components, and a helm that knows its Kubernetes version as a release does.

use std::{fs, path::Path, process::Command};

use atmos_auth_testenv::{
    controlplane::{K8S_VERSION, k8s_bin_dir},
    helm,
};
use serde_json::Value;

fn run(command: &mut Command) -> (Option<i32>, String) {
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn kubernetes_components_are_one_multi_call_binary() {
    if std::env::var_os("ATMOS_AUTH_K8S_BIN").is_some() {
        return; // binaries from elsewhere: their layout is not ours to check
    }
    let bin = k8s_bin_dir().unwrap();
    let kube = fs::canonicalize(bin.join("kube")).unwrap();
    for name in ["kube-apiserver", "kube-controller-manager", "kubectl"] {
        assert_eq!(
            fs::canonicalize(bin.join(name)).unwrap(),
            kube,
            "{name} is a link to kube"
        );
    }
    // Dispatch by the name it was started as, and by the first argument.
    for command in [
        Command::new(bin.join("kubectl")).args(["version", "--client", "-o", "json"]),
        Command::new(&kube).args(["kubectl", "version", "--client", "-o", "json"]),
    ] {
        let (code, text) = run(command);
        assert_eq!(code, Some(0), "{text}");
        let version: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(version["clientVersion"]["gitVersion"], K8S_VERSION, "{text}");
    }
    for name in ["kube-apiserver", "kube-controller-manager"] {
        let (code, text) = run(Command::new(bin.join(name)).arg("--version"));
        assert_eq!(code, Some(0), "{name}: {text}");
        assert_eq!(text.trim(), format!("Kubernetes {K8S_VERSION}"), "{name}");
    }
    let (code, text) = run(&mut Command::new(&kube));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("usage: kube {kube-apiserver|kube-controller-manager|kubectl}"),
        "{text}"
    );
}

/// `v1.<minor>.0` for the `k8s.io/client-go v0.<minor>.<patch>` helm is built with, as
/// helm's Makefile derives it.
fn helm_kubernetes_version() -> String {
    let go_mod = Path::new(env!("CARGO_MANIFEST_DIR")).join("../controlplane/go/helm/go.mod");
    let go_mod = fs::read_to_string(go_mod).unwrap();
    let client_go = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/client-go v0."))
        .expect("k8s.io/client-go in helm's go.mod");
    let minor = client_go.split('.').next().unwrap();
    format!("v1.{minor}.0")
}

#[test]
fn helm_template_knows_its_kubernetes_version() {
    // Unstamped, helm assumes Kubernetes v1.20 and refuses a chart that needs more.
    let chart = tempfile::tempdir().unwrap();
    fs::write(
        chart.path().join("Chart.yaml"),
        "apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: \">=1.30.0-0\"\n",
    )
    .unwrap();
    fs::create_dir(chart.path().join("templates")).unwrap();
    fs::write(
        chart.path().join("templates/probe.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\ndata: {kube: \"{{ .Capabilities.KubeVersion.Version }}\"}\n",
    )
    .unwrap();
    let rendered = helm::template(chart.path(), "probe", "default", &[]).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        rendered.contains(&format!("kube: \"{}\"", helm_kubernetes_version())),
        "{rendered}"
    );
    let (code, text) = run(helm::command().unwrap().args(["version", "--short"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("v3."), "{text}");
}
