//! What the operator allows profiles to ask for, and the defaults of resolution. Part of the
//! resolver's input, set by the operator's flags (`run`, `validate`, `import`), never by
//! a profile.

/// Token audience when a provider names none, and the default allow-list.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// Region when neither a link nor its parents name one (Atmos's default).
pub const DEFAULT_REGION: &str = "us-east-1";
/// Shortest role session AWS grants, seconds.
pub const AWS_MIN_SESSION_SECONDS: i64 = 900;
/// Shortest token the TokenRequest API grants, seconds.
pub const MIN_TOKEN_SECONDS: i64 = 600;
/// The one provider kind the controller runs.
pub const PROVIDER_KIND: &str = "kubernetes/oidc";
/// Operator settings that shape what a profile may ask for. They come from the
/// controller's configuration, never from a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Token audiences a provider may request. Default `[DEFAULT_AUDIENCE]`.
    pub allowed_audiences: Vec<String>,
    /// `spec.endpoint_url` values an operator allow-listed (default none: refused).
    pub allowed_endpoints: Vec<String>,
    /// Shortest session a link may request, seconds. AWS: 900. Lowered only by a test
    /// setting so tests can watch several renewals.
    pub min_session_seconds: i64,
    /// Shortest token a provider may request, seconds (TokenRequest minimum: 600).
    pub min_token_seconds: i64,
    /// Region of a link when neither it nor a parent link names one in `principal.region`
    /// (Atmos: `us-east-1`; a provider's `region` is not used).
    pub default_region: String,
    /// `refreshBefore` for Identities that set none, seconds; `None`: two thirds of the session.
    pub default_refresh_before_seconds: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allowed_audiences: vec![DEFAULT_AUDIENCE.to_owned()],
            allowed_endpoints: Vec::new(),
            min_session_seconds: AWS_MIN_SESSION_SECONDS,
            min_token_seconds: MIN_TOKEN_SECONDS,
            default_region: DEFAULT_REGION.to_owned(),
            default_refresh_before_seconds: None,
        }
    }
}
