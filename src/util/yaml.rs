//! The one YAML reader: manifests for `validate`, the tests and the benches, and Atmos
//! config files for `import`. Its resource budget is set here on purpose instead of left at
//! serde-saphyr's defaults, which stop at 1 024 documents and 250 000 nodes: a platform's
//! rendered manifest of 10 000 Identities is over both.
//!
//! The budget is sized for honest input ten times the largest this project targets (10 000
//! Identities, about 300 bytes and 20 nodes each) and stops what only hostile or broken
//! input does: an alias bomb (a few lines that expand into billions of nodes), deep nesting
//! (recursion in every reader), huge scalars and floods of documents or nodes. A breach is
//! an error naming the limit, its value and the line where the reader stopped.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;

/// Largest YAML text read, bytes: 10x a 100 000-Identity manifest's ~30 MiB would be too
/// much memory, so 64 MiB (two 10 000-Identity manifests' worth, ten times over). Checked
/// before parsing, and while reading, so a huge file is not read whole.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;
/// Documents in one text: ten times the 10 000 Identities a large platform renders.
pub const MAX_DOCUMENTS: usize = 100_000;
/// Nodes (mappings, lists, scalars) in one text: 40 per document at [`MAX_DOCUMENTS`] (an
/// Identity with metadata, labels and annotations has about 20). Bounds the parsed tree's
/// memory (about 100 bytes a node).
pub const MAX_NODES: usize = 4_000_000;
/// Nesting of mappings and lists. The deepest path of an AuthProfile
/// (`spec.identities.<name>.principal.<key>`) is 5; exported objects with managedFields
/// reach about 15.
pub const MAX_DEPTH: usize = 32;
/// Nodes produced by replaying aliases (`*anchor`). Manifests rarely use aliases; a file
/// that expands past this from a few anchors is an alias bomb.
pub const MAX_ALIAS_EXPANSION: usize = 1_000_000;
/// Merge keys (`<<: *anchor`): one per document on average.
pub const MAX_MERGE_KEYS: usize = MAX_DOCUMENTS;

/// Why a YAML text was not read.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// Not readable (missing file, permission, not UTF-8).
    #[error("{input}: cannot read: {message}")]
    Read { input: String, message: String },
    /// Over [`MAX_INPUT_BYTES`].
    #[error(
        "{input}: the YAML text is over {} MiB (limit MAX_INPUT_BYTES): split it into several files",
        MAX_INPUT_BYTES / 1024 / 1024
    )]
    TooLarge { input: String },
    /// A budget limit was hit: which, its value, and where the reader stopped.
    #[error(
        "{input}: line {line}, column {column}: {what} (limit {limit}); the YAML reader stops here to protect \
         the process: {advice}"
    )]
    Budget {
        input: String,
        /// The limit's name (`MAX_DOCUMENTS`, ...).
        limit: Limit,
        /// What was seen, with the limit's value.
        what: String,
        advice: &'static str,
        line: u64,
        column: u64,
    },
    /// Not YAML, or not the shape asked for.
    #[error("{input}: invalid YAML: {message}")]
    Syntax { input: String, message: String },
}

/// The limits of the budget, by the names of their constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Documents,
    Nodes,
    Depth,
    AliasExpansion,
    Aliases,
    MergeKeys,
    ScalarBytes,
    Events,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Documents => "MAX_DOCUMENTS",
            Limit::Nodes => "MAX_NODES",
            Limit::Depth => "MAX_DEPTH",
            Limit::AliasExpansion => "MAX_ALIAS_EXPANSION",
            Limit::Aliases => "aliases per anchor",
            Limit::MergeKeys => "MAX_MERGE_KEYS",
            Limit::ScalarBytes => "MAX_INPUT_BYTES",
            Limit::Events => "parser events",
        })
    }
}

/// How scalars are typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// YAML 1.1 as kubectl reads manifests (`yes` is a boolean).
    Kubernetes,
    /// go-yaml v3 as Atmos reads atmos.yaml: only `true`/`false` are booleans, and
    /// `012345678901` (an unquoted AWS account id) stays a string.
    Atmos,
}

/// The budget and options every read uses.
pub(crate) fn options(schema: Schema) -> serde_saphyr::Options {
    let atmos = schema == Schema::Atmos;
    serde_saphyr::options! {
        strict_booleans: atmos,
        leading_zero_numbers_as_strings: atmos,
        budget: serde_saphyr::budget! {
            max_documents: MAX_DOCUMENTS,
            max_nodes: MAX_NODES,
            // Every node opens and most close: two events a node, plus document markers.
            max_events: 2 * MAX_NODES + 4 * MAX_DOCUMENTS,
            max_depth: MAX_DEPTH,
            // One over, so that the budget (which names the limit) trips before the parser.
            flow_nesting_limit: MAX_DEPTH + 1,
            max_recorded_anchor_events: MAX_ALIAS_EXPANSION,
            max_total_scalar_bytes: MAX_INPUT_BYTES,
            max_merge_keys: MAX_MERGE_KEYS,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_ALIAS_EXPANSION,
            max_replay_stack_depth: MAX_DEPTH,
        },
    }
}

