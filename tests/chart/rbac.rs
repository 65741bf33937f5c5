//! The RBAC matrix of the controller's ServiceAccount after the documented install.

use crate::fixture::*;

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
        // ClusterAuthProfiles and namespaces (their labels): read, and the profile's status.
        can("list", "clusterauthprofiles.auth.atmos.tools", ALL, true),
        can("watch", "clusterauthprofiles.auth.atmos.tools", ALL, true),
        can_sub("patch", "clusterauthprofiles.auth.atmos.tools", "status", ALL, true),
        can("patch", "clusterauthprofiles.auth.atmos.tools", ALL, false),
        can("create", "clusterauthprofiles.auth.atmos.tools", ALL, false),
        can("delete", "clusterauthprofiles.auth.atmos.tools", ALL, false),
        can("list", "namespaces", ALL, true),
        can("watch", "namespaces", ALL, true),
        can("patch", "namespaces", ALL, false),
        can("create", "namespaces", ALL, false),
        can("delete", "namespaces", ALL, false),
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
        // Who calls /metrics and whether they may.
        can("create", "tokenreviews.authentication.k8s.io", ALL, true),
        can("create", "subjectaccessreviews.authorization.k8s.io", ALL, true),
        // Its admission policies: read, to check they are in force; never written.
        can(
            "list",
            "validatingadmissionpolicies.admissionregistration.k8s.io",
            ALL,
            true,
        ),
        can(
            "get",
            "validatingadmissionpolicybindings.admissionregistration.k8s.io",
            ALL,
            true,
        ),
        can(
            "update",
            "validatingadmissionpolicies.admissionregistration.k8s.io",
            ALL,
            false,
        ),
        can(
            "patch",
            "validatingadmissionpolicybindings.admissionregistration.k8s.io",
            ALL,
            false,
        ),
        can(
            "delete",
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
