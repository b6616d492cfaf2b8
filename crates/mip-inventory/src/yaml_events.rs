//! The common YAML subset, read straight from the parser's events.
//!
//! serde-saphyr's `Spanned` protocol costs about two thirds of parsing an inventory (280 ms of
//! the 2.3 MB at 10 000 federations); its own parser's events take 80 ms. Inventories use a
//! small part of YAML: mappings, sequences, strings, small integers, booleans and null, without
//! anchors or tags. [`document`] builds the located tree from the events for exactly that
//! subset and gives up (`None`) on anything else: an anchor, an alias, a tag, a merge key, a
//! duplicate or non-scalar key, a plain scalar whose type it does not settle with certainty (a
//! float, `yes`, `0x1F`, `007`, …), a directive, a second document, a syntax error, or
//! anything near a budget. The caller then parses the same text with serde-saphyr, which gives
//! the answer or the error with its message. So the result never depends on the path taken:
//! the tests compare the two trees on every YAML file of the repository, on generated
//! documents and in the fuzz property.

use crate::yaml::{MAX_DEPTH, Node, Value};
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, Span};

/// Below the budgets serde-saphyr is given ([`crate::yaml::MAX_NODES`], twice as many events,
/// 64 MiB of scalar text), with room, so a document near one is left to serde-saphyr and its
/// error.
const MAX_NODES: usize = crate::yaml::MAX_NODES / 10 * 9;
const MAX_EVENTS: usize = 2 * MAX_NODES;
const MAX_SCALAR_BYTES: usize = 60 * 1024 * 1024;

/// A collection being read.
enum Open {
    Seq(Node),
    /// The mapping, and the key read whose value has yet to come.
    Map(Node, Option<Node>),
}

