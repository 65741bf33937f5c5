//! Azure: `azure/oidc` providers and `azure/subscription` identities, the token's delivery,
//! and what cannot share a Secret.

use pretty_assertions::assert_eq;

use super::*;
use crate::api::TokenDelivery;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SUB: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/// The base profile plus an Azure provider `entra` and identity `azure/prod`.
fn azure_profile(patch: &str) -> AuthProfileSpec {
    let base = format!(
        r#"
providers:
  entra:
    kind: azure/oidc
    spec:
      tenant_id: {TENANT}
      client_id: {CLIENT}
      location: westeurope
      service_account: terraform-azure
      token_file_path: /var/run/secrets/azure/tokens/azure-identity-token
identities:
  azure/prod:
    kind: azure/subscription
    via: {{provider: entra}}
    principal: {{subscription_id: {SUB}, resource_group: rg-prod}}
"#
    );
    let mut value = yaml(BASE);
    deep_merge(&mut value, yaml(&base));
    if !patch.trim().is_empty() {
        deep_merge(&mut value, yaml(patch));
    }
    serde_json::from_value(value).unwrap()
}

/// [`azure_profile`] without the keys at `pointers` (JSON pointers): a `null` in a patch
/// is kept by the deep merge, as Atmos keeps it.
fn azure_profile_without(pointers: &[&str], patch: &str) -> AuthProfileSpec {
    let mut value = serde_json::to_value(azure_profile(patch)).unwrap();
    for pointer in pointers {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        value.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key);
    }
    serde_json::from_value(value).unwrap()
}

fn azure_identity(extra: &str) -> IdentitySpec {
    identity(&format!("profile: k8s\nidentity: azure/prod\n{extra}"))
}

fn resolved(profile: &AuthProfileSpec, identity: &IdentitySpec) -> Resolved {
    resolve(profile, identity, "azure", &Settings::default()).unwrap()
}

fn azure(r: &Resolved) -> (&AzureTarget, &Delivery) {
    let f = r.federation.as_ref().expect("an Azure chain");
    match &f.target {
        FederationTarget::Azure(t) => (t, &f.delivery),
        FederationTarget::Gcp(_) => panic!("an Azure chain"),
    }
}

#[test]
fn an_azure_chain_resolves_to_one_entra_exchange() {
    let r = resolved(&azure_profile(""), &azure_identity(""));
    let (target, delivery) = azure(&r);
    assert_eq!(
        *target,
        AzureTarget {
            tenant_id: TENANT.into(),
            client_id: CLIENT.into(),
            subscription_id: SUB.into(),
            resource_group: Some("rg-prod".into()),
            location: Some("westeurope".into()),
            cloud_environment: "public".into(),
            authority_host: "https://login.microsoftonline.com/".into(),
        }
    );
    assert_eq!(
        *delivery,
        Delivery::Projected {
            mount_path: DEFAULT_TOKEN_MOUNT_PATH.into()
        }
    );
    assert_eq!(r.chain, ["entra", "azure/prod"]);
    assert!(r.links.is_empty());
    assert_eq!(r.region, "westeurope");
    // Atmos's default audience for azure/oidc; the verification token's lifetime as for AWS.
    assert_eq!(r.token.audience, "api://AzureADTokenExchange");
    assert_eq!(r.token.service_account, "terraform-azure");
    assert_eq!(r.token.expiration_seconds, 600);
    assert_eq!(
        r.consumer_requirement(),
        Some(ConsumerRequirement {
            service_account_name: "terraform-azure".into(),
            audience: "api://AzureADTokenExchange".into(),
            mount_path: "/var/run/secrets/azure/tokens".into(),
            token_path: "/var/run/secrets/azure/tokens/azure-identity-token".into(),
        })
    );
    assert_eq!(
        r.warnings,
        [Warning::new(
            "auth.providers.entra.spec.token_file_path",
            "kept, not used in a cluster: Atmos reads the federated token from that file on a runner; the controller requests the ServiceAccount's token itself, and consumer pods read the path the Secret's AZURE_FEDERATED_TOKEN_FILE names (spec.federatedToken of the Identity)"
        )]
    );
}

