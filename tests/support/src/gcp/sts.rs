//! Google STS's token exchange: a subject token of a pool provider's issuer for a federated
//! access token of its subject.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::StsRefusal;
use super::{Exchange, GcpConfig, GcpState, Issued, PoolProviderConfig, federated_principal};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const SUBJECT_TOKEN_TYPES: [&str; 2] = [
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
];
/// Default access token lifetime in tests (Google's are an hour).
pub(super) const ACCESS_TOKEN_SECONDS: i64 = 60;

/// The claims read before the signature is checked (the log's `jti`, the issuer check).
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

pub(super) async fn token(State(state): State<Arc<GcpState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let subject_token = form.get("subject_token").map(String::as_str).unwrap_or_default();
    let claims = unverified(subject_token).unwrap_or_default();
    let mut record = Exchange {
        audience: form.get("audience").cloned().unwrap_or_default(),
        jti: claims.jti.clone(),
        subject: claims.sub.clone(),
        error: None,
    };
    let outcome = exchange(&state, &form, subject_token, claims.iss).await;
    record.error = outcome.as_ref().err().map(|e| e.error.to_owned());
    if !subject_token.is_empty() {
        tracing::info!(
            audience = record.audience,
            jti = record.jti.as_deref().unwrap_or("-"),
            subject = record.subject.as_deref().unwrap_or("-"),
            outcome = record.error.as_deref().unwrap_or("issued"),
            "local GCP STS: subject token"
        );
        state.exchanges.lock().unwrap_or_else(|p| p.into_inner()).push(record);
    }
    match outcome {
        Ok(body) => Json(body).into_response(),
        Err(err) => err.into_response(),
    }
}

/// `(project number, pool, provider)` of `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`.
fn parse_audience(audience: &str) -> Option<(&str, &str, &str)> {
    let rest = audience.strip_prefix("//iam.googleapis.com/projects/")?;
    let (number, rest) = rest.split_once("/locations/global/workloadIdentityPools/")?;
    let (pool, provider) = rest.split_once("/providers/")?;
    let segment = |s: &str| !s.is_empty() && !s.contains('/');
    (segment(number) && segment(pool) && segment(provider)).then_some((number, pool, provider))
}

fn find_provider<'c>(
    config: &'c GcpConfig,
    number: &str,
    pool: &str,
    provider: &str,
) -> Option<&'c PoolProviderConfig> {
    config
        .pools
        .iter()
        .find(|p| p.project_number == number && p.pool_id == pool)?
        .providers
        .iter()
        .find(|p| p.provider_id == provider)
}

async fn exchange(
    state: &GcpState,
    form: &HashMap<String, String>,
    subject_token: &str,
    iss: Option<String>,
) -> Result<Value, StsRefusal> {
    let field = |name: &str| {
        form.get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StsRefusal::missing(name))
    };
    let grant = field("grant_type")?;
    if grant != TOKEN_EXCHANGE {
        return Err(StsRefusal::unsupported_grant(grant));
    }
    let audience = field("audience")?;
    let subject_type = field("subject_token_type")?;
    if !SUBJECT_TOKEN_TYPES.contains(&subject_type) {
        return Err(StsRefusal::bad_value("subject_token_type", subject_type));
    }
    if let Some(requested) = form.get("requested_token_type")
        && requested != ACCESS_TOKEN_TYPE
    {
        return Err(StsRefusal::bad_value("requested_token_type", requested));
    }
    field("subject_token")?;
    let (number, pool, provider_id) = parse_audience(audience).ok_or_else(|| StsRefusal::bad_audience(audience))?;
    let config = state.config();
    let provider = find_provider(&config, number, pool, provider_id).ok_or_else(StsRefusal::invalid_target)?;

    // The provider's issuer first, then the signature against its keys, then the audience.
    let iss = iss.ok_or_else(StsRefusal::malformed)?;
    if iss != provider.issuer {
        return Err(StsRefusal::issuer_mismatch(&iss, &provider.issuer));
    }
    let verified = state
        .verifier
        .verify(subject_token, Timestamp::now())
        .await
        .map_err(|e| StsRefusal::from_verifier(&e))?;
    let name = super::pool_provider_name(number, pool, provider_id);
    let allowed: Vec<String> = if provider.allowed_audiences.is_empty() {
        vec![name.clone(), format!("https:{name}")]
    } else {
        provider.allowed_audiences.clone()
    };
    if !verified.audiences.iter().any(|a| allowed.contains(a)) {
        return Err(StsRefusal::audience_mismatch(&verified.audiences));
    }

    let seconds = config.access_token_seconds.unwrap_or(ACCESS_TOKEN_SECONDS);
    let scopes = form
        .get("scope")
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let access_token = state.issue(
        "local-gcp-sts",
        Issued {
            // The attribute mapping google.subject=assertion.sub.
            member: federated_principal(number, pool, &verified.subject),
            expires_at: Timestamp::now().as_second() + seconds,
            scopes,
        },
    );
    Ok(json!({
        "access_token": access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": seconds,
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_audience;

    #[test]
    fn the_audience_names_one_pool_provider() {
        assert_eq!(
            parse_audience("//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"),
            Some(("1", "p", "q"))
        );
        for bad in [
            "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q/x",
            "//iam.googleapis.com/projects//locations/global/workloadIdentityPools/p/providers/q",
        ] {
            assert_eq!(parse_audience(bad), None, "{bad}");
        }
    }
}
