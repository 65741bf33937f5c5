//! Real consumers of the Secret (DESIGN.md, "What the Secret holds"): the real AWS CLI for
//! each format, and aws-sdk-go-v2 (the SDK of Terraform and its S3 backend) running for longer
//! than two session lifetimes on the mounted `config` alone, while the controller renews.
//!
//! A pod sees the Secret as files; here a small "kubelet" mirrors the Secret's keys into a
//! temporary directory, which is also the Identity's `mountPath`, and rewrites them whenever
//! the Secret changes. Consumers run with a cleared environment, so the host's AWS settings
//! and files never decide a result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::fixture::*;
use crate::{identity, profile};

/// Session length of the long-running cases: the shortest that keeps a 2 s call interval
/// meaningful, so the tests stay near a minute and a half.
pub(crate) const SESSION: &str = "30s";
pub(crate) const SESSION_SECONDS: u64 = 30;
/// Longer than two sessions, so the SDK has to re-run `credential_process` at least twice
/// after the first credentials expire (at ~30 s, then every ~20 s: renewal is at 2/3).
pub(crate) const RUN_FOR: Duration = Duration::from_secs(2 * SESSION_SECONDS + 10);
/// How often the kubelet stand-in looks at the Secret. The real kubelet is far slower (its
/// sync period is a minute); the controller leaves a third of a session for that.
const KUBELET_POLL: Duration = Duration::from_millis(500);

