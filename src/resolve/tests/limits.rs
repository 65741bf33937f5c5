//! Profiles at the schema limits and past the chain limit: correct, bounded, and the
//! shared (memoized) profile check equal to checking each identity on its own.

use pretty_assertions::assert_eq;

use super::*;
use crate::api::limits::{MAX_IDENTITIES, MAX_NAME_LEN, MAX_PROVIDERS};
use crate::resolve::walk::Checker;

/// `prefix` padded with `n` to the longest name the schema allows.
fn long_name(prefix: &str) -> String {
    format!("{prefix}{}", "n".repeat(MAX_NAME_LEN as usize - prefix.len()))
}

fn provider_name(i: usize) -> String {
    long_name(&format!("provider-{i:02}-"))
}

fn identity_name(chain: usize, link: usize) -> String {
    long_name(&format!("chain-{chain:02}/link-{link:02}/"))
}

fn role(chain: usize, link: usize) -> String {
    // A long path and the longest role name AWS allows (64).
    format!(
        "arn:aws:iam::123456789012:role/{}/{:0<64}",
        "p".repeat(200),
        format!("r{chain:02}-{link:02}-")
    )
}

/// A profile at the schema limits: the most providers and identities, names of the longest
/// length, identities in chains of [`MAX_CHAIN_LINKS`] links (the last chain shorter).
fn at_limits() -> AuthProfileSpec {
    let mut providers = serde_json::Map::new();
    for i in 0..MAX_PROVIDERS as usize {
        providers.insert(
            provider_name(i),
            serde_json::json!({"kind": "kubernetes/oidc", "region": "us-east-2",
                "spec": {"audience": "sts.amazonaws.com", "service_account": "terraform", "expiration": "1h"}}),
        );
    }
    let mut identities = serde_json::Map::new();
    for n in 0..MAX_IDENTITIES as usize {
        let (chain, link) = (n / MAX_CHAIN_LINKS, n % MAX_CHAIN_LINKS);
        let via = if link == 0 {
            serde_json::json!({"provider": provider_name(chain % MAX_PROVIDERS as usize)})
        } else {
            serde_json::json!({"identity": identity_name(chain, link - 1)})
        };
        let mut principal = serde_json::json!({"assume_role": role(chain, link), "duration": "1h",
            "session_name": format!("{:x<64}", format!("s{chain}-{link}-"))});
        if link == 0 {
            // The provider's region is not used (Atmos): the first link names it.
            principal["region"] = serde_json::json!("us-east-2");
        }
        if link > 0 {
            principal["external_id"] = serde_json::json!("e".repeat(1224));
            principal["region"] = serde_json::json!(format!("eu-west-{}", link % 3 + 1));
        }
        identities.insert(
            identity_name(chain, link),
            serde_json::json!({"kind": "aws/assume-role", "via": via, "principal": principal}),
        );
    }
    serde_json::from_value(serde_json::json!({"providers": providers, "identities": identities})).unwrap()
}

/// One chain `a000 <- a001 <- ... <- a{len-1}` from provider `p`.
fn line(len: usize) -> AuthProfileSpec {
    line_named(len, |i| format!("a{i:03}"))
}

/// One chain of `len` links from provider `p`, link `i` named `name(i)`.
fn line_named(len: usize, name: impl Fn(usize) -> String) -> AuthProfileSpec {
    let mut identities = serde_json::Map::new();
    for i in 0..len {
        let via = if i == 0 {
            serde_json::json!({"provider": "p"})
        } else {
            serde_json::json!({"identity": name(i - 1)})
        };
        identities.insert(
            name(i),
            serde_json::json!({"kind": "aws/assume-role", "via": via,
                "principal": {"assume_role": format!("arn:aws:iam::123456789012:role/a{i}")}}),
        );
    }
    serde_json::from_value(serde_json::json!({
        "providers": {"p": {"kind": "kubernetes/oidc", "spec": {"service_account": "sa"}}},
        "identities": identities,
    }))
    .unwrap()
}

