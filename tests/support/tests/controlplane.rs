//! The local control plane does what the integration tests rely on. Each test runs in its own
//! tokio runtime against the one shared control plane, which also proves that sharing works.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use atmos_auth_testenv::controlplane::{ControlPlane, ControlPlaneOptions, K8S_VERSION, shared};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use k8s_openapi::{
    api::{
        authentication::v1::{TokenRequest, TokenRequestSpec},
        core::v1::{ConfigMap, Namespace, ServiceAccount},
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Client,
    api::{DeleteParams, ObjectMeta, PostParams},
};
use serde_json::Value;

async fn create_namespace(client: &Client, name: &str) -> kube::Result<Namespace> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
}

#[tokio::test]
async fn reports_the_pinned_version() {
    let client = shared().client().await.unwrap();
    assert_eq!(client.apiserver_version().await.unwrap().git_version, K8S_VERSION);
}

#[tokio::test]
async fn issues_service_account_tokens_for_sts() {
    let cp = shared();
    let client = cp.client().await.unwrap();
    create_namespace(&client, "token-test").await.unwrap();
    let service_accounts = Api::<ServiceAccount>::namespaced(client, "token-test");
    let service_account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("workload".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    service_accounts
        .create(&PostParams::default(), &service_account)
        .await
        .unwrap();

    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["sts.amazonaws.com".into()],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let response = service_accounts
        .create_token_request("workload", &PostParams::default(), &request)
        .await
        .unwrap();
    let token = response.status.unwrap().token;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], cp.issuer());
    assert_eq!(claims["aud"][0], "sts.amazonaws.com");
    assert_eq!(claims["sub"], "system:serviceaccount:token-test:workload");
}

#[tokio::test]
async fn serves_oidc_discovery_anonymously() {
    let cp = shared();
    let http = cp.http_client().unwrap();
    let url = format!("{}/.well-known/openid-configuration", cp.issuer());
    let discovery: Value = http
        .get(url)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], cp.issuer());
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    assert_eq!(jwks_uri, format!("{}/openid/v1/jwks", cp.issuer()));
    let jwks: Value = http
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty(), "{jwks}");
}

#[tokio::test]
async fn garbage_collects_owned_objects() {
    let client = shared().client().await.unwrap();
    create_namespace(&client, "gc-test").await.unwrap();
    let config_maps = Api::<ConfigMap>::namespaced(client, "gc-test");
    let owner = ConfigMap {
        metadata: ObjectMeta {
            name: Some("owner".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let owner = config_maps.create(&PostParams::default(), &owner).await.unwrap();
    let owned = ConfigMap {
        metadata: ObjectMeta {
            name: Some("owned".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: owner.metadata.uid.unwrap(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps.create(&PostParams::default(), &owned).await.unwrap();
    config_maps.delete("owner", &DeleteParams::default()).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while config_maps.get_opt("owned").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the owned ConfigMap was not garbage-collected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn kubectl_uses_the_admin_kubeconfig() {
    let output = shared()
        .command("kubectl")
        .args(["get", "serviceaccount", "default", "-o", "name"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "serviceaccount/default");
}

/// Gone, or a zombie waiting for init to reap it.
fn running(pid: &u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn drop_stops_the_processes_and_removes_the_dir() {
    let cp = ControlPlane::start().unwrap();
    let (dir, pids) = (cp.dir().to_owned(), cp.pids());
    drop(cp);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!pids.iter().any(running), "{pids:?} still running");
}

#[test]
fn startup_failure_shows_the_log_and_cleans_up() {
    let options = ControlPlaneOptions {
        apiserver_args: vec!["--no-such-flag".into()],
        ..Default::default()
    };
    let error = format!("{:#}", ControlPlane::start_with(options).err().unwrap());
    assert!(error.contains("kube-apiserver exited"), "{error}");
    assert!(error.contains("unknown flag: --no-such-flag"), "{error}");
    let log = error
        .split("--- last lines of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    assert!(!Path::new(log).parent().unwrap().exists(), "{log}: dir left behind");
}

/// Set in the child process of `tears_down_after_sigkill`.
const TEARDOWN_CHILD: &str = "ATMOS_AUTH_TEARDOWN_CHILD";

/// Starts a control plane in a child test process, kills that process with SIGKILL and
/// checks that the supervisor kills etcd, kube-apiserver and kube-controller-manager and
/// removes the temp dir.
#[test]
fn tears_down_after_sigkill() {
    if std::env::var_os(TEARDOWN_CHILD).is_some() {
        let cp = shared();
        let pids: Vec<String> = cp.pids().iter().map(u32::to_string).collect();
        println!("dir={}", cp.dir().display());
        println!("pids={}", pids.join(","));
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["tears_down_after_sigkill", "--exact", "--nocapture", "--test-threads=1"])
        .env(TEARDOWN_CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut dir, mut pids) = (None, Vec::new());
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        // libtest prints "test <name> ... " before our first line.
        let line = line.unwrap();
        if let Some((_, value)) = line.split_once("dir=") {
            dir = Some(value.to_string());
        } else if let Some((_, value)) = line.split_once("pids=") {
            pids = value.split(',').map(|p| p.parse::<u32>().unwrap()).collect();
            break;
        }
    }
    let dir = dir.expect("the child printed no temp dir; did its control plane start?");
    assert_eq!(pids.len(), 3);
    assert!(Path::new(&dir).is_dir());

    child.kill().unwrap(); // SIGKILL: no destructor, no atexit handler runs
    child.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while Path::new(&dir).exists() || pids.iter().any(running) {
        assert!(
            Instant::now() < deadline,
            "left behind: dir {dir} exists / pids {pids:?} running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
