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

fn source_text(s: &SensitiveSource) -> String {
    match s {
        SensitiveSource::Generated => "generated on first apply".to_owned(),
        other => format!("from {other}"),
    }
}

/// The manifest's fields as `path = value` lines (`metadata.labels.x`, `rules[0].verbs`),
/// secret values replaced by their source, without the identity fields the address shows.
/// Written as the manifest is walked, with one path buffer: 30 000 manifests at 10 000
/// federations.
fn write_fields(s: &mut impl Write, c: &Change) -> std::fmt::Result {
    match &c.manifest {
        Some(m) => walk_fields(s, m, &mut String::new(), &c.sensitive),
        None => Ok(()),
    }
}

fn walk_fields(
    s: &mut impl Write,
    v: &Value,
    path: &mut String,
    sensitive: &[SensitiveKey],
) -> std::fmt::Result {
    let len = path.len();
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk_fields(s, x, path, sensitive)?;
                path.truncate(len);
            }
        }
        Value::Array(a) if !a.is_empty() && a.iter().any(|x| x.is_object() || x.is_array()) => {
            for (i, x) in a.iter().enumerate() {
                write!(path, "[{i}]")?;
                walk_fields(s, x, path, sensitive)?;
                path.truncate(len);
            }
        }
        other => {
            let identity = path.starts_with("apiVersion")
                || path.starts_with("kind")
                || path == "metadata.name"
                || path == "metadata.namespace";
            if identity {
                return Ok(());
            }
            let secret =
                path.strip_prefix("stringData.").and_then(|key| sensitive.iter().find(|k| k.key == key));
            match secret {
                Some(k) => writeln!(s, "          {path} = (sensitive, {})", source_text(&k.source))?,
                None => writeln!(s, "          {path} = {other}")?,
            }
        }
    }
    Ok(())
}

fn header(plan: &Plan) -> String {
    let mut s = String::new();
    match plan.mode {
        Mode::Offline => {
            s.push_str("mip plan (offline: compared with the local state only; no cluster was contacted)\n\n")
        }
        Mode::Live => s.push_str("mip plan\n\n"),
        Mode::Review => s.push_str(
            "mip plan (review: what the inventory changes against its base; no cluster and no state were used)\n\n",
        ),
    }
    if let Some(base) = &plan.base {
        let _ = writeln!(s, "  base:      {} ({})", base.inventory, short_digest(&base.inventory_digest));
    }
    let _ = writeln!(s, "  inventory: {} ({})", plan.inventory, short_digest(&plan.inventory_digest));
    let _ = writeln!(s, "  revision:  {} (root Applications prefixed `{}`)", plan.revision, plan.prefix);
    match (&plan.state.lineage, plan.mode) {
        (_, Mode::Review) => {}
        (Some(l), _) => {
            let _ = writeln!(s, "  state:     lineage {l}, serial {}", plan.state.serial);
        }
        (None, _) => s.push_str("  state:     empty (nothing applied yet)\n"),
    }
    if !plan.targets.is_empty() {
        let _ = writeln!(s, "\nWarning: {}", crate::safety::TARGET_WARNING);
        for t in &plan.targets {
            let _ = writeln!(s, "  target: {t}");
        }
    }
    let gone = crate::review::deletions(plan);
    if !gone.is_empty() {
        let _ = writeln!(
            s,
            "\nWarning: this plan deletes {} object(s). Deleting a namespace deletes the federation's workloads and volumes in it; a deleted Secret's generated values are gone for good:",
            gone.len()
        );
        for a in gone {
            let by = argo_deletion_note(plan, a);
            let _ = writeln!(s, "  - {a}{by}");
        }
    }
    s
}

/// Who deletes `a`, when it is Argo CD: an Application takes what it deployed with it.
fn argo_deletion_note(plan: &Plan, a: &mip_core::ObjectRef) -> &'static str {
    if !plan.expected.iter().any(|e| e.action == Action::Delete && e.address == *a) {
        ""
    } else if a.is(mip_core::Kind::Application) {
        " (Argo CD deletes it and what it deployed)"
    } else {
        " (Argo CD deletes it)"
    }
}

fn short_digest(d: &str) -> &str {
    let end = d.char_indices().nth(19).map_or(d.len(), |(i, _)| i);
    &d[..end]
}

