//! What the operator allows profiles to ask for, and the defaults of resolution. Part of the
//! resolver's input, set by the operator's flags (`run`, `validate`, `import`), never by
//! a profile.

/// Token audience when a provider names none.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// The allow-list entry (and default) that stands for AWS STS's audiences: the global
/// `sts.amazonaws.com` and every regional `sts.<region>.amazonaws.com`
/// (`sts.cn-<...>.amazonaws.com.cn` in China). Atmos's examples use the regional ones.
pub const AWS_STS_AUDIENCES: &str = "aws-sts";
/// Token audience of an `azure/oidc` provider that names none (Atmos's default, Entra's
/// audience for federated credentials).
pub const AZURE_DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Entra authority hosts of Atmos's `cloud_environment`s (its
/// `pkg/auth/cloud/azure/cloud_environments.go`): the default operator allow-list.
pub const AZURE_AUTHORITY_HOSTS: [(&str, &str); 3] = [
    ("public", "https://login.microsoftonline.com/"),
    ("usgovernment", "https://login.microsoftonline.us/"),
    ("china", "https://login.chinacloudapi.cn/"),
];
/// Token audiences of GCP workload identity pool providers: every pool provider's full
/// resource name (Atmos's default audience for `gcp/workload-identity-federation`).
pub const GCP_POOL_PROVIDER_AUDIENCES: &str =
    "//iam.googleapis.com/projects/*/locations/global/workloadIdentityPools/*/providers/*";
/// Google STS's token exchange URL (Atmos's), the default operator setting.
pub const GCP_STS_URL: &str = "https://sts.googleapis.com/v1/token";
/// IAM Credentials' base URL, the default operator setting.
pub const GCP_IAM_CREDENTIALS_URL: &str = "https://iamcredentials.googleapis.com/";
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
    /// AWS STS's; `*` in an entry stands for any run of characters other than `/` (one path
    /// segment). Default `[AWS_STS_AUDIENCES, AZURE_DEFAULT_AUDIENCE, GCP_POOL_PROVIDER_AUDIENCES]`.
    pub allowed_audiences: Vec<String>,
    /// Entra authority host per Atmos `cloud_environment` (`public`, `usgovernment`, `china`):
    /// where the controller exchanges tokens and what pods get as `AZURE_AUTHORITY_HOST`. A
    /// profile only names the environment, never the host. Default [`AZURE_AUTHORITY_HOSTS`].
    pub azure_authority_hosts: Vec<(String, String)>,
    /// Google STS's token URL: where the controller exchanges GCP tokens and what pods get as
    /// `token_url`. Never a profile's. Default [`GCP_STS_URL`].
    pub gcp_sts_url: String,
    /// IAM Credentials' base URL, ending in `/`: impersonation at issue and in pods'
    /// `service_account_impersonation_url`. Default [`GCP_IAM_CREDENTIALS_URL`].
    pub gcp_iam_credentials_url: String,
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
            allowed_audiences: vec![
                AWS_STS_AUDIENCES.to_owned(),
                AZURE_DEFAULT_AUDIENCE.to_owned(),
                GCP_POOL_PROVIDER_AUDIENCES.to_owned(),
            ],
            azure_authority_hosts: AZURE_AUTHORITY_HOSTS
                .iter()
                .map(|(env, host)| ((*env).to_owned(), (*host).to_owned()))
                .collect(),
            gcp_sts_url: GCP_STS_URL.to_owned(),
            gcp_iam_credentials_url: GCP_IAM_CREDENTIALS_URL.to_owned(),
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
            pattern => audience_matches(pattern, audience),
        })
    }

    /// The authority host the operator set for `cloud_environment`, if any.
    pub fn azure_authority_host(&self, cloud_environment: &str) -> Option<&str> {
        self.azure_authority_hosts
            .iter()
            .find(|(env, _)| env == cloud_environment)
            .map(|(_, host)| host.as_str())
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

/// Whether `audience` matches an allow-list entry: equal, or with each `*` standing for any
/// run of characters other than `/`, so `//iam.googleapis.com/projects/*/locations/global/...`
/// allows any project's pool provider and nothing beyond one path segment.
pub fn audience_matches(pattern: &str, audience: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == audience;
    }
    let (mut p, mut a) = (pattern.split('/'), audience.split('/'));
    loop {
        match (p.next(), a.next()) {
            (None, None) => return true,
            (Some(ps), Some(aseg)) if segment_matches(ps.as_bytes(), aseg.as_bytes()) => {}
            _ => return false,
        }
    }
}

/// Wildcard match of one segment (`*`: any run of bytes), the two-pointer way: on a
/// mismatch, the last `*` takes one more byte. At most pattern × segment steps.
fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
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
            format!(
                "aws-sts (sts.amazonaws.com and sts.<region>.amazonaws.com), api://AzureADTokenExchange, \
                 {GCP_POOL_PROVIDER_AUDIENCES}"
            )
        );
    }

    #[test]
    fn entra_audience_is_allowed_by_default_and_nothing_like_it() {
        let settings = Settings::default();
        assert!(settings.audience_allowed(AZURE_DEFAULT_AUDIENCE));
        for refused in [
            "api://AzureADTokenExchange/",
            "api://azureadtokenexchange",
            "api://AzureADTokenExchangeX",
        ] {
            assert!(!settings.audience_allowed(refused), "{refused}");
        }
    }

    #[test]
    fn a_star_stands_for_one_path_segment() {
        let gcp = "//iam.googleapis.com/projects/*/locations/global/workloadIdentityPools/*/providers/*";
        assert!(audience_matches(
            gcp,
            "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/k8s"
        ));
        for refused in [
            "//iam.googleapis.com/projects/1/2/locations/global/workloadIdentityPools/p/providers/q",
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q/x",
            "//evil.example/projects/1/locations/global/workloadIdentityPools/p/providers/q",
        ] {
            assert!(!audience_matches(gcp, refused), "{refused}");
        }
        assert!(audience_matches("api://*-exchange", "api://team-a-exchange"));
        assert!(audience_matches("api://a*b*c", "api://aXbYbZc"));
        assert!(!audience_matches("api://a*b*c", "api://aXbYbZ"));
        assert!(audience_matches("api://*", "api://"));
        assert!(!audience_matches("api://*", "api://x/y"));
        assert!(!audience_matches("exact", "exactly"));
    }
}
