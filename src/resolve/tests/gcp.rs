//! GCP: `gcp/workload-identity-federation` providers, `gcp/service-account` and
//! `gcp/project` identities, the token's audience and what cannot mix.

use pretty_assertions::assert_eq;

use super::*;

const POOL_AUDIENCE: &str =
    "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/k8s-pool/providers/cluster";
const SA: &str = "terraform@acme-prod.iam.gserviceaccount.com";

/// The base profile plus a GCP provider `gcp-wif`, identities `gcp/terraform`
/// (service account) and `gcp/prod` (project, via that service account).
fn gcp_profile(patch: &str) -> AuthProfileSpec {
    let base = format!(
        r#"
providers:
  gcp-wif:
    kind: gcp/workload-identity-federation
    spec:
      project_number: "123456789012"
      workload_identity_pool_id: k8s-pool
      workload_identity_provider_id: cluster
      project_id: acme-shared
      region: us-central1
      service_account: terraform-gcp
      token_source: {{type: file, file_path: /var/run/secrets/token}}
identities:
  gcp/terraform:
    kind: gcp/service-account
    via: {{provider: gcp-wif}}
    principal: {{service_account_email: {SA}, lifetime: 30m}}
  gcp/prod:
    kind: gcp/project
    via: {{identity: gcp/terraform}}
    principal: {{project_id: acme-prod, region: europe-west1, zone: europe-west1-b}}
  gcp/ctx:
    kind: gcp/project
    via: {{provider: gcp-wif}}
    principal: {{project_id: acme-ctx}}
"#
    );
    let mut value = yaml(BASE);
    deep_merge(&mut value, yaml(&base));
    if !patch.trim().is_empty() {
        deep_merge(&mut value, yaml(patch));
    }
    serde_json::from_value(value).unwrap()
}

fn gcp_profile_without(pointers: &[&str], patch: &str) -> AuthProfileSpec {
    let mut value = serde_json::to_value(gcp_profile(patch)).unwrap();
    for pointer in pointers {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        value.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key);
    }
    serde_json::from_value(value).unwrap()
}

fn gcp_identity(name: &str, extra: &str) -> IdentitySpec {
    identity(&format!("profile: k8s\nidentity: {name}\n{extra}"))
}

fn resolved(profile: &AuthProfileSpec, identity: &IdentitySpec) -> Resolved {
    resolve(profile, identity, "gcp", &Settings::default()).unwrap()
}

fn gcp(r: &Resolved) -> &GcpTarget {
    match &r.federation.as_ref().expect("a GCP chain").target {
        FederationTarget::Gcp(t) => t,
        FederationTarget::Azure(_) => panic!("a GCP chain"),
    }
}

#[test]
fn a_service_account_chain_resolves_to_sts_and_one_impersonation() {
    let r = resolved(&gcp_profile(""), &gcp_identity("gcp/terraform", ""));
    assert_eq!(
        *gcp(&r),
        GcpTarget {
            project_number: "123456789012".into(),
            pool_id: "k8s-pool".into(),
            provider_id: "cluster".into(),
            sts_audience: POOL_AUDIENCE.into(),
            service_account_email: Some(SA.into()),
            delegates: vec![],
            scopes: vec![GCP_DEFAULT_SCOPE.into()],
            lifetime_seconds: Some(1800),
            project_id: Some("acme-shared".into()),
            region: Some("us-central1".into()),
            zone: None,
            sts_url: "https://sts.googleapis.com/v1/token".into(),
            iam_credentials_url: "https://iamcredentials.googleapis.com/".into(),
        }
    );
    assert_eq!(
        gcp(&r).impersonation_url().unwrap(),
        format!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{SA}:generateAccessToken")
    );
    assert_eq!(r.chain, ["gcp-wif", "gcp/terraform"]);
    assert!(r.links.is_empty());
    assert_eq!(r.region, "us-central1");
    // Atmos's audience: the pool provider's resource name; the TokenRequest asks for it.
    assert_eq!(r.token.audience, POOL_AUDIENCE);
    assert_eq!(r.token.service_account, "terraform-gcp");
    assert_eq!(r.secret.formats, [SecretFormat::Env]);
    assert_eq!(
        r.consumer_requirement(),
        Some(ConsumerRequirement {
            service_account_name: "terraform-gcp".into(),
            audience: POOL_AUDIENCE.into(),
            mount_path: GCP_DEFAULT_TOKEN_MOUNT_PATH.into(),
            token_path: format!("{GCP_DEFAULT_TOKEN_MOUNT_PATH}/{GCP_TOKEN_FILE}"),
        })
    );
    assert_eq!(
        r.warnings,
        [Warning::new(
            "auth.providers.gcp-wif.spec.token_source",
            "file_path, type kept, not used in a cluster: Atmos reads the OIDC token from there on a runner; the controller requests the ServiceAccount's token itself (TokenRequest, with token_source.audience or the pool provider's audience), and consumer pods read the token file the Secret's configuration names (spec.federatedToken of the Identity)"
        )]
    );
}

