//! What the operator allows profiles to ask for, and the defaults of resolution. Part of the
//! resolver's input, set by the operator's flags (`run`, `validate`, `import`), never by
//! a profile.

/// Token audience when a provider names none.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// The allow-list entry (and default) that stands for AWS STS's audiences: the global
/// `sts.amazonaws.com` and every regional `sts.<region>.amazonaws.com`
/// (`sts.cn-<...>.amazonaws.com.cn` in China). Atmos's examples use the regional ones.
pub const AWS_STS_AUDIENCES: &str = "aws-sts";
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
    /// Token audiences a provider may request; [`AWS_STS_AUDIENCES`] stands for all of
    /// AWS STS's. Default `[AWS_STS_AUDIENCES]`.
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
            allowed_audiences: vec![AWS_STS_AUDIENCES.to_owned()],
            allowed_endpoints: Vec::new(),
            min_session_seconds: AWS_MIN_SESSION_SECONDS,
            min_token_seconds: MIN_TOKEN_SECONDS,
            default_region: DEFAULT_REGION.to_owned(),
            default_refresh_before_seconds: None,
        }
    }
}

impl Settings {
    /// Whether a provider may request tokens for `audience`.
    pub fn audience_allowed(&self, audience: &str) -> bool {
        self.allowed_audiences.iter().any(|a| match a.as_str() {
            AWS_STS_AUDIENCES => is_aws_sts_audience(audience),
            exact => exact == audience,
        })
    }

    /// The allow-list for a message: `aws-sts (sts.amazonaws.com and sts.<region>.amazonaws.com), x`.
    pub fn allowed_audiences_text(&self) -> String {
        if self.allowed_audiences.is_empty() {
            return "no audience".to_owned();
        }
        self.allowed_audiences
            .iter()
            .map(|a| match a.as_str() {
                AWS_STS_AUDIENCES => {
                    format!("{AWS_STS_AUDIENCES} ({DEFAULT_AUDIENCE} and sts.<region>.amazonaws.com)")
                }
                other => other.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// AWS STS's audiences: `sts.amazonaws.com`, `sts.<region>.amazonaws.com`, and in China
/// `sts.cn-<...>.amazonaws.com.cn`.
pub fn is_aws_sts_audience(audience: &str) -> bool {
    if audience == DEFAULT_AUDIENCE {
        return true;
    }
    let Some(rest) = audience.strip_prefix("sts.") else {
        return false;
    };
    let region = match rest.strip_suffix(".amazonaws.com.cn") {
        Some(region) if region.starts_with("cn-") => region,
        Some(_) => return false,
        None => match rest.strip_suffix(".amazonaws.com") {
            Some(region) => region,
            None => return false,
        },
    };
    super::rules::check_region(region).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_sts_stands_for_the_global_and_regional_audiences() {
        let settings = Settings::default();
        for ok in [
            "sts.amazonaws.com",
            "sts.us-east-1.amazonaws.com",
            "sts.eu-central-2.amazonaws.com",
            "sts.us-gov-west-1.amazonaws.com",
            "sts.cn-north-1.amazonaws.com.cn",
        ] {
            assert!(settings.audience_allowed(ok), "{ok}");
        }
        for refused in [
            "sts.amazonaws.com.evil.example",
            "sts..amazonaws.com",
            "sts.US-EAST-1.amazonaws.com",
            "sts.us-east-1.amazonaws.com.cn",
            "evil.sts.us-east-1.amazonaws.com",
            "sts.a.b.amazonaws.com",
            "https://kubernetes.default.svc",
            "aws-sts",
            "",
        ] {
            assert!(!settings.audience_allowed(refused), "{refused}");
        }
        // An operator's explicit list means exactly that list.
        let strict = Settings {
            allowed_audiences: vec![DEFAULT_AUDIENCE.to_owned()],
            ..Settings::default()
        };
        assert!(strict.audience_allowed("sts.amazonaws.com"));
        assert!(!strict.audience_allowed("sts.us-east-1.amazonaws.com"));
        assert_eq!(
            settings.allowed_audiences_text(),
            "aws-sts (sts.amazonaws.com and sts.<region>.amazonaws.com)"
        );
    }
}
