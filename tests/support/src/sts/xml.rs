//! The XML bodies AWS STS answers with (Query protocol, version 2011-06-15).

use std::fmt::Write as _;

use jiff::Timestamp;

use super::error::StsError;
use super::sessions::Session;

pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Escapes text for an XML element body.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// AWS's timestamp form: `2026-01-02T03:04:05Z`.
pub fn timestamp(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn element(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape(value));
}

fn credentials_and_user(out: &mut String, session: &Session) {
    out.push_str("<Credentials>");
    element(out, "AccessKeyId", &session.access_key_id);
    element(out, "SecretAccessKey", &session.secret_access_key);
    element(out, "SessionToken", &session.session_token);
    element(out, "Expiration", &timestamp(session.expiration));
    out.push_str("</Credentials><AssumedRoleUser>");
    element(out, "AssumedRoleId", &session.assumed_role_id());
    element(out, "Arn", &session.assumed_role_arn());
    out.push_str("</AssumedRoleUser>");
    element(out, "SessionTokenSize", &session.session_token.len().to_string());
}

/// What AWS reports about session policies: `PackedPolicySize` and its successor
/// `SessionTokenUtilization`, both a percentage.
fn policy_size(out: &mut String, percent: Option<u32>) {
    if let Some(percent) = percent {
        element(out, "PackedPolicySize", &percent.to_string());
        element(out, "SessionTokenUtilization", &percent.to_string());
    }
}

fn envelope(action: &str, result: &str, request_id: &str) -> String {
    let mut out = String::with_capacity(result.len() + 300);
    let _ = writeln!(
        out,
        "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        escape(request_id)
    );
    out
}

/// What `AssumeRoleWithWebIdentity` reports besides the session.
pub struct WebIdentityResult<'a> {
    pub subject: &'a str,
    pub audience: &'a str,
    pub provider: &'a str,
    pub packed_policy_size: Option<u32>,
}

pub fn assume_role_with_web_identity(request_id: &str, session: &Session, web: &WebIdentityResult<'_>) -> String {
    let mut result = String::new();
    credentials_and_user(&mut result, session);
    element(&mut result, "SubjectFromWebIdentityToken", web.subject);
    element(&mut result, "Audience", web.audience);
    element(&mut result, "Provider", web.provider);
    policy_size(&mut result, web.packed_policy_size);
    envelope("AssumeRoleWithWebIdentity", &result, request_id)
}

pub fn assume_role(request_id: &str, session: &Session, packed_policy_size: Option<u32>) -> String {
    let mut result = String::new();
    credentials_and_user(&mut result, session);
    policy_size(&mut result, packed_policy_size);
    envelope("AssumeRole", &result, request_id)
}

pub fn get_caller_identity(request_id: &str, caller: &Session) -> String {
    let mut result = String::new();
    element(&mut result, "Arn", &caller.assumed_role_arn());
    element(&mut result, "UserId", &caller.assumed_role_id());
    element(&mut result, "Account", &caller.account);
    envelope("GetCallerIdentity", &result, request_id)
}

pub fn error(request_id: &str, err: &StsError) -> String {
    let mut out = String::with_capacity(300 + err.message.len());
    let _ = write!(out, "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>Sender</Type>");
    element(&mut out, "Code", err.code);
    element(&mut out, "Message", &err.message);
    out.push_str("</Error>");
    element(&mut out, "RequestId", request_id);
    out.push_str("</ErrorResponse>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        let ts = Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(timestamp(ts), "2023-11-14T22:13:20Z");
        let body = error("rid", &StsError::access_denied("no & no"));
        assert_eq!(
            body,
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
             <Code>AccessDenied</Code><Message>no &amp; no</Message></Error><RequestId>rid</RequestId>\
             </ErrorResponse>\n"
        );
    }
}