/// Summary line, e.g. `Plan: 12 to create, 0 to update, 0 to replace, 0 to delete; 40 to await from Argo CD.`;
/// a review plan says what Argo CD will create, change and delete instead of what mip awaits.
pub fn summary_line(s: &Summary) -> String {
    let argo = s.argo_create + s.argo_update + s.argo_delete + s.argo_resync;
    if !s.has_changes() && s.await_argo == 0 && argo == 0 {
        return "No changes. The cluster matches the inventory.".to_owned();
    }
    let mip = format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete",
        s.create, s.update, s.replace, s.delete
    );
    let resync = if s.argo_resync > 0 {
        format!(", and re-sync {} for the files it reads", s.argo_resync)
    } else {
        String::new()
    };
    if argo > 0 {
        format!(
            "{mip}; Argo CD will create {}, change {} and delete {}{resync}.",
            s.argo_create, s.argo_update, s.argo_delete
        )
    } else {
        format!("{mip}; {} to await from Argo CD.", s.await_argo)
    }
}

/// The summary line of a plan: [`summary_line`], with the words of its mode when nothing changes.
fn plan_summary_line(plan: &Plan) -> String {
    if plan.mode == Mode::Review && !plan.summary.changes_anything() {
        return "No changes. The inventory changes nothing against its base.".to_owned();
    }
    summary_line(&plan.summary)
}

/// mip's changes per cluster (the management cluster first, as `in-cluster`): `(cluster,
/// [create, update, replace, delete])`; empty when every change is on the management cluster.
pub fn by_cluster(plan: &Plan) -> Vec<(String, [usize; 4])> {
    let mut counts: std::collections::BTreeMap<Option<&str>, [usize; 4]> = std::collections::BTreeMap::new();
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        let slot = match c.action {
            Action::Create => 0,
            Action::Update => 1,
            Action::Replace => 2,
            _ => 3,
        };
        counts.entry(c.address.cluster.as_deref()).or_default()[slot] += 1;
    }
    if counts.keys().all(Option::is_none) {
        return Vec::new();
    }
    counts.into_iter().map(|(c, n)| (c.unwrap_or("in-cluster").to_owned(), n)).collect()
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
    s.write_str(if plan.mode == Mode::Review {
        "\nSymbols: + create, ~ update, - delete; for mip's objects, then for what Argo CD generates.\n"
    } else {
        "\nSymbols: + create, ~ update, -/+ replace, - delete, <= await (Argo CD creates it; mip waits), = exists.\n"
    })?;
    let mut step: Option<Step> = None;
    let visible: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if !visible.is_empty() {
        s.write_str("\nmip will apply, in this order:\n")?;
    }
    // Where apply waits: a change that depends on an object Argo CD has yet to generate is
    // written only once that object is ready.
    // Hashed: 60 000 awaited objects at 10 000 federations, only asked for membership.
    let awaited: mip_graph::LookupSet<&mip_core::ObjectRef> =
        plan.expected.iter().filter(|e| !e.present).map(|e| &e.address).collect();
    for c in visible {
        if step != Some(c.step) && c.action != Action::Delete {
            writeln!(s, "\n  # step {}", c.step)?;
            step = Some(c.step);
        }
        writeln!(s, "  {:>3} {}", c.action.symbol(), c.address)?;
        writeln!(s, "        {} ({})", c.purpose, c.reason)?;
        let gates: Vec<&mip_core::ObjectRef> =
            c.depends_on.iter().map(|d| &d.address).filter(|a| awaited.contains(a)).collect();
        if plan.mode != Mode::Review && !gates.is_empty() {
            let shown: Vec<String> = gates.iter().take(3).map(|g| format!("{}/{}", g.kind, g.name)).collect();
            let more = if gates.len() > 3 { format!(" and {} more", gates.len() - 3) } else { String::new() };
            writeln!(s, "        waits until Argo CD has generated {}{more}", shown.join(", "))?;
        }
        if let (Action::Update, Some(diff)) = (c.action, &c.diff) {
            for line in diff.lines() {
                writeln!(s, "          {line}")?;
            }
        } else if c.action == Action::Create || c.action == Action::Update {
            write_fields(s, c)?;
        }
    }
    if !plan.expected.is_empty() {
        s.write_str(if plan.mode == Mode::Review {
            "\nArgo CD will, once this change is merged and synced:\n"
        } else {
            "\nArgo CD will generate from Git, and mip will wait for:\n"
        })?;
        let mut step = None;
        for e in &plan.expected {
            if step != Some(e.step) {
                writeln!(s, "\n  # step {}", e.step)?;
                step = Some(e.step);
            }
            let symbol = if e.present && e.action != Action::Update { "=" } else { e.action.symbol() };
            writeln!(s, "  {symbol:>3} {}", e.address)?;
            match &e.generated_by {
                Some(by) => {
                    writeln!(s, "        {} (from {} {})", e.reason, by.kind, by.name)?;
                }
                None => {
                    writeln!(s, "        {}", e.reason)?;
                }
            }
            for line in e.diff.iter().flat_map(|d| d.lines()) {
                writeln!(s, "          {line}")?;
            }
        }
    }
    if !plan.files.is_empty() {
        s.write_str(
            "\nFiles Argo CD reads that this change edits (each reader re-syncs once it is merged):\n",
        )?;
        for f in &plan.files {
            writeln!(s, "\n  {} {} ({})", file_symbol(f.status), f.path, f.status.as_str())?;
            for a in &f.read_by {
                writeln!(s, "        read by {a}")?;
            }
            for line in f.diff.lines() {
                writeln!(s, "          {line}")?;
            }
        }
    }
    let clusters = by_cluster(plan);
    if !clusters.is_empty() {
        s.write_str("\nBy cluster:\n")?;
        for (cluster, [c, u, r, d]) in clusters {
            writeln!(s, "  {cluster}: {c} to create, {u} to update, {r} to replace, {d} to delete")?;
        }
    }
    write!(s, "\n{}\n", plan_summary_line(plan))
}

