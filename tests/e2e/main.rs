//! End-to-end tests: the real controller binary against a real kube-apiserver (built from Go
//! modules, see tests/controlplane) and the verifying local STS. Each test owns a namespace
//! `e2e-<name>`, its own STS and its own controller process scoped to that namespace.

mod admission_check;
mod alerts;
mod atmos_reading;
mod azure;
mod azure_consumer;
mod chart_rbac;
mod cluster_federated;
mod cluster_profiles;
mod consumers;
mod corpus;
mod deep;
mod ecr;
mod exposition;
mod fair_accounts;
mod fixture;
mod flow;
mod forged;
mod gcp;
mod ha;
mod import;
mod leftovers;
mod limits;
mod limits_profile;
mod logs;
mod metrics_auth;
mod missing_crd;
mod multi_identity;
mod namespaces;
mod operator_cli;
mod overrides;
mod paste;
mod profile_deletion;
mod restart_targets;
mod restarts;
mod safety;
mod scale;
mod scale_env;
mod serial;
mod sts_faults;
mod sts_outage;
mod sts_tokens;
mod tamper;
mod undecodable;
mod waits;

/// The profile most tests apply: a provider and a two-link chain.
pub fn profile(duration: &str) -> String {
    format!(
        r#"
apiVersion: auth.atmos.tools/v1alpha1
kind: AuthProfile
metadata: {{name: k8s}}
spec:
  providers:
    cluster-oidc:
      kind: kubernetes/oidc
      spec: {{audience: sts.amazonaws.com, service_account: terraform}}
  identities:
    acme/admin:
      default: true
      kind: aws/assume-role
      via: {{provider: cluster-oidc}}
      principal: {{assume_role: "{admin}", duration: {duration}, region: us-east-2}}
    acme/network:
      kind: aws/assume-role
      via: {{identity: acme/admin}}
      principal: {{assume_role: "{network}", duration: {duration}}}
"#,
        admin = fixture::ADMIN_ROLE,
        network = fixture::NETWORK_ROLE,
    )
}

/// An Identity manifest.
pub fn identity(name: &str, body: &str) -> String {
    format!(
        "apiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata: {{name: {name}}}\nspec:\n  profile: k8s\n{body}\n"
    )
}
