//! A controller started without one of its CRDs (an upgrade that skipped them) reconciles
//! nothing: it must say so, at the default log level, naming the resource and what to do, and
//! `/readyz` must name the watch that has not synced. Once the CRD is installed, it works.
//! On a private control plane: the shared one has every CRD.

use std::time::Duration;

use anyhow::Result;
use atmos_auth_testenv::controlplane::ControlPlane;

use crate::fixture::*;
use crate::{identity, profile};

const MISSING: &str = "clusterauthprofiles.auth.atmos.tools";

#[tokio::test]
async fn a_missing_crd_is_an_error_naming_it_and_readyz_names_the_watch() -> Result<()> {
    let _heavy = crate::serial::own_control_plane().await;
    let cp = ControlPlane::start()?;
    let without = CRD_FILES
        .iter()
        .filter(|f| !f.starts_with(MISSING))
        .map(|f| crd(f))
        .collect::<Result<Vec<_>>>()?;
    install_crd_objects(&cp, without).await?;
    let client = cp.client().await?;
    let ns = namespace(&client, "missing-crd").await?;
    apply(&client, &ns, &profile("20m")).await?;
    apply(&client, &ns, &identity("app", "")).await?;
    let sts = start_sts(&cp);
    // The default log level, as the chart runs it.
    let controller = ControllerProcess::start_as_admin(&cp, &ns, &sts.endpoint(), &["--log-level", "info"])?;

    let logged = wait_for(Duration::from_secs(30), || async {
        Ok(controller
            .log_text()
            .lines()
            .any(|l| l.contains(r#""level":"ERROR""#) && l.contains(MISSING) && l.contains("crds.install=true")))
    })
    .await;
    assert!(
        logged.is_ok(),
        "no error naming {MISSING} and what to do\n{}",
        log_tail(&controller.log_text())
    );
    let (code, body) = controller.admin_get("/readyz").await?;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains(MISSING), "/readyz does not name the watch: {body}");

    // What the message says to do works: the Identity is issued, the controller ready.
    install_crds(&cp).await?;
    wait_reason(&client, &ns, "app", "CredentialsIssued", Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", log_tail(&controller.log_text())))?;
    let (code, body) = controller.admin_get("/readyz").await?;
    assert_eq!((code, body.as_str()), (200, "ok"));
    Ok(())
}
