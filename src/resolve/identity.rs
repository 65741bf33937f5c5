//! Resolving one `Identity` resource against its profile, for the Identity reconcile.

use serde_json::Value;

use super::Settings;
use super::delivery::{Cloud, access_token_problem, check_delivery, federated_formats};
use super::identity_fields::{check_refresh_before, check_secret, check_service_account_name};
use super::merge::merge_over;
use super::model::{Delivery, Federation, FederationTarget, Resolved};
use super::names::{Names, atmos_name, capitals_note};
use super::overrides::external_id_problem;
use super::problem::{Problem, Reason};
use super::target::select_target;
use super::walk::{Chain, Checker};
use super::warnings::{Warning, dedup};
use crate::api::{AuthProfileSpec, IdentitySpec};

/// Resolves one `Identity` (`identity`, named `identity_object_name`) against its profile:
/// picks the target identity (`spec.identity`, else the profile's single `default: true`),
/// deep-merges the Identity's overrides over it, follows `via.identity` to a `via.provider`
/// and checks every link, the provider and the Identity's own fields.
///
/// Returns every problem found, in a stable order: target selection, the chain's structure
/// (target towards provider), the provider, each link (provider towards target), then the
/// Identity's own fields.
pub fn resolve(
    profile: &AuthProfileSpec,
    identity: &IdentitySpec,
    identity_object_name: &str,
    settings: &Settings,
) -> Result<Resolved, Vec<Problem>> {
    let mut problems = Vec::new();
    let names = Names::new(profile);

    let target = match select_target(profile, &names, identity) {
        Ok(target) => Some(target),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };

    let mut outcome = None;
    if let Some((name, def)) = target {
        problems.extend(external_id_problem(name, def, &identity.overrides));
        let overrides = serde_json::to_value(&identity.overrides).unwrap_or(Value::Null);
        match merge_over(def, &identity.overrides) {
            Ok(merged) => {
                let mut checker = Checker {
                    profile,
                    settings,
                    target: name,
                    overrides: Some(&overrides),
                    names: &names,
                    problems: Vec::new(),
                    warnings: Vec::new(),
                };
                if let Some(note) = capitals_note(name) {
                    checker
                        .warnings
                        .push(Warning::new(format!("auth.identities.{name}"), note));
                }
                let chain = checker.check(&merged, identity.service_account_name.as_deref(), true);
                problems.append(&mut checker.problems);
                outcome = Some((name, chain, checker.warnings));
            }
            Err(err) => problems.push(Problem::new(
                "spec",
                Reason::InvalidIdentity,
                format!(
                    "the Identity's fields cannot be merged over identity {name} of the profile \
                     ({err}); fix the overridden fields"
                ),
            )),
        }
    }

    // The delivery of the token, for a chain that reached an Azure target (or would have:
    // an azure/subscription target whose provider had problems still gets its own checked).
    let mut delivery = None;
    let mut cloud = Cloud::Azure;
    let mut aws_chain = false;
    if let Some((_, chain, _)) = &mut outcome {
        let gcp = chain.gcp.is_some() || super::kinds::is_gcp_identity(&chain.target_kind);
        let federated = gcp || chain.azure.is_some() || chain.target_kind == super::kinds::AZURE_IDENTITY_KIND;
        cloud = if gcp { Cloud::Gcp } else { Cloud::Azure };
        let provider = chain
            .provider
            .as_deref()
            .and_then(|p| profile.providers.get_key_value(p))
            .map(|(k, v)| (k.as_str(), v));
        aws_chain = !federated;
        let federated = federated.then_some(cloud);
        delivery = check_delivery(identity, federated, provider, chain.token.as_mut(), &mut problems);
    }

    check_service_account_name(identity, &mut problems);
    let refresh_before_seconds =
        check_refresh_before(identity, &mut problems).or(settings.default_refresh_before_seconds);
    let mut secret = check_secret(identity, identity_object_name, &mut problems);
    match (&mut secret, &delivery) {
        (Some(plan), Some(delivery)) => federated_formats(identity, plan, (cloud, delivery), &mut problems),
        (Some(plan), None) if aws_chain => problems.extend(access_token_problem(&plan.formats, None)),
        _ => {}
    }

    match (outcome, secret) {
        (Some((name, chain, warnings)), Some(secret)) if problems.is_empty() => {
            let chosen = Chosen {
                secret,
                refresh_before_seconds,
                warnings: dedup(warnings),
            };
            assemble(name, chain, delivery, chosen)
        }
        _ => Err(problems),
    }
}

/// What the Identity's own fields decided, for [`assemble`].
struct Chosen {
    secret: super::model::SecretPlan,
    refresh_before_seconds: Option<i64>,
    warnings: Vec<Warning>,
}

/// The `Resolved` of a chain without problems: AWS links, or an Azure target with its
/// token's delivery.
fn assemble(name: &str, chain: Chain, delivery: Option<Delivery>, chosen: Chosen) -> Result<Resolved, Vec<Problem>> {
    let Chosen {
        secret,
        refresh_before_seconds,
        warnings,
    } = chosen;
    let target = match (chain.azure, chain.gcp) {
        (Some(azure), None) => Some(FederationTarget::Azure(azure)),
        (None, Some(gcp)) => Some(FederationTarget::Gcp(gcp)),
        _ => None,
    };
    match (chain.token, chain.links.last(), target, delivery) {
        (Some(token), None, Some(target), Some(delivery)) => Ok(Resolved {
            identity: atmos_name(name),
            region: match &target {
                FederationTarget::Azure(azure) => azure.location.clone(),
                FederationTarget::Gcp(gcp) => gcp.region.clone(),
            }
            .unwrap_or_default(),
            chain: chain.names,
            token,
            links: Vec::new(),
            secret,
            refresh_before_seconds,
            warnings,
            federation: Some(Federation { target, delivery }),
        }),
        (Some(token), Some(last), None, None) => Ok(Resolved {
            identity: atmos_name(name),
            region: last.region.clone(),
            chain: chain.names,
            token,
            links: chain.links,
            secret,
            refresh_before_seconds,
            warnings,
            federation: None,
        }),
        // Unreachable when no problem was found; reported rather than assumed.
        _ => Err(vec![Problem::new(
            format!("auth.identities.{name}"),
            Reason::InvalidProfile,
            "the chain did not resolve to a provider and at least one link (AWS) or an Azure or GCP target",
        )]),
    }
}
