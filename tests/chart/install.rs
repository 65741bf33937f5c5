//! The chart on a real API server: server-side apply of the rendered manifests, the
//! OwnerReferencesPermissionEnforcement value, adopting CRDs, and the documented install.

use std::{collections::BTreeSet, time::Duration};

use atmos_auth_testenv::controlplane::{self, ControlPlane};
use serde_json::{Value, json};

use crate::fixture::*;

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
            // As the controller writes it (its Secret admission policy demands the label).
            "labels": {"app.kubernetes.io/managed-by": "atmos-auth-controller"},
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
        (
            "validatingadmissionpolicy",
            "atmos-auth-controller-authprofile-serviceaccounts",
        ),
        (
            "validatingadmissionpolicybinding",
            "atmos-auth-controller-authprofile-serviceaccounts",
        ),
        ("validatingadmissionpolicy", "atmos-auth-controller-controller-secrets"),
        (
            "validatingadmissionpolicybinding",
            "atmos-auth-controller-controller-secrets",
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
