//! The engine of mip: runs every command. The CLI parses flags, calls one operation of
//! [`ops`], renders its typed outcome and maps its [`Error`]'s [`Class`] to an exit code.
//!
//! - [`load`]: the inventory read and handed to the pure stages (`mip-inventory` →
//!   `mip-graph` → `mip-plan`); the offline plan.
//! - [`ops`]: one operation per command (plan, apply, destroy, drift, doctor, state, render,
//!   validate, graph, apps, the inventory edits, import, init). Each checks
//!   local inputs first, then connects, chooses the state backend ([`backend`]), takes the lock,
//!   asks for confirmation through [`seams::Confirm`] and writes the state.
//! - [`live`]: the stages that talk to a cluster through the `Cluster` seam: read, live plan,
//!   the apply scheduler, drift, destroy plan, state rebuild.
//! - [`seams`]: what a caller provides (connection, secret sources, confirmation, progress).
//! - [`fake`]: an in-memory `Cluster` for fast unit tests of the scheduler and the operations;
//!   with the `test-support` feature (always in the engine's own tests), `fake::connector`: a
//!   fake `Connector` over it and an in-memory state backend with a lock, for the operations.
//!
//! The engine never prints.
//!
//! # Example
//! ```no_run
//! let opts = mip_engine::load::LoadOptions { inventory: "examples/minimal/mip.yaml".into(), revision: None };
//! let loaded = mip_engine::load::load(&opts).expect("valid inventory");
//! let plan = mip_engine::load::plan_offline(&loaded);
//! assert!(plan.summary.create > 0);
//! ```
#![deny(missing_docs)]
// One error type for every operation (the exit-code class is on it); an error ends a command,
// it is never on a hot path, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod backend;
pub mod doctor;
mod error;
pub mod fake;
pub mod live;
pub mod load;
pub mod ops;
pub mod seams;

pub use error::{Class, Error, forbidden_hint};
