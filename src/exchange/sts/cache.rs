//! Parent sessions shared between Identities. The key holds everything that shapes a
//! session, so nothing is shared across namespaces, ServiceAccounts or endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::Session;
use crate::resolve::{Link, TokenSource};

/// Everything that shapes the session at the end of a chain prefix: role, duration, external
/// id, region, session naming and the link's own endpoint.
type LinkKey = (
    String,
    Option<i32>,
    Option<String>,
    String,
    SessionNaming,
    Option<String>,
);

/// Where a link's session name comes from. The default name carries the link's identity
/// name (and a timestamp, left out of the key so parents stay shared): two identities that
/// assume the same role get separate sessions, so an audit trail never shows one under the
/// other's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SessionNaming {
    /// `principal.session_name`, as given.
    Explicit(String),
    /// Atmos's default name for this identity.
    Default(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    namespace: String,
    service_account: String,
    audience: String,
    /// The controller's endpoint, which links without their own use.
    endpoint: String,
    /// (role, duration, external id, region, session naming, endpoint) per link up to this one.
    links: Vec<LinkKey>,
}

impl SessionKey {
    /// Key of the session obtained after `links` (a prefix of a chain).
    pub fn new(namespace: &str, token: &TokenSource, endpoint: &str, links: &[Link]) -> Self {
        Self {
            namespace: namespace.to_owned(),
            service_account: token.service_account.clone(),
            audience: token.audience.clone(),
            endpoint: endpoint.to_owned(),
            links: links
                .iter()
                .map(|l| {
                    (
                        l.role_arn.clone(),
                        l.duration_seconds,
                        l.external_id.clone(),
                        l.region.clone(),
                        match &l.session_name {
                            Some(name) => SessionNaming::Explicit(name.clone()),
                            None => SessionNaming::Default(l.identity.clone()),
                        },
                        l.endpoint.clone(),
                    )
                })
                .collect(),
        }
    }
}

