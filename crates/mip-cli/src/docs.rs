//! Documentation generated from the clap definitions, so it cannot fall behind the flags:
//! the CLI reference `docs/cli.md` (`mip docs cli`, a hidden command) and one man page per
//! command (`mip man --dir DIR`). `tests/cli/docs.rs` fails when the committed reference is
//! not what this prints.

use crate::cli::{Cli, ClusterArgs, LockArgs};
use clap::{Arg, ArgAction, Args, CommandFactory};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The heading, and the anchor, of the shared cluster and state options.
const SHARED_HEADING: &str = "Cluster and state options";
/// The heading, and the anchor, of the lock options (commands that write the state only).
const LOCK_HEADING: &str = "Lock options";

/// The ids of the arguments a flattened `Args` type adds.
fn ids_of(augment: fn(clap::Command) -> clap::Command) -> BTreeSet<String> {
    augment(clap::Command::new("shared")).get_arguments().map(|a| a.get_id().to_string()).collect()
}

/// Whether `cmd` takes every argument of `ids`.
fn takes_all(cmd: &clap::Command, ids: &BTreeSet<String>) -> bool {
    !ids.is_empty() && ids.iter().all(|id| cmd.get_arguments().any(|a| a.get_id() == id.as_str()))
}

/// `mip` as clap sees it after building: global flags propagated, bin names set, and no
/// `help` subcommand (it has no page of its own).
fn built() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Writes one man page per command into `dir` (created if missing): `mip.1`, `mip-plan.1`,
/// `mip-state-list.1`, … Hidden commands get none. Returns the files written, parents first.
pub fn write_man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
        written.push(clap_mangen::Man::new(cmd.clone()).generate_to(dir)?);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, dir, written)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    walk(&built(), dir, &mut written)?;
    Ok(written)
}

/// The CLI reference in Markdown: every visible command with its description and usage, and
/// every visible argument with its help, default, environment variable and values.
pub fn cli_reference() -> String {
    let root = built();
    // The flags every cluster-reading command flattens in, and the lock flags of those that
    // write: each group listed once, referred to below.
    let shared = ids_of(ClusterArgs::augment_args);
    let lock = ids_of(LockArgs::augment_args);
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from mip's clap definitions by `mip docs cli`; do not edit by hand.\n     \
         tests/cli/docs.rs fails when this file is out of date. -->\n\n",
    );
    out.push_str("# CLI reference\n\n");
    let _ = writeln!(out, "{}\n", collapse(&about(&root)));
    out.push_str(
        "Every command and flag, generated from the definitions the binary parses (`mip COMMAND \
         --help` prints the same text). Data goes to stdout, diagnostics to stderr. Durations \
         are `30s`, `5m`, `1h30m`, `250ms` or plain seconds. Man pages: `mip man --dir DIR` writes \
         one per command.\n\n",
    );
    out.push_str("## Commands\n\n");
    let mut index = Vec::new();
    collect(&root, &mut index);
    for cmd in &index[1..] {
        let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
        let _ = writeln!(out, "- [`{name}`](#{}): {}", anchor(name), collapse(&first_line(cmd)));
    }
    out.push_str("\n## Global options\n\nEvery command takes these.\n\n");
    for arg in root.get_arguments().filter(|a| visible(a) && !is_builtin(a)) {
        out.push_str(&arg_item(arg));
    }
    let _ = writeln!(out, "\n## {SHARED_HEADING}\n");
    out.push_str("The commands that read the cluster or the state take these; each says so below.\n\n");
    for arg in group_args(&index, &shared) {
        out.push_str(&arg_item(arg));
    }
    let _ = writeln!(out, "\n## {LOCK_HEADING}\n");
    out.push_str(
        "The commands that write the state under its lock (apply, destroy, `state rm`, `state migrate`, \
         `state rebuild`) take these too; commands that only read take no lock and no lock option.\n\n",
    );
    for arg in group_args(&index, &lock) {
        out.push_str(&arg_item(arg));
    }
    for cmd in &index[1..] {
        out.push_str(&command_section(cmd, &shared, &lock));
    }
    out.push_str("\n## Exit codes\n\n```text\n");
    out.push_str(crate::exit::TABLE);
    out.push_str("\n```\n");
    out
}

