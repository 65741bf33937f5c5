//! The GCP exchanger against the local verifying Google STS and IAM Credentials
//! (atmos-auth-testenv), with tokens of a local OIDC issuer: a trusted ServiceAccount is
//! exchanged and impersonates, each refusal shows Google's error with a specific reason; and
//! the answer readers on their own.

use std::sync::Arc;
use std::time::Duration;

use atmos_auth_testenv::gcp::{GcpConfig, LocalGcp, pool_provider_name};
use atmos_auth_testenv::sts::issuer::TestIssuer;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::exchange::budget::limit::{LimitSettings, Limiter};
use crate::exchange::{ExchangeError, TokenFuture};

const NUMBER: &str = "123456789012";
const POOL: &str = "k8s-pool";
const PROVIDER: &str = "cluster";
const SUBJECT: &str = "system:serviceaccount:infra:terraform";
const SA: &str = "terraform@acme-prod.iam.gserviceaccount.com";

fn target(gcp: &LocalGcp, provider: &str, service_account: Option<&str>) -> GcpTarget {
    GcpTarget {
        project_number: NUMBER.into(),
        pool_id: POOL.into(),
        provider_id: provider.into(),
        sts_audience: pool_provider_name(NUMBER, POOL, provider),
        service_account_email: service_account.map(str::to_owned),
        delegates: Vec::new(),
        scopes: vec![crate::resolve::GCP_DEFAULT_SCOPE.into()],
        lifetime_seconds: Some(1800),
        project_id: Some("acme-prod".into()),
        region: None,
        zone: None,
        sts_url: gcp.sts_url(),
        iam_credentials_url: gcp.iam_credentials_url(),
    }
}

fn token(jwt: String) -> TokenFuture<'static> {
    Box::pin(async move { Ok(jwt) })
}

async fn exchange(ex: &GcpExchanger, target: &GcpTarget, jwt: String) -> Result<GcpGrant, GcpError> {
    exchange_keeping(ex, target, jwt, false).await
}

async fn exchange_keeping(
    ex: &GcpExchanger,
    target: &GcpTarget,
    jwt: String,
    keep: bool,
) -> Result<GcpGrant, GcpError> {
    let outcome = ex
        .exchange(Request {
            namespace: "infra",
            input: target,
            now: Timestamp::now(),
            keep,
            token: token(jwt),
        })
        .await;
    outcome.map_err(|e| match e {
        ExchangeError::Gcp(e) => e,
        other => panic!("{other}"),
    })
}

/// Records what the exchanger tells the budget.
#[derive(Default)]
struct Reports(std::sync::Mutex<Vec<(bool, String)>>);

impl crate::exchange::budget::EndpointReports for Reports {
    fn answered(&self, endpoint: &str) {
        self.0.lock().unwrap().push((true, endpoint.to_owned()));
    }
    fn failed(&self, endpoint: &str) {
        self.0.lock().unwrap().push((false, endpoint.to_owned()));
    }
}

