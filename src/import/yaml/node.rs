//! A YAML node with its tag: what serde-saphyr hands over, kept whole so that an Atmos
//! function (`!env X`) is seen as one, not read as its bare argument.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Tagged;

/// Tags of the YAML core schema (`!!str`, `!!int`, ...), resolved to this prefix by the
/// parser. They only select a scalar's type, which the parser already applied.
const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// A YAML node with its tag, as the parser saw it.
#[derive(Debug)]
pub(crate) struct Node {
    pub(super) tag: Option<String>,
    pub(super) value: NodeValue,
}

#[derive(Debug)]
pub(super) enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order (serde-saphyr has already rejected duplicates).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node's tag when it is not one of the core schema's: an Atmos function (`!env`)
    /// or directive (`!unset`).
    pub(super) fn atmos_tag(&self) -> Option<&str> {
        self.tag.as_deref().filter(|t| !t.starts_with(CORE_TAG_PREFIX))
    }
}

/// A mapping key as text, as go-yaml gives Viper: scalars by their value (`12` is "12").
/// `None` for a tagged key (an Atmos function as a key) or a list/mapping key.
pub(super) fn scalar_key(key: &Node) -> Option<String> {
    if key.atmos_tag().is_some() {
        return None;
    }
    match &key.value {
        NodeValue::Null => Some("null".to_owned()),
        other => other.scalar_text(),
    }
}

impl NodeValue {
    /// A scalar's text (`12`, `true`, `x`); `None` for null, a list or a mapping.
    fn scalar_text(&self) -> Option<String> {
        match self {
            NodeValue::Bool(b) => Some(b.to_string()),
            NodeValue::Int(i) => Some(i.to_string()),
            NodeValue::UInt(u) => Some(u.to_string()),
            NodeValue::Float(f) => Some(f.to_string()),
            NodeValue::Str(s) => Some(s.clone()),
            NodeValue::Null | NodeValue::Seq(_) | NodeValue::Map(_) => None,
        }
    }

    /// How a tagged value is quoted in a note: its text, cut short, or its shape.
    pub(super) fn summary(&self) -> String {
        const MAX: usize = 60;
        let text = match self {
            NodeValue::Null => return "(no argument)".to_owned(),
            NodeValue::Seq(_) => return "(a list)".to_owned(),
            NodeValue::Map(_) => return "(a mapping)".to_owned(),
            scalar => scalar.scalar_text().unwrap_or_default(),
        };
        let one_line = text.trim().replace('\n', " ");
        if one_line.chars().count() > MAX {
            format!("{}...", one_line.chars().take(MAX).collect::<String>())
        } else {
            one_line
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde-saphyr hands `Tagged` each node's resolved tag; any other deserializer gives
        // `None`, which only happens in this module's own use.
        let Tagged(value, tag) = Tagged::<NodeValue>::deserialize(deserializer)?;
        Ok(Node { tag, value })
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_none<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::UInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<NodeValue, E> {
        Ok(NodeValue::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}