#[test]
fn the_identity_names_the_serviceaccount_and_mount_path_its_pods_need() {
    let r = resolved(
        &azure_profile(""),
        &azure_identity("serviceAccountName: runner\nfederatedToken: {mountPath: /azure/}"),
    );
    let need = r.consumer_requirement().unwrap();
    assert_eq!(need.service_account_name, "runner");
    assert_eq!(need.token_path, "/azure/azure-identity-token");
    // Both shape the Secret's settings: a change renews.
    let default = resolved(&azure_profile(""), &azure_identity(""));
    assert_ne!(r.spec_hash(), default.spec_hash());
}

#[test]
fn the_provider_needs_tenant_and_client_as_in_atmos() {
    let prof = azure_profile_without(
        &["/providers/entra/spec/tenant_id", "/providers/entra/spec/client_id"],
        "",
    );
    assert_eq!(
        problems(&prof, &azure_identity("")),
        [
            p(
                "auth.providers.entra.spec.tenant_id",
                Reason::InvalidProfile,
                "tenant_id is required for kind azure/oidc (as in Atmos): the Entra tenant (Directory ID) of the app registration"
            ),
            p(
                "auth.providers.entra.spec.client_id",
                Reason::InvalidProfile,
                "client_id is required for kind azure/oidc (as in Atmos): the application (client) id of the app registration whose federated credential trusts the ServiceAccount"
            ),
        ]
    );
}

#[test]
fn ids_have_entras_shapes() {
    let prof =
        azure_profile("providers: {entra: {spec: {tenant_id: 'x/../evil', client_id: my-app, subscription_id: 42}}}");
    assert_eq!(
        problems(&prof, &azure_identity("")),
        [
            p(
                "auth.providers.entra.spec.tenant_id",
                Reason::InvalidProfile,
                "\"x/../evil\" is not an Entra tenant id: use the tenant's GUID (Directory ID) or a verified domain such as contoso.onmicrosoft.com"
            ),
            p(
                "auth.providers.entra.spec.client_id",
                Reason::InvalidProfile,
                "\"my-app\" is not an application (client) id: a GUID such as 00000000-0000-0000-0000-000000000000"
            ),
            p(
                "auth.providers.entra.spec.subscription_id",
                Reason::InvalidProfile,
                "subscription_id must be a string, not 42; quote it (Atmos ignores a subscription_id of another type)"
            ),
        ]
    );
    // A verified domain is a tenant id too.
    let prof = azure_profile("providers: {entra: {spec: {tenant_id: contoso.onmicrosoft.com}}}");
    assert_eq!(
        azure(&resolved(&prof, &azure_identity(""))).0.tenant_id,
        "contoso.onmicrosoft.com"
    );
}

#[test]
fn the_subscription_identity_needs_its_subscription() {
    let prof = azure_profile_without(
        &["/identities/azure~1prod/principal/subscription_id"],
        "identities: {azure/prod: {principal: {resource_group: 'bad/rg'}}}",
    );
    assert_eq!(
        problems(&prof, &azure_identity("")),
        [
            p(
                "auth.identities.azure/prod.principal.resource_group",
                Reason::InvalidProfile,
                "\"bad/rg\" is not an Azure resource group name: 1 to 90 letters, digits and _ - . ( ), not ending in ."
            ),
            p(
                "auth.identities.azure/prod.principal.subscription_id",
                Reason::InvalidProfile,
                "subscription_id is required for kind azure/subscription (as in Atmos): the subscription's GUID"
            ),
        ]
    );
    let prof = azure_profile_without(&["/identities/azure~1prod/principal/subscription_id"], "");
    assert_eq!(
        only(&prof, &azure_identity("")),
        p(
            "auth.identities.azure/prod.principal.subscription_id",
            Reason::InvalidProfile,
            "subscription_id is required for kind azure/subscription (as in Atmos): the subscription's GUID"
        )
    );
    // The identity's location wins over the provider's.
    let prof = azure_profile("identities: {azure/prod: {principal: {location: northeurope}}}");
    assert_eq!(
        azure(&resolved(&prof, &azure_identity(""))).0.location.as_deref(),
        Some("northeurope")
    );
}

