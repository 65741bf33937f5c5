//! GCP chains: a `gcp/workload-identity-federation` provider (Atmos's
//! `pkg/auth/providers/gcp_wif`) with a `gcp/service-account` identity
//! (`pkg/auth/identities/gcp_service_account`) and, on either, a `gcp/project` identity
//! (`pkg/auth/identities/gcp_project`), checked into one [`GcpTarget`]: the pool provider,
//! the service account impersonated (with its delegation chain) and the project context. The
//! URLs come from operator settings only. Keys are Atmos's (`pkg/auth/types/gcp_specs.go`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::azure::string_at;
use super::kinds::{GCP_PROJECT_KIND, GCP_PROVIDER_KIND, GCP_SA_KIND, is_gcp_identity};
use super::model::{GCP_DEFAULT_SCOPE, GcpTarget};
use super::problem::{Problem, Reason};
use super::rules::{self, format_seconds};
use super::walk::Checker;
use super::warnings::Warning;
use crate::api::{IdentityDef, Provider};

/// Shortest and longest impersonated token (`principal.lifetime`): google-auth's bounds for
/// `token_lifetime_seconds` (IAM Credentials grants more than 1 h only where an organization
/// policy allows it).
pub const MIN_LIFETIME_SECONDS: i64 = 600;
/// See [`MIN_LIFETIME_SECONDS`].
pub const MAX_LIFETIME_SECONDS: i64 = 43_200;
/// Most entries of `scopes` and of `delegates`.
const MAX_LIST: usize = 20;

/// What a `gcp/workload-identity-federation` provider contributes to its identities' targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GcpProvider {
    project_number: String,
    pool_id: String,
    provider_id: String,
    project_id: Option<String>,
    region: Option<String>,
    service_account_email: Option<String>,
    scopes: Option<Vec<String>>,
}

fn provider_path(provider: &str, field: &str) -> String {
    format!("auth.providers.{provider}.spec.{field}")
}

/// The pool provider's resource name, the audience of the STS exchange (Atmos's
/// `wifAudience`).
pub(crate) fn pool_provider_audience(project_number: &str, pool: &str, provider: &str) -> String {
    format!(
        "//iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{pool}/providers/{provider}"
    )
}

/// The ServiceAccount token's audience for a GCP provider's `spec`: `token_source.audience`,
/// else the pool provider's resource name; `None` when the keys that make it are missing or
/// not strings (reported by [`Checker::gcp_provider`]).
pub(crate) fn token_audience(extra: &BTreeMap<String, Value>) -> Option<String> {
    if let Some(Value::String(audience)) = extra.get("token_source").and_then(|t| t.get("audience")) {
        return Some(audience.clone());
    }
    let text = |key: &str, check: fn(&str) -> Result<(), String>| {
        extra.get(key).and_then(Value::as_str).filter(|s| check(s).is_ok())
    };
    Some(pool_provider_audience(
        text("project_number", check_project_number)?,
        text("workload_identity_pool_id", check_pool_id).or_else(|| text("workload_identity_pool", check_pool_id))?,
        text("workload_identity_provider_id", check_pool_id)
            .or_else(|| text("workload_identity_provider", check_pool_id))?,
    ))
}

fn check_project_number(n: &str) -> Result<(), String> {
    if (1..=20).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a project number: the digits Google shows as the project's number (not its id)",
            n.escape_debug()
        ))
    }
}

/// Pool and pool provider ids: 4 to 32 lowercase letters, digits and hyphens, not starting
/// or ending with a hyphen (they become path segments of the audience and of STS's request).
fn check_pool_id(id: &str) -> Result<(), String> {
    let ok = (4..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a workload identity pool or provider id: 4 to 32 lowercase letters, digits and \
             hyphens",
            id.escape_debug()
        ))
    }
}

/// Project ids: 6 to 30 lowercase letters, digits and hyphens, starting with a letter.
fn check_project_id(id: &str) -> Result<(), String> {
    let ok = (6..=30).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a GCP project id: 6 to 30 lowercase letters, digits and hyphens, starting with a letter",
            id.escape_debug()
        ))
    }
}

/// Regions (`us-central1`) and zones (`us-central1-a`): written into pod settings.
fn check_location(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .split('-')
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a GCP region or zone such as us-central1 or us-central1-a",
            value.escape_debug()
        ))
    }
}

