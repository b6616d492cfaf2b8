//! The shared vocabulary of `mip`, with no IO and almost no dependencies.
//!
//! Every other crate speaks in these types, so that an object is named the same way in a
//! diagnostic, a plan file, a state key and a `--target` flag:
//!
//! - [`ObjectRef`]: the one address type of an object (`cluster:group/version/Kind/ns/name`).
//! - [`Action`]: what a plan does to an object, with its fixed symbol and JSON name.
//! - [`Owner`]: who writes an object (mip with server-side apply, or Argo CD from Git).
//! - [`Diagnostic`] and [`Location`]: problems found in user input, with `file:line:column`.
//! - [`canonical`]: canonical JSON bytes and sha256 digests, the basis of plan hashes and
//!   fingerprints; everything hashed is deterministic by construction.
//! - [`Sensitive`]: the marker for values that must never be shown.
//! - [`cluster::Cluster`]: the seam to a Kubernetes API server (implemented by `mip-kube`).
//!
//! What this crate does *not* do: talk to a cluster, read files, print.
//!
//! # Example
//! ```
//! use mip_core::ObjectRef;
//! let addr: ObjectRef = "argoproj.io/v1alpha1/AppProject/argocd-mip-team/default".parse()?;
//! assert_eq!(addr.kind, "AppProject");
//! assert_eq!(addr.to_string(), "argoproj.io/v1alpha1/AppProject/argocd-mip-team/default");
//! # Ok::<(), mip_core::AddressError>(())
//! ```
#![deny(missing_docs)]

mod action;
mod address;
pub mod canonical;
pub mod cluster;
mod diagnostic;
mod sensitive;

pub use action::{Action, Owner};
pub use address::{AddressError, ObjectRef};
pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use sensitive::{Sensitive, SensitiveSource};

/// The Kubernetes API server address Argo CD uses for the cluster it runs in.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";

/// The field manager mip uses for server-side apply; diffs compare only the fields it owns.
pub const FIELD_MANAGER: &str = "mip";

/// Label put on every object mip owns, so state can be rebuilt from the cluster.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
