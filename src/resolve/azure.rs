//! Azure chains: an `azure/oidc` provider (Atmos's `pkg/auth/providers/azure/oidc.go`) and
//! its `azure/subscription` identity (`pkg/auth/identities/azure/subscription.go`), checked
//! into one [`AzureTarget`]: the federated credential's app and tenant, the subscription, and
//! the authority host the operator set for the provider's `cloud_environment`. Also the rules
//! across clouds: an AWS link cannot start from an Azure provider or chain from an Azure
//! identity, nor the reverse.

use serde_json::Value;

use super::kinds::{AZURE_IDENTITY_KIND, AZURE_PROVIDER_KIND, IDENTITY_KIND, PROVIDER_KIND};
use super::model::AzureTarget;
use super::problem::{Problem, Reason};
use super::walk::Checker;
use super::warnings::Warning;
use crate::api::{IdentityDef, Provider};

/// Atmos's `cloud_environment` values (`pkg/auth/cloud/azure/cloud_environments.go`).
pub(crate) const CLOUD_ENVIRONMENTS: [&str; 3] = ["public", "usgovernment", "china"];

/// What an `azure/oidc` provider contributes to each of its identities' targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AzureProvider {
    tenant_id: String,
    client_id: String,
    location: Option<String>,
    cloud_environment: String,
    authority_host: String,
}

fn provider_path(provider: &str, field: &str) -> String {
    format!("auth.providers.{provider}.{field}")
}

/// `8-4-4-4-12` hexadecimal digits: Entra's application and tenant ids, Azure's subscription ids.
pub(crate) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A tenant id is a GUID or a verified domain (`contoso.onmicrosoft.com`); it becomes a path
/// segment of the token endpoint, so nothing else passes.
fn check_tenant(tenant: &str) -> Result<(), String> {
    let domain = tenant.contains('.')
        && tenant.len() <= 253
        && tenant.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if is_guid(tenant) || domain {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not an Entra tenant id: use the tenant's GUID (Directory ID) or a verified \
             domain such as contoso.onmicrosoft.com",
            tenant.escape_debug()
        ))
    }
}

/// Azure's resource group names: 1 to 90 letters, digits, `_ - . ( )`, not ending in `.`.
fn check_resource_group(name: &str) -> Result<(), String> {
    let ok = (1..=90).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')'))
        && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not an Azure resource group name: 1 to 90 letters, digits and _ - . ( ), not ending in .",
            name.escape_debug()
        ))
    }
}

/// A location (`eastus`, `westeurope`) is written into pod settings: letters, digits, spaces.
fn check_location(location: &str) -> Result<(), String> {
    if !location.is_empty() && location.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not an Azure location such as eastus or westeurope",
            location.escape_debug()
        ))
    }
}

/// The string at `key` of a free-form map: `Err` with the problem's message when it is of
/// another type (Atmos reads these keys with `.(string)`, ignoring any other type).
pub(super) fn string_at<'v>(
    map: &'v std::collections::BTreeMap<String, Value>,
    key: &str,
) -> Result<Option<&'v str>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "{key} must be a string, not {other}; quote it (Atmos ignores a {key} of another type)"
        )),
    }
}