/// Each identity checked on its own, without the shared results of [`validate_profile`].
fn checked_one_by_one(profile: &AuthProfileSpec) -> Vec<(String, Vec<String>, Vec<Problem>)> {
    let settings = Settings::default();
    let names = super::super::names::Names::new(profile);
    profile
        .identities
        .iter()
        .map(|(name, def)| {
            let mut checker = Checker {
                profile,
                settings: &settings,
                target: name,
                overrides: None,
                names: &names,
                problems: Vec::new(),
                warnings: Vec::new(),
            };
            let chain = checker.check(def, None, false);
            (name.clone(), chain.names, checker.problems)
        })
        .collect()
}

fn checked_shared(profile: &AuthProfileSpec) -> Vec<(String, Vec<String>, Vec<Problem>)> {
    validate_profile(profile, &Settings::default())
        .identities
        .into_iter()
        .map(|i| (i.name, i.chain, i.problems))
        .collect()
}

#[test]
fn a_profile_at_the_limits_resolves() {
    let prof = at_limits();
    assert_eq!(prof.providers.len(), MAX_PROVIDERS as usize);
    assert_eq!(prof.identities.len(), MAX_IDENTITIES as usize);
    let report = validate_profile(&prof, &Settings::default());
    assert_eq!(report.all_problems(), vec![]);
    assert!(report.is_ready());
    for (n, entry) in report.identities.iter().enumerate() {
        let (chain, link) = (n / MAX_CHAIN_LINKS, n % MAX_CHAIN_LINKS);
        assert_eq!(entry.name, identity_name(chain, link));
        let mut expected = vec![provider_name(chain % MAX_PROVIDERS as usize)];
        expected.extend((0..=link).map(|l| identity_name(chain, l)));
        assert_eq!(entry.chain, expected);
    }

    // The deepest chains resolve for an Identity: every link, in order, with its region.
    for chain in 0..MAX_IDENTITIES as usize / MAX_CHAIN_LINKS {
        let target = identity_name(chain, MAX_CHAIN_LINKS - 1);
        let spec = IdentitySpec {
            profile: "k8s".into(),
            identity: Some(target.clone()),
            ..IdentitySpec::default()
        };
        let got = resolve(&prof, &spec, "deep", &Settings::default()).unwrap();
        assert_eq!(got.identity, target);
        assert_eq!(got.links.len(), MAX_CHAIN_LINKS);
        assert_eq!(got.token.provider, provider_name(chain % MAX_PROVIDERS as usize));
        assert_eq!(got.token.expiration_seconds, 3600);
        for (l, link) in got.links.iter().enumerate() {
            assert_eq!(link.identity, identity_name(chain, l));
            assert_eq!(link.role_arn, role(chain, l));
            let region = if l == 0 {
                "us-east-2".to_owned()
            } else {
                format!("eu-west-{}", l % 3 + 1)
            };
            assert_eq!(link.region, region);
            assert_eq!(link.external_id.is_some(), l > 0);
        }
    }
}

#[test]
fn the_status_of_a_profile_at_the_limits_is_bounded() {
    let report = validate_profile(&at_limits(), &Settings::default());
    let states = report.identity_states();
    let deepest = &states[MAX_CHAIN_LINKS - 1];
    assert_eq!(deepest.chain.len(), MAX_STATUS_CHAIN);
    assert_eq!(deepest.chain_length, Some(MAX_CHAIN_LINKS as i64 + 1));
    assert_eq!(states[0].chain_length, None);
    assert_eq!(states[0].chain.len(), 2);
    // Every entry: its name, at most five names of chain, a short message.
    let bound =
        MAX_IDENTITIES as usize * (MAX_NAME_LEN as usize * (1 + MAX_STATUS_CHAIN) + MAX_STATUS_MESSAGE_LEN + 128);
    let size = serde_json::to_string(&states).unwrap().len();
    assert!(size <= bound, "{size} > {bound}");

    // Messages are cut too (here: a chain past the limit, whose message names it).
    let report = validate_profile(&line(40), &Settings::default());
    for state in report.identity_states() {
        assert!(state.message.as_ref().is_none_or(|m| m.len() <= MAX_STATUS_MESSAGE_LEN));
    }
}

