//! Resolving an `Identity` into the identities its Secret holds: the one of `spec.identity`
//! (or the profile's default), or each of `spec.identities`.

use sha2::{Digest, Sha256};

use super::Settings;
use super::identity::resolve;
use super::model::Resolved;
use super::names::atmos_name;
use super::problem::{Problem, Reason};
use super::registry::{RegistryPlan, resolve_registry};
use crate::api::limits::MAX_SECRET_IDENTITIES;
use crate::api::{AuthProfileSpec, IdentitySpec, SecretFormat};

/// The identities one Secret holds, each fully resolved, in the order of `spec.identities`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedSet {
    /// One entry per identity; never empty.
    pub items: Vec<Resolved>,
    /// Whether the Identity names a list (`spec.identities`): the Secret then uses the
    /// several-identity layout even for one name.
    pub multi: bool,
    /// The image-pull Secret (`spec.imagePullSecret`), if any.
    pub registry: Option<RegistryPlan>,
}

impl ResolvedSet {
    /// The first (with one identity, the only) resolved identity.
    pub fn first(&self) -> &Resolved {
        // `items` is never empty (see `resolve_set`).
        &self.items[0]
    }

    /// The Secret hash: the identity's own for one identity (unchanged from before lists
    /// existed, so upgrading renews nothing); with a list, a hash over each one's, in order.
    pub fn spec_hash(&self) -> String {
        let base = if self.multi {
            let mut h = Sha256::new();
            h.update(b"identities");
            for r in &self.items {
                h.update(b"\n");
                h.update(r.spec_hash().as_bytes());
            }
            hex::encode(h.finalize())
        } else {
            self.first().spec_hash()
        };
        // Only an Identity with an image-pull Secret hashes it: every other keeps its hash.
        let Some(registry) = &self.registry else {
            return base;
        };
        let mut h = Sha256::new();
        h.update(base.as_bytes());
        h.update(b"\nregistry\n");
        h.update(serde_json::to_vec(registry).unwrap_or_default());
        hex::encode(h.finalize())
    }

