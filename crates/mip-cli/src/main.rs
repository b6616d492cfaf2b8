//! `mip`: the command-line front end. Thin: each command parses its flags, calls one
//! function of `mip_engine::ops`, and hands the result to a view (`views`). Data goes to
//! stdout, diagnostics and logs to stderr, and every exit code comes from [`exit::ExitStatus`].

mod cli;
mod doctor;
mod edit;
mod exit;
mod live;
mod render;
mod store;
mod views;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use cli::{Cli, Command, GraphFormat, OutputFormat};
use exit::ExitStatus;
use mip_engine::ops::{self, LoadOptions};
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
            if views::is_broken_pipe(&e) {
                return ExitStatus::Success.into();
            }
            views::error(&e);
            ExitStatus::Error.into()
        }
    }
}

pub(crate) fn load(inv: &cli::InventoryArgs) -> anyhow::Result<Result<ops::Loaded, ExitStatus>> {
    let opts = LoadOptions { inventory: inv.inventory.clone(), revision: inv.revision.clone() };
    match ops::load(&opts) {
        Ok(loaded) => {
            views::diagnostics(&loaded.warnings);
            Ok(Ok(loaded))
        }
        Err(ops::Error::Invalid(diags)) => {
            views::diagnostics(&diags);
            views::note(&format!(
                "{} error(s) in `{}`; nothing was written",
                diags.error_count(),
                opts.inventory.display()
            ));
            Ok(Err(ExitStatus::Error))
        }
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    views::set_verbosity(cli.verbose);
    match cli.command {
        Command::Validate { inv, output, branch_check, branch, tree } => {
            let loaded = match load(&inv)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            if branch_check {
                let status = render::branch_check(&loaded, &inv, branch.as_deref(), tree.as_deref())?;
                if status != ExitStatus::Success {
                    return Ok(status);
                }
            }
            views::stdout(&views::validate(&loaded, output))?;
            exit_without_freeing(loaded);
            Ok(ExitStatus::Success)
        }
        Command::Render { dir, inv, check } => render::render(&inv, &dir, check),
        Command::Graph { inv, format } => {
            let loaded = match load(&inv)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let text = match format {
                GraphFormat::Dot => mip_graph::render::dot(&loaded.desired, &loaded.dag),
                GraphFormat::Mermaid => mip_graph::render::mermaid(&loaded.desired, &loaded.dag),
                GraphFormat::Json => mip_graph::render::json(&loaded.desired, &loaded.dag),
            };
            views::stdout(&text)?;
            exit_without_freeing((loaded, text));
            Ok(ExitStatus::Success)
        }
        Command::Plan { inv, cluster, offline, output, out, detailed_exitcode, markdown_budget } => {
            let mut loaded = match load(&inv)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            loaded.release_argo_models();
            let plan = if offline {
                let dir = match store::backend(&cluster, loaded.inventory.state.as_ref()) {
                    store::Backend::Local(dir) => dir,
                    store::Backend::Cluster(..) => {
                        views::note(
                            "error: `--offline` cannot read a state kept in the cluster (hint: drop `--offline`, or plan against a local copy with `--state-backend local --state-dir DIR` after `mip state migrate --from cluster --to local`)",
                        );
                        return Ok(ExitStatus::Error);
                    }
                };
                let snapshot = match mip_state::SledStore::open_read_only(&dir) {
                    Ok(s) => s,
                    Err(e) => return Ok(live::fail(&mip_engine::live::LiveError::State(e))),
                };
                match snapshot {
                    Some(s) => ops::plan_against(&loaded, &ops::prior_from(&s)),
                    None => ops::plan_offline(&loaded),
                }
            } else {
                match live::plan(&inv, &cluster, &loaded)? {
                    Ok(p) => p,
                    Err(code) => return Ok(code),
                }
            };
            if let Some(path) = &out {
                let bytes = mip_plan::planfile::to_bytes(&plan).context("failed to serialise the plan")?;
                views::write_private_file(path, &bytes)
                    .with_context(|| format!("failed to write plan file `{}`", path.display()))?;
                views::note(&format!("saved the plan to `{}`", path.display()));
            }
            let text = match output {
                OutputFormat::Text => {
                    views::stream_stdout(|mut w| mip_plan::render::write_text(&plan, &mut w))?;
                    String::new()
                }
                OutputFormat::Json => mip_plan::render::json(&plan),
                OutputFormat::Markdown => mip_plan::render::markdown(&plan, markdown_budget),
            };
            views::stdout(&text)?;
            let changes = plan.summary.has_changes();
            exit_without_freeing((loaded, plan, text));
            Ok(if detailed_exitcode && changes { ExitStatus::Changes } else { ExitStatus::Success })
        }
        Command::Apply {
            plan,
            inv,
            cluster,
            auto_approve,
            parallelism,
            wait_timeout,
            rotate,
            force_conflicts,
        } => live::apply(&live::ApplyArgs {
            force_conflicts,
            plan_file: plan.as_deref(),
            inv: &inv,
            cluster: &cluster,
            auto_approve,
            parallelism,
            wait_timeout,
            rotate: &rotate,
        }),
        Command::Drift { inv, cluster, output } => live::drift(&inv, &cluster, output),
        Command::Destroy { inv, cluster, auto_approve, include_protected } => {
            live::destroy(&inv, &cluster, auto_approve, include_protected)
        }
        Command::State { command } => live::state(&command),
        Command::Federation { command } => edit::federation(command),
        Command::Cluster { command } => edit::cluster(command),
        Command::Doctor { inv, cluster, output } => doctor::doctor(&inv, &cluster, output),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mip", &mut buf);
            views::stdout(&String::from_utf8_lossy(&buf))?;
            Ok(ExitStatus::Success)
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut buf)
                .context("failed to render the man page")?;
            views::stdout(&String::from_utf8_lossy(&buf))?;
            Ok(ExitStatus::Success)
        }
    }
}

/// The process is about to exit: the operating system reclaims the memory of a large desired
/// state at once, while freeing its hundreds of thousands of allocations one by one took about
/// a quarter of a 10 000-federation offline plan.
fn exit_without_freeing<T>(value: T) {
    std::mem::forget(value);
}
