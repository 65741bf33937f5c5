//! Choosing the target identity of an `Identity`: `spec.identity`, else the profile's
//! single `default: true`.

use super::names::{Found, Names, several_message};
use super::problem::{Problem, Reason, list};
use crate::api::{AuthProfileSpec, IdentityDef, IdentitySpec, ProfileKind};

/// The target identity: `spec.identity`, else the profile's single `default: true`.
///
/// `spec.identity` is matched regardless of case, as Atmos matches `--identity`
/// (`pkg/auth/manager.go` `resolveIdentityName`).
pub(super) fn select_target<'a>(
    profile: &'a AuthProfileSpec,
    names: &Names<'a>,
    identity: &IdentitySpec,
) -> Result<(&'a str, &'a IdentityDef), Problem> {
    let profile_name = &identity.profile;
    let kind = identity.profile_ref_kind().as_str();
    // An Identity's author may not be allowed to read a ClusterAuthProfile: its identities
    // are not listed to them (its status lists them to those who may read it).
    let hidden = identity.profile_ref_kind() == ProfileKind::ClusterAuthProfile;
    let see_status = || {
        format!(
            "its status lists its identities (kubectl get clusterauthprofile {profile_name} -o yaml), for those who may read it; or ask its owner"
        )
    };
    if let Some(named) = &identity.identity {
        let found = match names.identity(named) {
            Found::One(key) => profile.identities.get_key_value(key),
            Found::Several(keys) => {
                return Err(Problem::new(
                    "spec.identity",
                    Reason::InvalidProfile,
                    several_message("identity", &keys),
                ));
            }
            Found::None => None,
        };
        return match found {
            Some((name, def)) => Ok((name.as_str(), def)),
            None => Err(Problem::new(
                "spec.identity",
                Reason::IdentityNotFound,
                if hidden {
                    format!("identity \"{named}\" is not in {kind} {profile_name}; {}", see_status())
                } else if profile.identities.is_empty() {
                    format!("identity \"{named}\" is not in {kind} {profile_name}, which has no identities")
                } else {
                    format!(
                        "identity \"{named}\" is not in {kind} {profile_name}; name one of its identities: {}",
                        list(profile.identities.keys())
                    )
                },
            )),
        };
    }
    let defaults = default_identities(profile);
    match defaults.as_slice() {
        [one] => profile
            .identities
            .get_key_value(*one)
            .map(|(name, def)| (name.as_str(), def))
            .ok_or_else(|| Problem::new("spec.identity", Reason::NoDefaultIdentity, "default identity vanished")),
        [] => Err(Problem::new(
            "spec.identity",
            Reason::NoDefaultIdentity,
            if hidden {
                format!(
                    "not set, and {kind} {profile_name} has no identity marked default: true; name one of its \
                     identities here: {}",
                    see_status()
                )
            } else if profile.identities.is_empty() {
                format!("not set, and {kind} {profile_name} has no identities")
            } else {
                format!(
                    "not set, and {kind} {profile_name} has no identity marked default: true; \
                     name one of its identities here ({}) or mark one default: true in the profile",
                    list(profile.identities.keys())
                )
            },
        )),
        several => Err(Problem::new(
            "spec.identity",
            Reason::MultipleDefaultIdentities,
            if hidden {
                format!(
                    "not set, and {kind} {profile_name} marks several identities default: true; name one here \
                     ({}) or ask its owner to keep a single default",
                    see_status()
                )
            } else {
                format!(
                    "not set, and {kind} {profile_name} marks several identities default: true ({}); \
                     name one here or keep a single default in the profile",
                    list(several.iter())
                )
            },
        )),
    }
}

/// Names of the identities marked `default: true`, in name order.
pub(super) fn default_identities(profile: &AuthProfileSpec) -> Vec<&str> {
    profile
        .identities
        .iter()
        .filter(|(_, def)| def.default == Some(true))
        .map(|(name, _)| name.as_str())
        .collect()
}