impl Checker<'_> {
    /// Checks an `azure/oidc` provider's Azure keys (the token keys, `audience`,
    /// `service_account` and `expiration`, are checked as for every provider); `None` for
    /// another kind or when something is wrong (reported).
    pub(super) fn azure_provider(&mut self, pname: &str, provider: &Provider) -> Option<AzureProvider> {
        if provider.kind != AZURE_PROVIDER_KIND {
            return None;
        }
        let before = self.problems.len();
        let spec = provider.spec.clone().unwrap_or_default();
        let mut field = |key: &str, required: bool, check: fn(&str) -> Result<(), String>| -> Option<String> {
            let path = provider_path(pname, &format!("spec.{key}"));
            match string_at(&spec.extra, key) {
                Err(message) => self.problems.push(Problem::new(path, Reason::InvalidProfile, message)),
                Ok(None) if required => self.problems.push(Problem::new(
                    path,
                    Reason::InvalidProfile,
                    format!(
                        "{key} is required for kind {AZURE_PROVIDER_KIND} (as in Atmos): {}",
                        if key == "tenant_id" {
                            "the Entra tenant (Directory ID) of the app registration"
                        } else {
                            "the application (client) id of the app registration whose federated \
                             credential trusts the ServiceAccount"
                        }
                    ),
                )),
                Ok(None) => {}
                Ok(Some(value)) => match check(value) {
                    Ok(()) => return Some(value.to_owned()),
                    Err(detail) => self.problems.push(Problem::new(path, Reason::InvalidProfile, detail)),
                },
            }
            None
        };
        let tenant_id = field("tenant_id", true, check_tenant);
        let client_id = field("client_id", true, |id| {
            if is_guid(id) {
                Ok(())
            } else {
                Err(format!(
                    "\"{}\" is not an application (client) id: a GUID such as \
                     00000000-0000-0000-0000-000000000000",
                    id.escape_debug()
                ))
            }
        });
        // Checked, not kept: Atmos requires the identity's principal.subscription_id, which wins.
        field("subscription_id", false, check_subscription);
        let location = field("location", false, check_location);
        let cloud_environment = field("cloud_environment", false, |env| {
            if CLOUD_ENVIRONMENTS.contains(&env) {
                Ok(())
            } else {
                Err(format!(
                    "unknown cloud_environment \"{}\" (Atmos refuses it too); valid values are: {}",
                    env.escape_debug(),
                    CLOUD_ENVIRONMENTS.join(", ")
                ))
            }
        })
        .unwrap_or_else(|| "public".to_owned());
        self.token_file_path(pname, &spec.extra);
        let authority_host = self.authority_host(pname, &cloud_environment, before);
        if self.problems.len() != before {
            return None;
        }
        Some(AzureProvider {
            tenant_id: tenant_id?,
            client_id: client_id?,
            location,
            cloud_environment,
            authority_host: authority_host?,
        })
    }

    /// `token_file_path`: a runner's setting, warned about (a problem when not a string).
    fn token_file_path(&mut self, pname: &str, extra: &std::collections::BTreeMap<String, Value>) {
        match string_at(extra, "token_file_path") {
            Ok(Some(_)) => self.warnings.push(Warning::new(
                provider_path(pname, "spec.token_file_path"),
                "kept, not used in a cluster: Atmos reads the federated token from that file on a \
                 runner; the controller requests the ServiceAccount's token itself, and consumer pods \
                 read the path the Secret's AZURE_FEDERATED_TOKEN_FILE names (spec.federatedToken of \
                 the Identity)",
            )),
            Err(message) => self.problems.push(Problem::new(
                provider_path(pname, "spec.token_file_path"),
                Reason::InvalidProfile,
                message,
            )),
            Ok(None) => {}
        }
    }

    /// The operator's authority host for `cloud_environment`; a problem when there is none
    /// (reported only if the provider had no other problem since `before`).
    fn authority_host(&mut self, pname: &str, cloud_environment: &str, before: usize) -> Option<String> {
        let authority_host = self.settings.azure_authority_host(cloud_environment).map(str::to_owned);
        if authority_host.is_none() && self.problems.len() == before {
            let allowed: Vec<&str> = self
                .settings
                .azure_authority_hosts
                .iter()
                .map(|(env, _)| env.as_str())
                .collect();
            self.problems.push(Problem::new(
                provider_path(pname, "spec.cloud_environment"),
                Reason::EndpointNotAllowed,
                format!(
                    "cloud_environment {cloud_environment} is not allowed: the operator set no Entra \
                     authority host for it (allowed: {}); ask the operator to add \
                     --azure-authority-host {cloud_environment}=https://HOST/",
                    if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
        authority_host
    }

    /// Checks the kinds on either side of identity `name`'s `via`: the provider it starts
    /// from (`provider_kind`, for the identity with `via.provider`), or the identity it
    /// chains from (`parent_kind`). AWS and Azure do not mix within a chain.
    pub(super) fn cloud_link(
        &mut self,
        name: &str,
        def: &IdentityDef,
        provider_kind: Option<&str>,
        parent_kind: Option<&str>,
    ) {
        match (def.kind.as_str(), provider_kind, parent_kind) {
            (IDENTITY_KIND, Some(AZURE_PROVIDER_KIND), _) => self.identity_problem(
                name,
                "via.provider",
                format!(
                    "kind {IDENTITY_KIND} cannot start from an {AZURE_PROVIDER_KIND} provider: that \
                     provider yields Entra tokens, and AssumeRoleWithWebIdentity needs a token from a \
                     {PROVIDER_KIND} provider; use a {PROVIDER_KIND} provider here, or kind \
                     {AZURE_IDENTITY_KIND} for Azure"
                ),
            ),
            (AZURE_IDENTITY_KIND, Some(PROVIDER_KIND), _) => self.identity_problem(
                name,
                "via.provider",
                format!(
                    "kind {AZURE_IDENTITY_KIND} needs an {AZURE_PROVIDER_KIND} provider (spec.tenant_id, \
                     spec.client_id): a {PROVIDER_KIND} provider yields AWS credentials"
                ),
            ),
            (AZURE_IDENTITY_KIND, _, Some(_)) => self.identity_problem(
                name,
                "via.identity",
                format!(
                    "kind {AZURE_IDENTITY_KIND} starts from a provider (via.provider: an \
                     {AZURE_PROVIDER_KIND} provider), as in Atmos; it cannot chain from another identity"
                ),
            ),
            (IDENTITY_KIND, _, Some(AZURE_IDENTITY_KIND)) => self.identity_problem(
                name,
                "via.identity",
                format!(
                    "kind {IDENTITY_KIND} cannot chain from an {AZURE_IDENTITY_KIND} identity: AssumeRole \
                     needs AWS credentials; start it from a {PROVIDER_KIND} provider or an \
                     {IDENTITY_KIND} identity"
                ),
            ),
            _ => {}
        }
    }

    /// The target of `azure/subscription` identity `name` through `provider`; `None` when its
    /// principal is wrong (reported). The identity's subscription (required) and location win
    /// over the provider's, as Atmos applies the identity's environment after the provider's.
    pub(super) fn azure_target(
        &mut self,
        name: &str,
        def: &IdentityDef,
        provider: &AzureProvider,
    ) -> Option<AzureTarget> {
        let before = self.problems.len();
        let principal = def.principal.clone().unwrap_or_default();
        // `region` is typed on Principal; the Azure keys stay among the others.
        let mut field = |key: &str, check: fn(&str) -> Result<(), String>| -> Option<String> {
            match string_at(&principal.extra, key) {
                Err(message) => self.identity_problem(name, &format!("principal.{key}"), message),
                Ok(None) => {}
                Ok(Some(value)) => match check(value) {
                    Ok(()) => return Some(value.to_owned()),
                    Err(detail) => self.identity_problem(name, &format!("principal.{key}"), detail),
                },
            }
            None
        };
        let subscription_id = field("subscription_id", check_subscription);
        let resource_group = field("resource_group", check_resource_group);
        let location = field("location", check_location);
        // Absent (not of a wrong type or shape, which is reported already): required.
        if principal.extra.get("subscription_id").is_none_or(Value::is_null) {
            self.identity_problem(
                name,
                "principal.subscription_id",
                format!(
                    "subscription_id is required for kind {AZURE_IDENTITY_KIND} (as in Atmos): the \
                     subscription's GUID"
                ),
            );
        }
        if self.problems.len() != before {
            return None;
        }
        Some(AzureTarget {
            tenant_id: provider.tenant_id.clone(),
            client_id: provider.client_id.clone(),
            subscription_id: subscription_id?,
            resource_group,
            location: location.or_else(|| provider.location.clone()),
            cloud_environment: provider.cloud_environment.clone(),
            authority_host: provider.authority_host.clone(),
        })
    }
}

fn check_subscription(id: &str) -> Result<(), String> {
    if is_guid(id) {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a subscription id: a GUID such as 00000000-0000-0000-0000-000000000000",
            id.escape_debug()
        ))
    }
}