/// A stand-in for the kubelet's Secret volume: mirrors the Secret's data keys as files in a
/// temporary directory, each written to a temporary file and renamed into place (as the
/// kubelet's atomic writer swaps its data directory), so a reader never sees half a file.
/// Keeps doing so on every change until dropped.
pub(crate) struct Kubelet {
    dir: tempfile::TempDir,
    updates: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    /// Starts mirroring `secret` (which need not exist yet) into a new directory.
    pub(crate) fn start(client: &Client, ns: &str, secret: &str) -> Result<Self> {
        // A plain name under the temp dir: `mountPath` must be letters, digits and `._/-`.
        let dir = tempfile::Builder::new().prefix("atmos-mount-").tempdir()?;
        let updates = Arc::new(AtomicUsize::new(0));
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let (path, name, count) = (dir.path().to_owned(), secret.to_owned(), updates.clone());
        let task = tokio::spawn(async move {
            let mut seen = None;
            loop {
                match api.get_opt(&name).await {
                    Ok(Some(s)) if s.metadata.resource_version != seen => match mirror(&path, &s) {
                        Ok(()) => {
                            seen = s.metadata.resource_version.clone();
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => eprintln!("kubelet: writing {name} into {}: {e:#}", path.display()),
                    },
                    Ok(_) => {}
                    // Kubernetes errors carry no Secret data.
                    Err(e) => eprintln!("kubelet: reading Secret {name}: {e}"),
                }
                tokio::time::sleep(KUBELET_POLL).await;
            }
        });
        Ok(Self { dir, updates, task })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The mount path as it goes into a manifest.
    pub(crate) fn mount_path(&self) -> String {
        self.path().display().to_string()
    }

    /// How many versions of the Secret were laid out so far.
    pub(crate) fn updates(&self) -> usize {
        self.updates.load(Ordering::SeqCst)
    }

    /// Waits for the first version of the Secret to be laid out.
    pub(crate) async fn wait_mounted(&self) -> Result<()> {
        wait_for(Duration::from_secs(30), || async { Ok(self.updates() > 0) })
            .await
            .context("the Secret never appeared in the mount directory")
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes every data key of `secret` into `dir` (temp file, then rename) and removes the
/// files of keys the Secret no longer has.
fn mirror(dir: &Path, secret: &Secret) -> Result<()> {
    let data = secret.data.clone().unwrap_or_default();
    for (key, value) in &data {
        let tmp = dir.join(format!("..{key}.tmp"));
        std::fs::write(&tmp, &value.0)?;
        std::fs::rename(&tmp, dir.join(key))?;
    }
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !data.contains_key(&name) {
            std::fs::remove_file(dir.join(&name))?;
        }
    }
    Ok(())
}

/// A consumer command with none of the host's AWS settings: every `AWS_*` variable is
/// removed (a host `AWS_CA_BUNDLE` or `AWS_PROFILE` would change the outcome), proxies too
/// (the STS is on loopback), and the instance metadata service is never asked.
pub(crate) fn consumer(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("AWS_") || name.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(&*name);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// `aws sts get-caller-identity` with the given extra arguments; returns the caller ARN.
pub(crate) async fn cli_caller_arn(mut cmd: Command, endpoint: &str, extra: &[&str]) -> Result<String> {
    cmd.args([
        "sts",
        "get-caller-identity",
        "--output",
        "json",
        "--endpoint-url",
        endpoint,
    ])
    .args(extra);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .context("aws took longer than 60 s")?
        .context("running aws (tests/run.sh installs the AWS CLI)")?;
    // The CLI's error output names the failure (ExpiredToken, no credentials, ...), never the
    // keys themselves.
    ensure!(
        out.status.success(),
        "aws failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).context("aws printed no JSON")?;
    json["Arn"]
        .as_str()
        .map(str::to_owned)
        .context("no Arn in the CLI's answer")
}

#[tokio::test]
async fn the_aws_cli_reads_every_format() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "cli").await?;
    let sts = start_sts(cp);
    let _controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
    let process = Kubelet::start(&client, &ns, "cli-process")?;
    let files = Kubelet::start(&client, &ns, "cli-files")?;
    apply(&client, &ns, &profile("20m")).await?;
    // One Identity per format, each with its own session name so the ARN shows which answered.
    let mount = process.mount_path();
    for (name, identity_name, secret) in [
        (
            "cli-process",
            "acme/network",
            format!("{{formats: [process], mountPath: {mount}}}"),
        ),
        ("cli-files", "acme/admin", "{formats: [files]}".to_owned()),
        ("cli-env", "acme/network", "{formats: [env]}".to_owned()),
    ] {
        let body = format!("  identity: {identity_name}\n  principal: {{session_name: {name}}}\n  secret: {secret}");
        apply(&client, &ns, &identity(name, &body)).await?;
    }
    for name in ["cli-process", "cli-files", "cli-env"] {
        wait_reason(&client, &ns, name, "CredentialsIssued", Duration::from_secs(60)).await?;
    }
    process.wait_mounted().await?;
    files.wait_mounted().await?;
    let endpoint = sts.endpoint();
    // Where the host's own AWS files would be: nowhere.
    let nowhere = tempfile::tempdir()?;
    let none = nowhere.path().join("absent");

    // process: the config alone, as the design tells pods to mount it.
    let mut cmd = consumer("aws");
    cmd.env("AWS_CONFIG_FILE", process.path().join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    let by_process = cli_caller_arn(cmd, &endpoint, &["--profile", "acme/network"]);

    // files: Atmos's own layout, both files.
    let mut cmd = consumer("aws");
    cmd.env("AWS_CONFIG_FILE", files.path().join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", files.path().join("credentials"));
    let by_files = cli_caller_arn(cmd, &endpoint, &["--profile", "acme/admin"]);

    // env: the keys as environment variables, as `envFrom` gives them.
    let env = secret_data(&client, &ns, "cli-env").await?;
    let mut cmd = consumer("aws");
    cmd.env("AWS_CONFIG_FILE", &none)
        .env("AWS_SHARED_CREDENTIALS_FILE", &none);
    for key in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_SDK_LOAD_CONFIG",
    ] {
        cmd.env(key, env.get(key).with_context(|| format!("env Secret has no {key}"))?);
    }
    let by_env = cli_caller_arn(cmd, &endpoint, &[]);

    let started = Instant::now();
    let (by_process, by_files, by_env) = tokio::join!(by_process, by_files, by_env);
    eprintln!("aws CLI: three get-caller-identity calls in {:.1?}", started.elapsed());
    let assumed = |role: &str, session: &str| format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}");
    assert_eq!(
        by_process.context("process format")?,
        assumed("e2e-network", "cli-process")
    );
    assert_eq!(by_files.context("files format")?, assumed("e2e-admin", "cli-files"));
    assert_eq!(by_env.context("env format")?, assumed("e2e-network", "cli-env"));
    Ok(())
}

/// The Go consumer, built once per machine from tests/consumers/go-caller into a cache
/// directory keyed by the hash of its sources (the first build downloads aws-sdk-go-v2 from
/// the Go module proxy and takes about a minute; later runs reuse the binary).
pub(crate) fn go_caller() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_go_caller().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_go_caller() -> Result<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/consumers/go-caller");
    let mut hash = Sha256::new();
    for file in ["go.mod", "go.sum", "main.go"] {
        hash.update(file);
        hash.update(std::fs::read(src.join(file)).with_context(|| format!("reading {file}"))?);
    }
    let hash = hex::encode(&hash.finalize()[..8]);
    // The same cache root as tests/controlplane/build-binaries.sh.
    let root = match (std::env::var_os("ATMOS_AUTH_CACHE"), std::env::var_os("XDG_CACHE_HOME")) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(xdg)) => PathBuf::from(xdg).join("atmos-auth-controller"),
        (None, None) => {
            PathBuf::from(std::env::var_os("HOME").context("no HOME")?).join(".cache/atmos-auth-controller")
        }
    };
    let dir = root.join("consumers");
    let bin = dir.join(format!("go-caller-{hash}"));
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir)?;
    // Another test process may be building too: each writes its own file, the rename is atomic.
    let tmp = dir.join(format!(".go-caller-{hash}.{}", std::process::id()));
    let started = Instant::now();
    let out = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&tmp)
        .arg(".")
        .current_dir(&src)
        // -mod=mod: go.sum pins every module; GOTOOLCHAIN=local: never fetch another Go.
        .env("GOFLAGS", "-mod=mod -trimpath -buildvcs=false")
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .output()
        .context("running go (see README, Prerequisites)")?;
    ensure!(
        out.status.success(),
        "go build of {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &bin)?;
    eprintln!("go-caller: built in {:.0?} into {}", started.elapsed(), bin.display());
    Ok(bin)
}

