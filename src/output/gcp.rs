//! A GCP chain's Secret (pure): an `external_account` credential configuration that
//! google-auth (and Terraform's google provider) reads through `GOOGLE_APPLICATION_CREDENTIALS`,
//! pointing at the federated token file; the library exchanges the file at Google STS itself,
//! impersonates the service account, and re-reads the file at each refresh, so nothing in
//! these settings expires.
//!
//! - `gcp-credentials.json` (always): `type: external_account`, the pool provider as
//!   `audience`, `subject_token_type` JWT, `token_url` (the operator's STS URL),
//!   `credential_source.file` (the token file, text), and when a service account is
//!   impersonated `service_account_impersonation_url` (the operator's IAM Credentials URL)
//!   with `service_account_impersonation.token_lifetime_seconds` from `principal.lifetime`;
//! - `env` (the default): `GOOGLE_APPLICATION_CREDENTIALS` (that file under the Secret's
//!   mount path) and, as Atmos exports them, `GOOGLE_CLOUD_PROJECT`, `GCLOUD_PROJECT`,
//!   `CLOUDSDK_CORE_PROJECT`, `GOOGLE_CLOUD_REGION`, `CLOUDSDK_COMPUTE_REGION`,
//!   `GOOGLE_CLOUD_ZONE`, `CLOUDSDK_COMPUTE_ZONE` when known;
//! - `files`: the same as `KEY=value` lines in `gcp.env`.
//!
//! `gcp-access-token` (chosen explicitly, and alone: it wins over the credentials file in
//! Terraform's google provider, so the two never share a Secret) holds instead
//! `GOOGLE_OAUTH_ACCESS_TOKEN`, the impersonated access token the controller obtained, with
//! the project keys; no configuration and no `consumer.json` (the pod exchanges nothing).
//! With delivery `Projected` the key `consumer.json` names what the pod must provide; with
//! delivery `Secret` the token itself is the key `gcp-identity-token`.

use std::collections::BTreeMap;

use serde_json::json;

use super::azure::CONSUMER_JSON;
use crate::resolve::{Delivery, GCP_TOKEN_FILE, GcpTarget, Resolved};

/// The data key of the credential configuration.
pub const CREDENTIALS_JSON: &str = "gcp-credentials.json";
/// The data key of the settings file (`files`).
pub const GCP_ENV_FILE: &str = "gcp.env";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The access token's key (`gcp-access-token`).
pub const ACCESS_TOKEN_KEY: &str = "GOOGLE_OAUTH_ACCESS_TOKEN";

/// Every key a GCP Secret may hold (for tools that tell a GCP Secret apart).
pub const ALL_KEYS: [&str; 13] = [
    ACCESS_TOKEN_KEY,
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "GOOGLE_CLOUD_REGION",
    "CLOUDSDK_COMPUTE_REGION",
    "GOOGLE_CLOUD_ZONE",
    "CLOUDSDK_COMPUTE_ZONE",
    CREDENTIALS_JSON,
    GCP_ENV_FILE,
    CONSUMER_JSON,
    GCP_TOKEN_FILE,
];

/// The `external_account` configuration, pretty JSON.
pub fn credential_configuration(resolved: &Resolved, target: &GcpTarget, delivery: &Delivery) -> String {
    let token_file = match delivery {
        Delivery::Projected { mount_path } => format!("{mount_path}/{GCP_TOKEN_FILE}"),
        Delivery::Secret => format!("{}/{GCP_TOKEN_FILE}", resolved.secret.mount_path),
    };
    let mut config = json!({
        "type": "external_account",
        "audience": target.sts_audience,
        "subject_token_type": JWT_TYPE,
        "token_url": target.sts_url,
        "credential_source": {"file": token_file, "format": {"type": "text"}},
    });
    if let Some(url) = target.impersonation_url() {
        config["service_account_impersonation_url"] = json!(url);
        if let Some(seconds) = target.lifetime_seconds {
            config["service_account_impersonation"] = json!({"token_lifetime_seconds": seconds});
        }
    }
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// The environment settings, in a stable order.
pub fn settings(resolved: &Resolved, target: &GcpTarget) -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "GOOGLE_APPLICATION_CREDENTIALS",
        format!("{}/{CREDENTIALS_JSON}", resolved.secret.mount_path),
    )];
    if let Some(project) = &target.project_id {
        for key in ["GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"] {
            out.push((key, project.clone()));
        }
    }
    if let Some(region) = &target.region {
        out.push(("GOOGLE_CLOUD_REGION", region.clone()));
        out.push(("CLOUDSDK_COMPUTE_REGION", region.clone()));
    }
    if let Some(zone) = &target.zone {
        out.push(("GOOGLE_CLOUD_ZONE", zone.clone()));
        out.push(("CLOUDSDK_COMPUTE_ZONE", zone.clone()));
    }
    out
}