#[test]
fn a_project_identity_sets_the_context_over_its_service_account() {
    let r = resolved(&gcp_profile(""), &gcp_identity("gcp/prod", ""));
    let t = gcp(&r);
    assert_eq!(t.service_account_email.as_deref(), Some(SA));
    assert_eq!(t.project_id.as_deref(), Some("acme-prod"));
    assert_eq!(t.region.as_deref(), Some("europe-west1"));
    assert_eq!(t.zone.as_deref(), Some("europe-west1-b"));
    assert_eq!(t.lifetime_seconds, Some(1800));
    assert_eq!(r.chain, ["gcp-wif", "gcp/terraform", "gcp/prod"]);
    assert_eq!(r.region, "europe-west1");
    // Straight from the provider: no impersonation unless the provider names a service account.
    let ctx = resolved(&gcp_profile(""), &gcp_identity("gcp/ctx", ""));
    let t = gcp(&ctx);
    assert_eq!(t.service_account_email, None);
    assert_eq!(t.impersonation_url(), None);
    assert_eq!(
        (t.project_id.as_deref(), t.region.as_deref()),
        (Some("acme-ctx"), Some("us-central1"))
    );
    let with_sa = gcp_profile(&format!(
        "providers: {{gcp-wif: {{spec: {{service_account_email: {SA}}}}}}}"
    ));
    let t = gcp(&resolved(&with_sa, &gcp_identity("gcp/ctx", ""))).clone();
    assert_eq!((t.service_account_email.as_deref(), t.delegates.len()), (Some(SA), 0));
}

#[test]
fn a_delegation_chain_is_refused_as_no_pod_could_follow_it() {
    let prof = gcp_profile(
        "providers: {gcp-wif: {spec: {service_account_email: ci@acme-shared.iam.gserviceaccount.com}}}
identities: {gcp/terraform: {principal: {delegates: [hop@acme-shared.iam.gserviceaccount.com]}}}",
    );
    let all = problems(&prof, &gcp_identity("gcp/terraform", ""));
    let paths: Vec<_> = all.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "auth.identities.gcp/terraform.principal.delegates",
            "auth.providers.gcp-wif.spec.service_account_email"
        ]
    );
    assert!(
        all[0]
            .message
            .contains("google-auth accepts no external_account source"),
        "{}",
        all[0].message
    );
    // The project comes from the identity, else the provider, else the email (as in Atmos).
    let bare = gcp_profile_without(&["/providers/gcp-wif/spec/project_id"], "");
    let t = gcp(&resolved(&bare, &gcp_identity("gcp/terraform", ""))).clone();
    assert_eq!(t.project_id.as_deref(), Some("acme-prod"));
}

