//! The link check: one `aws/assume-role` identity's principal (role, duration, external
//! id, session name, region) as one STS call.

use super::kinds::IDENTITY_KIND;
use super::model::Link;
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
        let duration = principal.duration.as_ref().map(|text| ("principal.duration", text));
        let duration_seconds = match duration {
            None => rules::DEFAULT_SESSION_SECONDS,
            Some((field, text)) => match rules::parse_duration(text) {
                Err(detail) => {
                    self.identity_problem(name, field, detail);
                    0
                }
                Ok(secs) => {
                    let min = self.settings.min_session_seconds;
                    if secs < min {
                        self.identity_problem(
                            name,
                            field,
                            format!(
                                "{text} is shorter than the shortest session allowed ({}); use at least {}",
                                format_seconds(min),
                                format_seconds(min)
                            ),
                        );
                    } else if secs > rules::MAX_SESSION_SECONDS {
                        self.identity_problem(
                            name,
                            field,
                            format!(
                                "{text} is longer than 12h, the longest session AWS grants; use at most 12h \
                                 (and at most the role's MaxSessionDuration)"
                            ),
                        );
                    } else if chained && secs > rules::MAX_CHAINED_SESSION_SECONDS {
                        self.identity_problem(
                            name,
                            field,
                            format!(
                                "{text} is longer than 1h: AWS limits a chained session (via.identity) \
                                 to 1h; use at most 1h"
                            ),
                        );
                    }
                    secs
                }
            },
        };

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

        if self.problems.len() == before
            && let Ok(duration_seconds) = i32::try_from(duration_seconds)
        {
            links.push(Link {
                identity: name.to_owned(),
                role_arn,
                session_name,
                external_id: if first { None } else { principal.external_id.clone() },
                duration_seconds,
                region: region.clone(),
            });
        }
        region
    }
}
