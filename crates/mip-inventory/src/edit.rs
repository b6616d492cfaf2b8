//! Edits of an inventory's text in place: add or remove a federation or a cluster.
//!
//! The edit is made on the text, guided by the located YAML tree ([`crate::yaml`]), so every
//! comment, blank line, key order and quoting style outside the edited item stays byte for byte
//! as the user wrote it (no re-serialisation of the document). A new item copies the indentation
//! and style (block or flow mapping) of the items already in the list; a removed item takes its
//! lines with it, and the comment lines directly above it at its own indentation.
//!
//! Every edit parses the inventory before and after ([`crate::parse`]): an invalid inventory is
//! not edited, and an edit that would make it invalid (a duplicate name, also one differing only
//! in case, an undeclared cluster, a cluster still used by a federation) is refused with the
//! diagnostics. Nothing here touches files; the caller writes [`Edit::text`].
//!
//! Adding an item and removing it again gives the original bytes back. Removing the last item
//! of a list removes its key too, unless the key line carries a comment (then `key: []`).
//!
//! One file on purpose (about 900 lines): the byte-preserving editor (style detection, item
//! insertion and removal, comment handling) and its tests share one model of the located tree.

use crate::yaml::{self, Node, Value};
use crate::{FederationAppKind, FederationKind, Parsed};
use mip_core::Diagnostics;

/// Why an edit was refused. Nothing is to be written in any case.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The inventory is invalid before the edit.
    #[error("`{file}` is invalid; fix it before editing it with mip")]
    Invalid {
        /// The inventory file.
        file: String,
        /// Its problems.
        diagnostics: Diagnostics,
    },
    /// The edited inventory would be invalid.
    #[error("the edit would make `{file}` invalid; nothing was written")]
    WouldBeInvalid {
        /// The inventory file.
        file: String,
        /// The problems of the edited text (lines refer to the edited text).
        diagnostics: Diagnostics,
    },
    /// No item of that name.
    #[error("no {what} named `{name}` in `{file}`")]
    NotFound {
        /// `federation` or `cluster`.
        what: &'static str,
        /// The name asked for.
        name: String,
        /// The inventory file.
        file: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// A cluster that federations still deploy to.
    #[error("cluster `{cluster}` is still used by federation(s) {}", .federations.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "))]
    ClusterInUse {
        /// The cluster.
        cluster: String,
        /// Federations naming it as `cluster` or in `remoteClusters`.
        federations: Vec<String>,
    },
    /// The list is written in a style mip does not edit.
    #[error("cannot edit `{key}` at line {line}: {reason}")]
    Unsupported {
        /// The top-level key.
        key: String,
        /// Its line.
        line: u64,
        /// Why.
        reason: String,
    },
}

impl EditError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            EditError::Invalid { .. } => Some("run `mip validate` and fix the problems listed".into()),
            EditError::WouldBeInvalid { .. } => Some("the diagnostics above name the conflict; choose another name or declare what is missing first".into()),
            EditError::NotFound { known, .. } if known.is_empty() => Some("the list is empty".into()),
            EditError::NotFound { known, .. } => {
                Some(format!("declared: {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")))
            }
            EditError::ClusterInUse { .. } => Some("remove those federations, or move them to another cluster, first".into()),
            EditError::Unsupported { .. } => Some("write the list in block style, one `- item` per line, then retry".into()),
        }
    }

    /// The diagnostics behind the error, if any.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            EditError::Invalid { diagnostics, .. } | EditError::WouldBeInvalid { diagnostics, .. } => {
                Some(diagnostics)
            }
            _ => None,
        }
    }
}

/// A federation to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFederation {
    /// Name as the Git directory (e.g. `federation-B`).
    pub name: String,
    /// Local or hybrid.
    pub kind: FederationKind,
    /// Cluster it deploys to; `None` leaves the default (`in-cluster`) implicit.
    pub cluster: Option<String>,
    /// Remote clusters (hybrid only).
    pub remote_clusters: Vec<String>,
    /// Its applications, in order.
    pub apps: Vec<FederationAppKind>,
}

/// A cluster to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCluster {
    /// Name (DNS-1123 label).
    pub name: String,
    /// API server URL as Argo CD addresses it.
    pub server: String,
    /// Kubeconfig context mip uses to reach it (and registers it through, without other
    /// credentials).
    pub context: Option<String>,
    /// Register it with cluster-wide rights instead of only in the namespaces mip creates.
    pub cluster_admin: bool,
    /// Credentials for a cluster mip cannot write to, as `(key, source)` pairs of flow YAML,
    /// e.g. `("bearerToken", "{env: EAST_TOKEN}")`.
    pub credentials: Vec<(&'static str, String)>,
    /// PEM file of its CA certificate, with `credentials`.
    pub ca_file: Option<String>,
}

