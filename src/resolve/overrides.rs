//! What an Identity's override fields may change. Two rules keep a tenant from steering a
//! chain that someone else wrote:
//! - an Identity of a ClusterAuthProfile overrides only what the profile's
//!   `allowedOverrides` lists ([`not_allowed`]);
//! - an external id goes only with the role it was written for: overriding the role of an
//!   identity whose profile sets `external_id` needs the Identity's own `external_id`
//!   ([`external_id_problem`]), whatever the profile's kind.

use super::problem::{Problem, Reason};
use crate::api::{IdentityDef, IdentityOverrides, OverrideField};

/// The override fields `o` sets, as paths under the Identity's `spec`: `kind`, `via`, `env`,
/// `session.duration` and one `principal.<key>` per principal key (unknown keys too).
pub fn set_overrides(o: &IdentityOverrides) -> Vec<String> {
    let mut paths = Vec::new();
    if o.kind.is_some() {
        paths.push("kind".to_owned());
    }
    if o.via.is_some() {
        paths.push("via".to_owned());
    }
    if let Some(p) = &o.principal {
        let known = [
            ("assume_role", p.assume_role.is_some()),
            ("session_name", p.session_name.is_some()),
            ("external_id", p.external_id.is_some()),
            ("duration", p.duration.is_some()),
            ("region", p.region.is_some()),
            ("name", p.name.is_some()),
            ("account", p.account.is_some()),
        ];
        paths.extend(
            known
                .iter()
                .filter(|(_, on)| *on)
                .map(|(k, _)| format!("principal.{k}")),
        );
        paths.extend(p.extra.keys().map(|k| format!("principal.{k}")));
    }
    if o.session.as_ref().is_some_and(|s| s.duration.is_some()) {
        paths.push("session.duration".to_owned());
    }
    if o.env.is_some() {
        paths.push("env".to_owned());
    }
    paths
}

/// One problem (reason `OverrideNotAllowed`) per override of `o` that ClusterAuthProfile
/// `profile` does not list in `allowed`.
pub fn not_allowed(o: &IdentityOverrides, profile: &str, allowed: &[OverrideField]) -> Vec<Problem> {
    let listed: Vec<&str> = allowed.iter().map(|f| f.as_str()).collect();
    let allows = if listed.is_empty() {
        "allows no override (spec.allowedOverrides is empty)".to_owned()
    } else {
        format!("allows only {} (spec.allowedOverrides)", listed.join(", "))
    };
    set_overrides(o)
        .into_iter()
        .filter(|path| !listed.contains(&path.as_str()))
        .map(|path| {
            Problem::new(
                format!("spec.{path}"),
                Reason::OverrideNotAllowed,
                format!(
                    "ClusterAuthProfile {profile} {allows}: its chain is used as written; remove \
                     spec.{path}, or ask the profile's owners to list it in spec.allowedOverrides"
                ),
            )
        })
        .collect()
}