/// One line of the Go consumer's output, as `key=value` fields after `ok` or `error`.
#[derive(Clone)]
pub(crate) struct Call {
    ok: bool,
    fields: BTreeMap<String, String>,
    line: String,
}

impl Call {
    fn parse(line: &str) -> Option<Self> {
        let (status, rest) = line.split_once(' ')?;
        let ok = match status {
            "ok" => true,
            "error" => false,
            _ => return None,
        };
        // `msg=` is last and may hold spaces.
        let (rest, msg) = rest.split_once(" msg=").unwrap_or((rest, ""));
        let mut fields: BTreeMap<String, String> = rest
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        fields.insert("msg".into(), msg.into());
        Some(Self {
            ok,
            fields,
            line: line.to_owned(),
        })
    }

    pub(crate) fn get(&self, key: &str) -> &str {
        self.fields.get(key).map_or("", String::as_str)
    }
}

/// The long-running case: an Identity with 30 s sessions in its own namespace, its Secret
/// mirrored into a mount directory, and the Go consumer calling GetCallerIdentity every 2 s
/// for [`RUN_FOR`] with AWS_CONFIG_FILE, AWS_PROFILE and the endpoint set. Each of `runs` is
/// one consumer process, all at once on the same mount, with its own extra environment.
async fn go_sdk_outlives_sessions(name: &str, runs: &[(&str, Vec<(&str, PathBuf)>)]) -> Result<()> {
    // Building (or finding) the binary overlaps with the control plane's start.
    let build = tokio::task::spawn_blocking(go_caller);
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, name).await?;
    let sts = start_sts(cp);
    let controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
    let kubelet = Kubelet::start(&client, &ns, "runner")?;
    apply(&client, &ns, &profile(SESSION)).await?;
    // The default format (`process`): only the mount path is set, to the kubelet's directory.
    let body = format!(
        "  principal: {{session_name: {name}}}\n  secret: {{mountPath: {}}}",
        kubelet.mount_path()
    );
    apply(&client, &ns, &identity("runner", &body)).await?;
    wait_reason(&client, &ns, "runner", "CredentialsIssued", Duration::from_secs(60)).await?;
    kubelet.wait_mounted().await?;
    let keys: BTreeSet<String> = kubelet
        .path()
        .read_dir()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["config".into(), "credential_process.json".into()]),
        "default format's keys"
    );
    let bin = build.await??;

    // A home without an ~/.aws, so nothing but the given files can supply credentials.
    let home = tempfile::tempdir()?;
    let started = Instant::now();
    let results = futures::future::join_all(runs.iter().map(|(label, env)| {
        let mut cmd = consumer(&bin);
        cmd.args(["-every", "2s", "-for", &format!("{}s", RUN_FOR.as_secs())])
            .env("HOME", home.path())
            .env("AWS_CONFIG_FILE", kubelet.path().join("config"))
            .env("AWS_PROFILE", "acme/admin")
            .env("AWS_ENDPOINT_URL_STS", sts.endpoint())
            .envs(env.iter().map(|(k, v)| (k, v)));
        run_go_caller(cmd, format!("{name}/{label}"))
    }))
    .await;
    let wall = started.elapsed();

    let arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/e2e-admin/{name}");
    for ((label, _), result) in runs.iter().zip(results) {
        let result = result.and_then(|calls| check_calls(&calls, &arn));
        let keys = result.with_context(|| {
            let log = controller.log_text();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            format!("{name}/{label}; controller log, newest first:\n{}", tail.join("\n"))
        })?;
        eprintln!(
            "[{name}/{label}] no error over {wall:.1?}; {keys} credential sets in turn; Secret laid out {} times",
            kubelet.updates()
        );
    }
    Ok(())
}

