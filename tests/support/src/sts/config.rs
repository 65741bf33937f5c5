//! The local STS's configuration: the accounts, AWS's session limits and one trust policy per
//! role, read from a small YAML file.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// AWS's minimum `DurationSeconds`.
pub const AWS_MIN_SESSION_SECONDS: u32 = 900;
/// AWS's default (and, for role chaining, maximum) session length.
pub const AWS_DEFAULT_SESSION_SECONDS: u32 = 3600;
/// AWS's largest `MaxSessionDuration` a role can have.
pub const AWS_MAX_SESSION_SECONDS: u32 = 43_200;

/// The whole configuration of a local STS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsConfig {
    /// The 12-digit AWS account roles live in.
    pub account: String,
    /// Further accounts whose roles this STS serves too (as AWS's one STS serves every
    /// account), each 12 digits.
    #[serde(default)]
    pub other_accounts: Vec<String>,
    /// Smallest accepted `DurationSeconds` (AWS: 900). Tests lower it for short sessions.
    #[serde(default = "default_min_session_seconds")]
    pub min_session_seconds: u32,
    /// Longest session of a chained `AssumeRole` (AWS: 1 hour).
    #[serde(default = "default_session_seconds")]
    pub max_chained_session_seconds: u32,
    /// The audiences (client IDs) of the account's IAM OIDC provider for the issuer. A token
    /// whose `aud` names none of them is an `InvalidIdentityToken`; an audience listed here but
    /// not in a role's trust policy is `AccessDenied`. Default: every audience a role trusts.
    #[serde(default)]
    pub oidc_client_ids: Option<Vec<String>>,
    /// Port to listen on (127.0.0.1); absent or 0: any free port.
    #[serde(default)]
    pub port: Option<u16>,
    /// A request quota, as AWS's per-account one: beyond it calls are answered `Throttling`.
    /// Absent: no limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Request quotas per account (AWS's quota is per account and region), charged to the
    /// account of the `RoleArn` a call names; beyond one, that account's calls are answered
    /// `Throttling` and the others' are not. Also settable while running
    /// ([`crate::sts::LocalSts::set_account_rate_limit`]).
    #[serde(default)]
    pub account_rate_limits: BTreeMap<String, RateLimit>,
    /// Lifetime of the registry tokens ECR's `GetAuthorizationToken` issues, seconds
    /// (AWS: 12 hours). Tests shorten it to watch renewal and expiry.
    #[serde(default = "default_ecr_token_seconds")]
    pub ecr_token_seconds: u32,
    pub roles: Vec<RoleConfig>,
}

/// ECR's authorization token lifetime.
pub const AWS_ECR_TOKEN_SECONDS: u32 = 43_200;

fn default_ecr_token_seconds() -> u32 {
    AWS_ECR_TOKEN_SECONDS
}

/// A token bucket over all actions: `rate` calls per second, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: u32,
}

impl Eq for RateLimit {}

/// One IAM role and its trust policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// `arn:aws:iam::ACCOUNT:role/[PATH/]NAME`
    pub arn: String,
    /// The role's `MaxSessionDuration` (AWS default 3600).
    #[serde(default = "default_session_seconds")]
    pub max_session_seconds: u32,
    /// Who may `AssumeRoleWithWebIdentity` into this role; absent: nobody.
    #[serde(default)]
    pub web_identity: Option<WebIdentityTrust>,
    /// Role ARNs whose sessions may `AssumeRole` into this role (`*` wildcards allowed).
    #[serde(default)]
    pub trusted_roles: Vec<String>,
    /// The `ExternalId` an `AssumeRole` into this role must carry, if any.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Actions the role's identity-based policies allow beyond STS's (`ecr:GetAuthorizationToken`,
    /// `ecr-public:GetAuthorizationToken`, `sts:GetServiceBearerToken`; `ecr:*` and `*` too).
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// The web-identity half of a trust policy: `StringLike` conditions on `aud` and `sub`
/// (`*` and `?` wildcards, as IAM's `StringLike`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebIdentityTrust {
    pub audiences: Vec<String>,
    pub subjects: Vec<String>,
}

fn default_min_session_seconds() -> u32 {
    AWS_MIN_SESSION_SECONDS
}

fn default_session_seconds() -> u32 {
    AWS_DEFAULT_SESSION_SECONDS
}