/// Atmos's rule (an `@` and the `.iam.gserviceaccount.com` domain), and only the characters
/// such an address has: it becomes a path segment of the impersonation URL.
pub(crate) fn check_service_account_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && domain.ends_with(".iam.gserviceaccount.com")
                && domain.len() > ".iam.gserviceaccount.com".len()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a service account email such as terraform@my-project.iam.gserviceaccount.com \
             (Atmos requires the .iam.gserviceaccount.com domain)",
            email.escape_debug()
        ))
    }
}

/// A list of strings at `key` (`scopes`, `delegates`): `Err` with the message when it is not one.
fn list_at(
    map: &BTreeMap<String, Value>,
    key: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<Option<Vec<String>>, String> {
    let items = match map.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("{key} must be a list of strings, not {other}")),
    };
    if items.len() > MAX_LIST {
        return Err(format!("{key} has {} entries; at most {MAX_LIST}", items.len()));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => check(s).map(|()| s.clone()),
            other => Err(format!("{key} must be a list of strings; {other} is not one")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn check_scope(scope: &str) -> Result<(), String> {
    if scope.starts_with("https://") && scope.len() <= 256 && !scope.contains(char::is_whitespace) {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not an OAuth scope such as {GCP_DEFAULT_SCOPE}",
            scope.escape_debug()
        ))
    }
}

