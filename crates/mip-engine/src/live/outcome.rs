//! What an apply is asked to do and what it did: [`ApplyOpts`] (with its [`Interrupt`]) and
//! [`ApplyOutcome`] (with typed [`Failure`]s, skips and what Argo CD has not reconciled).

use super::gates::NotReady;
use super::ready::WaitFor;
use crate::seams::Skip;
use mip_core::ObjectRef;
use mip_core::cluster::ClusterError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Options of [`apply`](super::apply).
#[derive(Debug, Clone)]
pub struct ApplyOpts {
    /// Concurrent writes at most.
    pub parallelism: usize,
    /// How long the whole apply may wait for what Argo CD reconciles (zero: no gates and no
    /// wait; every change is written in plan order without crossing the Argo CD boundary).
    pub wait_timeout: Duration,
    /// How far to wait: exists, synced or healthy.
    pub wait_for: WaitFor,
    /// Ask Argo CD to refresh each root Application mip writes, instead of waiting for its
    /// resync period (180 s by default).
    pub refresh: bool,
    /// Poll interval while waiting.
    pub poll: Duration,
    /// How long a deletion (or a CRD becoming Established) may take.
    pub deletion_timeout: Duration,
    /// When every such wait of the run ends at the latest (destroy's `--wait-timeout`: the
    /// whole destroy is bounded, not each object); `None`: each is bounded by
    /// `deletion_timeout` alone.
    pub deadline: Option<tokio::time::Instant>,
    /// Stops the run between writes when triggered.
    pub interrupt: Interrupt,
}

impl Default for ApplyOpts {
    fn default() -> Self {
        ApplyOpts {
            parallelism: 8,
            wait_timeout: Duration::from_secs(300),
            wait_for: WaitFor::default(),
            refresh: true,
            poll: Duration::from_secs(1),
            deletion_timeout: Duration::from_secs(120),
            deadline: None,
            interrupt: Interrupt::default(),
        }
    }
}

/// A request to stop (a signal, a cancelled CI job): no new write starts, the writes in flight
/// finish and are recorded. Cheap to clone; every clone sees the trigger.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl Interrupt {
    /// Asks the run to stop.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once triggered.
    pub(crate) async fn triggered(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

/// A change that failed, with the API server's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The object.
    pub address: ObjectRef,
    /// What went wrong.
    pub error: ClusterError,
}

/// What an apply (or destroy) did.
#[derive(Debug, Clone, Default)]
pub struct ApplyOutcome {
    /// Changes done (and recorded), in the order they finished.
    pub applied: Vec<ObjectRef>,
    /// Changes that failed.
    pub failed: Vec<Failure>,
    /// Changes not attempted, and why.
    pub skipped: Vec<(ObjectRef, Skip)>,
    /// Objects Argo CD reconciles that were not ready when the wait ended, with why.
    pub pending: Vec<NotReady>,
    /// State serial after the apply.
    pub serial: u64,
    /// Whether the run was interrupted.
    pub interrupted: bool,
}

impl ApplyOutcome {
    /// Whether everything was done.
    pub fn complete(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.pending.is_empty() && !self.interrupted
    }

    /// The failures that were the API server's refusals (missing RBAC permissions).
    pub fn forbidden(&self) -> impl Iterator<Item = &Failure> {
        self.failed.iter().filter(|f| matches!(f.error, ClusterError::Forbidden { .. }))
    }

    /// Whether every write was refused for want of permissions: nothing changed.
    pub fn all_refused(&self) -> bool {
        !self.failed.is_empty() && self.applied.is_empty() && self.forbidden().count() == self.failed.len()
    }

    /// How the run ended, for the history: interrupted by a signal, failed when anything was
    /// left undone (a failure, a skip, an object Argo CD did not make ready in time), else
    /// completed.
    pub fn outcome(&self) -> mip_state::Outcome {
        if self.interrupted {
            mip_state::Outcome::Interrupted
        } else if self.complete() {
            mip_state::Outcome::Completed
        } else {
            mip_state::Outcome::Failed
        }
    }

    /// `3 applied, 0 failed, 1 skipped, 0 pending` for the history, in the operation's words
    /// (`done`: `applied` or `deleted`).
    pub fn summary(&self, done: &str) -> String {
        format!(
            "{} {done}, {} failed, {} skipped, {} pending",
            self.applied.len(),
            self.failed.len(),
            self.skipped.len(),
            self.pending.len()
        )
    }
}
