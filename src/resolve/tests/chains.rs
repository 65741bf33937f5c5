//! Chains that resolve.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn one_link_from_the_default_identity() {
    let got = resolve(&profile(""), &identity("profile: k8s"), "admin", &Settings::default()).unwrap();
    assert_eq!(
        got,
        Resolved {
            identity: "acme/admin".into(),
            chain: vec!["cluster-oidc".into(), "acme/admin".into()],
            token: TokenSource {
                provider: "cluster-oidc".into(),
                service_account: "terraform".into(),
                audience: "sts.amazonaws.com".into(),
                expiration_seconds: 600,
            },
            links: vec![Link {
                identity: "acme/admin".into(),
                role_arn: ADMIN.into(),
                session_name: None,
                external_id: None,
                duration_seconds: Some(3600),
                region: "us-east-2".into(),
                endpoint: None,
            }],
            region: "us-east-2".into(),
            secret: SecretPlan {
                name: "admin".into(),
                formats: vec![SecretFormat::Process],
                mount_path: DEFAULT_MOUNT_PATH.into(),
            },
            refresh_before_seconds: None,
            warnings: vec![],
            federation: None,
        }
    );
}

#[test]
fn two_links_with_overrides_merged() {
    let got = resolve(
        &profile(""),
        &identity(
            r#"
profile: k8s
identity: acme/network
serviceAccountName: tf-network
refreshBefore: 20m
principal: {session_name: runner-network, duration: 45m}
secret: {name: aws-network, formats: [env, process, env], mountPath: /aws/}
"#,
        ),
        "network",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(got.identity, "acme/network");
    assert_eq!(got.chain, ["cluster-oidc", "acme/admin", "acme/network"]);
    assert_eq!(got.token.service_account, "tf-network");
    assert_eq!(
        got.links,
        vec![
            Link {
                identity: "acme/admin".into(),
                role_arn: ADMIN.into(),
                session_name: None,
                external_id: None,
                duration_seconds: Some(3600),
                region: "us-east-2".into(),
                endpoint: None,
            },
            Link {
                identity: "acme/network".into(),
                role_arn: NETWORK.into(),
                session_name: Some("runner-network".into()),
                external_id: None,
                duration_seconds: Some(2700),
                region: "eu-west-1".into(),
                endpoint: None,
            },
        ]
    );
    assert_eq!(got.region, "eu-west-1");
    assert_eq!(
        got.secret,
        SecretPlan {
            name: "aws-network".into(),
            formats: vec![SecretFormat::Process, SecretFormat::Env],
            mount_path: "/aws".into(),
        }
    );
    assert_eq!(got.refresh_before_seconds, Some(1200));
}

#[test]
fn three_links_inherit_region_and_keep_external_id() {
    let got = resolve(
        &profile(""),
        &identity("{profile: k8s, identity: acme/dns}"),
        "dns",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(got.chain, ["cluster-oidc", "acme/admin", "acme/network", "acme/dns"]);
    let regions: Vec<&str> = got.links.iter().map(|l| l.region.as_str()).collect();
    assert_eq!(regions, ["us-east-2", "eu-west-1", "eu-west-1"]);
    assert_eq!(got.links[2].external_id.as_deref(), Some("tenant-secret-42"));
    assert_eq!(got.links[2].duration_seconds, Some(1800));
    assert_eq!(got.region, "eu-west-1");
}

#[test]
fn region_defaults_to_us_east_1() {
    let prof = raw_profile(
        r#"
providers: {p: {kind: kubernetes/oidc, spec: {service_account: sa}}}
identities:
  a: {default: true, kind: aws/assume-role, via: {provider: p}, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}
"#,
    );
    let got = resolve(&prof, &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    assert_eq!(got.links[0].region, "us-east-1");
    assert_eq!(got.region, "us-east-1");

    // The operator's defaults apply where the profile and the Identity say nothing.
    let settings = Settings {
        default_region: "eu-central-1".to_owned(),
        default_refresh_before_seconds: Some(1200),
        ..Settings::default()
    };
    let got = resolve(&prof, &identity("profile: k8s"), "a", &settings).unwrap();
    assert_eq!(got.region, "eu-central-1");
    assert_eq!(got.refresh_before_seconds, Some(1200));
    let own = resolve(&prof, &identity("{profile: k8s, refreshBefore: 5m}"), "a", &settings).unwrap();
    assert_eq!(own.refresh_before_seconds, Some(300));
}

#[test]
fn session_duration_and_provider_settings() {
    let prof = profile(
        r#"
providers: {cluster-oidc: {spec: {expiration: 1h, endpoint_url: "https://sts.internal"}}}
identities: {acme/admin: {principal: {duration: 2h}}}
"#,
    );
    let settings = Settings {
        allowed_endpoints: vec!["https://sts.internal".into()],
        ..Settings::default()
    };
    let got = resolve(&prof, &identity("profile: k8s"), "a", &settings).unwrap();
    assert_eq!(got.links[0].duration_seconds, Some(7200));
    assert_eq!(got.token.expiration_seconds, 3600);
}

#[test]
fn spec_hash_follows_the_resolved_spec() {
    let a = resolve(&profile(""), &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    let b = resolve(&profile(""), &identity("profile: k8s"), "a", &Settings::default()).unwrap();
    let c = resolve(
        &profile(""),
        &identity("{profile: k8s, refreshBefore: 10m}"),
        "a",
        &Settings::default(),
    )
    .unwrap();
    let d = resolve(
        &profile(""),
        &identity("{profile: k8s, principal: {session_name: other}}"),
        "a",
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(a.spec_hash(), b.spec_hash());
    // refreshBefore only schedules: changing it must not renew every Secret at once.
    assert_eq!(a.spec_hash(), c.spec_hash());
    assert_ne!(a.spec_hash(), d.spec_hash());
    assert_eq!(a.spec_hash().len(), 64);
}
