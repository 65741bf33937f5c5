//! Last line of defence for text that reaches logs, events and status: anything shaped like a
//! JWT, an AWS secret key or session token is replaced, wherever it starts and whatever it is
//! glued to (`WebIdentityToken=eyJ…`, `<SessionToken>…</SessionToken>`, `(eyJ…)`). Messages
//! are built without secrets in the first place; this catches what a remote service might
//! echo back.

/// What a secret is replaced with.
const REDACTED: &str = "<redacted>";
/// Shortest JWT-like run redacted: `eyJ` (base64url of `{"`) and a few more characters.
const MIN_JWT_LEN: usize = 16;
/// AWS secret keys are 40 base64 characters, session tokens hundreds.
const MIN_SECRET_LEN: usize = 40;

/// Replaces JWT-like runs and long base64 runs with `<redacted>`.
pub fn redact(text: &str) -> String {
    redact_base64(&redact_jwts(text))
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `eyJ` and every base64url character and `.`-joined segment after it (a JWT's header,
/// payload and signature), wherever it starts.
fn redact_jwts(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut from) = (0, 0);
    while let Some(found) = text[from..].find("eyJ") {
        let start = from + found;
        let mut end = start + 3;
        loop {
            while end < bytes.len() && is_base64url(bytes[end]) {
                end += 1;
            }
            if end + 1 < bytes.len() && bytes[end] == b'.' && is_base64url(bytes[end + 1]) {
                end += 1;
            } else {
                break;
            }
        }
        if end - start >= MIN_JWT_LEN {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        from = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Length in bytes of the base64 character at `i` (`+` and `/` also percent-encoded, as
/// in a form body), or 0.
fn base64_char_at(bytes: &[u8], i: usize) -> usize {
    match bytes[i] {
        b if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' => 1,
        b'%' if bytes.len() > i + 2 => {
            let code = [bytes[i + 1].to_ascii_uppercase(), bytes[i + 2]];
            usize::from(matches!(&code, b"2B" | b"2F" | b"2b" | b"2f")) * 3
        }
        _ => 0,
    }
}

/// Maximal runs of standard base64 (with their `=` padding) of at least 40 characters that
/// mix upper and lower case: secret keys and session tokens. Hex digests (lower case) and
/// names with `-`, `_`, `:` or `.` survive.
fn redact_base64(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        let start = i;
        let (mut chars, mut upper, mut lower) = (0, false, false);
        loop {
            let n = if i < bytes.len() { base64_char_at(bytes, i) } else { 0 };
            if n == 0 {
                break;
            }
            upper |= bytes[i].is_ascii_uppercase();
            lower |= bytes[i].is_ascii_lowercase();
            chars += 1;
            i += n;
        }
        if chars == 0 {
            // Not a base64 character: step over it whole (it may be multi-byte).
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        while i < bytes.len() && bytes[i] == b'=' {
            i += 1;
        }
        if chars >= MIN_SECRET_LEN && upper && lower {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = i;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::redact;

    const KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlX2J5dGVz";

    #[test]
    fn redacts_jwts_and_keys_keeps_arns() {
        let msg = format!("token {JWT} rejected for arn:aws:iam::123456789012:role/admin, key {KEY}");
        let out = redact(&msg);
        assert_eq!(
            out,
            "token <redacted> rejected for arn:aws:iam::123456789012:role/admin, key <redacted>"
        );
        assert_eq!(redact("AccessDenied: Not authorized"), "AccessDenied: Not authorized");
    }

    #[test]
    fn redacts_secrets_glued_to_other_text() {
        for (glued, kept) in [
            (
                format!("WebIdentityToken={JWT}&Version=2011-06-15"),
                "WebIdentityToken=<redacted>&Version=2011-06-15",
            ),
            (
                format!("<SessionToken>{KEY}</SessionToken>"),
                "<SessionToken><redacted></SessionToken>",
            ),
            (format!("({JWT})"), "(<redacted>)"),
            (format!("\"{KEY}\","), "\"<redacted>\","),
            (
                format!("SecretAccessKey={}", KEY.replace('/', "%2F")),
                "SecretAccessKey=<redacted>",
            ),
        ] {
            assert_eq!(redact(&glued), kept);
        }
    }

    #[test]
    fn keeps_what_is_not_a_secret() {
        for text in [
            "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "uid 0b0c8c3e-1f6d-4d1e-9c1a-2f7b1c9e8d7a, session atmos-acme-admin-1764633600",
            "arn:aws:sts::123456789012:assumed-role/e2e-network/runner-network",
            "Ünïcödé and emoji 🙂 stay",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    fn glue() -> impl Strategy<Value = String> {
        // Text around a secret: words, separators and the markup secrets hide in.
        proptest::string::string_regex(r#"[a-zA-Z0-9 =<>()"':,./&%_-]{0,30}"#).expect("valid regex")
    }

    proptest! {
        #[test]
        fn no_jwt_survives_whatever_it_is_glued_to(
            before in glue(),
            after in glue(),
            header in "[A-Za-z0-9_-]{10,60}",
            payload in "[A-Za-z0-9_-]{10,300}",
            signature in "[A-Za-z0-9_-]{20,300}",
        ) {
            let jwt = format!("eyJ{header}.eyJ{payload}.{signature}");
            let out = redact(&format!("{before}{jwt}{after}"));
            prop_assert!(!out.contains(&jwt), "{}", out);
            prop_assert!(!out.contains(&signature), "{}", out);
            prop_assert!(!out.contains(&payload), "{}", out);
        }

        #[test]
        fn no_secret_key_or_session_token_survives(
            before in glue(),
            after in glue(),
            secret in "[A-Za-z0-9+/]{40}",
            token in "[A-Za-z0-9+/]{100,600}={0,2}",
        ) {
            prop_assume!(secret.bytes().any(|b| b.is_ascii_uppercase()) && secret.bytes().any(|b| b.is_ascii_lowercase()));
            let text = format!("{before}<SecretAccessKey>{secret}</SecretAccessKey>{after}<SessionToken>{token}</SessionToken>{before}{token}{after}");
            let out = redact(&text);
            prop_assert!(!out.contains(&secret), "{}", out);
            prop_assert!(!out.contains(&token[..40]), "{}", out);
            let glued = redact(&format!("{before}{secret}{after}"));
            prop_assert!(!glued.contains(&secret), "{}", glued);
        }

        #[test]
        fn text_without_long_runs_is_kept(text in r"[a-zA-Z0-9 :/=.,_-]{0,200}") {
            // Runs shorter than 40 characters between separators are never touched.
            prop_assume!(text.split([' ', ':', '=', '.', ',', '_', '-']).all(|w| w.len() < 40 && !w.contains("eyJ")));
            prop_assert_eq!(redact(&text), text);
        }
    }
}
