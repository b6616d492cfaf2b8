//! Taking over a tree written by hand without changing what Argo CD deploys. Pure.
//!
//! Two rules keep a takeover lossless:
//! - **Same effect or kept.** A file mip renders replaces the operator's only when both parse
//!   to the same documents (comments and layout aside): [`same_effect`]. `mip import` keeps
//!   (`tree.keep`) every other path, so `mip render --adopt` changes no deployed value.
//! - **One owner per object.** A document in a directory a root Application reads that
//!   declares an object mip applies itself (the `default` AppProject's lock-down, in the
//!   reference tree's `base/`) would give the object two owners. `mip render` removes that
//!   document from the operator's file ([`owned_twice`], [`without_documents`]) and says so:
//!   the one deliberate difference of a takeover.

use mip_inventory::yaml::{Node, parse_stream};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The documents of a YAML text as JSON values (empty documents dropped); `None` when it
/// does not parse.
pub fn documents(name: &str, text: &str) -> Option<Vec<Value>> {
    parse_stream(name, text).ok().map(|docs| docs.iter().map(Node::to_json).collect())
}

/// Whether two YAML texts declare the same documents in the same order (what kustomize and
/// Argo CD read: comments, quoting, flow or block style and key order within the YAML
/// syntax aside). Texts that do not parse are the same only when byte-equal.
pub fn same_effect(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (documents("a", a), documents("b", b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The JSON pointers (at most `limit`) where two documents lists differ, for reports:
/// `/<doc>/spec/sourceRepos/2`, `/<doc>` when one side lacks the document.
pub fn differences(a: &[Value], b: &[Value], limit: usize) -> Vec<String> {
    fn walk(a: Option<&Value>, b: Option<&Value>, at: String, out: &mut Vec<String>, limit: usize) {
        if out.len() >= limit || a == b {
            return;
        }
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let key = mip_core::canonical::pointer_token(k);
                    walk(x.get(k), y.get(k), format!("{at}/{key}"), out, limit);
                }
            }
            (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(Some(p), Some(q), format!("{at}/{i}"), out, limit);
                }
            }
            _ => out.push(if at.is_empty() { "/".to_owned() } else { at }),
        }
    }
    let mut out = Vec::new();
    for i in 0..a.len().max(b.len()) {
        walk(a.get(i), b.get(i), format!("/{i}"), &mut out, limit);
    }
    out
}

/// A document of the operator's that declares an object mip applies itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTwice {
    /// The file, relative to the tree.
    pub path: PathBuf,
    /// The document's index among the file's non-empty documents.
    pub index: usize,
    /// The object's address as mip writes it.
    pub address: String,
}

/// Documents of the files directly in `dirs` (the directories the root Applications read,
/// not recursively, as Argo CD reads a directory source) for which `mine` gives the address of
/// an object mip applies itself. `mine` gets `(apiVersion, kind, namespace, name)`; the
/// namespace is `None` when the document sets none (Argo CD puts it in the Application's
/// destination namespace). Generated files (mip's own) are skipped.
pub fn owned_twice(
    checkout: &BTreeMap<PathBuf, Option<String>>,
    dirs: &[String],
    mine: impl Fn(&str, &str, Option<&str>, &str) -> Option<String>,
) -> Vec<OwnedTwice> {
    let mut out = Vec::new();
    for (path, text) in checkout {
        let Some(text) = text else { continue };
        let in_dir = dirs.iter().any(|d| path.parent() == Some(Path::new(d)));
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !in_dir || !yaml || crate::is_generated(text) {
            continue;
        }
        let Some(docs) = documents(&path.display().to_string(), text) else { continue };
        for (index, d) in docs.iter().enumerate() {
            let field = |p: &str| d.pointer(p).and_then(Value::as_str);
            let (Some(api), Some(kind), Some(name)) =
                (field("/apiVersion"), field("/kind"), field("/metadata/name"))
            else {
                continue;
            };
            if let Some(address) = mine(api, kind, field("/metadata/namespace"), name) {
                out.push(OwnedTwice { path: path.clone(), index, address });
            }
        }
    }
    out
}

/// The text without its documents at `indices` (indices of non-empty documents), every
/// other byte kept: comments, layout and separators of the remaining documents. `None` when
/// the text cannot be cut at its `---` lines into one document per piece.
pub fn without_documents(text: &str, indices: &[usize]) -> Option<String> {
    // Pieces start at a `---` line (the first one may have none).
    let mut pieces: Vec<String> = vec![String::new()];
    for line in text.split_inclusive('\n') {
        let is_separator =
            line.starts_with("---") && line[3..].chars().next().is_none_or(|c| c.is_whitespace());
        if is_separator && !pieces.last().is_some_and(String::is_empty) {
            pieces.push(String::new());
        }
        pieces.last_mut()?.push_str(line);
    }
    let mut out = String::new();
    let mut index = 0;
    for piece in pieces {
        let docs = parse_stream("piece", &piece).ok()?;
        match docs.len() {
            0 => out.push_str(&piece),
            1 => {
                if !indices.contains(&index) {
                    out.push_str(&piece);
                }
                index += 1;
            }
            _ => return None,
        }
    }
    // The cut must remove exactly those documents and keep the others as they parse.
    let before = documents("before", text)?;
    let after = documents("after", &out)?;
    let expected: Vec<Value> =
        before.into_iter().enumerate().filter(|(i, _)| !indices.contains(i)).map(|(_, d)| d).collect();
    (after == expected).then_some(out)
}

