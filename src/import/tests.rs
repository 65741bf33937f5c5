//! The import pipeline on in-memory files. The golden tests (`tests/import.rs`) run the
//! binary on fixture directories; these pin the pieces.

use std::path::Path;

use pretty_assertions::assert_eq;

use super::*;

const SEED: &str = "auth:
  providers:
    github-oidc:
      kind: github/oidc
      region: us-east-2
      spec:
        audience: sts.amazonaws.com
  identities:
    acme/admin:
      default: true
      kind: aws/assume-role
      via:
        provider: github-oidc
      principal:
        assume_role: arn:aws:iam::123456789012:role/github-actions-role
    acme/network:
      kind: aws/assume-role
      via:
        identity: acme/admin
      principal:
        assume_role: arn:aws:iam::123456789012:role/network-admin
";

fn input(source: &str, text: &str) -> Input {
    Input {
        source: source.into(),
        text: text.into(),
    }
}

fn options(service_accounts: &[&str], identities: bool) -> Options {
    Options {
        name: "github".into(),
        namespace: Some("infra".into()),
        service_accounts: service_accounts.iter().map(|s| (*s).to_owned()).collect(),
        identities,
        settings: Settings::default(),
    }
}

#[test]
fn seed_without_service_account_keeps_github_oidc_and_says_what_to_pass() {
    let out = import(&[input("atmos.yaml", SEED)], &options(&[], true)).unwrap();
    assert_eq!(out.problems, vec![]);
    assert_eq!(out.profile.spec.providers["github-oidc"].kind, "github/oidc");
    assert!(out.identities.is_empty());
    assert_eq!(out.notes[0].path, "auth.providers.github-oidc");
    assert!(
        out.notes[0].message.contains("pass --service-account SA"),
        "{}",
        out.notes[0]
    );
    assert_eq!(
        out.not_runnable.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
        ["auth.providers.github-oidc.kind"]
    );
    // One note per identity that got no Identity.
    assert_eq!(out.notes.len(), 3);
}

#[test]
fn seed_with_service_account_maps_the_provider_and_makes_identities() {
    let out = import(&[input("atmos.yaml", SEED)], &options(&["terraform"], true)).unwrap();
    assert_eq!(out.problems, vec![]);
    assert_eq!(out.not_runnable, vec![]);
    let provider = &out.profile.spec.providers["github-oidc"];
    assert_eq!(provider.kind, "kubernetes/oidc");
    let spec = provider.spec.clone().unwrap_or_default();
    assert_eq!(spec.audience.as_deref(), Some("sts.amazonaws.com"));
    assert_eq!(spec.service_account.as_deref(), Some("terraform"));
    assert_eq!(
        out.notes,
        vec![Note {
            path: "auth.providers.github-oidc".into(),
            message: "github/oidc became kubernetes/oidc with the same name and audience (sts.amazonaws.com), \
                      ServiceAccount terraform. The IAM roles it starts must now trust the cluster's OIDC issuer \
                      instead of GitHub's (token.actions.githubusercontent.com): the cluster's IAM OIDC identity \
                      provider must list sts.amazonaws.com among its audiences (client IDs), and each role's trust \
                      policy must match aud sts.amazonaws.com and sub system:serviceaccount:infra:terraform for the \
                      role of acme/admin (arn:aws:iam::123456789012:role/github-actions-role). Jobs on ARC runners \
                      can keep using github/oidc through Atmos itself where a role must stay scoped to a repository \
                      or environment"
                .into()
        }]
    );
    let names: Vec<(Option<String>, Option<String>)> = out
        .identities
        .iter()
        .map(|i| (i.metadata.name.clone(), i.spec.identity.clone()))
        .collect();
    assert_eq!(
        names,
        [
            (Some("acme-admin".into()), Some("acme/admin".into())),
            (Some("acme-network".into()), Some("acme/network".into()))
        ]
    );
    assert!(out.identities.iter().all(|i| i.spec.profile == "github"
        && i.metadata.namespace.as_deref() == Some("infra")
        && i.spec.service_account_name.is_none()));
    let yaml = out.manifests().unwrap();
    assert_eq!(yaml.matches("---\n").count(), 2, "{yaml}");
    assert!(!yaml.contains("status"), "{yaml}");
    // What is printed reads back as the same objects.
    let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&yaml).unwrap();
    assert_eq!(docs[0], serde_json::to_value(&out.profile).unwrap());
    assert_eq!(docs[2], serde_json::to_value(&out.identities[1]).unwrap());
}

