//! Warnings: what a profile says that the controller accepts but does not use, or uses as
//! Atmos does rather than as written. One line each, with the path and why. They never make
//! a profile or an Identity fail; `validate` prints them (exit 0), the AuthProfile's
//! `status.warnings` lists them, `import` prints them.

use std::fmt;

use crate::api::{AuthProfileSpec, IdentityDef, Provider};

// Only the kinds the controller runs have their keys reported (other kinds cannot run:
// their kind problem says so).
use super::kinds::{IDENTITY_KIND, PROVIDER_KIND};

/// One warning.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// Where, in Atmos YAML form (`auth.realm`, `auth.identities.acme/admin.session`) or the
    /// Identity's `spec.` form.
    pub path: String,
    /// What is not used, or how it is used, and what to do if that is not what you want.
    pub message: String,
}

impl Warning {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// `warnings` without repeats (a link shared by several chains says the same once), in
/// first-seen order.
pub(crate) fn dedup(warnings: Vec<Warning>) -> Vec<Warning> {
    let mut seen = std::collections::BTreeSet::new();
    warnings.into_iter().filter(|w| seen.insert(w.clone())).collect()
}

/// Keys the controller reads from a `principal` and a provider's `spec`: one of another type
/// is kept among the other keys (`api::free_form::take`) and is a problem, not a warning.
const PRINCIPAL_KEYS: &[&str] = &["assume_role", "session_name", "external_id", "duration", "region"];
const PROVIDER_SPEC_KEYS: &[&str] = &["audience", "service_account", "expiration"];

/// The prefix of every "kept, not used" warning.
const KEPT: &str = "kept, not used in a cluster";
/// Why a login setting of SSO or SAML providers is not used.
const LOGIN: &str = "a setting of a person's SSO or SAML login; kind kubernetes/oidc requests a \
                     ServiceAccount token instead";

/// The Atmos keys of `profile` that have no meaning in a cluster, one warning per key
/// present. Entries whose kind cannot run are left to their kind problem.
pub(crate) fn unused_keys(profile: &AuthProfileSpec) -> Vec<Warning> {
    let mut out = Vec::new();
    for (present, key, why) in [
        (
            profile.realm.is_some(),
            "realm",
            "Atmos's credential isolation between repositories on one machine; Secrets are \
             isolated by namespace",
        ),
        (
            profile.logs.is_some(),
            "logs",
            "Atmos's auth log settings; the controller logs as its --log-level says",
        ),
        (
            profile.keyring.is_some(),
            "keyring",
            "where Atmos stores credentials on a workstation; the controller keeps them in Secrets",
        ),
        (
            profile.console.is_some(),
            "console",
            "web console sign-in, for a person",
        ),
    ] {
        if present {
            out.push(Warning::new(format!("auth.{key}"), format!("{KEPT}: {why}")));
        }
    }
    integrations(profile, &mut out);
    for (name, provider) in &profile.providers {
        if provider.kind == PROVIDER_KIND {
            provider_keys(&format!("auth.providers.{name}"), provider, &mut out);
        }
    }
    for (name, def) in &profile.identities {
        if def.kind == IDENTITY_KIND {
            identity_keys(&format!("auth.identities.{name}"), def, &mut out);
        }
    }
    out
}

/// The integrations no Identity can use: kinds other than `aws/ecr` and `aws/ecr-public`
/// (`aws/eks`, `azure/acr`, `azure/aks`, `gcp/gke`, `github/sts`), and ECR logins bound to a
/// provider. An ECR login by `via.identity` is used by the Identities that name it in
/// `spec.imagePullSecret` (or leave its list out).
fn integrations(profile: &AuthProfileSpec, out: &mut Vec<Warning>) {
    use super::registry::{KIND_ECR, KIND_ECR_PUBLIC};
    for (name, def) in profile.integrations.iter().flatten() {
        let ecr = matches!(def.kind.as_deref(), Some(KIND_ECR | KIND_ECR_PUBLIC));
        let by_provider = def.via.as_ref().is_some_and(|v| v.provider.is_some());
        let why = match (ecr, by_provider) {
            (true, false) => continue,
            (true, true) => {
                "an ECR login bound to a provider: a kubernetes/oidc provider yields no AWS \
                             credentials; set via.identity, then name it in an Identity's spec.imagePullSecret"
            }
            (false, _) => {
                "a login (EKS, ACR, AKS, GKE, ...) Atmos performs after authenticating; a consumer \
                           logs in itself with the credentials of its Secret (docs/operations.md: EKS from \
                           Terraform); only aws/ecr and aws/ecr-public become image-pull Secrets"
            }
        };
        out.push(Warning::new(
            format!("auth.integrations.{name}"),
            format!("{KEPT}: {why}"),
        ));
    }
}

fn provider_keys(path: &str, p: &Provider, out: &mut Vec<Warning>) {
    for (present, key, why) in [
        (p.start_url.is_some(), "start_url", LOGIN),
        (p.url.is_some(), "url", LOGIN),
        (p.username.is_some(), "username", LOGIN),
        (p.driver.is_some(), "driver", LOGIN),
        (p.provider_type.is_some(), "provider_type", LOGIN),
        (p.download_browser_driver.is_some(), "download_browser_driver", LOGIN),
        (p.browser_type.is_some(), "browser_type", LOGIN),
        (p.browser_executable_path.is_some(), "browser_executable_path", LOGIN),
        (
            p.auto_provision_identities.is_some(),
            "auto_provision_identities",
            LOGIN,
        ),
        (p.console.is_some(), "console", "web console sign-in, for a person"),
        (
            p.session.is_some(),
            "session",
            "the session of a person's SSO or SAML login; a kubernetes/oidc token lives as long as \
             spec.expiration says (default 10m) and is used once",
        ),
        (
            p.default.is_some(),
            "default",
            "Atmos's default provider for atmos auth login; Identities name the identity they want",
        ),
        (p.tags.is_some(), "tags", "labels for atmos auth list --tags"),
    ] {
        if present {
            out.push(Warning::new(format!("{path}.{key}"), format!("{KEPT}: {why}")));
        }
    }
    if p.spec.as_ref().is_some_and(|s| s.endpoint_url.is_some()) {
        out.push(Warning::new(
            format!("{path}.spec.endpoint_url"),
            "not used: Atmos sends AssumeRoleWithWebIdentity and AssumeRole to the endpoint of the identity \
             that makes the call (its spec.endpoint_url) and uses a provider's only for SSO and SAML logins, and \
             so does the controller; move it to spec.endpoint_url of the identities that should use it",
        ));
    }
    for key in p.spec.iter().flat_map(|s| s.extra.keys()) {
        if !PROVIDER_SPEC_KEYS.contains(&key.as_str()) {
            out.push(Warning::new(
                format!("{path}.spec.{key}"),
                format!("{KEPT}: not a setting of kind kubernetes/oidc (audience, service_account, expiration)"),
            ));
        }
    }
}

fn identity_keys(path: &str, d: &IdentityDef, out: &mut Vec<Warning>) {
    for (present, key, why) in [
        (
            d.required.is_some(),
            "required",
            "Atmos logs required identities in at start; the controller keeps an identity's \
             credentials fresh when an Identity resource names it",
        ),
        (
            d.provider.is_some(),
            "provider",
            "set by Atmos on identities it provisions from an SSO login; the chain follows via",
        ),
        (d.alias.is_some(), "alias", "a display alias of Atmos's CLI"),
        (
            d.emulator.is_some(),
            "emulator",
            "binds Atmos to a local emulator component",
        ),
        (d.tags.is_some(), "tags", "labels for atmos auth list --tags"),
        (
            d.env.as_ref().is_some_and(|e| !e.is_empty()),
            "env",
            "Atmos sets these in the environment of the commands it runs; the controller runs none: \
             set them on the consumer pod",
        ),
        (
            d.credentials.as_ref().is_some_and(|c| !is_only_legacy_endpoint(c)),
            "credentials",
            "credentials belong to kind aws/user; aws/assume-role gets its credentials from its via \
             (and reads only credentials.aws.resolver.url, Atmos's legacy STS endpoint)",
        ),
    ] {
        if present {
            out.push(Warning::new(format!("{path}.{key}"), format!("{KEPT}: {why}")));
        }
    }
    // aws/assume-role reads `spec.endpoint_url` (its STS endpoint, as in Atmos); the rest of
    // its spec is not used.
    for key in d.spec.iter().filter_map(|s| s.as_object()).flat_map(|s| s.keys()) {
        if key != "endpoint_url" {
            out.push(Warning::new(
                format!("{path}.spec.{key}"),
                format!("{KEPT}: not a spec key of aws/assume-role (endpoint_url, its STS endpoint)"),
            ));
        }
    }
    if let Some(principal) = &d.principal {
        let permission_set = [
            ("name", principal.name.is_some()),
            ("account", principal.account.is_some()),
        ];
        for (key, present) in permission_set {
            if present {
                out.push(Warning::new(
                    format!("{path}.principal.{key}"),
                    format!("{KEPT}: a key of kind aws/permission-set, not of aws/assume-role"),
                ));
            }
        }
        for key in principal.extra.keys().filter(|k| !PRINCIPAL_KEYS.contains(&k.as_str())) {
            out.push(Warning::new(
                format!("{path}.principal.{key}"),
                format!(
                    "{KEPT}: not a principal key of aws/assume-role (assume_role, session_name, \
                     external_id, duration, region)"
                ),
            ));
        }
    }
}

/// `credentials` holding nothing but `aws.resolver.url`, which aws/assume-role reads.
fn is_only_legacy_endpoint(credentials: &serde_json::Value) -> bool {
    let only = |v: Option<&serde_json::Value>, key: &str| {
        v.and_then(serde_json::Value::as_object)
            .is_some_and(|m| m.len() == 1 && m.contains_key(key))
    };
    only(Some(credentials), "aws")
        && only(credentials.get("aws"), "resolver")
        && only(credentials.pointer("/aws/resolver"), "url")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_line_per_unused_key_of_runnable_kinds_only() {
        let profile: AuthProfileSpec = serde_json::from_value(json!({
            "realm": "acme", "logs": {"level": "Debug"}, "keyring": {"type": "file"},
            "console": {"isolated": true},
            "integrations": {"ecr": {"kind": "aws/ecr", "via": {"identity": "a"}}, "eks": {"kind": "aws/eks"},
                             "ecr-p": {"kind": "aws/ecr", "via": {"provider": "k8s"}}},
            "providers": {
                "k8s": {"kind": "kubernetes/oidc", "default": true, "tags": ["ci"], "session": {"duration": "1h"},
                        "spec": {"audience": "sts.amazonaws.com", "files": {"base_path": "/x"}}},
                "sso": {"kind": "aws/iam-identity-center", "start_url": "https://x"}
            },
            "identities": {
                "a": {"kind": "aws/assume-role", "required": true, "alias": "admin", "tags": ["x"],
                      "env": [{"key": "TF_VAR_stage", "value": "prod"}],
                      "principal": {"assume_role": "arn:aws:iam::123456789012:role/a", "custom": 1}},
                "ps": {"kind": "aws/permission-set", "alias": "not reported: the kind is"}
            }
        }))
        .unwrap();
        let lines: Vec<String> = unused_keys(&profile).iter().map(|w| w.path.clone()).collect();
        assert_eq!(
            lines,
            [
                "auth.realm",
                "auth.logs",
                "auth.keyring",
                "auth.console",
                "auth.integrations.ecr-p",
                "auth.integrations.eks",
                "auth.providers.k8s.session",
                "auth.providers.k8s.default",
                "auth.providers.k8s.tags",
                "auth.providers.k8s.spec.files",
                "auth.identities.a.required",
                "auth.identities.a.alias",
                "auth.identities.a.tags",
                "auth.identities.a.env",
                "auth.identities.a.principal.custom",
            ]
        );
        assert!(
            unused_keys(&profile)
                .iter()
                .all(|w| w.message.starts_with("kept, not used in a cluster: "))
        );
    }
}
