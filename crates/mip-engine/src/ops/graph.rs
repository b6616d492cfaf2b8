//! `mip graph`: the dependency graph of the inventory's desired state, drawn.

use super::load;
use crate::Error;
use crate::load::{LoadOptions, Loaded};
use crate::seams::Hook;

/// How to draw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// JSON nodes and edges.
    Json,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    /// The inventory.
    pub load: LoadOptions,
    /// The drawing format.
    pub format: GraphFormat,
}

/// The drawing.
#[derive(Debug)]
pub struct Drawn {
    /// The graph in the format asked for.
    pub text: String,
    /// The inventory it was drawn from (the caller decides when to free it: a large desired
    /// state is faster left to the process's exit).
    pub loaded: Loaded,
}

/// Draws the dependency graph (edges mean "after").
///
/// # Errors
/// The load errors.
pub fn graph(req: &GraphRequest, hook: &dyn Hook) -> Result<Drawn, Error> {
    let loaded = load(&req.load, hook)?;
    let text = match req.format {
        GraphFormat::Dot => mip_graph::render::dot(&loaded.desired, &loaded.dag),
        GraphFormat::Mermaid => mip_graph::render::mermaid(&loaded.desired, &loaded.dag),
        GraphFormat::Json => mip_graph::render::json(&loaded.desired, &loaded.dag),
    };
    Ok(Drawn { text, loaded })
}
