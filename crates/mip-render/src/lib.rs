//! The Argo CD GitOps tree of an inventory, rendered instead of edited by hand.
//!
//! [`render`] computes the tree Argo CD reads (`base/`, `projects/`, `deployments/`,
//! `common/`) from the inventory, with every name, project and destination taken from
//! [`mip_graph::catalogue`] — the same functions `mip_graph::resolve` uses for the objects mip
//! waits for, so what Argo CD generates from this tree is, by construction and by test, what
//! the plan awaits. A new federation is an inventory entry, not a copied directory.
//!
//! Pure and deterministic: [`render`] returns `path → text` and never touches the disk;
//! [`compare`] classifies a checkout against it, [`diff`] writes the unified diff of
//! `mip render --check`, and [`branch`] finds revisions that point at the wrong branch. The
//! CLI reads and writes files. Every rendered file starts with [`header`], which is how a
//! later run tells its own files (rewritten, or removed when no longer produced) from the
//! user's (values files, manifests, charts: left alone and reported).
//!
//! # What is rendered
//! - `base/argo-projects.yaml`: AppSets `mip-argo-projects` (list generator of the
//!   [static projects](mip_graph::catalogue::StaticProject)) and
//!   `mip-argo-projects-of-federations` (git generator over the federation directories);
//! - `base/mip-infrastructure/mip-infrastructure.yaml`: AppSet `mip-infrastructure`, one
//!   matrix (git × list) per cluster the federations use, one for the common apps;
//! - `projects/static/<dir>/`: the static AppProjects and their kustomizations;
//! - `projects/templates/federation/`: the Helm chart of the per-federation AppProject;
//! - per federation, `deployments/{local,hybrid}/federations/<Name>[/mip-infrastructure]/`:
//!   a kustomization (`namePrefix: <name>-`, the shared apps, one JSON patch per app setting
//!   project, destination and the federation's values files, then the inventory's own patch
//!   files) and, with `exareme2-overlay`, its Application;
//! - `deployments/shared-apps/<app>/`: the Application template of each shared federation app;
//! - `common/<app>/` for each enabled common app: its Applications (and the network-policy
//!   ApplicationSets of an app with `networkPolicies`), and the files of its definition (the
//!   network-policy charts, the ingress manifests, the Submariner kustomizations).
//!
//! Every app comes from its definition ([`mip_inventory::apps`]), so the tree is complete:
//! what mip owns it renders; what the user owns ([`user_files`]: values and patch files,
//! `$values/` files) it names, and [`missing_user_files`] reports when absent.
//!
//! # Taking over a tree written by hand
//! [`import`] reads a checkout back into an inventory; [`takeover`] holds the two rules that
//! keep that lossless (a file mip renders must declare the checkout's documents, else its path
//! goes into `tree.keep`; a document of the roots' directories declaring an object mip applies
//! itself leaves the operator's file). [`reads`] says which Applications read which files, for
//! review plans of pull requests.
//!
//! # Choices that differ from the hand-written reference tree (when mip renders from scratch)
//! - No `default` AppProject in Git: mip owns it (locked down by server-side apply), and an
//!   object has one owner. No `projects/mip-infrastructure.yaml` either: mip applies the
//!   bootstrap project.
//! - The git generators list the inventory's federation directories explicitly instead of
//!   `deployments/local/federations/*`, so a leftover directory does not become an
//!   Application; each cluster gets its own matrix, so a federation deploys to its own
//!   cluster's server.
//! - Generated Applications go to the Argo CD namespace on `in-cluster` (Application
//!   objects only work in Argo CD's own cluster); the federation's cluster is set on the
//!   children by the federation's patch, and in the project chart by `values.yaml`'s
//!   `servers`.
//! - Templates test the path with `hasPrefix "deployments/local/"` instead of
//!   `contains "local"`, and set `goTemplateOptions: [missingkey=error]`.
//! - No `managedNamespaceMetadata` on the wrappers (their destination is the Argo CD
//!   namespace, shared by every federation), no always-open `syncWindows`, no
//!   `mip-argo-project-submariner-rbac` project (mip applies the Submariner RBAC as a
//!   prerequisite), no `extensions/Ingress`.
//! - Patches use `add` (which also replaces) instead of `replace`, which fails on a missing
//!   field; the shared-app templates carry project `mip-argo-project-shared-apps`.
//! - No shared `deployments/shared-apps/<app>/values.yaml` layer: a federation's values
//!   files (from the inventory) are the only values beside the chart's own.
//! - The project chart's template is valid YAML (templated values are quoted), so every
//!   rendered file can be parsed and checked.
#![deny(missing_docs)]

