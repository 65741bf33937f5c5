//! An Azure chain's Secret (pure): the settings Atmos exports for azurerm and the Azure SDKs
//! read, pointing at the federated token file; the SDK exchanges the file itself and
//! re-reads it, so nothing in these settings expires.
//!
//! - `env` (the default for Azure): one key per variable, for `envFrom`: `ARM_USE_OIDC=true`,
//!   `ARM_CLIENT_ID`, `ARM_TENANT_ID`, `ARM_SUBSCRIPTION_ID`, `ARM_OIDC_TOKEN_FILE_PATH`,
//!   `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_SUBSCRIPTION_ID`,
//!   `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST` (the operator's host), and as Atmos
//!   sets them `ARM_ENVIRONMENT`/`AZURE_ENVIRONMENT` outside the public cloud,
//!   `ARM_LOCATION`/`AZURE_LOCATION` and `AZURE_RESOURCE_GROUP` when known;
//! - `files`: the same as `KEY=value` lines in `azure.env`, for tools that read a file.
//!
//! With delivery `Projected` the token file is the pod's projected token and the non-secret
//! key `consumer.json` names what the pod must provide (ServiceAccount, audience, mount
//! path); with delivery `Secret` the token itself is the key `azure-identity-token` and the
//! settings point at it under the Secret's mount path.

use std::collections::BTreeMap;

use crate::api::SecretFormat;
use crate::resolve::{AzureTarget, Delivery, FEDERATED_TOKEN_FILE, Resolved};

/// The data key of the settings file (`files`).
pub const AZURE_ENV_FILE: &str = "azure.env";
/// The data key naming what a consumer pod must provide (delivery `Projected`).
pub const CONSUMER_JSON: &str = "consumer.json";

/// Every key an Azure Secret may hold: keys no longer rendered are pruned after a change.
pub const ALL_KEYS: [&str; 18] = [
    "ARM_USE_OIDC",
    "ARM_CLIENT_ID",
    "ARM_TENANT_ID",
    "ARM_SUBSCRIPTION_ID",
    "ARM_OIDC_TOKEN_FILE_PATH",
    "ARM_ENVIRONMENT",
    "ARM_LOCATION",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_ENVIRONMENT",
    "AZURE_LOCATION",
    "AZURE_RESOURCE_GROUP",
    AZURE_ENV_FILE,
    CONSUMER_JSON,
    FEDERATED_TOKEN_FILE,
];

/// The settings, in a stable order.
pub fn settings(resolved: &Resolved, target: &AzureTarget, delivery: &Delivery) -> Vec<(&'static str, String)> {
    let token_file = match delivery {
        Delivery::Projected { mount_path } => format!("{mount_path}/{FEDERATED_TOKEN_FILE}"),
        Delivery::Secret => format!("{}/{FEDERATED_TOKEN_FILE}", resolved.secret.mount_path),
    };
    let mut out = vec![
        ("ARM_USE_OIDC", "true".to_owned()),
        ("ARM_CLIENT_ID", target.client_id.clone()),
        ("ARM_TENANT_ID", target.tenant_id.clone()),
        ("ARM_SUBSCRIPTION_ID", target.subscription_id.clone()),
        ("ARM_OIDC_TOKEN_FILE_PATH", token_file.clone()),
        ("AZURE_CLIENT_ID", target.client_id.clone()),
        ("AZURE_TENANT_ID", target.tenant_id.clone()),
        ("AZURE_SUBSCRIPTION_ID", target.subscription_id.clone()),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file),
        ("AZURE_AUTHORITY_HOST", target.authority_host.clone()),
    ];
    if target.cloud_environment != "public" {
        out.push(("ARM_ENVIRONMENT", target.cloud_environment.clone()));
        out.push(("AZURE_ENVIRONMENT", target.cloud_environment.clone()));
    }
    if let Some(location) = &target.location {
        out.push(("ARM_LOCATION", location.clone()));
        out.push(("AZURE_LOCATION", location.clone()));
    }
    if let Some(group) = &target.resource_group {
        out.push(("AZURE_RESOURCE_GROUP", group.clone()));
    }
    out
}

