//! The image-pull Secret of an Identity (`spec.imagePullSecret`): which of the profile's
//! `auth.integrations` it logs in with, each checked as Atmos checks `aws/ecr` and
//! `aws/ecr-public` (`pkg/auth/integrations/aws`), and bound to one identity of the set.

use serde::Serialize;

use super::names::atmos_name;
use super::problem::{Problem, Reason, list};
use super::set::ResolvedSet;
use crate::api::{AuthProfileSpec, ImagePullSecretSpec, Integration, MAX_PULL_INTEGRATIONS};

/// Atmos's kind of a private ECR registry login.
pub const KIND_ECR: &str = "aws/ecr";
/// Atmos's kind of the ECR Public login.
pub const KIND_ECR_PUBLIC: &str = "aws/ecr-public";
/// The only region ECR Public authenticates in (AWS: "always authenticate to us-east-1").
pub const ECR_PUBLIC_REGION: &str = "us-east-1";
/// The ECR Public registry host.
pub const ECR_PUBLIC_HOST: &str = "public.ecr.aws";
/// The regions ECR Public has endpoints in (Atmos's `ECRPublicSupportedRegions`).
const ECR_PUBLIC_REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

/// Which registry a login is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistryKind {
    /// A private registry, `<account>.dkr.ecr.<region>.amazonaws.com`.
    Ecr,
    /// `public.ecr.aws`.
    EcrPublic,
}

/// One registry login: `GetAuthorizationToken` in `region` with the session of identity
/// `item` of the set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegistryLogin {
    /// The integration's name in the profile.
    pub integration: String,
    pub kind: RegistryKind,
    /// The registry's account (`aws/ecr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The region the token is asked for.
    pub region: String,
    /// Index in the set's identities of the identity whose session logs in.
    pub item: usize,
}

impl RegistryLogin {
    /// The registry host, the key of `auths` in the Docker config.
    pub fn host(&self) -> String {
        match self.kind {
            RegistryKind::Ecr => format!(
                "{}.dkr.ecr.{}.amazonaws.com",
                self.account_id.as_deref().unwrap_or_default(),
                self.region
            ),
            RegistryKind::EcrPublic => ECR_PUBLIC_HOST.to_owned(),
        }
    }
}

/// The image-pull Secret to write: its name and its logins, in the order of the names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegistryPlan {
    pub secret_name: String,
    pub logins: Vec<RegistryLogin>,
}

/// Resolves `spec` against the profile's integrations for the identities of `set`.
pub fn resolve_registry(
    profile: &AuthProfileSpec,
    spec: &ImagePullSecretSpec,
    set: &ResolvedSet,
) -> Result<RegistryPlan, Vec<Problem>> {
    let mut problems = Vec::new();
    let field = "spec.imagePullSecret";
    if spec.name == set.first().secret.name {
        problems.push(Problem::new(
            format!("{field}.name"),
            Reason::InvalidIdentity,
            format!(
                "{:?} is the credential Secret's name: choose another name (a dockerconfigjson Secret holds nothing else)",
                spec.name
            ),
        ));
    }
    let integrations = profile.integrations.clone().unwrap_or_default();
    let identities: Vec<&str> = set.items.iter().map(|r| r.identity.as_str()).collect();
    let names: Vec<String> = match &spec.integrations {
        Some(names) => names.clone(),
        None => implicit(&integrations, &identities),
    };
    if names.is_empty() {
        problems.push(Problem::new(
            format!("{field}.integrations"),
            Reason::InvalidIdentity,
            format!(
                "selects no integration: the profile has no aws/ecr or aws/ecr-public integration with via.identity one of {} and auto_provision not false; list integrations by name, or remove spec.imagePullSecret",
                list(&identities)
            ),
        ));
    }
    if names.len() > MAX_PULL_INTEGRATIONS {
        problems.push(Problem::new(
            format!("{field}.integrations"),
            Reason::InvalidIdentity,
            format!("names {} integrations, more than {MAX_PULL_INTEGRATIONS}", names.len()),
        ));
    }
    let mut logins: Vec<RegistryLogin> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let Some(def) = integrations.get(name) else {
            problems.push(Problem::new(
                format!("{field}.integrations[{i}]"),
                Reason::InvalidIdentity,
                format!(
                    "the profile has no integration {name:?} (it has: {})",
                    list(integrations.keys())
                ),
            ));
            continue;
        };
        match login(name, def, &identities) {
            Ok(l) if logins.iter().any(|o| o.host() == l.host()) => problems.push(Problem::new(
                format!("{field}.integrations[{i}]"),
                Reason::InvalidIdentity,
                format!(
                    "logs in to {} again: a Docker config holds one login per registry",
                    l.host()
                ),
            )),
            Ok(l) => logins.push(l),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        Ok(RegistryPlan {
            secret_name: spec.name.clone(),
            logins,
        })
    } else {
        Err(problems)
    }
}