pub mod branch;
mod emit;
pub mod import;
pub mod reads;
pub mod takeover;
mod tree;

pub use tree::{
    CHART_FEDERATION, CHART_SERVER, INFRA_NAME_TEMPLATE, KIND_TEMPLATE, SEGMENT_TEMPLATE, UserFile,
    missing_user_files, render, user_files, user_files_located,
};

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A value as YAML, in the layout of the rendered tree (block style, two-space indent).
pub fn to_yaml(v: &serde_json::Value) -> String {
    emit::document(v)
}

/// The first line of every rendered file starts with this.
pub const MARKER: &str = "# generated by mip from ";

/// The header of a file rendered from the inventory file `source` (its file name only, so
/// the bytes do not depend on where mip runs).
pub fn header(source: &str) -> String {
    format!("{MARKER}{source}; do not edit (change the inventory and run `mip render`)\n")
}

/// Whether a file's text was rendered by mip.
pub fn is_generated(text: &str) -> bool {
    text.starts_with(MARKER)
}

/// How a checkout differs from the rendered tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeStatus {
    /// Rendered files absent from the checkout.
    pub missing: Vec<PathBuf>,
    /// Rendered files whose checkout differs.
    pub changed: Vec<PathBuf>,
    /// Rendered files whose checkout is identical.
    pub unchanged: Vec<PathBuf>,
    /// Generated files in the checkout that the inventory no longer produces.
    pub stale: Vec<PathBuf>,
    /// Files mip did not generate, at paths it does not render (left alone).
    pub foreign: Vec<PathBuf>,
    /// Files mip did not generate at paths it renders (never overwritten).
    pub conflicts: Vec<PathBuf>,
    /// Files at paths the inventory keeps (`tree.keep`): the operator's, never touched.
    pub kept: Vec<PathBuf>,
}

impl TreeStatus {
    /// Whether the checkout is up to date (nothing missing, changed, stale or conflicting).
    pub fn up_to_date(&self) -> bool {
        self.missing.is_empty()
            && self.changed.is_empty()
            && self.stale.is_empty()
            && self.conflicts.is_empty()
    }
}

/// Classifies the files of a checkout (`path → text`, `None` for unreadable or binary
/// files) against the rendered tree; `tree.keep` paths are never stale (a generated file the
/// inventory now keeps stays, as the operator's).
pub fn compare(
    rendered: &BTreeMap<PathBuf, String>,
    checkout: &BTreeMap<PathBuf, Option<String>>,
    tree: &mip_inventory::TreeSettings,
) -> TreeStatus {
    let mut s = TreeStatus::default();
    for (path, text) in rendered {
        match checkout.get(path) {
            None => s.missing.push(path.clone()),
            Some(Some(have)) if have == text => s.unchanged.push(path.clone()),
            Some(Some(have)) if is_generated(have) => s.changed.push(path.clone()),
            Some(_) => s.conflicts.push(path.clone()),
        }
    }
    for (path, text) in checkout {
        if rendered.contains_key(path) {
            continue;
        }
        if tree.keeps(&path.to_string_lossy()) {
            s.kept.push(path.clone());
            continue;
        }
        match text {
            Some(t) if is_generated(t) => s.stale.push(path.clone()),
            _ => s.foreign.push(path.clone()),
        }
    }
    s
}