#[test]
fn the_authority_host_comes_from_the_operator_only() {
    let prof = azure_profile("providers: {entra: {spec: {cloud_environment: usgovernment}}}");
    assert_eq!(
        azure(&resolved(&prof, &azure_identity(""))).0.authority_host,
        "https://login.microsoftonline.us/"
    );
    let prof = azure_profile("providers: {entra: {spec: {cloud_environment: mars}}}");
    assert_eq!(
        only(&prof, &azure_identity("")),
        p(
            "auth.providers.entra.spec.cloud_environment",
            Reason::InvalidProfile,
            "unknown cloud_environment \"mars\" (Atmos refuses it too); valid values are: public, usgovernment, china"
        )
    );
    let public_only = Settings {
        azure_authority_hosts: vec![("public".into(), "https://127.0.0.1:8443/".into())],
        ..Settings::default()
    };
    let prof = azure_profile("providers: {entra: {spec: {cloud_environment: china}}}");
    assert_eq!(
        resolve(&prof, &azure_identity(""), "azure", &public_only).unwrap_err(),
        [p(
            "auth.providers.entra.spec.cloud_environment",
            Reason::EndpointNotAllowed,
            "cloud_environment china is not allowed: the operator set no Entra authority host for it (allowed: public); ask the operator to add --azure-authority-host china=https://HOST/"
        )]
    );
    let r = resolve(&azure_profile(""), &azure_identity(""), "azure", &public_only).unwrap();
    assert_eq!(azure(&r).0.authority_host, "https://127.0.0.1:8443/");
}

#[test]
fn the_audience_is_allow_listed_by_the_operator() {
    let prof = azure_profile("providers: {entra: {spec: {audience: 'api://custom'}}}");
    assert_eq!(
        only(&prof, &azure_identity("")),
        p(
            "auth.providers.entra.spec.audience",
            Reason::AudienceNotAllowed,
            "audience \"api://custom\" is not allowed: the controller requests tokens only for aws-sts (sts.amazonaws.com and sts.<region>.amazonaws.com), api://AzureADTokenExchange, //iam.googleapis.com/projects/*/locations/global/workloadIdentityPools/*/providers/*; use one of them, or ask the operator to allow it"
        )
    );
    let patterns = Settings {
        allowed_audiences: vec!["api://*".into()],
        ..Settings::default()
    };
    let r = resolve(&prof, &azure_identity(""), "azure", &patterns).unwrap();
    assert_eq!(r.token.audience, "api://custom");
}