impl Checker<'_> {
    /// Checks a `gcp/workload-identity-federation` provider's GCP keys (its `service_account`
    /// and `expiration` are checked as for every provider); `None` for another kind or when
    /// something is wrong (reported).
    pub(super) fn gcp_provider(&mut self, pname: &str, provider: &Provider) -> Option<GcpProvider> {
        if provider.kind != GCP_PROVIDER_KIND {
            return None;
        }
        let before = self.problems.len();
        let spec = provider.spec.clone().unwrap_or_default();
        if spec.audience.is_some() {
            self.problems.push(Problem::new(
                provider_path(pname, "audience"),
                Reason::InvalidProfile,
                format!(
                    "kind {GCP_PROVIDER_KIND} has no spec.audience in Atmos: the token's audience is the pool \
                     provider's resource name, or token_source.audience; move it there"
                ),
            ));
        }
        let project_number = self.gcp_key(pname, &spec.extra, "project_number", check_project_number);
        let pool_id = self.pool_key(
            pname,
            &spec.extra,
            "workload_identity_pool_id",
            "workload_identity_pool",
        );
        let provider_id = self.pool_key(
            pname,
            &spec.extra,
            "workload_identity_provider_id",
            "workload_identity_provider",
        );
        let project_id = self.gcp_key(pname, &spec.extra, "project_id", check_project_id);
        let region = self.gcp_key(pname, &spec.extra, "region", check_location);
        let service_account_email =
            self.gcp_key(pname, &spec.extra, "service_account_email", check_service_account_email);
        let scopes = match list_at(&spec.extra, "scopes", check_scope) {
            Ok(scopes) => scopes,
            Err(message) => {
                self.problems.push(Problem::new(
                    provider_path(pname, "scopes"),
                    Reason::InvalidProfile,
                    message,
                ));
                None
            }
        };
        self.token_source(pname, &spec.extra);
        for (key, what) in [
            ("project_number", "the pool's project number"),
            ("workload_identity_pool_id", "the workload identity pool"),
            (
                "workload_identity_provider_id",
                "the pool provider that trusts the cluster's issuer",
            ),
        ] {
            let legacy = key.strip_suffix("_id").filter(|_| key != "project_number");
            let set = |k: &str| spec.extra.get(k).is_some_and(|v| !v.is_null());
            if !set(key) && !legacy.is_some_and(set) {
                self.problems.push(Problem::new(
                    provider_path(pname, key),
                    Reason::InvalidProfile,
                    format!("{key} is required for kind {GCP_PROVIDER_KIND} (as in Atmos): {what}"),
                ));
            }
        }
        if self.problems.len() != before {
            return None;
        }
        Some(GcpProvider {
            project_number: project_number?,
            pool_id: pool_id?,
            provider_id: provider_id?,
            project_id,
            region,
            service_account_email,
            scopes,
        })
    }

    /// A string key of a GCP provider's spec, checked; `None` when absent or wrong (reported).
    fn gcp_key(
        &mut self,
        pname: &str,
        extra: &BTreeMap<String, Value>,
        key: &str,
        check: fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let message = match string_at(extra, key) {
            Ok(None) => return None,
            Ok(Some(value)) => match check(value) {
                Ok(()) => return Some(value.to_owned()),
                Err(detail) => detail,
            },
            Err(message) => message,
        };
        self.problems
            .push(Problem::new(provider_path(pname, key), Reason::InvalidProfile, message));
        None
    }

    /// `key` or its legacy spelling (Atmos prefers `key`); a warning when both differ.
    fn pool_key(&mut self, pname: &str, extra: &BTreeMap<String, Value>, key: &str, legacy: &str) -> Option<String> {
        let new = self.gcp_key(pname, extra, key, check_pool_id);
        let old = self.gcp_key(pname, extra, legacy, check_pool_id);
        if let (Some(new), Some(old)) = (&new, &old)
            && new != old
        {
            self.warnings.push(Warning::new(
                provider_path(pname, legacy),
                format!("{old} is not used: {key} ({new}) wins over the legacy {legacy}, as in Atmos"),
            ));
        }
        new.or(old)
    }

    /// `token_source`: a runner's setting; its `audience` is the token's, the rest is warned
    /// about (a problem when it is not a map or its `type` is not one Atmos knows).
    fn token_source(&mut self, pname: &str, extra: &BTreeMap<String, Value>) {
        let source = match extra.get("token_source") {
            None | Some(Value::Null) => return,
            Some(Value::Object(map)) => map,
            Some(other) => {
                self.problems.push(Problem::new(
                    provider_path(pname, "token_source"),
                    Reason::InvalidProfile,
                    format!("token_source must be a map (type, file_path, audience, ...), not {other}"),
                ));
                return;
            }
        };
        let source: BTreeMap<String, Value> = source.clone().into_iter().collect();
        for key in ["type", "audience", "file_path", "url", "environment_variable"] {
            if let Err(message) = string_at(&source, key) {
                self.problems.push(Problem::new(
                    provider_path(pname, &format!("token_source.{key}")),
                    Reason::InvalidProfile,
                    message,
                ));
            }
        }
        if let Ok(Some(kind)) = string_at(&source, "type")
            && !["environment", "file", "url"].contains(&kind)
        {
            self.problems.push(Problem::new(
                provider_path(pname, "token_source.type"),
                Reason::InvalidProfile,
                format!(
                    "unknown token_source.type \"{}\" (Atmos refuses it too); valid values are: environment, \
                     file, url",
                    kind.escape_debug()
                ),
            ));
        }
        if source.get("request_token").is_some_and(|v| !v.is_null()) {
            self.problems.push(Problem::new(
                provider_path(pname, "token_source.request_token"),
                Reason::InvalidProfile,
                "a bearer token does not belong in a profile (anyone who reads the profile could use it), and \
                 the controller needs none: remove it",
            ));
        }
        let unused: Vec<&str> = source
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "audience" | "request_token"))
            .collect();
        if !unused.is_empty() {
            self.warnings.push(Warning::new(
                provider_path(pname, "token_source"),
                format!(
                    "{} kept, not used in a cluster: Atmos reads the OIDC token from there on a runner; the \
                     controller requests the ServiceAccount's token itself (TokenRequest, with \
                     token_source.audience or the pool provider's audience), and consumer pods read the token \
                     file the Secret's configuration names (spec.federatedToken of the Identity)",
                    unused.join(", ")
                ),
            ));
        }
    }

    /// Checks the kinds on either side of identity `name`'s `via` for GCP: a GCP identity
    /// starts from a GCP provider (`gcp/project` also from a `gcp/service-account`), and no
    /// other cloud's identity starts from or chains from a GCP one.
    pub(super) fn gcp_link(
        &mut self,
        name: &str,
        def: &IdentityDef,
        provider_kind: Option<&str>,
        parent_kind: Option<&str>,
    ) {
        let kind = def.kind.as_str();
        let message = match (kind, provider_kind, parent_kind) {
            (GCP_SA_KIND | GCP_PROJECT_KIND, Some(p), _) if p != GCP_PROVIDER_KIND => (
                "via.provider",
                format!(
                    "kind {kind} needs a {GCP_PROVIDER_KIND} provider (project_number, workload_identity_pool_id, \
                     workload_identity_provider_id); a {p} provider yields another cloud's credentials"
                ),
            ),
            (GCP_SA_KIND, _, Some(_)) => (
                "via.identity",
                format!(
                    "kind {GCP_SA_KIND} starts from a {GCP_PROVIDER_KIND} provider (via.provider); to impersonate \
                     through other service accounts, list them in principal.delegates"
                ),
            ),
            (GCP_PROJECT_KIND, _, Some(p)) if p != GCP_SA_KIND => (
                "via.identity",
                format!(
                    "kind {GCP_PROJECT_KIND} starts from a {GCP_PROVIDER_KIND} provider or chains from a \
                     {GCP_SA_KIND} identity, not from a {p} one"
                ),
            ),
            (other, Some(GCP_PROVIDER_KIND), _) if !is_gcp_identity(other) && !other.is_empty() => (
                "via.provider",
                format!(
                    "kind {other} cannot start from a {GCP_PROVIDER_KIND} provider: it yields Google credentials; \
                     use kind {GCP_SA_KIND} or {GCP_PROJECT_KIND} here"
                ),
            ),
            (other, _, Some(p)) if is_gcp_identity(p) && !is_gcp_identity(other) && !other.is_empty() => (
                "via.identity",
                format!("kind {other} cannot chain from a {p} identity: it holds Google credentials"),
            ),
            _ => return,
        };
        self.identity_problem(name, message.0, message.1);
    }
}

