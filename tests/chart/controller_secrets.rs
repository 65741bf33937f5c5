//! The controller's Secret rights are not worth every ServiceAccount's token: with the
//! chart's admission policy its ServiceAccount may write only Secrets it owns.
//!
//! A private control plane whose controller-manager runs the `serviceaccount-token-controller`
//! (as real clusters do): it fills any `kubernetes.io/service-account-token` Secret with a
//! working token of the ServiceAccount the Secret names.

use std::{process::Output, time::Duration};

use atmos_auth_testenv::controlplane::{ControlPlane, ControlPlaneOptions};
use serde_json::json;

use crate::fixture::*;

const NS: &str = "secrets-team";
const POLICY: &str = "ValidatingAdmissionPolicy 'atmos-auth-controller-controller-secrets'";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The policy's refusal message, if `out` is one.
fn refused(out: &Output) -> Option<String> {
    let stderr = stderr(out);
    (!out.status.success() && stderr.contains(POLICY)).then_some(stderr)
}

fn token_secret(name: &str, service_account: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": name,
            "namespace": NS,
            "annotations": {"kubernetes.io/service-account.name": service_account},
        },
    })
    .to_string()
}

fn opaque_secret(name: &str, labels: serde_json::Value, owner: Option<(&str, &str)>) -> String {
    let owner_references = owner.map(|(name, uid)| {
        json!([{
            "apiVersion": "auth.atmos.tools/v1alpha1",
            "kind": "Identity",
            "name": name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }])
    });
    let mut secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "stringData": {"config": "[profile x]"},
    });
    if let Some(refs) = owner_references {
        secret["metadata"]["ownerReferences"] = refs;
    }
    secret.to_string()
}

/// Waits for the token controller to fill `secret` and returns whom its token authenticates
/// as (`kubectl auth whoami` with it). The token itself is never printed.
fn whoami_with_token_of(cp: &ControlPlane, read_as: &[&str], secret: &str) -> String {
    let token = eventually(
        &format!("the token controller to fill Secret {secret}"),
        Duration::from_secs(60),
        || {
            let out = output(
                kubectl(cp)
                    .args(["get", "secret", secret, "-n", NS])
                    .args([
                        "-o",
                        "go-template={{if .data.token}}{{.data.token | base64decode}}{{end}}",
                    ])
                    .args(read_as),
                None,
            );
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !text.is_empty()).then_some(text)
        },
    );
    let kubeconfig = cp
        .token_kubeconfig(&format!("stolen-{secret}"), &token)
        .expect("a token kubeconfig");
    ok(
        tool_on("kubectl", &kubeconfig).args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]),
        None,
    )
}

