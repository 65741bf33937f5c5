//! The credential exchange: from a token source (a TokenRequest for the Identity's
//! ServiceAccount) through an exchanger per cloud to grants that expire. The reconcile sees
//! one seam, [`Exchange`], that knows nothing of any cloud: an input (a resolved AWS chain
//! today; an Entra federation, a GCP workload identity pool or an ECR login next) goes in,
//! a [`Grant`] with an expiry comes out, and every grant renews by the same arithmetic.
//! The [`budget`] (rate limit and fair queue) belongs to the exchange, not to the reconcile.
//!
//! - [`token`]: the ServiceAccount token every chain starts from;
//! - [`azure`]: Entra (`client_credentials` with the token as a `jwt-bearer` assertion);
//! - [`gcp`]: Google STS's token exchange, then IAM Credentials' `generateAccessToken`;
//! - [`sts`]: AWS (`AssumeRoleWithWebIdentity`, then `AssumeRole` per link; parent sessions
//!   cached);
//! - [`ecr`]: registry logins (`GetAuthorizationToken` of ECR and ECR Public) with a
//!   session of the chain;
//! - [`budget`]: calls per second per account and region, and turns for reconciles;
//! - [`credentials`]: what a session holds;
//! - [`renewal`]: when a grant renews (two thirds into its real lifetime by default), and
//!   the backoff after a failure.

pub mod azure;
pub mod budget;
pub mod credentials;
pub mod ecr;
pub mod gcp;
pub mod renewal;
pub mod sts;
pub mod token;

use futures::future::BoxFuture;
use jiff::Timestamp;

pub use budget::Budget;
use sts::StsError;
use token::TokenError;

/// Why an exchange failed: the token source's error or the cloud's, each as its layer
/// reports it (reason, whether a retry may help).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No ServiceAccount token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// AWS STS refused or did not answer.
    #[error(transparent)]
    Sts(#[from] StsError),
    /// A registry login (ECR) refused or did not answer.
    #[error(transparent)]
    Ecr(#[from] ecr::EcrError),
    /// Entra refused or did not answer.
    #[error(transparent)]
    Entra(#[from] azure::EntraError),
    /// Google STS or IAM Credentials refused or did not answer.
    #[error(transparent)]
    Gcp(#[from] gcp::GcpError),
}

/// Something an exchange yields: it was issued at a time and expires at another, and the
/// Secret that holds it renews from those two (see [`renewal::schedule`]).
pub trait Grant {
    /// When it was asked for (a little before it was issued, so lifetimes err early).
    fn issued(&self) -> Timestamp;
    /// When it stops working.
    fn expiration(&self) -> Timestamp;
}

/// The ServiceAccount token an exchange may start from, requested only if the exchange
/// awaits it (the TokenRequest is also Kubernetes' permission check).
pub type TokenFuture<'a> = BoxFuture<'a, Result<String, ExchangeError>>;

/// One exchange's request.
pub struct Request<'a, I: ?Sized> {
    /// The Identity's namespace: every cache key and token is scoped to it.
    pub namespace: &'a str,
    /// What to exchange for (a resolved chain, a federation, a session to log in with).
    pub input: &'a I,
    /// The reconcile's clock.
    pub now: Timestamp,
    /// Keep the result as a parent for later exchanges in this process (identities of one
    /// Secret that chain from each other).
    pub keep: bool,
    /// The ServiceAccount token, if the exchange needs one.
    pub token: TokenFuture<'a>,
}

/// An exchanger: turns an `I` into a grant. One implementation per cloud and per output.
pub trait Exchange<I: ?Sized>: Send + Sync {
    /// What it yields.
    type Grant: Grant;
    /// Runs the exchange.
    fn exchange<'a>(&'a self, request: Request<'a, I>) -> BoxFuture<'a, Result<Self::Grant, ExchangeError>>;
}

#[cfg(test)]
mod tests;
