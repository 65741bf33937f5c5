//! `renew NAME` / `renew --all [-l SELECTOR]`: asks the controller for one renewal now, by
//! setting the Identity's `auth.atmos.tools/renew-requested-at` annotation. The right to ask
//! is the right to patch the Identity (not its spec: the admission policies check spec
//! changes only). The controller serves it through the same rate limit and fair queue, at
//! most once per minimum refresh interval; `status NAME` shows when it was served.

use std::process::ExitCode;

use jiff::Timestamp;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use super::kube_args::{KubeArgs, verb_error};
use crate::api::Identity;
use crate::output::labels::RENEW_REQUESTED_AT;

/// `renew NAME | --all [-l SELECTOR]`.
#[derive(clap::Args, Debug)]
pub struct RenewArgs {
    /// The Identity to renew.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Every Identity of the namespace (those `-l` selects, with it).
    #[arg(long)]
    pub all: bool,
    /// A label selector, with `--all` (`team=infra`).
    #[arg(short = 'l', long, requires = "all")]
    pub selector: Option<String>,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Runs `renew`.
pub fn run(args: &RenewArgs) -> ExitCode {
    super::block_on(async {
        let out = renew(args).await?;
        print!("{out}");
        Ok(())
    })
}

async fn renew(args: &RenewArgs) -> Result<String, String> {
    let (client, ns) = args.kube.connect().await?;
    let api: Api<Identity> = Api::namespaced(client, &ns);
    let names = match &args.name {
        Some(name) => vec![name.clone()],
        None => {
            let mut lp = ListParams::default();
            if let Some(sel) = &args.selector {
                lp = lp.labels(sel);
            }
            let list = api
                .list(&lp)
                .await
                .map_err(|e| super::kube_args::api_error(&format!("Identities in namespace {ns}"), &e))?;
            list.items.iter().filter_map(|i| i.metadata.name.clone()).collect()
        }
    };
    if names.is_empty() {
        return Ok(format!("No Identities to renew in namespace {ns}.\n"));
    }
    let mut out = String::new();
    for name in names {
        // Nanoseconds: two requests in one second are still two requests.
        let at = Timestamp::now().to_string();
        let patch = serde_json::json!({"metadata": {"annotations": {RENEW_REQUESTED_AT: at}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| verb_error(("patch", "patching"), &format!("Identity {ns}/{name}"), &e))?;
        out.push_str(&format!(
            "renewal of Identity {ns}/{name} requested at {at}; `status {name}` shows when it is served\n"
        ));
    }
    Ok(out)
}