/// Runs the Go consumer to its end; returns its calls. Fails on any failed call.
pub(crate) async fn run_go_caller(mut cmd: Command, label: String) -> Result<Vec<Call>> {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn().context("starting go-caller")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let mut calls = Vec::new();
    let deadline = RUN_FOR + Duration::from_secs(30);
    // Lines carry access key ids (not secret, AWS logs them too) and never a secret key.
    while let Some(line) = tokio::time::timeout(deadline.saturating_sub(started.elapsed()), lines.next_line())
        .await
        .context("go-caller did not finish in time")??
    {
        eprintln!("[{label}] {line}");
        calls.push(Call::parse(&line).with_context(|| format!("unexpected go-caller output: {line}"))?);
    }
    let status = child.wait().await?;
    let failures: Vec<&str> = calls.iter().filter(|c| !c.ok).map(|c| c.line.as_str()).collect();
    if !failures.is_empty() || !status.success() {
        bail!(
            "go-caller ({status}) failed {} of {} calls:\n{}",
            failures.len(),
            calls.len(),
            failures.join("\n")
        );
    }
    Ok(calls)
}

/// Every call answered as `arn` through the credential_process provider, for longer than
/// two sessions, with at least three access keys in turn; returns how many.
pub(crate) fn check_calls(calls: &[Call], arn: &str) -> Result<usize> {
    let last = calls.last().context("go-caller made no call")?;
    let ran: f64 = last.get("t").parse()?;
    ensure!(
        ran >= (2 * SESSION_SECONDS) as f64,
        "go-caller ran {ran} s, not past two sessions"
    );
    for c in calls {
        ensure!(c.get("arn") == arn, "expected {arn}: {}", c.line);
        // The credential_process provider, never static keys from a credentials file.
        ensure!(
            c.get("source") == "ProcessProvider",
            "not from credential_process: {}",
            c.line
        );
    }
    let mut in_turn: Vec<&str> = Vec::new();
    for c in calls {
        if in_turn.last() != Some(&c.get("key")) {
            in_turn.push(c.get("key"));
        }
    }
    let unique: BTreeSet<&&str> = in_turn.iter().collect();
    ensure!(unique.len() == in_turn.len(), "went back to an older key: {in_turn:?}");
    // Three keys means the SDK ran credential_process again at least twice after the first
    // expiry and found the renewed file each time.
    ensure!(
        in_turn.len() >= 3,
        "the SDK used only {} access keys in {ran} s: {in_turn:?}",
        in_turn.len()
    );
    Ok(in_turn.len())
}

