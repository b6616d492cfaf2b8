//! What the caller of an operation provides: the connection to the cluster ([`Connector`]),
//! secret values from their sources ([`SecretResolver`]), a yes from a person ([`Confirm`]) and
//! a place to show progress ([`Hook`]). The engine decides; these only do what they are asked.

use mip_core::cluster::{Cluster, ClusterError, RequestCounts};
use mip_core::{Action, Diagnostics, ObjectRef, Sensitive, SensitiveSource};
use mip_plan::Plan;
use std::future::Future;

pub use crate::live::Readiness;

/// A connected cluster and the kubeconfig context it was reached through (for the guard).
#[derive(Debug)]
pub struct Connected<C> {
    /// The cluster.
    pub cluster: C,
    /// The context name, when there is one.
    pub context: Option<String>,
}

/// A remote cluster as the inventory describes it: its name and the kubeconfig context that
/// reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The inventory name.
    pub name: String,
    /// The kubeconfig context.
    pub context: String,
}

/// Connects to the management cluster and to remote clusters. Implemented over `mip-kube` by
/// the CLI, and by the tests over the fake cluster.
pub trait Connector: Send + Sync {
    /// The cluster type.
    type Cluster: Cluster + 'static;

    /// Connects to the management cluster (sends no request: an unreachable server shows on
    /// the first call).
    fn connect(&self) -> impl Future<Output = Result<Connected<Self::Cluster>, ClusterError>> + Send;

    /// Connects to a remote cluster through its own context (same kubeconfig and timeouts).
    fn connect_to(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Connected<Self::Cluster>, ClusterError>> + Send;
}

/// Why a secret value could not be had from its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// An environment variable is not set.
    #[error("environment variable `{0}` is not set")]
    EnvNotSet(String),
    /// A file could not be read.
    #[error("cannot read `{path}`: {reason}")]
    File {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A prompt without a terminal.
    #[error("prompt `{0}` needs a terminal; use `env` or `file` in unattended runs")]
    NeedsTerminal(String),
    /// The prompt failed.
    #[error("prompt failed: {0}")]
    Prompt(String),
    /// The OS random source failed.
    #[error("the OS random source failed: {0}")]
    Random(String),
    /// Generated values are the engine's; a resolver is never asked for one.
    #[error("generated values are made by the engine")]
    Generated,
    /// Values read from a cluster are the engine's; a resolver is never asked for one.
    #[error("values read from a cluster are read by the engine")]
    FromCluster,
    /// A registered cluster's token Secret was not filled in time.
    #[error("the token Secret `{secret}` has no token after {seconds} s")]
    TokenNotIssued {
        /// The token Secret.
        secret: String,
        /// How long mip waited.
        seconds: u64,
    },
}

/// Reads secret values from their sources (env, file, prompt); generated values are the
/// engine's job. Implemented by the CLI (the prompt needs a terminal).
pub trait SecretResolver: Send + Sync {
    /// The value for a source, or why it cannot be had.
    ///
    /// # Errors
    /// [`SourceError`].
    fn resolve(&self, source: &SensitiveSource) -> Result<Sensitive, SourceError>;
}

/// A person's answer to a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Go on.
    Yes,
    /// Stop.
    No,
    /// Nobody can be asked (no terminal).
    CannotAsk,
}

/// Asks a person before a command changes the cluster.
pub trait Confirm: Send + Sync {
    /// The answer to `question`.
    fn confirm(&self, question: &str) -> Answer;

    /// Whether a person answers (a terminal), not a flag: only a person, who has seen the plan,
    /// may approve deleting protected objects without `--allow-delete`.
    fn asks_a_person(&self) -> bool {
        false
    }
}

/// `--auto-approve`: every answer is yes.
pub struct AutoApprove;

impl Confirm for AutoApprove {
    fn confirm(&self, _: &str) -> Answer {
        Answer::Yes
    }
}

/// Which command an event, a history entry or a lock belongs to: [`mip_state::Operation`],
/// named here for the hooks.
pub use mip_state::Operation;

/// Something worth telling that is not progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A saved plan is applied although the inventory changed since it was made.
    InventoryChangedSincePlan {
        /// The inventory the plan names.
        inventory: String,
    },
    /// Destroy keeps a protected object (namespace, AppProject, CRD).
    KeptProtected(ObjectRef),
    /// `--wait-timeout 0`: these changes are written without waiting for the objects Argo CD
    /// generates that they depend on.
    NotWaiting(Vec<ObjectRef>),
}

/// Progress of an operation.
#[derive(Debug, Clone)]
pub enum Event {
    /// Writing starts: how many changes will be written.
    Writing(usize),
    /// A change starts.
    Start(ObjectRef, Action),
    /// A change finished (and is recorded in the state).
    Done(ObjectRef, Action),
    /// A change failed.
    Failed(ObjectRef, String),
    /// A change was skipped because something it depends on failed (or the run was
    /// interrupted).
    Skipped(ObjectRef, Skip),
    /// An object Argo CD reconciles changed state (at a gate or in the final wait).
    Ready(ObjectRef, crate::live::ready::Readiness),
    /// The final wait: how many objects are still not ready.
    Waiting(usize),
    /// Writing ended (before the summary).
    Finished,
    /// A notice.
    Notice(Notice),
}

/// Why a change was not attempted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "because", content = "of", rename_all = "snake_case")]
pub enum Skip {
    /// Something it depends on failed or was skipped.
    DependencyFailed(ObjectRef),
    /// The run was interrupted before it started.
    Interrupted,
    /// Its dependencies were never done (a cycle; the graph forbids them).
    Unreachable,
    /// An object Argo CD reconciles that it waits for was not ready in time.
    GateNotReady(ObjectRef),
}

/// Receives what an operation has to show. The engine never prints; every method has a
/// default that shows nothing.
pub trait Hook: Send + Sync {
    /// One progress event.
    fn event(&self, _e: Event) {}
    /// Warnings found while loading the inventory.
    fn warnings(&self, _d: &Diagnostics) {}
    /// A plan the operation made itself, shown before it asks for confirmation.
    fn plan(&self, _plan: &Plan, _operation: Operation) {}
    /// The API requests the operation made (at its end, whatever its result).
    fn requests(&self, _counts: RequestCounts) {}
    /// What an inventory edit means for the next plan, shown before a removal is confirmed.
    fn edit(&self, _consequences: &crate::ops::edit::Consequences) {}
}

/// Shows nothing.
pub struct NoHook;
impl Hook for NoHook {}
