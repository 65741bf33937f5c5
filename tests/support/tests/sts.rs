//! The local STS against its own https OIDC issuer, the real aws-sdk-sts and the real AWS CLI.

use std::sync::OnceLock;
use std::time::Duration;

use atmos_auth_testenv::sts::issuer::{SigningKey, TestIssuer, TokenClaims};
use atmos_auth_testenv::sts::{CallCounts, LocalSts, StsConfig};
use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
use aws_smithy_http_client::tls;

const ACCOUNT: &str = "123456789012";
const ADMIN: &str = "arn:aws:iam::123456789012:role/admin";
const NETWORK: &str = "arn:aws:iam::123456789012:role/network-admin";
const AUDITED: &str = "arn:aws:iam::123456789012:role/audited";
const SHORT: &str = "arn:aws:iam::123456789012:role/short";
const TERRAFORM: &str = "system:serviceaccount:infra:terraform";
const AUD: &str = "sts.amazonaws.com";

const CONFIG: &str = r#"
account: "123456789012"
min_session_seconds: 1              # lowered so tests can make sessions that expire
max_chained_session_seconds: 1800   # lowered so tests can exercise the chaining cap
oidc_client_ids: [sts.amazonaws.com, other.example.com]
roles:
  - arn: arn:aws:iam::123456789012:role/admin
    max_session_seconds: 3600
    web_identity:
      audiences: [sts.amazonaws.com]
      subjects: ["system:serviceaccount:infra:terraform"]
    trusted_roles: []
    external_id: null
  - arn: arn:aws:iam::123456789012:role/network-admin
    max_session_seconds: 7200
    trusted_roles: [arn:aws:iam::123456789012:role/admin]
  - arn: arn:aws:iam::123456789012:role/audited
    trusted_roles: [arn:aws:iam::123456789012:role/admin]
    external_id: ext-123
  - arn: arn:aws:iam::123456789012:role/short
    max_session_seconds: 120
    web_identity:
      audiences: [sts.amazonaws.com]
      subjects: ["system:serviceaccount:infra:*"]
"#;

struct Env {
    issuer: TestIssuer,
    sts: LocalSts,
}

fn env_with(issuer: TestIssuer) -> Env {
    let config = StsConfig::from_yaml_str(CONFIG).expect("config");
    let sts = LocalSts::start(config, issuer.oidc_issuer()).expect("start STS");
    Env { issuer, sts }
}

fn env() -> Env {
    env_with(TestIssuer::start_es256().expect("issuer"))
}

/// One STS shared by several tests, each with its own Tokio runtime.
fn shared() -> &'static Env {
    static SHARED: OnceLock<Env> = OnceLock::new();
    SHARED.get_or_init(env)
}

async fn sdk(endpoint: &str, credentials: Option<Credentials>) -> aws_sdk_sts::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .http_client(http)
        .retry_config(RetryConfig::disabled());
    let loader = match credentials {
        Some(c) => loader.credentials_provider(c),
        None => loader.no_credentials(),
    };
    aws_sdk_sts::Client::new(&loader.load().await)
}

fn creds(c: &aws_sdk_sts::types::Credentials) -> Credentials {
    // No expiry, so the SDK sends even expired credentials and the STS has to judge them.
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "local-sts-test",
    )
}

async fn web_identity(
    env: &Env,
    role: &str,
    token: &str,
    duration: Option<i32>,
) -> Result<
    aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
    aws_sdk_sts::error::SdkError<AssumeRoleWithWebIdentityError>,
> {
    sdk(&env.sts.endpoint(), None)
        .await
        .assume_role_with_web_identity()
        .role_arn(role)
        .role_session_name("test-session")
        .web_identity_token(token)
        .set_duration_seconds(duration)
        .send()
        .await
}

async fn admin_credentials(env: &Env) -> Credentials {
    let token = env.issuer.token(TERRAFORM, AUD, 600).expect("token");
    let out = web_identity(env, ADMIN, &token, None).await.expect("web identity");
    creds(out.credentials().expect("credentials"))
}

