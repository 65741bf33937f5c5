//! The ClusterAuthProfile admission policy: writing one needs the right to mint tokens at
//! cluster scope; the same right granted namespace by namespace is refused.

use std::{path::Path, process::Output, time::Duration};

use crate::fixture::*;

const POLICY: &str = "ValidatingAdmissionPolicy 'atmos-auth-controller-clusterauthprofile-serviceaccounts'";

fn cluster_profile_yaml(name: &str) -> String {
    format!(
        r#"
apiVersion: auth.atmos.tools/v1alpha1
kind: ClusterAuthProfile
metadata: {{name: {name}}}
spec:
  namespaceSelector:
    matchExpressions:
      - {{key: kubernetes.io/metadata.name, operator: In, values: [cap-a, cap-b]}}
  providers:
    cluster-oidc:
      kind: kubernetes/oidc
      spec: {{audience: sts.amazonaws.com, service_account: terraform}}
  identities:
    acme/admin:
      default: true
      kind: aws/assume-role
      via: {{provider: cluster-oidc}}
      principal: {{assume_role: "arn:aws:iam::123456789012:role/admin"}}
"#
    )
}

#[test]
fn cluster_profiles_need_the_token_right_at_cluster_scope() {
    let cp = installed();
    // Both may write ClusterAuthProfiles. dora holds the token right in each of the two
    // namespaces the profile selects (RoleBindings); erin holds it cluster-wide.
    let mut rbac = String::from(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cap-writer}
rules:
  - apiGroups: ["auth.atmos.tools"]
    resources: ["clusterauthprofiles"]
    verbs: ["get", "create", "update", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cap-writer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cap-writer}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: cap-dora}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: cap-erin}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cap-erin-tokens}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: atmos-auth-controller-token-creator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: cap-erin}]
"#,
    );
    for ns in ["cap-a", "cap-b"] {
        rbac.push_str(&format!(
            r#"---
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: cap-dora-tokens, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: atmos-auth-controller-token-creator}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: cap-dora}}]
"#
        ));
    }
    apply_admin(cp, &rbac);
    let dora = cp.user_kubeconfig("cap-dora", &[]).unwrap();
    let erin = cp.user_kubeconfig("cap-erin", &[]).unwrap();
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
        (!out.status.success() && stderr.contains(POLICY)).then_some(stderr)
    };

    // dora may mint tokens in every namespace the profile selects, but only through
    // RoleBindings: refused, with a message that says what is missing.
    let yaml = cluster_profile_yaml("cap-platform");
    let message = eventually("the policy to refuse dora", Duration::from_secs(30), || {
        denied(&create(&dora, &yaml, true))
    });
    assert!(
        message.contains("user cap-dora may not create tokens for every ServiceAccount at cluster scope"),
        "{message}"
    );
    assert!(denied(&create(&dora, &yaml, false)).is_some());
    // She really holds the right in each namespace (so the refusal is the policy's scope).
    for ns in ["cap-a", "cap-b"] {
        let out = output(
            tool_on("kubectl", &dora).args([
                "auth",
                "can-i",
                "create",
                "serviceaccounts/x",
                "--subresource=token",
                "-n",
                ns,
            ]),
            None,
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes", "{ns}");
    }

    // erin, with the ClusterRoleBinding: created.
    let out = create(&erin, &yaml, false);
    assert!(
        out.status.success(),
        "erin may create it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Metadata-only updates need no token right (dora may label it).
    let out = output(
        tool_on("kubectl", &dora).args(["label", "clusterauthprofile", "cap-platform", "team=platform"]),
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A spec change by dora: refused.
    let out = output(
        tool_on("kubectl", &dora).args([
            "patch",
            "clusterauthprofile",
            "cap-platform",
            "--type=merge",
            "-p",
            r#"{"spec":{"namespaces":["cap-c"]}}"#,
        ]),
        None,
    );
    assert!(denied(&out).is_some(), "{}", String::from_utf8_lossy(&out.stderr));
}
