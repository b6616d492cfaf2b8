//! The live stages: read the cluster, plan against it, apply a plan, detect drift, destroy,
//! rebuild the state.
//!
//! Generic over [`Cluster`](mip_core::cluster::Cluster) (implemented by `mip-kube`, and by
//! [`crate::fake::FakeCluster`] in unit tests) and over any `StateStore`. Reports progress
//! through [`Hook`](crate::seams::Hook); never prints. The commands that use these stages are
//! in [`crate::ops`].

pub mod clusters;
pub mod destroy;
pub mod drift;
pub mod gates;
mod outcome;
pub mod plan;
pub mod read;
pub mod ready;
pub mod rebuild;
pub mod scheduler;
pub mod secrets;
mod wait;

pub use clusters::Clusters;
pub use destroy::{destroy_plan, is_protected, kept_protected};
pub use drift::{Drift, DriftItem, drift_of};
pub use gates::NotReady;
pub use outcome::{ApplyOpts, ApplyOutcome, Failure, Interrupt};
pub use plan::plan_live;
pub use read::{check_fresh, check_guard, read_live};
pub use ready::{Readiness, WaitFor, readiness};
pub use rebuild::rebuild_state;
pub use scheduler::{apply, wait_ready};
