//! Kinds: the two the controller runs, the ones Atmos knows (so a typo is reported as
//! unknown rather than as "cannot run in a cluster", from Atmos's `pkg/auth/factory`), and
//! why each other kind cannot run in a cluster.

/// The one provider kind the controller runs.
pub(crate) use super::settings::PROVIDER_KIND;
/// The AWS identity kind the controller runs.
pub(crate) const IDENTITY_KIND: &str = "aws/assume-role";
/// Atmos's Entra workload identity federation provider, which the controller runs with a
/// ServiceAccount token as the federated token.
pub(crate) const AZURE_PROVIDER_KIND: &str = "azure/oidc";
/// The Azure identity kind the controller runs (via an `azure/oidc` provider).
pub(crate) const AZURE_IDENTITY_KIND: &str = "azure/subscription";
/// Atmos's GCP workload identity federation provider, run with a ServiceAccount token as the
/// subject token of Google STS's token exchange.
pub(crate) const GCP_PROVIDER_KIND: &str = "gcp/workload-identity-federation";
/// The GCP identity that impersonates a service account (`generateAccessToken`).
pub(crate) const GCP_SA_KIND: &str = "gcp/service-account";
/// The GCP identity that names a project, region and zone (no call of its own).
pub(crate) const GCP_PROJECT_KIND: &str = "gcp/project";

/// Whether `kind` is one of the GCP identity kinds the controller runs.
pub(crate) fn is_gcp_identity(kind: &str) -> bool {
    kind == GCP_SA_KIND || kind == GCP_PROJECT_KIND
}

/// Provider kinds Atmos knows (its `pkg/auth/factory`), and the controller's own. Any other
/// kind is refused by Atmos ("unsupported provider kind"), so an import refuses it too
/// rather than listing a typo as "not runnable in a cluster".
pub const PROVIDER_KINDS: &[&str] = &[
    "atmos/pro",
    "aws/iam-identity-center",
    "aws/saml",
    "azure/cli",
    "azure/device-code",
    "azure/interactive",
    "azure/oidc",
    "gcp/adc",
    "gcp/workload-identity-federation",
    "github/oidc",
    super::settings::PROVIDER_KIND,
    "mock",
    "mock/aws",
];

/// Identity kinds Atmos knows (its `pkg/auth/factory`).
pub const IDENTITY_KINDS: &[&str] = &[
    "ambient",
    "atmos/pro",
    "aws/ambient",
    "aws/assume-role",
    "aws/assume-root",
    "aws/emulator",
    "aws/permission-set",
    "aws/user",
    "azure/emulator",
    "azure/subscription",
    "gcp/emulator",
    "gcp/project",
    "gcp/service-account",
    "kubernetes/emulator",
    "mock",
    "mock/aws",
];

/// The message for a kind neither Atmos nor the controller has (`what`: "provider" or
/// "identity").
pub fn unknown_kind_message(kind: &str, what: &str, known: &[&str]) -> String {
    format!(
        "unknown kind {kind}: neither Atmos nor the controller has such a{n} {what} kind (Atmos refuses it: \
         \"unsupported {what} kind\"); known {what} kinds: {}",
        known.join(", "),
        n = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "n"
        } else {
            ""
        },
    )
}

/// Why a provider or identity kind does not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KindProblem {
    /// `kind` is empty: a profile error.
    Missing(String),
    /// Neither Atmos nor the controller has the kind (a typo): a profile error.
    Unknown(String),
    /// An Atmos kind that cannot run in a cluster (reason `UnsupportedKind`).
    CannotRun(String),
}

impl KindProblem {
    /// The message, for a person.
    pub(crate) fn into_message(self) -> String {
        match self {
            KindProblem::Missing(m) | KindProblem::Unknown(m) | KindProblem::CannotRun(m) => m,
        }
    }
}