/// The problem when `o` overrides the role of `def` (named `name`) while the profile gives
/// that role an `external_id` and the Identity gives none: the profile's external id belongs
/// to the profile's role and is never sent with another.
pub fn external_id_problem(name: &str, def: &IdentityDef, o: &IdentityOverrides) -> Option<Problem> {
    let written = def.principal.as_ref()?;
    written.external_id.as_ref()?;
    let overridden = o.principal.as_ref()?;
    let role = overridden.assume_role.as_ref()?;
    if Some(role) == written.assume_role.as_ref() || overridden.external_id.is_some() {
        return None;
    }
    let of = written.assume_role.as_deref().unwrap_or("the profile's role");
    Some(Problem::new(
        "spec.principal.assume_role",
        Reason::InvalidIdentity,
        format!(
            "overrides the role of identity {name}, whose principal.external_id is written for \
             {of}: an external id is never sent with another role; set spec.principal.external_id \
             for {role} as well, or leave the role as the profile has it"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(v: serde_json::Value) -> IdentityOverrides {
        serde_json::from_value(v).unwrap()
    }

    fn audit() -> IdentityDef {
        serde_json::from_value(serde_json::json!({
            "kind": "aws/assume-role",
            "via": {"identity": "admin"},
            "principal": {"assume_role": "arn:aws:iam::123456789012:role/audit", "external_id": "ext-1"},
        }))
        .unwrap()
    }

    #[test]
    fn every_set_field_is_named_including_unknown_principal_keys() {
        let o = overrides(serde_json::json!({
            "kind": "aws/assume-role",
            "via": {"identity": "x"},
            "principal": {"assume_role": "r", "external_id": "e", "custom": 1},
            "session": {"duration": "1h"},
            "env": [],
        }));
        assert_eq!(
            set_overrides(&o),
            [
                "kind",
                "via",
                "principal.assume_role",
                "principal.external_id",
                "principal.custom",
                "session.duration",
                "env"
            ]
        );
        assert!(set_overrides(&IdentityOverrides::default()).is_empty());
    }

    #[test]
    fn a_cluster_profile_allows_no_override_by_default() {
        let o = overrides(serde_json::json!({"principal": {"session_name": "s"}}));
        let found = not_allowed(&o, "platform", &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "spec.principal.session_name");
        assert_eq!(found[0].reason, Reason::OverrideNotAllowed);
        assert!(
            found[0]
                .message
                .contains("ClusterAuthProfile platform allows no override"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn a_cluster_profile_allows_what_it_lists_and_nothing_else() {
        let o = overrides(serde_json::json!({
            "principal": {"session_name": "s", "assume_role": "arn:aws:iam::123456789012:role/other"},
            "env": [],
        }));
        let found = not_allowed(&o, "platform", &[OverrideField::SessionName, OverrideField::Env]);
        let paths: Vec<_> = found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["spec.principal.assume_role"]);
        assert!(
            found[0].message.contains("allows only principal.session_name, env"),
            "{}",
            found[0].message
        );
        assert!(not_allowed(&o, "platform", &OverrideField::ALL).is_empty());
    }

    #[test]
    fn the_chain_shape_and_external_id_are_never_allowed() {
        let o =
            overrides(serde_json::json!({"kind": "k", "via": {"provider": "p"}, "principal": {"external_id": "e"}}));
        let paths: Vec<_> = not_allowed(&o, "p", &OverrideField::ALL)
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(paths, ["spec.kind", "spec.via", "spec.principal.external_id"]);
    }

    #[test]
    fn resolving_an_identity_applies_the_external_id_rule() {
        let profile: crate::api::AuthProfileSpec = serde_json::from_value(serde_json::json!({
            "providers": {"oidc": {"kind": "kubernetes/oidc", "spec": {"audience": "sts.amazonaws.com", "service_account": "tf"}}},
            "identities": {
                "admin": {"kind": "aws/assume-role", "via": {"provider": "oidc"},
                    "principal": {"assume_role": "arn:aws:iam::123456789012:role/admin"}},
                "audit": audit(),
            }
        }))
        .unwrap();
        let spec: crate::api::IdentitySpec = serde_json::from_value(serde_json::json!({
            "profile": "p", "identity": "audit",
            "principal": {"assume_role": "arn:aws:iam::123456789012:role/other"},
        }))
        .unwrap();
        let problems = super::super::resolve(&profile, &spec, "obj", &crate::resolve::Settings::default()).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.path == "spec.principal.assume_role" && p.message.contains("external_id")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_external_id_stays_with_its_role() {
        let other =
            overrides(serde_json::json!({"principal": {"assume_role": "arn:aws:iam::123456789012:role/other"}}));
        let p = external_id_problem("audit", &audit(), &other).expect("refused");
        assert_eq!(p.path, "spec.principal.assume_role");
        assert!(
            p.message.contains("role/audit") && !p.message.contains("ext-1"),
            "{}",
            p.message
        );
        // The Identity names the external id of the new role itself: its own choice.
        let both = overrides(
            serde_json::json!({"principal": {"assume_role": "arn:aws:iam::123456789012:role/other", "external_id": "ext-2"}}),
        );
        assert!(external_id_problem("audit", &audit(), &both).is_none());
        // The same role, or no external id in the profile: nothing to protect.
        let same = overrides(serde_json::json!({"principal": {"assume_role": "arn:aws:iam::123456789012:role/audit"}}));
        assert!(external_id_problem("audit", &audit(), &same).is_none());
        let mut plain = audit();
        if let Some(p) = plain.principal.as_mut() {
            p.external_id = None;
        }
        assert!(external_id_problem("audit", &plain, &other).is_none());
    }
}
