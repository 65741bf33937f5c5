//! The local Entra endpoint against its own https OIDC issuer: discovery, the
//! client-credentials exchange with a federated token, and each refusal with Entra's codes.

use atmos_auth_testenv::entra::{EntraConfig, LocalEntra};
use atmos_auth_testenv::sts::issuer::{SigningKey, TestIssuer, TokenClaims};
use serde_json::Value;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SUBJECT: &str = "system:serviceaccount:infra:terraform";
const AUD: &str = "api://AzureADTokenExchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Env {
    issuer: TestIssuer,
    entra: LocalEntra,
    http: reqwest::Client,
}

fn env() -> Env {
    let issuer = TestIssuer::start_es256().expect("issuer");
    let config = EntraConfig::single(TENANT, CLIENT, issuer.url(), SUBJECT);
    let entra = LocalEntra::start(config, issuer.oidc_issuer()).expect("start Entra");
    let ca = reqwest::Certificate::from_pem(entra.ca_pem().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .expect("client");
    Env { issuer, entra, http }
}

impl Env {
    async fn token(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}{tenant}/oauth2/v2.0/token", self.entra.authority_host());
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request");
        (resp.status().as_u16(), resp.json().await.expect("json"))
    }

    async fn exchange(&self, client_id: &str, assertion: &str) -> (u16, Value) {
        self.token(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
                ("scope", "https://management.azure.com/.default"),
            ],
        )
        .await
    }
}

/// The AADSTS code an error answer starts its description with, checking Entra's shape.
fn aadsts(body: &Value) -> String {
    let description = body["error_description"].as_str().expect("error_description");
    let code = description.split(':').next().unwrap_or_default().to_owned();
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(
        body["error_codes"][0].as_u64().map(|c| format!("AADSTS{c}")),
        Some(code.clone()),
        "{body}"
    );
    code
}

#[tokio::test]
async fn discovery_names_the_tenants_token_endpoint() {
    let env = env();
    let url = format!(
        "{}{TENANT}/v2.0/.well-known/openid-configuration",
        env.entra.authority_host()
    );
    let doc: Value = env.http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        doc["token_endpoint"],
        format!("{}{TENANT}/oauth2/v2.0/token", env.entra.authority_host())
    );
    assert_eq!(doc["issuer"], format!("{}{TENANT}/v2.0", env.entra.authority_host()));
    let url = format!(
        "{}other-tenant/v2.0/.well-known/openid-configuration",
        env.entra.authority_host()
    );
    let resp = env.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(aadsts(&resp.json().await.unwrap()), "AADSTS90002");
}

#[tokio::test]
async fn a_trusted_serviceaccount_token_gets_a_short_access_token_and_its_jti_is_logged() {
    let env = env();
    let claims = TokenClaims::new(env.issuer.url(), SUBJECT, &[AUD], 600);
    let jti = claims.jti.clone();
    let assertion = env.issuer.sign(&claims).unwrap();
    let (status, body) = env.exchange(CLIENT, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((1..=60).contains(&expires_in), "{expires_in}");
    assert!(body["access_token"].as_str().unwrap().starts_with("local-entra."));
    let log = env.entra.assertions();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].jti, jti);
    assert_eq!(log[0].subject.as_deref(), Some(SUBJECT));
    assert_eq!(log[0].error, None);
    // The log holds ids, never the assertion itself.
    assert!(!format!("{log:?}").contains(&assertion));
}

#[tokio::test]
async fn each_mismatch_is_refused_with_entras_code() {
    let env = env();
    let good = |sub: &str, aud: &str| env.issuer.token(sub, aud, 600).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("another app", good(SUBJECT, AUD), "AADSTS700016"),
        (
            "another subject",
            good("system:serviceaccount:infra:other", AUD),
            "AADSTS70021",
        ),
        ("another audience", good(SUBJECT, "sts.amazonaws.com"), "AADSTS70021"),
        ("not a JWT", "not-a-jwt".to_owned(), "AADSTS50027"),
    ];
    for (what, assertion, code) in cases {
        let client = if what == "another app" {
            "99999999-2222-3333-4444-555555555555"
        } else {
            CLIENT
        };
        let (status, body) = env.exchange(client, &assertion).await;
        assert_eq!((status, aadsts(&body).as_str()), (400, code), "{what}: {body}");
    }

    // Another issuer (its own keys): no federated credential names it.
    let stranger = TestIssuer::start_es256().unwrap();
    let (_, body) = env.exchange(CLIENT, &stranger.token(SUBJECT, AUD, 600).unwrap()).await;
    assert_eq!(aadsts(&body), "AADSTS700211", "{body}");

    // The trusted issuer's name with a key it does not publish: the signature fails.
    let forged = SigningKey::es256("es256-1").unwrap();
    let claims = TokenClaims::new(env.issuer.url(), SUBJECT, &[AUD], 600);
    let (_, body) = env.exchange(CLIENT, &forged.sign(&claims).unwrap()).await;
    assert_eq!(aadsts(&body), "AADSTS700027", "{body}");

    // Expired.
    let mut claims = TokenClaims::new(env.issuer.url(), SUBJECT, &[AUD], 600);
    claims.exp = claims.iat - 10;
    let (_, body) = env.exchange(CLIENT, &env.issuer.sign(&claims).unwrap()).await;
    assert_eq!(aadsts(&body), "AADSTS700024", "{body}");

    let errors: Vec<_> = env.entra.assertions().into_iter().map(|a| a.error).collect();
    assert_eq!(errors.len(), 7);
    assert!(errors.iter().all(Option::is_some), "{errors:?}");
}

#[tokio::test]
async fn the_request_must_be_a_client_credentials_jwt_bearer_for_a_default_scope() {
    let env = env();
    let assertion = env.issuer.token(SUBJECT, AUD, 600).unwrap();
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
        ("scope", "https://management.azure.com/.default"),
    ];
    let with = |key: &str, value: &str| -> Vec<(String, String)> {
        base.iter()
            .filter(|(k, _)| *k != key || !value.is_empty())
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    if *k == key { value.to_owned() } else { (*v).to_owned() },
                )
            })
            .collect()
    };
    let cases = [
        (with("grant_type", "password"), "AADSTS70003"),
        (with("client_assertion_type", "urn:other"), "AADSTS7000216"),
        (with("client_assertion", ""), "AADSTS90014"),
        (
            with("scope", "https://management.azure.com/user_impersonation"),
            "AADSTS1002012",
        ),
    ];
    for (form, code) in cases {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, body) = env.token(TENANT, &pairs).await;
        assert_eq!((status, aadsts(&body).as_str()), (400, code), "{form:?}: {body}");
    }
    let (_, body) = env.token("unknown-tenant", &base).await;
    assert_eq!(aadsts(&body), "AADSTS90002");
}
