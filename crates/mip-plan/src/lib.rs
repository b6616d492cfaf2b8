//! Plans: what mip will do to reach the inventory's desired state, in order, and why.
//!
//! - [`plan()`] compares a desired state with what the state store remembers (the offline
//!   plan) and lists, in DAG order, a [`Change`] per mip-owned object plus an
//!   [`Expectation`] per object Argo CD will generate.
//! - [`planfile`] writes and reads the saved plan: versioned, sha256 over canonical bytes,
//!   refusing a tampered file.
//! - [`review`] compares two inventories (a pull request's base and head) without a cluster;
//!   [`safety`] holds the checks of review safety (protected deletions, `--target`).
//! - [`render`] shows a plan as text, JSON (the `format_version`ed contract) or Markdown.
//!
//! Pure: no IO, no clock, no randomness; equal inputs give byte-identical output. Secret
//! values never enter a plan: sensitive keys carry only where the value comes from.
//!
//! # Example
//! ```
//! # let text = "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: argocd}\nrevision: main\nrepositories:\n  infra: {url: 'https://example.org/infra.git'}\n  deployments: {url: 'https://example.org/infra.git'}\n";
//! let inv = mip_inventory::parse("mip.yaml", text).expect("valid").inventory;
//! let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("resolves");
//! let dag = mip_graph::Dag::build(&desired.objects).expect("acyclic");
//! let input = mip_plan::PlanInput { inventory: "mip.yaml", inventory_digest: "sha256:00".into(), mode: mip_plan::Mode::Offline, mip_version: "0.1.0" };
//! let plan = mip_plan::plan(&desired, &dag, &Default::default(), &input);
//! assert!(plan.summary.create > 0);
//! assert!(mip_plan::render::text(&plan).contains("to create"));
//! ```
#![deny(missing_docs)]

pub mod argo;
mod build;
pub mod diff;
mod model;
pub mod planfile;
pub mod render;
pub mod review;
pub mod safety;

pub use build::{
    LiveView, PlanInput, adopts, assemble, base64_decode, deletion, fingerprint, plan, plan_live,
};
pub use model::*;
