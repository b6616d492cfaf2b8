//! From inventory to desired state and its order.
//!
//! [`resolve`] turns a parsed [`Inventory`](mip_inventory::Inventory) (plus the documents of its
//! prerequisite files) into a [`Desired`] state of two layers:
//! - objects **mip owns** and applies with server-side apply: the locked-down `default`
//!   project, the bootstrap project, repository and cluster credentials, prerequisites,
//!   namespaces and secrets, and the two root Applications; on remote clusters, what
//!   registering them takes ([`register`]) and the Submariner join of hybrid federations'
//!   remote nodes ([`remote_node`]);
//! - objects **Argo CD generates** from Git (AppProjects, ApplicationSets, Applications),
//!   which mip expects and waits for but never writes (one owner per object).
//!
//! Names match what the reference ApplicationSet templates produce ([`catalogue`], with the
//! [`StaticProject`](catalogue::StaticProject)s). [`Dag::build`] orders everything with named
//! [`Rule`]s (an edge `a → b` means `b` after `a`), [`validate()`] runs the checks Argo CD's
//! API would make but server-side apply skips, [`permit`] decides what an AppProject permits
//! with Argo CD's own matching (also used by `mip doctor` on live projects), and [`render`]
//! draws the graph. Everything here is pure and deterministic: no IO, no cluster.
//!
//! # Example
//! ```
//! # let text = "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: argocd}\nrevision: main\nrepositories:\n  infra: {url: 'https://example.org/infra.git'}\n  deployments: {url: 'https://example.org/infra.git'}\n";
//! let inv = mip_inventory::parse("mip.yaml", text).expect("valid").inventory;
//! let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("resolves");
//! let dag = mip_graph::Dag::build(&desired.objects).expect("acyclic");
//! assert_eq!(dag.order().next().expect("objects").name, "default"); // the lock-down comes first
//! ```
#![deny(missing_docs)]

pub mod catalogue;
mod dag;
mod model;
pub mod permit;
pub mod register;
pub mod remote_node;
pub mod render;
mod resolve;
mod validate;

/// A hashed table for lookups by address or name over tens of thousands of objects, where a
/// B-tree compares up to six strings per step. Never iterated into anything that is shown,
/// written or hashed (the house rule `clippy.toml` enforces for `HashMap`): what comes out is
/// sorted first.
/// Hashed with foldhash: std's SipHash was a tenth of the DAG's time.
#[allow(clippy::disallowed_types)]
pub type Lookup<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The set form of [`Lookup`], for membership only (same rule: never iterated into output).
#[allow(clippy::disallowed_types)]
pub type LookupSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

pub use dag::{CycleError, Dag, Edge, Rule, rule_edges};
pub use model::{
    AppModel, AppSource, ArgoModel, Desired, DesiredObject, Manifest, ResolveOptions, Step, WAVE_ANNOTATION,
};
pub use resolve::resolve;
pub use validate::validate;
