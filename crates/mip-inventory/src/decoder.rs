//! The decoder's core: a [`Decoder`] collects diagnostics while the typed readers walk the
//! located YAML tree, and [`Fields`] records which keys of a mapping were read, so the unknown
//! ones are reported. The readers of each section build on it: the inventory's
//! ([`crate::decode`]), the app definitions' ([`crate::apps`]), the projects'
//! ([`crate::projects`]) and the name checks ([`crate::names`]).

use crate::located::Located;
use crate::yaml::{Node, Value};
use mip_core::{Diagnostic, Diagnostics, Location};

pub(crate) struct Decoder<'f> {
    pub(crate) file: &'f str,
    pub(crate) diags: Diagnostics,
}

/// The keys of one mapping, with a record of which were read.
pub(crate) struct Fields<'n> {
    path: String,
    at: Location,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
    used: Vec<bool>,
}

impl<'n> Fields<'n> {
    /// The node under `key`, if present (and marks it read).
    pub(crate) fn get(&mut self, key: &str) -> Option<&'n Node> {
        let i = self.entries.iter().position(|(k, _, _)| *k == key)?;
        self.used[i] = true;
        Some(self.entries[i].2)
    }

    pub(crate) fn child(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }
}

pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("`{s}`"),
        Value::Int(i) => format!("`{i}`"),
        Value::Float(f) => format!("`{f}`"),
        Value::Bool(b) => format!("`{b}`"),
        other => other.type_name().to_owned(),
    }
}

impl<'f> Decoder<'f> {
    pub(crate) fn new(file: &'f str) -> Self {
        Decoder { file, diags: Diagnostics::new() }
    }

    pub(crate) fn loc(&self, node: &Node) -> Location {
        node.location(self.file)
    }

    pub(crate) fn error(&mut self, at: Location, code: &str, summary: String, hint: Option<String>) {
        let mut d = Diagnostic::error(Some(at), code, summary);
        d.hint = hint;
        self.diags.push(d);
    }

    pub(crate) fn type_error(&mut self, node: &Node, path: &str, expected: &str) {
        let hint = match (&node.value, expected) {
            (Value::Bool(_) | Value::Int(_) | Value::Float(_), "a string") => {
                Some("quote the value, e.g. `\"yes\"` or `\"1.0\"`".to_owned())
            }
            (Value::Null, _) => Some(format!("give `{path}` a value or remove the key")),
            (_, "a mapping") => Some("write `key: value` pairs indented under it".to_owned()),
            (_, "a list") => Some("write one `- item` per line, or `[a, b]`".to_owned()),
            (Value::Seq(_) | Value::Map(_), "a string") => {
                Some("write a single value on the same line".to_owned())
            }
            _ => None,
        };
        self.error(
            self.loc(node),
            "wrong-type",
            format!("`{path}` must be {expected}, found {}", node.value.type_name()),
            hint,
        );
    }

    /// Opens a mapping; reports non-mappings and non-string keys.
    pub(crate) fn fields<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            // The document's root is checked by `Decoder::inventory`, which names the format.
            self.type_error(node, path, "a mapping");
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match &k.value {
                Value::Str(s) => out.push((s.as_str(), k, v)),
                other => self.error(
                    self.loc(k),
                    "wrong-type",
                    if path.is_empty() {
                        format!("top-level keys must be strings, found {}", other.type_name())
                    } else {
                        format!("keys of `{path}` must be strings, found {}", other.type_name())
                    },
                    Some("quote the key".to_owned()),
                ),
            }
        }
        let used = vec![false; out.len()];
        Some(Fields { path: path.to_owned(), at: self.loc(node), entries: out, used })
    }

    /// Reports every key that was not read, with a did-you-mean hint.
    pub(crate) fn finish(&mut self, fields: Fields<'_>, allowed: &[&str]) {
        for (i, (key, knode, _)) in fields.entries.iter().enumerate() {
            if fields.used[i] {
                continue;
            }
            let hint = match crate::spelling::closest(key, allowed) {
                Some(best) => format!("did you mean `{best}`?"),
                None if allowed.is_empty() => "this mapping takes no keys".to_owned(),
                None => format!(
                    "allowed keys: {}",
                    allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
                ),
            };
            let at = self.loc(knode);
            self.error(at, "unknown-key", format!("unknown key `{}`", fields.child(key)), Some(hint));
        }
    }

    pub(crate) fn missing(&mut self, fields: &Fields<'_>, key: &str, hint: Option<String>) {
        let path = fields.child(key);
        let hint =
            hint.or_else(|| Some(format!("add `{key}:` (see the inventory reference, docs/inventory.md)")));
        let within =
            if fields.path.is_empty() { "the inventory".to_owned() } else { format!("`{}`", fields.path) };
        self.error(
            fields.at.clone(),
            "missing-key",
            format!("missing required key `{path}` in {within}"),
            hint,
        );
    }

    pub(crate) fn string(&mut self, node: &Node, path: &str) -> Option<Located<String>> {
        match &node.value {
            Value::Str(s) if s.trim().is_empty() => {
                self.error(
                    self.loc(node),
                    "empty-value",
                    format!("`{path}` must not be empty"),
                    Some(format!("give `{path}` a value or remove it")),
                );
                None
            }
            Value::Str(s) => Some(Located { value: s.clone(), at: self.loc(node) }),
            _ => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    pub(crate) fn req_string(
        &mut self,
        f: &mut Fields<'_>,
        key: &str,
        hint: Option<&str>,
    ) -> Option<Located<String>> {
        let path = f.child(key);
        match f.get(key) {
            Some(n) => self.string(n, &path),
            None => {
                self.missing(f, key, hint.map(str::to_owned));
                None
            }
        }
    }

    pub(crate) fn opt_string(&mut self, f: &mut Fields<'_>, key: &str) -> Option<Located<String>> {
        let path = f.child(key);
        f.get(key).and_then(|n| self.string(n, &path))
    }

    pub(crate) fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.type_error(node, path, "a list");
                None
            }
        }
    }

    pub(crate) fn string_list(&mut self, f: &mut Fields<'_>, key: &str) -> Vec<Located<String>> {
        let path = f.child(key);
        let Some(node) = f.get(key) else { return Vec::new() };
        let Some(items) = self.seq(node, &path) else { return Vec::new() };
        items.iter().enumerate().filter_map(|(i, n)| self.string(n, &format!("{path}[{i}]"))).collect()
    }

    /// The items of the list under `key` (none when absent or null), each read by `each`.
    pub(crate) fn list<T>(
        &mut self,
        f: &mut Fields<'_>,
        key: &str,
        mut each: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        let path = f.child(key);
        let Some(node) = f.get(key) else { return Vec::new() };
        if node.value == Value::Null {
            return Vec::new();
        }
        let Some(items) = self.seq(node, &path) else { return Vec::new() };
        items.iter().enumerate().filter_map(|(i, n)| each(self, n, &format!("{path}[{i}]"))).collect()
    }
}