fn file_symbol(status: FileStatus) -> &'static str {
    match status {
        FileStatus::Added => "+",
        FileStatus::Modified => "~",
        FileStatus::Deleted => "-",
    }
}

/// The JSON plan (`format_version` first; see [`Plan`] for the fields).
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).unwrap_or_default();
    s.push('\n');
    s
}

/// The hidden first line of every Markdown comment mip writes: a workflow finds the comment
/// it posted before by it and updates that one instead of adding another.
pub const MARKER: &str = "<!-- mip-plan -->";

/// Where a plan was made, as CI reports it: shown under the summary of a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiContext {
    /// The commit planned (hexadecimal).
    pub commit: Option<String>,
    /// The CI run that made the plan.
    pub run_url: Option<String>,
}

impl CiContext {
    /// From GitHub Actions' variables (`MIP_HEAD_SHA`, else `GITHUB_SHA`; `GITHUB_SERVER_URL`,
    /// `GITHUB_REPOSITORY`, `GITHUB_RUN_ID`), given by `var`. Values that do not look like what
    /// GitHub sets are left out, so nothing from the environment can inject Markdown.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> CiContext {
        let commit = var("MIP_HEAD_SHA")
            .filter(|c| !c.is_empty())
            .or_else(|| var("GITHUB_SHA"))
            .filter(|c| (7..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()));
        let server = var("GITHUB_SERVER_URL").filter(|u| {
            u.strip_prefix("https://").is_some_and(|h| {
                !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:/".contains(&b))
            })
        });
        let repo = var("GITHUB_REPOSITORY").filter(|r| {
            r.split('/').count() == 2 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        });
        let run = var("GITHUB_RUN_ID").filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
        let run_url = match (server, repo, run) {
            (Some(s), Some(r), Some(id)) => {
                Some(format!("{}/{r}/actions/runs/{id}", s.trim_end_matches('/')))
            }
            _ => None,
        };
        CiContext { commit, run_url }
    }

    fn line(&self) -> Option<String> {
        let commit = self.commit.as_ref().map(|c| format!("commit `{}`", &c[..c.len().min(12)]));
        let run = self.run_url.as_ref().map(|u| format!("[CI run]({u})"));
        let parts: Vec<String> = commit.into_iter().chain(run).collect();
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

/// How to render a Markdown comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownOptions {
    /// Character budget ([`DEFAULT_MARKDOWN_BUDGET`]).
    pub budget: usize,
    /// Fold in a Mermaid picture of the steps and what changes in them.
    pub mermaid: bool,
    /// The commit and CI run, when known.
    pub ci: CiContext,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions { budget: DEFAULT_MARKDOWN_BUDGET, mermaid: false, ci: CiContext::default() }
    }
}

/// A fenced code block of `text` whose fence is longer than any run of backticks inside it
/// (CommonMark), so a diff that contains a fence cannot close the block early.
pub fn fenced(info: &str, text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat((longest + 1).max(3));
    let nl = if text.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{info}\n{text}{nl}{fence}\n")
}