/// The Secret's data; `token` is the ServiceAccount token for delivery `Secret`.
pub fn render(
    resolved: &Resolved,
    target: &AzureTarget,
    delivery: &Delivery,
    token: Option<&str>,
) -> BTreeMap<String, String> {
    let settings = settings(resolved, target, delivery);
    let mut data = BTreeMap::new();
    add_settings(
        &mut data,
        resolved,
        &settings,
        (AZURE_ENV_FILE, FEDERATED_TOKEN_FILE),
        (delivery, token),
    );
    data
}

/// The part every federated cloud's Secret shares: its settings as `env` keys and as a
/// `files` env file, then the opt-in token file, or else what the consumer pod needs.
pub(crate) fn add_settings(
    data: &mut BTreeMap<String, String>,
    resolved: &Resolved,
    settings: &[(&'static str, String)],
    (env_file, token_file): (&str, &str),
    (delivery, token): (&Delivery, Option<&str>),
) {
    let formats = &resolved.secret.formats;
    if formats.contains(&SecretFormat::Env) {
        data.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    }
    if formats.contains(&SecretFormat::Files) {
        let lines: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        data.insert(env_file.to_owned(), lines);
    }
    match (delivery, token) {
        (Delivery::Secret, Some(token)) => {
            data.insert(token_file.to_owned(), token.to_owned());
        }
        _ => {
            if let Some(need) = resolved.consumer_requirement() {
                data.insert(
                    CONSUMER_JSON.to_owned(),
                    serde_json::to_string_pretty(&need).unwrap_or_default(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{FederationTarget, Settings, resolve};

    fn resolved(extra: &str) -> Resolved {
        let profile = serde_json::from_value(serde_json::json!({
            "providers": {"entra": {"kind": "azure/oidc", "spec": {
                "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "client_id": "11111111-2222-3333-4444-555555555555", "service_account": "tf"}}},
            "identities": {"azure/prod": {"kind": "azure/subscription", "default": true,
                "via": {"provider": "entra"},
                "principal": {"subscription_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "location": "westeurope"}}}
        }))
        .unwrap();
        let spec = serde_saphyr::from_str(&format!("profile: p\n{extra}")).unwrap();
        resolve(&profile, &spec, "azure", &Settings::default()).unwrap()
    }

    fn rendered(r: &Resolved, token: Option<&str>) -> BTreeMap<String, String> {
        let f = r.federation.as_ref().unwrap();
        let FederationTarget::Azure(t) = &f.target else {
            panic!("an Azure chain")
        };
        render(r, t, &f.delivery, token)
    }

    #[test]
    fn projected_settings_point_at_the_pods_own_token() {
        let r = resolved("secret: {formats: [env, files]}");
        let data = rendered(&r, None);
        assert_eq!(data["ARM_USE_OIDC"], "true");
        assert_eq!(
            data["AZURE_FEDERATED_TOKEN_FILE"],
            "/var/run/secrets/azure/tokens/azure-identity-token"
        );
        assert_eq!(data["ARM_OIDC_TOKEN_FILE_PATH"], data["AZURE_FEDERATED_TOKEN_FILE"]);
        assert_eq!(data["AZURE_AUTHORITY_HOST"], "https://login.microsoftonline.com/");
        assert_eq!(data["ARM_SUBSCRIPTION_ID"], "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        assert_eq!(data["AZURE_LOCATION"], "westeurope");
        assert!(!data.contains_key("ARM_ENVIRONMENT"), "public cloud: azurerm's default");
        assert!(!data.contains_key(FEDERATED_TOKEN_FILE), "no token at rest by default");
        let consumer: serde_json::Value = serde_json::from_str(&data[CONSUMER_JSON]).unwrap();
        assert_eq!(consumer["serviceAccountName"], "tf");
        assert_eq!(consumer["audience"], "api://AzureADTokenExchange");
        assert!(data[AZURE_ENV_FILE].contains("AZURE_CLIENT_ID=11111111-2222-3333-4444-555555555555\n"));
        assert!(data.keys().all(|k| ALL_KEYS.contains(&k.as_str())), "{data:?}");
    }

    #[test]
    fn an_opt_in_token_file_sits_beside_the_settings() {
        let r = resolved("federatedToken: {delivery: Secret}\nsecret: {formats: [env], mountPath: /azure}");
        let data = rendered(&r, Some("eyJ.token"));
        assert_eq!(data[FEDERATED_TOKEN_FILE], "eyJ.token");
        assert_eq!(data["AZURE_FEDERATED_TOKEN_FILE"], "/azure/azure-identity-token");
        assert!(!data.contains_key(CONSUMER_JSON));
    }
}
