//! The local Google STS and IAM Credentials endpoint against its own https OIDC issuer: the
//! token exchange and impersonation, each refusal in Google's shapes, and the `jti` log.

use atmos_auth_testenv::gcp::{GcpConfig, LocalGcp, ServiceAccountConfig, federated_principal, pool_provider_name};
use atmos_auth_testenv::sts::issuer::{SigningKey, TestIssuer, TokenClaims};
use jiff::Timestamp;
use serde_json::{Value, json};

const NUMBER: &str = "123456789012";
const POOL: &str = "k8s-pool";
const PROVIDER: &str = "cluster";
const SUBJECT: &str = "system:serviceaccount:infra:terraform";
const SA: &str = "terraform@acme-prod.iam.gserviceaccount.com";
const HOP: &str = "hop@acme-prod.iam.gserviceaccount.com";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

struct Env {
    issuer: TestIssuer,
    gcp: LocalGcp,
    http: reqwest::Client,
}

fn audience() -> String {
    pool_provider_name(NUMBER, POOL, PROVIDER)
}

fn env() -> Env {
    let issuer = TestIssuer::start_es256().expect("issuer");
    let mut config = GcpConfig::single(NUMBER, POOL, PROVIDER, issuer.url(), SA, SUBJECT);
    config.service_accounts.push(ServiceAccountConfig {
        email: HOP.into(),
        token_creators: vec![federated_principal(NUMBER, POOL, SUBJECT)],
    });
    let gcp = LocalGcp::start(config, issuer.oidc_issuer()).expect("start GCP");
    let ca = reqwest::Certificate::from_pem(gcp.ca_pem().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .expect("client");
    Env { issuer, gcp, http }
}

impl Env {
    async fn sts(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .http
            .post(self.gcp.sts_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("STS request");
        (resp.status().as_u16(), resp.json().await.expect("json"))
    }

    async fn exchange(&self, subject_token: &str) -> (u16, Value) {
        let audience = audience();
        self.sts(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("audience", &audience),
            ("scope", SCOPE),
            ("requested_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("subject_token_type", JWT),
            ("subject_token", subject_token),
        ])
        .await
    }

    /// A federated token for a trusted ServiceAccount token.
    async fn federated(&self) -> String {
        let (status, body) = self
            .exchange(&self.issuer.token(SUBJECT, &audience(), 600).unwrap())
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn impersonate(&self, bearer: Option<&str>, email: &str, body: Value) -> (u16, Value) {
        let url = format!(
            "{}v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            self.gcp.iam_credentials_url()
        );
        let mut req = self.http.post(url).json(&body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("IAM request");
        (resp.status().as_u16(), resp.json().await.expect("json"))
    }
}

/// STS's OAuth error shape: `error` and `error_description`, nothing else.
fn sts_error(body: &Value) -> (&str, &str) {
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    (
        body["error"].as_str().unwrap(),
        body["error_description"].as_str().unwrap(),
    )
}

/// A Google API error: `{"error": {"code", "message", "status"}}`.
fn api_error(body: &Value) -> (u64, &str) {
    assert!(body["error"]["message"].is_string(), "{body}");
    (
        body["error"]["code"].as_u64().unwrap(),
        body["error"]["status"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn a_trusted_token_is_exchanged_then_impersonates_and_its_jti_is_logged() {
    let env = env();
    let claims = TokenClaims::new(env.issuer.url(), SUBJECT, &[&audience()], 600);
    let jti = claims.jti.clone();
    let (status, body) = env.exchange(&env.issuer.sign(&claims).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!((1..=60).contains(&body["expires_in"].as_i64().unwrap()), "{body}");
    let federated = body["access_token"].as_str().unwrap();
    let info = env.gcp.token_info(federated).unwrap();
    assert_eq!(info.member, federated_principal(NUMBER, POOL, SUBJECT));

    let (status, body) = env
        .impersonate(Some(federated), SA, json!({"scope": [SCOPE], "lifetime": "3600s"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["accessToken"].as_str().unwrap();
    let expires: Timestamp = body["expireTime"].as_str().unwrap().parse().unwrap();
    let left = expires.as_second() - Timestamp::now().as_second();
    assert!((1..=60).contains(&left), "capped at 60 s: {left}");
    assert_eq!(
        env.gcp.token_info(token).unwrap().member,
        format!("serviceAccount:{SA}")
    );

    let logged = env.gcp.exchanges();
    assert_eq!(logged.len(), 1);
    assert_eq!((logged[0].jti.clone(), logged[0].error.clone()), (jti, None));
    assert_eq!(logged[0].subject.as_deref(), Some(SUBJECT));
    let calls = env.gcp.impersonations();
    assert_eq!(
        calls[0].caller.as_deref(),
        Some(federated_principal(NUMBER, POOL, SUBJECT).as_str())
    );
    // The https: form of the provider's name is a default allowed audience too.
    let https = format!("https:{}", audience());
    let (status, body) = env.exchange(&env.issuer.token(SUBJECT, &https, 600).unwrap()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn sts_refuses_what_the_pool_provider_does_not_trust() {
    let env = env();
    // Another issuer (its own keys): not the provider's issuer.
    let stranger = TestIssuer::start_es256().unwrap();
    let (status, body) = env.exchange(&stranger.token(SUBJECT, &audience(), 600).unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(sts_error(&body).0, "invalid_grant");
    assert!(sts_error(&body).1.starts_with("The issuer in ID Token"), "{body}");

    // The trusted issuer's name with a key it does not publish.
    let forged = SigningKey::es256("es256-1").unwrap();
    let claims = TokenClaims::new(env.issuer.url(), SUBJECT, &[&audience()], 600);
    let (_, body) = env.exchange(&forged.sign(&claims).unwrap()).await;
    assert_eq!(sts_error(&body), ("invalid_grant", "Invalid ID Token signature."));

    // Another audience (an AWS token of the same ServiceAccount).
    let (_, body) = env
        .exchange(&env.issuer.token(SUBJECT, "sts.amazonaws.com", 600).unwrap())
        .await;
    assert_eq!(
        sts_error(&body),
        (
            "invalid_grant",
            "The audience in ID Token [sts.amazonaws.com] does not match the expected audience."
        )
    );

    // Expired.
    let mut claims = TokenClaims::new(env.issuer.url(), SUBJECT, &[&audience()], 600);
    claims.exp = claims.iat - 10;
    let (_, body) = env.exchange(&env.issuer.sign(&claims).unwrap()).await;
    assert_eq!(sts_error(&body), ("invalid_grant", "ID Token expired."));

    let errors: Vec<_> = env.gcp.exchanges().into_iter().map(|e| e.error).collect();
    assert_eq!(errors.len(), 4);
    assert!(errors.iter().all(Option::is_some), "{errors:?}");
}

#[tokio::test]
async fn sts_requests_must_be_token_exchanges_for_a_known_pool_provider() {
    let env = env();
    let token = env.issuer.token(SUBJECT, &audience(), 600).unwrap();
    let audience = audience();
    let unknown = pool_provider_name(NUMBER, POOL, "other");
    let cases: [(&str, &str, &str); 5] = [
        ("grant_type", "client_credentials", "unsupported_grant_type"),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:saml2",
            "invalid_request",
        ),
        ("audience", "https://sts.googleapis.com", "invalid_request"),
        ("audience", &unknown, "invalid_target"),
        ("subject_token", "", "invalid_request"),
    ];
    for (key, value, error) in cases {
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("audience", audience.as_str()),
            ("subject_token_type", JWT),
            ("subject_token", token.as_str()),
        ];
        for pair in &mut form {
            if pair.0 == key {
                pair.1 = value;
            }
        }
        let (status, body) = env.sts(&form).await;
        assert_eq!((status, sts_error(&body).0), (400, error), "{key}={value}: {body}");
    }
}

#[tokio::test]
async fn impersonation_needs_a_live_token_of_a_principal_the_account_trusts() {
    let env = env();
    let federated = env.federated().await;
    let body = json!({"scope": [SCOPE]});
    // No bearer, or one it never issued.
    for bearer in [None, Some("ya29.not-issued-here")] {
        let (status, answer) = env.impersonate(bearer, SA, body.clone()).await;
        assert_eq!(
            (status, api_error(&answer)),
            (401, (401, "UNAUTHENTICATED")),
            "{answer}"
        );
    }
    // An account that does not trust the subject, and one that does not exist: the same answer.
    let mut config = GcpConfig::single(
        NUMBER,
        POOL,
        PROVIDER,
        env.issuer.url(),
        SA,
        "system:serviceaccount:infra:other",
    );
    config.service_accounts.push(ServiceAccountConfig {
        email: HOP.into(),
        token_creators: vec![federated_principal(NUMBER, POOL, SUBJECT)],
    });
    env.gcp.set_config(config);
    for email in [SA, "ghost@acme-prod.iam.gserviceaccount.com"] {
        let (status, answer) = env.impersonate(Some(&federated), email, body.clone()).await;
        assert_eq!(
            (status, api_error(&answer)),
            (403, (403, "PERMISSION_DENIED")),
            "{email}: {answer}"
        );
    }
    // Through a delegate the subject may use, once the target trusts that delegate.
    let via_hop = json!({"scope": [SCOPE], "delegates": [format!("projects/-/serviceAccounts/{HOP}")]});
    let (status, _) = env.impersonate(Some(&federated), SA, via_hop.clone()).await;
    assert_eq!(status, 403);
    let mut config = GcpConfig::single(
        NUMBER,
        POOL,
        PROVIDER,
        env.issuer.url(),
        SA,
        "system:serviceaccount:infra:other",
    );
    config.service_accounts[0]
        .token_creators
        .push(format!("serviceAccount:{HOP}"));
    config.service_accounts.push(ServiceAccountConfig {
        email: HOP.into(),
        token_creators: vec![federated_principal(NUMBER, POOL, SUBJECT)],
    });
    env.gcp.set_config(config);
    let (status, answer) = env.impersonate(Some(&federated), SA, via_hop).await;
    assert_eq!(status, 200, "{answer}");
    // A scope is required, and a lifetime must be a Duration.
    let (status, answer) = env.impersonate(Some(&federated), HOP, json!({})).await;
    assert_eq!((status, api_error(&answer).1), (400, "INVALID_ARGUMENT"));
    let (status, answer) = env
        .impersonate(Some(&federated), HOP, json!({"scope": [SCOPE], "lifetime": "1h"}))
        .await;
    assert_eq!((status, api_error(&answer).1), (400, "INVALID_ARGUMENT"));
    let outcomes: Vec<_> = env.gcp.impersonations().into_iter().map(|i| i.error).collect();
    assert_eq!(outcomes.iter().filter(|e| e.is_none()).count(), 1, "{outcomes:?}");
}
