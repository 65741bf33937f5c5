//! Field rules of Atmos, AWS and Kubernetes, as small checks. Each returns `Err(detail)`
//! with text a message can embed.

use jiff::SignedDuration;

/// Longest role session AWS grants (`MaxSessionDuration` ceiling), seconds.
pub const MAX_SESSION_SECONDS: i64 = 12 * 3600;
/// Longest chained role session (`AssumeRole` with role credentials), seconds.
pub const MAX_CHAINED_SESSION_SECONDS: i64 = 3600;
/// Session length when none is given, seconds.
pub const DEFAULT_SESSION_SECONDS: i64 = 3600;
pub use super::settings::{DEFAULT_AUDIENCE, DEFAULT_REGION};
/// Token lifetime when a provider names none, seconds.
pub const DEFAULT_TOKEN_SECONDS: i64 = 600;
/// Longest token lifetime a provider may request, seconds: the token is used once, for the
/// first STS call, so a longer one only widens what a leaked token allows.
pub const MAX_TOKEN_SECONDS: i64 = 3600;
/// AWS's limit on role session names.
pub const MAX_SESSION_NAME_LEN: usize = 64;
/// Session name when cleaning leaves nothing (Atmos's fallback).
pub const FALLBACK_SESSION_NAME: &str = "atmos-session";

/// Parses a Go duration string (`1h`, `90m`, `1h30m`, `3600s`, `1.5h`) with jiff's friendly
/// format (which also takes `1h 30m`, `1 hour` and ISO 8601 `PT1H`). Whole seconds, rounded
/// down; negative durations are refused.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let trimmed = text.trim();
    let parsed: SignedDuration = trimmed
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration; use a Go duration such as 1h, 90m or 1h30m"))?;
    if parsed.is_negative() {
        return Err(format!(
            "\"{text}\" is negative; use a Go duration such as 1h, 90m or 1h30m"
        ));
    }
    Ok(parsed.as_secs())
}

/// Seconds as a Go duration string: `1h`, `1h30m`, `15m`, `45s`, `0s`.
pub fn format_seconds(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".to_owned();
    }
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = sign.to_owned();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// Characters AWS allows in a role name and a role session name (`[\w+=,.@-]`).
fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// Checks an IAM role ARN: `arn:<aws|aws-cn|aws-us-gov>:iam::<12 digits>:role/<path/><name>`,
/// the path of printable ASCII (at most 512 characters), the name 1 to 64 characters of
/// `[A-Za-z0-9+=,.@_-]`.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return Err("it does not have the six parts arn:partition:service:region:account:resource".into());
    };
    if *prefix != "arn" {
        return Err("it does not start with arn:".into());
    }
    if !matches!(*partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err(format!("partition \"{partition}\" is not aws, aws-cn or aws-us-gov"));
    }
    if *service != "iam" {
        return Err(format!("service \"{service}\" is not iam"));
    }
    if !region.is_empty() {
        return Err("IAM ARNs have an empty region field (arn:aws:iam::...)".into());
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account \"{account}\" is not 12 digits"));
    }
    let Some(rest) = resource.strip_prefix("role/") else {
        return Err("the resource does not start with role/".into());
    };
    let (path, name) = match rest.rfind('/') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    };
    if path.len() + 1 > 512 || !path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c)) {
        return Err("the role path must be at most 512 printable ASCII characters".into());
    }
    if name.is_empty() {
        return Err("the role name is empty".into());
    }
    if name.len() > 64 {
        return Err(format!(
            "the role name has {} characters, at most 64 are allowed",
            name.len()
        ));
    }
    if !name.chars().all(is_iam_name_char) {
        return Err(format!(
            "the role name \"{name}\" has characters outside [A-Za-z0-9+=,.@_-]"
        ));
    }
    Ok(())
}

/// Checks a Kubernetes DNS-1123 subdomain (ServiceAccount and Secret names).
pub fn check_dns1123_subdomain(name: &str) -> Result<(), String> {
    const RULE: &str = "a DNS-1123 subdomain is at most 253 lowercase letters, digits, '-' and '.', \
                        each dot-separated part starting and ending with a letter or digit";
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok { Ok(()) } else { Err(RULE.to_owned()) }
}

/// Checks the shape of an AWS region name (`us-east-2`, `us-gov-west-1`): lowercase letters
/// and digits in dash-separated groups, at most 50 characters. The region is written into
/// the consumer's config file, so nothing else may pass.
pub fn check_region(region: &str) -> Result<(), String> {
    let ok = !region.is_empty()
        && region.len() <= 50
        && region
            .split('-')
            .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!("\"{region}\" is not an AWS region name such as us-east-2"))
    }
}