/// Every document of `text` as `T`. `source` names the text in errors.
pub fn documents<T: DeserializeOwned>(source: &str, text: &str, schema: Schema) -> Result<Vec<T>, YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError::TooLarge {
            input: source.to_owned(),
        });
    }
    serde_saphyr::from_str_multiple_with_options(text, options(schema)).map_err(|e| error(source, &e))
}

/// Reads a file (`-`: standard input) of at most [`MAX_INPUT_BYTES`], stopping at the limit
/// rather than reading a huge file whole.
pub fn read(path: &Path) -> Result<String, YamlError> {
    let source = path.display().to_string();
    let read_err = |e: std::io::Error| YamlError::Read {
        input: source.clone(),
        message: e.to_string(),
    };
    let mut text = String::new();
    let limit = MAX_INPUT_BYTES as u64 + 1;
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_string(&mut text)
            .map_err(read_err)?;
    } else {
        std::fs::File::open(path)
            .map_err(read_err)?
            .take(limit)
            .read_to_string(&mut text)
            .map_err(read_err)?;
    }
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError::TooLarge { input: source });
    }
    Ok(text)
}

/// A serde-saphyr error as a [`YamlError`]: budget breaches by limit, anything else as the
/// parser says it, with `source` for its `<input>`.
fn error(source: &str, e: &serde_saphyr::Error) -> YamlError {
    use serde_saphyr::Error as E;
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let budget = |limit, what: String, advice| YamlError::Budget {
        input: source.to_owned(),
        limit,
        what,
        advice,
        line,
        column,
    };
    const SPLIT: &str = "split the file, or check that it is the file you meant";
    const ALIASES: &str = "expand the anchors by hand if this is honest input; aliases that multiply are an alias bomb";
    let mut inner = e.without_snippet();
    while let E::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    match inner {
        E::Budget { breach, .. } => match breach {
            BudgetBreach::Documents { documents } => budget(
                Limit::Documents,
                format!("{documents} documents, more than {MAX_DOCUMENTS}"),
                SPLIT,
            ),
            BudgetBreach::Nodes { nodes } => {
                budget(Limit::Nodes, format!("{nodes} nodes, more than {MAX_NODES}"), SPLIT)
            }
            BudgetBreach::Events { events } => budget(
                Limit::Events,
                format!(
                    "{events} parser events, more than {}",
                    2 * MAX_NODES + 4 * MAX_DOCUMENTS
                ),
                SPLIT,
            ),
            BudgetBreach::Depth { depth } => budget(
                Limit::Depth,
                format!("nesting {depth} deep, more than {MAX_DEPTH} deep"),
                "no AuthProfile or Identity nests this deep: flatten the document",
            ),
            BudgetBreach::ScalarBytes { total_scalar_bytes } => budget(
                Limit::ScalarBytes,
                format!("{total_scalar_bytes} bytes of values, more than {MAX_INPUT_BYTES}"),
                SPLIT,
            ),
            BudgetBreach::MergeKeys { merge_keys } => budget(
                Limit::MergeKeys,
                format!("{merge_keys} merge keys (<<), more than {MAX_MERGE_KEYS}"),
                SPLIT,
            ),
            BudgetBreach::RecordedAnchorEvents { recorded_anchor_events } => budget(
                Limit::AliasExpansion,
                format!("anchors hold {recorded_anchor_events} copied nodes, more than {MAX_ALIAS_EXPANSION}"),
                ALIASES,
            ),
            BudgetBreach::Aliases { .. } | BudgetBreach::AliasAnchorRatio { .. } => {
                budget(Limit::Aliases, format!("too many aliases: {breach:?}"), ALIASES)
            }
            other => budget(Limit::Events, format!("{other:?}"), SPLIT),
        },
        E::AliasReplayLimitExceeded {
            total_replayed_events, ..
        } => budget(
            Limit::AliasExpansion,
            format!("aliases expand to {total_replayed_events} nodes, more than {MAX_ALIAS_EXPANSION}"),
            ALIASES,
        ),
        E::AliasReplayStackDepthExceeded { depth, .. } => budget(
            Limit::Depth,
            format!("aliases nest {depth} deep, more than {MAX_DEPTH}"),
            ALIASES,
        ),
        E::AliasExpansionLimitExceeded { expansions, .. } => budget(
            Limit::Aliases,
            format!("one anchor expanded {expansions} times"),
            ALIASES,
        ),
        // The scanner's own nesting guard can fire before the budget sees the events.
        _ if e.to_string().contains("recursion limit exceeded") => budget(
            Limit::Depth,
            format!("nesting more than {MAX_DEPTH} deep"),
            "no AuthProfile or Identity nests this deep: flatten the document",
        ),
        _ => YamlError::Syntax {
            input: source.to_owned(),
            // The parser's snippet names its input `<input>`: name the source instead.
            message: e.to_string().trim_start_matches("error: ").replace("<input>", source),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn load(text: &str) -> Result<Vec<Value>, YamlError> {
        documents("m.yaml", text, Schema::Kubernetes)
    }

    fn identities(n: usize) -> String {
        let mut out = String::new();
        for i in 0..n {
            out.push_str(&format!(
                "---\napiVersion: auth.atmos.tools/v1alpha1\nkind: Identity\nmetadata:\n  name: id-{i}\n  \
                 namespace: team-{}\n  labels: {{app: x, tier: y}}\nspec:\n  profile: k8s\n  identity: acme/network\n",
                i % 10
            ));
        }
        out
    }

    fn breach(text: &str) -> (Limit, String) {
        match load(text) {
            Err(e @ YamlError::Budget { limit, .. }) => (limit, e.to_string()),
            other => panic!("expected a budget error, got {other:?}"),
        }
    }

    #[test]
    fn ten_thousand_documents_load() {
        // serde-saphyr's default budget stops at 1 024 documents and 250 000 nodes.
        let docs = load(&identities(10_000)).unwrap();
        assert_eq!(docs.len(), 10_000);
        assert_eq!(docs[9_999]["metadata"]["name"], "id-9999");
    }

    #[test]
    fn too_many_documents_stop_with_the_limit_and_line() {
        let text = "---\na: 1\n".repeat(MAX_DOCUMENTS + 1);
        let (limit, message) = breach(&text);
        assert_eq!(limit, Limit::Documents);
        assert!(message.contains("more than 100000"), "{message}");
        assert!(message.contains("(limit MAX_DOCUMENTS)"), "{message}");
        assert!(message.starts_with("m.yaml: line 200001"), "{message}");
    }

    #[test]
    fn an_alias_bomb_stops_early() {
        // Billion laughs: nine levels of ten aliases each, 10^9 nodes from 10 lines.
        let mut text = String::from("a0: &a0 [lol]\n");
        for level in 1..10 {
            let prev = format!("*a{}", level - 1);
            text.push_str(&format!("a{level}: &a{level} [{}]\n", vec![prev; 10].join(", ")));
        }
        let started = std::time::Instant::now();
        let (limit, message) = breach(&text);
        assert!(
            matches!(limit, Limit::AliasExpansion | Limit::Aliases),
            "{limit:?} {message}"
        );
        assert!(message.contains("alias bomb"), "{message}");
        // Expanded, it would take hours and all memory; stopped, a few seconds of a debug
        // build on a loaded machine.
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn deep_nesting_stops_at_the_depth_limit() {
        let flow = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let (limit, message) = breach(&flow);
        assert_eq!(limit, Limit::Depth, "{message}");
        assert!(message.contains("more than 32"), "{message}");
        let mut block = String::new();
        for i in 0..=MAX_DEPTH {
            block.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
        }
        assert_eq!(breach(&block).0, Limit::Depth);
        // At the limit it loads.
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(load(&ok).is_ok());
    }

    #[test]
    fn a_huge_text_is_refused_before_parsing() {
        let huge = format!("a: \"{}\"\n", "x".repeat(MAX_INPUT_BYTES));
        let e = load(&huge).unwrap_err();
        assert!(matches!(e, YamlError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("MAX_INPUT_BYTES"), "{e}");
    }

    #[test]
    fn read_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, "#".repeat(MAX_INPUT_BYTES + 10)).unwrap();
        assert!(matches!(read(&path), Err(YamlError::TooLarge { .. })));
        assert!(matches!(
            read(&dir.path().join("missing.yaml")),
            Err(YamlError::Read { .. })
        ));
    }

    #[test]
    fn syntax_errors_name_the_source() {
        let e = load("a: [x\n").unwrap_err();
        assert!(matches!(e, YamlError::Syntax { .. }));
        assert!(e.to_string().starts_with("m.yaml: invalid YAML: "), "{e}");
    }

    #[test]
    fn schemas_type_scalars_as_their_readers_do() {
        let k: Vec<Value> = documents("k", "a: yes\nb: 012\n", Schema::Kubernetes).unwrap();
        let a: Vec<Value> = documents("a", "a: yes\nb: 012345678901\n", Schema::Atmos).unwrap();
        assert_eq!(k[0]["a"], true);
        assert_eq!(a[0]["a"], "yes");
        assert_eq!(a[0]["b"], "012345678901");
    }
}