impl StsConfig {
    /// A configuration with AWS's limits and no roles.
    pub fn new(account: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            min_session_seconds: AWS_MIN_SESSION_SECONDS,
            max_chained_session_seconds: AWS_DEFAULT_SESSION_SECONDS,
            oidc_client_ids: None,
            port: None,
            rate_limit: None,
            other_accounts: Vec::new(),
            account_rate_limits: BTreeMap::new(),
            ecr_token_seconds: AWS_ECR_TOKEN_SECONDS,
            roles: Vec::new(),
        }
    }

    pub fn from_yaml_str(yaml: &str) -> Result<Self> {
        let config: Self = serde_saphyr::from_str(yaml).context("parsing the local STS config")?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let yaml =
            std::fs::read_to_string(path).with_context(|| format!("reading local STS config {}", path.display()))?;
        Self::from_yaml_str(&yaml).with_context(|| format!("in {}", path.display()))
    }

    /// Checks what AWS itself would refuse when the roles were created.
    pub fn validate(&self) -> Result<()> {
        for account in self.accounts() {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                bail!("account must be 12 digits, got {account:?}");
            }
        }
        let limits = self.rate_limit.iter().chain(self.account_rate_limits.values());
        if limits
            .into_iter()
            .any(|l| !(l.rate > 0.0 && l.rate.is_finite() && l.burst > 0))
        {
            bail!("rate_limit: rate and burst must be positive");
        }
        if let Some(unknown) = self
            .account_rate_limits
            .keys()
            .find(|a| !self.accounts().any(|k| k == *a))
        {
            bail!("account_rate_limits: {unknown:?} is not one of the accounts");
        }
        if self.ecr_token_seconds == 0 {
            bail!("ecr_token_seconds must be positive");
        }
        if self.min_session_seconds == 0 {
            bail!("min_session_seconds must be positive");
        }
        if self.max_chained_session_seconds < self.min_session_seconds {
            bail!("max_chained_session_seconds is below min_session_seconds");
        }
        let mut seen = HashSet::new();
        for role in &self.roles {
            let name = self
                .accounts()
                .find_map(|a| role_name(&role.arn, a).ok())
                .map_or_else(|| role_name(&role.arn, &self.account), Ok)
                .with_context(|| format!("role {:?}", role.arn))?;
            if !seen.insert(name.to_owned()) {
                bail!("role name {name:?} appears twice");
            }
            if role.max_session_seconds < self.min_session_seconds || role.max_session_seconds > AWS_MAX_SESSION_SECONDS
            {
                bail!(
                    "role {}: max_session_seconds must be between min_session_seconds ({}) and {AWS_MAX_SESSION_SECONDS}",
                    role.arn,
                    self.min_session_seconds
                );
            }
            if let Some(external_id) = &role.external_id
                && !valid_external_id(external_id)
            {
                bail!(
                    "role {}: external_id must be 2-1224 characters of [\\w+=,.@:/-]",
                    role.arn
                );
            }
        }
        Ok(())
    }

    /// Every account served: [`StsConfig::account`] first.
    pub fn accounts(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.account).chain(&self.other_accounts)
    }

    pub fn role(&self, arn: &str) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.arn == arn)
    }

    /// The OIDC provider's audiences (see [`StsConfig::oidc_client_ids`]).
    pub fn client_ids(&self) -> Vec<String> {
        match &self.oidc_client_ids {
            Some(ids) => ids.clone(),
            None => {
                let mut ids: Vec<String> = self
                    .roles
                    .iter()
                    .filter_map(|r| r.web_identity.as_ref())
                    .flat_map(|w| w.audiences.iter().cloned())
                    .collect();
                ids.sort();
                ids.dedup();
                ids
            }
        }
    }
}

/// The account of a role ARN (`arn:aws:iam::ACCOUNT:role/...`), if it is one.
pub fn account_of(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:aws:iam::")?.split(':').next()
}

impl RoleConfig {
    /// A role with AWS's default maximum session and an empty trust policy.
    pub fn new(arn: impl Into<String>) -> Self {
        Self {
            arn: arn.into(),
            max_session_seconds: AWS_DEFAULT_SESSION_SECONDS,
            web_identity: None,
            trusted_roles: Vec::new(),
            external_id: None,
            permissions: Vec::new(),
        }
    }

    /// Whether the role's policies allow `action` (`service:Action`), as IAM matches an
    /// `Action` element: exactly, `service:*` or `*`.
    pub fn allows(&self, action: &str) -> bool {
        let service = action.split(':').next().unwrap_or_default();
        self.permissions
            .iter()
            .any(|p| p == action || p == "*" || *p == format!("{service}:*"))
    }

