//! The kinds Atmos knows, so a typo is reported as unknown rather than as "cannot run in
//! a cluster". From Atmos's `pkg/auth/factory`, plus the controller's `kubernetes/oidc`.

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
    crate::settings::PROVIDER_KIND,
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
