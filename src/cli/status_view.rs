//! What `status` shows, from what the objects' status already records (no call to the
//! controller, no extra status write): pure, so each view is tested as a plain function.

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::api::{Condition, Identity, ProfileKind};

/// The reason the Identity's status gives while it waits for the STS rate limit.
pub const WAITING_FOR_STS_BUDGET: &str = "WaitingForStsBudget";

/// One Identity as `status` shows it (also its `-o json` shape).
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    pub namespace: String,
    pub name: String,
    /// `AuthProfile/<name>` or `ClusterAuthProfile/<name>`.
    pub profile: String,
    pub ready: ReadyView,
    /// `[provider, identity, ..., target]`.
    pub chain: Vec<String>,
    /// Each identity the Secret holds, with its role and expiry.
    pub identities: Vec<IssuedView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Earliest expiry of the credentials in the Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refresh_time: Option<String>,
    /// The last failed exchange, while it is not followed by a success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<FailureView>,
    /// Queued behind the STS rate limit (the Ready reason says so).
    pub waiting_for_sts_budget: bool,
    /// The status describes an older spec: the controller has not caught up yet.
    pub stale: bool,
    /// A renewal asked for with `renew` (the annotation's time), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_requested_at: Option<String>,
    /// When the credentials answering it were written; `None` while it waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_served_at: Option<String>,
}

/// The `Ready` condition.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReadyView {
    /// `True`, `False` or `Unknown` (no condition yet).
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// One issued identity.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IssuedView {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
}

/// The last failure: when, how many attempts since the last success, and why.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailureView {
    pub time: String,
    pub attempts: u32,
    pub reason: String,
    pub message: String,
}

/// The view of `identity`.
pub fn identity_view(identity: &Identity) -> IdentityView {
    let meta = &identity.metadata;
    let status = identity.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(ready_view)
        .unwrap_or_else(|| ReadyView {
            status: "Unknown".into(),
            reason: "NotReconciled".into(),
            message: "the controller has not written a status yet (is it running and watching this namespace?)".into(),
            since: None,
        });
    let kind = identity.spec.profile_kind.unwrap_or_default();
    let identities = if status.identities.is_empty() {
        status
            .identity
            .iter()
            .map(|name| IssuedView {
                name: name.clone(),
                role_arn: status.role_arn.clone(),
                expiration: status.expiration.clone(),
            })
            .collect()
    } else {
        status
            .identities
            .iter()
            .map(|i| IssuedView {
                name: i.name.clone(),
                role_arn: i.role_arn.clone(),
                expiration: i.expiration.clone(),
            })
            .collect()
    };
    let last_failure = status.last_failure_time.as_ref().map(|time| FailureView {
        time: time.clone(),
        attempts: status.failed_attempts.unwrap_or(1),
        reason: ready.reason.clone(),
        message: ready.message.clone(),
    });
    // The request the status answered, or one asked since (served: not yet).
    let asked = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::output::labels::RENEW_REQUESTED_AT))
        .cloned();
    let answered = asked.is_some() && asked == status.renew_requested_at;
    let (renew_requested_at, renew_served_at) = match asked {
        Some(a) if !answered => (Some(a), None),
        _ => (status.renew_requested_at.clone(), status.renew_served_at.clone()),
    };
    IdentityView {
        renew_requested_at,
        renew_served_at,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        profile: format!("{}/{}", kind_name(kind), identity.spec.profile),
        waiting_for_sts_budget: ready.reason == WAITING_FOR_STS_BUDGET,
        stale: matches!((status.observed_generation, meta.generation), (Some(o), Some(g)) if o < g),
        ready,
        chain: status.chain,
        identities,
        secret: status.secret_name,
        expiration: status.expiration,
        renewal_time: status.renewal_time,
        last_refresh_time: status.last_refresh_time,
        last_failure,
    }
}

fn kind_name(kind: ProfileKind) -> &'static str {
    kind.as_str()
}

fn ready_view(c: &Condition) -> ReadyView {
    ReadyView {
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        since: Some(c.last_transition_time.clone()),
    }
}