#[test]
fn per_identity_service_accounts_go_to_identities_and_trust_the_first_role() {
    let out = import(
        &[input("atmos.yaml", SEED)],
        &options(&["acme/network=tf-network", "terraform"], true),
    )
    .unwrap();
    assert_eq!(out.problems, vec![]);
    assert_eq!(
        out.identities[1].spec.service_account_name.as_deref(),
        Some("tf-network")
    );
    assert_eq!(out.identities[0].spec.service_account_name, None);
    assert!(
        out.notes[0].message.contains(
            "sub system:serviceaccount:infra:terraform or system:serviceaccount:infra:tf-network for the role of \
             acme/admin"
        ),
        "{}",
        out.notes[0]
    );
    // Only per-identity accounts: an identity without one cannot get a token.
    let out = import(
        &[input("atmos.yaml", SEED)],
        &options(&["acme/network=tf-network"], true),
    )
    .unwrap();
    assert_eq!(
        out.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "Identity acme-admin: spec.serviceAccountName: no ServiceAccount: set spec.serviceAccountName or the \
          provider's spec.service_account"
        ]
    );
}

#[test]
fn service_account_flags() {
    let parsed = ServiceAccounts::parse(&["a=b=sa".into(), "tf".into()]).unwrap();
    assert_eq!(parsed.default.as_deref(), Some("tf"));
    assert_eq!(parsed.per_identity["a=b"], "sa");
    for (flags, message) in [
        (
            vec!["Terraform"],
            "--service-account Terraform: \"Terraform\" is not a valid ServiceAccount name: a DNS-1123 subdomain is \
             at most 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a \
             letter or digit",
        ),
        (
            vec!["a", "b"],
            "--service-account b: a default ServiceAccount (a) is already given; give one bare SA and IDENTITY=SA \
             for the others",
        ),
        (
            vec!["=a"],
            "--service-account =a: the identity before = is empty; use IDENTITY=SA or a bare SA",
        ),
        (
            vec!["x=a", "x=b"],
            "--service-account x=b: identity x already has ServiceAccount a; give one",
        ),
    ] {
        let flags: Vec<String> = flags.into_iter().map(String::from).collect();
        assert_eq!(ServiceAccounts::parse(&flags).unwrap_err().to_string(), message);
    }
    let err = import(&[input("a.yaml", SEED)], &options(&["acme/x=tf"], true)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--service-account acme/x=tf: the profile has no identity acme/x; identities: acme/admin, acme/network"
    );
    let err = import(&[input("a.yaml", SEED)], &options(&["acme/admin=tf"], false)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--service-account IDENTITY=SA: a per-identity ServiceAccount is set on that identity's Identity object: \
         add --identities"
    );
}

/// `IDENTITY=SA` names an identity as Atmos's `--identity` does, regardless of case; files
/// merge names as Viper does (lower-cased), under the later spelling.
#[test]
fn names_are_matched_regardless_of_case_as_atmos_does() {
    let out = import(
        &[input("atmos.yaml", SEED)],
        &options(&["ACME/Network=tf-network", "terraform"], true),
    )
    .unwrap();
    assert_eq!(out.problems, vec![]);
    assert_eq!(
        out.identities[1].spec.service_account_name.as_deref(),
        Some("tf-network")
    );
    let profile =
        "auth:\n  identities:\n    ACME/Admin:\n      default: false\n    acme/NETWORK:\n      default: true\n";
    let out = import(
        &[input("atmos.yaml", SEED), input("profiles/ci/atmos.yaml", profile)],
        &options(&["terraform"], false),
    )
    .unwrap();
    assert_eq!(out.problems, vec![]);
    let names: Vec<&str> = out.profile.spec.identities.keys().map(String::as_str).collect();
    assert_eq!(names, ["ACME/Admin", "acme/NETWORK"]);
    assert_eq!(out.profile.spec.identities["ACME/Admin"].default, Some(false));
    // The chain follows the (lower-case) reference to the renamed entry.
    assert!(
        out.notes[0].message.contains("for the role of ACME/Admin"),
        "{}",
        out.notes[0]
    );
}

#[test]
fn two_defaults_after_a_profile_are_reported_with_their_files() {
    let profile = "auth:\n  identities:\n    acme/network:\n      default: true\n";
    let out = import(
        &[input("atmos.yaml", SEED), input("profiles/ci/atmos.yaml", profile)],
        &options(&["terraform"], false),
    )
    .unwrap();
    assert_eq!(
        out.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["auth.identities: several identities are marked default: true (acme/admin, acme/network); keep at most one"]
    );
    assert_eq!(
        out.notes[1..].iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "auth.identities.acme/admin.default: true, set by atmos.yaml; files merge key by key, so a profile that \
             makes another identity the default must also set default: false here",
            "auth.identities.acme/network.default: true, set by profiles/ci/atmos.yaml; files merge key by key, so a \
             profile that makes another identity the default must also set default: false here",
        ]
    );
    // ...and the fix the note names works.
    let profile = "auth:\n  identities:\n    acme/network: {default: true}\n    acme/admin: {default: false}\n";
    let out = import(
        &[input("atmos.yaml", SEED), input("profiles/ci/atmos.yaml", profile)],
        &options(&["terraform"], false),
    )
    .unwrap();
    assert_eq!(out.problems, vec![]);
}