/// The integrations Atmos provisions on login of one of `identities`: ECR kinds bound by
/// `via.identity`, `auto_provision` not `false`, in name order.
fn implicit(integrations: &crate::api::Integrations, identities: &[&str]) -> Vec<String> {
    integrations
        .iter()
        .filter(|(_, d)| matches!(d.kind.as_deref(), Some(KIND_ECR | KIND_ECR_PUBLIC)))
        .filter(|(_, d)| d.spec.as_ref().and_then(|s| s.auto_provision) != Some(false))
        .filter(|(_, d)| {
            let via = d.via.as_ref().and_then(|v| v.identity.as_deref());
            via.is_some_and(|v| identities.contains(&atmos_name(v).as_str()))
        })
        .map(|(n, _)| n.clone())
        .collect()
}

/// One integration as a login, or why it cannot be one.
fn login(name: &str, def: &Integration, identities: &[&str]) -> Result<RegistryLogin, Problem> {
    let path = format!("auth.integrations.{name}");
    let bad = |at: &str, reason: Reason, message: String| Problem::new(format!("{path}{at}"), reason, message);
    let kind = match def.kind.as_deref() {
        Some(KIND_ECR) => RegistryKind::Ecr,
        Some(KIND_ECR_PUBLIC) => RegistryKind::EcrPublic,
        other => {
            return Err(bad(
                ".kind",
                Reason::UnsupportedKind,
                format!(
                    "{other:?} is not a registry login the controller makes: only aws/ecr and aws/ecr-public (aws/eks, azure/acr, azure/aks, gcp/gke: consumers log in with the credentials of the Secret, docs/operations.md)"
                ),
            ));
        }
    };
    let via = def.via.clone().unwrap_or_default();
    if via.provider.is_some() {
        return Err(bad(
            ".via.provider",
            Reason::UnsupportedKind,
            "binds the login to a provider: a kubernetes/oidc provider yields a ServiceAccount token, not AWS credentials; set via.identity to the identity that logs in".to_owned(),
        ));
    }
    let Some(identity) = via.identity.as_deref().map(atmos_name) else {
        return Err(bad(
            ".via.identity",
            Reason::InvalidProfile,
            "is missing: name the identity whose credentials log in".to_owned(),
        ));
    };
    let Some(item) = identities.iter().position(|i| *i == identity) else {
        return Err(bad(
            ".via.identity",
            Reason::InvalidIdentity,
            format!(
                "{identity:?} is not one of this Identity's identities ({}): its Secret holds no session for it; add it to spec.identities or use an Identity of it",
                list(identities)
            ),
        ));
    };
    let (account_id, region) = registry_fields(kind, def, &bad)?;
    if let Err(why) = super::rules::check_region(&region) {
        return Err(bad(".spec.registry.region", Reason::InvalidProfile, why));
    }
    Ok(RegistryLogin {
        integration: name.to_owned(),
        kind,
        account_id,
        region,
        item,
    })
}

/// The account and region of a login: both required for `aws/ecr`; ECR Public always
/// authenticates in us-east-1 (a `region` outside its two is refused, as Atmos does).
fn registry_fields(
    kind: RegistryKind,
    def: &Integration,
    bad: &dyn Fn(&str, Reason, String) -> Problem,
) -> Result<(Option<String>, String), Problem> {
    let registry = def.spec.as_ref().and_then(|s| s.registry.clone()).unwrap_or_default();
    let region = registry.region.filter(|r| !r.is_empty());
    Ok(match kind {
        RegistryKind::Ecr => {
            let account = registry.account_id.filter(|a| !a.is_empty()).ok_or_else(|| {
                bad(
                    ".spec.registry.account_id",
                    Reason::InvalidProfile,
                    "is required for aws/ecr: the registry's 12-digit AWS account".to_owned(),
                )
            })?;
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(
                    ".spec.registry.account_id",
                    Reason::InvalidProfile,
                    format!("{account:?} is not a 12-digit AWS account id"),
                ));
            }
            let region = region.ok_or_else(|| {
                bad(
                    ".spec.registry.region",
                    Reason::InvalidProfile,
                    "is required for aws/ecr: the registry's region, e.g. us-east-2".to_owned(),
                )
            })?;
            (Some(account), region)
        }
        RegistryKind::EcrPublic => {
            if let Some(r) = region.as_deref().filter(|r| !ECR_PUBLIC_REGIONS.contains(r)) {
                return Err(bad(
                    ".spec.registry.region",
                    Reason::InvalidProfile,
                    format!(
                        "{r:?}: ECR Public has endpoints only in us-east-1 and us-west-2 (and authenticates in us-east-1 either way)"
                    ),
                ));
            }
            (None, ECR_PUBLIC_REGION.to_owned())
        }
    })
}
