//! Session credentials as STS returns them. `Debug` is redacted so a stray `{:?}` in a log
//! line or error can never print a secret.

use std::fmt;

use jiff::Timestamp;

/// One STS session.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `ASIA...` key id (not secret, but kept out of logs anyway).
    pub access_key_id: String,
    /// Secret key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
    /// When STS says the session ends.
    pub expiration: Timestamp,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .finish()
    }
}
