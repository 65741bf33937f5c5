//! The AWS exchanges: `AssumeRoleWithWebIdentity` (unsigned) with the ServiceAccount token,
//! then `AssumeRole` per chained link with the parent's credentials, through the real
//! `aws-sdk-sts`. Parent sessions are cached and shared by Identities whose chains share them.

mod cache;
mod caller;
mod error;

use std::time::{Duration, Instant};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sdk_sts::config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::{Builder, tls};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use jiff::Timestamp;

use crate::exchange::budget::EndpointReports;
use crate::exchange::budget::limit::{Demand, LimitSettings, Limiter, Quota};
use crate::exchange::credentials::Credentials;
use crate::resolve::{Link, Resolved, session_name};
pub use cache::{SessionCache, SessionKey};
pub use caller::{CallerIdentity, caller_identity};
pub use error::StsError;

/// Where and how STS is called: the controller's configuration, never a profile's.
#[derive(Clone, Debug)]
pub struct StsSettings {
    /// STS endpoint URL; `None`: AWS's regional endpoint for each link's region.
    pub endpoint: Option<String>,
    /// Budget for one attempt of a call.
    pub operation_timeout: Duration,
    /// The rate limit per account and region.
    pub limit: LimitSettings,
}

impl Default for StsSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            operation_timeout: crate::settings::STS_TIMEOUT,
            limit: LimitSettings::default(),
        }
    }
}

/// One STS session obtained for a link.
#[derive(Clone, Debug)]
pub struct Session {
    /// The credentials.
    pub credentials: Credentials,
    /// `arn:aws:sts::...:assumed-role/...` as STS returned it.
    pub assumed_role_arn: String,
    /// Session name used.
    pub session_name: String,
    /// When the controller asked for it (the reconcile's `now`): a little before STS
    /// issued it, so the lifetime computed from it errs on the early side.
    pub issued: Timestamp,
}

impl crate::exchange::Grant for Session {
    fn issued(&self) -> Timestamp {
        self.issued
    }

    fn expiration(&self) -> Timestamp {
        self.credentials.expiration
    }
}

/// The AWS exchange behind the seam: a resolved chain in, the target's session out.
impl crate::exchange::Exchange<Resolved> for Exchanger {
    type Grant = Session;

    fn exchange<'a>(
        &'a self,
        request: crate::exchange::Request<'a, Resolved>,
    ) -> futures::future::BoxFuture<'a, Result<Session, crate::exchange::ExchangeError>> {
        let crate::exchange::Request {
            namespace,
            input,
            now,
            keep,
            token,
        } = request;
        Box::pin(self.run_chain(namespace, input, now, keep, move || token))
    }
}

impl Session {
    /// Whether it is still before its renewal point (two thirds of its lifetime) at `now`.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        cache::usable(self, now)
    }
}

/// Observes each STS call (metrics).
pub trait CallObserver: Send + Sync {
    /// `action` finished in `elapsed` with `outcome` (`ok` or an error code).
    fn sts_call(&self, action: &'static str, outcome: &str, elapsed: Duration);
    /// STS answered a call in `region` with `Throttling`.
    fn throttled(&self, region: &str);
}

/// Runs chains of STS calls.
pub struct Exchanger {
    http: SharedHttpClient,
    settings: StsSettings,
    cache: SessionCache,
    limiter: std::sync::Arc<Limiter>,
    reports: Option<std::sync::Arc<dyn EndpointReports>>,
    observer: Option<std::sync::Arc<dyn CallObserver>>,
}

impl Exchanger {
    /// An exchanger with its own HTTPS client (rustls with ring, like kube's), calling
    /// through the budget's `limiter` and telling `reports` whether each endpoint answered.
    pub fn new(
        settings: StsSettings,
        (limiter, reports): (std::sync::Arc<Limiter>, Option<std::sync::Arc<dyn EndpointReports>>),
        observer: Option<std::sync::Arc<dyn CallObserver>>,
    ) -> Self {
        let http = Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        Self {
            http,
            limiter,
            reports,
            settings,
            cache: SessionCache::default(),
            observer,
        }
    }