#[test]
fn the_controller_may_write_only_its_own_secrets() {
    let started = std::time::Instant::now();
    let cp = ControlPlane::start_with(ControlPlaneOptions {
        controller_manager_args: vec![
            "--controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,\
             root-ca-certificate-publisher-controller,serviceaccount-token-controller"
                .into(),
        ],
        ..Default::default()
    })
    .expect("a private control plane with the token controller");
    let cp = &cp;
    let kubeconfig = cp.kubeconfig_path();
    ok(kubectl(cp).args(["create", "namespace", NAMESPACE]), None);
    ok(kubectl(cp).args(["create", "namespace", NS]), None);
    ok(kubectl(cp).args(["create", "serviceaccount", "victim", "-n", NS]), None);
    let install = |args: &[&str]| {
        let manifests = template(RELEASE, NAMESPACE, args);
        ok(
            tool_on("kubectl", kubeconfig).args(["apply", "--server-side", "-f", "-"]),
            Some(&manifests),
        );
    };
    let as_controller: &[&str] = &["--as", CONTROLLER];
    let create = |who: &[&str], yaml: &str, dry_run: bool| -> Output {
        let mut command = kubectl(cp);
        command.args(["create", "-f", "-"]).args(who);
        if dry_run {
            command.arg("--dry-run=server");
        }
        output(&mut command, Some(yaml))
    };

    // Without the admission policies, the default install's cluster-wide Secret rights mint
    // a token of any ServiceAccount: create a token Secret for it, read the token back.
    install(&["--set", "admissionPolicy.enabled=false"]);
    let out = create(as_controller, &token_secret("stolen", "victim"), false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        whoami_with_token_of(cp, as_controller, "stolen"),
        format!("system:serviceaccount:{NS}:victim"),
        "the token read back by the controller's ServiceAccount works"
    );
    ok(kubectl(cp).args(["delete", "secret", "stolen", "-n", NS]), None);

    // With them (the default), the API server refuses it.
    install(&[]);
    ok(
        kubectl(cp).args(["wait", "--for=condition=Established", "crd/identities.auth.atmos.tools"]),
        None,
    );
    let message = eventually(
        "the Secret policy to refuse a token Secret",
        Duration::from_secs(30),
        || refused(&create(as_controller, &token_secret("stolen", "victim"), true)),
    );
    assert!(
        message.contains("kubernetes.io/service-account-token") && message.contains("Opaque"),
        "{message}"
    );
    assert!(refused(&create(as_controller, &token_secret("stolen", "victim"), false)).is_some());

    // An Identity to own the controller's Secrets.
    ok(
        kubectl(cp).args(["apply", "--server-side", "-f", "-"]),
        Some(&identity_yaml(NS, "owner", Some("victim"))),
    );
    let uid = ok(
        kubectl(cp).args(["get", "identity", "owner", "-n", NS, "-o", "jsonpath={.metadata.uid}"]),
        None,
    );
    let managed = json!({"app.kubernetes.io/managed-by": "atmos-auth-controller"});

    // An Opaque Secret without the managed-by label, or without the Identity owner reference.
    let message = refused(&create(
        as_controller,
        &opaque_secret("unlabelled", json!({}), Some(("owner", &uid))),
        false,
    ))
    .expect("an unlabelled Secret is refused");
    assert!(message.contains("app.kubernetes.io/managed-by"), "{message}");
    let message = refused(&create(
        as_controller,
        &opaque_secret("orphan", managed.clone(), None),
        false,
    ))
    .expect("a Secret without an Identity owner reference is refused");
    assert!(message.contains("owner reference"), "{message}");

    // What the controller writes is admitted: create, then update its data.
    let out = create(
        as_controller,
        &opaque_secret("creds", managed.clone(), Some(("owner", &uid))),
        false,
    );
    assert!(out.status.success(), "the controller's own Secret: {}", stderr(&out));
    // So is its image-pull Secret (`spec.imagePullSecret`), of type dockerconfigjson.
    let mut pull: serde_json::Value =
        serde_json::from_str(&opaque_secret("pull", managed.clone(), Some(("owner", &uid)))).expect("JSON");
    pull["type"] = json!("kubernetes.io/dockerconfigjson");
    pull["stringData"] = json!({".dockerconfigjson": r#"{"auths":{}}"#});
    let out = create(as_controller, &pull.to_string(), false);
    assert!(
        out.status.success(),
        "the controller's image-pull Secret: {}",
        stderr(&out)
    );
    let patch = |who: &[&str], name: &str, body: &str| -> Output {
        output(
            kubectl(cp)
                .args(["patch", "secret", name, "-n", NS, "--type=merge", "-p", body])
                .args(who),
            None,
        )
    };
    let out = patch(as_controller, "creds", r#"{"stringData":{"config":"[profile y]"}}"#);
    assert!(out.status.success(), "renewing its own Secret: {}", stderr(&out));
    // ... but never dropping the label or the owner reference from it.
    let message = refused(&patch(
        as_controller,
        "creds",
        r#"{"metadata":{"labels":{"app.kubernetes.io/managed-by":null}}}"#,
    ))
    .expect("dropping the label is refused");
    assert!(message.contains("app.kubernetes.io/managed-by"), "{message}");
    assert!(
        refused(&patch(
            as_controller,
            "creds",
            r#"{"metadata":{"ownerReferences":null}}"#
        ))
        .is_some(),
        "dropping the owner reference is refused"
    );

    // Someone else's Secret (no label, no owner reference): the controller may not update it.
    let theirs = opaque_secret("theirs", json!({}), None);
    let out = create(&[], &theirs, false);
    assert!(out.status.success(), "admin creates any Secret: {}", stderr(&out));
    let message = refused(&patch(
        as_controller,
        "theirs",
        r#"{"stringData":{"config":"mine now"}}"#,
    ))
    .expect("updating a Secret the controller does not own is refused");
    assert!(message.contains("theirs"), "{message}");
    // Labelling it first does not help: the old object must already be the controller's.
    assert!(
        refused(&patch(
            as_controller,
            "theirs",
            r#"{"metadata":{"labels":{"app.kubernetes.io/managed-by":"atmos-auth-controller"}}}"#
        ))
        .is_some()
    );

    // Other users are unaffected: the admin writes all of the above.
    let out = create(&[], &token_secret("admins-token", "victim"), false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        whoami_with_token_of(cp, &[], "admins-token"),
        format!("system:serviceaccount:{NS}:victim")
    );
    let out = create(&[], &opaque_secret("admins-unlabelled", json!({}), None), false);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = patch(&[], "theirs", r#"{"stringData":{"config":"admin's edit"}}"#);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = patch(&[], "creds", r#"{"metadata":{"ownerReferences":null}}"#);
    assert!(out.status.success(), "{}", stderr(&out));
    eprintln!(
        "the_controller_may_write_only_its_own_secrets: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