#[test]
fn the_legacy_pool_keys_are_read_and_the_new_ones_win() {
    let legacy = gcp_profile_without(
        &[
            "/providers/gcp-wif/spec/workload_identity_pool_id",
            "/providers/gcp-wif/spec/workload_identity_provider_id",
        ],
        "providers: {gcp-wif: {spec: {workload_identity_pool: k8s-pool, workload_identity_provider: cluster}}}",
    );
    let r = resolved(&legacy, &gcp_identity("gcp/terraform", ""));
    assert_eq!(gcp(&r).sts_audience, POOL_AUDIENCE);
    assert_eq!(r.token.audience, POOL_AUDIENCE);
    let both = gcp_profile("providers: {gcp-wif: {spec: {workload_identity_pool: old-pool}}}");
    let r = resolved(&both, &gcp_identity("gcp/terraform", ""));
    assert_eq!(gcp(&r).pool_id, "k8s-pool");
    assert!(
        r.warnings.iter().any(|w| w.path == "auth.providers.gcp-wif.spec.workload_identity_pool"
            && w.message == "old-pool is not used: workload_identity_pool_id (k8s-pool) wins over the legacy workload_identity_pool, as in Atmos"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn the_provider_needs_its_pool_keys_as_in_atmos() {
    let prof = gcp_profile_without(
        &[
            "/providers/gcp-wif/spec/project_number",
            "/providers/gcp-wif/spec/workload_identity_pool_id",
            "/providers/gcp-wif/spec/workload_identity_provider_id",
        ],
        "",
    );
    assert_eq!(
        problems(&prof, &gcp_identity("gcp/terraform", "")),
        [
            p(
                "auth.providers.gcp-wif.spec.project_number",
                Reason::InvalidProfile,
                "project_number is required for kind gcp/workload-identity-federation (as in Atmos): the pool's project number"
            ),
            p(
                "auth.providers.gcp-wif.spec.workload_identity_pool_id",
                Reason::InvalidProfile,
                "workload_identity_pool_id is required for kind gcp/workload-identity-federation (as in Atmos): the workload identity pool"
            ),
            p(
                "auth.providers.gcp-wif.spec.workload_identity_provider_id",
                Reason::InvalidProfile,
                "workload_identity_provider_id is required for kind gcp/workload-identity-federation (as in Atmos): the pool provider that trusts the cluster's issuer"
            ),
        ]
    );
}

#[test]
fn ids_have_googles_shapes() {
    let prof = gcp_profile(
        "providers: {gcp-wif: {spec: {project_number: acme, workload_identity_pool_id: '../x', project_id: 42, \
         scopes: ['cloud-platform'], token_source: {type: github}}}}",
    );
    assert_eq!(
        problems(&prof, &gcp_identity("gcp/terraform", "")),
        [
            p(
                "auth.providers.gcp-wif.spec.project_number",
                Reason::InvalidProfile,
                "\"acme\" is not a project number: the digits Google shows as the project's number (not its id)"
            ),
            p(
                "auth.providers.gcp-wif.spec.workload_identity_pool_id",
                Reason::InvalidProfile,
                "\"../x\" is not a workload identity pool or provider id: 4 to 32 lowercase letters, digits and hyphens"
            ),
            p(
                "auth.providers.gcp-wif.spec.project_id",
                Reason::InvalidProfile,
                "project_id must be a string, not 42; quote it (Atmos ignores a project_id of another type)"
            ),
            p(
                "auth.providers.gcp-wif.spec.scopes",
                Reason::InvalidProfile,
                "\"cloud-platform\" is not an OAuth scope such as https://www.googleapis.com/auth/cloud-platform"
            ),
            p(
                "auth.providers.gcp-wif.spec.token_source.type",
                Reason::InvalidProfile,
                "unknown token_source.type \"github\" (Atmos refuses it too); valid values are: environment, file, url"
            ),
        ]
    );
}

#[test]
fn the_service_account_identity_needs_a_real_email_and_a_lifetime_google_grants() {
    let prof = gcp_profile_without(
        &["/identities/gcp~1terraform/principal/service_account_email"],
        "identities: {gcp/terraform: {principal: {lifetime: 13h, delegates: ['evil@example.com/x']}}}",
    );
    assert_eq!(
        problems(&prof, &gcp_identity("gcp/terraform", "")),
        [
            p(
                "auth.identities.gcp/terraform.principal.service_account_email",
                Reason::InvalidProfile,
                "service_account_email is required for kind gcp/service-account (as in Atmos): the service account to impersonate"
            ),
            p(
                "auth.identities.gcp/terraform.principal.delegates",
                Reason::InvalidProfile,
                "\"evil@example.com/x\" is not a service account email such as terraform@my-project.iam.gserviceaccount.com (Atmos requires the .iam.gserviceaccount.com domain)"
            ),
            p(
                "auth.identities.gcp/terraform.principal.lifetime",
                Reason::InvalidProfile,
                "13h is outside what an impersonated token may last: from 10m to 12h (more than 1h only where an organization policy allows it)"
            ),
        ]
    );
    let prof = gcp_profile("identities: {gcp/terraform: {principal: {service_account_email: terraform@gmail.com}}}");
    assert_eq!(
        only(&prof, &gcp_identity("gcp/terraform", "")).path,
        "auth.identities.gcp/terraform.principal.service_account_email"
    );
}

#[test]
fn the_project_identity_needs_its_project() {
    let prof = gcp_profile_without(
        &["/identities/gcp~1prod/principal/project_id"],
        "identities: {gcp/prod: {principal: {region: 'US Central', zone: us-central1-a}}}",
    );
    assert_eq!(
        problems(&prof, &gcp_identity("gcp/prod", "")),
        [
            p(
                "auth.identities.gcp/prod.principal.project_id",
                Reason::InvalidProfile,
                "project_id is required for kind gcp/project (as in Atmos): the project the consumer works in"
            ),
            p(
                "auth.identities.gcp/prod.principal.region",
                Reason::InvalidProfile,
                "\"US Central\" is not a GCP region or zone such as us-central1 or us-central1-a"
            ),
        ]
    );
}

#[test]
fn the_token_source_audience_is_the_tokens_and_must_be_allowed() {
    let prof = gcp_profile(&format!(
        "providers: {{gcp-wif: {{spec: {{token_source: {{audience: 'https:{}'}}}}}}}}",
        POOL_AUDIENCE
    ));
    let refused = only(&prof, &gcp_identity("gcp/terraform", ""));
    assert_eq!(
        (refused.path.as_str(), refused.reason),
        (
            "auth.providers.gcp-wif.spec.token_source.audience",
            Reason::AudienceNotAllowed
        )
    );
    let mut settings = Settings::default();
    settings
        .allowed_audiences
        .push("https://iam.googleapis.com/projects/*/locations/global/workloadIdentityPools/*/providers/*".into());
    let r = resolve(&prof, &gcp_identity("gcp/terraform", ""), "gcp", &settings).unwrap();
    assert_eq!(r.token.audience, format!("https:{POOL_AUDIENCE}"));
    // The STS exchange still names the pool provider.
    assert_eq!(gcp(&r).sts_audience, POOL_AUDIENCE);
    // A spec.audience is not Atmos's key for this kind: said where it belongs.
    let prof = gcp_profile("providers: {gcp-wif: {spec: {audience: sts.amazonaws.com}}}");
    assert_eq!(
        only(&prof, &gcp_identity("gcp/terraform", "")).message,
        "kind gcp/workload-identity-federation has no spec.audience in Atmos: the token's audience is the pool provider's resource name, or token_source.audience; move it there"
    );
}

#[test]
fn a_bearer_token_in_token_source_is_refused() {
    let prof = gcp_profile("providers: {gcp-wif: {spec: {token_source: {type: url, request_token: abc}}}}");
    let problem = only(&prof, &gcp_identity("gcp/terraform", ""));
    assert_eq!(problem.path, "auth.providers.gcp-wif.spec.token_source.request_token");
    assert!(!problem.message.contains("abc"), "{}", problem.message);
}

#[test]
fn the_urls_are_the_operators() {
    let settings = Settings {
        gcp_sts_url: "https://127.0.0.1:9443/v1/token".into(),
        gcp_iam_credentials_url: "https://127.0.0.1:9443/".into(),
        ..Settings::default()
    };
    let r = resolve(&gcp_profile(""), &gcp_identity("gcp/terraform", ""), "gcp", &settings).unwrap();
    assert_eq!(gcp(&r).sts_url, "https://127.0.0.1:9443/v1/token");
    assert_eq!(
        gcp(&r).impersonation_url().unwrap(),
        format!("https://127.0.0.1:9443/v1/projects/-/serviceAccounts/{SA}:generateAccessToken")
    );
}

#[test]
fn clouds_do_not_mix_within_a_chain() {
    let prof = gcp_profile(
        r#"
identities:
  aws/from-gcp: {kind: aws/assume-role, via: {provider: gcp-wif}, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}
  gcp/from-aws: {kind: gcp/service-account, via: {provider: cluster-oidc}, principal: {service_account_email: a@b-cdef.iam.gserviceaccount.com}}
  gcp/sa-chain: {kind: gcp/service-account, via: {identity: gcp/terraform}, principal: {service_account_email: a@b-cdef.iam.gserviceaccount.com}}
  gcp/on-aws: {kind: gcp/project, via: {identity: acme/admin}, principal: {project_id: acme-prod}}
"#,
    );
    let cases = [
        (
            "aws/from-gcp",
            "via.provider",
            "kind aws/assume-role cannot start from a gcp/workload-identity-federation provider: it yields Google credentials; use kind gcp/service-account or gcp/project here",
        ),
        (
            "gcp/from-aws",
            "via.provider",
            "kind gcp/service-account needs a gcp/workload-identity-federation provider (project_number, workload_identity_pool_id, workload_identity_provider_id); a kubernetes/oidc provider yields another cloud's credentials",
        ),
        (
            "gcp/sa-chain",
            "via.identity",
            "kind gcp/service-account starts from a gcp/workload-identity-federation provider (via.provider); to impersonate through other service accounts, list them in principal.delegates",
        ),
        (
            "gcp/on-aws",
            "via.identity",
            "kind gcp/project starts from a gcp/workload-identity-federation provider or chains from a gcp/service-account identity, not from a aws/assume-role one",
        ),
    ];
    for (name, field, message) in cases {
        let all = problems(&prof, &gcp_identity(name, ""));
        assert!(
            all.iter()
                .any(|x| x.path == format!("auth.identities.{name}.{field}") && x.message == message),
            "{name}: {all:?}"
        );
    }
}

#[test]
fn gcp_and_other_clouds_do_not_share_a_secret() {
    let prof = gcp_profile("");
    let set = resolve_set(
        &prof,
        &identity("profile: k8s\nidentities: [gcp/terraform, acme/admin]"),
        "mixed",
        &Settings::default(),
    )
    .unwrap_err();
    assert!(
        set.iter().any(|x| x
            .message
            .starts_with("\"acme/admin\" is an AWS identity and \"gcp/terraform\" a GCP one")),
        "{set:?}"
    );
}

#[test]
fn delivery_and_formats_work_as_for_azure() {
    let r = resolved(
        &gcp_profile(""),
        &gcp_identity("gcp/terraform", "federatedToken: {delivery: Secret}"),
    );
    assert_eq!(r.federation.as_ref().unwrap().delivery, Delivery::Secret);
    assert_eq!(r.consumer_requirement(), None);
    // The token file kept in the Secret lasts an hour, renewed at half-life.
    assert_eq!(r.token.expiration_seconds, 3600);
    let r = resolved(
        &gcp_profile(""),
        &gcp_identity("gcp/terraform", "federatedToken: {mountPath: /gcp}"),
    );
    assert_eq!(r.consumer_requirement().unwrap().token_path, "/gcp/gcp-identity-token");
    let problem = only(
        &gcp_profile(""),
        &gcp_identity("gcp/terraform", "secret: {formats: [process]}"),
    );
    assert_eq!(
        problem.message,
        "process is AWS's credential_process; a GCP chain's Secret holds settings: use env (keys for envFrom, the default) or files (gcp.env)"
    );
}