/// Sessions by key, each usable until its own renewal point (two thirds of its lifetime), so
/// a reused parent always has a third of its life left.
#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<SessionKey, Session>>,
    locks: Mutex<HashMap<SessionKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl SessionCache {
    /// A session still before its renewal point.
    pub fn get(&self, key: &SessionKey, now: Timestamp) -> Option<Session> {
        let mut map = self.entries.lock().ok()?;
        // Drop whatever has aged out while we hold the lock: the map stays small.
        map.retain(|_, s| usable(s, now));
        map.get(key).cloned()
    }

    /// Serializes the making of the session at `key`: callers that find it missing wait
    /// for the first one, then find it cached.
    pub async fn lock(&self, key: &SessionKey) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = match self.locks.lock() {
            Ok(mut locks) => {
                // Keys no one holds or waits on are dropped, so the map stays small.
                locks.retain(|_, l| Arc::strong_count(l) > 1);
                locks.entry(key.clone()).or_default().clone()
            }
            Err(_) => Arc::default(),
        };
        lock.lock_owned().await
    }

    /// Forgets a session (a call made with it failed: it may have been revoked).
    pub fn remove(&self, key: &SessionKey) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(key);
        }
    }

    /// Remembers a session.
    pub fn put(&self, key: SessionKey, session: Session) {
        if let Ok(mut map) = self.entries.lock() {
            map.insert(key, session);
        }
    }

    /// Number of sessions held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when empty.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(super) fn usable(s: &Session, now: Timestamp) -> bool {
    let lifetime = s.credentials.expiration.as_second() - s.issued.as_second();
    now.as_second()
        < s.issued.as_second() + (lifetime as f64 * crate::exchange::renewal::DEFAULT_RENEWAL_FRACTION).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::credentials::Credentials;

    fn link(role: &str) -> Link {
        Link {
            identity: "a".into(),
            role_arn: role.into(),
            session_name: None,
            external_id: None,
            duration_seconds: Some(3600),
            region: "us-east-1".into(),
            endpoint: None,
        }
    }
    fn token(sa: &str) -> TokenSource {
        TokenSource {
            provider: "p".into(),
            service_account: sa.into(),
            audience: "sts.amazonaws.com".into(),
            expiration_seconds: 600,
        }
    }
    fn session(issued: i64, expires: i64) -> Session {
        Session {
            credentials: Credentials {
                access_key_id: "k".into(),
                secret_access_key: "s".into(),
                session_token: "t".into(),
                expiration: Timestamp::from_second(expires).unwrap(),
            },
            assumed_role_arn: "arn".into(),
            session_name: "n".into(),
            issued: Timestamp::from_second(issued).unwrap(),
        }
    }

    #[test]
    fn keys_separate_tenants_and_endpoints() {
        let l = [link("arn:aws:iam::123456789012:role/a")];
        let base = SessionKey::new("ns1", &token("sa"), "", &l);
        assert_ne!(base, SessionKey::new("ns2", &token("sa"), "", &l));
        assert_ne!(base, SessionKey::new("ns1", &token("other"), "", &l));
        assert_ne!(base, SessionKey::new("ns1", &token("sa"), "http://x", &l));
        assert_eq!(base, SessionKey::new("ns1", &token("sa"), "", &l));
        // A link's own endpoint (its identity's spec.endpoint_url) is part of the key.
        let own = [Link {
            endpoint: Some("http://x".into()),
            ..link("arn:aws:iam::123456789012:role/a")
        }];
        assert_ne!(base, SessionKey::new("ns1", &token("sa"), "", &own));
        // No duration sent (an unparseable one) is not the default duration sent.
        let unsent = [Link {
            duration_seconds: None,
            ..link("arn:aws:iam::123456789012:role/a")
        }];
        assert_ne!(base, SessionKey::new("ns1", &token("sa"), "", &unsent));
    }

    #[test]
    fn default_session_names_keep_identities_apart() {
        let role = "arn:aws:iam::123456789012:role/a";
        let named = |identity: &str, session: Option<&str>| Link {
            identity: identity.into(),
            session_name: session.map(str::to_owned),
            ..link(role)
        };
        let key = |l: Link| SessionKey::new("ns", &token("sa"), "", &[l]);
        // Same role, default names: the session name says the identity, so no sharing.
        assert_ne!(key(named("acme/admin", None)), key(named("team/admin", None)));
        // The same identity shares its parent (the timestamp is not part of the key).
        assert_eq!(key(named("acme/admin", None)), key(named("acme/admin", None)));
        // An explicit name is what the audit trail shows, whoever asks.
        assert_eq!(
            key(named("acme/admin", Some("ci"))),
            key(named("team/admin", Some("ci")))
        );
        assert_ne!(key(named("acme/admin", Some("ci"))), key(named("acme/admin", None)));
    }

    #[tokio::test]
    async fn the_lock_serializes_one_key_only() {
        let cache = std::sync::Arc::new(SessionCache::default());
        let a = SessionKey::new("ns", &token("sa"), "", &[link("a")]);
        let b = SessionKey::new("ns", &token("sa"), "", &[link("b")]);
        let held = cache.lock(&a).await;
        // Another key is free while `a` is held; `a` itself waits.
        let other = tokio::time::timeout(std::time::Duration::from_millis(100), cache.lock(&b)).await;
        assert!(other.is_ok());
        let same = tokio::time::timeout(std::time::Duration::from_millis(100), cache.lock(&a)).await;
        assert!(same.is_err());
        drop(held);
        let again = tokio::time::timeout(std::time::Duration::from_millis(100), cache.lock(&a)).await;
        assert!(again.is_ok());
    }

    #[test]
    fn sessions_expire_at_two_thirds() {
        let cache = SessionCache::default();
        let key = SessionKey::new("ns", &token("sa"), "", &[link("r")]);
        cache.put(key.clone(), session(1000, 1000 + 3600));
        assert!(cache.get(&key, Timestamp::from_second(1000 + 2399).unwrap()).is_some());
        assert!(cache.get(&key, Timestamp::from_second(1000 + 2400).unwrap()).is_none());
        assert!(cache.is_empty());
    }
}
