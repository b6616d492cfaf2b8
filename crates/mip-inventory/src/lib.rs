//! Reads a federation inventory: one YAML file that describes a whole MIP platform.
//!
//! [`parse`] is pure (text in, typed [`Inventory`] or diagnostics out) and strict where the
//! user writes: unknown keys, wrong types, duplicates (also names that only differ in case,
//! since `federation-A` lowers to `federation-a`), invalid Kubernetes names and dangling
//! references are all reported in one run, each with `file:line:column` and a hint. It never
//! panics, whatever the input (see the `inventory` fuzz target).
//!
//! Parsing has three steps, each in its own module: [`yaml`] turns text into a located tree
//! (only YAML syntax errors stop there; the common subset is read from the parser's events in
//! `yaml_events`, the rest by serde-saphyr), `decode` reads the tree into the [`model`] collecting
//! every local problem, and `check` reports what spans sections (duplicates, references).
//!
//! The file format is specified in docs/inventory.md; it is versioned by
//! `apiVersion: mip.ebrains.eu/v1alpha1`.
//!
//! # Example
//! ```
//! let text = r#"
//! apiVersion: mip.ebrains.eu/v1alpha1
//! kind: Inventory
//! argocd: {namespace: argocd-mip-team}
//! revision: main
//! repositories:
//!   infra: {url: "https://github.com/Medical-Informatics-Platform/mip-infra.git"}
//!   deployments: {url: "https://github.com/Medical-Informatics-Platform/mip-infra.git"}
//! federations:
//!   - {name: federation-A, kind: local, apps: [{name: exareme2}]}
//! "#;
//! let parsed = mip_inventory::parse("mip.yaml", text).expect("valid");
//! assert_eq!(parsed.inventory.federations[0].k8s_name(), "federation-a");
//! ```
#![deny(missing_docs)]

pub mod apps;
mod check;
mod decode;
mod decoder;
pub mod edit;
mod located;
pub mod model;
pub mod names;
pub mod projects;
mod secret;
mod spelling;
pub mod yaml;
mod yaml_events;

use mip_core::Diagnostics;
pub use model::*;

/// A valid inventory with its warnings.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The inventory.
    pub inventory: Inventory,
    /// Warnings (never errors).
    pub warnings: Diagnostics,
}

/// Parses and checks an inventory. `file` is only used in locations.
///
/// # Errors
/// Every problem found, sorted by location, when there is at least one error.
pub fn parse(file: &str, text: &str) -> Result<Parsed, Diagnostics> {
    let root = match yaml::parse_document(file, text) {
        Ok(root) => root,
        Err(d) => return Err(std::iter::once(d).collect()),
    };
    let mut decoder = decoder::Decoder::new(file);
    let inventory = decoder.inventory(&root);
    let mut diags = decoder.diags;
    if let Some(inv) = &inventory {
        diags.extend(check::check(inv));
    }
    let diags = diags.sorted();
    match inventory {
        Some(inventory) if !diags.has_errors() => Ok(Parsed { inventory, warnings: diags }),
        _ => Err(diags),
    }
}
