//! `github/oidc` → `kubernetes/oidc` when ServiceAccounts are given, and the note that says
//! what IAM must now trust: the cluster's issuer, the audience its IAM OIDC provider must
//! list, and each first-link role's `sub`.

use std::collections::{BTreeMap, BTreeSet};

use super::{Note, ServiceAccounts};
use crate::api::AuthProfileSpec;
use crate::resolve::names::{Found, Names};
use crate::resolve::rules;
/// The provider kind the controller runs.
use crate::settings::PROVIDER_KIND as KUBERNETES_OIDC;

/// The provider kind that only exists inside a GitHub Actions job.
const GITHUB_OIDC: &str = "github/oidc";
/// Atmos's Entra provider: in CI it takes GitHub's token; in a cluster, a ServiceAccount's.
const AZURE_OIDC: &str = "azure/oidc";
/// Atmos's GCP provider: in CI it takes GitHub's token; in a cluster, a ServiceAccount's.
const GCP_WIF: &str = "gcp/workload-identity-federation";

/// `github/oidc` → `kubernetes/oidc` when ServiceAccounts are given (a note says what the
/// IAM trust policies must now trust); otherwise a note says what to pass.
pub(super) fn map_providers(
    spec: &mut AuthProfileSpec,
    service_accounts: &ServiceAccounts,
    namespace: Option<&str>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let names: Vec<String> = spec.providers.keys().cloned().collect();
    for name in names {
        let path = format!("auth.providers.{name}");
        let Some(provider) = spec.providers.get_mut(&name) else {
            continue;
        };
        let is_github = provider.kind == GITHUB_OIDC;
        let is_azure = provider.kind == AZURE_OIDC;
        let is_gcp = provider.kind == GCP_WIF;
        let has_sa = provider.spec.as_ref().is_some_and(|s| s.service_account.is_some());
        if (is_azure || is_gcp) && service_accounts.is_empty() && !has_sa {
            notes.push(Note {
                path,
                message: format!(
                    "{} reads GitHub's token in CI; in a cluster it needs a ServiceAccount: pass \
                     --service-account SA (for example --service-account terraform)",
                    provider.kind
                ),
            });
            continue;
        }
        if is_github && service_accounts.is_empty() {
            notes.push(Note {
                path,
                message: "kept as github/oidc, which runs only inside a GitHub Actions job: pass --service-account \
                          SA (the ServiceAccount whose token the controller requests, for example --service-account \
                          terraform) to make it kubernetes/oidc, and --service-account IDENTITY=SA with --identities \
                          to give an identity its own"
                    .into(),
            });
            continue;
        }
        if !is_github && !is_azure && !is_gcp && provider.kind != KUBERNETES_OIDC {
            continue;
        }
        let provider_spec = provider.spec.get_or_insert_with(Default::default);
        match (&provider_spec.service_account, &service_accounts.default) {
            (None, Some(sa)) => provider_spec.service_account = Some(sa.clone()),
            (Some(kept), Some(sa)) if kept != sa => notes.push(Note {
                path: format!("{path}.spec.service_account"),
                message: format!("kept {kept} from the profile; --service-account {sa} fills in only a missing one"),
            }),
            _ => {}
        }
        if is_azure {
            let ns = namespace.unwrap_or("<namespace>");
            let sa = provider_spec.service_account.as_deref().unwrap_or("<ServiceAccount>");
            notes.push(Note {
                path,
                message: format!(
                    "azure/oidc now federates the cluster's ServiceAccount token instead of GitHub's: the app \
                     registration (client_id) needs a federated credential with the cluster's OIDC issuer, \
                     subject system:serviceaccount:{ns}:{sa} and audience {}",
                    provider_spec
                        .audience
                        .as_deref()
                        .unwrap_or(crate::settings::AZURE_DEFAULT_AUDIENCE)
                ),
            });
            continue;
        }
        if is_gcp {
            let ns = namespace.unwrap_or("<namespace>");
            let sa = provider_spec.service_account.as_deref().unwrap_or("<ServiceAccount>");
            let audience = crate::resolve::gcp_token_audience(&provider_spec.extra)
                .unwrap_or_else(|| "the pool provider's resource name".to_owned());
            notes.push(Note {
                path,
                message: format!(
                    "{GCP_WIF} now federates the cluster's ServiceAccount token instead of GitHub's: the workload \
                     identity pool provider must trust the cluster's OIDC issuer with allowed audience {audience} \
                     and map google.subject=assertion.sub, and the service account it impersonates must let \
                     subject system:serviceaccount:{ns}:{sa} of the pool use it (roles/iam.workloadIdentityUser)"
                ),
            });
            continue;
        }
        if !is_github {
            continue;
        }
        provider.kind = KUBERNETES_OIDC.to_owned();
        let (audience, defaulted) = match &provider_spec.audience {
            Some(audience) => (audience.clone(), ""),
            None => (
                rules::DEFAULT_AUDIENCE.to_owned(),
                ", the controller's default: the profile names none, which Atmos refuses for github/oidc",
            ),
        };
        let default_sa = provider_spec.service_account.clone();
        let trust = trust_lines(spec, &name, default_sa.as_deref(), service_accounts, namespace);
        notes.push(Note {
            path,
            message: format!(
                "github/oidc became kubernetes/oidc with the same name and audience ({audience}{defaulted}){}. The IAM \
                 roles it starts must now trust the cluster's OIDC issuer instead of GitHub's \
                 (token.actions.githubusercontent.com): the cluster's IAM OIDC identity provider must list {audience} \
                 among its audiences (client IDs), and each role's trust policy must match aud {audience} and{trust}. \
                 Jobs on ARC runners can keep using github/oidc through Atmos itself where a role must stay scoped \
                 to a repository or environment",
                default_sa
                    .map(|sa| format!(", ServiceAccount {sa}"))
                    .unwrap_or_default()
            ),
        });
    }
    notes
}