/// The unified diff that turns `old` into `new` for one file (`None`: absent), with
/// `a/<path>` / `b/<path>` headers as `git diff` writes them.
pub fn diff(path: &std::path::Path, old: Option<&str>, new: Option<&str>) -> String {
    let p = path.display();
    let a = if old.is_some() { format!("a/{p}") } else { "/dev/null".to_owned() };
    let b = if new.is_some() { format!("b/{p}") } else { "/dev/null".to_owned() };
    similar::TextDiff::from_lines(old.unwrap_or(""), new.unwrap_or(""))
        .unified_diff()
        .context_radius(3)
        .header(&a, &b)
        .to_string()
}

/// Words that make a YAML key look sensitive (case-insensitive, anywhere in the key).
const SENSITIVE_WORDS: [&str; 9] =
    ["password", "passwd", "secret", "token", "credential", "privatekey", "private_key", "apikey", "psk"];

/// `text` with the value of every `key: value` line whose key looks sensitive replaced by
/// `(masked)`, for diffs that reviewers read: a values file may hold a password by mistake,
/// and a plan comment is no place for it. A block scalar under such a key (`key: |`) is
/// masked to its end.
pub fn mask_sensitive(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = block {
            if line.trim().is_empty() || indent > level {
                out.push_str(&" ".repeat(indent));
                out.push_str("(masked)\n");
                continue;
            }
            block = None;
        }
        let body = line.trim_start().trim_start_matches("- ");
        let masked = body.split_once(':').and_then(|(key, value)| {
            let k = key.trim().trim_matches(|c| c == '"' || c == '\'').to_ascii_lowercase().replace('-', "");
            let sensitive = SENSITIVE_WORDS.iter().any(|w| k.contains(w));
            let value = value.trim();
            (sensitive && !value.is_empty() && !key.contains(' ')).then_some((key, value))
        });
        match masked {
            Some((key, value)) => {
                if value.starts_with('|') || value.starts_with('>') {
                    block = Some(indent);
                }
                let prefix =
                    &line[..line.len() - line.trim_start().len() + (line.trim_start().len() - body.len())];
                out.push_str(prefix);
                out.push_str(key);
                out.push_str(": (masked)");
                out.push_str(if line.ends_with('\n') { "\n" } else { "" });
            }
            None => out.push_str(line),
        }
    }
    out
}

/// [`diff`] of two versions of a file the reviewers read, with [`mask_sensitive`] applied to
/// both sides first.
pub fn masked_diff(path: &std::path::Path, old: Option<&str>, new: Option<&str>) -> String {
    let old = old.map(mask_sensitive);
    let new = new.map(mask_sensitive);
    diff(path, old.as_deref(), new.as_deref())
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn values_under_sensitive_keys_are_masked_and_nothing_else() {
        let text = "image: {version: 1.2.1}\ndb:\n  password: hunter2-canary\n  user: admin\napiToken: 'x'\n- clientSecret: s3cr3t\nprivateKey: |\n  -----BEGIN KEY-----\n  abc\nafter: kept\nsecretName: still-a-name\nkey: app\n";
        let m = mask_sensitive(text);
        assert_eq!(
            m,
            "image: {version: 1.2.1}\ndb:\n  password: (masked)\n  user: admin\napiToken: (masked)\n- clientSecret: (masked)\nprivateKey: (masked)\n  (masked)\n  (masked)\nafter: kept\nsecretName: (masked)\nkey: app\n"
        );
        assert!(!m.contains("hunter2") && !m.contains("s3cr3t") && !m.contains("BEGIN"));
        let d = masked_diff(
            std::path::Path::new("v.yaml"),
            Some("password: old-canary\nx: 1\n"),
            Some("password: new-canary\nx: 2\n"),
        );
        assert!(!d.contains("canary") && d.contains("-x: 1") && d.contains("+x: 2"), "{d}");
    }
}