    /// The endpoint `resolved`'s first call goes to: the one its health is judged by.
    pub fn endpoint_of(&self, resolved: &Resolved) -> String {
        let first = resolved.links.first();
        let region = first.map_or("", |l| l.region.as_str());
        endpoint_key(
            first
                .and_then(|l| l.endpoint.as_ref())
                .or(self.settings.endpoint.as_ref()),
            region,
        )
    }

    /// Adds to `demand` the calls `resolved`'s chain is expected to make for an Identity in
    /// `namespace` at `now`: one per link after the deepest cached parent (as
    /// [`Exchanger::run_chain`] walks it), each charged to its role's account in its region.
    pub fn demand(&self, namespace: &str, resolved: &Resolved, now: Timestamp, demand: &mut Demand) {
        let ep = self.settings.endpoint.as_deref().unwrap_or_default();
        let last = resolved.links.len().saturating_sub(1);
        let start = (0..last)
            .rev()
            .find(|&i| {
                let key = SessionKey::new(namespace, &resolved.token, ep, &resolved.links[..=i]);
                self.cache.get(&key, now).is_some()
            })
            .map_or(0, |i| i + 1);
        for link in &resolved.links[start..] {
            demand.add(Quota::of(&link.role_arn, &link.region));
        }
    }

    /// Runs `resolved`'s chain for an Identity in `namespace`. Always requests the token
    /// first, even when a cached parent makes it unnecessary for STS: the TokenRequest is
    /// Kubernetes' permission check, so revoking the controller's right to a ServiceAccount
    /// stops every chain that starts with it at once. Reuses the deepest cached parent
    /// session that has not reached its own renewal point; the target link always runs, and
    /// its session is cached only with `keep_target` (an Identity whose other identities chain
    /// from this one).
    pub async fn run_chain<E, F, Fut>(
        &self,
        namespace: &str,
        resolved: &Resolved,
        now: Timestamp,
        keep_target: bool,
        token: F,
    ) -> Result<Session, E>
    where
        E: From<StsError>,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<String, E>>,
    {
        let Some(last) = resolved.links.len().checked_sub(1) else {
            return Err(E::from(StsError::NoCredentials {
                action: "AssumeRole",
                role: String::new(),
            }));
        };
        // Each link's own endpoint (its identity's, allow-listed), else the controller's.
        let endpoint = self.settings.endpoint.as_ref();
        let keys: Vec<SessionKey> = (0..=last)
            .map(|i| {
                let ep = endpoint.map(String::as_str).unwrap_or_default();
                SessionKey::new(namespace, &resolved.token, ep, &resolved.links[..=i])
            })
            .collect();
        let jwt = token().await?;
        // Identities sharing a parent serialize on it, so a burst of them makes one exchange
        // for the parent, not one each; the target links then run in parallel.
        let guard = match last {
            0 => None,
            _ => Some(self.cache.lock(&keys[last - 1]).await),
        };
        // Deepest cached parent (never the target itself).
        let cached = (0..last)
            .rev()
            .find_map(|i| self.cache.get(&keys[i], now).map(|s| (i + 1, s)));
        let Some((start, parent)) = cached else {
            return self
                .walk(resolved, &keys, (endpoint, &jwt), (now, keep_target), (0, None), guard)
                .await
                .map_err(|(_, e)| E::from(e));
        };
        match self
            .walk(
                resolved,
                &keys,
                (endpoint, &jwt),
                (now, keep_target),
                (start, Some(parent)),
                guard,
            )
            .await
        {
            Ok(session) => Ok(session),
            // The link that used the cached parent failed: the parent may have been revoked
            // (AWS answers AccessDenied) or expired early. Drop it and try once more from
            // the token; only that answer is classified.
            // Not for `Throttling`: the parent is fine, STS is busy.
            Err((failed, e)) if failed == start && !is_throttled(&e) => {
                self.cache.remove(&keys[start - 1]);
                tracing::info!(namespace, role = %resolved.links[start].role_arn, reason = e.reason(), "a cached parent session failed; retrying once from the token");
                let guard = Some(self.cache.lock(&keys[last - 1]).await);
                self.walk(resolved, &keys, (endpoint, &jwt), (now, keep_target), (0, None), guard)
                    .await
                    .map_err(|(_, e)| E::from(e))
            }
            Err((_, e)) => Err(E::from(e)),
        }
    }