#[tokio::test]
async fn the_federation_and_impersonation_are_proved_at_google() {
    let issuer = TestIssuer::start_es256().unwrap();
    let gcp = LocalGcp::start(
        GcpConfig::single(NUMBER, POOL, PROVIDER, issuer.url(), SA, SUBJECT),
        issuer.oidc_issuer(),
    )
    .unwrap();
    let limiter = Arc::new(Limiter::new(LimitSettings::default()));
    let reports = Arc::new(Reports::default());
    let ex = GcpExchanger::new(
        (limiter, Some(reports.clone())),
        Duration::from_secs(10),
        Some(gcp.ca_pem()),
    )
    .unwrap();
    let aud = pool_provider_name(NUMBER, POOL, PROVIDER);

    let grant = exchange(
        &ex,
        &target(&gcp, PROVIDER, Some(SA)),
        issuer.token(SUBJECT, &aud, 600).unwrap(),
    )
    .await
    .unwrap();
    let lifetime = grant.expiration.duration_since(grant.issued);
    assert!(
        lifetime > SignedDuration::ZERO && lifetime <= SignedDuration::from_secs(61),
        "{lifetime}"
    );
    assert_eq!(gcp.exchanges().len(), 1);
    let calls = gcp.impersonations();
    assert_eq!((calls.len(), calls[0].error.clone()), (1, None));
    assert_eq!(grant.access_token, None, "dropped unless kept");
    // Without a service account, the federated token is the credential: STS only.
    exchange(
        &ex,
        &target(&gcp, PROVIDER, None),
        issuer.token(SUBJECT, &aud, 600).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(gcp.impersonations().len(), 1);

    // Kept (the gcp-access-token format): the impersonated token, which the endpoint
    // knows as the service account's, never shown by Debug.
    let kept = exchange_keeping(
        &ex,
        &target(&gcp, PROVIDER, Some(SA)),
        issuer.token(SUBJECT, &aud, 600).unwrap(),
        true,
    )
    .await
    .unwrap();
    let token = kept.access_token.clone().expect("kept");
    let info = gcp.token_info(token.expose()).expect("a token the endpoint issued");
    assert_eq!(info.member, format!("serviceAccount:{SA}"));
    assert!(!format!("{kept:?}").contains(token.expose()));

    // Refusals name what to fix and are not retried quickly.
    let cases = [
        (
            target(&gcp, PROVIDER, Some(SA)),
            issuer.token("system:serviceaccount:infra:other", &aud, 600).unwrap(),
            "ServiceAccountImpersonationDenied",
        ),
        (
            target(&gcp, PROVIDER, Some(SA)),
            issuer.token(SUBJECT, "sts.amazonaws.com", 600).unwrap(),
            "WorkloadIdentityAudienceMismatch",
        ),
        (
            target(&gcp, "other", Some(SA)),
            issuer.token(SUBJECT, &aud, 600).unwrap(),
            "WorkloadIdentityPoolNotFound",
        ),
    ];
    for (t, jwt, reason) in cases {
        let err = exchange(&ex, &t, jwt).await.unwrap_err();
        assert_eq!(err.reason(), reason, "{err}");
        assert!(!err.is_transient() && !err.endpoint_down(), "{err}");
        assert!(
            !err.to_string().contains("eyJ") && !err.to_string().contains("local-gcp"),
            "{err}"
        );
    }
    // Refusals are answers: both endpoints are up for the budget.
    let reports = reports.0.lock().unwrap();
    assert!(reports.iter().all(|(up, _)| *up), "{reports:?}");
    assert!(reports.contains(&(true, endpoint_key(&gcp.sts_url()))));
    assert!(reports.contains(&(true, format!("iamcredentials:{}", gcp.iam_credentials_url()))));
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_is_down_and_transient() {
    let limiter = Arc::new(Limiter::new(LimitSettings::default()));
    let reports = Arc::new(Reports::default());
    let ex = GcpExchanger::new((limiter, Some(reports.clone())), Duration::from_secs(2), None).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let sts_url = format!("https://127.0.0.1:{port}/v1/token");
    let t = GcpTarget {
        sts_url: sts_url.clone(),
        iam_credentials_url: format!("https://127.0.0.1:{port}/"),
        ..target_without_server()
    };
    let err = exchange(&ex, &t, "eyJ.x.y".into()).await.unwrap_err();
    assert!(err.endpoint_down() && err.is_transient(), "{err}");
    assert_eq!(err.reason(), "GcpUnreachable");
    assert_eq!(*reports.0.lock().unwrap(), [(false, endpoint_key(&sts_url))]);
}

fn target_without_server() -> GcpTarget {
    GcpTarget {
        project_number: NUMBER.into(),
        pool_id: POOL.into(),
        provider_id: PROVIDER.into(),
        sts_audience: pool_provider_name(NUMBER, POOL, PROVIDER),
        service_account_email: None,
        delegates: Vec::new(),
        scopes: Vec::new(),
        lifetime_seconds: None,
        project_id: None,
        region: None,
        zone: None,
        sts_url: String::new(),
        iam_credentials_url: String::new(),
    }
}

#[test]
fn answers_are_read_as_google_writes_them() {
    let now = Timestamp::now();
    let ok = read_sts(200, br#"{"access_token":"x","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3599}"#, now);
    assert_eq!(
        ok.ok().map(|f| f.grant.expiration.duration_since(now).as_secs()),
        Some(3599)
    );
    let Err(answer) = read_sts(
        400,
        br#"{"error":"invalid_grant","error_description":"ID Token expired."}"#,
        now,
    ) else {
        panic!()
    };
    assert_eq!(answer.into_error("aud", "w").reason(), "FederatedTokenExpired");
    let Err(answer) = read_sts(502, b"<html>bad gateway</html>", now) else {
        panic!()
    };
    assert_eq!(answer.into_error("aud", "w").reason(), "GcpBadResponse");
    let later = now.saturating_add(SignedDuration::from_secs(600)).unwrap();
    let ok = read_iam(
        200,
        format!(r#"{{"accessToken":"ya29.x","expireTime":"{later}"}}"#).as_bytes(),
        now,
    );
    let (grant, token) = ok.ok().unwrap();
    assert_eq!((grant.expiration, token.expose()), (later, "ya29.x"));
    let Err(answer) = read_iam(
        429,
        br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#,
        now,
    ) else {
        panic!()
    };
    let err = answer.into_error(SA, "w");
    assert!(err.is_throttling() && err.is_transient(), "{err}");
    let Err(answer) = read_iam(
        200,
        br#"{"accessToken":"ya29.x","expireTime":"2001-01-01T00:00:00Z"}"#,
        now,
    ) else {
        panic!()
    };
    assert_eq!(answer.into_error(SA, "w").reason(), "GcpBadResponse");
}