/// `2026-12-07T18:00:00Z (in 41m)`: the time, and how far it is from `now`.
pub fn when(at: &str, now: Timestamp) -> String {
    match at.parse::<Timestamp>() {
        Ok(t) => format!("{at} ({})", relative(t, now)),
        Err(_) => at.to_owned(),
    }
}

/// `in 41m` or `30s ago`.
fn relative(t: Timestamp, now: Timestamp) -> String {
    let d = t.duration_since(now);
    if d >= SignedDuration::ZERO {
        format!("in {}", short(d))
    } else {
        format!("{} ago", short(-d))
    }
}

/// `41m`, `2h5m`, `12s`, `3d4h`: the two largest units.
fn short(d: SignedDuration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m{}", if secs > 0 { format!("{secs}s") } else { String::new() }),
        (0, h, m) => format!("{h}h{}", if m > 0 { format!("{m}m") } else { String::new() }),
        (d, h, _) => format!("{d}d{}", if h > 0 { format!("{h}h") } else { String::new() }),
    }
}

/// The table of several Identities, one row each, columns aligned (as `kubectl get`).
pub fn table(views: &[IdentityView], now: Timestamp, with_namespace: bool) -> String {
    let mut rows = vec![
        [
            "NAMESPACE",
            "NAME",
            "PROFILE",
            "READY",
            "REASON",
            "EXPIRES",
            "RENEWS",
            "CHAIN",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for v in views {
        let rel = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map_or_else(|| "-".into(), |t| relative(t, now))
        };
        rows.push(vec![
            v.namespace.clone(),
            v.name.clone(),
            v.profile.clone(),
            v.ready.status.clone(),
            v.ready.reason.clone(),
            rel(&v.expiration),
            rel(&v.renewal_time),
            if v.chain.is_empty() {
                "-".into()
            } else {
                v.chain.join(" -> ")
            },
        ]);
    }
    if !with_namespace {
        rows.iter_mut().for_each(|r| drop(r.remove(0)));
    }
    align(&rows)
}

fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("   ").trim_end());
    }
    out
}

/// One Identity in full (`status NAME`), as `kubectl describe` lays things out.
pub fn detail(v: &IdentityView, now: Timestamp) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Identity:     {}/{}", v.namespace, v.name);
    let _ = writeln!(o, "Profile:      {}", v.profile);
    let since = v
        .ready
        .since
        .as_deref()
        .map(|s| format!(", since {}", when(s, now)))
        .unwrap_or_default();
    let _ = writeln!(o, "Ready:        {} ({}{since})", v.ready.status, v.ready.reason);
    if !v.ready.message.is_empty() {
        let _ = writeln!(o, "              {}", v.ready.message);
    }
    if v.stale {
        let _ = writeln!(
            o,
            "              (this status describes an older spec: the controller has not caught up yet)"
        );
    }
    let chain = if v.chain.is_empty() {
        "-".to_owned()
    } else {
        v.chain.join(" -> ")
    };
    let _ = writeln!(o, "Chain:        {chain}");
    let _ = writeln!(o, "Secret:       {}", v.secret.as_deref().unwrap_or("-"));
    if !v.identities.is_empty() {
        let _ = writeln!(o, "Identities:");
        for i in &v.identities {
            let _ = writeln!(o, "  {}", i.name);
            let _ = writeln!(o, "    Role:     {}", i.role_arn.as_deref().unwrap_or("-"));
            let exp = i
                .expiration
                .as_deref()
                .map(|e| when(e, now))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(o, "    Expires:  {exp}");
        }
    }
    let at = |t: &Option<String>| t.as_deref().map(|t| when(t, now)).unwrap_or_else(|| "-".into());
    let _ = writeln!(o, "Expires:      {}", at(&v.expiration));
    let _ = writeln!(o, "Renews:       {}", at(&v.renewal_time));
    let _ = writeln!(o, "Last refresh: {}", at(&v.last_refresh_time));
    match &v.last_failure {
        Some(f) => {
            let _ = writeln!(
                o,
                "Last error:   {} ({}, {} attempt{} since the last success)",
                when(&f.time, now),
                f.reason,
                f.attempts,
                if f.attempts == 1 { "" } else { "s" }
            );
            let _ = writeln!(o, "              {}", f.message);
        }
        None => {
            let _ = writeln!(o, "Last error:   -");
        }
    }
    if let Some(asked) = &v.renew_requested_at {
        let served = v
            .renew_served_at
            .as_deref()
            .map_or_else(|| "waiting".to_owned(), |s| format!("served {}", when(s, now)));
        let _ = writeln!(o, "Renew asked:  {} ({served})", when(asked, now));
    }
    let _ = writeln!(
        o,
        "STS budget:   {}",
        if v.waiting_for_sts_budget {
            "waiting for a turn (see Ready)"
        } else {
            "not waiting"
        }
    );
    o
}