/// ` sub system:serviceaccount:NS:SA for the role of acme/admin (arn:...)`, one clause per
/// first-link role: every identity whose chain starts at `provider` presents its
/// ServiceAccount's token to its chain's first role.
fn trust_lines(
    spec: &AuthProfileSpec,
    provider: &str,
    default_sa: Option<&str>,
    service_accounts: &ServiceAccounts,
    namespace: Option<&str>,
) -> String {
    let ns = namespace.unwrap_or("<namespace>");
    let names = Names::new(spec);
    let mut subjects: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for name in spec.identities.keys() {
        let Some(first) = first_link(spec, &names, name, provider) else {
            continue;
        };
        let sa = service_accounts
            .per_identity
            .get(name)
            .map(String::as_str)
            .or(default_sa);
        if let Some(sa) = sa {
            subjects
                .entry(first)
                .or_default()
                .insert(format!("system:serviceaccount:{ns}:{sa}"));
        }
    }
    if subjects.is_empty() {
        return " the sub of each ServiceAccount used".to_owned();
    }
    let clauses: Vec<String> = subjects
        .iter()
        .map(|(first, subs)| {
            let role = spec.identities[*first]
                .principal
                .as_ref()
                .and_then(|p| p.assume_role.as_deref())
                .map(|arn| format!(" ({arn})"))
                .unwrap_or_default();
            format!(
                " sub {} for the role of {first}{role}",
                subs.iter().cloned().collect::<Vec<_>>().join(" or ")
            )
        })
        .collect();
    clauses.join(";")
}

/// The identity of `name`'s chain whose `via.provider` is `provider`, if the chain starts
/// there (cycles and dangling links: `None`, the resolver reports them). References are
/// followed as the resolver follows them, regardless of case.
fn first_link<'a>(spec: &'a AuthProfileSpec, names: &Names<'a>, name: &'a str, provider: &str) -> Option<&'a str> {
    let mut current = name;
    let mut seen = BTreeSet::new();
    loop {
        if !seen.insert(current) {
            return None;
        }
        let (key, def) = spec.identities.get_key_value(current)?;
        let via = def.via.as_ref()?;
        match (&via.provider, &via.identity) {
            (Some(p), None) => {
                return matches!(names.provider(p), Found::One(found) if found == provider).then_some(key.as_str());
            }
            (None, Some(next)) => match names.identity(next) {
                Found::One(found) => current = found,
                _ => return None,
            },
            _ => return None,
        }
    }
}
