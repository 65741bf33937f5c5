//! Paste a real `auth:` block (issue 10): the block of tests/import/cases/all-keys, which
//! holds every key of Atmos's auth schema, applies to the real kube-apiserver with strict
//! field validation; the controller lists the keys it does not use in the AuthProfile's
//! status; secrets are refused at admission with a message saying where they belong.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use atmos_auth_controller::api::AuthProfile;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::fixture::*;

/// The all-keys case's `auth:` block as an AuthProfile, with its fake secrets taken out.
fn pasted_profile() -> Result<Value> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/cases/all-keys/atmos.yaml");
    let config: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file)?)?;
    let mut auth = config["auth"].clone();
    let providers = auth["providers"].as_object_mut().context("providers")?;
    providers
        .get_mut("okta")
        .and_then(Value::as_object_mut)
        .context("okta")?
        .remove("password");
    let identities = auth["identities"].as_object_mut().context("identities")?;
    let credentials = identities["break-glass"]["credentials"]
        .as_object_mut()
        .context("credentials")?;
    credentials.remove("access_key_id");
    credentials.remove("secret_access_key");
    Ok(json!({
        "apiVersion": "auth.atmos.tools/v1alpha1",
        "kind": "AuthProfile",
        "metadata": {"name": "pasted"},
        "spec": auth,
    }))
}

/// Server-side apply with kubectl's strict field validation: an unknown key is an error.
async fn apply_strict(api: &Api<AuthProfile>, object: &Value) -> Result<(), kube::Error> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let params = PatchParams::apply("e2e-paste").force().validation_strict();
    api.patch(name, &params, &Patch::Apply(object)).await.map(|_| ())
}

#[tokio::test]
async fn a_pasted_block_applies_strictly_and_secrets_are_refused() -> Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "paste").await?;
    let sts = start_sts(cp);
    let _controller = ControllerProcess::start(cp, &ns, &sts.endpoint(), &[])?;
    let api: Api<AuthProfile> = Api::namespaced(client.clone(), &ns);

    let profile = pasted_profile()?;
    apply_strict(&api, &profile)
        .await
        .context("every Atmos key must pass strict field validation")?;
    // The schema's strictness is real: a key Atmos does not have is refused.
    let mut typo = profile.clone();
    typo["metadata"]["name"] = json!("typo");
    typo["spec"]["identities"]["acme/admin"]["principals"] = json!({});
    match apply_strict(&api, &typo).await {
        Err(kube::Error::Api(e)) if e.message.contains("principals") => {}
        other => bail!("a key Atmos does not have must be refused strictly: {other:?}"),
    }

    // The status lists what is kept but not used, one line each.
    wait_for(Duration::from_secs(30), || async {
        let p = api.get("pasted").await?;
        Ok(p.status.is_some_and(|s| !s.warnings.is_empty()))
    })
    .await
    .context("the AuthProfile's status never listed warnings")?;
    let warnings = api.get("pasted").await?.status.map(|s| s.warnings).unwrap_or_default();
    for expected in [
        "auth.realm: kept, not used in a cluster: ",
        "auth.integrations.acme/eks: kept, not used in a cluster: ",
        "auth.identities.acme/admin.alias: kept, not used in a cluster: ",
        "auth.identities.acme/admin.session: not used: for aws/assume-role Atmos reads only principal.duration",
    ] {
        ensure!(
            warnings.iter().any(|w| w.starts_with(expected)),
            "no warning starting {expected:?} in {warnings:#?}"
        );
    }

    // Secrets never get in: each refused by the apiserver, saying where they belong.
    for (what, patch, says) in [
        (
            "a provider password",
            json!({"providers": {"okta": {"password": "not-a-real-password"}}}),
            "password is refused",
        ),
        (
            "static keys",
            json!({"identities": {"break-glass": {"credentials": {"secret_access_key": "not-a-real-secret"}}}}),
            "static keys (access_key_id, secret_access_key) are refused",
        ),
        (
            "a credential-named env entry",
            json!({"identities": {"acme/admin": {"env": [{"key": "AWS_SECRET_ACCESS_KEY", "value": "not-real"}]}}}),
            "an env entry named like a credential is refused",
        ),
    ] {
        let mut bad = profile.clone();
        bad["metadata"]["name"] = json!("secret");
        atmos_auth_controller::resolve::deep_merge(&mut bad["spec"], patch);
        match apply_strict(&api, &bad).await {
            Err(kube::Error::Api(e)) => {
                ensure!(e.message.contains(says), "{what}: {}", e.message);
                ensure!(
                    !e.message.contains("not-a-real") && !e.message.contains("not-real"),
                    "{what} echoed: {}",
                    e.message
                );
            }
            other => bail!("{what} must be refused at admission: {other:?}"),
        }
    }
    ensure!(api.get_opt("secret").await?.is_none(), "nothing was stored");
    Ok(())
}