#[test]
fn chains_longer_than_the_limit_are_refused() {
    let prof = line(MAX_CHAIN_LINKS + 1);
    let deepest = IdentitySpec {
        profile: "k8s".into(),
        identity: Some("a010".into()),
        ..IdentitySpec::default()
    };
    assert_eq!(
        only(&prof, &deepest),
        p(
            "auth.identities.a010.via",
            Reason::InvalidProfile,
            "the chain of a010 reaches no provider within 10 links, the most the controller follows (Atmos chains are a few links): a010 -> a009 -> a008 -> a007 -> a006 -> a005 -> a004 -> a003 -> a002 -> a001 -> a000 -> ...; start it from a provider (via.provider) in at most 10 links"
        )
    );
    let at_limit = IdentitySpec {
        identity: Some("a009".into()),
        ..deepest
    };
    assert_eq!(
        resolve(&prof, &at_limit, "ok", &Settings::default())
            .unwrap()
            .links
            .len(),
        MAX_CHAIN_LINKS
    );

    // One long line: the first ten resolve, every later one is refused, each on its own.
    let report = validate_profile(&line(MAX_IDENTITIES as usize), &Settings::default());
    let ready: Vec<bool> = report.identities.iter().map(IdentityReport::is_ready).collect();
    assert_eq!(ready.iter().filter(|r| **r).count(), MAX_CHAIN_LINKS);
    assert!(ready[..MAX_CHAIN_LINKS].iter().all(|r| *r));
    for entry in &report.identities[MAX_CHAIN_LINKS..] {
        assert_eq!(entry.problems.len(), 1, "{:?}", entry.problems);
        assert_eq!(entry.problems[0].path, format!("auth.identities.{}.via", entry.name));
        assert!(entry.chain.is_empty());
    }
}

#[test]
fn shared_profile_check_equals_one_by_one() {
    let cycles = profile(
        r#"
identities:
  acme/a: {kind: aws/assume-role, via: {identity: acme/b}, principal: {assume_role: "arn:aws:iam::123456789012:role/a"}}
  acme/b: {kind: aws/assume-role, via: {identity: acme/a}, principal: {assume_role: "arn:aws:iam::123456789012:role/b"}}
  acme/c: {kind: aws/assume-role, via: {identity: acme/b}, principal: {assume_role: "arn:aws:iam::123456789012:role/c"}}
  acme/d: {kind: aws/assume-role, via: {identity: acme/c}, principal: {assume_role: "bad", duration: 5m}}
  acme/self: {kind: aws/assume-role, via: {identity: acme/self}, principal: {assume_role: "arn:aws:iam::123456789012:role/s"}}
  acme/both: {kind: aws/assume-role, via: {identity: acme/admin, provider: cluster-oidc}}
  acme/under-both: {kind: aws/user, via: {identity: acme/both}, principal: {external_id: x}}
  acme/dangling: {kind: aws/assume-role, via: {identity: acme/none}}
  acme/under-dangling: {kind: aws/assume-role, via: {identity: acme/dangling}, principal: {region: Mars}}
  acme/no-provider: {kind: aws/assume-role, via: {provider: nope}, principal: {assume_role: "arn:aws:iam::123456789012:role/n"}}
  acme/under-no-provider: {kind: '', via: {identity: acme/no-provider}}
  "bad name": {kind: aws/assume-role, via: {identity: acme/dns}, principal: {assume_role: "arn:aws:iam::123456789012:role/x"}}
  zz/under-bad-name: {kind: aws/assume-role, via: {identity: bad name}, principal: {assume_role: "arn:aws:iam::123456789012:role/y"}}
providers: {cluster-oidc: {spec: {audience: other}}}
"#,
    );
    // Long chains whose names sort ancestors first, descendants first, and both in one.
    let reversed = line_named(25, |i| format!("r{:03}", 999 - i));
    let mut mixed = line(25);
    mixed.identities.extend(reversed.identities.clone());
    for prof in [
        profile(""),
        cycles,
        line(MAX_CHAIN_LINKS + 3),
        reversed,
        mixed,
        at_limits(),
    ] {
        assert_eq!(checked_shared(&prof), checked_one_by_one(&prof));
    }
}
