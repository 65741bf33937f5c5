//! A verifying local AWS STS for the integration tests and the local run mode.
//!
//! It speaks the STS Query API (`AssumeRoleWithWebIdentity`, `AssumeRole`,
//! `GetCallerIdentity`) over plain HTTP on 127.0.0.1 and, unlike moto, enforces what AWS
//! enforces: web identity tokens are verified against the OIDC issuer's JWKS, each role has a
//! trust policy (audiences, subjects, trusted roles, external id), session lengths follow
//! AWS's limits, and signed calls are checked with SigV4 against the credentials it issued.
//! It counts the calls it serves, so tests can assert how many a scenario made.
//!
//! The configuration ([`StsConfig`], YAML):
//!
//! ```yaml
//! account: "123456789012"            # required, 12 digits
//! min_session_seconds: 900           # smallest DurationSeconds (AWS: 900)
//! max_chained_session_seconds: 3600  # longest chained AssumeRole session (AWS: 1 h)
//! oidc_client_ids: [sts.amazonaws.com]  # the IAM OIDC provider's audiences;
//!                                    # default: every audience some role trusts
//! port: 0                            # 127.0.0.1 port; absent or 0: any free port
//! rate_limit: {rate: 50, burst: 50}  # request quota; beyond it `Throttling` (absent: none)
//! ecr_token_seconds: 43200          # lifetime of ECR tokens (AWS: 12 h); tests shorten it
//! roles:
//!   - arn: arn:aws:iam::123456789012:role/admin   # role path allowed: role/team/admin
//!     max_session_seconds: 3600      # MaxSessionDuration (default 3600, at most 43200)
//!     web_identity:                  # who may AssumeRoleWithWebIdentity; absent: nobody
//!       audiences: [sts.amazonaws.com]                        # StringLike (* and ?)
//!       subjects: ["system:serviceaccount:infra:terraform"]   # StringLike (* and ?)
//!     trusted_roles: []              # role ARNs whose sessions may AssumeRole into it
//!     external_id: null              # ExternalId an AssumeRole must carry, if set
//!     permissions: [ecr:GetAuthorizationToken]   # actions beyond STS its policies allow
//! ```
//!
//! It also answers ECR's and ECR Public's `GetAuthorizationToken` (JSON 1.1, by
//! `X-Amz-Target`), signed with a session it issued, for roles whose `permissions` list
//! `ecr:GetAuthorizationToken` (ECR Public: `ecr-public:GetAuthorizationToken` and
//! `sts:GetServiceBearerToken`); the tokens last `ecr_token_seconds` (default 12 h).
//!
//! Without `DurationSeconds` a session lasts AWS's default hour, capped by the role's
//! maximum and, for chained calls, by `max_chained_session_seconds`.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use atmos_auth_testenv::sts::{LocalSts, OidcIssuer, StsConfig};
//! let config = StsConfig::from_yaml_file("roles.yaml")?;
//! let issuer = OidcIssuer { url: "https://127.0.0.1:6443".into(), ca_pem: String::new() };
//! let sts = LocalSts::start(config, issuer)?;
//! println!("{}", sts.endpoint());
//! # Ok(()) }
//! ```

mod actions;
mod calls;
mod config;
pub mod ecr;
mod error;
mod faults;
pub mod issuer;
pub(crate) mod oidc;
mod params;
mod server;
mod sessions;
mod sigv4;
pub(crate) mod thread;
mod throttle;
mod xml;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::certs::CertKey;

pub use calls::{ActionCalls, CallCounts, RoleCall};
pub use config::{RateLimit, RoleConfig, StsConfig, WebIdentityTrust};
pub use error::StsError;
pub use faults::Fault;
pub use oidc::OidcIssuer;

use actions::StsState;
use calls::CallCounter;
use oidc::OidcVerifier;
use sessions::SessionStore;
use thread::ServerThread;

/// A running local STS. Its server runs on a thread of its own with its own Tokio runtime,
/// so it keeps serving across tests that each have their own runtime. Dropping it stops it.
pub struct LocalSts {
    server: ServerThread,
    state: Arc<StsState>,
    tls: bool,
}

impl LocalSts {
    /// Starts serving on 127.0.0.1 at `config.port` (absent or 0: a free port). Keys of the
    /// issuer are fetched on the first web identity call, so the issuer may start later.
    pub fn start(config: StsConfig, issuer: OidcIssuer) -> Result<Self> {
        Self::serve(config, issuer, None)
    }

