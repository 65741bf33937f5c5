//! Last line of defence for text that reaches logs, events and status: anything shaped like a
//! JWT, an AWS secret or session token is replaced. Messages are built without secrets in
//! the first place; this catches what a remote service might echo back.

/// Replaces JWT-like and long base64-like runs with `<redacted>`.
pub fn redact(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
        .map(|piece| {
            let word = piece.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',');
            let tail = &piece[word.len()..];
            if looks_secret(word) {
                format!("<redacted>{tail}")
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

fn looks_secret(word: &str) -> bool {
    let jwt = word.starts_with("eyJ") && word.matches('.').count() >= 2;
    // Secret keys are 40 base64 characters, session tokens hundreds; ARNs and names contain
    // ':' or '/' and are shorter runs of word characters, so they survive.
    let long_b64 = word.len() >= 40
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase());
    jwt || long_b64
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_jwts_and_keys_keeps_arns() {
        let msg = "token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl rejected for arn:aws:iam::123456789012:role/admin, key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let out = redact(msg);
        assert!(!out.contains("eyJ"), "{out}");
        assert!(!out.contains("wJalrXUtnFEMI"), "{out}");
        assert!(out.contains("arn:aws:iam::123456789012:role/admin"), "{out}");
        assert_eq!(redact("AccessDenied: Not authorized"), "AccessDenied: Not authorized");
    }
}