fn code<E: ProvideErrorMetadata>(err: &E) -> String {
    err.code().unwrap_or("<no code>").to_owned()
}

fn message<E: ProvideErrorMetadata>(err: &E) -> String {
    err.message().unwrap_or_default().to_owned()
}

async fn post_form(endpoint: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(endpoint)
        .form(form)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_owned())
}

#[tokio::test]
async fn web_identity_credentials_work_with_the_rust_sdk() {
    let env = env();
    let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
    let out = web_identity(&env, ADMIN, &token, Some(900)).await.unwrap();
    let c = out.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));
    assert_eq!(c.access_key_id().len(), 20);
    assert_eq!(c.secret_access_key().len(), 40);
    let lifetime = c.expiration().secs() - jiff::Timestamp::now().as_second();
    assert!((899..=901).contains(&lifetime), "{lifetime}");
    let user = out.assumed_role_user().unwrap();
    assert_eq!(user.arn(), "arn:aws:sts::123456789012:assumed-role/admin/test-session");
    assert!(user.assumed_role_id().starts_with("AROA"));
    assert!(user.assumed_role_id().ends_with(":test-session"));
    assert_eq!(out.subject_from_web_identity_token(), Some(TERRAFORM));
    assert_eq!(out.audience(), Some(AUD));
    let provider = format!(
        "arn:aws:iam::{ACCOUNT}:oidc-provider/{}",
        env.issuer.url().trim_start_matches("https://")
    );
    assert_eq!(out.provider(), Some(provider.as_str()));

    let me = sdk(&env.sts.endpoint(), Some(creds(c)))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(me.account(), Some(ACCOUNT));
    assert_eq!(me.arn(), Some(user.arn()));
    assert_eq!(me.user_id(), Some(user.assumed_role_id()));

    let calls = env.sts.calls();
    assert_eq!(calls.ok("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(calls.ok("GetCallerIdentity"), 1);
    assert_eq!(calls.all(), 2);
}

#[tokio::test]
async fn web_identity_credentials_work_with_the_aws_cli() {
    let env = env();
    let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
    let endpoint = env.sts.endpoint();
    // The CLI's own unsigned AssumeRoleWithWebIdentity, parsed by botocore.
    let assumed = aws_cli(
        &[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            ADMIN,
            "--role-session-name",
            "cli",
            "--web-identity-token",
            &token,
        ],
        &endpoint,
        None,
    )
    .await
    .unwrap();
    let c = &assumed["Credentials"];
    let key = c["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = c["SecretAccessKey"].as_str().unwrap().to_owned();
    let session = c["SessionToken"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ASIA"));
    assert_eq!(
        assumed["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::123456789012:assumed-role/admin/cli"
    );
    assert_eq!(assumed["SubjectFromWebIdentityToken"], TERRAFORM);

    // Signed by botocore.
    let me = aws_cli(
        &["sts", "get-caller-identity"],
        &endpoint,
        Some((&key, &secret, &session)),
    )
    .await
    .unwrap();
    assert_eq!(me["Account"], ACCOUNT);
    assert_eq!(me["Arn"], "arn:aws:sts::123456789012:assumed-role/admin/cli");

    // A chained AssumeRole signed by botocore, with an external id.
    let chained = aws_cli(
        &[
            "sts",
            "assume-role",
            "--role-arn",
            AUDITED,
            "--role-session-name",
            "cli-chained",
            "--external-id",
            "ext-123",
            "--duration-seconds",
            "900",
        ],
        &endpoint,
        Some((&key, &secret, &session)),
    )
    .await
    .unwrap();
    assert_eq!(
        chained["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::123456789012:assumed-role/audited/cli-chained"
    );

    // A wrong secret: botocore parses the error XML.
    let forged = aws_cli(
        &["sts", "get-caller-identity"],
        &endpoint,
        Some((&key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &session)),
    )
    .await
    .unwrap_err();
    assert!(forged.contains("SignatureDoesNotMatch"), "{forged}");

    let calls = env.sts.calls();
    assert_eq!(calls.ok("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(calls.ok("AssumeRole"), 1);
    assert_eq!(calls.ok("GetCallerIdentity"), 1);
    assert_eq!(calls.errors("GetCallerIdentity", "SignatureDoesNotMatch"), 1);
}

/// Runs the real AWS CLI against `endpoint`, isolated from the host's AWS configuration;
/// returns its JSON output, or its stderr.
async fn aws_cli(args: &[&str], endpoint: &str, keys: Option<(&str, &str, &str)>) -> Result<serde_json::Value, String> {
    let mut cmd = tokio::process::Command::new("aws");
    cmd.args(args)
        .args(["--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("NO_PROXY", "127.0.0.1,localhost");
    if let Some((key, secret, token)) = keys {
        cmd.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token);
    }
    let out = cmd.output().await.expect("run the aws CLI");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("CLI JSON output"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn bad_web_identity_tokens_are_rejected_with_aws_codes() {
    let env = env();
    let url = env.issuer.url().to_owned();

    // Audience no OIDC client id names: the provider refuses the token.
    let token = env.issuer.token(TERRAFORM, "not-sts", 600).unwrap();
    let err = web_identity(&env, ADMIN, &token, None).await.unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");
    assert_eq!(message(&err), "Incorrect token audience");
    assert!(matches!(
        err.into_service_error(),
        AssumeRoleWithWebIdentityError::InvalidIdentityTokenException(_)
    ));

    // A client id the provider knows but the role's trust policy does not.
    let token = env.issuer.token(TERRAFORM, "other.example.com", 600).unwrap();
    let err = web_identity(&env, ADMIN, &token, None).await.unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    assert_eq!(message(&err), "Not authorized to perform sts:AssumeRoleWithWebIdentity");

    // Expired.
    let mut claims = TokenClaims::new(&url, TERRAFORM, &[AUD], 600);
    claims.exp = claims.iat - 10;
    let err = web_identity(&env, ADMIN, &env.issuer.sign(&claims).unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ExpiredTokenException");
    assert!(message(&err).starts_with("Token expired: current date/time"));
    assert!(matches!(
        err.into_service_error(),
        AssumeRoleWithWebIdentityError::ExpiredTokenException(_)
    ));

    // Not yet valid.
    let mut claims = TokenClaims::new(&url, TERRAFORM, &[AUD], 600);
    claims.nbf = Some(claims.iat + 300);
    let err = web_identity(&env, ADMIN, &env.issuer.sign(&claims).unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");

    // Another issuer.
    let claims = TokenClaims::new("https://elsewhere.example.com", TERRAFORM, &[AUD], 600);
    let err = web_identity(&env, ADMIN, &env.issuer.sign(&claims).unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");
    assert!(message(&err).contains("No OpenIDConnect provider found"));

    // Signed by another key that claims the published kid.
    let impostor = SigningKey::es256("es256-1").unwrap();
    let claims = TokenClaims::new(&url, TERRAFORM, &[AUD], 600);
    let err = web_identity(&env, ADMIN, &impostor.sign(&claims).unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");

    // Signed by an unpublished key with its own kid: refetched, still unknown.
    let stranger = SigningKey::es256("stranger").unwrap();
    let err = web_identity(&env, ADMIN, &stranger.sign(&claims).unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");

    // Not a JWT at all (what moto would accept).
    let err = web_identity(&env, ADMIN, "not-a-jwt-at-all", None).await.unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");

    // A subject outside the trust policy.
    let token = env
        .issuer
        .token("system:serviceaccount:infra:intruder", AUD, 600)
        .unwrap();
    let err = web_identity(&env, ADMIN, &token, None).await.unwrap_err();
    assert_eq!(code(&err), "AccessDenied");

    // An unknown role.
    let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
    let err = web_identity(&env, "arn:aws:iam::123456789012:role/nope", &token, None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");

    let calls = env.sts.calls();
    let action = "AssumeRoleWithWebIdentity";
    assert_eq!(calls.total(action), 10);
    assert_eq!(calls.ok(action), 0);
    assert_eq!(calls.errors(action, "InvalidIdentityToken"), 6);
    assert_eq!(calls.errors(action, "AccessDenied"), 3);
    assert_eq!(calls.errors(action, "ExpiredTokenException"), 1);
}

#[tokio::test]
async fn session_rules_follow_aws() {
    let env = env();
    let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();

    // DurationSeconds above the role's MaxSessionDuration.
    let err = web_identity(&env, ADMIN, &token, Some(3601)).await.unwrap_err();
    assert_eq!(code(&err), "ValidationError");
    assert_eq!(
        message(&err),
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );
    // Below the minimum, above AWS's maximum.
    let err = web_identity(&env, ADMIN, &token, Some(0)).await.unwrap_err();
    assert_eq!(code(&err), "ValidationError");
    let err = web_identity(&env, ADMIN, &token, Some(43_201)).await.unwrap_err();
    assert_eq!(code(&err), "ValidationError");
    // Without DurationSeconds: one hour, capped by the role (120 s here).
    let short = env
        .issuer
        .token("system:serviceaccount:infra:runner", AUD, 600)
        .unwrap();
    let out = web_identity(&env, SHORT, &short, None).await.unwrap();
    let lifetime = out.credentials().unwrap().expiration().secs() - jiff::Timestamp::now().as_second();
    assert!((119..=121).contains(&lifetime), "{lifetime}");

    // RoleSessionName.
    for bad in ["x", "has space", &"a".repeat(65)] {
        let err = sdk(&env.sts.endpoint(), None)
            .await
            .assume_role_with_web_identity()
            .role_arn(ADMIN)
            .role_session_name(bad)
            .web_identity_token(&token)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "ValidationError", "{bad}");
    }

    // ExternalId is not a parameter of AssumeRoleWithWebIdentity.
    let (status, body) = post_form(
        &env.sts.endpoint(),
        &[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", ADMIN),
            ("RoleSessionName", "s"),
            ("WebIdentityToken", &token),
            ("ExternalId", "ext-123"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(xml_text(&body, "Code").as_deref(), Some("ValidationError"));

    // Chained AssumeRole beyond the chaining cap (1800 s here), though the role allows 7200.
    let admin = admin_credentials(&env).await;
    let client = sdk(&env.sts.endpoint(), Some(admin)).await;
    let err = client
        .assume_role()
        .role_arn(NETWORK)
        .role_session_name("net")
        .duration_seconds(3600)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationError");
    assert!(
        message(&err).contains("session limit for roles assumed by role chaining"),
        "{}",
        message(&err)
    );
    // Without DurationSeconds a chained session gets the cap.
    let out = client
        .assume_role()
        .role_arn(NETWORK)
        .role_session_name("net")
        .send()
        .await
        .unwrap();
    let lifetime = out.credentials().unwrap().expiration().secs() - jiff::Timestamp::now().as_second();
    assert!((1799..=1801).contains(&lifetime), "{lifetime}");
    assert_eq!(
        out.assumed_role_user().unwrap().arn(),
        "arn:aws:sts::123456789012:assumed-role/network-admin/net"
    );

    // External id: required, must match.
    for external_id in [None, Some("wrong-id")] {
        let err = client
            .assume_role()
            .role_arn(AUDITED)
            .role_session_name("audit")
            .set_external_id(external_id.map(String::from))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "AccessDenied");
        assert!(message(&err).contains("is not authorized to perform: sts:AssumeRole"));
    }
    let out = client
        .assume_role()
        .role_arn(AUDITED)
        .role_session_name("audit")
        .external_id("ext-123")
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    assert!(out.session_token_utilization().is_some());
    assert!(out.session_token_size().is_some());

    // A role whose trust policy does not name the caller's role.
    let network = creds(
        client
            .assume_role()
            .role_arn(NETWORK)
            .role_session_name("net2")
            .duration_seconds(900)
            .send()
            .await
            .unwrap()
            .credentials()
            .unwrap(),
    );
    let err = sdk(&env.sts.endpoint(), Some(network))
        .await
        .assume_role()
        .role_arn(AUDITED)
        .role_session_name("x2")
        .external_id("ext-123")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
}

#[tokio::test]
async fn signed_calls_are_verified() {
    let env = env();
    let endpoint = env.sts.endpoint();
    let good = admin_credentials(&env).await;

    // A forged signature: the right key id and token, the wrong secret.
    let forged = Credentials::new(
        good.access_key_id(),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        good.session_token().map(String::from),
        None,
        "forged",
    );
    let err = sdk(&endpoint, Some(forged))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "SignatureDoesNotMatch");

    // An access key the STS never issued.
    let unknown = Credentials::new(
        "ASIAAAAAAAAAAAAAAAAA",
        good.secret_access_key(),
        good.session_token().map(String::from),
        None,
        "unknown",
    );
    let err = sdk(&endpoint, Some(unknown))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidClientTokenId");

    // The right key and secret without the session token, or with another one.
    for token in [None, Some("not-the-token".to_owned())] {
        let wrong_token = Credentials::new(
            good.access_key_id(),
            good.secret_access_key(),
            token,
            None,
            "wrong-token",
        );
        let err = sdk(&endpoint, Some(wrong_token))
            .await
            .assume_role()
            .role_arn(NETWORK)
            .role_session_name("x")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidClientTokenId");
    }

    // Unsigned.
    let (status, body) = post_form(&endpoint, &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]).await;
    assert_eq!(status, 403);
    assert_eq!(xml_text(&body, "Code").as_deref(), Some("MissingAuthenticationToken"));
    assert_eq!(xml_text(&body, "Type").as_deref(), Some("Sender"));
    assert!(xml_text(&body, "RequestId").is_some());

    // Expired session credentials.
    let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
    let out = web_identity(&env, ADMIN, &token, Some(1)).await.unwrap();
    let short = creds(out.credentials().unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = sdk(&endpoint, Some(short))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ExpiredToken");

    // The good credentials still work.
    sdk(&endpoint, Some(good))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();

    let calls = env.sts.calls();
    assert_eq!(calls.errors("GetCallerIdentity", "SignatureDoesNotMatch"), 1);
    assert_eq!(calls.errors("GetCallerIdentity", "InvalidClientTokenId"), 1);
    assert_eq!(calls.errors("AssumeRole", "InvalidClientTokenId"), 2);
    assert_eq!(calls.errors("GetCallerIdentity", "MissingAuthenticationToken"), 1);
    assert_eq!(calls.errors("GetCallerIdentity", "ExpiredToken"), 1);
    assert_eq!(calls.ok("GetCallerIdentity"), 1);
    assert_eq!(calls.ok("AssumeRoleWithWebIdentity"), 2);
}

#[tokio::test]
async fn responses_have_the_aws_xml_shape_and_get_works() {
    let env = env();
    let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
    let query = form_query(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", ADMIN),
        ("RoleSessionName", "via-get"),
        ("WebIdentityToken", &token),
    ]);
    let response = reqwest::get(format!("{}/?{query}", env.sts.endpoint())).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/xml");
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body = response.text().await.unwrap();
    assert!(body.starts_with(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA"
    ));
    for tag in [
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
        "SubjectFromWebIdentityToken",
        "AssumedRoleId",
        "Arn",
        "Audience",
        "Provider",
        "RequestId",
    ] {
        assert!(xml_text(&body, tag).is_some(), "{tag} in {body}");
    }
    assert!(body.contains("</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>"));
    let expiration = xml_text(&body, "Expiration").unwrap();
    assert!(expiration.ends_with('Z') && expiration.len() == 20, "{expiration}");

    let (status, body) = post_form(
        &env.sts.endpoint(),
        &[("Action", "DecodeAuthorizationMessage"), ("Version", "2011-06-15")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(xml_text(&body, "Code").as_deref(), Some("InvalidAction"));
}

fn form_query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

#[tokio::test]
async fn jwks_is_cached_and_refetched_for_new_keys_and_rs256_verifies() {
    let env = env_with(
        TestIssuer::start(vec![
            SigningKey::es256("es-1").unwrap(),
            SigningKey::rs256("rs-1", 2048).unwrap(),
        ])
        .unwrap(),
    );
    let claims = TokenClaims::new(env.issuer.url(), TERRAFORM, &[AUD], 600);
    for _ in 0..3 {
        web_identity(&env, ADMIN, &env.issuer.sign(&claims).unwrap(), None)
            .await
            .unwrap();
    }
    assert_eq!(env.issuer.fetches(), (1, 1), "keys are cached");

    let rsa = env.issuer.key("rs-1").unwrap();
    web_identity(&env, ADMIN, &rsa.sign(&claims).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(env.issuer.fetches(), (1, 1));

    // Rotation: a key published after the STS cached the JWKS.
    let rotated = SigningKey::es256("es-2").unwrap();
    env.issuer.publish(rotated.clone());
    web_identity(&env, ADMIN, &rotated.sign(&claims).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(env.issuer.fetches(), (2, 2), "unknown kid refetches");
    assert_eq!(env.sts.jwks_fetches(), 2);
    assert_eq!(env.sts.calls().ok("AssumeRoleWithWebIdentity"), 5);
}

#[tokio::test]
async fn calls_are_counted_over_http_and_resettable() {
    let env = env();
    let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
    web_identity(&env, ADMIN, &token, None).await.unwrap();
    web_identity(&env, ADMIN, &token, Some(99_999)).await.unwrap_err();
    let http = reqwest::Client::new();
    let url = format!("{}/_local/calls", env.sts.endpoint());
    let counts: CallCounts = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(counts, env.sts.calls());
    let json: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        json,
        serde_json::json!({"actions": {"AssumeRoleWithWebIdentity": {
            "total": 2, "ok": 1, "errors": {"ValidationError": 1}
        }}})
    );
    let reset = http.post(format!("{url}/reset")).send().await.unwrap();
    assert_eq!(reset.status().as_u16(), 204);
    assert_eq!(env.sts.calls().all(), 0);
    web_identity(&env, ADMIN, &token, None).await.unwrap();
    assert_eq!(env.sts.calls().all(), 1);
    env.sts.reset_calls();
    assert_eq!(env.sts.calls(), CallCounts::default());
}

// The same STS serves tests that each run their own Tokio runtime.
#[tokio::test]
async fn shared_sts_first_runtime() {
    let env = shared();
    let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
    web_identity(env, ADMIN, &token, None).await.unwrap();
}

#[tokio::test]
async fn shared_sts_second_runtime() {
    let env = shared();
    let creds = admin_credentials(env).await;
    sdk(&env.sts.endpoint(), Some(creds))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
}

#[test]
fn shared_sts_from_a_plain_thread() {
    let env = shared();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let token = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
        web_identity(env, ADMIN, &token, None).await.unwrap();
    });
    drop(rt);
}

#[tokio::test]
async fn an_unreachable_issuer_is_an_idp_communication_error() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let issuer = TestIssuer::start_es256().unwrap();
    let config = StsConfig::from_yaml_str(CONFIG).unwrap();
    let sts = LocalSts::start(
        config,
        atmos_auth_testenv::sts::OidcIssuer {
            url: url.clone(),
            ca_pem: issuer.ca_pem().to_owned(),
        },
    )
    .unwrap();
    let claims = TokenClaims::new(&url, TERRAFORM, &[AUD], 600);
    let token = issuer.sign(&claims).unwrap();
    let env = Env { issuer, sts };
    let err = web_identity(&env, ADMIN, &token, None).await.unwrap_err();
    assert_eq!(code(&err), "IDPCommunicationError");
    assert!(matches!(
        err.into_service_error(),
        AssumeRoleWithWebIdentityError::IdpCommunicationErrorException(_)
    ));
}

#[tokio::test]
async fn the_local_sts_binary_serves_the_dev_run_mode() {
    use tokio::io::AsyncBufReadExt as _;

    let issuer = TestIssuer::start_es256().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("roles.yaml");
    let ca = dir.path().join("issuer-ca.pem");
    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(&ca, issuer.ca_pem()).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-sts"))
        .arg("--config")
        .arg(&config)
        .args(["--issuer", issuer.url(), "--port=0", "--issuer-ca"])
        .arg(&ca)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let endpoint = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let token = issuer.token(TERRAFORM, AUD, 600).unwrap();
    let out = sdk(&endpoint, None)
        .await
        .assume_role_with_web_identity()
        .role_arn(ADMIN)
        .role_session_name("dev")
        .web_identity_token(token)
        .send()
        .await
        .unwrap();
    let me = sdk(&endpoint, Some(creds(out.credentials().unwrap())))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(me.arn(), Some("arn:aws:sts::123456789012:assumed-role/admin/dev"));
    let calls: CallCounts = reqwest::get(format!("{endpoint}/_local/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls.all(), 2);
    child.kill().await.unwrap();
}

#[test]
fn the_dev_run_mode_trust_policies_parse() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/local/roles.yaml");
    let config = StsConfig::from_yaml_file(path).unwrap();
    assert!(!config.roles.is_empty());
}

#[tokio::test]
async fn tokens_without_a_subject_are_invalid() {
    #[derive(serde::Serialize)]
    struct NoSub<'a> {
        iss: &'a str,
        aud: &'a str,
        exp: i64,
    }
    let env = env();
    let key = env.issuer.key("es256-1").unwrap();
    let token = key
        .sign(&NoSub {
            iss: env.issuer.url(),
            aud: AUD,
            exp: jiff::Timestamp::now().as_second() + 600,
        })
        .unwrap();
    let err = web_identity(&env, ADMIN, &token, None).await.unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");
}

/// Tokens of the real kube-apiserver (TokenRequest API) through its real discovery and JWKS.
#[tokio::test]
async fn real_kube_apiserver_tokens_are_verified() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    use kube::Api;
    use kube::api::{ObjectMeta, PostParams};

    let cp = atmos_auth_testenv::controlplane::shared();
    let client = cp.client().await.unwrap();
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some("local-sts-test".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let service_accounts = Api::<ServiceAccount>::namespaced(client, "local-sts-test");
    let service_account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("terraform".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    service_accounts
        .create(&PostParams::default(), &service_account)
        .await
        .unwrap();
    let token_for = |audience: &str| {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![audience.into()],
                expiration_seconds: Some(600),
                ..Default::default()
            },
            ..Default::default()
        };
        let service_accounts = service_accounts.clone();
        async move {
            service_accounts
                .create_token_request("terraform", &PostParams::default(), &request)
                .await
                .unwrap()
                .status
                .unwrap()
                .token
        }
    };

    let config = StsConfig::from_yaml_str(&CONFIG.replace(
        "system:serviceaccount:infra:terraform",
        "system:serviceaccount:local-sts-test:terraform",
    ))
    .unwrap();
    let sts = LocalSts::start(
        config,
        atmos_auth_testenv::sts::OidcIssuer {
            url: cp.issuer().to_owned(),
            ca_pem: cp.ca_pem().to_owned(),
        },
    )
    .unwrap();
    let env = Env {
        issuer: TestIssuer::start_es256().unwrap(),
        sts,
    };

    let out = web_identity(&env, ADMIN, &token_for(AUD).await, Some(900))
        .await
        .unwrap();
    assert_eq!(
        out.subject_from_web_identity_token(),
        Some("system:serviceaccount:local-sts-test:terraform")
    );
    sdk(&env.sts.endpoint(), Some(creds(out.credentials().unwrap())))
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();

    let err = web_identity(&env, ADMIN, &token_for("not-sts").await, None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");
    // A token of the test issuer is not one of the apiserver's.
    let foreign = env.issuer.token(TERRAFORM, AUD, 600).unwrap();
    let err = web_identity(&env, ADMIN, &foreign, None).await.unwrap_err();
    assert_eq!(code(&err), "InvalidIdentityToken");
}
