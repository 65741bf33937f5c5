//! The platform examples (examples/platform): the cluster admin applies the namespaces and
//! the ClusterAuthProfile, each namespace's admin applies their own directory, the pod
//! templates are valid Pods there, and the trust policy names exactly the ServiceAccounts of
//! the Identities that start a chain at the profile's provider.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fixture::*;

fn dir() -> PathBuf {
    repo().join("examples/platform")
}

/// The YAML files of `sub` (a namespace owner's directory), sorted.
fn files(sub: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

fn is_values_file(path: &Path) -> bool {
    path.file_name().unwrap().to_string_lossy().contains("values")
}

fn all_objects() -> Vec<Value> {
    let mut objects = yaml_file(&dir().join("cluster-profile.yaml"));
    for sub in ["arc-runners", "terraform"] {
        for f in files(sub).iter().filter(|p| !is_values_file(p)) {
            objects.extend(yaml_file(f));
        }
    }
    objects
}

#[test]
fn platform_examples_apply_by_their_owners() {
    let cp = installed();
    // The cluster admin's part.
    for f in ["namespaces.yaml", "cluster-profile.yaml"] {
        ok_without_warnings(
            kubectl(cp).args(["apply", "--server-side", "-f"]).arg(dir().join(f)),
            None,
        );
    }
    // Each namespace's owner: admin of their namespace only.
    for (sub, ns) in [
        ("arc-runners", "platform-arc-runners"),
        ("terraform", "platform-terraform"),
    ] {
        let user = format!("{ns}-owner");
        for role in [
            "system:aggregate-to-admin",
            "system:aggregate-to-edit",
            "system:aggregate-to-view",
            "atmos-auth-controller-edit",
            "atmos-auth-controller-view",
        ] {
            apply_admin(
                cp,
                &format!(
                    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: 'owner-{}', namespace: {ns}}}\n\
                     roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: '{role}'}}\n\
                     subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]\n",
                    role.replace(':', "-")
                ),
            );
        }
        wait_for_default_service_account(cp, ns);
        let owner = cp.user_kubeconfig(&user, &[]).unwrap();
        for path in files(sub).iter().filter(|p| !is_values_file(p)) {
            let mut command = tool_on("kubectl", &owner);
            command.args(["apply", "--server-side", "-f"]).arg(path);
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
        // A namespace owner cannot write the cluster's profile.
        let out = output(
            tool_on("kubectl", &owner)
                .args(["apply", "--server-side", "--dry-run=server", "-f"])
                .arg(dir().join("cluster-profile.yaml")),
            None,
        );
        assert!(!out.status.success(), "{user} wrote the ClusterAuthProfile");
        // Pod templates as Pods under the namespace's restricted level.
        for path in files(sub) {
            let templates: Vec<Value> = if is_values_file(&path) {
                vec![yaml_file(&path)[0]["template"].clone()]
            } else {
                yaml_file(&path)
                    .into_iter()
                    .filter(|o| kind(o) == "Job")
                    .map(|o| o["spec"]["template"].clone())
                    .collect()
            };
            for template in templates {
                let pod = json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "template-check", "namespace": ns}, "spec": template["spec"]});
                let out = ok_without_warnings(
                    tool_on("kubectl", &owner).args(["create", "--dry-run=server", "-f", "-"]),
                    Some(&pod.to_string()),
                );
                assert!(out.contains("created (server dry run)"), "{}: {out}", path.display());
            }
        }
    }
    let got = ok(
        kubectl(cp).args(["get", "clusterauthprofiles", "platform", "-o", "name"]),
        None,
    );
    assert_eq!(got.trim(), "clusterauthprofile.auth.atmos.tools/platform");
    // `kubectl get` shows the profile's columns.
    let table = ok(kubectl(cp).args(["get", "clusterauthprofiles"]), None);
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "IDENTITIES", "NAMESPACES", "READY", "REASON", "AGE"] {
        assert!(header.contains(column), "{header}");
    }
}

