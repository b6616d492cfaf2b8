//! `mip init [FILE]`: a starter inventory for a newcomer. On a terminal it asks for what no
//! flag gives (the Argo CD namespace, the repositories, a first federation), with defaults;
//! in scripts the flags and defaults are used. `--from-tree DIR` imports a checkout instead.

use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::ops::init::{Answers, Source};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

/// The flags of `mip init`.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    /// Where to write.
    pub out: &'a Path,
    /// Overwrite an existing file.
    pub force: bool,
    /// Import this checkout instead.
    pub from_tree: Option<&'a Path>,
    /// `--argocd-namespace`.
    pub argocd_namespace: Option<&'a str>,
    /// `--infra-repo`.
    pub infra_repo: Option<&'a str>,
    /// `--deployments-repo`.
    pub deployments_repo: Option<&'a str>,
    /// `--federation`.
    pub federation: Option<&'a str>,
}

/// Asks on the terminal, showing the default; an empty answer keeps it.
#[expect(clippy::print_stderr, reason = "a prompt goes to stderr, without a newline")]
fn ask(question: &str, default: &str) -> String {
    eprint!("{question} [{default}]: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(n) if n > 0 && !line.trim().is_empty() => line.trim().to_owned(),
        _ => default.to_owned(),
    }
}

/// Runs `mip init`.
///
/// # Errors
/// The engine's: the file exists (without `--force`), the answers make an invalid inventory,
/// the checkout cannot be imported.
pub fn run(a: &Args<'_>) -> Result<ExitStatus, CliError> {
    let source = match a.from_tree {
        Some(dir) => Source::Tree(dir.to_path_buf()),
        None => {
            let d = Answers::default();
            let interactive = std::io::stdin().is_terminal();
            let pick = |flag: Option<&str>, question: &str, default: &str| match flag {
                Some(v) => v.to_owned(),
                None if interactive => ask(question, default),
                None => default.to_owned(),
            };
            let infra = pick(a.infra_repo, "Infra repository (base/, projects/, common/)", &d.infra_repo);
            Source::Answers(Answers {
                argocd_namespace: pick(a.argocd_namespace, "Argo CD namespace", &d.argocd_namespace),
                deployments_repo: pick(a.deployments_repo, "Deployments repository (deployments/)", &infra),
                infra_repo: infra,
                federation: pick(a.federation, "First federation (its directory name)", &d.federation),
            })
        }
    };
    let done = mip_engine::ops::init::init(a.out, &source, a.force)?;
    for line in &done.report {
        views::note(&format!("note: {line}"));
    }
    views::note(&format!(
        "wrote `{}`; next: `mip validate -i {0}`, `mip render tree -i {0}`, `mip plan -i {0}`",
        done.path.display()
    ));
    Ok(ExitStatus::Success)
}
