//! The local ECR and ECR Public `GetAuthorizationToken` against the real `aws-sdk-ecr` and
//! `aws-sdk-ecrpublic`: signed with a session this endpoint issued, allowed only for roles
//! whose permissions list the action, tokens lasting what the configuration says.

use atmos_auth_testenv::sts::issuer::TestIssuer;
use atmos_auth_testenv::sts::{LocalSts, StsConfig};
use aws_credential_types::Credentials;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_smithy_http_client::tls;
use base64::Engine as _;

const CONFIG: &str = r#"
account: "123456789012"
ecr_token_seconds: 90
roles:
  - arn: arn:aws:iam::123456789012:role/puller
    web_identity: {audiences: [sts.amazonaws.com], subjects: ["system:serviceaccount:ci:*"]}
    permissions: ["ecr:GetAuthorizationToken", "ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"]
  - arn: arn:aws:iam::123456789012:role/private-only
    web_identity: {audiences: [sts.amazonaws.com], subjects: ["system:serviceaccount:ci:*"]}
    permissions: ["ecr:*", "ecr-public:GetAuthorizationToken"]
  - arn: arn:aws:iam::123456789012:role/none
    web_identity: {audiences: [sts.amazonaws.com], subjects: ["system:serviceaccount:ci:*"]}
"#;

fn http() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

/// A session of `role` from the local STS, as the SDK's credentials.
async fn session(sts: &LocalSts, issuer: &TestIssuer, role: &str) -> Credentials {
    let token = issuer
        .token("system:serviceaccount:ci:puller", "sts.amazonaws.com", 600)
        .unwrap();
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-2"))
        .endpoint_url(sts.endpoint())
        .http_client(http())
        .build();
    let out = aws_sdk_sts::Client::from_conf(config)
        .assume_role_with_web_identity()
        .role_arn(role)
        .role_session_name("ecr-test")
        .web_identity_token(token)
        .send()
        .await
        .unwrap();
    let c = out.credentials().unwrap();
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "test",
    )
}

fn ecr(sts: &LocalSts, credentials: Credentials) -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::from_conf(
        aws_sdk_ecr::Config::builder()
            .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
            .region(aws_sdk_ecr::config::Region::new("us-east-2"))
            .endpoint_url(sts.endpoint())
            .credentials_provider(credentials)
            .http_client(http())
            .build(),
    )
}

fn ecr_public(sts: &LocalSts, credentials: Credentials) -> aws_sdk_ecrpublic::Client {
    aws_sdk_ecrpublic::Client::from_conf(
        aws_sdk_ecrpublic::Config::builder()
            .behavior_version(aws_sdk_ecrpublic::config::BehaviorVersion::latest())
            .region(aws_sdk_ecrpublic::config::Region::new("us-east-1"))
            .endpoint_url(sts.endpoint())
            .credentials_provider(credentials)
            .http_client(http())
            .build(),
    )
}

#[tokio::test]
async fn ecr_tokens_need_a_session_of_its_own_and_the_permission() {
    let issuer = TestIssuer::start_es256().unwrap();
    let sts = LocalSts::start(StsConfig::from_yaml_str(CONFIG).unwrap(), issuer.oidc_issuer()).unwrap();

    // Allowed: base64 of AWS:<password>, expiring as configured, known to the token store.
    let puller = session(&sts, &issuer, "arn:aws:iam::123456789012:role/puller").await;
    let out = ecr(&sts, puller.clone())
        .get_authorization_token()
        .send()
        .await
        .unwrap();
    let data = &out.authorization_data()[0];
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap())
        .unwrap();
    let (user, password) = std::str::from_utf8(&decoded).unwrap().split_once(':').unwrap();
    assert_eq!(user, "AWS");
    let left = data.expires_at().unwrap().secs() - jiff::Timestamp::now().as_second();
    assert!((88..=90).contains(&left), "{left}");
    assert_eq!(
        data.proxy_endpoint(),
        Some("https://123456789012.dkr.ecr.us-east-2.amazonaws.com")
    );
    let stored = sts
        .ecr_tokens()
        .valid(password, jiff::Timestamp::now())
        .expect("token stored");
    assert_eq!(stored.caller, "arn:aws:sts::123456789012:assumed-role/puller/ecr-test");
    assert!(sts.ecr_tokens().valid("not-issued", jiff::Timestamp::now()).is_none());
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(91);
    assert!(sts.ecr_tokens().valid(password, later).is_none(), "valid after expiry");

    // ECR Public too (us-east-1), which also needs sts:GetServiceBearerToken.
    let public = ecr_public(&sts, puller).get_authorization_token().send().await.unwrap();
    assert!(public.authorization_data().unwrap().authorization_token().is_some());
    let private_only = session(&sts, &issuer, "arn:aws:iam::123456789012:role/private-only").await;
    assert!(
        ecr(&sts, private_only.clone())
            .get_authorization_token()
            .send()
            .await
            .is_ok(),
        "ecr:* allows it"
    );
    let err = ecr_public(&sts, private_only)
        .get_authorization_token()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert!(
        err.message().unwrap().contains("sts:GetServiceBearerToken"),
        "{:?}",
        err.message()
    );

    // A role without the permission: AccessDeniedException naming the action.
    let none = session(&sts, &issuer, "arn:aws:iam::123456789012:role/none").await;
    let err = ecr(&sts, none).get_authorization_token().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert!(
        err.message()
            .unwrap()
            .contains("not authorized to perform: ecr:GetAuthorizationToken")
    );

    // Keys it never issued, or a session with its secret wrong: refused before any policy.
    let forged = Credentials::new("ASIAFORGEDFORGED0000", "secret", Some("token".into()), None, "test");
    let err = ecr(&sts, forged).get_authorization_token().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidClientTokenId"));
    let counts = sts.calls();
    assert_eq!(counts.ok("ecr:GetAuthorizationToken"), 2, "{counts:?}");
    assert_eq!(
        counts.errors("ecr:GetAuthorizationToken", "AccessDeniedException"),
        1,
        "{counts:?}"
    );
}
