//! `mip`: the command-line front end. Thin: each command (one module of `commands`) parses its
//! flags, calls one operation of `mip_engine::ops`, and renders the outcome (`views`). Data goes
//! to stdout, diagnostics and logs to stderr, and every exit code comes from
//! [`exit::ExitStatus`]; a failed command is a [`error::CliError`].

mod cli;
mod commands;
mod contract;
mod docs;
mod duration;
mod env;
mod error;
mod exit;
mod logging;
mod metrics;
mod signals;
mod views;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use error::CliError;
use exit::ExitStatus;
use std::process::ExitCode;

/// See `Cargo.toml`: mimalloc hands freed pages back and fragments less than glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A panic message could quote data mip holds in memory, secret values included: print
    // where it happened, never the payload.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map_or_else(|| "an unknown place".to_owned(), ToString::to_string);
        views::note(&format!(
            "internal error: mip panicked at {at}; the message is withheld because it could contain a secret value (hint: please report this with the command you ran)"
        ));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { ExitStatus::Error } else { ExitStatus::Success };
            let _ = e.print();
            return code.into();
        }
    };
    match run(cli) {
        Ok(status) => status.into(),
        Err(e) => {
            e.print();
            e.status.into()
        }
    }
}

fn run(cli: Cli) -> Result<ExitStatus, CliError> {
    views::set_verbosity(cli.verbose);
    logging::init(cli.verbose, cli.log_format);
    match cli.command {
        Command::Validate { inv, output, branch_check, branch, tree } => {
            commands::validate::run(&inv, output, branch_check, branch.as_deref(), tree.as_deref())
        }
        Command::Render { dir, inv, check, adopt } => commands::render::render(&inv, &dir, check, adopt),
        Command::Graph { inv, format } => commands::graph::run(&inv, format),
        Command::Plan(args) => commands::plan::run(&args),
        Command::Show(args) => commands::show::run(&args),
        Command::Apply(args) => commands::apply::run(&args),
        Command::Drift { inv, cluster, output, mip_only, push } => {
            commands::drift::run(&inv, &cluster, output, mip_only, &push)
        }
        Command::Destroy { inv, cluster, auto_approve, include_protected, wait_timeout } => {
            commands::destroy::run(&inv, &cluster, auto_approve, include_protected, wait_timeout)
        }
        Command::State { command } => commands::state::run(&command),
        Command::Apps { command } => commands::apps::run(&command),
        Command::Import { dir, out, deprecated_out } => {
            if deprecated_out.is_some() {
                views::note("note: `mip import -o FILE` is deprecated: use `--out FILE`");
            }
            commands::import::run(&dir, out.or(deprecated_out).as_deref())
        }
        Command::Init {
            file,
            force,
            from_tree,
            argocd_namespace,
            infra_repo,
            deployments_repo,
            federation,
        } => commands::init::run(&commands::init::Args {
            out: &file,
            force,
            from_tree: from_tree.as_deref(),
            argocd_namespace: argocd_namespace.as_deref(),
            infra_repo: infra_repo.as_deref(),
            deployments_repo: deployments_repo.as_deref(),
            federation: federation.as_deref(),
        }),
        Command::Federation { command } => commands::edit::federation(command),
        Command::Cluster { command } => commands::edit::cluster(command),
        Command::Doctor { inv, cluster, output } => commands::doctor::doctor(&inv, &cluster, output),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mip", &mut buf);
            views::stdout(&String::from_utf8_lossy(&buf))?;
            Ok(ExitStatus::Success)
        }
        Command::Man { dir: Some(dir) } => {
            let pages = docs::write_man_pages(&dir).map_err(|e| {
                CliError::new(
                    ExitStatus::Error,
                    format!("failed to write the man pages into `{}`: {e}", dir.display()),
                    None,
                )
            })?;
            views::note(&format!("wrote {} man pages into `{}`", pages.len(), dir.display()));
            Ok(ExitStatus::Success)
        }
        Command::Version { output } => {
            let text = match output {
                cli::DataFormat::Text => format!("mip {}\n", env!("MIP_VERSION_LONG")),
                cli::DataFormat::Json => views::json_document(&contract::VersionInfo::current()),
            };
            views::stdout(&text)?;
            Ok(ExitStatus::Success)
        }
        Command::Docs { command: cli::DocsCommand::Schema { dir } } => {
            let files = contract::write_schemas(&dir).map_err(|e| {
                CliError::new(
                    ExitStatus::Error,
                    format!("failed to write the schemas into `{}`: {e}", dir.display()),
                    None,
                )
            })?;
            views::note(&format!("wrote {} schemas into `{}`", files.len(), dir.display()));
            Ok(ExitStatus::Success)
        }
        Command::Docs { command: cli::DocsCommand::Cli } => {
            views::stdout(&docs::cli_reference())?;
            Ok(ExitStatus::Success)
        }
        Command::Man { dir: None } => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut buf).map_err(|e| {
                CliError::new(ExitStatus::Error, format!("failed to render the man page: {e}"), None)
            })?;
            views::stdout(&String::from_utf8_lossy(&buf))?;
            Ok(ExitStatus::Success)
        }
    }
}
