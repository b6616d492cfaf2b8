//! `mip plan`.

use crate::cli::{ClusterArgs, InventoryArgs, OutputFormat};
use crate::env::{Parts, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::ops::plan::{PlanRequest, Planned, plan};
use std::path::PathBuf;

/// The flags of `mip plan`.
pub struct Args<'a> {
    /// Inventory.
    pub inv: &'a InventoryArgs,
    /// Cluster and state.
    pub cluster: &'a ClusterArgs,
    /// `--offline`.
    pub offline: bool,
    /// `--output`.
    pub output: OutputFormat,
    /// `--out FILE`.
    pub out: Option<PathBuf>,
    /// `--detailed-exitcode`.
    pub detailed_exitcode: bool,
    /// `--markdown-budget`.
    pub markdown_budget: usize,
}

/// Plans and shows the plan.
///
/// # Errors
/// The engine's errors; IO errors writing stdout.
pub fn run(a: &Args<'_>) -> Result<ExitStatus, CliError> {
    let parts = Parts::new(a.cluster);
    let req = PlanRequest { load: super::load_options(a.inv), offline: a.offline, out: a.out.clone() };
    let Planned { loaded, plan } = runtime()?.block_on(plan(&parts.env(), &req))?;
    if let Some(path) = &a.out {
        views::note(&format!("saved the plan to `{}`", path.display()));
    }
    let text = match a.output {
        OutputFormat::Text => {
            views::stream_stdout(|mut w| mip_plan::render::write_text(&plan, &mut w))?;
            String::new()
        }
        OutputFormat::Json => mip_plan::render::json(&plan),
        OutputFormat::Markdown => mip_plan::render::markdown(&plan, a.markdown_budget),
    };
    views::stdout(&text)?;
    let changes = plan.summary.has_changes();
    super::exit_without_freeing((loaded, plan, text));
    Ok(if a.detailed_exitcode && changes { ExitStatus::Changes } else { ExitStatus::Success })
}