/// Checks an external id (2 to 1224 characters of `[A-Za-z0-9+=,.@:/_-]`). The detail never
/// contains the value.
pub fn check_external_id(id: &str) -> Result<(), String> {
    let len = id.chars().count();
    let ok = (2..=1224).contains(&len) && id.chars().all(|c| is_iam_name_char(c) || matches!(c, ':' | '/'));
    if ok {
        Ok(())
    } else {
        Err("external_id must be 2 to 1224 characters of [A-Za-z0-9+=,.@:/_-]".into())
    }
}

/// Checks that an Atmos identity name can be a section of an AWS config file:
/// letters, digits and `- _ . / @ : + = ,`, at most 253 characters.
pub fn check_identity_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@' | ':' | '+' | '=' | ','));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "identity name \"{}\" cannot be a section of an AWS config file; use at most 253 \
             letters, digits and - _ . / @ : + = ,",
            name.escape_debug()
        ))
    }
}

/// Checks a mount path and returns it without a trailing `/`: absolute, of
/// `[A-Za-z0-9._/-]` only (it is written into `credential_process = cat <path>/...`),
/// no `..` segment, not `/` itself.
pub fn check_mount_path(path: &str) -> Result<String, String> {
    let shape = format!(
        "\"{}\" must be an absolute path of letters, digits and . _ / - (no .. and not /): \
         it is written into credential_process = cat <mountPath>/credential_process.json",
        path.escape_debug()
    );
    let trimmed = path.trim_end_matches('/');
    let ok = path.starts_with('/')
        && !trimmed.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !path.split('/').any(|segment| segment == "..");
    if ok { Ok(trimmed.to_owned()) } else { Err(shape) }
}

/// The default STS session name, Atmos's rule: `atmos-<identity>-<unix seconds>`, cleaned
/// by [`clean_session_name`].
pub fn session_name(identity: &str, now_unix: i64) -> String {
    clean_session_name(&format!("atmos-{identity}-{now_unix}"))
}

