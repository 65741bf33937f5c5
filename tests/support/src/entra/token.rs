//! The two endpoints: the tenant's discovery document and its token endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::EntraError;
use super::{Assertion, EntraState};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Default access token lifetime in tests (Entra's are an hour or more).
const ACCESS_TOKEN_SECONDS: i64 = 60;

pub(super) async fn discovery(State(state): State<Arc<EntraState>>, Path(tenant): Path<String>) -> Response {
    if let Err(err) = state.config().app_lookup_tenant(&tenant) {
        return err.into_response();
    }
    let base = format!("{}/{tenant}", state.base_url);
    Json(json!({
        "issuer": format!("{base}/v2.0"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "local",
    }))
    .into_response()
}

impl super::EntraConfig {
    fn app_lookup_tenant(&self, tenant: &str) -> Result<(), EntraError> {
        if self.tenants.iter().any(|t| t.id.eq_ignore_ascii_case(tenant)) {
            Ok(())
        } else {
            Err(EntraError::tenant_not_found(tenant))
        }
    }
}

/// The claims read before the signature is checked: Entra picks the federated credential by
/// issuer first.
#[derive(Deserialize, Default)]
struct Unverified {
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
}

fn unverified(token: &str) -> Option<Unverified> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(super) async fn token(State(state): State<Arc<EntraState>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let assertion = form.get("client_assertion").map(String::as_str).unwrap_or_default();
    let claims = unverified(assertion).unwrap_or_default();
    let mut record = Assertion {
        tenant: tenant.clone(),
        client_id: client_id.clone(),
        jti: claims.jti.clone(),
        subject: claims.sub.clone(),
        error: None,
    };
    let outcome = exchange(&state, &tenant, &form, claims).await;
    record.error = outcome.as_ref().err().map(EntraError::aadsts);
    if !assertion.is_empty() {
        tracing::info!(
            tenant,
            client_id,
            jti = record.jti.as_deref().unwrap_or("-"),
            subject = record.subject.as_deref().unwrap_or("-"),
            outcome = record.error.as_deref().unwrap_or("issued"),
            "local Entra: client assertion"
        );
        state.assertions.lock().unwrap_or_else(|p| p.into_inner()).push(record);
    }
    match outcome {
        Ok(body) => Json(body).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn exchange(
    state: &EntraState,
    tenant: &str,
    form: &HashMap<String, String>,
    claims: Unverified,
) -> Result<Value, EntraError> {
    let field = |name: &str| {
        form.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| EntraError::missing_field(name))
    };
    let config = state.config();
    config.app_lookup_tenant(tenant)?;
    let grant = field("grant_type")?;
    if grant != "client_credentials" {
        return Err(EntraError::unsupported_grant(grant));
    }
    let client_id = field("client_id")?;
    let app = config.app(tenant, client_id)?;
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(EntraError::bad_assertion_type());
    }
    let assertion = field("client_assertion")?;
    let scope = field("scope")?;
    if !scope.split(' ').all(|s| s.ends_with("/.default")) {
        return Err(EntraError::bad_scope(scope));
    }

    // The credential is chosen by the assertion's issuer, then its signature is checked
    // against that issuer's keys, then subject and audience must match exactly.
    let iss = claims.iss.ok_or_else(EntraError::malformed)?;
    let sub = claims.sub.unwrap_or_default();
    let candidates: Vec<_> = app.federated_credentials.iter().filter(|c| c.issuer == iss).collect();
    if candidates.is_empty() {
        return Err(EntraError::no_issuer_match(&iss, &sub));
    }
    let verified = state
        .verifier
        .verify(assertion, Timestamp::now())
        .await
        .map_err(|e| EntraError::from_verifier(&e, &iss, &sub))?;
    let matched = candidates.iter().any(|c| {
        c.subject == verified.subject && c.audiences().iter().any(|a| verified.audiences.iter().any(|t| t == a))
    });
    if !matched {
        return Err(EntraError::no_record(&iss, &verified.subject, &verified.audiences));
    }

    let seconds = config.access_token_seconds.unwrap_or(ACCESS_TOKEN_SECONDS);
    let random: [u8; 32] = rand::random();
    let access_token = format!("local-entra.{}", hex::encode(random));
    state
        .issued
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(access_token.clone());
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": seconds,
        "ext_expires_in": seconds,
        "access_token": access_token,
    }))
}