/// A checked edit: the new text and the inventories before and after it.
#[derive(Debug, Clone)]
pub struct Edit {
    /// The whole edited text, to be written in place of the old one.
    pub text: String,
    /// The inventory before the edit.
    pub before: Parsed,
    /// The inventory after the edit.
    pub after: Parsed,
}

/// Adds a federation at the end of `federations`.
///
/// # Errors
/// [`EditError::Invalid`] before, [`EditError::WouldBeInvalid`] after (e.g. a duplicate name or
/// an undeclared cluster), [`EditError::Unsupported`] for a flow-style list.
pub fn add_federation(file: &str, text: &str, fed: &NewFederation) -> Result<Edit, EditError> {
    let before = parse_before(file, text)?;
    let doc = Doc::new(file, text)?;
    let new_text = doc.append("federations", |style| federation_item(fed, style))?;
    let after = parse_after(file, &new_text)?;
    let expected = before.inventory.federations.len() + 1;
    if after.inventory.federations.len() != expected
        || !after.inventory.federations.iter().any(|f| f.name.value == fed.name)
    {
        return Err(not_as_intended(file, "federation", &fed.name));
    }
    Ok(Edit { text: new_text, before, after })
}

/// Removes a federation (matched by name, exactly or else ignoring case).
///
/// # Errors
/// [`EditError::NotFound`], [`EditError::Invalid`], [`EditError::Unsupported`].
pub fn remove_federation(file: &str, text: &str, name: &str) -> Result<Edit, EditError> {
    let before = parse_before(file, text)?;
    let names: Vec<String> = before.inventory.federations.iter().map(|f| f.name.value.clone()).collect();
    let doc = Doc::new(file, text)?;
    let new_text = doc.remove("federations", "federation", name, &names)?;
    let after = parse_after(file, &new_text)?;
    if after.inventory.federations.len() + 1 != before.inventory.federations.len() {
        return Err(not_as_intended(file, "federation", name));
    }
    Ok(Edit { text: new_text, before, after })
}

/// Adds a cluster at the end of `clusters`.
///
/// # Errors
/// As [`add_federation`] (a duplicate name or server is refused).
pub fn add_cluster(file: &str, text: &str, cluster: &NewCluster) -> Result<Edit, EditError> {
    let before = parse_before(file, text)?;
    let doc = Doc::new(file, text)?;
    let new_text = doc.append("clusters", |style| cluster_item(cluster, style))?;
    let after = parse_after(file, &new_text)?;
    let declared = |p: &Parsed| p.inventory.clusters.iter().filter(|c| !c.implicit).count();
    if declared(&after) != declared(&before) + 1
        || after.inventory.cluster(&cluster.name).is_none_or(|c| c.implicit)
    {
        return Err(not_as_intended(file, "cluster", &cluster.name));
    }
    Ok(Edit { text: new_text, before, after })
}

/// Removes a declared cluster; refused while a federation uses it.
///
/// # Errors
/// [`EditError::ClusterInUse`], [`EditError::NotFound`], [`EditError::Invalid`],
/// [`EditError::Unsupported`].
pub fn remove_cluster(file: &str, text: &str, name: &str) -> Result<Edit, EditError> {
    let before = parse_before(file, text)?;
    let users: Vec<String> = before
        .inventory
        .federations
        .iter()
        .filter(|f| f.cluster.value == name || f.remote_clusters.iter().any(|r| r.value == name))
        .map(|f| f.name.value.clone())
        .collect();
    let names: Vec<String> =
        before.inventory.clusters.iter().filter(|c| !c.implicit).map(|c| c.name.value.clone()).collect();
    if !users.is_empty() && names.iter().any(|n| n == name) {
        return Err(EditError::ClusterInUse { cluster: name.to_owned(), federations: users });
    }
    let doc = Doc::new(file, text)?;
    let new_text = doc.remove("clusters", "cluster", name, &names)?;
    let after = parse_after(file, &new_text)?;
    Ok(Edit { text: new_text, before, after })
}

fn parse_before(file: &str, text: &str) -> Result<Parsed, EditError> {
    crate::parse(file, text).map_err(|diagnostics| EditError::Invalid { file: file.to_owned(), diagnostics })
}

fn parse_after(file: &str, text: &str) -> Result<Parsed, EditError> {
    crate::parse(file, text)
        .map_err(|diagnostics| EditError::WouldBeInvalid { file: file.to_owned(), diagnostics })
}