/// Checks a provider kind: `Ok` for [`PROVIDER_KIND`], [`AZURE_PROVIDER_KIND`] and [`GCP_PROVIDER_KIND`].
pub(crate) fn check_provider_kind(kind: &str) -> Result<(), KindProblem> {
    match kind {
        PROVIDER_KIND | AZURE_PROVIDER_KIND | GCP_PROVIDER_KIND => Ok(()),
        "" => Err(KindProblem::Missing(format!(
            "kind is required; the controller runs providers of kind {PROVIDER_KIND}"
        ))),
        other if !PROVIDER_KINDS.contains(&other) => Err(KindProblem::Unknown(unknown_kind_message(
            other,
            "provider",
            PROVIDER_KINDS,
        ))),
        other => {
            let why = match other {
                "github/oidc" => "github/oidc exists only inside a GitHub Actions job; use kind \
                                  kubernetes/oidc with spec.service_account, or keep github/oidc in \
                                  Atmos itself inside the job"
                    .to_owned(),
                "aws/iam-identity-center" => "SSO needs a person to log in; use kind \
                                              kubernetes/oidc with spec.service_account"
                    .to_owned(),
                "aws/saml" => "SAML needs a person to log in through a browser; use kind \
                               kubernetes/oidc with spec.service_account"
                    .to_owned(),
                "azure/cli" => format!(
                    "it uses a person's `az login` session on a workstation; use kind \
                     {AZURE_PROVIDER_KIND} with spec.tenant_id, spec.client_id and \
                     spec.service_account (an app registration with a federated credential for \
                     that ServiceAccount)"
                ),
                "azure/device-code" => format!(
                    "a device-code login needs a person to enter the code in a browser; use kind \
                     {AZURE_PROVIDER_KIND} with spec.tenant_id, spec.client_id and spec.service_account"
                ),
                "azure/interactive" => format!(
                    "an interactive login needs a person at a browser; use kind \
                     {AZURE_PROVIDER_KIND} with spec.tenant_id, spec.client_id and spec.service_account"
                ),
                "gcp/adc" => format!(
                    "Application Default Credentials are a person's gcloud login or the machine's own \
                     account, not a ServiceAccount's; use kind {GCP_PROVIDER_KIND} with project_number, \
                     workload_identity_pool_id, workload_identity_provider_id and spec.service_account (a \
                     workload identity pool provider that trusts the cluster's issuer)"
                ),
                _ => format!(
                    "the controller runs {PROVIDER_KIND} (AWS), {AZURE_PROVIDER_KIND} (Azure) and \
                     {GCP_PROVIDER_KIND} (GCP); use one of them with spec.service_account"
                ),
            };
            Err(KindProblem::CannotRun(format!(
                "kind {other} cannot run in a cluster: {why}"
            )))
        }
    }
}

/// Checks an identity kind: `Ok` for the AWS, Azure and GCP kinds the controller runs.
pub(crate) fn check_identity_kind(kind: &str) -> Result<(), KindProblem> {
    let message = match kind {
        IDENTITY_KIND | AZURE_IDENTITY_KIND | GCP_SA_KIND | GCP_PROJECT_KIND => return Ok(()),
        "" => {
            return Err(KindProblem::Missing(format!(
                "kind is required; the controller runs kind {IDENTITY_KIND}"
            )));
        }
        "aws/permission-set" => format!(
            "kind aws/permission-set cannot run in a cluster: it needs an AWS IAM Identity Center \
             (SSO) login by a person; use kind {IDENTITY_KIND} via a {PROVIDER_KIND} provider"
        ),
        "aws/user" => format!(
            "kind aws/user cannot run in a cluster: the controller does not store long-lived \
             access keys; use kind {IDENTITY_KIND} via a {PROVIDER_KIND} provider"
        ),
        "aws/assume-root" => format!(
            "kind aws/assume-root cannot run in a cluster: it needs a management-account session \
             for a root task, which the controller does not hold; use kind {IDENTITY_KIND}"
        ),
        other if !IDENTITY_KINDS.contains(&other) => {
            return Err(KindProblem::Unknown(unknown_kind_message(
                other,
                "identity",
                IDENTITY_KINDS,
            )));
        }
        "aws/ambient" => format!(
            "kind aws/ambient is for Atmos running inside a consumer pod, where it uses the \
             credentials the controller mounted; the controller itself runs kind {IDENTITY_KIND}"
        ),
        other => format!(
            "kind {other} cannot run in a cluster; the controller runs kind {IDENTITY_KIND} via a \
             {PROVIDER_KIND} provider, kind {AZURE_IDENTITY_KIND} via an {AZURE_PROVIDER_KIND} provider and \
             kinds {GCP_SA_KIND} and {GCP_PROJECT_KIND} via a {GCP_PROVIDER_KIND} provider"
        ),
    };
    Err(KindProblem::CannotRun(message))
}

#[cfg(test)]
mod tests {
    use crate::api::AuthProfileSpec;
    use crate::resolve::{Reason, Settings, validate_profile};

    #[test]
    fn a_typo_kind_is_unknown_not_unsupported() {
        let spec: AuthProfileSpec = serde_json::from_value(serde_json::json!({
            "providers": {"p": {"kind": "kubernetes/oidc", "spec": {"service_account": "sa"}},
                          "unused": {"kind": "kubernetes/odic"}},
            "identities": {"a": {"kind": "aws/assume-rol", "via": {"provider": "p"},
                                 "principal": {"assume_role": "arn:aws:iam::123456789012:role/a"}}}
        }))
        .unwrap();
        let problems = validate_profile(&spec, &Settings::default()).all_problems();
        let paths: Vec<_> = problems.iter().map(|p| (p.path.as_str(), p.reason)).collect();
        assert!(
            paths.contains(&("auth.identities.a.kind", Reason::InvalidProfile)),
            "{paths:?}"
        );
        assert!(
            paths.contains(&("auth.providers.unused.kind", Reason::InvalidProfile)),
            "{paths:?}"
        );
        assert!(
            problems.iter().all(|p| p.message.starts_with("unknown kind ")),
            "{problems:?}"
        );
    }
}