#[test]
fn platform_pods_mount_the_secret_their_identity_writes() {
    let objects = all_objects();
    let identities: BTreeMap<(String, String), &Value> = objects
        .iter()
        .filter(|o| kind(o) == "Identity")
        .map(|o| {
            let ns = o["metadata"]["namespace"].as_str().unwrap().to_owned();
            ((ns, o["spec"]["secret"]["name"].as_str().unwrap().to_owned()), o)
        })
        .collect();
    let mut checked = 0;
    for (sub, ns) in [
        ("arc-runners", "platform-arc-runners"),
        ("terraform", "platform-terraform"),
    ] {
        for path in files(sub) {
            let specs: Vec<Value> = if is_values_file(&path) {
                vec![yaml_file(&path)[0]["template"]["spec"].clone()]
            } else {
                yaml_file(&path)
                    .into_iter()
                    .filter(|o| kind(o) == "Job")
                    .map(|o| o["spec"]["template"]["spec"].clone())
                    .collect()
            };
            for spec in specs {
                let secret = spec["volumes"][0]["secret"]["secretName"].as_str().unwrap();
                let identity = identities[&(ns.to_owned(), secret.to_owned())];
                assert_eq!(identity["spec"]["profileKind"], "ClusterAuthProfile");
                let c = &spec["containers"][0];
                let env = env_of(c);
                let mount = identity["spec"]["secret"]["mountPath"].as_str().unwrap();
                assert_eq!(c["volumeMounts"][0]["mountPath"], mount);
                assert_eq!(env["AWS_CONFIG_FILE"], json!(format!("{mount}/config")));
                assert_eq!(env["AWS_SDK_LOAD_CONFIG"], json!("1"), "as Atmos sets it");
                // AWS_PROFILE names one of the identities the Secret holds.
                let profile = env["AWS_PROFILE"].as_str().unwrap();
                let held: Vec<&str> = match identity["spec"]["identities"].as_array() {
                    Some(list) => list.iter().filter_map(Value::as_str).collect(),
                    None => vec![identity["spec"]["identity"].as_str().unwrap()],
                };
                assert!(held.contains(&profile), "{}: {profile} not in {held:?}", path.display());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2, "the runner template and the plan Job");
}

#[test]
fn platform_trust_policy_names_each_service_account() {
    let objects = all_objects();
    let profile = objects.iter().find(|o| kind(o) == "ClusterAuthProfile").unwrap();
    let selected: BTreeSet<&str> = strs(&profile["spec"]["namespaceSelector"]["matchExpressions"][0]["values"])
        .into_iter()
        .collect();
    assert_eq!(
        profile["spec"]["namespaceSelector"]["matchExpressions"][0]["key"], "kubernetes.io/metadata.name",
        "select by the label nobody can set"
    );
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for identity in objects.iter().filter(|o| kind(o) == "Identity") {
        let ns = identity["metadata"]["namespace"].as_str().unwrap();
        assert!(selected.contains(ns), "{ns} is not selected");
        let sa = identity["spec"]["serviceAccountName"].as_str().unwrap();
        assert!(
            objects
                .iter()
                .any(|o| kind(o) == "ServiceAccount" && o["metadata"]["namespace"] == ns && name(o) == sa),
            "ServiceAccount {ns}/{sa} is not in the examples"
        );
        expected.insert(format!("system:serviceaccount:{ns}:{sa}"));
    }
    let policy: Value =
        serde_json::from_str(&fs::read_to_string(dir().join("aws/trust-policy-platform-plan.json")).unwrap()).unwrap();
    let conditions = policy["Statement"][0]["Condition"]["StringEquals"].as_object().unwrap();
    let subs: BTreeSet<String> = conditions
        .iter()
        .filter(|(k, _)| k.ends_with(":sub"))
        .flat_map(|(_, v)| strs(v).into_iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(subs.iter().all(|s| !s.contains('*')), "no wildcards: {subs:?}");
    assert_eq!(subs, expected);
}
