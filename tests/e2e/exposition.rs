//! Reading what the exporter serves (Prometheus text format) and what the chart's rules and
//! dashboard ask of it (the metric and label names in PromQL), for tests/e2e/alerts.rs.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

/// One sample of a scrape.
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One scrape of `/metrics`: its samples and when it was taken (Unix seconds).
#[derive(Clone, Debug)]
pub struct Scrape {
    pub at: f64,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the text format; `at` is when it was read.
    pub fn parse(text: &str, at: f64) -> Result<Self> {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| sample(l).with_context(|| format!("sample line {l:?}")))
            .collect::<Result<_>>()?;
        Ok(Self { at, samples })
    }

    /// The samples of metric `name`.
    pub fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

fn sample(line: &str) -> Result<Sample> {
    let (series, value) = line.rsplit_once(' ').context("no value")?;
    let value: f64 = value.parse()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Ok(Sample {
            name: series.to_owned(),
            labels: BTreeMap::new(),
            value,
        });
    };
    let body = rest.strip_suffix('}').context("no closing brace")?;
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            bail!("label {key} without a quoted value");
        }
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => val.push(match chars.next() {
                    Some('n') => '\n',
                    Some(o) => o,
                    None => bail!("escape at the end"),
                }),
                '"' => break,
                o => val.push(o),
            }
        }
        if chars.peek() == Some(&',') {
            chars.next();
        }
        labels.insert(key.trim().to_owned(), val);
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The `atmos_auth_*` metric names a PromQL expression reads.
pub fn metrics_in(expr: &str) -> BTreeSet<String> {
    words(expr).filter(|w| w.starts_with("atmos_auth_")).collect()
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
}

/// The label names a PromQL expression uses: in selectors (`{a="b"}`) and in `by`, `without`,
/// `on`, `ignoring` and `group_left/right` lists.
pub fn labels_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // Selectors: `name op "value"` inside braces.
    for inside in expr
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(i, _)| i))
    {
        for matcher in inside.split(',') {
            let key: String = matcher
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !key.is_empty() {
                out.insert(key);
            }
        }
    }
    // Grouping lists: the parenthesis right after one of the keywords.
    let keywords = ["by", "without", "on", "ignoring", "group_left", "group_right"];
    for kw in keywords {
        let mut rest = expr;
        while let Some(i) = find_word(rest, kw) {
            let after = rest[i + kw.len()..].trim_start();
            if let Some(list) = after.strip_prefix('(').and_then(|a| a.split_once(')')).map(|(l, _)| l) {
                out.extend(
                    list.split(',')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
            }
            rest = &rest[i + kw.len()..];
        }
    }
    out
}

/// Where `word` stands alone in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = text[..i].chars().next_back().is_none_or(|c| !ident(c));
        let after = text[i + word.len()..].chars().next().is_none_or(|c| !ident(c));
        before && after
    })
}

/// The labels `{{label}}` of a Grafana legend names.
pub fn legend_labels(legend: &str) -> BTreeSet<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}").map(|(l, _)| l.trim().to_owned()))
        .collect()
}

/// An alert annotation with its `{{ $labels.X }}` filled from `labels`; anything else
/// between braces is an error (the chart's annotations use only labels, so that the test
/// can check promtool's alerts whole).
pub fn expand(template: &str, labels: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let (inside, after) = rest[i + 2..].split_once("}}").context("unclosed {{")?;
        let Some(label) = inside.trim().strip_prefix("$labels.") else {
            bail!("annotation uses {inside:?}: only {{{{ $labels.X }}}} is expanded here");
        };
        out.push_str(labels.get(label).map_or("", String::as_str));
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn parses_the_text_format_and_promql_names() {
    let s = Scrape::parse("# TYPE a gauge\na_total{x=\"1\",y=\"q\\\"uote\"} 2\nb 3.5\n", 0.0).unwrap();
    assert_eq!(s.samples.len(), 2);
    assert_eq!(s.samples[0].labels["y"], "q\"uote");
    assert_eq!(s.samples[1].value, 3.5);
    let expr = r#"sum by (cloud, result) (rate(atmos_auth_exchanges_total{result="throttled"}[5m])) and on() atmos_auth_leader"#;
    assert_eq!(
        metrics_in(expr).into_iter().collect::<Vec<_>>(),
        ["atmos_auth_exchanges_total", "atmos_auth_leader"]
    );
    assert_eq!(labels_in(expr).into_iter().collect::<Vec<_>>(), ["cloud", "result"]);
    assert_eq!(
        expand(
            "{{ $labels.a }}/{{$labels.b}}!",
            &[("a".into(), "x".into()), ("b".into(), "y".into())].into()
        )
        .unwrap(),
        "x/y!"
    );
    assert!(expand("{{ $value }}", &BTreeMap::new()).is_err());
}
