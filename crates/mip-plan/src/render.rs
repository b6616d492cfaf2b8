//! Views of a plan: human text (like Terraform's), JSON (the contract) and Markdown (a PR
//! comment with a size budget). Pure functions returning strings; byte-identical for equal
//! plans.

use crate::model::*;
use mip_core::{Action, SensitiveSource};
use mip_graph::Step;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// GitHub refuses comments over 65 536 characters; keep a margin for the surrounding text.
pub const DEFAULT_MARKDOWN_BUDGET: usize = 60_000;

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&p, x, out);
            }
        }
        Value::Array(a) if !a.is_empty() && a.iter().any(|x| x.is_object() || x.is_array()) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

fn source_text(s: &SensitiveSource) -> String {
    match s {
        SensitiveSource::Generated => "generated on first apply".to_owned(),
        other => format!("from {other}"),
    }
}

/// Manifest fields as `path = value` lines, secret values replaced by their source.
fn fields(c: &Change) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(m) = &c.manifest {
        flatten("", m, &mut out);
    }
    let sensitive: BTreeMap<&str, &SensitiveSource> =
        c.sensitive.iter().map(|s| (s.key.as_str(), &s.source)).collect();
    for (path, value) in &mut out {
        if let Some(key) = path.strip_prefix("stringData.")
            && let Some(src) = sensitive.get(key)
        {
            *value = format!("(sensitive, {})", source_text(src));
        }
    }
    out
}

fn header(plan: &Plan) -> String {
    let mut s = String::new();
    match plan.mode {
        Mode::Offline => {
            s.push_str("mip plan (offline: compared with the local state only; no cluster was contacted)\n\n")
        }
        Mode::Live => s.push_str("mip plan\n\n"),
    }
    let _ = writeln!(s, "  inventory: {} ({})", plan.inventory, short_digest(&plan.inventory_digest));
    let _ = writeln!(s, "  revision:  {} (root Applications prefixed `{}`)", plan.revision, plan.prefix);
    match &plan.state.lineage {
        Some(l) => {
            let _ = writeln!(s, "  state:     lineage {l}, serial {}", plan.state.serial);
        }
        None => s.push_str("  state:     empty (nothing applied yet)\n"),
    }
    s
}

fn short_digest(d: &str) -> &str {
    let end = d.char_indices().nth(19).map_or(d.len(), |(i, _)| i);
    &d[..end]
}

/// Summary line, e.g. `Plan: 12 to create, 0 to update, 0 to replace, 0 to delete; 40 to await from Argo CD.`
pub fn summary_line(s: &Summary) -> String {
    if !s.has_changes() && s.await_argo == 0 {
        return "No changes. The cluster matches the inventory.".to_owned();
    }
    format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete; {} to await from Argo CD.",
        s.create, s.update, s.replace, s.delete, s.await_argo
    )
}

/// The human plan.
pub fn text(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = write_text(plan, &mut s);
    s
}

/// [`text`] written piece by piece into `out` (a plan of 30 000 objects need not exist as one
/// 40 MB string before it reaches stdout).
///
/// # Errors
/// Whatever `out` returns.
pub fn write_text(plan: &Plan, s: &mut impl Write) -> std::fmt::Result {
    s.write_str(&header(plan))?;
    s.write_str("\nSymbols: + create, ~ update, -/+ replace, - delete, <= await (Argo CD creates it; mip waits), = exists.\n")?;
    let mut step: Option<Step> = None;
    let visible: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if !visible.is_empty() {
        s.write_str("\nmip will apply, in this order:\n")?;
    }
    for c in visible {
        if step != Some(c.step) && c.action != Action::Delete {
            writeln!(s, "\n  # step {}", c.step)?;
            step = Some(c.step);
        }
        writeln!(s, "  {:>3} {}", c.action.symbol(), c.address)?;
        writeln!(s, "        {} ({})", c.purpose, c.reason)?;
        if let (Action::Update, Some(diff)) = (c.action, &c.diff) {
            for line in diff.lines() {
                writeln!(s, "          {line}")?;
            }
        } else if c.action == Action::Create || c.action == Action::Update {
            for (path, value) in fields(c) {
                if path.starts_with("apiVersion")
                    || path.starts_with("kind")
                    || path == "metadata.name"
                    || path == "metadata.namespace"
                {
                    continue;
                }
                writeln!(s, "          {path} = {value}")?;
            }
        }
    }
    if !plan.expected.is_empty() {
        s.write_str("\nArgo CD will generate from Git, and mip will wait for:\n")?;
        let mut step = None;
        for e in &plan.expected {
            if step != Some(e.step) {
                writeln!(s, "\n  # step {}", e.step)?;
                step = Some(e.step);
            }
            let symbol = if e.present { "=" } else { e.action.symbol() };
            writeln!(s, "  {symbol:>3} {}", e.address)?;
            match &e.generated_by {
                Some(by) => {
                    writeln!(s, "        {} (from {} {})", e.reason, by.kind, by.name)?;
                }
                None => {
                    writeln!(s, "        {}", e.reason)?;
                }
            }
        }
    }
    write!(s, "\n{}\n", summary_line(&plan.summary))
}

