//! A YAML document as a tree of located nodes.
//!
//! serde stops at the first error, but the inventory must report every problem in one run.
//! So parsing happens in two steps: serde-saphyr turns the text into this span-carrying
//! tree (only YAML syntax errors stop here), and [`crate::decode`] walks the tree, collecting
//! every unknown key, wrong type and bad value it meets.

use mip_core::{Diagnostic, Location};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line of the value.
    pub line: u64,
    /// 1-based column of the value.
    pub column: u64,
    /// The value.
    pub value: Value,
}

/// A YAML value; mapping keys keep their own positions and their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// The YAML type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The position of this node in `file`.
    pub fn location(&self, file: &str) -> Location {
        Location { file: file.to_owned(), line: self.line, column: self.column }
    }

    /// Converts to JSON (for Kubernetes manifests). Keys are stringified.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries.iter().map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json())).collect(),
            ),
        }
    }

    /// The text of a scalar (numbers and booleans as written in canonical form).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => Some(String::new()),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        i64::try_from(u).map(Value::Int).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Value, E> {
        i64::try_from(i).map(Value::Int).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Value, E> {
        i64::try_from(u).map(Value::Int).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(b).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

struct Inner(Value);

impl<'de> Deserialize<'de> for Inner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor).map(Inner)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Inner>::deserialize(d)?;
        Ok(Node { line: s.referenced.line(), column: s.referenced.column(), value: s.value.0 })
    }
}

/// Deepest nesting accepted. An inventory nests about 6 levels and Kubernetes manifests
/// rarely more than 15; the parser recurses per level, and serde-saphyr's default (64) needs
/// more than the 2 MiB stack of a test thread or a tokio worker in a debug build.
pub const MAX_DEPTH: usize = 24;

/// Most nodes (mappings, lists and scalars) in one document: about 95 000 federations. An
/// inventory is written by hand or generated, never by an attacker, so this bounds memory
/// (about 100 bytes a node), not work. serde-saphyr's default, 250 000, refused an inventory
/// of 12 000 federations.
pub const MAX_NODES: usize = 2_000_000;

/// Most events the anchored nodes of a document may hold, counted as serde-saphyr records them
/// to replay at their aliases: the guard against alias bombs ("billion laughs"), which expand
/// through anchors of anchors. An inventory's anchors are a few small lists; the default
/// (1 000 000) let a bomb work through a million events before it was stopped.
const MAX_ANCHORED_EVENTS: usize = 100_000;

fn options() -> serde_saphyr::Options {
    // Defaults already reject duplicate keys.
    let mut o = serde_saphyr::Options::default();
    o.budget = Some(budget());
    o
}

/// The budget serde-saphyr parses with; the events path sets its parser up from it too.
pub(crate) fn budget() -> serde_saphyr::Budget {
    // Depth is bounded so that no input can overflow the stack.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    // A collection is two events (start and end), a scalar one.
    budget.max_events = 2 * MAX_NODES + 16;
    budget.max_recorded_anchor_events = MAX_ANCHORED_EVENTS;
    // The parser holds the comments between a key and its block value while it looks ahead;
    // serde-saphyr's default of 32 refused an inventory with 40 federations commented out
    // under `federations:` ("too many buffered comments"). The text bounds them anyway.
    budget.max_buffered_comment_events = MAX_NODES;
    budget
}

fn syntax_error(file: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = e.location().map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
    let rendered = e.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // Drop saphyr's own "line N column M: " prefix: the location is printed in front.
    let message = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((_, msg)) => msg,
        None => first,
    };
    let mut message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    // saphyr also appends the position, which is printed in front already.
    if let Some(i) = message.rfind(" at line ")
        && message[i..].contains(", column ")
    {
        message.truncate(i);
    }
    let (message, hint) = if message.contains("budget breached") || message.contains("nesting") {
        if message.contains("Depth") || message.contains("nesting") {
            (
                format!("nested deeper than {MAX_DEPTH} levels"),
                "an inventory nests about 6 levels; check for runaway brackets",
            )
        } else {
            (
                "the document expands beyond mip's size limits (too many nodes or aliases)".to_owned(),
                "mip reads at most 2 000 000 YAML nodes (about 95 000 federations); remove the anchors and aliases that multiply the document",
            )
        }
    } else if message.contains("from_str_multiple") || message.contains("multiple documents") {
        (
            "the inventory must be a single YAML document (found `---` separating several)".to_owned(),
            "keep one document",
        )
    } else if message.contains("duplicate mapping key") {
        (message, "each key may appear once per mapping")
    } else {
        (message, "check indentation, quoting and brackets")
    };
    Diagnostic::error(Some(Location { file: file.to_owned(), line, column }), "yaml-syntax", message)
        .with_hint(hint)
}

/// Parses one YAML document. An empty document is `Null`.
///
/// The common subset is read from the parser's events (module `yaml_events`); the rest, and
/// every error, by serde-saphyr: the same tree either way, three times faster for an inventory.
pub fn parse_document(file: &str, text: &str) -> Result<Node, Diagnostic> {
    if let Some(node) = crate::yaml_events::document(text) {
        return Ok(node);
    }
    parse_document_with_serde(file, text)
}

/// The tree of `text` if it is in the subset read from the parser's events, else `None` (the
/// tests compare it with [`parse_document_with_serde`]).
#[doc(hidden)]
pub fn read_common_subset(text: &str) -> Option<Node> {
    crate::yaml_events::document(text)
}

/// [`parse_document`] by serde-saphyr alone (the tests compare the two).
#[doc(hidden)]
pub fn parse_document_with_serde(file: &str, text: &str) -> Result<Node, Diagnostic> {
    serde_saphyr::from_str_with_options::<Node>(text, options()).map_err(|e| syntax_error(file, &e))
}

/// Parses a multi-document YAML stream (`---` separated); empty documents are dropped.
pub fn parse_stream(file: &str, text: &str) -> Result<Vec<Node>, Diagnostic> {
    let docs = serde_saphyr::from_multiple_with_options::<Node>(text, options())
        .map_err(|e| syntax_error(file, &e))?;
    Ok(docs.into_iter().filter(|d| d.value != Value::Null).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_and_order() {
        let n = parse_document("f.yaml", "b: 1\na:\n  - x\n").expect("test value");
        let Value::Map(entries) = &n.value else { panic!("map") };
        assert_eq!(entries[0].0.value, Value::Str("b".into()));
        assert_eq!(entries[1].0.line, 2);
        let Value::Seq(items) = &entries[1].1.value else { panic!("seq") };
        assert_eq!((items[0].line, items[0].column), (3, 5));
    }

    #[test]
    fn syntax_errors_are_one_line_with_location() {
        let d = parse_document("inv.yaml", "a: [1\n").expect_err("must fail");
        let s = d.to_string();
        assert!(s.starts_with("inv.yaml:1:4: error[yaml-syntax]: "), "{s}");
        assert!(!s.contains('\n'));
        let d = parse_document("inv.yaml", "a: 1\na: 2\n").expect_err("must fail");
        assert!(d.to_string().contains("duplicate mapping key"), "{d}");
    }

    #[test]
    fn multi_document_stream() {
        let docs = parse_stream("m.yaml", "---\na: 1\n---\n---\nb: 2\n").expect("test value");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].to_json(), serde_json::json!({"b": 2}));
    }
}
