//! The shared vocabulary of `mip`, with almost no dependencies and no IO but one file write.
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
//! - [`fsio::write_atomic`]: the one atomic file write. It lives here, the crate every other
//!   one depends on, so that the inventory, the rendered tree, plan files and the local state
//!   are all written with the same durability (temporary file, `fsync`, rename, `fsync` of the
//!   directory) and the same handling of modes and symbolic links.
//! - The labels and field manager that mark mip's objects: [`FIELD_MANAGER`],
//!   [`MANAGED_BY_LABEL`], [`MANAGED_BY_VALUE`], [`MANAGED_BY_SELECTOR`].
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
pub mod fsio;
mod sensitive;

pub use action::{Action, Owner};
pub use address::{AddressError, Kind, ObjectRef};
pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use sensitive::{Sensitive, SensitiveSource, argo_cluster_config};

/// The Kubernetes API server address Argo CD uses for the cluster it runs in.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";

/// The field manager mip uses for server-side apply; diffs compare only the fields it owns.
pub const FIELD_MANAGER: &str = "mip";

/// Label put on every object mip owns, so state can be rebuilt from the cluster.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The value of [`MANAGED_BY_LABEL`] on the objects mip owns.
pub const MANAGED_BY_VALUE: &str = "mip";

/// The label selector of the objects mip owns: `MANAGED_BY_LABEL=MANAGED_BY_VALUE`.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=mip";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selector_is_the_label_and_its_value() {
        assert_eq!(MANAGED_BY_SELECTOR, format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
    }
}
