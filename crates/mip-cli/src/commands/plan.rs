//! `mip plan`: against the cluster, offline against the state, or (`--base`,
//! `--base-inventory`) what a change of the inventory does, for pull requests.

use crate::cli::{MarkdownArgs, OutputFormat, PlanArgs};
use crate::env::{Parts, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::ops::Plan;
use mip_engine::ops::plan::{PlanRequest, Planned, plan};
use mip_engine::ops::plan_views::{self, CiContext, MarkdownOptions};
use mip_engine::ops::review::{Base, ReviewRequest, review};

/// Plans and shows the plan. With `--output markdown`, a failed plan is shown as a comment on
/// stdout too (the error still goes to stderr and sets the exit code).
///
/// # Errors
/// The engine's errors; IO errors writing stdout.
pub fn run(a: &PlanArgs) -> Result<ExitStatus, CliError> {
    let planned = planned(a);
    let Planned { loaded, plan } = match planned {
        Ok(p) => p,
        Err(e) => {
            if a.output == OutputFormat::Markdown {
                views::stdout(&failure_comment(&e))?;
            }
            return Err(e);
        }
    };
    if let Some(path) = &a.out {
        views::note(&format!("saved the plan to `{}`", path.display()));
    }
    if !plan.targets.is_empty() {
        views::note(&format!("warning: {}", mip_engine::ops::apply::TARGET_WARNING));
    }
    let changes = plan.summary.changes_anything();
    show(&plan, a.output, &a.markdown)?;
    super::exit_without_freeing((loaded, plan));
    Ok(if a.detailed_exitcode && changes { ExitStatus::Changes } else { ExitStatus::Success })
}

fn planned(a: &PlanArgs) -> Result<Planned, CliError> {
    let load = super::load_options(&a.inv);
    let base = match (&a.base, &a.base_inventory) {
        (Some(rev), _) => Some(Base::Git(rev.clone())),
        (None, Some(file)) => Some(Base::File(file.clone())),
        (None, None) => None,
    };
    if let Some(base) = base {
        let req = ReviewRequest { load, base, targets: a.targets.clone(), out: a.out.clone() };
        return Ok(review(&req)?);
    }
    let parts = Parts::new(&a.cluster);
    let req = PlanRequest { load, offline: a.offline, out: a.out.clone(), targets: a.targets.clone() };
    Ok(runtime()?.block_on(plan(&parts.env(), &req))?)
}

/// The Markdown options of a command, with the commit and CI run from the environment.
pub fn markdown_options(m: &MarkdownArgs) -> MarkdownOptions {
    MarkdownOptions { budget: m.markdown_budget, mermaid: m.mermaid, ci: ci() }
}

fn ci() -> CiContext {
    CiContext::from_vars(|k| std::env::var(k).ok())
}

/// Prints a plan in one of the three views.
///
/// # Errors
/// IO errors writing stdout.
pub fn show(plan: &Plan, output: OutputFormat, markdown: &MarkdownArgs) -> Result<(), CliError> {
    match output {
        OutputFormat::Text => views::stream_stdout(|mut w| plan_views::write_text(plan, &mut w))?,
        OutputFormat::Json => views::stdout(&plan_views::json(plan))?,
        OutputFormat::Markdown => {
            views::stdout(&plan_views::markdown(plan, &markdown_options(markdown)))?;
        }
    }
    Ok(())
}

/// A failed plan as a pull-request comment: the same lines as on stderr.
fn failure_comment(e: &CliError) -> String {
    let details: Vec<String> = e.diagnostics.iter().flat_map(|d| d.iter().map(ToString::to_string)).collect();
    plan_views::markdown_failure(&e.message, &details, e.hint.as_deref(), &ci())
}