/// The arguments of a shared group, as the first command taking them all has them.
fn group_args<'a>(index: &[&'a clap::Command], ids: &BTreeSet<String>) -> Vec<&'a Arg> {
    let sample = index.iter().find(|c| takes_all(c, ids)).expect("a command takes the shared options");
    sample.get_arguments().filter(|a| ids.contains(a.get_id().as_str()) && visible(a)).collect()
}

/// The command and its visible subcommands, depth first.
fn collect<'a>(cmd: &'a clap::Command, into: &mut Vec<&'a clap::Command>) {
    into.push(cmd);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, into);
    }
}

/// One command's section.
fn command_section(cmd: &clap::Command, shared: &BTreeSet<String>, lock: &BTreeSet<String>) -> String {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut out = format!("\n## {name}\n\n{}\n", sentence(&collapse_paragraphs(&about(cmd))));
    let aliases: Vec<_> = cmd.get_visible_aliases().collect();
    if !aliases.is_empty() {
        let _ = writeln!(
            out,
            "\nAlias: {}.",
            aliases.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
        );
    }
    let usage = cmd.clone().render_usage().to_string();
    let _ = write!(out, "\n```text\n{}\n```\n", usage.trim().trim_start_matches("Usage: "));
    let subs: Vec<_> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if !subs.is_empty() {
        out.push_str("\nCommands:\n\n");
        for sub in subs {
            let sub_name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
            let _ = writeln!(
                out,
                "- [`{}`](#{}): {}",
                sub.get_name(),
                anchor(sub_name),
                collapse(&first_line(sub))
            );
        }
    }
    let own = |a: &&Arg| {
        let id = a.get_id().as_str();
        visible(a) && !is_builtin(a) && !a.is_global_set() && !shared.contains(id) && !lock.contains(id)
    };
    let positionals: Vec<_> = cmd.get_positionals().filter(own).collect();
    if !positionals.is_empty() {
        out.push_str("\nArguments:\n\n");
        for arg in positionals {
            out.push_str(&arg_item(arg));
        }
    }
    let options: Vec<_> = cmd.get_arguments().filter(|a| !a.is_positional()).filter(own).collect();
    let takes_shared = takes_all(cmd, shared);
    let takes_lock = takes_all(cmd, lock);
    if !options.is_empty() || takes_shared {
        out.push_str("\nOptions:\n\n");
        for arg in options {
            out.push_str(&arg_item(arg));
        }
        if takes_shared {
            let _ = writeln!(out, "- the [{}](#{})", SHARED_HEADING.to_lowercase(), anchor(SHARED_HEADING));
        }
        if takes_lock {
            let _ = writeln!(out, "- the [{}](#{})", LOCK_HEADING.to_lowercase(), anchor(LOCK_HEADING));
        }
    }
    out
}

