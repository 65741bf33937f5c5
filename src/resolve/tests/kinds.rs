//! Kinds.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn github_oidc_cannot_run() {
    let prof = profile("providers: {cluster-oidc: {kind: github/oidc}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.providers.cluster-oidc.kind",
            Reason::UnsupportedKind,
            "kind github/oidc cannot run in a cluster: github/oidc exists only inside a GitHub Actions job; use kind kubernetes/oidc with spec.service_account, or keep github/oidc in Atmos itself inside the job"
        )
    );
}

#[test]
fn sso_and_saml_need_a_person() {
    let prof = profile("providers: {cluster-oidc: {kind: aws/iam-identity-center}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")).message,
        "kind aws/iam-identity-center cannot run in a cluster: SSO needs a person to log in; use kind kubernetes/oidc with spec.service_account"
    );
    let prof = profile("providers: {cluster-oidc: {kind: aws/saml}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")).message,
        "kind aws/saml cannot run in a cluster: SAML needs a person to log in through a browser; use kind kubernetes/oidc with spec.service_account"
    );
}

#[test]
fn person_logins_of_azure_and_gcp_each_say_why() {
    let cases = [
        (
            "azure/cli",
            "kind azure/cli cannot run in a cluster: it uses a person's `az login` session on a workstation; use kind azure/oidc with spec.tenant_id, spec.client_id and spec.service_account (an app registration with a federated credential for that ServiceAccount)",
        ),
        (
            "azure/device-code",
            "kind azure/device-code cannot run in a cluster: a device-code login needs a person to enter the code in a browser; use kind azure/oidc with spec.tenant_id, spec.client_id and spec.service_account",
        ),
        (
            "azure/interactive",
            "kind azure/interactive cannot run in a cluster: an interactive login needs a person at a browser; use kind azure/oidc with spec.tenant_id, spec.client_id and spec.service_account",
        ),
        (
            "gcp/adc",
            "kind gcp/adc cannot run in a cluster: Application Default Credentials are a person's gcloud login or the machine's own account, not a ServiceAccount's; use kind gcp/workload-identity-federation with project_number, workload_identity_pool_id, workload_identity_provider_id and spec.service_account (a workload identity pool provider that trusts the cluster's issuer)",
        ),
    ];
    for (kind, message) in cases {
        let prof = profile(&format!("providers: {{cluster-oidc: {{kind: {kind}}}}}"));
        assert_eq!(
            only(&prof, &identity("profile: k8s")),
            p("auth.providers.cluster-oidc.kind", Reason::UnsupportedKind, message),
            "{kind}"
        );
    }
}

#[test]
fn identity_kinds_that_cannot_run() {
    let cases = [
        (
            "aws/permission-set",
            "kind aws/permission-set cannot run in a cluster: it needs an AWS IAM Identity Center (SSO) login by a person; use kind aws/assume-role via a kubernetes/oidc provider",
        ),
        (
            "aws/user",
            "kind aws/user cannot run in a cluster: the controller does not store long-lived access keys; use kind aws/assume-role via a kubernetes/oidc provider",
        ),
        (
            "aws/assume-root",
            "kind aws/assume-root cannot run in a cluster: it needs a management-account session for a root task, which the controller does not hold; use kind aws/assume-role",
        ),
        (
            "aws/ambient",
            "kind aws/ambient is for Atmos running inside a consumer pod, where it uses the credentials the controller mounted; the controller itself runs kind aws/assume-role",
        ),
    ];
    for (kind, message) in cases {
        let prof = profile(&format!("identities: {{acme/admin: {{kind: {kind}}}}}"));
        assert_eq!(
            only(&prof, &identity("profile: k8s")),
            p("auth.identities.acme/admin.kind", Reason::UnsupportedKind, message),
            "{kind}"
        );
    }
    // A kind without `via` (aws/ambient, aws/user) gets only its kind problem.
    let prof = raw_profile("identities: {a: {default: true, kind: aws/ambient}}");
    assert_eq!(only(&prof, &identity("profile: k8s")).reason, Reason::UnsupportedKind);
}