/// A `gcp/project` identity's context: its required project, its region and zone.
struct ProjectContext {
    project_id: String,
    region: Option<String>,
    zone: Option<String>,
}

impl Checker<'_> {
    /// A string of identity `name`'s principal, checked; `None` when absent or wrong (reported).
    fn principal_key(
        &mut self,
        name: &str,
        extra: &BTreeMap<String, Value>,
        key: &str,
        check: fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let message = match string_at(extra, key) {
            Ok(None) => return None,
            Ok(Some(value)) => match check(value) {
                Ok(()) => return Some(value.to_owned()),
                Err(detail) => detail,
            },
            Err(message) => message,
        };
        self.identity_problem(name, &format!("principal.{key}"), message);
        None
    }

    fn required(&mut self, name: &str, def: &IdentityDef, key: &str, what: &str) {
        let set = def
            .principal
            .as_ref()
            .and_then(|p| p.extra.get(key))
            .is_some_and(|v| !v.is_null());
        if !set {
            self.identity_problem(
                name,
                &format!("principal.{key}"),
                format!("{key} is required for kind {} (as in Atmos): {what}", def.kind),
            );
        }
    }

    /// A `gcp/project` identity's principal; `None` when wrong (reported).
    fn project_context(&mut self, name: &str, def: &IdentityDef) -> Option<ProjectContext> {
        let before = self.problems.len();
        let principal = def.principal.clone().unwrap_or_default();
        let project_id = self.principal_key(name, &principal.extra, "project_id", check_project_id);
        self.required(name, def, "project_id", "the project the consumer works in");
        let region = principal.region.clone();
        if let Some(Err(detail)) = region.as_deref().map(check_location) {
            self.identity_problem(name, "principal.region", detail);
        }
        let zone = self.principal_key(name, &principal.extra, "zone", check_location);
        if principal.extra.get("location").is_some_and(|v| !v.is_null()) {
            self.identity_warning(
                name,
                "principal.location",
                "kept, not used: Atmos's legacy key; set principal.region and principal.zone",
            );
        }
        if self.problems.len() != before {
            return None;
        }
        Some(ProjectContext {
            project_id: project_id?,
            region,
            zone,
        })
    }

    /// The target of GCP identity `name` (the chain's first link) through `provider`; `None`
    /// when its principal is wrong (reported).
    pub(super) fn gcp_target(&mut self, name: &str, def: &IdentityDef, provider: &GcpProvider) -> Option<GcpTarget> {
        let mut target = GcpTarget {
            project_number: provider.project_number.clone(),
            pool_id: provider.pool_id.clone(),
            provider_id: provider.provider_id.clone(),
            sts_audience: pool_provider_audience(&provider.project_number, &provider.pool_id, &provider.provider_id),
            service_account_email: provider.service_account_email.clone(),
            delegates: Vec::new(),
            scopes: provider
                .scopes
                .clone()
                .unwrap_or_else(|| vec![GCP_DEFAULT_SCOPE.to_owned()]),
            lifetime_seconds: None,
            project_id: provider.project_id.clone(),
            region: provider.region.clone(),
            zone: None,
            sts_url: self.settings.gcp_sts_url.clone(),
            iam_credentials_url: self.settings.gcp_iam_credentials_url.clone(),
        };
        if def.kind == GCP_PROJECT_KIND {
            return self.gcp_project_over(name, def, &target);
        }
        let before = self.problems.len();
        let principal = def.principal.clone().unwrap_or_default();
        let email = self.principal_key(
            name,
            &principal.extra,
            "service_account_email",
            check_service_account_email,
        );
        self.required(name, def, "service_account_email", "the service account to impersonate");
        let delegates = match list_at(&principal.extra, "delegates", check_service_account_email) {
            Ok(d) => d.unwrap_or_default(),
            Err(message) => {
                self.identity_problem(name, "principal.delegates", message);
                Vec::new()
            }
        };
        match list_at(&principal.extra, "scopes", check_scope) {
            Ok(Some(scopes)) => target.scopes = scopes,
            Ok(None) => {}
            Err(message) => self.identity_problem(name, "principal.scopes", message),
        }
        target.lifetime_seconds = self.lifetime(name, &principal.extra);
        let project_id = self.principal_key(name, &principal.extra, "project_id", check_project_id);
        self.no_delegation(name, def, target.service_account_email.as_deref(), &delegates);
        if self.problems.len() != before {
            return None;
        }
        let email = email?;
        // The provider's own service account (Atmos impersonates it first) leads the chain.
        target.delegates = target
            .service_account_email
            .take()
            .into_iter()
            .chain(delegates)
            .collect();
        target.project_id = project_id.or(target.project_id).or_else(|| project_of(&email));
        target.service_account_email = Some(email);
        Some(target)
    }

    /// Refuses a delegation chain (the provider's service account before the identity's, or
    /// `principal.delegates`): the pod's google-auth could not follow it. An
    /// `external_account` configuration impersonates one service account, and google-auth
    /// (2.63) takes no `external_account` source in an `impersonated_service_account` one
    /// (only `authorized_user`, `service_account` and `external_account_authorized_user`).
    fn no_delegation(&mut self, name: &str, def: &IdentityDef, provider_sa: Option<&str>, delegates: &[String]) {
        const WHY: &str = "a pod's credential configuration (external_account) impersonates one service account, \
                           and google-auth accepts no external_account source in an impersonated_service_account \
                           configuration, so no pod could follow a delegation chain";
        if !delegates.is_empty() {
            self.identity_problem(
                name,
                "principal.delegates",
                format!(
                    "{WHY}: grant the pool's principal roles/iam.workloadIdentityUser on the service account \
                     itself and remove delegates"
                ),
            );
        }
        if let Some(provider_sa) = provider_sa {
            let pname = def.via.as_ref().and_then(|v| v.provider.as_deref()).unwrap_or_default();
            self.problems.push(Problem::new(
                provider_path(pname, "service_account_email"),
                Reason::InvalidProfile,
                format!(
                    "{provider_sa} would be impersonated before {name}'s service account (as Atmos does), and {WHY}: \
                     remove service_account_email from the provider (let the pool's principal impersonate the \
                     identity's service account directly), or use a gcp/project identity on this provider"
                ),
            ));
        }
    }

    /// `principal.lifetime`: a Go duration (Atmos passes `3600s` on as is) within
    /// [`MIN_LIFETIME_SECONDS`]..=[`MAX_LIFETIME_SECONDS`].
    fn lifetime(&mut self, name: &str, extra: &BTreeMap<String, Value>) -> Option<i64> {
        let text = match string_at(extra, "lifetime") {
            Ok(text) => text?,
            Err(message) => {
                self.identity_problem(name, "principal.lifetime", message);
                return None;
            }
        };
        match rules::parse_duration(text) {
            Ok(secs) if (MIN_LIFETIME_SECONDS..=MAX_LIFETIME_SECONDS).contains(&secs) => Some(secs),
            Ok(_) => {
                self.identity_problem(
                    name,
                    "principal.lifetime",
                    format!(
                        "{text} is outside what an impersonated token may last: from {} to {} (more than 1h \
                         only where an organization policy allows it)",
                        format_seconds(MIN_LIFETIME_SECONDS),
                        format_seconds(MAX_LIFETIME_SECONDS)
                    ),
                );
                None
            }
            Err(detail) => {
                self.identity_problem(name, "principal.lifetime", detail);
                None
            }
        }
    }

    /// A `gcp/project` identity over `base` (its provider's or its `gcp/service-account`
    /// parent's target): the project, region and zone it names win.
    pub(super) fn gcp_project_over(&mut self, name: &str, def: &IdentityDef, base: &GcpTarget) -> Option<GcpTarget> {
        let context = self.project_context(name, def)?;
        Some(GcpTarget {
            project_id: Some(context.project_id),
            region: context.region.or_else(|| base.region.clone()),
            zone: context.zone,
            ..base.clone()
        })
    }
}

/// The project id in a service account's email (`name@PROJECT.iam.gserviceaccount.com`), as
/// Atmos derives it when no project is named.
fn project_of(email: &str) -> Option<String> {
    let (_, domain) = email.split_once('@')?;
    domain.strip_suffix(".iam.gserviceaccount.com").map(str::to_owned)
}