/// The edited text parses but does not say what was asked (a name YAML read differently).
fn not_as_intended(file: &str, what: &str, name: &str) -> EditError {
    let d = mip_core::Diagnostic::error(
        None,
        "edit",
        format!("the edited inventory does not contain exactly the {what} `{name}` asked for"),
    )
    .with_hint("use a plain name (letters, digits and `-`)");
    EditError::WouldBeInvalid { file: file.to_owned(), diagnostics: std::iter::once(d).collect() }
}

/// How the items of a list are written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ItemStyle {
    /// Spaces before `-`.
    dash: usize,
    /// Spaces before the item's keys on continuation lines.
    keys: usize,
    /// `- {name: …}` on one line.
    flow: bool,
    /// Spaces before `-` of a nested `apps` list relative to `keys`, when the existing items
    /// write it in block style.
    nested_block: Option<usize>,
    /// Line ending.
    newline: &'static str,
}

/// A YAML scalar as text: plain when that reads back as the same string, else double-quoted
/// (a JSON string is a valid YAML double-quoted scalar).
fn scalar(s: &str) -> String {
    let plain_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':');
    let ambiguous = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
    ) || s.parse::<f64>().is_ok()
        || s.starts_with(['-', ':', '.'])
        || s.ends_with(':')
        || s.contains(": ");
    if !s.is_empty() && s.chars().all(plain_chars) && !ambiguous {
        s.to_owned()
    } else {
        serde_json::Value::String(s.to_owned()).to_string()
    }
}

fn flow_list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| scalar(s)).collect::<Vec<_>>().join(", "))
}

/// A new item from its `(key, value)` pairs, `value` already YAML text; `nested` is an optional
/// trailing list of mappings `{name: …}` written in the list's style.
fn item_text(fields: &[(&str, String)], nested: Option<(&str, Vec<String>)>, style: &ItemStyle) -> String {
    let nl = style.newline;
    if style.flow {
        let mut parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        if let Some((key, names)) = nested {
            parts.push(format!(
                "{key}: [{}]",
                names.iter().map(|n| format!("{{name: {}}}", scalar(n))).collect::<Vec<_>>().join(", ")
            ));
        }
        return format!("{}- {{{}}}{nl}", " ".repeat(style.dash), parts.join(", "));
    }
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        let lead = if i == 0 { format!("{}- ", " ".repeat(style.dash)) } else { " ".repeat(style.keys) };
        out.push_str(&format!("{lead}{k}: {v}{nl}"));
    }
    if let Some((key, names)) = nested {
        match style.nested_block {
            Some(rel) => {
                out.push_str(&format!("{}{key}:{nl}", " ".repeat(style.keys)));
                for n in names {
                    out.push_str(&format!("{}- name: {}{nl}", " ".repeat(style.keys + rel), scalar(&n)));
                }
            }
            None => {
                let list =
                    names.iter().map(|n| format!("{{name: {}}}", scalar(n))).collect::<Vec<_>>().join(", ");
                out.push_str(&format!("{}{key}: [{list}]{nl}", " ".repeat(style.keys)));
            }
        }
    }
    out
}

fn federation_item(f: &NewFederation, style: &ItemStyle) -> String {
    let mut fields = vec![("name", scalar(&f.name)), ("kind", f.kind.as_str().to_owned())];
    if let Some(c) = &f.cluster {
        fields.push(("cluster", scalar(c)));
    }
    if !f.remote_clusters.is_empty() {
        fields.push(("remoteClusters", flow_list(&f.remote_clusters)));
    }
    let apps = (!f.apps.is_empty()).then(|| ("apps", f.apps.iter().map(|a| a.as_str().to_owned()).collect()));
    item_text(&fields, apps, style)
}

fn cluster_item(c: &NewCluster, style: &ItemStyle) -> String {
    let mut fields = vec![("name", scalar(&c.name)), ("server", scalar(&c.server))];
    if let Some(ctx) = &c.context {
        fields.push(("context", scalar(ctx)));
    }
    if c.cluster_admin {
        fields.push(("register", "{clusterAdmin: true}".to_owned()));
    }
    fields.extend(c.credentials.iter().cloned());
    if let Some(ca) = &c.ca_file {
        fields.push(("caFile", scalar(ca)));
    }
    item_text(&fields, None, style)
}

/// The text, its lines and its located tree.
struct Doc<'t> {
    file: String,
    text: &'t str,
    /// Byte range of each line, newline included (index 0 is line 1).
    lines: Vec<(usize, usize)>,
    root: Node,
    newline: &'static str,
}