#[tokio::test]
async fn go_sdk_with_the_mounted_config_alone_outlives_two_sessions() -> Result<()> {
    go_sdk_outlives_sessions("go-config", &[("config-only", vec![])]).await
}

#[tokio::test]
async fn go_sdk_with_atmos_credentials_file_set_too_still_renews() -> Result<()> {
    // Atmos sets AWS_SHARED_CREDENTIALS_FILE next to AWS_CONFIG_FILE. With a default-format
    // Secret there is no credentials file, or an empty one: either way the SDK must go on to
    // the profile's credential_process and keep renewing. Both run side by side.
    let dir = tempfile::tempdir()?;
    let empty = dir.path().join("credentials");
    std::fs::write(&empty, "")?;
    let absent = dir.path().join("absent/credentials");
    go_sdk_outlives_sessions(
        "go-atmos",
        &[
            ("empty-credentials", vec![("AWS_SHARED_CREDENTIALS_FILE", empty)]),
            ("absent-credentials", vec![("AWS_SHARED_CREDENTIALS_FILE", absent)]),
        ],
    )
    .await
}

/// The variables every example consumer sets so that IRSA and the instance role never win
/// over the mounted profile (README, "How a pod consumes the Secret").
const IRSA_OFF: [&str; 4] = [
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_EC2_METADATA_DISABLED",
];

/// The consumer containers of the examples (those that use a Secret of the controller, by
/// `AWS_CONFIG_FILE` or `envFrom`), each as (where, its `env` as name → value).
fn example_consumers() -> Result<Vec<(String, BTreeMap<String, String>)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for file in [
        "examples/consumers/arc/runner-scale-set-values.yaml",
        "examples/consumers/terraform/apply-job-process.yaml",
        "examples/consumers/terraform/plan-job-env.yaml",
        "examples/atmos-in-pod/job.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).with_context(|| format!("reading {file}"))?;
        let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&text).with_context(|| file.to_owned())?;
        for doc in docs {
            // A Job's pod template, or the ARC values' runner template.
            let template = if doc["kind"] == "Job" {
                &doc["spec"]["template"]
            } else {
                &doc["template"]
            };
            for c in template["spec"]["containers"].as_array().into_iter().flatten() {
                let env: BTreeMap<String, String> = c["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| Some((e["name"].as_str()?.to_owned(), e["value"].as_str()?.to_owned())))
                    .collect();
                if env.contains_key("AWS_CONFIG_FILE") || c.get("envFrom").is_some() {
                    found.push((format!("{file} container {}", c["name"]), env));
                }
            }
        }
    }
    Ok(found)
}

/// The IRSA settings of the examples, as the consumer tests apply them.
fn examples_irsa_settings() -> Result<Vec<(&'static str, String)>> {
    let consumers = example_consumers()?;
    let (_, env) = consumers.first().context("no example consumer")?;
    IRSA_OFF
        .iter()
        .map(|key| {
            Ok((
                *key,
                env.get(*key)
                    .with_context(|| format!("the ARC example sets no {key}"))?
                    .clone(),
            ))
        })
        .collect()
}

#[test]
fn every_example_consumer_turns_irsa_off() -> Result<()> {
    let consumers = example_consumers()?;
    assert!(consumers.len() >= 4, "found only {} consumers", consumers.len());
    for (what, env) in &consumers {
        for key in &IRSA_OFF[..3] {
            assert_eq!(env.get(*key).map(String::as_str), Some(""), "{what}: {key}");
        }
        assert_eq!(
            env.get("AWS_EC2_METADATA_DISABLED").map(String::as_str),
            Some("true"),
            "{what}"
        );
    }
    Ok(())
}

/// A token of ServiceAccount `irsa` for STS, as the webhook's projected volume would hold.
async fn irsa_token(client: &Client, ns: &str) -> Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["sts.amazonaws.com".into()],
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let issued = api
        .create_token_request("irsa", &PostParams::default(), &request)
        .await
        .context("TokenRequest for ServiceAccount irsa")?;
    issued.status.map(|s| s.token).context("TokenRequest returned no token")
}

