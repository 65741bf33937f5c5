//! The Entra exchanger against the local verifying Entra endpoint (atmos-auth-testenv), with
//! tokens of a local OIDC issuer: a trusted ServiceAccount passes, each mismatch shows
//! Entra's code with a specific reason; and the answer reader on its own.

use std::sync::Arc;
use std::time::Duration;

use atmos_auth_testenv::entra::{EntraConfig, LocalEntra};
use atmos_auth_testenv::sts::issuer::TestIssuer;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::exchange::budget::limit::{LimitSettings, Limiter};
use crate::exchange::{ExchangeError, TokenFuture};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SUBJECT: &str = "system:serviceaccount:infra:terraform";
const AUD: &str = "api://AzureADTokenExchange";

fn target(entra: &LocalEntra, client_id: &str) -> AzureTarget {
    AzureTarget {
        tenant_id: TENANT.into(),
        client_id: client_id.into(),
        subscription_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
        resource_group: None,
        location: None,
        cloud_environment: "public".into(),
        authority_host: entra.authority_host(),
    }
}

fn token(jwt: String) -> TokenFuture<'static> {
    Box::pin(async move { Ok(jwt) })
}

async fn exchange(ex: &EntraExchanger, target: &AzureTarget, jwt: String) -> Result<EntraGrant, ExchangeError> {
    ex.exchange(Request {
        namespace: "infra",
        input: target,
        now: Timestamp::now(),
        keep: false,
        token: token(jwt),
    })
    .await
}

#[tokio::test]
async fn the_federation_is_proved_at_the_tenants_token_endpoint() {
    let issuer = TestIssuer::start_es256().unwrap();
    let entra = LocalEntra::start(
        EntraConfig::single(TENANT, CLIENT, issuer.url(), SUBJECT),
        issuer.oidc_issuer(),
    )
    .unwrap();
    let limiter = Arc::new(Limiter::new(LimitSettings::default()));
    let reports = Arc::new(Reports::default());
    let ex = EntraExchanger::new(
        (limiter, Some(reports.clone())),
        Duration::from_secs(10),
        Some(entra.ca_pem()),
    )
    .unwrap();

    let grant = exchange(&ex, &target(&entra, CLIENT), issuer.token(SUBJECT, AUD, 600).unwrap())
        .await
        .unwrap();
    let lifetime = grant.expiration.duration_since(grant.issued);
    assert!(
        lifetime > SignedDuration::ZERO && lifetime <= SignedDuration::from_secs(60),
        "{lifetime}"
    );
    assert_eq!(entra.assertions().len(), 1);

    // A ServiceAccount the app does not trust: Entra's code, a reason that says what to fix,
    // fixed by the spec or the app (not retried quickly).
    let err = exchange(
        &ex,
        &target(&entra, CLIENT),
        issuer.token("system:serviceaccount:infra:other", AUD, 600).unwrap(),
    )
    .await
    .unwrap_err();
    let ExchangeError::Entra(err) = err else {
        panic!("{err}")
    };
    assert_eq!(err.reason(), "FederatedCredentialNotFound");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("AADSTS70021"), "{err}");

    let err = exchange(
        &ex,
        &target(&entra, "99999999-2222-3333-4444-555555555555"),
        issuer.token(SUBJECT, AUD, 600).unwrap(),
    )
    .await
    .unwrap_err();
    let ExchangeError::Entra(err) = err else {
        panic!("{err}")
    };
    assert_eq!(err.reason(), "EntraAppNotFound");
    // No token in any message.
    assert!(!err.to_string().contains("eyJ"), "{err}");
    // Refusals are answers: the host is up for the budget.
    let key = endpoint_key(&entra.authority_host());
    assert_eq!(*reports.0.lock().unwrap(), vec![(true, key); 3]);
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
async fn an_endpoint_that_does_not_answer_is_down_and_transient() {
    let limiter = Arc::new(Limiter::new(LimitSettings::default()));
    let reports = Arc::new(Reports::default());
    let ex = EntraExchanger::new((limiter, Some(reports.clone())), Duration::from_secs(2), None).unwrap();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut t = AzureTarget {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        subscription_id: String::new(),
        resource_group: None,
        location: None,
        cloud_environment: "public".into(),
        authority_host: format!("https://127.0.0.1:{port}/"),
    };
    let err = exchange(&ex, &t, "eyJ.x.y".into()).await.unwrap_err();
    let ExchangeError::Entra(err) = err else {
        panic!("{err}")
    };
    assert!(err.endpoint_down() && err.is_transient(), "{err}");
    assert_eq!(err.reason(), "EntraUnreachable");
    // The budget hears that the host is down, under the key the reconcile parks on.
    assert_eq!(
        *reports.0.lock().unwrap(),
        [(false, endpoint_key(&format!("https://127.0.0.1:{port}/")))]
    );
    t.cloud_environment = "china".into();
    assert_eq!(
        management_scope(&t.cloud_environment),
        "https://management.chinacloudapi.cn/.default"
    );
}

#[test]
fn answers_are_read_as_entra_writes_them() {
    let now = Timestamp::now();
    let ok = read_answer(
        200,
        br#"{"token_type":"Bearer","expires_in":"3599","access_token":"x"}"#,
        now,
    );
    assert_eq!(ok.ok().map(|g| g.expiration.duration_since(now).as_secs()), Some(3599));
    let throttled = read_answer(
        429,
        br#"{"error":"temporarily_unavailable","error_description":"AADSTS50196: The server terminated an operation because it encountered a client request loop."}"#,
        now,
    );
    let Err(answer) = throttled else { panic!() };
    let err = answer.into_error("c".into(), "t".into(), 429);
    assert!(err.is_throttling() && err.is_transient());
    let Err(answer) = read_answer(502, b"<html>bad gateway</html>", now) else {
        panic!()
    };
    let err = answer.into_error("c".into(), "t".into(), 502);
    assert_eq!(err.reason(), "EntraBadResponse");
    let Err(answer) = read_answer(200, br#"{"expires_in":0,"access_token":"x"}"#, now) else {
        panic!()
    };
    assert_eq!(
        answer.into_error("c".into(), "t".into(), 200).reason(),
        "EntraBadResponse"
    );
}
