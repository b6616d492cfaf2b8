//! The ops layer of mip: every command is a thin wrapper around one function of [`ops`].
//!
//! This is the only place (with the CLI) that reads files; it hands bytes to the pure stages
//! (`mip-inventory` → `mip-graph` → `mip-plan`) and returns typed results. It never prints:
//! the CLI renders results and diagnostics.
//!
//! # Example
//! ```no_run
//! let opts = mip_engine::ops::LoadOptions { inventory: "examples/minimal/mip.yaml".into(), revision: None };
//! let loaded = mip_engine::ops::load(&opts).expect("valid inventory");
//! let plan = mip_engine::ops::plan_offline(&loaded);
//! assert!(plan.summary.create > 0);
//! ```
#![deny(missing_docs)]

pub mod doctor;
pub mod live;
pub mod ops;