/// The tree of a one-document `text` in the common subset; `None` for anything else.
pub(crate) fn document(text: &str) -> Option<Node> {
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    let (mut events, mut nodes, mut scalar_bytes, mut documents) = (0usize, 0usize, 0usize, 0usize);
    for next in Parser::new_from_str_with_options(text, parser_options(&crate::yaml::budget())) {
        let (event, span) = next.ok()?;
        events += 1;
        let node = match event {
            Event::StreamStart | Event::DocumentEnd | Event::Comment(..) => continue,
            // A `%YAML` directive, or a second document, is left to serde-saphyr.
            Event::DocumentStart(_, version) => {
                documents += 1;
                if documents > 1 || version.is_some() {
                    return None;
                }
                continue;
            }
            Event::StreamEnd => break,
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                scalar_bytes += value.len();
                located(&span, scalar(&value, style)?)
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || stack.len() + 2 >= MAX_DEPTH {
                    return None;
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Seq(located(&span, Value::Seq(Vec::new())))
                } else {
                    Open::Map(located(&span, Value::Map(Vec::new())), None)
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop()? {
                Open::Seq(node) => node,
                Open::Map(..) => return None,
            },
            Event::MappingEnd => match stack.pop()? {
                Open::Map(node, None) if keys_are_distinct(&node) => node,
                _ => return None,
            },
            // Aliases, anchors' names and whatever later versions add.
            _ => return None,
        };
        nodes += 1;
        if events > MAX_EVENTS || nodes > MAX_NODES || scalar_bytes > MAX_SCALAR_BYTES {
            return None;
        }
        place(&mut stack, &mut root, node)?;
    }
    if !stack.is_empty() || documents != 1 {
        return None;
    }
    root
}

/// The parser's options as serde-saphyr derives them from the budget (its private
/// `Budget::parser_options`, serde-saphyr 2.2), so that this parser refuses exactly what
/// serde-saphyr's does (a run of comments, a long key, deep nesting), and the text then goes
/// to serde-saphyr for its message.
fn parser_options(budget: &serde_saphyr::Budget) -> Options {
    let mut options = Options::default();
    options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    options.flow_nesting_limit = budget.flow_nesting_limit;
    options.block_nesting_limit = options.block_nesting_limit.max(budget.max_depth.saturating_add(1));
    options.emit_comments = true;
    options.max_buffered_comment_events = budget.max_buffered_comment_events;
    options
}

/// Puts a finished node where it belongs: the root, the next item of a sequence, or a key or
/// value of a mapping.
fn place(stack: &mut [Open], root: &mut Option<Node>, node: Node) -> Option<()> {
    match stack.last_mut() {
        None if root.is_none() => *root = Some(node),
        None => return None,
        Some(Open::Seq(seq)) => {
            let Value::Seq(items) = &mut seq.value else { return None };
            items.push(node);
        }
        Some(Open::Map(_, key @ None)) => {
            // A key is a string or an integer (whose text is as written, so that duplicates are
            // found by text as serde-saphyr finds them: `FALSE` and `"FALSE"` are one key).
            if !matches!(node.value, Value::Str(_) | Value::Int(_)) {
                return None;
            }
            *key = Some(node);
        }
        Some(Open::Map(map, key @ Some(_))) => {
            let Value::Map(entries) = &mut map.value else { return None };
            entries.push((key.take()?, node));
        }
    }
    Some(())
}

/// Whether no two keys of a mapping read the same (serde-saphyr refuses a duplicate key;
/// comparing the text is stricter than it, so a doubt goes to serde-saphyr).
fn keys_are_distinct(map: &Node) -> bool {
    let Value::Map(entries) = &map.value else { return false };
    let mut keys: Vec<String> = entries.iter().filter_map(|(k, _)| k.scalar_text()).collect();
    let all = keys.len();
    keys.sort_unstable();
    keys.dedup();
    keys.len() == all && all == entries.len()
}

/// A node at the start of `span`, as serde-saphyr locates it (1-based line and column).
fn located(span: &Span, value: Value) -> Node {
    Node { line: span.start.line() as u64, column: span.start.col() as u64 + 1, value }
}

/// An untagged scalar's value, as serde-saphyr types it for a value of any type; `None` where
/// that is not certain here.
fn scalar(text: &str, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return Some(Value::Str(text.to_owned()));
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        "<<" => return None,
        _ => {}
    }
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    if first.is_ascii_digit() || first == b'-' || first == b'+' {
        return integer(text);
    }
    if first == b'.' {
        // `.5` is a float and `.inf`/`.nan` are infinities; `./key` is a path.
        let word = text.to_ascii_lowercase();
        let number = bytes.get(1).is_some_and(u8::is_ascii_digit) || matches!(word.as_str(), ".inf" | ".nan");
        return (!number).then(|| Value::Str(text.to_owned()));
    }
    if first.is_ascii_alphabetic() {
        // YAML 1.1 booleans (serde-saphyr's default) and what Rust reads as a float.
        let word = text.to_ascii_lowercase();
        if matches!(word.as_str(), "y" | "yes" | "n" | "no" | "on" | "off" | "inf" | "infinity" | "nan") {
            return None;
        }
    }
    Some(Value::Str(text.to_owned()))
}

/// A decimal integer without sign (but `-`), leading zero or underscore, within 18 digits;
/// `None` for anything else that starts like a number.
fn integer(text: &str) -> Option<Value> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !plain || text == "-0" {
        return None;
    }
    text.parse().ok().map(Value::Int)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_only_certain_scalars() {
        let plain = |t| scalar(t, ScalarStyle::Plain);
        assert_eq!(plain("federation-1"), Some(Value::Str("federation-1".into())));
        assert_eq!(plain("./key"), Some(Value::Str("./key".into())));
        assert_eq!(plain("42"), Some(Value::Int(42)));
        assert_eq!(plain("-7"), Some(Value::Int(-7)));
        assert_eq!(plain("~"), Some(Value::Null));
        assert_eq!(plain("TRUE"), Some(Value::Bool(true)));
        for doubt in ["1.0", "007", "0x1F", "+1", "-0", "yes", "Off", ".5", ".Inf", "nan", "<<", "1_000"] {
            assert_eq!(plain(doubt), None, "{doubt}");
        }
        assert_eq!(scalar("yes", ScalarStyle::DoubleQuoted), Some(Value::Str("yes".into())));
    }

    #[test]
    fn gives_up_on_what_it_does_not_read() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: 1\na: 2\n",
            "? [a]\n: 1\n",
            "a: 1\n---\nb: 2\n",
            "a: [1\n",
            "",
            "<<: {a: 1}\n",
            "%YAML 1.2\n---\na: 1\n",
        ] {
            assert_eq!(document(text), None, "{text:?}");
        }
    }
}