/// The destructive banner: what the plan deletes, namespaces and Secrets first.
fn banner(plan: &Plan) -> String {
    let gone = crate::review::deletions(plan);
    if gone.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "> [!CAUTION]\n> **This plan deletes {} object(s).** Deleting a namespace deletes the federation's workloads and volumes in it; a deleted Secret's generated values are gone for good.\n>\n",
        gone.len()
    );
    for a in gone {
        let by = argo_deletion_note(plan, a);
        let _ = writeln!(s, "> - `{a}`{by}");
    }
    s.push('\n');
    s
}

/// A Mermaid flowchart of the steps, each with what changes in it; steps that delete are red.
fn mermaid(plan: &Plan) -> String {
    let mut s =
        String::from("<details><summary>Picture of the steps</summary>\n\n```mermaid\nflowchart LR\n");
    let mut previous: Option<usize> = None;
    let mut deleting = Vec::new();
    for (i, step) in Step::ALL.iter().enumerate() {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut deletes = false;
        for c in plan.changes.iter().filter(|c| c.step == *step && c.action != Action::NoOp) {
            *counts.entry(c.action.symbol()).or_default() += 1;
            deletes |= c.action == Action::Delete;
        }
        for e in
            plan.expected.iter().filter(|e| e.step == *step && (!e.present || e.action == Action::Update))
        {
            *counts.entry(e.action.symbol()).or_default() += 1;
            deletes |= e.action == Action::Delete;
        }
        if counts.is_empty() {
            continue;
        }
        let what: Vec<String> = counts.iter().map(|(sym, n)| format!("{sym}{n}")).collect();
        let label = what.join(" ").replace('<', "&lt;");
        let _ = writeln!(s, "  s{i}[\"{step}<br/>{label}\"]");
        if let Some(p) = previous {
            let _ = writeln!(s, "  s{p} --> s{i}");
        }
        if deletes {
            deleting.push(format!("s{i}"));
        }
        previous = Some(i);
    }
    if !deleting.is_empty() {
        let _ =
            writeln!(s, "  classDef deletes fill:#fdd,stroke:#c00\n  class {} deletes", deleting.join(","));
    }
    s.push_str("```\n\n</details>\n\n");
    s
}

/// Markdown for a pull-request comment: the hidden [`MARKER`], the destructive banner, the
/// summary, the commit and CI run, an optional Mermaid picture, then the details folded per
/// step; an explicit notice when the budget (in characters) cuts it short. Code fences inside
/// diffs are escaped ([`fenced`]).
pub fn markdown(plan: &Plan, opts: &MarkdownOptions) -> String {
    let mut sections: Vec<String> =
        Step::ALL.into_iter().filter_map(|step| markdown_step(plan, step)).collect();
    sections.extend(markdown_files(plan));
    within_budget(markdown_head(plan, opts), sections, opts.budget)
}

/// The comment's head: banner, mode, targets, summary tables, revision, CI line, graph.
fn markdown_head(plan: &Plan, opts: &MarkdownOptions) -> String {
    let s = &plan.summary;
    let mut head = format!("{MARKER}\n### mip plan\n\n");
    head.push_str(&banner(plan));
    match (plan.mode, &plan.base) {
        (Mode::Offline, _) => head.push_str("_Offline plan: compared with the local state only._\n\n"),
        (Mode::Review, Some(base)) => {
            let _ = writeln!(
                head,
                "_Review plan: `{}` compared with its base `{}`; no cluster and no state were used._\n",
                plan.inventory, base.inventory
            );
        }
        _ => {}
    }
    if !plan.targets.is_empty() {
        let targets: Vec<String> = plan.targets.iter().map(|t| format!("`{t}`")).collect();
        let _ = writeln!(
            head,
            "> [!WARNING]\n> {}\n> Targets: {}\n",
            crate::safety::TARGET_WARNING,
            targets.join(", ")
        );
    }
    let _ = writeln!(head, "**{}**\n", plan_summary_line(plan));
    if plan.mode == Mode::Review {
        head.push_str("| mip: create | update | delete | Argo CD: create | change | delete | re-sync (files) |\n|---:|---:|---:|---:|---:|---:|---:|\n");
        let _ = writeln!(
            head,
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            s.create, s.update, s.delete, s.argo_create, s.argo_update, s.argo_delete, s.argo_resync
        );
    } else {
        head.push_str(
            "| create | update | replace | delete | await (Argo CD) |\n|---:|---:|---:|---:|---:|\n",
        );
        let _ = writeln!(
            head,
            "| {} | {} | {} | {} | {} |\n",
            s.create, s.update, s.replace, s.delete, s.await_argo
        );
    }
    let clusters = by_cluster(plan);
    if !clusters.is_empty() {
        head.push_str("| cluster | create | update | replace | delete |\n|---|---:|---:|---:|---:|\n");
        for (cluster, [c, u, r, d]) in clusters {
            let _ = writeln!(head, "| `{cluster}` | {c} | {u} | {r} | {d} |");
        }
        head.push('\n');
    }
    let _ = writeln!(
        head,
        "Revision `{}` · inventory `{}` (`{}`)\n",
        plan.revision,
        plan.inventory,
        short_digest(&plan.inventory_digest)
    );
    if let Some(line) = opts.ci.line() {
        let _ = writeln!(head, "{line}\n");
    }
    if opts.mermaid && plan.summary.changes_anything() {
        head.push_str(&mermaid(plan));
    }
    head
}