/// One argument as a bullet: its spelling and help, then its default, environment variable
/// and whether it repeats as sentences, and its values as a nested list.
fn arg_item(arg: &Arg) -> String {
    let mut item = format!("- `{}`", spelling(arg));
    let help =
        arg.get_long_help().or_else(|| arg.get_help()).map(|h| collapse(&h.to_string())).unwrap_or_default();
    if !help.is_empty() {
        let _ = write!(item, ": {}", sentence(&help));
    }
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    let defaults: Vec<_> =
        arg.get_default_values().iter().map(|d| d.to_string_lossy().into_owned()).collect();
    if takes_value && !defaults.is_empty() && !arg.is_hide_default_value_set() {
        let _ = write!(item, " Default: `{}`.", defaults.join(","));
    }
    if let Some(env) = arg.get_env().filter(|_| !arg.is_hide_env_set()) {
        let _ = write!(item, " Env: `{}`.", env.to_string_lossy());
    }
    if matches!(arg.get_action(), ArgAction::Append) {
        item.push_str(" Repeatable.");
    }
    item.push('\n');
    let values: Vec<_> = arg.get_possible_values().into_iter().filter(|v| !v.is_hide_set()).collect();
    if takes_value && values.iter().any(|v| v.get_help().is_some()) {
        for v in values {
            let help = v.get_help().map(|h| format!(": {}", collapse(&h.to_string()))).unwrap_or_default();
            let _ = writeln!(item, "  - `{}`{help}", v.get_name());
        }
    } else if takes_value && !values.is_empty() {
        let names: Vec<_> = values.iter().map(|v| format!("`{}`", v.get_name())).collect();
        let _ = writeln!(item, "  - values: {}", names.join(", "));
    }
    item
}

/// The text as a sentence: a full stop at the end unless it has one.
fn sentence(text: &str) -> String {
    if text.ends_with(['.', '!', '?']) { text.to_owned() } else { format!("{text}.") }
}

/// How the argument is written: `-o, --output <FORMAT>`, `<DIR>`, `[PLAN]`.
fn spelling(arg: &Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|n| n.first())
        .map_or_else(|| arg.get_id().to_string().to_uppercase(), ToString::to_string);
    if arg.is_positional() {
        return if arg.is_required_set() { format!("<{value}>") } else { format!("[{value}]") };
    }
    let mut names = Vec::new();
    if let Some(s) = arg.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = arg.get_long() {
        names.push(format!("--{l}"));
    }
    for alias in arg.get_visible_aliases().unwrap_or_default() {
        names.push(format!("--{alias}"));
    }
    let mut s = names.join(", ");
    if arg.get_num_args().is_some_and(|n| n.takes_values()) {
        let _ = write!(s, " <{value}>");
    }
    if matches!(arg.get_action(), ArgAction::Count) {
        s.push_str("...");
    }
    s
}

/// Whether the argument is shown (not `hide`).
fn visible(arg: &Arg) -> bool {
    !arg.is_hide_set()
}

/// `--help` and `--version`, which every command has.
fn is_builtin(arg: &Arg) -> bool {
    matches!(
        arg.get_action(),
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
    )
}

/// The command's full description.
fn about(cmd: &clap::Command) -> String {
    cmd.get_long_about().or_else(|| cmd.get_about()).map(ToString::to_string).unwrap_or_default()
}

/// The command's first sentence or paragraph, for an index.
fn first_line(cmd: &clap::Command) -> String {
    cmd.get_about().map(ToString::to_string).unwrap_or_default()
}

/// Text on one line.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text with each paragraph on one line, paragraphs kept apart.
fn collapse_paragraphs(text: &str) -> String {
    text.split("\n\n").map(collapse).filter(|p| !p.is_empty()).collect::<Vec<_>>().join("\n\n")
}

/// GitHub's anchor of a heading: lowercase, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_has_a_section_and_a_man_page() {
        let reference = cli_reference();
        let dir = std::env::temp_dir().join(format!("mip-man-{}", std::process::id()));
        let pages = write_man_pages(&dir).expect("pages written");
        let mut index = Vec::new();
        let root = built();
        collect(&root, &mut index);
        for cmd in &index[1..] {
            let name = cmd.get_bin_name().expect("bin name");
            assert!(reference.contains(&format!("\n## {name}\n")), "no section for `{name}`");
            let page = dir.join(format!("{}.1", name.replace(' ', "-")));
            assert!(pages.contains(&page), "no man page {}", page.display());
        }
        assert!(!reference.contains("## mip docs"), "the hidden command stays out of the reference");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn anchors_follow_github() {
        assert_eq!(anchor("mip state list"), "mip-state-list");
        assert_eq!(anchor("Cluster and state options"), "cluster-and-state-options");
    }
}
