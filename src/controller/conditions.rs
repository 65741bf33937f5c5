//! Kubernetes-convention conditions: the transition time moves only when the status does.

use crate::resolve::Warning;
use jiff::Timestamp;

use crate::api::Condition;

/// A merge patch of `status` from `old` to `new`. A merge patch keeps fields it does not
/// mention, so the ones `new` dropped are sent as null.
pub fn status_patch<S: serde::Serialize>(old: &S, new: &S) -> serde_json::Value {
    let mut body = serde_json::to_value(new).unwrap_or_default();
    if let (Some(map), Ok(serde_json::Value::Object(before))) = (body.as_object_mut(), serde_json::to_value(old)) {
        for key in before.keys() {
            map.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    serde_json::json!({ "status": body })
}

/// Condition type every resource carries.
pub const READY: &str = "Ready";

/// The reason of condition `type_`, if set.
pub fn reason<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.reason.as_str())
}

/// Sets `type_` in `conditions`, keeping `lastTransitionTime` when `status` is unchanged.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if ok { "True" } else { "False" };
    let message = crate::util::redact::redact(message);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = crate::util::time::rfc3339(now);
            }
            c.status = status.to_owned();
            c.reason = reason.to_owned();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: crate::util::time::rfc3339(now),
        }),
    }
}

/// Most warnings listed in the status; the rest are counted in one last line (`validate`
/// prints them all).
const MAX_STATUS_WARNINGS: usize = 50;

/// The status lines: `path: message`, at most [`MAX_STATUS_WARNINGS`] plus a count.
pub fn status_warnings(warnings: &[Warning]) -> Vec<String> {
    let mut lines: Vec<String> = warnings
        .iter()
        .take(MAX_STATUS_WARNINGS)
        .map(ToString::to_string)
        .collect();
    if warnings.len() > MAX_STATUS_WARNINGS {
        lines.push(format!(
            "... and {} more: atmos-auth-controller validate prints them all",
            warnings.len() - MAX_STATUS_WARNINGS
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_status_fields_are_cleared() {
        let old = serde_json::json!({"a": 1, "b": 2});
        let new = serde_json::json!({"a": 3});
        assert_eq!(
            status_patch(&old, &new),
            serde_json::json!({"status": {"a": 3, "b": null}})
        );
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let mut c = Vec::new();
        set(&mut c, READY, false, "Pending", "m", Some(1), t0);
        set(&mut c, READY, false, "AccessDenied", "m2", Some(2), t1);
        assert_eq!(c[0].last_transition_time, t0.to_string());
        assert_eq!(c[0].reason, "AccessDenied");
        set(&mut c, READY, true, "CredentialsIssued", "ok", Some(2), t1);
        assert_eq!(c[0].last_transition_time, t1.to_string());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn warnings_are_bounded() {
        let many: Vec<Warning> = (0..60)
            .map(|i| Warning::new(format!("auth.identities.i{i}.alias"), "kept, not used"))
            .collect();
        let lines = status_warnings(&many);
        assert_eq!(lines.len(), MAX_STATUS_WARNINGS + 1);
        assert_eq!(lines[0], "auth.identities.i0.alias: kept, not used");
        assert_eq!(
            lines[MAX_STATUS_WARNINGS],
            "... and 10 more: atmos-auth-controller validate prints them all"
        );
        assert_eq!(status_warnings(&many[..2]).len(), 2);
    }
}