/// One step's collapsible section: its changes, what Argo CD does, and their diffs; `None`
/// for a step with nothing in it.
fn markdown_step(plan: &Plan, step: Step) -> Option<String> {
    let argo_word = if plan.mode == Mode::Review { "by Argo CD" } else { "awaited" };
    let changes: Vec<&Change> =
        plan.changes.iter().filter(|c| c.step == step && c.action != Action::NoOp).collect();
    let expected: Vec<&Expectation> = plan.expected.iter().filter(|e| e.step == step).collect();
    if changes.is_empty() && expected.is_empty() {
        return None;
    }
    let mut sec = format!(
        "<details><summary>step <code>{step}</code>: {} changes, {} {argo_word}</summary>\n\n",
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
    for e in &expected {
        let symbol = if e.present && e.action != Action::Update { "=" } else { e.action.symbol() };
        let _ = writeln!(sec, "- `{symbol}` `{}` — {}", e.address, e.reason);
    }
    let diffs = plan
        .changes
        .iter()
        .filter(|c| c.step == step)
        .filter_map(|c| Some((&c.address, c.diff.as_ref()?)))
        .chain(expected.iter().filter_map(|e| Some((&e.address, e.diff.as_ref()?))));
    for (address, d) in diffs {
        let _ = writeln!(
            sec,
            "\n<details><summary><code>{address}</code> diff</summary>\n\n{}</details>\n",
            fenced("diff", d)
        );
    }
    sec.push_str("\n</details>\n\n");
    Some(sec)
}

/// The section of the files Argo CD reads that the change edits (review plans).
fn markdown_files(plan: &Plan) -> Option<String> {
    if plan.files.is_empty() {
        return None;
    }
    let mut sec = format!("<details><summary>files Argo CD reads: {} edited</summary>\n\n", plan.files.len());
    for f in &plan.files {
        let readers: Vec<String> = f.read_by.iter().map(|a| format!("`{}`", a.name)).collect();
        let _ = writeln!(
            sec,
            "- `{}` `{}` ({}) — re-syncs {}",
            file_symbol(f.status),
            f.path,
            f.status.as_str(),
            readers.join(", ")
        );
    }
    for f in &plan.files {
        let _ = writeln!(
            sec,
            "\n<details><summary><code>{}</code> diff</summary>\n\n{}</details>\n",
            f.path,
            fenced("diff", &f.diff)
        );
    }
    sec.push_str("\n</details>\n\n");
    Some(sec)
}

/// The head and as many whole sections as fit in `budget` characters, with a notice of
/// what was left out.
fn within_budget(head: String, sections: Vec<String>, budget: usize) -> String {
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

/// A failed plan as a comment (same [`MARKER`], so it replaces the last plan's comment): the
/// error, each located problem, and the hint, in a code block.
pub fn markdown_failure(message: &str, details: &[String], hint: Option<&str>, ci: &CiContext) -> String {
    let mut out = format!("{MARKER}\n### mip plan failed\n\n");
    let mut text = String::new();
    for d in details {
        let _ = writeln!(text, "{d}");
    }
    let _ = writeln!(text, "error: {message}");
    if let Some(h) = hint {
        let _ = writeln!(text, "hint: {h}");
    }
    out.push_str(&fenced("text", &text));
    out.push('\n');
    if let Some(line) = ci.line() {
        let _ = writeln!(out, "{line}\n");
    }
    out
}