/// The Secret's data with format `gcp-access-token`: the access token and the project keys
/// (never `GOOGLE_APPLICATION_CREDENTIALS`, which the token would shadow).
pub fn render_access_token(resolved: &Resolved, target: &GcpTarget, access_token: &str) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = settings(resolved, target)
        .into_iter()
        .filter(|(k, _)| *k != "GOOGLE_APPLICATION_CREDENTIALS")
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    data.insert(ACCESS_TOKEN_KEY.to_owned(), access_token.to_owned());
    data
}

/// The Secret's data; `token` is the ServiceAccount token for delivery `Secret`.
pub fn render(
    resolved: &Resolved,
    target: &GcpTarget,
    delivery: &Delivery,
    token: Option<&str>,
) -> BTreeMap<String, String> {
    let settings = settings(resolved, target);
    let mut data = BTreeMap::from([(
        CREDENTIALS_JSON.to_owned(),
        credential_configuration(resolved, target, delivery),
    )]);
    super::azure::add_settings(
        &mut data,
        resolved,
        &settings,
        (GCP_ENV_FILE, GCP_TOKEN_FILE),
        (delivery, token),
    );
    data
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::resolve::{FederationTarget, Settings, resolve};

    fn resolved(profile_patch: Value, extra: &str) -> Resolved {
        let mut profile = json!({
            "providers": {"wif": {"kind": "gcp/workload-identity-federation", "spec": {
                "project_number": "123456789012", "workload_identity_pool_id": "k8s-pool",
                "workload_identity_provider_id": "cluster", "service_account": "tf", "region": "us-central1"}}},
            "identities": {"gcp/tf": {"kind": "gcp/service-account", "default": true,
                "via": {"provider": "wif"},
                "principal": {"service_account_email": "tf@acme-prod.iam.gserviceaccount.com", "lifetime": "20m"}}}
        });
        crate::resolve::deep_merge(&mut profile, profile_patch);
        let profile = serde_json::from_value(profile).unwrap();
        let spec = serde_saphyr::from_str(&format!("profile: p\n{extra}")).unwrap();
        resolve(&profile, &spec, "gcp", &Settings::default()).unwrap()
    }

    fn rendered(r: &Resolved, token: Option<&str>) -> BTreeMap<String, String> {
        let f = r.federation.as_ref().unwrap();
        let FederationTarget::Gcp(t) = &f.target else {
            panic!("a GCP chain")
        };
        render(r, t, &f.delivery, token)
    }

    #[test]
    fn the_secret_holds_an_external_account_configuration_and_no_token() {
        let r = resolved(json!({}), "");
        let data = rendered(&r, None);
        let config: Value = serde_json::from_str(&data[CREDENTIALS_JSON]).unwrap();
        assert_eq!(
            config,
            json!({
                "type": "external_account",
                "audience": "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/k8s-pool/providers/cluster",
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": "https://sts.googleapis.com/v1/token",
                "credential_source": {"file": "/var/run/secrets/gcp/tokens/gcp-identity-token", "format": {"type": "text"}},
                "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/tf@acme-prod.iam.gserviceaccount.com:generateAccessToken",
                "service_account_impersonation": {"token_lifetime_seconds": 1200},
            })
        );
        assert_eq!(
            data["GOOGLE_APPLICATION_CREDENTIALS"],
            format!("{}/gcp-credentials.json", crate::api::DEFAULT_MOUNT_PATH)
        );
        assert_eq!(data["GOOGLE_CLOUD_PROJECT"], "acme-prod");
        assert_eq!(data["CLOUDSDK_COMPUTE_REGION"], "us-central1");
        assert!(!data.contains_key(GCP_TOKEN_FILE), "no token at rest by default");
        assert!(!data.contains_key("GOOGLE_OAUTH_ACCESS_TOKEN"));
        let consumer: Value = serde_json::from_str(&data[CONSUMER_JSON]).unwrap();
        assert_eq!(consumer["serviceAccountName"], "tf");
        assert!(data.keys().all(|k| ALL_KEYS.contains(&k.as_str())), "{data:?}");
    }

    #[test]
    fn opted_in_the_token_file_is_in_the_secret_and_the_configuration_points_at_it() {
        let r = resolved(
            json!({}),
            "federatedToken: {delivery: Secret}\nsecret: {mountPath: /gcp, formats: [files]}",
        );
        let data = rendered(&r, Some("eyJ.token"));
        assert_eq!(data[GCP_TOKEN_FILE], "eyJ.token");
        let config: Value = serde_json::from_str(&data[CREDENTIALS_JSON]).unwrap();
        assert_eq!(config["credential_source"]["file"], "/gcp/gcp-identity-token");
        assert!(data[GCP_ENV_FILE].starts_with("GOOGLE_APPLICATION_CREDENTIALS=/gcp/gcp-credentials.json\n"));
        assert!(!data.contains_key("GOOGLE_APPLICATION_CREDENTIALS"));
        assert!(!data.contains_key(CONSUMER_JSON));
    }

    #[test]
    fn without_a_service_account_the_federated_token_is_the_credential() {
        let r = resolved(
            json!({"identities": {"gcp/ctx": {"kind": "gcp/project", "via": {"provider": "wif"},
                "principal": {"project_id": "acme-ctx", "zone": "us-central1-a"}}}}),
            "identity: gcp/ctx",
        );
        let data = rendered(&r, None);
        let config: Value = serde_json::from_str(&data[CREDENTIALS_JSON]).unwrap();
        assert!(config.get("service_account_impersonation_url").is_none(), "{config}");
        assert_eq!(data["GOOGLE_CLOUD_ZONE"], "us-central1-a");
        assert_eq!(data["CLOUDSDK_CORE_PROJECT"], "acme-ctx");
    }

    #[test]
    fn the_access_token_format_holds_the_token_and_never_the_credentials_setting() {
        let r = resolved(json!({}), "secret: {formats: [gcp-access-token]}");
        let FederationTarget::Gcp(t) = &r.federation.as_ref().unwrap().target else {
            panic!("a GCP chain")
        };
        let data = render_access_token(&r, t, "ya29.token");
        assert_eq!(data[ACCESS_TOKEN_KEY], "ya29.token");
        assert_eq!(data["GOOGLE_CLOUD_PROJECT"], "acme-prod");
        for absent in [
            "GOOGLE_APPLICATION_CREDENTIALS",
            CREDENTIALS_JSON,
            CONSUMER_JSON,
            GCP_TOKEN_FILE,
        ] {
            assert!(!data.contains_key(absent), "{absent}");
        }
        assert!(data.keys().all(|k| ALL_KEYS.contains(&k.as_str())), "{data:?}");
        assert!(r.consumer_requirement().is_none(), "the pod needs no ServiceAccount");
    }

    #[test]
    fn the_access_token_format_is_refused_beside_another_format_or_a_token_file() {
        let profile: crate::api::AuthProfileSpec = serde_json::from_value(json!({
            "providers": {"wif": {"kind": "gcp/workload-identity-federation", "spec": {
                "project_number": "123456789012", "workload_identity_pool_id": "k8s-pool",
                "workload_identity_provider_id": "cluster", "service_account": "tf"}}},
            "identities": {"gcp/tf": {"kind": "gcp/service-account", "default": true,
                "via": {"provider": "wif"},
                "principal": {"service_account_email": "tf@acme-prod.iam.gserviceaccount.com"}}}
        }))
        .unwrap();
        let refused = |extra: &str| {
            let spec = serde_saphyr::from_str(&format!("profile: p\n{extra}")).unwrap();
            let problems = resolve(&profile, &spec, "gcp", &Settings::default()).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].path, "spec.secret.formats");
            problems[0].message.clone()
        };
        let both = refused("secret: {formats: [env, gcp-access-token]}");
        assert!(
            both.starts_with("gcp-access-token must be the only format: Terraform's google provider"),
            "{both}"
        );
        assert!(
            both.contains("a second Identity with formats [gcp-access-token]"),
            "{both}"
        );
        let file = refused("federatedToken: {delivery: Secret}\nsecret: {formats: [gcp-access-token]}");
        assert!(file.contains("remove spec.federatedToken.delivery: Secret"), "{file}");
    }
}