    /// Like [`Self::start`], over HTTPS with `cert` (a server certificate for the name the
    /// caller will use, from [`crate::certs::Ca::issue_server`]), as AWS's endpoints are.
    pub fn start_tls(config: StsConfig, issuer: OidcIssuer, cert: &CertKey) -> Result<Self> {
        Self::serve(config, issuer, Some(thread::tls_acceptor(cert)?))
    }

    fn serve(config: StsConfig, issuer: OidcIssuer, tls: Option<tokio_rustls::TlsAcceptor>) -> Result<Self> {
        config.validate()?;
        let port = config.port.unwrap_or(0);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .with_context(|| format!("binding the local STS to 127.0.0.1:{port}"))?;
        let throttle = config.rate_limit.map(throttle::Throttle::new);
        let account_throttles = config
            .account_rate_limits
            .iter()
            .map(|(account, limit)| (account.clone(), throttle::Throttle::new(*limit)))
            .collect();
        let state = Arc::new(StsState {
            oidc: OidcVerifier::new(issuer)?,
            config,
            sessions: SessionStore::default(),
            calls: CallCounter::default(),
            faults: faults::Faults::default(),
            web_identity_tokens: Default::default(),
            throttle,
            account_throttles: std::sync::Mutex::new(account_throttles),
            ecr: Default::default(),
        });
        let tls_on = tls.is_some();
        let server = ServerThread::spawn("local-sts", listener, server::router(state.clone()), tls)?;
        let scheme = if tls_on { "https" } else { "http" };
        tracing::info!(endpoint = %format!("{scheme}://{}", server.addr()), "local STS listening");
        Ok(Self {
            server,
            state,
            tls: tls_on,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with TLS) — the `endpoint_url` for
    /// SDKs and the AWS CLI.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.server.addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn config(&self) -> &StsConfig {
        &self.state.config
    }

    /// The calls served so far, per action and outcome (also `GET /_local/calls`).
    pub fn calls(&self) -> CallCounts {
        self.state.calls.snapshot()
    }

    /// Every call that named a role (`AssumeRole`, `AssumeRoleWithWebIdentity`), with its
    /// external id, oldest first.
    pub fn role_calls(&self) -> Vec<RoleCall> {
        self.state.calls.role_calls()
    }

    /// Forgets the counted calls (also `POST /_local/calls/reset`).
    pub fn reset_calls(&self) {
        self.state.calls.reset();
    }

    /// Makes every `AssumeRole` and `AssumeRoleWithWebIdentity` misbehave as `fault` says,
    /// until the next call; `None` restores normal service.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.faults.set(fault);
    }

    /// Sets (or with `None` lifts) `account`'s request quota from now on: beyond it, calls
    /// naming a role of that account are answered `Throttling`; other accounts are untouched.
    pub fn set_account_rate_limit(&self, account: &str, limit: Option<RateLimit>) {
        let mut throttles = self.state.account_throttles.lock().unwrap_or_else(|p| p.into_inner());
        match limit {
            Some(l) => throttles.insert(account.to_owned(), throttle::Throttle::new(l)),
            None => throttles.remove(account),
        };
    }

    /// Revokes every session issued so far: calls signed with them are `AccessDenied`, as
    /// after IAM's "revoke active sessions". Sessions issued later work.
    pub fn revoke_sessions(&self) {
        self.state.faults.revoke(self.state.sessions.ids());
    }

    /// How many issued sessions (live or recently expired) it remembers.
    pub fn session_count(&self) -> usize {
        self.state.sessions.len()
    }

    /// Every secret it has seen, for tests that prove none reaches a log: each web identity
    /// token presented to it, and the secret key and session token of each session issued.
    pub fn secrets_seen(&self) -> Vec<String> {
        let tokens = self
            .state
            .web_identity_tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let sessions = self.state.sessions.issued();
        let keys = sessions
            .iter()
            .flat_map(|s| [s.secret_access_key.clone(), s.session_token.clone()]);
        tokens.into_iter().chain(keys).collect()
    }

    /// The registry tokens its ECR `GetAuthorizationToken` issued (a registry's token service
    /// checks clients against them).
    pub fn ecr_tokens(&self) -> Arc<ecr::EcrTokens> {
        self.state.ecr.clone()
    }

    /// How many times it fetched the issuer's discovery document and JWKS.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.oidc.key_fetches()
    }
}
