//! The link check: one `aws/assume-role` identity's principal (role, duration, external
//! id, session name, region) and STS endpoint as one STS call.

use super::go_duration;
use super::kinds::{self, IDENTITY_KIND};
use super::model::Link;
use super::names;
use super::problem::{Problem, Reason};
use super::rules::{self, format_seconds};
use super::walk::Checker;
use crate::api::IdentityDef;

impl Checker<'_> {
    /// Checks one link; pushes it to `links` when it passes. Returns its region (for the
    /// next link), even when it does not pass.
    pub(super) fn check_link(
        &mut self,
        name: &str,
        def: &IdentityDef,
        parent_region: Option<&str>,
        links: &mut Vec<Link>,
    ) -> String {
        if kinds::is_gcp_identity(&def.kind) {
            // A GCP region is checked (and kept) by the GCP target, not as an AWS region.
            return parent_region.unwrap_or(&self.settings.default_region).to_owned();
        }
        let principal = def.principal.clone().unwrap_or_default();
        let region = match &principal.region {
            Some(region) => {
                if let Err(detail) = rules::check_region(region) {
                    self.identity_problem(name, "principal.region", detail);
                }
                region.clone()
            }
            None => parent_region.unwrap_or(&self.settings.default_region).to_owned(),
        };
        if def.kind != IDENTITY_KIND {
            return region; // reported by the walk; other kinds' principals differ
        }
        let before = self.problems.len();
        let via = def.via.clone().unwrap_or_default();
        let chained = via.identity.is_some() && via.provider.is_none();
        let first = via.provider.is_some() && via.identity.is_none();

        // A known key of another type is kept among the others (api::free_form::take).
        for key in ["assume_role", "session_name", "external_id", "duration", "region"] {
            if let Some(value) = principal.extra.get(key) {
                self.identity_problem(
                    name,
                    &format!("principal.{key}"),
                    format!("{key} must be a string, not {value}; quote it"),
                );
            }
        }
        let role_arn = principal.assume_role.clone().unwrap_or_default();
        match &principal.assume_role {
            None if principal.extra.contains_key("assume_role") => {}
            None => self.identity_problem(
                name,
                "principal.assume_role",
                format!(
                    "assume_role is required for kind {IDENTITY_KIND}: the IAM role ARN, \
                     arn:aws:iam::<12-digit account>:role/<name>"
                ),
            ),
            Some(arn) => {
                if let Err(detail) = rules::check_role_arn(arn) {
                    self.identity_problem(
                        name,
                        "principal.assume_role",
                        format!(
                            "\"{arn}\" is not a valid IAM role ARN: {detail}; expected \
                             arn:aws:iam::<12-digit account>:role/<name>"
                        ),
                    );
                }
            }
        }

        if def.session.is_some() {
            self.identity_warning(
                name,
                "session",
                "not used: for aws/assume-role Atmos reads only principal.duration (default 1h), and so \
                 does the controller; move the duration to principal.duration",
            );
        }
        let duration_seconds = self.check_duration(name, principal.duration.as_deref(), chained);
        if let Some(external_id) = &principal.external_id {
            if first {
                self.identity_warning(
                    name,
                    "principal.external_id",
                    "not used: a link with via.provider calls AssumeRoleWithWebIdentity, which takes no \
                     external id; Atmos ignores it there, and so does the controller",
                );
            } else if let Err(detail) = rules::check_external_id(external_id) {
                self.identity_problem(name, "principal.external_id", detail);
            }
        }

        let session_name = principal.session_name.as_deref().map(rules::clean_session_name);
        if let (Some(written), Some(sent)) = (&principal.session_name, &session_name)
            && written != sent
        {
            self.identity_warning(
                name,
                "principal.session_name",
                format!(
                    "{written:?} is sent as {sent:?}: Atmos replaces every character outside \
                     [A-Za-z0-9+=,.@-] with - and cuts the name to 64 characters, and so does the controller"
                ),
            );
        }

        let endpoint = self.check_endpoint(name, def);
        if self.problems.len() == before {
            links.push(Link {
                // Atmos's name for the identity everywhere it is sent or written (session
                // name, profile section): Viper lower-cases atmos.yaml's keys.
                identity: names::atmos_name(name),
                role_arn,
                session_name,
                external_id: if first { None } else { principal.external_id.clone() },
                duration_seconds: duration_seconds.and_then(|s| i32::try_from(s).ok()),
                region: region.clone(),
                endpoint,
            });
        }
        region
    }

    /// `principal.duration` as Atmos reads it: Go's `time.ParseDuration`; unparseable, a
    /// warning and no duration (STS's default, 1h), as Atmos logs a warning and sends none;
    /// parseable but outside what STS grants, a problem (STS would refuse the call). Absent
    /// or empty: the default, 1h.
    fn check_duration(&mut self, name: &str, text: Option<&str>, chained: bool) -> Option<i64> {
        const FIELD: &str = "principal.duration";
        let text = match text {
            None | Some("") => return Some(rules::DEFAULT_SESSION_SECONDS),
            Some(text) => text,
        };
        let secs = match go_duration::parse(text) {
            Ok(nanos) => go_duration::whole_seconds(nanos),
            Err(err) => {
                self.identity_warning(
                    name,
                    FIELD,
                    format!(
                        "{text:?} is not a Go duration ({err}): Atmos logs a warning and asks STS for its \
                         default session (1h), and so does the controller; write a Go duration such as 1h, \
                         90m or 1h30m"
                    ),
                );
                return None;
            }
        };
        let min = self.settings.min_session_seconds;
        let problem = if secs < 0 {
            Some(format!(
                "{text:?} is negative: STS refuses it; use a Go duration such as 1h, 90m or 1h30m"
            ))
        } else if secs < min {
            Some(format!(
                "{text} is shorter than the shortest session allowed ({}); use at least {}",
                format_seconds(min),
                format_seconds(min)
            ))
        } else if secs > rules::MAX_SESSION_SECONDS {
            Some(format!(
                "{text} is longer than 12h, the longest session AWS grants; use at most 12h \
                 (and at most the role's MaxSessionDuration)"
            ))
        } else if chained && secs > rules::MAX_CHAINED_SESSION_SECONDS {
            Some(format!(
                "{text} is longer than 1h: AWS limits a chained session (via.identity) to 1h; use at most 1h"
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            self.identity_problem(name, FIELD, message);
        }
        Some(secs)
    }

    /// The STS endpoint of this link, as Atmos chooses it for AssumeRole and
    /// AssumeRoleWithWebIdentity (`pkg/auth/cloud/aws/resolver.go`): the identity's
    /// `spec.endpoint_url`, else its legacy `credentials.aws.resolver.url`; a provider's serves
    /// only SSO and SAML logins. Only an endpoint the operator allow-listed is used.
    fn check_endpoint(&mut self, name: &str, def: &IdentityDef) -> Option<String> {
        let (field, url) = identity_endpoint(def)?;
        if self.settings.allowed_endpoints.iter().any(|e| e == url) {
            return Some(url.to_owned());
        }
        let (path, _) = self.field(name, field);
        self.problems.push(Problem::new(
            path,
            Reason::EndpointNotAllowed,
            format!(
                "endpoint_url {url:?} is refused: the controller sends STS calls to its own endpoint or one \
                 the operator allow-listed (--allowed-endpoint); remove it, or ask the operator to allow-list it"
            ),
        ));
        None
    }
}

/// The identity's STS endpoint and the field it is in: `spec.endpoint_url`, else the legacy
/// `credentials.aws.resolver.url` (Atmos's order; an empty or non-string value is none).
pub(crate) fn identity_endpoint(def: &IdentityDef) -> Option<(&'static str, &str)> {
    fn non_empty(v: Option<&serde_json::Value>) -> Option<&str> {
        v.and_then(serde_json::Value::as_str).filter(|s| !s.is_empty())
    }
    if let Some(url) = non_empty(def.spec.as_ref().and_then(|s| s.get("endpoint_url"))) {
        return Some(("spec.endpoint_url", url));
    }
    non_empty(def.credentials.as_ref().and_then(|c| c.pointer("/aws/resolver/url")))
        .map(|url| ("credentials.aws.resolver.url", url))
}