/// Where one item of a block list sits.
struct ItemSpan {
    /// First line (its leading comments included), 1-based.
    first: usize,
    /// Last line, 1-based.
    last: usize,
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

impl<'t> Doc<'t> {
    fn new(file: &str, text: &'t str) -> Result<Self, EditError> {
        let root = yaml::parse_document(file, text).map_err(|d| EditError::Invalid {
            file: file.to_owned(),
            diagnostics: std::iter::once(d).collect(),
        })?;
        let mut lines = Vec::new();
        let mut start = 0;
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                lines.push((start, i + 1));
                start = i + 1;
            }
        }
        if start < text.len() {
            lines.push((start, text.len()));
        }
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        Ok(Doc { file: file.to_owned(), text, lines, root, newline })
    }

    /// Line `n` (1-based) without its line ending.
    fn line(&self, n: usize) -> &'t str {
        self.lines.get(n.wrapping_sub(1)).map_or("", |&(s, e)| self.text[s..e].trim_end_matches(['\n', '\r']))
    }

    /// Byte offset of a node's (1-based line, 1-based char column).
    fn offset(&self, line: u64, column: u64) -> usize {
        let Some(&(s, e)) = usize::try_from(line).ok().and_then(|l| self.lines.get(l.wrapping_sub(1))) else {
            return self.text.len();
        };
        let col = usize::try_from(column).unwrap_or(1).saturating_sub(1);
        self.text[s..e].char_indices().nth(col).map_or(e, |(i, _)| s + i)
    }

    fn line_of(&self, offset: usize) -> usize {
        self.lines.partition_point(|&(s, _)| s <= offset)
    }

    /// The top-level `(key node, value node)` of `key`.
    fn section(&self, key: &str) -> Option<(&Node, &Node)> {
        let Value::Map(entries) = &self.root.value else { return None };
        entries.iter().find(|(k, _)| k.value == Value::Str(key.to_owned())).map(|(k, v)| (k, v))
    }

    /// The largest line of any node under `n`.
    fn max_line(n: &Node) -> u64 {
        match &n.value {
            Value::Seq(items) => items.iter().map(Self::max_line).fold(n.line, u64::max),
            Value::Map(entries) => {
                entries.iter().map(|(k, v)| Self::max_line(k).max(Self::max_line(v))).fold(n.line, u64::max)
            }
            _ => n.line,
        }
    }

    /// The 1-based line of the `-` in front of an item.
    fn dash_line(&self, item: &Node) -> usize {
        let off = self.offset(item.line, item.column);
        let before = self.text[..off].trim_end_matches([' ', '\n', '\r']);
        if before.ends_with('-') { self.line_of(before.len() - 1) } else { self.line_of(off) }
    }

    /// The lines of each item of a block list whose `-` sits at `dash` spaces.
    fn spans(&self, items: &[Node], dash: usize) -> Vec<ItemSpan> {
        let mut out: Vec<ItemSpan> = Vec::new();
        for item in items {
            let dash_line = self.dash_line(item);
            // Continuation lines (block scalars, comments, closing brackets) are indented
            // deeper than the dash; the item ends before the first line that is not.
            let mut last = usize::try_from(Self::max_line(item)).unwrap_or(dash_line).max(dash_line);
            let mut n = last + 1;
            while n <= self.lines.len() {
                let l = self.line(n);
                if !is_blank(l) {
                    if indent_of(l) <= dash {
                        break;
                    }
                    last = n;
                }
                n += 1;
            }
            // Comment lines right above the dash, at its indentation, describe the item.
            let floor = out.last().map_or(0, |p| p.last);
            let mut first = dash_line;
            while first > floor + 1
                && is_comment(self.line(first - 1))
                && indent_of(self.line(first - 1)) == dash
            {
                first -= 1;
            }
            out.push(ItemSpan { first, last });
        }
        out
    }

    /// Byte offset of the end of the text after `key:` on the key's line (before any comment).
    fn after_colon(&self, key: &Node) -> Option<usize> {
        let start = self.offset(key.line, key.column);
        let line_end = self.lines.get(usize::try_from(key.line).ok()?.checked_sub(1)?)?.1;
        self.text[start..line_end].find(':').map(|i| start + i + 1)
    }

    fn unsupported(key: &str, line: u64, reason: &str) -> EditError {
        EditError::Unsupported { key: key.to_owned(), line, reason: reason.to_owned() }
    }

    /// Appends an item to the top-level list `key`, creating the list if needed.
    fn append(&self, key: &str, item: impl Fn(&ItemStyle) -> String) -> Result<String, EditError> {
        let nl = self.newline;
        let default_style =
            |dash: usize| ItemStyle { dash, keys: dash + 2, flow: false, nested_block: Some(2), newline: nl };
        let Some((k, v)) = self.section(key) else {
            // No such key: a new section at the end of the document.
            let block = format!("{key}:{nl}{}", item(&default_style(2)));
            let mut out = self.text.to_owned();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(nl);
            }
            if !out.is_empty() {
                out.push_str(nl);
            }
            out.push_str(&block);
            return Ok(out);
        };
        let key_indent = usize::try_from(k.column).unwrap_or(1).saturating_sub(1);
        match &v.value {
            Value::Seq(items) if !items.is_empty() => {
                let start = self.offset(v.line, v.column);
                if !self.text[start..].starts_with('-') {
                    return Err(Self::unsupported(key, k.line, "the list is written in flow style (`[…]`)"));
                }
                let dash = usize::try_from(v.column).unwrap_or(1).saturating_sub(1);
                let spans = self.spans(items, dash);
                let (Some(last_item), Some(last_span)) = (items.last(), spans.last()) else {
                    return Err(Self::unsupported(key, k.line, "the list has no items"));
                };
                let style = self.style_of(last_item, dash);
                let at = self.lines.get(last_span.last - 1).map_or(self.text.len(), |l| l.1);
                let mut out = String::with_capacity(self.text.len() + 256);
                out.push_str(&self.text[..at]);
                let mut new = item(&style);
                if !self.text[..at].ends_with('\n') {
                    // The item was the last line, without a line ending.
                    new = format!("{nl}{}", new.trim_end_matches(['\n', '\r']));
                }
                out.push_str(&new);
                out.push_str(&self.text[at..]);
                Ok(out)
            }
            Value::Seq(_) | Value::Null => {
                // `key: []` or `key:` with nothing: the new item goes right under the key.
                let Some(colon) = self.after_colon(k) else {
                    return Err(Self::unsupported(key, k.line, "no `:` after the key"));
                };
                let line_end =
                    self.lines.get(usize::try_from(k.line).unwrap_or(1) - 1).map_or(self.text.len(), |l| l.1);
                let rest = &self.text[colon..line_end];
                let value_part = rest.split(" #").next().unwrap_or("").trim_end_matches(['\n', '\r']);
                // `[]` goes with the one space before it, so that removing the last item again
                // (which writes ` []`) restores the line.
                let (cut_from, cut_to) = match (value_part.trim(), rest.find("[]")) {
                    ("", _) => (colon, colon),
                    ("[]", Some(i)) => (colon + i - usize::from(rest[..i].ends_with(' ')), colon + i + 2),
                    _ => {
                        return Err(Self::unsupported(
                            key,
                            k.line,
                            "the value is neither a block list nor `[]`",
                        ));
                    }
                };
                let mut out = String::with_capacity(self.text.len() + 256);
                out.push_str(&self.text[..cut_from]);
                out.push_str(&self.text[cut_to..line_end]);
                let mut new = item(&default_style(key_indent + 2));
                if !self.text[..line_end].ends_with('\n') {
                    new = format!("{nl}{}", new.trim_end_matches(['\n', '\r']));
                }
                out.push_str(&new);
                out.push_str(&self.text[line_end..]);
                Ok(out)
            }
            _ => Err(Self::unsupported(
                key,
                k.line,
                &format!("the value is {}, not a list", v.value.type_name()),
            )),
        }
    }

    /// The style of an existing item, to copy.
    fn style_of(&self, item: &Node, dash: usize) -> ItemStyle {
        let nl = self.newline;
        let off = self.offset(item.line, item.column);
        if self.text[off..].starts_with('{') {
            return ItemStyle { dash, keys: dash + 2, flow: true, nested_block: None, newline: nl };
        }
        let Value::Map(entries) = &item.value else {
            return ItemStyle { dash, keys: dash + 2, flow: false, nested_block: Some(2), newline: nl };
        };
        let keys = entries
            .first()
            .map_or(dash + 2, |(k, _)| usize::try_from(k.column).unwrap_or(1).saturating_sub(1));
        let nested_block = match entries.iter().find(|(k, _)| k.value == Value::Str("apps".into())) {
            Some((_, apps)) => {
                let aoff = self.offset(apps.line, apps.column);
                if self.text[aoff..].starts_with('-') {
                    Some(usize::try_from(apps.column).unwrap_or(1).saturating_sub(1).saturating_sub(keys))
                } else {
                    None
                }
            }
            None => Some(2),
        };
        ItemStyle { dash, keys, flow: false, nested_block, newline: nl }
    }

    /// Removes the item named `name` from the top-level list `key`.
    fn remove(
        &self,
        key: &str,
        what: &'static str,
        name: &str,
        known: &[String],
    ) -> Result<String, EditError> {
        let not_found = || EditError::NotFound {
            what,
            name: name.to_owned(),
            file: self.file.clone(),
            known: known.to_vec(),
        };
        let Some((k, v)) = self.section(key) else { return Err(not_found()) };
        let Value::Seq(items) = &v.value else { return Err(not_found()) };
        let name_of = |n: &Node| match &n.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.value == Value::Str("name".into()))
                .and_then(|(_, v)| v.scalar_text()),
            _ => None,
        };
        let index = items
            .iter()
            .position(|i| name_of(i).as_deref() == Some(name))
            .or_else(|| items.iter().position(|i| name_of(i).is_some_and(|n| n.eq_ignore_ascii_case(name))))
            .ok_or_else(not_found)?;
        let start = self.offset(v.line, v.column);
        if !self.text[start..].starts_with('-') {
            return Err(Self::unsupported(key, k.line, "the list is written in flow style (`[…]`)"));
        }
        let dash = usize::try_from(v.column).unwrap_or(1).saturating_sub(1);
        let spans = self.spans(items, dash);
        let Some(span) = spans.get(index) else { return Err(not_found()) };
        // A blank line that separated the item from the previous one goes with it when another
        // blank line (or the end of the file) follows, so no double gap is left behind.
        let gap_before = span.first > 1 && is_blank(self.line(span.first - 1));
        let gap_after = span.last >= self.lines.len() || is_blank(self.line(span.last + 1));
        let first = if gap_before && gap_after { span.first - 1 } else { span.first };
        let (Some(&(mut from, _)), Some(&(_, to))) =
            (self.lines.get(first - 1), self.lines.get(span.last - 1))
        else {
            return Err(not_found());
        };
        if !self.text[..to].ends_with('\n') && from > 0 {
            // The item ends the file without a line ending: the previous line gives up its own.
            from -= if self.text[..from].ends_with("\r\n") { 2 } else { 1 };
        }
        let key_line = usize::try_from(k.line).unwrap_or(1);
        let bare_key = self
            .after_colon(k)
            .is_some_and(|c| self.text[c..].split('\n').next().is_some_and(|r| r.trim().is_empty()));
        if items.len() == 1 && bare_key {
            // The list becomes empty and its key carries nothing else: the section goes, with
            // the blank line that set it apart (the reverse of adding to a missing section).
            let first = if key_line > 1 && is_blank(self.line(key_line - 1)) && gap_after {
                key_line - 1
            } else {
                key_line
            };
            let (Some(&(mut from, _)), Some(&(_, to))) =
                (self.lines.get(first - 1), self.lines.get(span.last - 1))
            else {
                return Err(not_found());
            };
            if !self.text[..to].ends_with('\n') && from > 0 {
                from -= if self.text[..from].ends_with("\r\n") { 2 } else { 1 };
            }
            return Ok(format!("{}{}", &self.text[..from], &self.text[to..]));
        }
        let mut out = String::with_capacity(self.text.len());
        if items.len() == 1 {
            // The list becomes empty: `key: []`.
            let Some(colon) = self.after_colon(k) else {
                return Err(Self::unsupported(key, k.line, "no `:` after the key"));
            };
            out.push_str(&self.text[..colon]);
            out.push_str(" []");
            out.push_str(&self.text[colon..from]);
        } else {
            out.push_str(&self.text[..from]);
        }
        out.push_str(&self.text[to..]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "\
# The platform.
apiVersion: mip.ebrains.eu/v1alpha1
kind: Inventory
argocd:
  namespace: argocd-mip-team   # where Argo CD lives
revision: main
repositories:
  infra: {url: 'https://example.org/infra.git'}
  deployments: {url: 'https://example.org/deploy.git'}
upstreamRepos:
  - https://github.com/madgik/exareme2
  - https://github.com/HBPMedical/mip-deployment
credentials:
  keycloak:
    clientId: {env: KC_ID}
    clientSecret: {env: KC_SECRET}

clusters:
  - name: in-cluster
    server: https://kubernetes.default.svc

federations:
  # The first federation.
  - name: federation-A
    kind: local
    apps:
      - name: exareme2
        values: [customizations/exareme2-values.yaml]   # tuned
      - name: mip-stack

  # A hybrid one.
  - name: federation-Z
    kind: hybrid
    apps:
      - name: exareme2

# Manifests applied first.
prerequisites: []
";

    fn fed(name: &str) -> NewFederation {
        NewFederation {
            name: name.into(),
            kind: FederationKind::Local,
            cluster: None,
            remote_clusters: Vec::new(),
            apps: vec![FederationAppKind::Exareme2, FederationAppKind::MipStack],
        }
    }

    fn cluster(name: &str, server: &str) -> NewCluster {
        NewCluster {
            name: name.into(),
            server: server.into(),
            context: Some(name.into()),
            cluster_admin: false,
            credentials: Vec::new(),
            ca_file: None,
        }
    }

    fn text_of(e: &EditError) -> String {
        e.diagnostics().expect("diagnostics").iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn add_federation_copies_the_block_style_and_keeps_everything_else() {
        let e = add_federation("mip.yaml", BASE, &fed("federation-B")).expect("added");
        let expected = BASE.replace(
            "      - name: exareme2\n\n# Manifests",
            "      - name: exareme2\n  - name: federation-B\n    kind: local\n    apps:\n      - name: exareme2\n      - name: mip-stack\n\n# Manifests",
        );
        assert_eq!(e.text, expected);
        assert_eq!(e.after.inventory.federations.len(), 3);
        assert_eq!(e.after.inventory.federations[2].k8s_name(), "federation-b");
    }

    #[test]
    fn add_then_remove_gives_the_original_bytes() {
        for (i, name) in ["federation-B", "fed-c"].iter().enumerate() {
            let mut f = fed(name);
            if i == 1 {
                f.cluster = Some("in-cluster".into());
                f.apps = vec![FederationAppKind::Exareme2];
            }
            let added = add_federation("mip.yaml", BASE, &f).expect("added");
            let removed = remove_federation("mip.yaml", &added.text, name).expect("removed");
            assert_eq!(removed.text, BASE);
        }
        let added =
            add_cluster("mip.yaml", BASE, &cluster("hybrid-east", "https://10.0.0.5:6443")).expect("added");
        assert!(added.text.contains("    server: https://kubernetes.default.svc\n  - name: hybrid-east\n    server: https://10.0.0.5:6443\n    context: hybrid-east\n\nfederations:"), "{}", added.text);
        assert_eq!(remove_cluster("mip.yaml", &added.text, "hybrid-east").expect("removed").text, BASE);
    }

    #[test]
    fn remove_takes_the_item_and_its_comment_only() {
        let e = remove_federation("mip.yaml", BASE, "federation-A").expect("removed");
        let expected = BASE.replace(
            "  # The first federation.\n  - name: federation-A\n    kind: local\n    apps:\n      - name: exareme2\n        values: [customizations/exareme2-values.yaml]   # tuned\n      - name: mip-stack\n",
            "",
        );
        assert_eq!(e.text, expected);
        assert!(e.text.contains("  # A hybrid one.\n  - name: federation-Z"));
        // Case-insensitive match, as Kubernetes sees the name.
        let e = remove_federation("mip.yaml", BASE, "federation-z").expect("removed");
        assert!(!e.text.contains("federation-Z") && !e.text.contains("A hybrid one"), "{}", e.text);
        assert!(e.text.contains("      - name: mip-stack\n\n# Manifests applied first."), "{}", e.text);
    }

    #[test]
    fn flow_items_and_files_without_a_final_newline_round_trip() {
        let text = "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: argocd}\nrevision: main\nrepositories:\n  infra: {url: 'https://example.org/infra.git'}\n  deployments: {url: 'https://example.org/deploy.git'}\nupstreamRepos: ['https://github.com/madgik/exareme2']\nfederations:\n  - {name: federation-A, kind: local, apps: [{name: exareme2}]}";
        let mut f = fed("federation-B");
        f.apps = vec![FederationAppKind::Exareme2];
        let e = add_federation("mip.yaml", text, &f).expect("added");
        assert!(
            e.text.ends_with(
                "apps: [{name: exareme2}]}\n  - {name: federation-B, kind: local, apps: [{name: exareme2}]}"
            ),
            "{}",
            e.text
        );
        assert_eq!(remove_federation("mip.yaml", &e.text, "federation-B").expect("removed").text, text);
    }

    #[test]
    fn the_last_item_leaves_an_empty_list_and_an_empty_list_takes_a_new_item() {
        let text = "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: argocd}\nrevision: main\nrepositories:\n  infra: {url: 'https://example.org/infra.git'}\n  deployments: {url: 'https://example.org/deploy.git'}\nupstreamRepos: ['https://github.com/madgik/exareme2']\nclusters: []   # none yet\nfederations:\n  - {name: federation-A, kind: local, apps: [{name: exareme2}]}\n";
        let e =
            add_cluster("mip.yaml", text, &cluster("east", "https://east.example.org:6443")).expect("added");
        assert!(e.text.contains("clusters:   # none yet\n  - name: east\n    server: https://east.example.org:6443\n    context: east\nfederations:"), "{}", e.text);
        assert_eq!(remove_cluster("mip.yaml", &e.text, "east").expect("removed").text, text);
        // A bare `federations:` goes with its last item; one with a comment keeps `[]`.
        let gone = remove_federation("mip.yaml", text, "federation-A").expect("removed");
        assert!(gone.text.ends_with("clusters: []   # none yet\n"), "{}", gone.text);
        assert!(gone.after.inventory.federations.is_empty());
        let commented = text.replace("federations:\n", "federations:   # the networks\n");
        let gone = remove_federation("mip.yaml", &commented, "federation-A").expect("removed");
        assert!(gone.text.ends_with("federations: []   # the networks\n"), "{}", gone.text);
    }

    #[test]
    fn a_missing_section_is_appended() {
        let text = "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: argocd}\nrevision: main\nrepositories:\n  infra: {url: 'https://example.org/infra.git'}\n  deployments: {url: 'https://example.org/deploy.git'}\nupstreamRepos: ['https://github.com/madgik/exareme2']\n";
        let mut f = fed("federation-A");
        f.apps = vec![FederationAppKind::Exareme2];
        let e = add_federation("mip.yaml", text, &f).expect("added");
        assert_eq!(
            e.text,
            format!(
                "{text}\nfederations:\n  - name: federation-A\n    kind: local\n    apps:\n      - name: exareme2\n"
            )
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        // Duplicate, also when only the case differs.
        let e = add_federation("mip.yaml", BASE, &fed("FEDERATION-a")).expect_err("duplicate");
        assert!(matches!(e, EditError::WouldBeInvalid { .. }), "{e:?}");
        assert!(text_of(&e).contains("duplicate federation"), "{e:?}");
        // Unknown cluster.
        let mut f = fed("federation-B");
        f.cluster = Some("nowhere".into());
        let e = add_federation("mip.yaml", BASE, &f).expect_err("unknown cluster");
        assert!(text_of(&e).contains("undeclared cluster `nowhere`"), "{e:?}");
        // A cluster still in use.
        let e = remove_cluster("mip.yaml", BASE, "in-cluster").expect_err("in use");
        assert!(matches!(&e, EditError::ClusterInUse { federations, .. } if federations.len() == 2), "{e:?}");
        assert!(e.to_string().contains("`federation-A`, `federation-Z`"), "{e}");
        // Unknown names.
        let e = remove_federation("mip.yaml", BASE, "federation-Q").expect_err("unknown");
        assert!(e.to_string().contains("no federation named `federation-Q`"), "{e}");
        assert!(e.hint().expect("hint").contains("`federation-A`"), "{e:?}");
        // A duplicate server.
        let e = add_cluster("mip.yaml", BASE, &cluster("again", "https://kubernetes.default.svc"))
            .expect_err("dup server");
        assert!(matches!(e, EditError::WouldBeInvalid { .. }), "{e:?}");
        // An invalid inventory is not edited.
        let e = add_federation("mip.yaml", "kind: Inventory\n", &fed("x")).expect_err("invalid");
        assert!(matches!(e, EditError::Invalid { .. }), "{e:?}");
        // A flow-style list is left alone.
        let flow = BASE.replace(
            "clusters:\n  - name: in-cluster\n    server: https://kubernetes.default.svc\n",
            "clusters: [{name: in-cluster, server: 'https://kubernetes.default.svc'}]\n",
        );
        let e =
            add_cluster("mip.yaml", &flow, &cluster("east", "https://east.example.org")).expect_err("flow");
        assert!(matches!(e, EditError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn names_that_yaml_would_read_differently_are_quoted_or_refused() {
        assert_eq!(scalar("federation-A"), "federation-A");
        assert_eq!(scalar("https://x.example:6443"), "https://x.example:6443");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1.0"), "\"1.0\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        let e = add_federation("mip.yaml", BASE, &fed("x\n  - name: evil")).expect_err("bad name");
        assert!(matches!(e, EditError::WouldBeInvalid { .. }), "{e:?}");
    }

    #[test]
    fn the_shipped_examples_round_trip() {
        for text in [
            include_str!("../../../examples/mip-infra/mip.yaml"),
            include_str!("../../../examples/minimal/mip.yaml"),
        ] {
            let mut f = fed("federation-new");
            f.apps = vec![FederationAppKind::Exareme2];
            let added = add_federation("mip.yaml", text, &f).expect("added");
            assert_eq!(
                remove_federation("mip.yaml", &added.text, "federation-new").expect("removed").text,
                text
            );
            let added = add_cluster("mip.yaml", text, &cluster("east", "https://east.example.org:6443"))
                .expect("added");
            assert_eq!(remove_cluster("mip.yaml", &added.text, "east").expect("removed").text, text);
        }
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let text = BASE.replace('\n', "\r\n");
        let e = add_federation("mip.yaml", &text, &fed("federation-B")).expect("added");
        assert!(!e.text.replace("\r\n", "").contains('\n'), "a bare LF was written");
        assert_eq!(remove_federation("mip.yaml", &e.text, "federation-B").expect("removed").text, text);
    }
}
