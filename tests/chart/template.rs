//! The chart, rendered: lint, the objects of each install shape, the values schema, and
//! the settings reaching the controller binary.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
    process::Command,
};

use atmos_auth_testenv::controlplane;
use serde_json::{Value, json};

use crate::fixture::*;

#[test]
fn helm_lint_strict() {
    let chart = chart_dir();
    for args in [
        vec![],
        vec![
            "--set-json",
            r#"controller.watchNamespaces=["team-a","team-b"]"#,
            "--set",
            "replicaCount=2",
        ],
        vec![
            "--set",
            "rbac.tokenCreator.clusterWide=true",
            "--set",
            "serviceMonitor.enabled=true",
        ],
    ] {
        let out = ok(tool("helm").args(["lint", "--strict"]).arg(&chart).args(&args), None);
        assert!(out.contains("0 chart(s) failed"), "helm lint {args:?}:\n{out}");
    }
}

#[test]
fn template_default_values_is_cluster_wide_and_hardened() {
    let objects = render(&[]);
    let kinds: BTreeSet<&str> = objects.iter().map(kind).collect();
    for expected in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "Deployment",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ] {
        assert!(
            kinds.contains(expected),
            "no {expected} in the default render: {kinds:?}"
        );
    }
    assert!(
        !kinds.contains("PodDisruptionBudget"),
        "one replica needs no PodDisruptionBudget"
    );
    assert!(!kinds.contains("ServiceMonitor"), "the ServiceMonitor is opt-in");
    assert!(!kinds.contains("PrometheusRule"), "the alerts are opt-in");
    assert!(!kinds.contains("ConfigMap"), "the dashboard is opt-in");

    // Cluster-wide: a binding of the controller's own ClusterRole and of its read-only
    // `-cluster` one, none of the token creator. The only Role is the Lease's, in the
    // release namespace.
    let mut bindings = of_kind(&objects, "ClusterRoleBinding");
    bindings.sort_by_key(|b| name(b).to_owned());
    assert_eq!(bindings.len(), 2);
    assert_eq!(bindings[0]["roleRef"]["name"], RELEASE);
    assert_eq!(bindings[1]["roleRef"]["name"], format!("{RELEASE}-cluster"));
    assert_eq!(bindings[1]["subjects"], bindings[0]["subjects"]);
    assert_eq!(
        bindings[0]["subjects"],
        json!([{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}])
    );
    let lease_role = the(&objects, "Role");
    assert_eq!(lease_role["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        lease_role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["atmos-auth-controller"], "verbs": ["get", "patch"]},
        ])
    );
    let token_creator = of_kind(&objects, "ClusterRole")
        .into_iter()
        .find(|r| name(r) == TOKEN_CREATOR)
        .expect("the token-creator ClusterRole");
    assert_eq!(
        token_creator["rules"],
        json!([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}])
    );

    // The pod: non-root, read-only root, no escalation, no capabilities, seccomp, limits.
    let deployment = the(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], RELEASE);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], "ghcr.io/atmos-tools/atmos-auth-controller:0.1.0");
    assert_eq!(c["args"], json!(["run"]));
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(c["resources"][bound][resource].is_string(), "no {bound}.{resource}");
        }
    }
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");

    // Flags reach the controller as its environment variables.
    let env = env_of(c);
    assert_eq!(
        env["ATMOS_AUTH_LEADER_ELECTION"], "true",
        "leader election is on by default"
    );
    assert_eq!(env["ATMOS_AUTH_LEASE_NAMESPACE"], NAMESPACE);
    assert_eq!(
        env["ATMOS_AUTH_ALLOWED_AUDIENCES"],
        "aws-sts,api://AzureADTokenExchange,//iam.googleapis.com/projects/*/locations/global/workloadIdentityPools/*/providers/*"
    );
    assert_eq!(
        env["ATMOS_AUTH_AZURE_AUTHORITY_HOSTS"],
        "public=https://login.microsoftonline.com/,usgovernment=https://login.microsoftonline.us/,china=https://login.chinacloudapi.cn/"
    );
    assert_eq!(env["ATMOS_AUTH_GCP_STS_URL"], "https://sts.googleapis.com/v1/token");
    assert_eq!(
        env["ATMOS_AUTH_GCP_IAM_CREDENTIALS_URL"],
        "https://iamcredentials.googleapis.com/"
    );
    assert_eq!(env["ATMOS_AUTH_ADMIN_ADDR"], "0.0.0.0:8080");
    assert_eq!(env["ATMOS_AUTH_LOG_FORMAT"], "json");
    assert!(env.contains_key("POD_NAME") && env.contains_key("POD_NAMESPACE"));
    assert!(!env.contains_key("ATMOS_AUTH_NAMESPACES"), "all namespaces by default");
    assert!(
        !env.contains_key("ATMOS_AUTH_STS_ENDPOINT"),
        "AWS's endpoints by default"
    );

    // The metrics Service selects the pod and targets the HTTPS metrics port, not the probes'.
    let service = the(&objects, "Service");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "https-metrics");
    assert_eq!(env["ATMOS_AUTH_METRICS_ADDR"], "0.0.0.0:8443");
    assert!(!env.contains_key("ATMOS_AUTH_METRICS_PLAIN"));
    let ports: Vec<&str> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(ports, ["http-admin", "https-metrics"]);
    // Who may read /metrics: those bound to this ClusterRole (Prometheus).
    let reader = of_kind(&objects, "ClusterRole")
        .into_iter()
        .find(|r| name(r) == format!("{RELEASE}-metrics-reader"))
        .expect("no metrics-reader ClusterRole");
    assert_eq!(
        reader["rules"],
        json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    );

    // The admission policies: those of Identities and profiles check the token right; the
    // Secret one binds the controller's own ServiceAccount (only it) to Secrets it owns. All
    // refuse when they cannot answer, and their bindings enforce them.
    let policies = of_kind(&objects, "ValidatingAdmissionPolicy");
    let bindings = of_kind(&objects, "ValidatingAdmissionPolicyBinding");
    let mut resources: Vec<&str> = Vec::new();
    for policy in &policies {
        let policy_text = policy.to_string();
        let policy_resources = strs(&policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"]);
        if policy_resources == ["secrets"] {
            assert_eq!(name(policy), format!("{RELEASE}-controller-secrets"));
            assert_eq!(
                policy["spec"]["matchConditions"],
                json!([{
                    "name": "controller-service-account",
                    "expression": format!("request.userInfo.username == '{CONTROLLER}'"),
                }])
            );
            assert_eq!(
                policy["spec"]["variables"][0],
                json!({"name": "types", "expression": r#"["Opaque","kubernetes.io/dockerconfigjson"]"#})
            );
        } else if policy_resources.contains(&"deployments") {
            // The controller's workload writes: its own ServiceAccount only, updates only.
            assert_eq!(name(policy), format!("{RELEASE}-controller-workloads"));
            assert_eq!(
                policy["spec"]["matchConditions"],
                json!([{
                    "name": "controller-service-account",
                    "expression": format!("request.userInfo.username == '{CONTROLLER}'"),
                }])
            );
            assert!(policy_text.contains("auth.atmos.tools/restartedAt"));
        } else {
            assert!(policy_text.contains("subresource('token')") && policy_text.contains("check('create')"));
        }
        assert_eq!(policy["spec"]["failurePolicy"], "Fail");
        resources.extend(policy_resources);
        let binding = bindings
            .iter()
            .find(|b| b["spec"]["policyName"] == name(policy))
            .unwrap_or_else(|| panic!("no binding of {}", name(policy)));
        assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    }
    resources.sort_unstable();
    assert_eq!(
        resources,
        [
            "authprofiles",
            "clusterauthprofiles",
            "daemonsets",
            "deployments",
            "identities",
            "secrets",
            "statefulsets"
        ]
    );
    assert_eq!(bindings.len(), policies.len());

    // CRDs survive `helm uninstall` by default.
    for crd in of_kind(&objects, "CustomResourceDefinition") {
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    }
}

/// The only ClusterRoleBinding is the controller's `-cluster` one, and its ClusterRole holds
/// exactly the reads of ClusterAuthProfiles, namespaces and the admission policies (a
/// namespaced install does not write ClusterAuthProfile status, so may not patch it).
fn assert_cluster_read_only(objects: &[Value]) {
    let cluster = format!("{RELEASE}-cluster");
    let bindings: Vec<&str> = of_kind(objects, "ClusterRoleBinding").into_iter().map(name).collect();
    assert_eq!(
        bindings,
        [cluster.as_str()],
        "a namespaced install binds nothing else cluster-wide"
    );
    let role = of_kind(objects, "ClusterRole")
        .into_iter()
        .find(|r| name(r) == cluster)
        .unwrap();
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["auth.atmos.tools"], "resources": ["clusterauthprofiles"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"], "verbs": ["get", "list"]},
            // Who calls /metrics, and whether they may (changes nothing).
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        ])
    );
    let env = env_of(&the(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(env["ATMOS_AUTH_CLUSTER_PROFILE_STATUS"], "false");
}

#[test]
fn the_cluster_profile_status_right_goes_with_writing_it() {
    let status_rule =
        json!({"apiGroups": ["auth.atmos.tools"], "resources": ["clusterauthprofiles/status"], "verbs": ["patch"]});
    for (args, writes) in [
        (&[][..], true),
        (&["--set", "controller.clusterProfileStatus=false"][..], false),
        (&["--set-json", r#"controller.watchNamespaces=["team-a"]"#][..], false),
        (
            &[
                "--set-json",
                r#"controller.watchNamespaces=["team-a"]"#,
                "--set",
                "controller.clusterProfileStatus=true",
            ][..],
            true,
        ),
    ] {
        let objects = render(args);
        let role = of_kind(&objects, "ClusterRole")
            .into_iter()
            .find(|r| name(r) == format!("{RELEASE}-cluster"))
            .unwrap();
        let granted = role["rules"].as_array().unwrap().contains(&status_rule);
        assert_eq!(granted, writes, "{args:?}");
        let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
        assert_eq!(env["ATMOS_AUTH_CLUSTER_PROFILE_STATUS"], writes.to_string(), "{args:?}");
    }
}

#[test]
fn the_controller_is_told_which_admission_policies_to_check() {
    let objects = render(&[]);
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(env["ATMOS_AUTH_ADMISSION_POLICY_PREFIX"], RELEASE);
    let policies: Vec<&str> = of_kind(&objects, "ValidatingAdmissionPolicy")
        .into_iter()
        .map(name)
        .collect();
    // The names the controller checks (src/controller/admission.rs).
    for suffix in atmos_auth_controller::controller::admission::POLICIES {
        assert!(
            policies.contains(&format!("{RELEASE}-{suffix}").as_str()),
            "{policies:?}"
        );
    }
    assert!(!env.contains_key("ATMOS_AUTH_ALLOW_UNENFORCED_ADMISSION"));
    let objects = render(&["--set", "admissionPolicy.allowUnenforced=true"]);
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(env["ATMOS_AUTH_ALLOW_UNENFORCED_ADMISSION"], "true");
}

#[test]
fn template_namespaced_install_uses_roles_only() {
    let objects = render(&["--set-json", r#"controller.watchNamespaces=["team-a","team-b"]"#]);
    // One cluster-wide binding only: reading ClusterAuthProfiles and namespaces (both
    // cluster-scoped) and the profiles' status. The token creator stays unbound, and the
    // controller's other rules come as a Role per watched namespace.
    assert_cluster_read_only(&objects);
    let cluster_roles: Vec<&str> = of_kind(&objects, "ClusterRole").into_iter().map(name).collect();
    assert!(
        !cluster_roles.contains(&RELEASE),
        "the controller's rules are not a ClusterRole: {cluster_roles:?}"
    );
    let roles: BTreeMap<(&str, &str), &Value> = of_kind(&objects, "Role")
        .into_iter()
        .map(|r| ((r["metadata"]["namespace"].as_str().unwrap(), name(r)), r))
        .collect();
    let default_rules = render(&[]);
    let cluster_role = of_kind(&default_rules, "ClusterRole")
        .into_iter()
        .find(|r| name(r) == RELEASE)
        .unwrap();
    for ns in ["team-a", "team-b"] {
        let role = roles
            .get(&(ns, RELEASE))
            .unwrap_or_else(|| panic!("no Role in {ns}: {:?}", roles.keys()));
        assert_eq!(
            role["rules"], cluster_role["rules"],
            "the same rules as the cluster-wide install"
        );
        let binding = of_kind(&objects, "RoleBinding")
            .into_iter()
            .find(|b| b["metadata"]["namespace"] == ns && name(b) == RELEASE)
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    }
    assert!(roles.contains_key(&(NAMESPACE, "atmos-auth-controller-leader-election")));
    assert_eq!(roles.len(), 3, "{:?}", roles.keys());
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(env["ATMOS_AUTH_NAMESPACES"], "team-a,team-b");

    // clusterWide tokens in a namespaced install: a RoleBinding per watched namespace, still
    // nothing cluster-wide.
    let objects = render(&[
        "--set-json",
        r#"controller.watchNamespaces=["team-a","team-b"]"#,
        "--set",
        "rbac.tokenCreator.clusterWide=true",
    ]);
    assert_cluster_read_only(&objects);
    let token_bindings: Vec<&str> = of_kind(&objects, "RoleBinding")
        .into_iter()
        .filter(|b| b["roleRef"]["name"] == TOKEN_CREATOR)
        .map(|b| b["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(token_bindings, ["team-a", "team-b"]);

    // And in a cluster-wide install, one ClusterRoleBinding.
    let objects = render(&["--set", "rbac.tokenCreator.clusterWide=true"]);
    assert!(
        of_kind(&objects, "ClusterRoleBinding")
            .iter()
            .any(|b| b["roleRef"]["name"] == TOKEN_CREATOR)
    );
}

#[test]
fn template_ha_adds_pdb_and_forces_leader_election() {
    let objects = render(&["--set", "replicaCount=2", "--set", "leaderElection.enabled=false"]);
    let pdb = the(&objects, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        the(&objects, "Deployment")["spec"]["selector"]["matchLabels"]
    );
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(
        env["ATMOS_AUTH_LEADER_ELECTION"], "true",
        "two replicas must never renew in parallel"
    );

    // One replica with leader election off: no Lease, no Lease Role.
    let objects = render(&["--set", "leaderElection.enabled=false"]);
    assert!(of_kind(&objects, "Role").is_empty());
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert!(!env.contains_key("ATMOS_AUTH_LEADER_ELECTION"));

    let objects = render(&["--set", "serviceMonitor.enabled=true", "--set", "service.enabled=false"]);
    let monitor = the(&objects, "ServiceMonitor");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "https-metrics");
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(
        endpoint["bearerTokenFile"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    assert_eq!(endpoint["tlsConfig"]["insecureSkipVerify"], true);
    // The Identities' `namespace` label stays theirs (the alerts and dashboard read it).
    assert_eq!(endpoint["honorLabels"], true);
    assert_eq!(
        of_kind(&objects, "Service").len(),
        1,
        "the ServiceMonitor brings its Service"
    );
    // The plain option: HTTP, no token, no review rights, no reader role.
    let objects = render(&["--set", "serviceMonitor.enabled=true", "--set", "metrics.plain=true"]);
    let endpoint = &the(&objects, "ServiceMonitor")["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "http-metrics");
    assert_eq!(endpoint["scheme"], "http");
    assert!(endpoint.get("bearerTokenFile").is_none());
    let env = env_of(&the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(env["ATMOS_AUTH_METRICS_PLAIN"], "true");
    assert!(
        !of_kind(&objects, "ClusterRole")
            .iter()
            .any(|r| name(r).ends_with("-metrics-reader"))
    );
}

#[test]
fn deployment_settings_are_accepted_by_the_controller_binary() {
    // The chart speaks to the binary through environment variables and arguments; a renamed
    // flag or an unparsable value would only show up as a crash loop in a real cluster. Run
    // the real binary with the rendered settings and a kubeconfig that does not exist: it
    // must get past argument parsing (clap exits 2) and stop at the kubeconfig (exit 1).
    let cases: [&[&str]; 3] = [
        &[],
        &[
            "--set-json",
            r#"controller.watchNamespaces=["team-a","team-b"]"#,
            "--set",
            "replicaCount=2",
        ],
        &[
            "--set",
            "controller.stsEndpoint=https://sts.us-east-2.amazonaws.com",
            "--set",
            "controller.ecrEndpoint=https://api.ecr-fips.us-east-2.amazonaws.com",
            "--set",
            "controller.ecrPublicEndpoint=https://api.ecr-public.us-east-1.amazonaws.com",
            "--set",
            "controller.stsTimeout=1m30s",
            "--set",
            "controller.stsRateLimit=12.5",
            "--set",
            "controller.stsBurst=5",
            "--set",
            "controller.maxConcurrentReconciles=4",
            "--set-json",
            r#"controller.allowedEndpoints=["https://sts.example.com"]"#,
            "--set-json",
            r#"controller.allowedAudiences=["sts.amazonaws.com","sts.example.com"]"#,
            "--set",
            "controller.logFormat=text",
            "--set",
            "controller.logLevel=atmos_auth_controller=debug\\,info",
            "--set",
            "controller.adminPort=9090",
            "--set",
            "metrics.port=9443",
            "--set",
            "metrics.plain=true",
            "--set-json",
            r#"controller.extraArgs=["--lease-name=custom"]"#,
        ],
    ];
    for args in cases {
        let objects = render(args);
        let container = &the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        let mut command = Command::new(env!("CARGO_BIN_EXE_atmos-auth-controller"));
        command.env_clear();
        for (name, value) in env_of(container) {
            // Downward-API values (POD_NAME, POD_NAMESPACE) get stand-ins.
            command.env(&name, value.as_str().unwrap_or("from-the-downward-api"));
        }
        command
            .args(strs(&container["args"]))
            .args(["--kubeconfig", "/nonexistent/kubeconfig"]);
        let out = output(&mut command, None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}\n{text}", describe(&command));
        assert!(
            text.contains("/nonexistent/kubeconfig"),
            "{args:?}: stopped before the kubeconfig:\n{text}"
        );
    }
}

/// Verbs the controller never needs and that would let it, or whoever controls it, do more
/// than its job.
const FORBIDDEN_VERBS: [&str; 6] = [
    "delete",
    "deletecollection",
    "update",
    "bind",
    "escalate",
    "impersonate",
];

#[test]
fn chart_rules_have_no_wildcards_and_no_dangerous_verbs() {
    let renders = [
        render(&[]),
        render(&[
            "--set-json",
            r#"controller.watchNamespaces=["team-a"]"#,
            "--set",
            "replicaCount=3",
        ]),
        render(&[
            "--set",
            "rbac.tokenCreator.clusterWide=true",
            "--set",
            "rbac.ownerReferencesPermissionEnforcement=true",
        ]),
    ];
    for objects in &renders {
        for (owner, rule) in rules(objects) {
            for field in ["apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"] {
                assert!(
                    !strs(&rule[field]).iter().any(|s| s.contains('*')),
                    "wildcard in {owner}: {rule}"
                );
            }
            // The one non-resource rule: reading /metrics, for Prometheus (not the controller).
            if rule.get("nonResourceURLs").is_some() {
                assert!(owner.ends_with("-metrics-reader"), "{owner}: {rule}");
                assert_eq!(rule, json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}));
                continue;
            }
            // The aggregated edit role is for people, not for the controller.
            if owner.ends_with("-edit") {
                continue;
            }
            // The one update, opt-in (see owner_references_permission_enforcement_needs_its_value).
            if strs(&rule["resources"]) == ["identities/finalizers"] {
                assert_eq!(strs(&rule["verbs"]), ["update"]);
                continue;
            }
            for verb in strs(&rule["verbs"]) {
                assert!(!FORBIDDEN_VERBS.contains(&verb), "{owner} grants {verb}: {rule}");
            }
            let resources = strs(&rule["resources"]);
            assert!(
                !resources.iter().any(|r| r.starts_with("pods") || *r == "configmaps"),
                "{owner}: {rule}"
            );
            if resources.contains(&"serviceaccounts/token") {
                assert_eq!(
                    owner,
                    format!("ClusterRole -/{TOKEN_CREATOR}"),
                    "only the token creator mints tokens"
                );
            }
        }
    }
}

#[test]
fn schema_rejects_wrong_values_with_clear_messages() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "controller.logFormat=xml"],
            "at '/controller/logFormat': value must be one of 'json', 'text'",
        ),
        (&["--set", "replicaCount=0"], "at '/replicaCount'"),
        (
            &["--set", "controler.logLevel=debug"],
            "additional properties 'controler' not allowed",
        ),
        (
            &["--set-json", r#"controller.watchNamespaces=["Team_A"]"#],
            "at '/controller/watchNamespaces/0'",
        ),
        (
            &["--set", "controller.stsTimeout=twenty"],
            "at '/controller/stsTimeout'",
        ),
        (&["--set", "controller.stsRateLimit=0"], "at '/controller/stsRateLimit'"),
        (
            &["--set", "controller.maxConcurrentReconciles=0"],
            "at '/controller/maxConcurrentReconciles'",
        ),
        (
            &["--set", "controller.stsEndpoint=sts.amazonaws.com"],
            "at '/controller/stsEndpoint'",
        ),
        (
            &["--set-json", "controller.allowedAudiences=[]"],
            "at '/controller/allowedAudiences'",
        ),
        (&["--set", "image.digest=latest"], "at '/image/digest'"),
        (
            &["--set-json", r#"admissionPolicy.validationActions=["Block"]"#],
            "at '/admissionPolicy/validationActions/0'",
        ),
        (
            &["--set", "securityContext.readOnlyRootFilesystem=false"],
            "at '/securityContext/readOnlyRootFilesystem': value must be true",
        ),
        (
            &["--set", "securityContext.allowPrivilegeEscalation=true"],
            "at '/securityContext/allowPrivilegeEscalation'",
        ),
        (
            &["--set", "podSecurityContext.runAsNonRoot=false"],
            "at '/podSecurityContext/runAsNonRoot'",
        ),
        (
            &["--set-json", r#"securityContext.capabilities.add=["NET_ADMIN"]"#],
            "at '/securityContext/capabilities/add'",
        ),
        (
            &["--set", "resources.limits=null"],
            "at '/resources': missing property 'limits'",
        ),
        (
            &["--set", "rbac.tokenCreator.clusterWide=yes"],
            "at '/rbac/tokenCreator/clusterWide'",
        ),
    ];
    let mut failures = Vec::new();
    for (args, expected) in cases {
        match try_template(RELEASE, NAMESPACE, args) {
            Ok(_) => failures.push(format!("{args:?} was accepted")),
            Err(stderr)
                if stderr.contains("values don't meet the specifications of the schema")
                    && stderr.contains(expected) => {}
            Err(stderr) => failures.push(format!("{args:?}: expected {expected:?} in:\n{stderr}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn helm_install_with_a_wrong_value_fails_before_touching_the_cluster() {
    let cp = controlplane::shared();
    let out = output(
        tool_on("helm", cp.kubeconfig_path())
            .args(["install", "wrong-values"])
            .arg(chart_dir())
            .args([
                "--namespace",
                "wrong-values",
                "--create-namespace",
                "--set",
                "controller.logFormat=xml",
            ]),
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("at '/controller/logFormat': value must be one of 'json', 'text'"),
        "{stderr}"
    );
    let ns = output(kubectl(cp).args(["get", "namespace", "wrong-values"]), None);
    assert!(!ns.status.success(), "nothing may be created, not even the namespace");
}

#[test]
fn chart_crds_equal_the_generated_crds() {
    const REGENERATE: &str = "regenerate the chart's copy with \
        `cargo run -q -- crds --write charts/atmos-auth-controller/files/crds`";
    let yaml_files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let ours = yaml_files(&chart_dir().join("files/crds"));

    // Byte for byte: the generator's own files (`atmos-auth-controller crds --write`) ...
    let generated: BTreeMap<String, Vec<u8>> = atmos_auth_controller::cli::crds::files()
        .unwrap()
        .into_iter()
        .map(|(name, text)| (name, text.into_bytes()))
        .collect();
    assert_eq!(generated.len(), 3);
    assert!(
        ours == generated,
        "charts/atmos-auth-controller/files/crds/ differs from `atmos-auth-controller crds` \
         (chart: {:?}, generated: {:?}): {REGENERATE}",
        ours.keys(),
        generated.keys()
    );
    // ... and the checked-in crds/ (which has its own drift test against the generator).
    let checked_in = yaml_files(&repo().join("crds"));
    assert!(
        ours == checked_in,
        "charts/atmos-auth-controller/files/crds/ differs from crds/: {REGENERATE}"
    );

    // What the chart installs is those CRDs, plus only its labels and Helm's keep policy:
    // the template's YAML round trip changes nothing else.
    let expected: BTreeMap<String, Value> = yaml_docs(&atmos_auth_controller::cli::crds::yaml().unwrap())
        .into_iter()
        .map(|crd| (name(&crd).to_owned(), normalized(&crd)))
        .collect();
    let rendered: BTreeMap<String, Value> = of_kind(&render(&[]), "CustomResourceDefinition")
        .into_iter()
        .map(|crd| {
            let mut crd = crd.clone();
            let meta = crd["metadata"].as_object_mut().unwrap();
            meta.remove("labels");
            meta.remove("annotations");
            (name(&crd).to_owned(), normalized(&crd))
        })
        .collect();
    assert!(
        rendered == expected,
        "the chart renders its CRDs differently from `atmos-auth-controller crds` at {}",
        first_difference(&json!(rendered), &json!(expected), String::new()).unwrap_or_default()
    );
}

/// The Secret policy names whatever ServiceAccount the controller runs as, and nobody else;
/// it follows `admissionPolicy.enabled` and `validationActions` as the other policies do.
#[test]
fn the_secret_policy_matches_only_the_controllers_service_account() {
    let objects = yaml_docs(&template(
        "aac",
        "platform",
        &[
            "--set",
            "serviceAccount.name=auth-bot",
            "--set-json",
            r#"admissionPolicy.validationActions=["Warn","Audit"]"#,
        ],
    ));
    let policy = of_kind(&objects, "ValidatingAdmissionPolicy")
        .into_iter()
        .find(|p| name(p) == "aac-atmos-auth-controller-controller-secrets")
        .expect("the Secret policy");
    assert_eq!(
        policy["spec"]["matchConditions"][0]["expression"],
        "request.userInfo.username == 'system:serviceaccount:platform:auth-bot'"
    );
    let binding = of_kind(&objects, "ValidatingAdmissionPolicyBinding")
        .into_iter()
        .find(|b| b["spec"]["policyName"] == name(policy))
        .expect("its binding");
    assert_eq!(binding["spec"]["validationActions"], json!(["Warn", "Audit"]));

    let off = render(&["--set", "admissionPolicy.enabled=false"]);
    assert!(of_kind(&off, "ValidatingAdmissionPolicy").is_empty());
    assert!(of_kind(&off, "ValidatingAdmissionPolicyBinding").is_empty());
}
