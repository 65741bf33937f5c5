//! How the controller writes times: one format for status, annotations, events and files.

use jiff::Timestamp;

/// RFC 3339 in UTC, whole seconds (`2025-10-24T23:42:49Z`): what STS returns and what
/// Atmos's comment parser and every SDK accept. Cut, never rounded up.
pub fn rfc3339(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `ts` cut to the whole second, so what is written and what is scheduled agree.
pub fn whole_second(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_cut_not_rounded() {
        let t: Timestamp = "2026-01-01T00:00:09.999Z".parse().unwrap();
        assert_eq!(rfc3339(t), "2026-01-01T00:00:09Z");
        assert_eq!(whole_second(t), "2026-01-01T00:00:09Z".parse::<Timestamp>().unwrap());
    }
}
