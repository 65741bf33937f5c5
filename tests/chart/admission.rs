//! The admission policies, with users that hold different rights.

use std::{path::Path, process::Output, time::Duration};

use crate::fixture::*;

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

    // AuthProfiles: a profile decides the ServiceAccount and role of every Identity that
    // references it, so writing one needs the token right for every ServiceAccount of the
    // namespace. dave may write AuthProfiles and read Secrets, and holds no token right.
    apply_admin(
        cp,
        &format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: profile-writer, namespace: {NS}}}
rules:
  - apiGroups: ["auth.atmos.tools"]
    resources: ["authprofiles"]
    verbs: ["get", "list", "create", "update", "patch"]
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: profile-writer, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: profile-writer}}
subjects:
  - {{apiGroup: rbac.authorization.k8s.io, kind: User, name: vap-dave}}
  - {{apiGroup: rbac.authorization.k8s.io, kind: User, name: vap-alice}}
"#
        ),
    );
    let dave = cp.user_kubeconfig("vap-dave", &[]).unwrap();
    let profile_denied = |out: &Output| -> Option<String> {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success()
            && stderr.contains("ValidatingAdmissionPolicy 'atmos-auth-controller-authprofile-serviceaccounts'"))
        .then_some(stderr)
    };
    let profile = profile_yaml(NS, "k8s", "tf");
    let message = eventually("the AuthProfile policy to refuse dave", Duration::from_secs(30), || {
        profile_denied(&create(&dave, &profile, true))
    });
    assert!(
        message.contains("user vap-dave may not create tokens for every ServiceAccount in namespace vap-team"),
        "{message}"
    );
    assert!(profile_denied(&create(&dave, &profile, false)).is_some());
    // A token right for one named ServiceAccount is not enough: the profile may name any.
    assert!(
        profile_denied(&create(&alice, &profile, true)).is_some(),
        "alice may mint tokens for tf only"
    );

    // The editor may (tokens for every ServiceAccount); dave may then not retarget it ...
    let out = create(&carol, &profile, false);
    assert!(
        out.status.success(),
        "an editor may write an AuthProfile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let patch_profile = |who: &Path, body: &str| -> Output {
        output(
            tool_on("kubectl", who).args(["patch", "authprofile", "k8s", "-n", NS, "--type=merge", "-p", body]),
            None,
        )
    };
    let retarget = r#"{"spec":{"providers":{"cluster-oidc":{"spec":{"service_account":"other"}}}}}"#;
    assert!(
        profile_denied(&patch_profile(&dave, retarget)).is_some(),
        "dave may not point the profile's Identities at ServiceAccount other"
    );
    let out = patch_profile(&dave, r#"{"metadata":{"labels":{"team":"network"}}}"#);
    assert!(
        out.status.success(),
        "a label needs no token right: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ... until he holds the namespace-wide token right.
    apply_admin(
        cp,
        &format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: every-token, namespace: {NS}}}
rules:
  - apiGroups: [""]
    resources: ["serviceaccounts/token"]
    verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: every-token, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: every-token}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: vap-dave}}]
"#
        ),
    );
    eventually(
        "dave's namespace-wide token right to admit his change",
        Duration::from_secs(30),
        || patch_profile(&dave, retarget).status.success().then_some(()),
    );
}

/// A minimal AuthProfile whose provider uses `service_account`.
fn profile_yaml(namespace: &str, name: &str, service_account: &str) -> String {
    format!(
        r#"apiVersion: auth.atmos.tools/v1alpha1
kind: AuthProfile
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  providers:
    cluster-oidc:
      kind: kubernetes/oidc
      spec: {{service_account: {service_account}}}
  identities:
    acme/admin:
      default: true
      kind: aws/assume-role
      via: {{provider: cluster-oidc}}
      principal: {{assume_role: "arn:aws:iam::123456789012:role/admin"}}
"#
    )
}