#[test]
fn existing_kubernetes_providers_keep_their_service_account() {
    let text = "auth:\n  providers:\n    k: {kind: kubernetes/oidc, spec: {service_account: tf}}\n    \
                e: {kind: kubernetes/oidc}\n  identities:\n    a:\n      kind: aws/assume-role\n      \
                via: {provider: k}\n      principal: {assume_role: 'arn:aws:iam::123456789012:role/a'}\n";
    let out = import(&[input("a.yaml", text)], &options(&["other"], false)).unwrap();
    let sa = |p: &str| {
        out.profile.spec.providers[p]
            .spec
            .clone()
            .unwrap_or_default()
            .service_account
    };
    assert_eq!(sa("k").as_deref(), Some("tf"));
    assert_eq!(sa("e").as_deref(), Some("other"));
    assert_eq!(
        out.notes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "auth.providers.k.spec.service_account: kept tf from the profile; --service-account other fills in only a \
          missing one"
        ]
    );
}

#[test]
fn errors_without_auth_bad_names_and_namespaces() {
    let err = import(&[input("a.yaml", "x: 1\n"), input("b.yaml", "")], &options(&[], false)).unwrap_err();
    assert_eq!(err.to_string(), "no auth: block in a.yaml, b.yaml");
    let mut bad = options(&[], false);
    bad.name = "Github".into();
    assert!(
        import(&[input("a.yaml", SEED)], &bad)
            .unwrap_err()
            .to_string()
            .starts_with("--name Github: ")
    );
    let mut bad = options(&[], false);
    bad.namespace = Some("a.b".into());
    assert!(
        import(&[input("a.yaml", SEED)], &bad)
            .unwrap_err()
            .to_string()
            .starts_with("--namespace a.b: not a valid namespace")
    );
}

#[test]
fn object_names() {
    let mut taken = BTreeSet::new();
    assert_eq!(object_name("acme/admin", &mut taken), "acme-admin");
    assert_eq!(object_name("Acme.Admin", &mut taken), "acme-admin-2");
    assert_eq!(object_name("acme//admin", &mut taken), "acme-admin-3");
    assert_eq!(object_name("//", &mut taken), "identity");
    assert_eq!(object_name(&"x".repeat(80), &mut taken), "x".repeat(63));
    assert_eq!(
        object_name(&"x".repeat(80), &mut taken),
        format!("{}-2", "x".repeat(61))
    );
}

#[test]
fn default_names() {
    assert_eq!(default_name(Path::new("profiles/github/atmos.yaml"), false), "github");
    assert_eq!(default_name(Path::new("profiles/github"), true), "github");
    assert_eq!(default_name(Path::new("atmos.yaml"), false), "atmos");
    assert_eq!(default_name(Path::new("conf/CI_Profile.yml"), false), "ci-profile");
    assert_eq!(default_name(Path::new("."), true), "atmos");
}

const AZURE: &str = "auth:
  providers:
    entra:
      kind: azure/oidc
      spec:
        tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47
        client_id: 11111111-2222-3333-4444-555555555555
  identities:
    azure/prod:
      default: true
      kind: azure/subscription
      via:
        provider: entra
      principal:
        subscription_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
";

#[test]
fn a_github_sourced_azure_provider_gets_the_serviceaccount_and_the_federated_credential_note() {
    let out = import(&[input("atmos.yaml", AZURE)], &options(&["terraform"], true)).unwrap();
    assert_eq!(out.problems, vec![]);
    let entra = &out.profile.spec.providers["entra"];
    assert_eq!(entra.kind, "azure/oidc");
    assert_eq!(
        entra.spec.as_ref().and_then(|s| s.service_account.as_deref()),
        Some("terraform")
    );
    assert_eq!(out.identities.len(), 1);
    let note = out.notes.iter().find(|n| n.path == "auth.providers.entra").unwrap();
    assert!(
        note.message
            .contains("subject system:serviceaccount:infra:terraform and audience api://AzureADTokenExchange"),
        "{}",
        note.message
    );
    // Without a ServiceAccount: kept, and a note says what to pass.
    let out = import(&[input("atmos.yaml", AZURE)], &options(&[], false)).unwrap();
    let note = out.notes.iter().find(|n| n.path == "auth.providers.entra").unwrap();
    assert!(note.message.contains("pass --service-account SA"), "{}", note.message);
}
