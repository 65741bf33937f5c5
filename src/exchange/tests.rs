//! The seam with its three kinds of users, each a stand-in: an AWS chain that yields a
//! session, a federated token exchanged for an access token (Entra's token endpoint; GCP's
//! STS then `generateAccessToken`), and a session used for one more call whose result is an
//! output with its own expiry (ECR's authorization token). Each goes through the same
//! [`Exchange`] signature, and each grant renews by the same rule, two thirds into its real
//! lifetime; a Secret holding several renews when the first is due.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};

use super::credentials::Credentials;
use super::sts::{Session, StsError};
use super::{Exchange, ExchangeError, Grant, Request, TokenFuture};
use crate::exchange::renewal;

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn plus(minutes: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_mins(minutes)).unwrap()
}

/// A token source that records whether it was asked.
fn token(asked: &Arc<AtomicBool>, jwt: &'static str) -> TokenFuture<'static> {
    let asked = asked.clone();
    Box::pin(async move {
        asked.store(true, Ordering::SeqCst);
        Ok(jwt.to_owned())
    })
}

fn request<'a, I: ?Sized>(input: &'a I, token: TokenFuture<'a>) -> Request<'a, I> {
    Request {
        namespace: "team",
        input,
        now: t0(),
        keep: false,
        token,
    }
}

/// When a grant renews: 2/3 into its lifetime, no jitter.
fn renewal_of(grant: &dyn Grant) -> Timestamp {
    renewal::schedule(grant.issued(), grant.expiration(), None, 0.0).renewal
}

// ---- 1. an AWS chain -> a session ----

struct Chain {
    roles: Vec<&'static str>,
}

struct AwsStub;

impl Exchange<Chain> for AwsStub {
    type Grant = Session;

    fn exchange<'a>(&'a self, r: Request<'a, Chain>) -> BoxFuture<'a, Result<Session, ExchangeError>> {
        Box::pin(async move {
            let jwt = r.token.await?;
            let role = *r.input.roles.last().ok_or(StsError::NoCredentials {
                action: "AssumeRole",
                role: String::new(),
            })?;
            assert_eq!(jwt, "eyJ.sa");
            Ok(Session {
                credentials: Credentials {
                    access_key_id: "ASIA".into(),
                    secret_access_key: "s".into(),
                    session_token: "t".into(),
                    expiration: r.now.checked_add(SignedDuration::from_hours(1)).unwrap(),
                },
                assumed_role_arn: format!("{role}/session"),
                session_name: "s".into(),
                issued: r.now,
            })
        })
    }
}

#[tokio::test]
async fn an_aws_chain_yields_a_session_that_renews_two_thirds_in() {
    let asked = Arc::new(AtomicBool::new(false));
    let chain = Chain {
        roles: vec!["arn:aws:iam::1:role/admin", "arn:aws:iam::1:role/network"],
    };
    let session = AwsStub
        .exchange(request(&chain, token(&asked, "eyJ.sa")))
        .await
        .unwrap();
    assert!(
        asked.load(Ordering::SeqCst),
        "a chain starts from the ServiceAccount token"
    );
    assert_eq!(session.assumed_role_arn, "arn:aws:iam::1:role/network/session");
    assert_eq!(renewal_of(&session), plus(40));
    // A failure is the layer's own error, whatever the cloud.
    let empty = Chain { roles: Vec::new() };
    let err = AwsStub
        .exchange(request(&empty, token(&asked, "eyJ.sa")))
        .await
        .unwrap_err();
    assert!(matches!(err, ExchangeError::Sts(_)));
}

// ---- 2. a federated token -> a verified exchange with an expiry ----

/// An Entra app (or a GCP workload identity pool) that trusts the ServiceAccount.
struct Federation {
    audience: &'static str,
}

struct AccessToken {
    issued: Timestamp,
    expires: Timestamp,
}

impl Grant for AccessToken {
    fn issued(&self) -> Timestamp {
        self.issued
    }

    fn expiration(&self) -> Timestamp {
        self.expires
    }
}

/// Verifies the presented token as the cloud's endpoint would (here: its audience).
struct FederationStub;

impl Exchange<Federation> for FederationStub {
    type Grant = AccessToken;

    fn exchange<'a>(&'a self, r: Request<'a, Federation>) -> BoxFuture<'a, Result<AccessToken, ExchangeError>> {
        Box::pin(async move {
            let jwt = r.token.await?;
            if !jwt.ends_with(r.input.audience) {
                return Err(StsError::Rejected {
                    action: "token",
                    role: String::new(),
                    code: "invalid_client".into(),
                    message: "AADSTS700211: no matching federated identity record".into(),
                    status: Some(400),
                }
                .into());
            }
            Ok(AccessToken {
                issued: r.now,
                expires: r.now.checked_add(SignedDuration::from_mins(90)).unwrap(),
            })
        })
    }
}

#[tokio::test]
async fn a_federated_token_is_exchanged_and_verified_with_its_own_expiry() {
    let asked = Arc::new(AtomicBool::new(false));
    let app = Federation {
        audience: "api://AzureADTokenExchange",
    };
    let grant = FederationStub
        .exchange(request(&app, token(&asked, "eyJ.api://AzureADTokenExchange")))
        .await
        .unwrap();
    assert_eq!(renewal_of(&grant), plus(60));
    let refused = FederationStub
        .exchange(request(&app, token(&asked, "eyJ.sts.amazonaws.com")))
        .await;
    assert!(refused.is_err(), "a token for another audience is not exchanged");
}

// ---- 3. a session -> one more call -> an output with its own expiry ----

struct RegistryLogin {
    registry: &'static str,
}

struct RegistryAuth {
    auth: String,
    issued: Timestamp,
    expires: Timestamp,
}

impl Grant for RegistryAuth {
    fn issued(&self) -> Timestamp {
        self.issued
    }

    fn expiration(&self) -> Timestamp {
        self.expires
    }
}

/// `GetAuthorizationToken` with a session: no ServiceAccount token needed.
struct RegistryStub {
    session: Session,
}

impl Exchange<RegistryLogin> for RegistryStub {
    type Grant = RegistryAuth;

    fn exchange<'a>(&'a self, r: Request<'a, RegistryLogin>) -> BoxFuture<'a, Result<RegistryAuth, ExchangeError>> {
        Box::pin(async move {
            Ok(RegistryAuth {
                auth: format!("{}:{}", r.input.registry, self.session.credentials.access_key_id),
                issued: r.now,
                expires: r.now.checked_add(SignedDuration::from_hours(12)).unwrap(),
            })
        })
    }
}

#[tokio::test]
async fn a_session_yields_an_output_that_renews_on_its_own_expiry() {
    let asked = Arc::new(AtomicBool::new(false));
    let chain = Chain {
        roles: vec!["arn:aws:iam::1:role/admin"],
    };
    let session = AwsStub
        .exchange(request(&chain, token(&asked, "eyJ.sa")))
        .await
        .unwrap();
    let registry = RegistryStub { session };
    let login = RegistryLogin {
        registry: "123456789012.dkr.ecr.us-east-2.amazonaws.com",
    };
    let unused = Arc::new(AtomicBool::new(false));
    let auth = registry
        .exchange(request(&login, token(&unused, "eyJ.sa")))
        .await
        .unwrap();
    assert!(!unused.load(Ordering::SeqCst), "a session's output needs no token");
    assert!(auth.auth.ends_with(":ASIA"));
    assert_eq!(renewal_of(&auth), plus(8 * 60));
    // A Secret with both renews when the first is due: the session's.
    let grants: [&dyn Grant; 2] = [&registry.session, &auth];
    let first = grants.iter().map(|g| renewal_of(*g)).min().unwrap();
    assert_eq!(first, plus(40));
}