    /// The role's name: the last segment of its ARN (the path left out).
    pub fn name(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    pub fn trusts_web_identity(&self, audience: &str, subject: &str) -> bool {
        self.web_identity.as_ref().is_some_and(|w| {
            w.audiences.iter().any(|p| string_like(p, audience)) && w.subjects.iter().any(|p| string_like(p, subject))
        })
    }

    pub fn trusts_role(&self, caller_role_arn: &str) -> bool {
        self.trusted_roles.iter().any(|p| string_like(p, caller_role_arn))
    }
}

/// The name of role `arn` in `account`, or why the ARN is not one.
fn role_name<'a>(arn: &'a str, account: &str) -> Result<&'a str> {
    let prefix = format!("arn:aws:iam::{account}:role/");
    let Some(rest) = arn.strip_prefix(&prefix) else {
        bail!("must start with {prefix}");
    };
    let name = rest.rsplit('/').next().unwrap_or(rest);
    let name_ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !name_ok {
        bail!("role name must be 1-64 characters of [\\w+=,.@-]");
    }
    Ok(name)
}

fn valid_external_id(id: &str) -> bool {
    (2..=1224).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b))
}

/// IAM's `StringLike`: `*` matches any run of characters, `?` exactly one.
pub fn string_like(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some('*') => {
                backtrack = Some((pi, vi));
                pi += 1;
            }
            Some(&c) if c == '?' || c == v[vi] => {
                pi += 1;
                vi += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    pi = star + 1;
                    vi = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
account: "123456789012"
min_session_seconds: 60
roles:
  - arn: arn:aws:iam::123456789012:role/admin
    max_session_seconds: 3600
    web_identity:
      audiences: [sts.amazonaws.com]
      subjects: ["system:serviceaccount:infra:terraform"]
    trusted_roles: []
    external_id: null
  - arn: arn:aws:iam::123456789012:role/team/network-admin
    trusted_roles: ["arn:aws:iam::123456789012:role/admin"]
    external_id: "ext-1"
"#;

    #[test]
    fn parses_the_documented_shape() {
        let config = StsConfig::from_yaml_str(YAML).unwrap();
        assert_eq!(config.min_session_seconds, 60);
        assert_eq!(config.max_chained_session_seconds, 3600);
        assert_eq!(config.roles.len(), 2);
        assert_eq!(config.roles[1].name(), "network-admin");
        assert_eq!(config.roles[1].max_session_seconds, 3600);
        assert_eq!(config.roles[1].external_id.as_deref(), Some("ext-1"));
        assert_eq!(config.client_ids(), vec!["sts.amazonaws.com".to_owned()]);
        assert!(config.roles[0].trusts_web_identity("sts.amazonaws.com", "system:serviceaccount:infra:terraform"));
        assert!(!config.roles[0].trusts_web_identity("sts.amazonaws.com", "system:serviceaccount:infra:other"));
        assert!(config.roles[1].trusts_role("arn:aws:iam::123456789012:role/admin"));
    }

    #[test]
    fn roles_in_other_accounts_and_quotas_per_account() {
        let yaml = "account: '123456789012'\nother_accounts: ['210987654321']\naccount_rate_limits:\n  '123456789012': {rate: 1.0, burst: 1}\nroles:\n  - arn: arn:aws:iam::210987654321:role/b\n";
        let config = StsConfig::from_yaml_str(yaml).unwrap();
        assert_eq!(account_of(&config.roles[0].arn), Some("210987654321"));
        let unknown =
            "account: '123456789012'\naccount_rate_limits:\n  '999999999999': {rate: 1.0, burst: 1}\nroles: []\n";
        assert!(StsConfig::from_yaml_str(unknown).is_err());
    }

    #[test]
    fn rejects_bad_configs() {
        for bad in [
            "account: '1234'\nroles: []\n",
            "account: '123456789012'\nroles:\n  - arn: arn:aws:iam::999999999999:role/x\n",
            "account: '123456789012'\nroles:\n  - arn: arn:aws:iam::123456789012:role/x\n    max_session_seconds: 50000\n",
            "account: '123456789012'\nroles:\n  - arn: arn:aws:iam::123456789012:role/x\n  - arn: arn:aws:iam::123456789012:role/p/x\n",
            "account: '123456789012'\nroles: []\nunknown: 1\n",
        ] {
            assert!(StsConfig::from_yaml_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn string_like_wildcards() {
        assert!(string_like(
            "system:serviceaccount:infra:*",
            "system:serviceaccount:infra:tf"
        ));
        assert!(string_like("a?c", "abc"));
        assert!(string_like("*", ""));
        assert!(string_like("a*b*c", "aXXbYYc"));
        assert!(!string_like("a*b*c", "aXXbYY"));
        assert!(!string_like("abc", "abcd"));
        assert!(!string_like(
            "system:serviceaccount:infra:*",
            "system:serviceaccount:other:tf"
        ));
    }
}
