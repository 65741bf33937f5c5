//! Sessions the local STS has issued, kept in memory so signed calls can be verified.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use rand::RngExt as _;
use sha2::{Digest, Sha256};

/// IAM's unique-ID alphabet (upper-case letters and the base32 digits).
const ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Expired sessions are kept this long so that they answer `ExpiredToken`, not
/// `InvalidClientTokenId`.
const KEEP_EXPIRED: SignedDuration = SignedDuration::from_hours(24);

/// One issued role session.
#[derive(Clone)]
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: Timestamp,
    pub account: String,
    pub role_arn: String,
    pub role_name: String,
    pub role_id: String,
    pub session_name: String,
}

impl Session {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`
    pub fn assumed_role_arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            self.account, self.role_name, self.session_name
        )
    }

    /// `AROA…:SESSION`
    pub fn assumed_role_id(&self) -> String {
        format!("{}:{}", self.role_id, self.session_name)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expiration
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .field("arn", &self.assumed_role_arn())
            .finish()
    }
}

/// What a new session is for.
pub struct SessionRequest<'a> {
    pub account: &'a str,
    pub role_arn: &'a str,
    pub role_name: &'a str,
    pub session_name: &'a str,
    pub duration_seconds: u32,
}

#[derive(Default)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Every session ever issued, never pruned: tests search logs for their secrets.
    issued: Mutex<Vec<Arc<Session>>>,
}

impl SessionStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Mints fresh credentials for a role session and remembers them.
    pub fn issue(&self, request: &SessionRequest<'_>, now: Timestamp) -> Arc<Session> {
        let mut rng = rand::rng();
        let mut secret = [0u8; 30];
        rng.fill(&mut secret[..]);
        let mut token = [0u8; 120];
        rng.fill(&mut token[..]);
        let expiration = now
            .checked_add(SignedDuration::from_secs(i64::from(request.duration_seconds)))
            .unwrap_or(Timestamp::MAX);
        let session = Arc::new(Session {
            access_key_id: format!("ASIA{}", random_id(&mut rng, 16)),
            secret_access_key: base64::engine::general_purpose::STANDARD.encode(secret),
            session_token: base64::engine::general_purpose::STANDARD.encode(token),
            expiration: ceil_to_second(expiration),
            account: request.account.to_owned(),
            role_arn: request.role_arn.to_owned(),
            role_name: request.role_name.to_owned(),
            role_id: role_id(request.role_arn),
            session_name: request.session_name.to_owned(),
        });
        let mut sessions = self.lock();
        sessions.retain(|_, s| {
            s.expiration
                .checked_add(KEEP_EXPIRED)
                .is_ok_and(|keep_until| keep_until > now)
        });
        sessions.insert(session.access_key_id.clone(), session.clone());
        self.issued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(session.clone());
        session
    }

    /// Every session issued so far, expired ones included.
    pub fn issued(&self) -> Vec<Arc<Session>> {
        self.issued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn get(&self, access_key_id: &str) -> Option<Arc<Session>> {
        self.lock().get(access_key_id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The access key ids of every session held.
    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// A stable `AROA` + 17 character unique ID for a role, derived from its ARN.
pub fn role_id(role_arn: &str) -> String {
    let digest = Sha256::digest(role_arn.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| char::from(ID_ALPHABET[usize::from(b % 32)]))
        .collect();
    format!("AROA{tail}")
}

fn random_id(rng: &mut impl rand::RngExt, len: usize) -> String {
    (0..len)
        .map(|_| char::from(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())]))
        .collect()
}

/// Whole seconds, rounded up, so a session never lasts less than asked.
fn ceil_to_second(ts: Timestamp) -> Timestamp {
    let seconds = ts.as_second() + i64::from(ts.subsec_nanosecond() > 0);
    Timestamp::from_second(seconds).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_aws_shaped_credentials() {
        let store = SessionStore::default();
        let now = Timestamp::now();
        let s = store.issue(
            &SessionRequest {
                account: "123456789012",
                role_arn: "arn:aws:iam::123456789012:role/admin",
                role_name: "admin",
                session_name: "s1",
                duration_seconds: 900,
            },
            now,
        );
        assert_eq!(s.access_key_id.len(), 20);
        assert!(s.access_key_id.starts_with("ASIA"));
        assert_eq!(s.secret_access_key.len(), 40);
        assert_eq!(s.role_id.len(), 21);
        assert!(s.role_id.starts_with("AROA"));
        assert_eq!(s.assumed_role_arn(), "arn:aws:sts::123456789012:assumed-role/admin/s1");
        let expected = now.as_second() + 900 + i64::from(now.subsec_nanosecond() > 0);
        assert_eq!(s.expiration.as_second(), expected);
        assert!(store.get(&s.access_key_id).is_some());
        assert!(!format!("{s:?}").contains(&s.secret_access_key));
        assert_eq!(role_id("arn:aws:iam::1:role/a"), role_id("arn:aws:iam::1:role/a"));
    }
}