    /// Runs the links of `resolved` from `start`, with `parent` the session before it (none
    /// at 0); each session obtained is cached. `guard` (the lock on the target's parent) is
    /// released before the target link. A failure comes with the index of its link.
    async fn walk(
        &self,
        resolved: &Resolved,
        keys: &[SessionKey],
        (endpoint, jwt): (Option<&String>, &str),
        (now, keep_target): (Timestamp, bool),
        (start, mut parent): (usize, Option<Session>),
        mut guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Result<Session, (usize, StsError)> {
        let last = resolved.links.len().saturating_sub(1);
        for (i, link) in resolved.links.iter().enumerate().skip(start) {
            if i == last {
                drop(guard.take());
            }
            let name = link
                .session_name
                .clone()
                .unwrap_or_else(|| session_name(&link.identity, now.as_second()));
            let endpoint = link.endpoint.as_ref().or(endpoint);
            let result = match &parent {
                None => {
                    self.assume_role_with_web_identity(link, endpoint, &name, jwt, now)
                        .await
                }
                Some(p) => self.assume_role(link, endpoint, &name, &p.credentials, now).await,
            };
            let session = result.map_err(|e| (i, e))?;
            // Parents only, unless `keep_target`: the target always runs again, and keeping
            // every Identity's own credentials would cost memory per Identity for nothing.
            if i < last || keep_target {
                self.cache.put(keys[i].clone(), session.clone());
            }
            parent = Some(session);
        }
        parent.ok_or_else(|| {
            (
                last,
                StsError::NoCredentials {
                    action: "AssumeRole",
                    role: resolved.links[last].role_arn.clone(),
                },
            )
        })
    }

    fn config(&self, region: &str, endpoint: Option<&String>) -> aws_sdk_sts::config::Builder {
        let mut b = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .http_client(self.http.clone())
            // Retries are ours (`call`), so each attempt waits for the rate limit.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(self.settings.operation_timeout)
                    .build(),
            );
        if let Some(ep) = endpoint {
            b = b.endpoint_url(ep);
        }
        b
    }

    async fn assume_role_with_web_identity(
        &self,
        link: &Link,
        endpoint: Option<&String>,
        name: &str,
        jwt: &str,
        now: Timestamp,
    ) -> Result<Session, StsError> {
        const ACTION: &str = "AssumeRoleWithWebIdentity";
        // No credentials provider: the operation is unsigned.
        let client = aws_sdk_sts::Client::from_conf(self.config(&link.region, endpoint).build());
        let out = self
            .call(ACTION, (link, endpoint), || {
                client
                    .assume_role_with_web_identity()
                    .role_arn(&link.role_arn)
                    .role_session_name(name)
                    .web_identity_token(jwt)
                    .set_duration_seconds(link.duration_seconds)
                    .send()
            })
            .await?;
        session(
            ACTION,
            link,
            name,
            out.credentials,
            out.assumed_role_user.map(|u| u.arn),
            now,
        )
    }

    async fn assume_role(
        &self,
        link: &Link,
        endpoint: Option<&String>,
        name: &str,
        parent: &Credentials,
        now: Timestamp,
    ) -> Result<Session, StsError> {
        const ACTION: &str = "AssumeRole";
        let creds = AwsCredentials::new(
            parent.access_key_id.clone(),
            parent.secret_access_key.clone(),
            Some(parent.session_token.clone()),
            Some(parent.expiration.into()),
            "atmos-auth-controller-parent",
        );
        let client =
            aws_sdk_sts::Client::from_conf(self.config(&link.region, endpoint).credentials_provider(creds).build());
        let out = self
            .call(ACTION, (link, endpoint), || {
                client
                    .assume_role()
                    .role_arn(&link.role_arn)
                    .role_session_name(name)
                    .set_duration_seconds(link.duration_seconds)
                    .set_external_id(link.external_id.clone())
                    .send()
            })
            .await?;
        session(
            ACTION,
            link,
            name,
            out.credentials,
            out.assumed_role_user.map(|u| u.arn),
            now,
        )
    }