/// A profile and the Identities that use it (`status authprofile/NAME`).
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    /// `AuthProfile/<namespace>/<name>` or `ClusterAuthProfile/<name>`.
    pub profile: String,
    pub ready: ReadyView,
    /// `name (default)` for the default identity.
    pub identities: Vec<String>,
    /// The Identities that name this profile, as `namespace/name`, with their Ready state.
    pub used_by: Vec<IdentityView>,
}

/// The view of a profile from its conditions and identity names, and its users.
pub fn profile_view(
    profile: String,
    conditions: &[Condition],
    identities: Vec<String>,
    used_by: Vec<IdentityView>,
) -> ProfileView {
    ProfileView {
        profile,
        ready: conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(ready_view)
            .unwrap_or_else(|| ReadyView {
                status: "Unknown".into(),
                reason: "NotReconciled".into(),
                message: "the controller has not written a status yet".into(),
                since: None,
            }),
        identities,
        used_by,
    }
}

/// A profile in full, then the table of the Identities that use it.
pub fn profile_detail(p: &ProfileView, now: Timestamp) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Profile:      {}", p.profile);
    let _ = writeln!(o, "Ready:        {} ({})", p.ready.status, p.ready.reason);
    if !p.ready.message.is_empty() {
        let _ = writeln!(o, "              {}", p.ready.message);
    }
    let _ = writeln!(o, "Identities:   {}", p.identities.join(", "));
    if p.used_by.is_empty() {
        let _ = writeln!(o, "Used by:      no Identity you can list");
    } else {
        let _ = writeln!(o, "Used by:");
        for line in table(&p.used_by, now, true).lines() {
            let _ = writeln!(o, "  {line}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::api::{IdentitySpec, IdentityStatus, IssuedIdentity};

    const NOW: &str = "2026-12-07T18:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn cond(status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: Some(1),
            last_transition_time: "2026-12-07T17:50:00Z".into(),
        }
    }

    fn identity(status: Option<IdentityStatus>) -> Identity {
        let mut i = Identity::new(
            "network",
            IdentitySpec {
                profile: "acme".into(),
                ..Default::default()
            },
        );
        i.metadata.namespace = Some("infra".into());
        i.metadata.generation = Some(1);
        i.status = status;
        i
    }

    fn ready_status() -> IdentityStatus {
        IdentityStatus {
            conditions: vec![cond("True", "CredentialsIssued", "issued")],
            observed_generation: Some(1),
            identity: Some("acme/network".into()),
            chain: vec!["acme-oidc".into(), "acme/admin".into(), "acme/network".into()],
            role_arn: Some("arn:aws:iam::123456789012:role/network".into()),
            secret_name: Some("aws-network".into()),
            expiration: Some("2026-12-07T18:41:00Z".into()),
            renewal_time: Some("2026-12-07T18:20:00Z".into()),
            last_refresh_time: Some("2026-12-07T17:50:00Z".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_ready_identity_shows_its_chain_role_and_times() {
        let v = identity_view(&identity(Some(ready_status())));
        assert_eq!(v.profile, "AuthProfile/acme");
        assert_eq!(
            v.identities,
            [IssuedView {
                name: "acme/network".into(),
                role_arn: Some("arn:aws:iam::123456789012:role/network".into()),
                expiration: Some("2026-12-07T18:41:00Z".into()),
            }]
        );
        assert!(!v.waiting_for_sts_budget && !v.stale && v.last_failure.is_none());
        let text = detail(&v, now());
        assert!(
            text.contains("Chain:        acme-oidc -> acme/admin -> acme/network"),
            "{text}"
        );
        assert!(text.contains("Expires:      2026-12-07T18:41:00Z (in 41m)"), "{text}");
        assert!(text.contains("Renews:       2026-12-07T18:20:00Z (in 20m)"), "{text}");
        assert!(text.contains("Last error:   -"), "{text}");
        assert_eq!(
            table(&[v], now(), false),
            "NAME      PROFILE            READY   REASON              EXPIRES   RENEWS   CHAIN\n\
             network   AuthProfile/acme   True    CredentialsIssued   in 41m    in 20m   acme-oidc -> acme/admin -> acme/network\n"
        );
    }

    #[test]
    fn a_failing_identity_shows_the_error_and_its_attempts() {
        let mut s = ready_status();
        s.conditions = vec![cond("False", "AccessDenied", "AssumeRole of arn:... was denied")];
        s.last_failure_time = Some("2026-12-07T17:59:30Z".into());
        s.failed_attempts = Some(3);
        let v = identity_view(&identity(Some(s)));
        let f = v.last_failure.clone().unwrap();
        assert_eq!((f.reason.as_str(), f.attempts), ("AccessDenied", 3));
        let text = detail(&v, now());
        assert!(
            text.contains(
                "Last error:   2026-12-07T17:59:30Z (30s ago) (AccessDenied, 3 attempts since the last success)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_waiting_identity_says_it_waits_for_sts_budget() {
        let s = IdentityStatus {
            conditions: vec![cond("False", WAITING_FOR_STS_BUDGET, "12 refreshes are queued")],
            ..Default::default()
        };
        let v = identity_view(&identity(Some(s)));
        assert!(v.waiting_for_sts_budget);
        assert!(detail(&v, now()).contains("STS budget:   waiting for a turn"));
    }

    #[test]
    fn no_status_yet_is_unknown_and_says_why() {
        let v = identity_view(&identity(None));
        assert_eq!(
            (v.ready.status.as_str(), v.ready.reason.as_str()),
            ("Unknown", "NotReconciled")
        );
        assert!(table(&[v], now(), true).contains("infra       network   AuthProfile/acme   Unknown"));
    }

    #[test]
    fn a_status_for_an_older_generation_is_flagged() {
        let mut i = identity(Some(ready_status()));
        i.metadata.generation = Some(2);
        assert!(identity_view(&i).stale);
    }

    #[test]
    fn several_identities_each_with_their_own_expiry() {
        let mut s = ready_status();
        s.identities = vec![
            IssuedIdentity {
                name: "a".into(),
                role_arn: Some("arn:a".into()),
                data_key: None,
                expiration: Some("2026-12-07T19:00:00Z".into()),
            },
            IssuedIdentity {
                name: "b".into(),
                role_arn: Some("arn:b".into()),
                data_key: None,
                expiration: Some("2026-12-08T20:00:00Z".into()),
            },
        ];
        let v = identity_view(&identity(Some(s)));
        let text = detail(&v, now());
        assert!(
            text.contains("  a\n    Role:     arn:a\n    Expires:  2026-12-07T19:00:00Z (in 1h)"),
            "{text}"
        );
        assert!(text.contains("(in 1d2h)"), "{text}");
    }

    #[test]
    fn json_names_the_fields_in_camel_case() {
        let v = identity_view(&identity(Some(ready_status())));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["ready"]["reason"], "CredentialsIssued");
        assert_eq!(json["waitingForStsBudget"], false);
        assert_eq!(json["renewalTime"], "2026-12-07T18:20:00Z");
        assert_eq!(
            json["identities"][0]["roleArn"],
            "arn:aws:iam::123456789012:role/network"
        );
    }
}