/// An operator's file that loses the documents of objects mip applies itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trim {
    /// The file, relative to the tree.
    pub path: PathBuf,
    /// Its text without those documents.
    pub text: String,
    /// Their addresses.
    pub addresses: Vec<String>,
}

/// [`owned_twice`] for a desired state: the directories its root Applications read (mip's own
/// Applications' source paths), the objects it applies itself (a document without a namespace
/// lands in `argocd_ns`, the roots' destination), each file cut with [`without_documents`].
///
/// # Errors
/// A one-line reason, with a hint, for a file whose documents cannot be cut apart.
pub fn trims(
    desired: &mip_graph::Desired,
    argocd_ns: &str,
    checkout: &BTreeMap<PathBuf, Option<String>>,
) -> Result<Vec<Trim>, String> {
    use mip_core::{ObjectRef, Owner};
    let mip_owned = |a: &ObjectRef| desired.objects.get(a).is_some_and(|o| o.owner == Owner::Mip);
    let roots: Vec<String> = desired
        .mip_owned()
        .filter(|o| o.addr.is(mip_core::Kind::Application))
        .filter_map(|o| o.manifest.pointer("/spec/source/path").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let found = owned_twice(checkout, &roots, |api, kind, ns, name| {
        [
            ObjectRef::new(api, kind, Some(ns.unwrap_or(argocd_ns)), name),
            ObjectRef::new(api, kind, None, name),
        ]
        .into_iter()
        .find(|a| (ns.is_none() || a.namespace.is_some()) && mip_owned(a))
        .map(|a| a.to_string())
    });
    let mut by_file: BTreeMap<PathBuf, (Vec<usize>, Vec<String>)> = BTreeMap::new();
    for f in found {
        let e = by_file.entry(f.path).or_default();
        e.0.push(f.index);
        e.1.push(f.address);
    }
    by_file
        .into_iter()
        .map(|(path, (indices, addresses))| {
            let text = checkout.get(&path).and_then(Option::as_deref).unwrap_or_default();
            match without_documents(text, &indices) {
                Some(text) => Ok(Trim { path, text, addresses }),
                None => Err(format!(
                    "`{}` declares {} that mip applies itself, but its documents cannot be told apart at their `---` lines (hint: remove those documents by hand: an object has one owner)",
                    path.display(),
                    addresses.join(", ")
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_effect_ignores_comments_and_style_but_not_values() {
        let a = "---\n# a comment\nkind: X\nspec: {repos: [a, b]}\n";
        let b = "kind: X\nspec:\n  repos:\n    - a\n    - b\n";
        assert!(same_effect(a, b));
        assert!(!same_effect(a, "kind: X\nspec: {repos: [b, a]}\n"), "order of a list is a value");
        assert!(!same_effect(a, "kind: X\nspec: {repos: [a, b]}\n---\nkind: Y\n"), "a document more");
        assert!(!same_effect("a: [\n", "a: [ \n"), "unparseable texts differ unless equal");
        assert!(same_effect("a: [\n", "a: [\n"));
    }

    #[test]
    fn differences_name_the_fields() {
        let a = documents("a", "kind: X\nspec: {repos: [a, b], w: 1}\n").expect("yaml");
        let b = documents("b", "kind: X\nspec: {repos: [a, c]}\n").expect("yaml");
        assert_eq!(differences(&a, &b, 10), vec!["/0/spec/repos/1", "/0/spec/w"]);
        assert_eq!(differences(&a, &[], 10), vec!["/0"]);
    }

    #[test]
    fn a_document_is_cut_out_with_every_other_byte_kept() {
        let text = "---\n# first\napiVersion: v1\nkind: A\nmetadata: {name: a}\n---\n# default should not be allowed anything\napiVersion: v1\nkind: B\nmetadata: {name: b}\n---\nkind: C # trailing\n";
        let cut = without_documents(text, &[1]).expect("cut");
        assert_eq!(
            cut,
            "---\n# first\napiVersion: v1\nkind: A\nmetadata: {name: a}\n---\nkind: C # trailing\n"
        );
        assert_eq!(without_documents(text, &[]).as_deref(), Some(text));
        // A text whose separators cannot be found line by line is refused, not guessed.
        assert_eq!(without_documents("kind: A\n--- \nkind: B\n", &[0]).as_deref(), Some("--- \nkind: B\n"));
        assert!(without_documents("a: [\n---\n]\n", &[0]).is_none());
    }

    #[test]
    fn owned_twice_reads_only_the_root_directories_and_never_generated_files() {
        let mut checkout = BTreeMap::new();
        let project = "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: default}\n";
        checkout
            .insert(PathBuf::from("base/argo-projects.yaml"), Some(format!("kind: Other\n---\n{project}")));
        checkout.insert(PathBuf::from("base/deeper/p.yaml"), Some(project.to_owned()));
        checkout.insert(PathBuf::from("common/p.yaml"), Some(project.to_owned()));
        checkout
            .insert(PathBuf::from("base/mine.yaml"), Some(format!("{}{project}", crate::header("mip.yaml"))));
        let found = owned_twice(&checkout, &["base".to_owned()], |api, kind, ns, name| {
            (kind == "AppProject" && name == "default" && ns.is_none())
                .then(|| format!("{api}/{kind}/argocd/{name}"))
        });
        assert_eq!(
            found,
            vec![OwnedTwice {
                path: PathBuf::from("base/argo-projects.yaml"),
                index: 1,
                address: "argoproj.io/v1alpha1/AppProject/argocd/default".to_owned()
            }]
        );
    }
}