    /// One STS call with the rate limit: it spends the turn's prepayment for its account and
    /// region (or waits for that bucket's next slot). A `Throttling` answer backs that
    /// account's rate off in that region and ends the call: the refresh goes back in line for
    /// the account's budget, holding no slot while it waits (`decide::requeue`). Whether the
    /// endpoint answered goes to the budget's health: a call without an answer, timed out or
    /// answered with a 5xx marks it down for everyone (and is not retried here: parked
    /// refreshes wait for a probe's answer).
    async fn call<T, E, R, F, Fut>(
        &self,
        action: &'static str,
        (link, endpoint): (&Link, Option<&String>),
        send: F,
    ) -> Result<T, StsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HasStatus,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
    {
        let key = endpoint_key(endpoint, &link.region);
        let quota = Quota::of(&link.role_arn, &link.region);
        self.limiter.acquire(&quota).await;
        let started = Instant::now();
        let out = send().await;
        self.observe(action, &out, started);
        let err = match out {
            Ok(v) => {
                self.limiter.passed(&quota);
                self.report(&key, true);
                return Ok(v);
            }
            Err(e) => to_error(action, &link.role_arn, e),
        };
        self.report(&key, !err.endpoint_down());
        if is_throttled(&err) {
            self.limiter.throttled(&quota);
            if let Some(o) = &self.observer {
                o.throttled(&link.region);
            }
        }
        Err(err)
    }

    fn report(&self, endpoint: &str, answered: bool) {
        match (&self.reports, answered) {
            (Some(r), true) => r.answered(endpoint),
            (Some(r), false) => r.failed(endpoint),
            (None, _) => {}
        }
    }

    fn observe<T, E: ProvideErrorMetadata, R>(
        &self,
        action: &'static str,
        out: &Result<T, SdkError<E, R>>,
        started: Instant,
    ) {
        if let Some(o) = &self.observer {
            let outcome = match out {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.code().unwrap_or("transport").to_owned(),
            };
            o.sts_call(action, &outcome, started.elapsed());
        }
    }
}

fn session(
    action: &'static str,
    link: &Link,
    name: &str,
    creds: Option<aws_sdk_sts::types::Credentials>,
    arn: Option<String>,
    issued: Timestamp,
) -> Result<Session, StsError> {
    let c = creds.ok_or_else(|| StsError::NoCredentials {
        action,
        role: link.role_arn.clone(),
    })?;
    let expiration = Timestamp::from_second(c.expiration.secs()).map_err(|_| StsError::NoCredentials {
        action,
        role: link.role_arn.clone(),
    })?;
    // Written out, they would replace working credentials with dead ones.
    if expiration <= issued {
        return Err(StsError::ExpiredOnArrival {
            action,
            role: link.role_arn.clone(),
            expiration: crate::util::time::rfc3339(expiration),
        });
    }
    Ok(Session {
        credentials: Credentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            expiration,
        },
        assumed_role_arn: arn.unwrap_or_else(|| link.role_arn.clone()),
        session_name: name.to_owned(),
        issued,
    })
}

fn to_error<E, R>(action: &'static str, role: &str, err: SdkError<E, R>) -> StsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let status = err.raw_response().map(HasStatus::status);
    match err.code() {
        Some(code) => StsError::Rejected {
            action,
            role: role.to_owned(),
            code: code.to_owned(),
            message: crate::util::redact::redact(err.message().unwrap_or_default()),
            status,
        },
        None => {
            let role = role.to_owned();
            let detail = crate::util::redact::redact(&format!("{}", DisplayErrorContext(&err)));
            match &err {
                SdkError::TimeoutError(_) => StsError::Timeout { action, role, detail },
                SdkError::DispatchFailure(d) if d.is_timeout() => StsError::Timeout { action, role, detail },
                // An answer came, but not one the SDK could read as STS's.
                SdkError::ResponseError(_) | SdkError::ServiceError(_) => {
                    StsError::BadResponse { action, role, detail }
                }
                _ => StsError::Transport { action, role, detail },
            }
        }
    }
}

/// What an endpoint's health is kept by: the configured URL, else AWS's regional endpoint.
pub fn endpoint_key(endpoint: Option<&String>, region: &str) -> String {
    endpoint
        .cloned()
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
}

/// Whether STS said "slow down".
pub(crate) fn is_throttled(e: &StsError) -> bool {
    e.throttled()
}

/// The HTTP status of a raw response.
pub trait HasStatus {
    /// Status code.
    fn status(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}
