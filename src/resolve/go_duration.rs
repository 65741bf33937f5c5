//! Go's `time.ParseDuration`, exactly: Atmos reads `principal.duration` with it
//! (`pkg/auth/identities/aws/assume_role.go`), so a profile's duration means here what it
//! means to Atmos. Grammar: an optional sign, then one or more decimal numbers, each with an
//! optional fraction and a unit (`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`); `0` alone is
//! zero; no spaces. Overflow past ±2^63 ns is an error, as in Go.
//!
//! Hand-written, not a crate: the one Rust port of it (`go-parse-duration` 0.1.1, 2021) differs
//! from Go (its overflow bound is 2^62, a long fraction loops forever, `µs` panics).

/// Why Go refuses a duration string; `Display` is Go's own message, quoted as Go quotes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GoDurationError {
    /// Not of the grammar, or past ±2^63 ns.
    #[error("time: invalid duration {}", quote(.0))]
    Invalid(String),
    /// A number without a unit (`90`).
    #[error("time: missing unit in duration {}", quote(.0))]
    MissingUnit(String),
    /// A unit Go does not have (`2d`, `1 hour`).
    #[error("time: unknown unit {} in duration {}", quote(.unit), quote(.text))]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole string.
        text: String,
    },
}

/// Go's `time.quote`: in double quotes, `"` and `\` escaped, every byte of a non-ASCII or
/// control character as `\xHH`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if !c.is_ascii() || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// 2^63: the magnitude of the most negative duration.
const LIMIT: u64 = 1 << 63;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000, // micro sign and Greek mu, as Go
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3600 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// Go's `leadingInt`: the leading digits as a number, `None` past 2^63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut x: u64 = 0;
    for b in s[..digits].bytes() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(b - b'0');
        if x > LIMIT {
            return None;
        }
    }
    Some((x, &s[digits..]))
}

/// Go's `leadingFraction`: the leading digits as a number and its scale (10^n); digits past
/// what fits are consumed but add no precision.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    for b in s[..digits].bytes() {
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(b - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[digits..])
}

/// Parses `text` as Go's `time.ParseDuration` does, in nanoseconds.
pub fn parse(text: &str) -> Result<i64, GoDurationError> {
    let invalid = || GoDurationError::Invalid(text.to_owned());
    let (neg, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (mut v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let before = rest.len();
            (f, scale, s) = leading_fraction(rest);
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(GoDurationError::MissingUnit(text.to_owned()));
        }
        let (unit_text, rest) = s.split_at(unit_len);
        s = rest;
        let unit = unit_nanos(unit_text).ok_or_else(|| GoDurationError::UnknownUnit {
            unit: unit_text.to_owned(),
            text: text.to_owned(),
        })?;
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // As Go: float64, nanosecond-accurate for fractions of an hour; the cast saturates
            // where Go's wraps, and both are past the limit checked next.
            v = v.saturating_add((f as f64 * (unit as f64 / scale)) as u64);
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total.saturating_add(v);
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        // -2^63 is the one value whose magnitude is not an i64.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Whole seconds of a duration in nanoseconds, truncated toward zero, as Atmos sends them
/// (`int32(duration.Seconds())`; past what an i64 of seconds holds it cannot be, see [`parse`]).
pub fn whole_seconds(nanos: i64) -> i64 {
    nanos / NANOS_PER_SECOND as i64
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    const S: i64 = 1_000_000_000;

    /// Every row was checked against Go 1.26's `time.ParseDuration` (the table of Go's own
    /// `format_test.go` plus the strings profiles write).
    #[test]
    fn parses_what_go_parses() {
        for (text, nanos) in [
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4_000_000),
            ("1.0040s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{b5}s", 12_000),
            ("12\u{3bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            ("1h2m3s4ms5us6ns", 3600 * S + 2 * 60 * S + 3 * S + 4_000_000 + 5_000 + 6),
            ("39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * S),
            ("0.830103483285477580700h", 49 * 60 * S + 48 * S + 372_539_827),
            // What profiles write.
            ("1h", 3600 * S),
            ("1.5h30m", 2 * 3600 * S),
            ("1h0m0s", 3600 * S),
            ("1500ms", 1_500_000_000),
            ("12h", 12 * 3600 * S),
        ] {
            assert_eq!(parse(text), Ok(nanos), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_with_gos_message() {
        for (text, message) in [
            ("", r#"time: invalid duration """#),
            ("3", r#"time: missing unit in duration "3""#),
            ("-", r#"time: invalid duration "-""#),
            ("s", r#"time: invalid duration "s""#),
            (".", r#"time: invalid duration ".""#),
            ("-.", r#"time: invalid duration "-.""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+.s", r#"time: invalid duration "+.s""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("1.1.1s", r#"time: missing unit in duration "1.1.1s""#),
            ("2 hours", r#"time: unknown unit " hours" in duration "2 hours""#),
            ("PT2H", r#"time: invalid duration "PT2H""#),
            ("1h 30m", r#"time: unknown unit "h " in duration "1h 30m""#),
            (" 1h", r#"time: invalid duration " 1h""#),
            ("1h ", r#"time: unknown unit "h " in duration "1h ""#),
            ("1H", r#"time: unknown unit "H" in duration "1H""#),
            ("forever", r#"time: invalid duration "forever""#),
            ("--1s", r#"time: invalid duration "--1s""#),
            ("1e3s", r#"time: unknown unit "e" in duration "1e3s""#),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            (
                "9223372036854775.808us",
                r#"time: invalid duration "9223372036854775.808us""#,
            ),
            (
                "9223372036854ms775us808ns",
                r#"time: invalid duration "9223372036854ms775us808ns""#,
            ),
            (
                "-9223372036854775809ns",
                r#"time: invalid duration "-9223372036854775809ns""#,
            ),
            ("3000000h", r#"time: invalid duration "3000000h""#),
            ("\u{ff11}h", r#"time: invalid duration "\xef\xbc\x91h""#),
            ("\u{fffd}", r#"time: invalid duration "\xef\xbf\xbd""#),
            ("1\u{3bc}", r#"time: unknown unit "\xce\xbc" in duration "1\xce\xbc""#),
            ("1\"s", r#"time: unknown unit "\"s" in duration "1\"s""#),
            (
                "9223372036854775810ns",
                r#"time: invalid duration "9223372036854775810ns""#,
            ),
            ("9223372036854776us", r#"time: invalid duration "9223372036854776us""#),
        ] {
            assert_eq!(
                parse(text).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_long_fraction_ends_and_keeps_what_fits() {
        let text = format!("1.{}s", "1".repeat(10_000));
        assert_eq!(parse(&text), Ok(S + 111_111_111));
    }

    #[test]
    fn seconds_truncate_toward_zero_as_int32_of_seconds_does() {
        assert_eq!(whole_seconds(1_999_999_999), 1);
        assert_eq!(whole_seconds(-1_999_999_999), -1);
        assert_eq!(whole_seconds(parse("15m0.9s").unwrap()), 900);
    }
}
