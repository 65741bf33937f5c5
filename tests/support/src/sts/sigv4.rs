//! AWS Signature Version 4 verification (`Authorization` header form), canonicalizing requests
//! exactly as aws-sigv4 (the Rust SDK) and botocore do for non-S3 services: normalized and
//! double-encoded path, query re-encoded and sorted, signed headers trimmed, payload hashed.

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp, civil::DateTime, tz::TimeZone};
use sha2::{Digest, Sha256};

use super::error::StsError;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's `x-amz-date` may be from the server's clock (AWS: 15 minutes).
pub const MAX_SKEW: SignedDuration = SignedDuration::from_mins(15);

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
/// header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// A received request, as far as signing is concerned.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as it came over the wire (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

pub fn parse_authorization(value: &str) -> Result<Authorization, StsError> {
    let Some(rest) = value.strip_prefix(ALGORITHM) else {
        return Err(StsError::incomplete_signature(format!(
            "Unsupported AWS 'algorithm': only {ALGORITHM} is supported"
        )));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing =
        |name: &str| StsError::incomplete_signature(format!("Authorization header requires '{name}' parameter."));
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
        return Err(StsError::incomplete_signature(
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request.",
        ));
    };
    Ok(Authorization {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed_headers
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        signature: signature.to_owned(),
    })
}

/// RFC 3986 encoding of everything but the unreserved characters (and `/` if asked).
fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3986 §5.2.4 dot-segment removal, as aws-sigv4 does it.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if !(path.contains('.') || path.contains("//")) {
        return path;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut result = format!("/{}", segments.join("/"));
    let ends_with_slash = ["/", "/.", "/./", "/..", "/../"].iter().any(|s| path.ends_with(s));
    if ends_with_slash && !result.ends_with('/') {
        result.push('/');
    }
    result
}

fn canonical_query(query: Option<&str>) -> String {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    params.sort();
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims a header value and collapses runs of spaces, as aws-sigv4's `trim_all`.
fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut previous_space = false;
    for c in value.trim_matches(' ').chars() {
        if c == ' ' && previous_space {
            continue;
        }
        previous_space = c == ' ';
        out.push(c);
    }
    out
}

/// The hex SHA-256 of the payload: `x-amz-content-sha256` if sent (it must then match the
/// body), else computed from the body.
fn payload_hash(req: &Request<'_>) -> Result<String, StsError> {
    let computed = hex::encode(Sha256::digest(req.body));
    match req.headers.get("x-amz-content-sha256") {
        None => Ok(computed),
        Some(v) => {
            let claimed = v.to_str().unwrap_or_default();
            if claimed == "UNSIGNED-PAYLOAD" || claimed.eq_ignore_ascii_case(&computed) {
                Ok(claimed.to_owned())
            } else {
                Err(StsError::signature_mismatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ))
            }
        }
    }
}

pub fn canonical_request(req: &Request<'_>, signed_headers: &[String]) -> Result<String, StsError> {
    let mut out = String::new();
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&uri_encode(&normalize_path(req.path), true));
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for name in signed_headers {
        let values: Result<Vec<String>, StsError> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                v.to_str()
                    .map(trim_all)
                    .map_err(|_| StsError::signature_mismatch_default())
            })
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values?.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(&payload_hash(req)?);
    Ok(out)
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The hex signature of `req` under `auth`'s scope and signed headers with `secret`.
pub fn signature(req: &Request<'_>, auth: &Authorization, secret: &str) -> Result<String, StsError> {
    let amz_date = amz_date(req.headers)?;
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let creq = canonical_request(req, &auth.signed_headers)?;
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    Ok(hex::encode(hmac(
        &key,
        string_to_sign(amz_date, &scope, &creq).as_bytes(),
    )))
}

fn amz_date(headers: &HeaderMap) -> Result<&str, StsError> {
    headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or_else(|| {
        StsError::incomplete_signature("Authorization header requires existence of a 'X-Amz-Date' header.")
    })
}

fn parse_amz_date(value: &str) -> Option<Timestamp> {
    let dt = DateTime::strptime("%Y%m%dT%H%M%SZ", value).ok()?;
    Some(dt.to_zoned(TimeZone::UTC).ok()?.timestamp())
}

/// Checks the scope, the clock and the signature of `req` against `secret`.
pub fn verify(
    (req, service): (&Request<'_>, &str),
    auth: &Authorization,
    secret: &str,
    now: Timestamp,
) -> Result<(), StsError> {
    let amz_date = amz_date(req.headers)?;
    let Some(signed_at) = parse_amz_date(amz_date) else {
        return Err(StsError::incomplete_signature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        )));
    };
    if auth.service != service {
        return Err(StsError::signature_mismatch(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    if !amz_date.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(StsError::signature_mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            amz_date.get(..8).unwrap_or(amz_date)
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(StsError::signature_mismatch(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let skew = now.duration_since(signed_at);
    if skew > MAX_SKEW {
        return Err(StsError::signature_mismatch(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format_amz_date(now - MAX_SKEW),
            format_amz_date(now)
        )));
    }
    if -skew > MAX_SKEW {
        return Err(StsError::signature_mismatch(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(now + MAX_SKEW),
            format_amz_date(now)
        )));
    }
    let expected = signature(req, auth, secret)?;
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(StsError::signature_mismatch_default())
    }
}

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn format_amz_date(ts: Timestamp) -> String {
    ts.strftime("%Y%m%dT%H%M%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// AWS's documented example: IAM ListUsers signed with AKIDEXAMPLE.
    #[test]
    fn matches_the_aws_documentation_example() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let req = Request {
            method: "GET",
            path: "/",
            query: Some("Version=2010-05-08&Action=ListUsers"),
            headers: &headers,
            body: b"",
        };
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"].map(String::from).to_vec();
        let creq = canonical_request(&req, &signed).unwrap();
        assert_eq!(
            creq,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(Sha256::digest(creq.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        )
        .unwrap();
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(
            signature(&req, &auth, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").unwrap(),
            auth.signature
        );
    }

    #[test]
    fn canonicalizes_paths_queries_and_headers() {
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/a/./b/../c/"), "/a/c/");
        assert_eq!(normalize_path("/a//b"), "/a/b");
        assert_eq!(uri_encode("/a b/%41", true), "/a%20b/%2541");
        assert_eq!(canonical_query(Some("b=2&a=x+y&a=%2F&c")), "a=%2F&a=x%20y&b=2&c=");
        assert_eq!(trim_all("  a   b  c "), "a b c");
    }

    #[test]
    fn rejects_malformed_authorization() {
        for bad in [
            "AWS4-HMAC-SHA512 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/b/c/aws4_request, SignedHeaders=host, Signature=00",
        ] {
            assert_eq!(parse_authorization(bad).unwrap_err().code, "IncompleteSignature");
        }
    }
}