    /// The identity names, joined by `,`.
    pub fn names(&self) -> String {
        self.items
            .iter()
            .map(|r| r.identity.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Resolves `identity` against `profile`: one identity as [`resolve`] does, or each of
/// `spec.identities`. A list is refused with the `env` format (environment variables hold one
/// identity) and with override fields (one override would silently apply to every identity);
/// the CRD's CEL rules refuse the same at apply time.
pub fn resolve_set(
    profile: &AuthProfileSpec,
    identity: &IdentitySpec,
    identity_object_name: &str,
    settings: &Settings,
) -> Result<ResolvedSet, Vec<Problem>> {
    let mut set = resolve_identities(profile, identity, identity_object_name, settings)?;
    if let Some(spec) = &identity.image_pull_secret {
        set.registry = Some(resolve_registry(profile, spec, &set)?);
    }
    Ok(set)
}

/// The identities of the set, without the image-pull Secret.
fn resolve_identities(
    profile: &AuthProfileSpec,
    identity: &IdentitySpec,
    identity_object_name: &str,
    settings: &Settings,
) -> Result<ResolvedSet, Vec<Problem>> {
    let Some(names) = &identity.identities else {
        return resolve(profile, identity, identity_object_name, settings).map(|r| ResolvedSet {
            items: vec![r],
            multi: false,
            registry: None,
        });
    };
    let mut problems = list_problems(identity, names);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut items = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let one = IdentitySpec {
            identity: Some(name.clone()),
            identities: None,
            ..identity.clone()
        };
        match resolve(profile, &one, identity_object_name, settings) {
            Ok(r) => items.push(r),
            Err(found) => problems.extend(found.into_iter().map(|mut p| {
                if p.path == "spec.identity" {
                    p.path = format!("spec.identities[{i}]");
                }
                p
            })),
        }
    }
    if problems.is_empty() {
        problems = mix_problems(names, &items);
    }
    if problems.is_empty() && !items.is_empty() {
        Ok(ResolvedSet {
            items,
            multi: true,
            registry: None,
        })
    } else {
        problems.dedup();
        Err(problems)
    }
}

/// What cannot share one Secret: identities of different clouds (an AWS Secret holds role
/// credentials the controller renews; an Azure one, settings for an SDK that exchanges a
/// token itself: a pod would get both kinds of variables and files, and one Secret's
/// readers would hold both clouds), and, with a projected token, identities whose pods would
/// need different ServiceAccounts or audiences (a pod runs as one ServiceAccount).
fn mix_problems(names: &[String], items: &[Resolved]) -> Vec<Problem> {
    let cloud = |r: &Resolved| r.federation.as_ref().map_or("AWS", |f| f.target.cloud());
    let mut problems = Vec::new();
    let Some(first) = items.first() else {
        return problems;
    };
    for (i, r) in items.iter().enumerate().skip(1) {
        if cloud(r) != cloud(first) {
            problems.push(Problem::new(
                format!("spec.identities[{i}]"),
                Reason::InvalidIdentity,
                format!(
                    "\"{}\" is {} identity and \"{}\" {} one: one Secret holds one cloud's \
                     identities (its readers hold all of them, and a pod would get both clouds' \
                     settings); write one Identity per cloud",
                    names[i],
                    with_article(cloud(r)),
                    names[0],
                    with_article(cloud(first))
                ),
            ));
            continue;
        }
        if let (Some(a), Some(b)) = (first.consumer_requirement(), r.consumer_requirement())
            && (a.service_account_name != b.service_account_name || a.audience != b.audience)
        {
            problems.push(Problem::new(
                format!("spec.identities[{i}]"),
                Reason::InvalidIdentity,
                format!(
                    "\"{}\" needs a token of ServiceAccount {} for audience {}, \"{}\" one of {} for {}: \
                     a Secret with delivery Projected serves pods running as one ServiceAccount, with \
                     one projected token; write one Identity per ServiceAccount (or set \
                     spec.serviceAccountName), or use spec.federatedToken.delivery: Secret",
                    names[i], b.service_account_name, b.audience, names[0], a.service_account_name, a.audience
                ),
            ));
        }
    }
    problems
}

/// `an AWS`, `an Azure`, `a GCP`.
fn with_article(cloud: &str) -> String {
    let article = if cloud.starts_with('A') { "an" } else { "a" };
    format!("{article} {cloud}")
}

/// What is wrong with `spec.identities` itself.
fn list_problems(identity: &IdentitySpec, names: &[String]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut add = |path: &str, message: String| problems.push(Problem::new(path, Reason::InvalidIdentity, message));
    if identity.identity.is_some() {
        add(
            "spec.identities",
            "set spec.identity or spec.identities, not both".to_owned(),
        );
    }
    if names.is_empty() {
        add(
            "spec.identities",
            "is empty: name at least one identity, or leave it out".to_owned(),
        );
    }
    if names.len() > MAX_SECRET_IDENTITIES as usize {
        add(
            "spec.identities",
            format!(
                "names {} identities, more than {MAX_SECRET_IDENTITIES}: split them over several Identities (every pod that mounts a Secret holds all its roles)",
                names.len()
            ),
        );
    }
    // Names are matched regardless of case, as Atmos matches them: `Admin` and `admin` name
    // one identity.
    let atmos: Vec<String> = names.iter().map(|n| atmos_name(n)).collect();
    for (i, name) in names.iter().enumerate() {
        if let Some(earlier) = atmos[..i].iter().position(|n| *n == atmos[i]) {
            let same = if names[earlier] == *name {
                String::new()
            } else {
                format!(
                    " (as {:?}: names are matched regardless of case, as Atmos matches them)",
                    names[earlier]
                )
            };
            add(
                &format!("spec.identities[{i}]"),
                format!("\"{name}\" is listed twice{same}"),
            );
        }
    }
    // Distinct names could, in principle, share a data key (the key's hash is cut short).
    for (i, name) in atmos.iter().enumerate() {
        let key = super::model::process_key(name);
        if let Some(other) = atmos[..i]
            .iter()
            .find(|n| *n != name && super::model::process_key(n) == key)
        {
            add(
                &format!("spec.identities[{i}]"),
                format!("\"{name}\" and \"{other}\" map to the same data key {key}: put them in two Identities"),
            );
        }
    }
    let formats = identity.secret.as_ref().and_then(|s| s.formats.as_ref());
    if formats.is_some_and(|f| f.contains(&SecretFormat::Env)) {
        add(
            "spec.secret.formats",
            "env cannot be used with spec.identities: environment variables hold one identity; use process or files, or one Identity per identity".to_owned(),
        );
    }
    let o = &identity.overrides;
    let set: Vec<&str> = [
        ("kind", o.kind.is_some()),
        ("via", o.via.is_some()),
        ("principal", o.principal.is_some()),
        ("session", o.session.is_some()),
        ("env", o.env.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    if !set.is_empty() {
        add(
            "spec.identities",
            format!(
                "cannot be combined with overrides ({}): they would apply to every identity; write one Identity per overridden identity",
                set.join(", ")
            ),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> AuthProfileSpec {
        serde_json::from_value(serde_json::json!({
            "providers": {"oidc": {"kind": "kubernetes/oidc", "region": "us-east-1",
                "spec": {"audience": "sts.amazonaws.com", "service_account": "tf"}}},
            "identities": {
                "acme/admin": {"kind": "aws/assume-role", "via": {"provider": "oidc"},
                    "principal": {"assume_role": "arn:aws:iam::123456789012:role/admin"}},
                "acme/network": {"kind": "aws/assume-role", "via": {"identity": "acme/admin"},
                    "principal": {"assume_role": "arn:aws:iam::123456789012:role/network"}},
            }
        }))
        .unwrap()
    }

    fn spec(extra: serde_json::Value) -> IdentitySpec {
        let mut v = serde_json::json!({"profile": "p"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    fn problems(extra: serde_json::Value) -> Vec<String> {
        resolve_set(&profile(), &spec(extra), "obj", &Settings::default())
            .unwrap_err()
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn one_identity_keeps_its_own_hash() {
        let one = resolve_set(
            &profile(),
            &spec(serde_json::json!({"identity": "acme/admin"})),
            "o",
            &Settings::default(),
        )
        .unwrap();
        assert!(!one.multi);
        assert_eq!(one.spec_hash(), one.first().spec_hash());
        let list = resolve_set(
            &profile(),
            &spec(serde_json::json!({"identities": ["acme/admin"]})),
            "o",
            &Settings::default(),
        )
        .unwrap();
        assert!(list.multi);
        assert_ne!(
            list.spec_hash(),
            one.spec_hash(),
            "the layout differs, so the hash does"
        );
    }

    #[test]
    fn a_list_resolves_each_in_order() {
        let set = resolve_set(
            &profile(),
            &spec(serde_json::json!({"identities": ["acme/network", "acme/admin"]})),
            "o",
            &Settings::default(),
        )
        .unwrap();
        assert_eq!(set.names(), "acme/network,acme/admin");
        assert_eq!(set.items[0].links.len(), 2);
        let reordered = resolve_set(
            &profile(),
            &spec(serde_json::json!({"identities": ["acme/admin", "acme/network"]})),
            "o",
            &Settings::default(),
        )
        .unwrap();
        assert_ne!(set.spec_hash(), reordered.spec_hash());
    }

    #[test]
    fn list_problems_say_which_field() {
        let table = [
            (
                serde_json::json!({"identities": ["acme/admin"], "identity": "acme/admin"}),
                "spec.identities: set spec.identity or spec.identities, not both",
            ),
            (serde_json::json!({"identities": []}), "spec.identities: is empty"),
            (
                serde_json::json!({"identities": ["acme/admin", "acme/admin"]}),
                "spec.identities[1]: \"acme/admin\" is listed twice",
            ),
            (
                serde_json::json!({"identities": ["acme/admin"], "secret": {"formats": ["env"]}}),
                "spec.secret.formats: env cannot be used with spec.identities",
            ),
            (
                serde_json::json!({"identities": ["acme/admin"], "principal": {"session_name": "x"}, "env": []}),
                "spec.identities: cannot be combined with overrides (principal, env)",
            ),
            (
                serde_json::json!({"identities": ["acme/admin", "nope"]}),
                "spec.identities[1]: identity \"nope\" is not in AuthProfile p",
            ),
        ];
        for (extra, want) in table {
            let found = problems(extra.clone());
            assert!(found.iter().any(|p| p.starts_with(want)), "{extra}: {found:?}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("i{i}")).collect();
        let found = problems(serde_json::json!({"identities": many}));
        assert!(found[0].contains("names 17 identities, more than 16"), "{found:?}");
    }
}
