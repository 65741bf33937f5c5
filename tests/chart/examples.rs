//! The consumer examples: applied by a namespace admin, their pods, sessions and trust
//! policies.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Value, json};

use crate::fixture::*;

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
                assert_eq!(
                    env.get("AWS_SDK_LOAD_CONFIG"),
                    Some(&json!("1")),
                    "{what}: as Atmos sets it, for aws-sdk-go v1 and the JS SDK v2"
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