/// Atmos's cleaning of a session name: every character outside `[A-Za-z0-9+=,.@-]` becomes
/// `-`, the result is cut to 64 characters, trailing dashes are removed, and
/// `atmos-session` is used if nothing is left.
pub fn clean_session_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_SESSION_NAME_LEN)
        .collect();
    let trimmed = cleaned.trim_end_matches('-');
    if trimmed.is_empty() {
        FALLBACK_SESSION_NAME.to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn go_durations() {
        for (text, secs) in [
            ("1h", 3600),
            ("90m", 5400),
            ("1h30m", 5400),
            ("3600s", 3600),
            ("1h0m0s", 3600),
            ("1.5h", 5400),
            ("15m", 900),
            ("12h", 43200),
            ("2h45m30s", 9930),
            ("1500ms", 1),
            (" 20m ", 1200),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
        }
        for text in ["", "1", "abc", "1x", "h1"] {
            assert_eq!(
                parse_duration(text),
                Err(format!(
                    "\"{text}\" is not a duration; use a Go duration such as 1h, 90m or 1h30m"
                )),
                "{text}"
            );
        }
        assert_eq!(
            parse_duration("-1h"),
            Err("\"-1h\" is negative; use a Go duration such as 1h, 90m or 1h30m".into())
        );
    }

    #[test]
    fn format_go_style() {
        assert_eq!(format_seconds(0), "0s");
        assert_eq!(format_seconds(900), "15m");
        assert_eq!(format_seconds(3600), "1h");
        assert_eq!(format_seconds(5400), "1h30m");
        assert_eq!(format_seconds(3661), "1h1m1s");
        assert_eq!(format_seconds(45), "45s");
        assert_eq!(format_seconds(-60), "-1m");
    }

    #[test]
    fn role_arns() {
        for ok in [
            "arn:aws:iam::123456789012:role/admin",
            "arn:aws-cn:iam::123456789012:role/a",
            "arn:aws-us-gov:iam::123456789012:role/service-role/path/Name+=,.@_-x",
            &format!("arn:aws:iam::123456789012:role/{}", "n".repeat(64)),
        ] {
            assert_eq!(check_role_arn(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            (
                "admin",
                "it does not have the six parts arn:partition:service:region:account:resource",
            ),
            ("urn:aws:iam::123456789012:role/a", "it does not start with arn:"),
            (
                "arn:aws-iso:iam::123456789012:role/a",
                "partition \"aws-iso\" is not aws, aws-cn or aws-us-gov",
            ),
            ("arn:aws:sts::123456789012:role/a", "service \"sts\" is not iam"),
            (
                "arn:aws:iam:us-east-1:123456789012:role/a",
                "IAM ARNs have an empty region field (arn:aws:iam::...)",
            ),
            (
                "arn:aws:iam::12345678901:role/a",
                "account \"12345678901\" is not 12 digits",
            ),
            (
                "arn:aws:iam::12345678901a:role/a",
                "account \"12345678901a\" is not 12 digits",
            ),
            (
                "arn:aws:iam::123456789012:user/a",
                "the resource does not start with role/",
            ),
            ("arn:aws:iam::123456789012:role/", "the role name is empty"),
            ("arn:aws:iam::123456789012:role/p/", "the role name is empty"),
            (
                "arn:aws:iam::123456789012:role/a b",
                "the role name \"a b\" has characters outside [A-Za-z0-9+=,.@_-]",
            ),
            (
                "arn:aws:iam::123456789012:role/pa th/a",
                "the role path must be at most 512 printable ASCII characters",
            ),
        ] {
            assert_eq!(check_role_arn(bad), Err(why.to_owned()), "{bad}");
        }
        assert_eq!(
            check_role_arn(&format!("arn:aws:iam::123456789012:role/{}", "n".repeat(65))),
            Err("the role name has 65 characters, at most 64 are allowed".to_owned())
        );
    }

    #[test]
    fn dns_subdomains() {
        for ok in ["terraform", "tf-network", "a.b-c.d", "a", "0a"] {
            assert_eq!(check_dns1123_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Terraform", "-a", "a-", "a..b", "a_b", ".a", &"a".repeat(254)] {
            assert!(check_dns1123_subdomain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regions() {
        for ok in ["us-east-1", "us-gov-west-1", "cn-north-1", "eu-isoe-west-1"] {
            assert_eq!(check_region(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "US-EAST-1",
            "us east 1",
            "us-east-1\ncredential_process=x",
            "-us",
            "us--east",
        ] {
            assert!(check_region(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_region("Mars"),
            Err("\"Mars\" is not an AWS region name such as us-east-2".into())
        );
    }

    #[test]
    fn external_ids_never_echoed() {
        assert_eq!(check_external_id("tenant-42:abc/x"), Ok(()));
        let err = check_external_id("secret value!").unwrap_err();
        assert!(!err.contains("secret value"));
        assert!(check_external_id("x").is_err());
    }

    #[test]
    fn identity_names() {
        for ok in ["acme/admin", "core-root/terraform", "a.b@c:d+e=f,g_h"] {
            assert_eq!(check_identity_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "a]\n[b", "a;b", "a#b", "é"] {
            assert!(check_identity_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_identity_name("a]\nx"),
            Err(
                "identity name \"a]\\nx\" cannot be a section of an AWS config file; use at most \
                 253 letters, digits and - _ . / @ : + = ,"
                    .into()
            )
        );
    }

    #[test]
    fn mount_paths() {
        assert_eq!(
            check_mount_path("/var/run/secrets/atmos-auth"),
            Ok("/var/run/secrets/atmos-auth".into())
        );
        assert_eq!(check_mount_path("/aws/"), Ok("/aws".into()));
        for bad in ["", "/", "//", "aws", "./aws", "/a b", "/a/../b", "/a;rm", "/a\n"] {
            assert!(check_mount_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_mount_path("aws"),
            Err(
                "\"aws\" must be an absolute path of letters, digits and . _ / - (no .. and not /): \
                 it is written into credential_process = cat <mountPath>/credential_process.json"
                    .into()
            )
        );
    }

    #[test]
    fn default_session_names() {
        assert_eq!(session_name("acme/admin", 1_700_000_000), "atmos-acme-admin-1700000000");
        assert_eq!(session_name("a_b c", 1), "atmos-a-b-c-1");
        assert_eq!(session_name("dev@x.y", 7), "atmos-dev@x.y-7");
        // non-ASCII: one dash per character, not per byte
        assert_eq!(session_name("é", 7), "atmos---7");
        // long names are cut to 64, losing the timestamp first
        let long = session_name(&"n".repeat(100), 1_700_000_000);
        assert_eq!(long.len(), 64);
        assert_eq!(long, format!("atmos-{}", "n".repeat(58)));
        // cut lands on a replaced character: trailing dashes are removed
        let name = format!("{}/////", "x".repeat(55));
        assert_eq!(session_name(&name, 1), format!("atmos-{}", "x".repeat(55)));
        assert_eq!(clean_session_name("///"), "atmos-session");
        assert_eq!(clean_session_name(""), "atmos-session");
        assert_eq!(clean_session_name("a/b"), "a-b");
        // every result is 2 to 64 characters of AWS's set
        for id in ["acme/admin", "é", &"n".repeat(100), ""] {
            let name = session_name(id, 1_700_000_000);
            assert!((2..=64).contains(&name.len()), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-".contains(c)),
                "{name}"
            );
        }
    }
}
