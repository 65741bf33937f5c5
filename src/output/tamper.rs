//! A Secret whose data someone else changed is noticed by the controller's record of its own
//! write ([`crate::output::secret::Record`]): another version whose data does not hash to
//! what was written means an edit, an added key (a planted `credentials` file would override
//! `credential_process` in every SDK) or a replaced value, whatever field manager name the
//! writer used. The controller then restores the Secret, but spaced out (5 s, 10 s, 20 s, ...
//! at most 5 min apart, remembered by the process, not in the Secret, whose annotations any
//! writer can set), so two writers cannot fight in a tight loop. The field managers in
//! `managedFields` only name the likely writer in messages. Pure functions; the reconcile
//! does the I/O.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

use crate::exchange::renewal;
use crate::output::labels;

/// A run of restores ends after this long without one (the next one is immediate again).
pub const QUIET_RESET: Duration = Duration::from_secs(3600);

/// The field managers other than the controller that own a key of `data` (sorted, once
/// each), to name the likely writer in a message: anyone may write under any manager name.
pub fn data_writers(entries: &[ManagedFieldsEntry]) -> Vec<String> {
    let mut writers: Vec<String> = entries
        .iter()
        .filter(|e| writes_data(e))
        .map(|e| e.manager.clone().unwrap_or_else(|| "(unnamed)".to_owned()))
        .collect();
    writers.sort();
    writers.dedup();
    writers
}

/// Whether `entry` is a manager other than the controller owning a key of `data`.
fn writes_data(entry: &ManagedFieldsEntry) -> bool {
    entry.manager.as_deref() != Some(labels::FIELD_MANAGER)
        && entry
            .fields_v1
            .as_ref()
            .and_then(|f| f.0.get("f:data"))
            .and_then(serde_json::Value::as_object)
            .is_some_and(|keys| keys.keys().any(|k| k.starts_with("f:")))
}

/// The restores of one Secret so far, as this process remembers them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restores {
    /// When the last one was made.
    pub last: Option<Timestamp>,
    /// How many in the current run.
    pub count: u32,
}

impl Restores {
    /// Restores in the current run at `now` (0 once the last one is [`QUIET_RESET`] old).
    fn run_length(&self, now: Timestamp) -> u32 {
        match self.last {
            Some(last) if now.duration_since(last) < SignedDuration::try_from(QUIET_RESET).unwrap_or_default() => {
                self.count
            }
            _ => 0,
        }
    }

    /// When the next restore may be made: `None` for now, else the time to wait for.
    pub fn next_allowed(&self, now: Timestamp) -> Option<Timestamp> {
        let run = self.run_length(now);
        let last = self.last.filter(|_| run > 0)?;
        let at = last
            .checked_add(SignedDuration::try_from(renewal::backoff(run)).unwrap_or_default())
            .unwrap_or(last);
        (at > now).then_some(at)
    }

    /// The restores after one more made at `now`.
    pub fn after(&self, now: Timestamp) -> Self {
        Self {
            last: Some(now),
            count: self.run_length(now).saturating_add(1),
        }
    }

    /// The annotations a restore made at `now` writes, for people to see (never read back).
    pub fn annotations_after(&self, now: Timestamp) -> [(String, String); 2] {
        let next = self.after(now);
        [
            (labels::RESTORED_AT.to_owned(), crate::util::time::rfc3339(now)),
            (labels::RESTORES.to_owned(), next.count.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn entry(manager: &str, fields: serde_json::Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn only_other_managers_owning_data_keys_count() {
        let ours = entry(labels::FIELD_MANAGER, json!({"f:data": {"f:config": {}}}));
        let labels_only = entry("kubectl-label", json!({"f:metadata": {"f:labels": {"f:team": {}}}}));
        let empty_data = entry("gc", json!({"f:data": {}}));
        assert!(data_writers(&[ours.clone(), labels_only.clone(), empty_data.clone()]).is_empty());
        let planted = entry("kubectl-patch", json!({"f:data": {"f:credentials": {}}}));
        let edited = entry("kubectl-edit", json!({"f:data": {".": {}, "f:config": {}}}));
        assert_eq!(
            data_writers(&[ours, planted.clone(), labels_only, edited, planted]),
            ["kubectl-edit", "kubectl-patch"]
        );
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn restores_are_spaced_out_and_the_run_resets_after_an_hour() {
        let now = ts("2026-01-01T00:00:00Z");
        let none = Restores::default();
        assert_eq!(none.next_allowed(now), None);
        assert_eq!(none.annotations_after(now)[1].1, "1");
        let after = |count: u32, secs: i64| Restores {
            last: Some(now - SignedDuration::from_secs(secs)),
            count,
        };
        // One restore 2 s ago: the next waits until 5 s after it.
        assert_eq!(after(1, 2).next_allowed(now), Some(ts("2026-01-01T00:00:03Z")));
        assert_eq!(after(1, 5).next_allowed(now), None);
        // The third restore waits 10 s, the fourth 20 s, and so on up to 5 min.
        assert_eq!(after(2, 2).next_allowed(now), Some(ts("2026-01-01T00:00:08Z")));
        assert_eq!(after(3, 2).next_allowed(now), Some(ts("2026-01-01T00:00:18Z")));
        assert_eq!(after(30, 2).next_allowed(now), Some(ts("2026-01-01T00:04:58Z")));
        assert_eq!(after(3, 2).annotations_after(now)[1].1, "4");
        // An hour of quiet starts a new run.
        assert_eq!(after(30, 3600).next_allowed(now), None);
        assert_eq!(after(30, 3600).annotations_after(now)[1].1, "1");
    }

    #[test]
    fn a_restore_extends_the_run_or_starts_a_new_one() {
        let now = ts("2026-01-01T00:00:00Z");
        let one = Restores::default().after(now);
        assert_eq!(
            one,
            Restores {
                last: Some(now),
                count: 1
            }
        );
        let soon = now + SignedDuration::from_secs(10);
        assert_eq!(one.after(soon).count, 2);
        let much_later = now + SignedDuration::from_secs(7200);
        assert_eq!(one.after(much_later).count, 1);
    }
}