#[test]
fn aws_and_azure_do_not_mix_within_a_chain() {
    let prof = azure_profile("identities: {acme/admin: {via: {provider: entra}}}");
    assert_eq!(
        only(&prof, &identity("profile: k8s")),
        p(
            "auth.identities.acme/admin.via.provider",
            Reason::InvalidProfile,
            "kind aws/assume-role cannot start from an azure/oidc provider: that provider yields Entra tokens, and AssumeRoleWithWebIdentity needs a token from a kubernetes/oidc provider; use a kubernetes/oidc provider here, or kind azure/subscription for Azure"
        )
    );
    let prof = azure_profile("identities: {azure/prod: {via: {provider: cluster-oidc}}}");
    assert_eq!(
        only(&prof, &azure_identity("")),
        p(
            "auth.identities.azure/prod.via.provider",
            Reason::InvalidProfile,
            "kind azure/subscription needs an azure/oidc provider (spec.tenant_id, spec.client_id): a kubernetes/oidc provider yields AWS credentials"
        )
    );
    let prof = azure_profile_without(
        &["/identities/azure~1prod/via/provider"],
        "identities: {azure/prod: {via: {identity: acme/admin}}}",
    );
    assert_eq!(
        only(&prof, &azure_identity("")),
        p(
            "auth.identities.azure/prod.via.identity",
            Reason::InvalidProfile,
            "kind azure/subscription starts from a provider (via.provider: an azure/oidc provider), as in Atmos; it cannot chain from another identity"
        )
    );
    let chained = "identities: {acme/from-azure: {kind: aws/assume-role, via: {identity: azure/prod}, \
                   principal: {assume_role: 'arn:aws:iam::123456789012:role/x'}}}";
    let prof = azure_profile(chained);
    let message = "kind aws/assume-role cannot chain from an azure/subscription identity: AssumeRole needs AWS credentials; start it from a kubernetes/oidc provider or an aws/assume-role identity";
    assert_eq!(
        only(&prof, &identity("profile: k8s\nidentity: acme/from-azure")),
        p(
            "auth.identities.acme/from-azure.via.identity",
            Reason::InvalidProfile,
            message
        )
    );
    // The profile report finds the same, through its shortcut for chained identities.
    let report = validate_profile(&prof, &Settings::default());
    let found = report.identities.iter().find(|i| i.name == "acme/from-azure").unwrap();
    assert_eq!(
        found.problems,
        [p(
            "auth.identities.acme/from-azure.via.identity",
            Reason::InvalidProfile,
            message
        )]
    );
}

#[test]
fn a_whole_profile_with_both_clouds_validates() {
    let report = validate_profile(&azure_profile(""), &Settings::default());
    assert_eq!(report.all_problems(), []);
    let azure = report.identities.iter().find(|i| i.name == "azure/prod").unwrap();
    assert_eq!(azure.chain, ["entra", "azure/prod"]);
}

#[test]
fn a_token_file_in_the_secret_lasts_an_hour_and_no_less_than_half() {
    let secret = "federatedToken: {delivery: Secret}";
    let r = resolved(&azure_profile(""), &azure_identity(secret));
    assert_eq!(*azure(&r).1, Delivery::Secret);
    assert_eq!(r.token.expiration_seconds, 3600);
    assert_eq!(r.consumer_requirement(), None);
    let prof = azure_profile("providers: {entra: {spec: {expiration: 45m}}}");
    assert_eq!(resolved(&prof, &azure_identity(secret)).token.expiration_seconds, 2700);
    let prof = azure_profile("providers: {entra: {spec: {expiration: 20m}}}");
    assert_eq!(
        only(&prof, &azure_identity(secret)),
        p(
            "auth.providers.entra.spec.expiration",
            Reason::InvalidIdentity,
            "20m is too short for a token file kept in the Secret (spec.federatedToken.delivery: Secret): azure-identity re-reads the file only every 10 minutes; use at least 30m (default 1h), or delivery Projected"
        )
    );
    // The projected mode's own token stays short: it only verifies the federation.
    assert_eq!(resolved(&prof, &azure_identity("")).token.expiration_seconds, 1200);
    assert_eq!(
        only(
            &azure_profile(""),
            &azure_identity("federatedToken: {delivery: Secret, mountPath: /x}")
        ),
        p(
            "spec.federatedToken.mountPath",
            Reason::InvalidIdentity,
            "applies to delivery Projected; with delivery Secret the token file is in the Secret, at spec.secret.mountPath: remove it"
        )
    );
    assert_eq!(
        only(
            &azure_profile(""),
            &azure_identity("federatedToken: {mountPath: 'rel/path'}")
        )
        .path,
        "spec.federatedToken.mountPath"
    );
    assert_eq!(
        serde_json::to_value(TokenDelivery::Secret).unwrap(),
        serde_json::json!("Secret")
    );
}