/// The JSON plan (`format_version` first; see [`Plan`] for the fields).
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).unwrap_or_default();
    s.push('\n');
    s
}

/// Markdown for a pull-request comment: the summary first, details folded per step, and
/// an explicit notice when the budget (in characters) cuts it short.
pub fn markdown(plan: &Plan, budget: usize) -> String {
    let s = &plan.summary;
    let mut head = String::from("### mip plan\n\n");
    if plan.mode == Mode::Offline {
        head.push_str("_Offline plan: compared with the local state only._\n\n");
    }
    let _ = writeln!(head, "**{}**\n", summary_line(s));
    head.push_str("| create | update | replace | delete | await (Argo CD) |\n|---:|---:|---:|---:|---:|\n");
    let _ =
        writeln!(head, "| {} | {} | {} | {} | {} |\n", s.create, s.update, s.replace, s.delete, s.await_argo);
    let _ = writeln!(
        head,
        "Revision `{}` · inventory `{}` (`{}`)\n",
        plan.revision,
        plan.inventory,
        short_digest(&plan.inventory_digest)
    );

    let mut sections: Vec<String> = Vec::new();
    for step in Step::ALL {
        let changes: Vec<&Change> =
            plan.changes.iter().filter(|c| c.step == step && c.action != Action::NoOp).collect();
        let expected: Vec<&Expectation> = plan.expected.iter().filter(|e| e.step == step).collect();
        if changes.is_empty() && expected.is_empty() {
            continue;
        }
        let mut sec = format!(
            "<details><summary>step <code>{step}</code>: {} changes, {} awaited</summary>\n\n",
            changes.len(),
            expected.len()
        );
        for c in changes {
            let _ = writeln!(sec, "- `{}` `{}` — {} ({})", c.action.symbol(), c.address, c.purpose, c.reason);
            if !c.sensitive.is_empty() {
                let keys: Vec<String> = c.sensitive.iter().map(|k| format!("`{}`", k.key)).collect();
                let _ = writeln!(sec, "  - sensitive keys (values never shown): {}", keys.join(", "));
            }
        }
        for c in plan.changes.iter().filter(|c| c.step == step) {
            if let Some(d) = &c.diff {
                let _ = writeln!(
                    sec,
                    "\n<details><summary><code>{}</code> diff</summary>\n\n```diff\n{}```\n</details>\n",
                    c.address, d
                );
            }
        }
        for e in expected {
            let symbol = if e.present { "=" } else { "<=" };
            let _ = writeln!(sec, "- `{symbol}` `{}` — {}", e.address, e.reason);
        }
        sec.push_str("\n</details>\n\n");
        sections.push(sec);
    }
    let mut out = head;
    let total = sections.len();
    for (i, sec) in sections.into_iter().enumerate() {
        let notice_room = 200;
        if out.len() + sec.len() + notice_room > budget {
            let _ = writeln!(
                out,
                "> **Plan truncated:** {} of {total} steps not shown to stay within {budget} characters. Run `mip plan` for the full plan.",
                total - i
            );
            return out;
        }
        out.push_str(&sec);
    }
    out
}
