//! What a profile means as Atmos reads it (v1.226.1), end to end against the local STS: the
//! endpoint of each call is in `safety.rs`; here the duration STS is sent.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::fixture::*;
use crate::{identity, profile};

/// Atmos on a duration Go's `time.ParseDuration` refuses logs a warning and sends no
/// `DurationSeconds` (`pkg/auth/identities/aws/assume_role.go:110-115`, `295-300`), so STS
/// grants its default hour. So does the controller, and the profile says why.
#[tokio::test]
async fn an_unparseable_duration_gets_stss_default_hour() -> anyhow::Result<()> {
    let Scenario {
        cp: _,
        client,
        ns,
        sts: _sts,
        controller,
    } = Scenario::start("duration").await?;
    let prof = profile("20m").replace(
        "duration: 20m, region: us-east-2",
        "duration: 2 hours, region: us-east-2",
    );
    apply(&client, &ns, &prof).await?;
    apply(&client, &ns, &identity("admin", "")).await?;
    wait_reason(&client, &ns, "admin", "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(|e| e.context(log_tail(&controller.log_text())))?;
    let (_, _, _, expiration) = process_credentials(&secret_data(&client, &ns, "admin").await?)?;
    let issued = issued_at(&Api::<Secret>::namespaced(client.clone(), &ns), "admin").await?;
    let lifetime = expiration
        .parse::<jiff::Timestamp>()?
        .duration_since(issued.parse::<jiff::Timestamp>()?)
        .as_secs();
    assert!(
        (3540..=3600).contains(&lifetime),
        "a session of {lifetime} s, not STS's default hour"
    );
    let profiles: Api<atmos_auth_controller::api::AuthProfile> = Api::namespaced(client.clone(), &ns);
    let warned = "auth.identities.acme/admin.principal.duration: \"2 hours\" is not a Go duration";
    wait_for(Duration::from_secs(30), || async {
        let status = profiles.get("k8s").await?.status.unwrap_or_default();
        Ok(status.warnings.iter().any(|w| w.starts_with(warned)))
    })
    .await
    .map_err(|e| e.context("the AuthProfile's status never showed the duration warning"))?;
    Ok(())
}