/// The Go consumer's single GetCallerIdentity; its caller ARN.
async fn go_caller_arn(cmd: Command, label: &str) -> Result<String> {
    let calls = run_go_caller(cmd, label.to_owned()).await?;
    let call = calls.first().context("go-caller made no call")?;
    Ok(call.get("arn").to_owned())
}

/// On EKS, a runner pod whose ServiceAccount has an IAM role gets AWS_ROLE_ARN,
/// AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_SESSION_NAME from the pod identity webhook, and
/// both SDKs prefer that web identity over the profile AWS_PROFILE names. With the examples'
/// settings (read from the ARC example) the AWS CLI and aws-sdk-go-v2 answer as the Secret's
/// role; without them (the negative control) as the IRSA role, which the test STS really
/// grants for a real ServiceAccount token.
#[tokio::test]
async fn irsa_variables_lose_to_the_mounted_profile_with_the_examples_settings() -> Result<()> {
    let build = tokio::task::spawn_blocking(go_caller);
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "irsa").await?;
    service_account(&client, &ns, "irsa").await?;
    let sts = start_sts(cp);
    let _controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
    let kubelet = Kubelet::start(&client, &ns, "irsa-runner")?;
    apply(&client, &ns, &profile("20m")).await?;
    let body = format!(
        "  principal: {{session_name: irsa-runner}}\n  secret: {{mountPath: {}}}",
        kubelet.mount_path()
    );
    apply(&client, &ns, &identity("irsa-runner", &body)).await?;
    wait_reason(
        &client,
        &ns,
        "irsa-runner",
        "CredentialsIssued",
        Duration::from_secs(60),
    )
    .await?;
    kubelet.wait_mounted().await?;

    // What the webhook injects: the projected token's path, the role, a session name.
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, irsa_token(&client, &ns).await?)?;
    let injected = [
        ("AWS_ROLE_ARN", IRSA_ROLE.to_owned()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.display().to_string()),
        ("AWS_ROLE_SESSION_NAME", "irsa-session".to_owned()),
    ];
    let settings = examples_irsa_settings()?;
    let bin = build.await??;
    let home = tempfile::tempdir()?;
    let endpoint = sts.endpoint();

    // The pod's environment: the mounted profile as the examples set it, the injected IRSA
    // variables, and then (or not) the examples' four settings, which come later in the
    // container's env and so win.
    let pod = |program: &Path, with_settings: bool| {
        let mut cmd = consumer(program);
        cmd.env("HOME", home.path())
            .env("AWS_CONFIG_FILE", kubelet.path().join("config"))
            .env("AWS_PROFILE", "acme/admin")
            // Where the SDKs' own STS calls go, the web identity one included.
            .env("AWS_ENDPOINT_URL_STS", &endpoint)
            .envs(injected.iter().map(|(k, v)| (k, v)));
        if with_settings {
            cmd.envs(settings.iter().map(|(k, v)| (k, v)));
        } else {
            cmd.env_remove("AWS_EC2_METADATA_DISABLED");
        }
        cmd
    };
    let aws = PathBuf::from("aws");
    let go = |with_settings: bool| {
        let mut cmd = pod(&bin, with_settings);
        cmd.args(["-every", "1s", "-for", "0s"]);
        cmd
    };
    let (cli_with, cli_without, go_with, go_without) = tokio::join!(
        cli_caller_arn(pod(&aws, true), &endpoint, &[]),
        cli_caller_arn(pod(&aws, false), &endpoint, &[]),
        go_caller_arn(go(true), "irsa/go-with-settings"),
        go_caller_arn(go(false), "irsa/go-without-settings"),
    );
    let secret_role = format!("arn:aws:sts::{ACCOUNT}:assumed-role/e2e-admin/irsa-runner");
    let irsa_role = format!("arn:aws:sts::{ACCOUNT}:assumed-role/e2e-irsa/irsa-session");
    assert_eq!(cli_with.context("AWS CLI with the examples' settings")?, secret_role);
    assert_eq!(go_with.context("Go SDK with the examples' settings")?, secret_role);
    // Negative control: the same pods without the settings run as the IRSA role.
    assert_eq!(cli_without.context("AWS CLI without the settings")?, irsa_role);
    assert_eq!(go_without.context("Go SDK without the settings")?, irsa_role);
    Ok(())
}
