//! The engine's one error type. Every variant says what went wrong, [`Error::hint`] what to do
//! about it, and [`Error::class`] which row of the exit-code table it belongs to; the CLI only
//! renders and maps.

use mip_core::cluster::ClusterError;
use mip_core::{Diagnostics, ObjectRef};

/// How an error ends a command (the CLI maps each class to its exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Bad input, IO, the API server: exit 1.
    Error,
    /// The state lock is held by another run, or was lost: exit 3.
    LockHeld,
    /// A saved plan is stale, for another state, or was tampered with: exit 4.
    StalePlan,
    /// Refused for safety (wrong cluster, not confirmed): exit 6.
    Safety,
}

/// Why a command failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inventory file could not be read.
    #[error("cannot read inventory `{path}`")]
    ReadInventory {
        /// The path.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The inventory, a prerequisite file or the resolved graph has problems (each with its
    /// location and hint).
    #[error("{} error(s) in `{path}`; nothing was written", .diagnostics.error_count())]
    Invalid {
        /// The inventory as given.
        path: String,
        /// Every problem found.
        diagnostics: Diagnostics,
    },
    /// A saved plan could not be read.
    #[error("cannot read plan file `{path}`")]
    ReadPlanFile {
        /// The path.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A saved plan could not be written.
    #[error("cannot write plan file `{path}`")]
    WritePlanFile {
        /// The path.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A saved plan is not a plan, from another mip, or was modified.
    #[error(transparent)]
    PlanFile(#[from] mip_plan::planfile::Error),
    /// An address given on the command line does not parse.
    #[error("`{flag}`: {reason}")]
    BadAddress {
        /// The flag (`--rotate`, `state rm`).
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// Talking to the API server failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] mip_state::Error),
    /// The cluster is not the one the inventory names.
    #[error("refusing to touch API server `{actual}`: the inventory's guard expects {expected}")]
    WrongCluster {
        /// What the inventory says.
        expected: String,
        /// What the kubeconfig points at.
        actual: String,
    },
    /// The plan was made against another state.
    #[error("the plan was made for state lineage `{plan}`, but this state is `{state}`")]
    OtherState {
        /// Lineage in the plan.
        plan: String,
        /// Lineage of the store.
        state: String,
    },
    /// The state or the cluster changed since the plan.
    #[error("the plan is stale: {reason}")]
    Stale {
        /// What changed, naming the objects.
        reason: String,
    },
    /// A secret value could not be had from its source.
    #[error("cannot read the value of `{key}` of `{addr}` from {source_desc}")]
    SecretSource {
        /// The Secret.
        addr: ObjectRef,
        /// The key.
        key: String,
        /// The source, e.g. env `X`.
        source_desc: String,
        /// Why.
        #[source]
        source: crate::seams::SourceError,
    },
    /// Confirmation was needed and nobody can give it.
    #[error("refusing to change the cluster without confirmation: stdin is not a terminal")]
    NoConfirmation,
    /// The person at the terminal did not confirm.
    #[error("{operation} cancelled")]
    Declined {
        /// `Apply`, `Destroy`.
        operation: &'static str,
    },
    /// `--offline` with the state in the cluster.
    #[error("`--offline` cannot read a state kept in the cluster")]
    OfflineClusterState,
    /// No constructor is registered for a state backend.
    #[error("this mip has no `{0}` state backend")]
    NoBackend(&'static str),
    /// `state migrate` from a backend to itself.
    #[error("`--from` and `--to` name the same backend")]
    SameBackend,
    /// `state migrate` from an empty source.
    #[error("nothing to migrate: no state in {source_desc}")]
    NothingToMigrate {
        /// The source.
        source_desc: String,
    },
    /// `state migrate` read back something else than it copied.
    #[error("the state read back from {destination} differs from the source")]
    MigrationMismatch {
        /// The destination.
        destination: String,
        /// The source.
        source_desc: String,
    },
    /// An address that is not in the state.
    #[error("`{0}` is not in the state")]
    NotInState(ObjectRef),
    /// No state where one is needed.
    #[error("no state in {0} (nothing applied yet)")]
    NoState(String),
    /// The base inventory of a review plan could not be read (`--base`, `--base-inventory`).
    #[error("cannot read the base inventory {base}: {reason}")]
    ReadBase {
        /// `REV:path` or the file.
        base: String,
        /// Why (what git or the file system said).
        reason: String,
    },
    /// `--target` named an object the plan does not have.
    #[error(transparent)]
    UnknownTarget(#[from] mip_plan::safety::UnknownTarget),
    /// An unattended apply would delete protected objects (namespaces, Secrets, `protect:`)
    /// that `--allow-delete` does not name.
    #[error(
        "refusing to delete {} without `--allow-delete`: {}; nothing was written",
        if .0.len() == 1 { "a protected object" } else { "protected objects" },
        .0.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
    )]
    ProtectedDeletion(Vec<ObjectRef>),
    /// `mip import DIR`: the checkout could not be read.
    #[error("cannot read checkout `{path}`")]
    ReadTree {
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory of a rendered tree (`mip render DIR`, `mip validate --tree DIR`) or
    /// an inventory being edited could not be read, written or removed.
    #[error("failed to {action} `{path}`")]
    FileIo {
        /// What was done: `read`, `write`, `remove stale generated file`, …
        action: &'static str,
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `mip render DIR`: an operator's file declares an object mip applies, in a way that
    /// cannot be cut out of it.
    #[error("{0}")]
    Takeover(String),
    /// `mip federation|cluster add|remove`: the edit is refused; nothing was written.
    #[error(transparent)]
    Edit(#[from] mip_inventory::edit::EditError),
    /// `mip federation|cluster add|remove`: the edited inventory would not resolve or would
    /// fail validation; nothing was written.
    #[error("the edit would make `{file}` invalid; nothing was written")]
    EditInvalid {
        /// The inventory file.
        file: String,
        /// The problems, each located.
        diagnostics: Diagnostics,
    },
    /// `mip federation|cluster remove` without a person to confirm it.
    #[error("refusing to remove {what} without confirmation: stdin is not a terminal; nothing was written")]
    RemovalNotConfirmed {
        /// `federation `a``, `cluster `east``.
        what: String,
    },
    /// `mip validate --branch-check` without `--branch`: `.git/HEAD` names no branch.
    #[error("`{0}` is a detached HEAD, so the branch is unknown")]
    DetachedHead(String),
    /// `mip validate --branch-check` without `--branch`: the inventory is in no Git repository.
    #[error("no Git repository above `{0}`")]
    NoGitRepository(String),
    /// `mip apps show NAME`: no such app in the effective catalogue.
    #[error("no app `{name}` in the catalogue")]
    UnknownApp {
        /// The name asked for.
        name: String,
        /// The names the catalogue has.
        known: Vec<String>,
    },
    /// `mip import DIR`: no mip-infra tree there.
    #[error("{0}")]
    NotATree(String),
    /// `mip import --out FILE`: the inventory could not be written.
    #[error("cannot write inventory `{path}`")]
    WriteInventory {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `mip apply` of a review plan (base against head: no cluster, no state).
    #[error(
        "plan file `{0}` is a review plan (head against base), made without a cluster; it cannot be applied"
    )]
    ReviewPlan(String),
}

impl Error {
    /// Which row of the exit-code table.
    pub fn class(&self) -> Class {
        match self {
            Error::WrongCluster { .. }
            | Error::NoConfirmation
            | Error::Declined { .. }
            | Error::ProtectedDeletion(_)
            | Error::RemovalNotConfirmed { .. } => Class::Safety,
            Error::OtherState { .. }
            | Error::Stale { .. }
            | Error::ReviewPlan(_)
            | Error::PlanFile(mip_plan::planfile::Error::Tampered { .. }) => Class::StalePlan,
            Error::State(mip_state::Error::LockHeld(_) | mip_state::Error::LockLost { .. }) => {
                Class::LockHeld
            }
            _ => Class::Error,
        }
    }

    /// The located problems an error carries besides [`Error::Invalid`]'s, shown before it.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            Error::EditInvalid { diagnostics, .. } => Some(diagnostics),
            Error::Edit(e) => e.diagnostics(),
            _ => None,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            Error::WrongCluster { .. } => {
                "select the right context with `--context`, or fix `argocd.apiServer`/`argocd.context`"
            }
            Error::OtherState { .. } | Error::Stale { .. } => {
                "run `mip plan --out FILE` again and review the new plan"
            }
            Error::PlanFile(mip_plan::planfile::Error::Tampered { .. }) => {
                "make a new plan with `mip plan --out FILE`"
            }
            Error::SecretSource { .. } => {
                "set the environment variable or create the file the inventory names"
            }
            Error::NoConfirmation => "review the plan, then pass `--auto-approve`",
            Error::RemovalNotConfirmed { .. } => "review the deletions above, then pass `--yes`",
            Error::EditInvalid { .. } => "the diagnostics above name the conflict",
            Error::DetachedHead(_) => {
                "pass `--branch NAME`; in GitHub Actions `--branch \"${GITHUB_HEAD_REF:-$GITHUB_REF_NAME}\"`"
            }
            Error::NoGitRepository(_) => "pass `--branch NAME`",
            Error::UnknownApp { known, .. } => {
                return Some(format!(
                    "known apps: {}; define new ones under `apps:` in the inventory",
                    known.join(", ")
                ));
            }
            Error::Edit(e) => return e.hint(),
            Error::BadAddress { .. } => "an address reads `v1/Secret/federation-a/mip-secret`",
            Error::NotInState(_) => "`mip state list` shows what the state holds",
            Error::ReadBase { .. } => {
                "check the revision and that the checkout has its history (actions/checkout `fetch-depth: 0`), or pass the old file with `--base-inventory FILE`"
            }
            Error::UnknownTarget(_) => {
                "`mip plan --output json | jq -r '.changes[].address'` lists the addresses of a plan"
            }
            Error::ProtectedDeletion(_) => {
                "review the plan, then repeat `--allow-delete ADDRESS` for each object, or apply at a terminal and confirm; the inventory's `protect:` list says which kinds need this"
            }
            Error::ReviewPlan(_) => "apply a plan made against the cluster: `mip plan --out FILE`",
            Error::ReadInventory { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                "write one with `mip init` (or `mip init --from-tree DIR` for an existing mip-infra checkout), or pass `-i FILE`"
            }
            Error::NotATree(_) => {
                "point `mip import` at the root of a mip-infra checkout, the directory holding `base/`"
            }
            Error::WriteInventory { .. } => {
                "check the directory exists and is writable, or print to stdout without `-o`"
            }
            Error::OfflineClusterState => {
                "drop `--offline`, or plan against a local copy with `--state-backend local --state-dir DIR` after `mip state migrate --from cluster --to local`"
            }
            Error::SameBackend => "`mip state migrate --from local --to cluster`, or the reverse",
            Error::NothingToMigrate { .. } => {
                "check `--from`, `--state-dir`, `--state-namespace` and `--state-name`"
            }
            Error::MigrationMismatch { source_desc, .. } => {
                return Some(format!("this is a bug in mip; the source {source_desc} is unchanged"));
            }
            Error::State(e) => return Some(e.hint()),
            Error::Cluster(ClusterError::Unreachable { .. }) => {
                "check the kubeconfig context, the VPN, or `HTTPS_PROXY=socks5://…`"
            }
            Error::Cluster(ClusterError::Conflict { .. }) => {
                "another tool owns these fields; remove them there, or let mip own the object alone"
            }
            Error::Cluster(e @ ClusterError::Forbidden { .. }) => return forbidden_hint(e),
            _ => return None,
        };
        Some(text.to_owned())
    }
}

/// The fix for a [`ClusterError::Forbidden`]: which permission is missing and where the roles
/// that grant exactly what mip needs are. `None` for any other error.
pub fn forbidden_hint(e: &ClusterError) -> Option<String> {
    let ClusterError::Forbidden { verb, resource, namespace, .. } = e else { return None };
    let scope = namespace.as_ref().map(|n| format!(" in namespace `{n}`")).unwrap_or_default();
    let apply =
        if verb == "patch" { " (server-side apply is `patch`, plus `create` for a new object)" } else { "" };
    Some(format!(
        "the credentials in use lack `{verb}` on `{resource}`{scope}{apply}; bind the roles in `examples/rbac/`: `mip-readonly.yaml` for plan, drift and doctor, `mip-apply.yaml` for apply (docs/least-privilege.md)"
    ))
}
