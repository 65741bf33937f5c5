//! The local STS judges real kube-apiserver tokens the way AWS would: it accepts a token of
//! a trusted ServiceAccount and rejects a wrong audience, a `sub` outside the trust policy
//! and a token signed by another key. (Expired tokens: the apiserver mints none shorter than
//! 10 minutes, so tests/support/tests/sts.rs covers them with its own issuer.)

use atmos_auth_testenv::sts::issuer::{SigningKey, TokenClaims};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;

use crate::fixture::*;

async fn token(client: &kube::Client, ns: &str, sa: &str, audience: &str) -> anyhow::Result<String> {
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.to_owned()],
            expiration_seconds: Some(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let tr = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &Default::default(), &req)
        .await?;
    Ok(tr.status.map(|s| s.token).unwrap_or_default())
}

async fn exchange(endpoint: &str, jwt: &str) -> Result<String, String> {
    let out = sts_client(endpoint, None)
        .assume_role_with_web_identity()
        .role_arn(ADMIN_ROLE)
        .role_session_name("e2e")
        .web_identity_token(jwt)
        .send()
        .await;
    match out {
        Ok(o) => Ok(o.assumed_role_user.map(|u| u.arn).unwrap_or_default()),
        Err(e) => Err(aws_sdk_sts::error::ProvideErrorMetadata::code(&e)
            .unwrap_or("transport")
            .to_owned()),
    }
}

#[tokio::test]
async fn the_local_sts_verifies_real_service_account_tokens() -> anyhow::Result<()> {
    let cp = control_plane();
    let client = cp.client().await?;
    let ns = namespace(&client, "sts-tokens").await?;
    service_account(&client, &ns, "intruder").await?;
    let sts = start_sts(cp);
    let ep = sts.endpoint();

    let good = token(&client, &ns, "terraform", "sts.amazonaws.com").await?;
    assert!(
        exchange(&ep, &good)
            .await
            .is_ok_and(|arn| arn.contains("assumed-role/e2e-admin/e2e"))
    );

    let wrong_audience = token(&client, &ns, "terraform", "not-sts").await?;
    assert_eq!(
        exchange(&ep, &wrong_audience).await,
        Err("InvalidIdentityToken".to_owned())
    );

    let outside_policy = token(&client, &ns, "intruder", "sts.amazonaws.com").await?;
    assert_eq!(exchange(&ep, &outside_policy).await, Err("AccessDenied".to_owned()));

    // Same issuer, subject and audience, but signed by a key the apiserver never published.
    let forger = SigningKey::es256("forged")?;
    let claims = TokenClaims::new(
        cp.issuer(),
        &format!("system:serviceaccount:{ns}:terraform"),
        &["sts.amazonaws.com"],
        600,
    );
    let forged = forger.sign(&claims)?;
    assert_eq!(exchange(&ep, &forged).await, Err("InvalidIdentityToken".to_owned()));
    Ok(())
}
