//! Benchmarks of mip against kubectl, on the real test cluster (issue 8).
//!
//! Its parts, one per job:
//!
//! - [`generate`]: a synthetic inventory with N local federations, each running `exareme2` and
//!   `mip-stack` (so each has a namespace, `keycloak-credentials` and `mip-secret`), plus the
//!   four common apps and the reference RBAC prerequisite. It is written as real inventory YAML,
//!   so the benchmark exercises the real parser.
//! - [`emit`]: exactly the mip-owned objects of the offline plan of an inventory, in plan order,
//!   as one multi-document YAML for `kubectl`, with deterministic dummy values in the Secrets.
//!   kubectl is given the same objects as mip, in an order that works from an empty cluster
//!   (namespaces before what lives in them).
//! - [`run`]: the benchmark itself (`mip-bench run`): dedicated test clusters, pairwise
//!   interleaved mip/kubectl measurements, and the report ([`report`]) written to
//!   `docs/benchmarks.md` and `docs/benchmarks.svg`.
//! - [`compare`]: two builds of mip in the same lock step (`mip-bench compare`), the ratio
//!   new ÷ old per pair, printed as a Markdown table.
//! - [`argocd`]: the time to a Healthy platform with real Argo CD and simulated nodes (`mip-bench
//!   argocd`): mip against the scripted README procedure and Argo CD's floor; and
//!   [`argocd_refresh`]: Argo CD's reaction with and without mip's refresh.
//!
//! Benchmarks are not tests: nothing here asserts a timing. The smoke tests check that the
//! generator and the emitter produce what the parsers accept, and run `compare` at N = 2 with two
//! stub builds on real clusters (turn order, one cluster per build and repetition).
//!
//! # Example
//! ```no_run
//! let dir = tempfile::tempdir()?;
//! let inventory = mip_bench::generate::write(dir.path(), 2)?;
//! let yaml = mip_bench::emit::objects(&inventory)?;
//! assert!(yaml.contains("kind: Namespace"));
//! # Ok::<(), anyhow::Error>(())
//! ```
#![deny(missing_docs)]

pub mod argocd;
pub mod argocd_refresh;
pub mod compare;
pub mod emit;
pub mod generate;
pub mod measure;
pub mod report;
pub mod run;
pub mod stats;
