//! `status`: Identities (their chain, expiries, renewal, last error, STS budget wait) and
//! profiles (which Identities use them), read with the caller's own rights from what the
//! controller already records in status.

use std::process::ExitCode;

use jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;

use super::kube_args::{KubeArgs, api_error};
use super::status_view::{self, IdentityView};
use crate::api::{AuthProfile, ClusterAuthProfile, Identity, ProfileKind};

/// `status [NAME | identity/NAME | authprofile/NAME | clusterauthprofile/NAME]`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// An Identity's name, or `identity/NAME`, `authprofile/NAME`, `clusterauthprofile/NAME`
    /// (short `aid/`, `ap/`, `cap/`). Left out: every Identity in the namespace.
    pub target: Option<String>,
    /// Every namespace you can list.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// `table` (default) or `json`.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Output format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// For a person.
    Table,
    /// For a program: the same fields, camelCase.
    Json,
}

/// What `target` names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Identities,
    Identity(String),
    Profile(ProfileKind, String),
}

fn parse_target(target: Option<&str>) -> Result<Target, String> {
    let Some(t) = target else { return Ok(Target::Identities) };
    let Some((kind, name)) = t.split_once('/') else {
        return Ok(Target::Identity(t.to_owned()));
    };
    if name.is_empty() {
        return Err(format!("`{t}`: a name is missing after the `/`"));
    }
    match kind.to_ascii_lowercase().as_str() {
        "identity" | "identities" | "aid" => Ok(Target::Identity(name.to_owned())),
        "authprofile" | "authprofiles" | "ap" => Ok(Target::Profile(ProfileKind::AuthProfile, name.to_owned())),
        "clusterauthprofile" | "clusterauthprofiles" | "cap" => {
            Ok(Target::Profile(ProfileKind::ClusterAuthProfile, name.to_owned()))
        }
        _ => Err(format!(
            "`{kind}` is not a kind this command shows: use identity/NAME, authprofile/NAME or clusterauthprofile/NAME"
        )),
    }
}

/// Runs `status`; the text goes to stdout, a failure to stderr with exit code 1.
pub fn run(args: &StatusArgs) -> ExitCode {
    super::block_on(async {
        let out = show(args).await?;
        print!("{out}");
        Ok(())
    })
}

async fn show(args: &StatusArgs) -> Result<String, String> {
    let target = parse_target(args.target.as_deref())?;
    let (client, namespace) = args.kube.connect().await?;
    let now = Timestamp::now();
    let json = args.output == Output::Json;
    match target {
        Target::Identity(name) => {
            let api: Api<Identity> = Api::namespaced(client, &namespace);
            let identity = api
                .get(&name)
                .await
                .map_err(|e| api_error(&format!("Identity {namespace}/{name}"), &e))?;
            let view = status_view::identity_view(&identity);
            Ok(if json {
                pretty(&view)
            } else {
                status_view::detail(&view, now)
            })
        }
        Target::Identities => {
            let (api, what): (Api<Identity>, String) = if args.all_namespaces {
                (Api::all(client), "Identities in all namespaces".into())
            } else {
                (
                    Api::namespaced(client, &namespace),
                    format!("Identities in namespace {namespace}"),
                )
            };
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| api_error(&what, &e))?;
            let views: Vec<IdentityView> = list.items.iter().map(status_view::identity_view).collect();
            Ok(if json {
                pretty(&views)
            } else if views.is_empty() {
                format!("No Identities found ({what}).\n")
            } else {
                status_view::table(&views, now, args.all_namespaces)
            })
        }
        Target::Profile(kind, name) => {
            let view = profile(client, kind, &name, &namespace).await?;
            Ok(if json {
                pretty(&view)
            } else {
                status_view::profile_detail(&view, now)
            })
        }
    }
}

async fn profile(
    client: kube::Client,
    kind: ProfileKind,
    name: &str,
    namespace: &str,
) -> Result<status_view::ProfileView, String> {
    let (label, conditions, identities) = match kind {
        ProfileKind::AuthProfile => {
            let label = format!("AuthProfile {namespace}/{name}");
            let p = Api::<AuthProfile>::namespaced(client.clone(), namespace)
                .get(name)
                .await
                .map_err(|e| api_error(&label, &e))?;
            let s = p.status.unwrap_or_default();
            (label, s.conditions, names(&s.identities, s.default_identity.as_deref()))
        }
        ProfileKind::ClusterAuthProfile => {
            let label = format!("ClusterAuthProfile {name}");
            let p = Api::<ClusterAuthProfile>::all(client.clone())
                .get(name)
                .await
                .map_err(|e| api_error(&label, &e))?;
            let s = p.status.unwrap_or_default();
            (label, s.conditions, names(&s.identities, s.default_identity.as_deref()))
        }
    };
    // An AuthProfile is used only in its namespace; a ClusterAuthProfile anywhere.
    let (users, scope) = match kind {
        ProfileKind::AuthProfile => (
            Api::<Identity>::namespaced(client, namespace),
            format!("namespace {namespace}"),
        ),
        ProfileKind::ClusterAuthProfile => (Api::<Identity>::all(client), "all namespaces".to_owned()),
    };
    let list = users
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error(&format!("Identities in {scope}"), &e))?;
    let used_by = list
        .items
        .iter()
        .filter(|i| i.spec.profile == name && i.spec.profile_kind.unwrap_or_default() == kind)
        .map(status_view::identity_view)
        .collect();
    Ok(status_view::profile_view(
        label.replacen(' ', "/", 1),
        &conditions,
        identities,
        used_by,
    ))
}

fn names(states: &[crate::api::IdentityState], default: Option<&str>) -> Vec<String> {
    states
        .iter()
        .map(|s| {
            let mut n = s.name.clone();
            if Some(s.name.as_str()) == default {
                n.push_str(" (default)");
            }
            if !s.ready {
                n.push_str(&format!(" [{}]", s.reason.as_deref().unwrap_or("not ready")));
            }
            n
        })
        .collect()
}

/// Pretty JSON of a view, ending with a newline.
pub(super) fn pretty<T: serde::Serialize>(view: &T) -> String {
    // Views are plain strings, numbers and booleans: serializing cannot fail.
    serde_json::to_string_pretty(view).map(|s| s + "\n").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_like_kubectl() {
        assert_eq!(parse_target(None), Ok(Target::Identities));
        assert_eq!(parse_target(Some("net")), Ok(Target::Identity("net".into())));
        assert_eq!(parse_target(Some("aid/net")), Ok(Target::Identity("net".into())));
        assert_eq!(
            parse_target(Some("AuthProfile/acme")),
            Ok(Target::Profile(ProfileKind::AuthProfile, "acme".into()))
        );
        assert_eq!(
            parse_target(Some("cap/platform")),
            Ok(Target::Profile(ProfileKind::ClusterAuthProfile, "platform".into()))
        );
        assert!(parse_target(Some("secret/x")).unwrap_err().contains("identity/NAME"));
        assert!(parse_target(Some("ap/")).unwrap_err().contains("name is missing"));
    }
}
