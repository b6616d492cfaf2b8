//! The branch check: on a feature branch no revision of mip's repositories points at `main`;
//! on `main` every one does.
//!
//! Only revisions are read, from the located YAML tree, so the word `main` elsewhere (a
//! comment, a path) is not a finding: the inventory's `revision` and
//! `repositories.*.revision`, and in a rendered tree every `targetRevision`/`revision` whose
//! sibling `repoURL` is one of the inventory's two repositories (or absent). Upstream chart pins (`targetRevision: <commit>` next to a
//! foreign `repoURL`) and go templates (`{{ .revision }}`) are not revisions of ours.

use mip_core::{Diagnostic, Diagnostics, Location};
use mip_inventory::Inventory;
use mip_inventory::yaml::{Node, Value};

/// The branch that production deploys from.
pub const MAIN: &str = "main";

fn offender(at: Location, what: &str, value: &str, branch: &str) -> Option<Diagnostic> {
    if branch == MAIN && value != MAIN {
        Some(
            Diagnostic::error(
                Some(at),
                "branch-check",
                format!("{what} is `{value}` on branch `{MAIN}`, where every revision must be `{MAIN}`"),
            )
            .with_hint(format!("set it to `{MAIN}` before merging, then run `mip render` again")),
        )
    } else if branch != MAIN && value == MAIN {
        Some(
            Diagnostic::error(Some(at), "branch-check", format!("{what} points at `{MAIN}` on feature branch `{branch}`"))
                .with_hint(format!("set it to `{branch}` (or render with `mip render --revision {branch}`) so the branch deploys its own commits")),
        )
    } else {
        None
    }
}

fn push(d: &mut Diagnostics, x: Option<Diagnostic>) {
    if let Some(x) = x {
        d.push(x);
    }
}

/// Offending revisions of the inventory.
pub fn check_inventory(inv: &Inventory, branch: &str) -> Diagnostics {
    let mut d = Diagnostics::new();
    push(&mut d, offender(inv.revision.at.clone(), "`revision`", &inv.revision.value, branch));
    for repo in [&inv.repositories.infra, &inv.repositories.deployments] {
        if let Some(r) = &repo.revision {
            let what = format!("`repositories.{}.revision`", repo.role);
            push(&mut d, offender(r.at.clone(), &what, &r.value, branch));
        }
    }
    d
}

/// Offending revisions in the documents of one rendered file (`file` names it in the
/// diagnostics). `own_repos` are the inventory's repository URLs.
pub fn check_documents(file: &str, docs: &[Node], branch: &str, own_repos: &[&str]) -> Diagnostics {
    let mut d = Diagnostics::new();
    for doc in docs {
        walk(file, doc, branch, own_repos, &mut d);
    }
    d
}

fn text(n: &Node) -> Option<&str> {
    match &n.value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn walk(file: &str, node: &Node, branch: &str, own: &[&str], d: &mut Diagnostics) {
    match &node.value {
        Value::Map(entries) => {
            let repo = entries.iter().find(|(k, _)| text(k) == Some("repoURL")).and_then(|(_, v)| text(v));
            let ours = repo.is_none_or(|r| r.contains("{{") || own.contains(&r));
            for (k, v) in entries {
                let key = text(k).unwrap_or_default();
                if ours
                    && (key == "targetRevision" || key == "revision")
                    && let Some(value) = text(v).filter(|s| !s.contains("{{"))
                {
                    push(d, offender(v.location(file), &format!("`{key}`"), value, branch));
                }
                walk(file, v, branch, own, d);
            }
        }
        Value::Seq(items) => {
            for i in items {
                walk(file, i, branch, own, d);
            }
        }
        _ => {}
    }
}

/// The current branch from the text of `.git/HEAD` (`ref: refs/heads/<branch>`); `None`
/// for a detached HEAD.
pub fn branch_from_head(head: &str) -> Option<String> {
    head.trim().strip_prefix("ref: refs/heads/").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing() {
        assert_eq!(branch_from_head("ref: refs/heads/feat/x\n").as_deref(), Some("feat/x"));
        assert_eq!(branch_from_head("3f2a9c0d1e\n"), None);
    }

    #[test]
    fn foreign_pins_and_templates_are_not_ours() {
        let text = "a:\n  - repoURL: https://up.example/chart\n    targetRevision: abc123\n  - repoURL: https://our.example/infra.git\n    targetRevision: main\n  - targetRevision: '{{ .revision }}'\n";
        let docs = mip_inventory::yaml::parse_stream("t.yaml", text).expect("yaml");
        let d = check_documents("t.yaml", &docs, "feat", &["https://our.example/infra.git"]);
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "t.yaml:5:21: error[branch-check]: `targetRevision` points at `main` on feature branch `feat`"
            ),
            "{}",
            lines[0]
        );
        let d = check_documents("t.yaml", &docs, MAIN, &["https://our.example/infra.git"]);
        assert!(d.is_empty(), "{d:?}");
    }
}
