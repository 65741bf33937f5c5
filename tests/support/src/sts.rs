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
//! roles:
//!   - arn: arn:aws:iam::123456789012:role/admin   # role path allowed: role/team/admin
//!     max_session_seconds: 3600      # MaxSessionDuration (default 3600, at most 43200)
//!     web_identity:                  # who may AssumeRoleWithWebIdentity; absent: nobody
//!       audiences: [sts.amazonaws.com]                        # StringLike (* and ?)
//!       subjects: ["system:serviceaccount:infra:terraform"]   # StringLike (* and ?)
//!     trusted_roles: []              # role ARNs whose sessions may AssumeRole into it
//!     external_id: null              # ExternalId an AssumeRole must carry, if set
//! ```
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
}

impl LocalSts {
    /// Starts serving on 127.0.0.1 at `config.port` (absent or 0: a free port). Keys of the
    /// issuer are fetched on the first web identity call, so the issuer may start later.
    pub fn start(config: StsConfig, issuer: OidcIssuer) -> Result<Self> {
        config.validate()?;
        let port = config.port.unwrap_or(0);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .with_context(|| format!("binding the local STS to 127.0.0.1:{port}"))?;
        let throttle = config.rate_limit.map(throttle::Throttle::new);
        let state = Arc::new(StsState {
            oidc: OidcVerifier::new(issuer)?,
            config,
            sessions: SessionStore::default(),
            calls: CallCounter::default(),
            faults: faults::Faults::default(),
            web_identity_tokens: Default::default(),
            throttle,
        });
        let server = ServerThread::spawn("local-sts", listener, server::router(state.clone()), None)?;
        tracing::info!(endpoint = %format!("http://{}", server.addr()), "local STS listening");
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:PORT` — the `endpoint_url` for SDKs and the AWS CLI.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
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

    /// How many times it fetched the issuer's discovery document and JWKS.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.oidc.key_fetches()
    }
}