#[test]
fn an_aws_chain_refuses_the_token_delivery_field() {
    assert_eq!(
        only(
            &profile(""),
            &identity("profile: k8s\nfederatedToken: {delivery: Projected}")
        ),
        p(
            "spec.federatedToken",
            Reason::InvalidIdentity,
            "applies to chains a cloud's SDK exchanges itself (an azure/oidc or gcp/workload-identity-federation provider); an AWS chain's Secret holds role credentials, renewed by the controller: remove it"
        )
    );
}

#[test]
fn the_aws_spec_hash_is_unchanged_by_the_federation_field() {
    // Hashes of every existing Secret must hold across the upgrade: no `federation` key.
    let r = resolve(&profile(""), &identity("profile: k8s"), "net", &Settings::default()).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("federation").is_none(), "{json}");
}

#[test]
fn one_secret_holds_one_cloud() {
    let prof = azure_profile("");
    let mixed = identity("profile: k8s\nidentities: [acme/admin, azure/prod]");
    assert_eq!(
        resolve_set(&prof, &mixed, "mixed", &Settings::default()).unwrap_err(),
        [p(
            "spec.identities[1]",
            Reason::InvalidIdentity,
            "\"azure/prod\" is an Azure identity and \"acme/admin\" an AWS one: one Secret holds one cloud's identities (its readers hold all of them, and a pod would get both clouds' settings); write one Identity per cloud"
        )]
    );
}

#[test]
fn a_projected_secret_serves_one_serviceaccount() {
    let two = format!(
        "providers: {{entra-b: {{kind: azure/oidc, spec: {{tenant_id: {TENANT}, client_id: {CLIENT}, service_account: other}}}}}}\n\
         identities: {{azure/dev: {{kind: azure/subscription, via: {{provider: entra-b}}, principal: {{subscription_id: {SUB}}}}}}}"
    );
    let prof = azure_profile(&two);
    let both = identity("profile: k8s\nidentities: [azure/prod, azure/dev]");
    assert_eq!(
        resolve_set(&prof, &both, "both", &Settings::default()).unwrap_err(),
        [p(
            "spec.identities[1]",
            Reason::InvalidIdentity,
            "\"azure/dev\" needs a token of ServiceAccount other for audience api://AzureADTokenExchange, \"azure/prod\" one of terraform-azure for api://AzureADTokenExchange: a Secret with delivery Projected serves pods running as one ServiceAccount, with one projected token; write one Identity per ServiceAccount (or set spec.serviceAccountName), or use spec.federatedToken.delivery: Secret"
        )]
    );
    // The Identity's ServiceAccount applies to both: accepted.
    let same = identity("profile: k8s\nidentities: [azure/prod, azure/dev]\nserviceAccountName: runner");
    assert_eq!(
        resolve_set(&prof, &same, "both", &Settings::default())
            .unwrap()
            .items
            .len(),
        2
    );
    // With the token in the Secret, the pod's own ServiceAccount does not matter.
    let secret = identity("profile: k8s\nidentities: [azure/prod, azure/dev]\nfederatedToken: {delivery: Secret}");
    assert!(resolve_set(&prof, &secret, "both", &Settings::default()).is_ok());
}

#[test]
fn an_azure_secret_holds_settings_as_env_by_default_never_credential_process() {
    let r = resolved(&azure_profile(""), &azure_identity(""));
    assert_eq!(r.secret.formats, [SecretFormat::Env]);
    let r = resolved(&azure_profile(""), &azure_identity("secret: {formats: [files]}"));
    assert_eq!(r.secret.formats, [SecretFormat::Files]);
    assert_eq!(
        only(&azure_profile(""), &azure_identity("secret: {formats: [process, env]}")),
        p(
            "spec.secret.formats",
            Reason::InvalidIdentity,
            "process is AWS's credential_process; an Azure chain's Secret holds settings: use env (keys for envFrom, the default) or files (azure.env)"
        )
    );
}
