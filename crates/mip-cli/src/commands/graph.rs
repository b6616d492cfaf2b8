//! `mip graph` (the operation is `mip_engine::ops::graph`).

use crate::cli::{GraphFormat, InventoryArgs};
use crate::env::Progress;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::ops::graph::{self, GraphRequest};

/// Draws the dependency graph.
///
/// # Errors
/// Load and IO errors.
pub fn run(inv: &InventoryArgs, format: GraphFormat) -> Result<ExitStatus, CliError> {
    let format = match format {
        GraphFormat::Dot => graph::GraphFormat::Dot,
        GraphFormat::Mermaid => graph::GraphFormat::Mermaid,
        GraphFormat::Json => graph::GraphFormat::Json,
    };
    let drawn = graph::graph(&GraphRequest { load: super::load_options(inv), format }, &Progress::default())?;
    views::stdout(&drawn.text)?;
    super::exit_without_freeing(drawn);
    Ok(ExitStatus::Success)
}
