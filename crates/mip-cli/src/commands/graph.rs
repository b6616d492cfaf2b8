//! `mip graph`.

use crate::cli::{GraphFormat, InventoryArgs};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;

/// Draws the dependency graph.
///
/// # Errors
/// Load and IO errors.
pub fn run(inv: &InventoryArgs, format: GraphFormat) -> Result<ExitStatus, CliError> {
    let loaded = super::load(inv)?;
    let text = match format {
        GraphFormat::Dot => mip_graph::render::dot(&loaded.desired, &loaded.dag),
        GraphFormat::Mermaid => mip_graph::render::mermaid(&loaded.desired, &loaded.dag),
        GraphFormat::Json => mip_graph::render::json(&loaded.desired, &loaded.dag),
    };
    views::stdout(&text)?;
    super::exit_without_freeing((loaded, text));
    Ok(ExitStatus::Success)
}
