//! The commands, one operation each: [`plan`](plan::plan), [`apply`](apply::apply),
//! [`destroy`](destroy::destroy), [`drift`](drift::drift) and the `state` commands in
//! [`state`], which take an [`Env`] (a cluster, the state); and those that need neither:
//! [`render`](render::render), [`validate`](validate::validate), [`graph`](graph::graph),
//! [`apps`](apps::apps), the inventory edits ([`edit`](edit::edit)), [`import`](import::import)
//! and [`init`]. Each takes a typed request and returns a typed outcome or an
//! [`Error`](crate::Error); the caller renders the outcome and maps the error's class to an exit
//! code.
//!
//! An operation checks its local inputs (inventory, plan file, addresses) before it contacts the
//! cluster; it owns the choice of state backend, the lock, plan-file loading and staleness,
//! confirmation and every state write.

pub mod apply;
pub mod apps;
pub mod destroy;
pub mod doctor;
pub mod drift;
pub mod edit;
pub mod graph;
pub mod import;
pub mod init;
#[cfg(test)]
mod offline_tests;
pub mod plan;
pub mod render;
pub mod review;
pub mod show;
pub mod state;
mod targets;
#[cfg(test)]
mod tests;
pub mod validate;

pub use crate::live::Interrupt;
pub use crate::load::{LoadOptions, Loaded};
/// A plan, its summary and the views that show it (text, JSON, Markdown): what a caller needs
/// to render the plan an operation returns.
pub use mip_plan::{Plan, StateRef, Summary, render as plan_views};

use crate::Error;
use crate::backend::{Backends, StateFlags};
use crate::live::Clusters;
use crate::seams::{Connector, Hook, Operation, Target};
use mip_core::cluster::Cluster;
use mip_state::{Backend, DynStore, HistoryEntry, Outcome};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The clusters an operation works on: the management cluster and the remote ones it reaches.
pub type Conn<K> = Clusters<<K as Connector>::Cluster>;

/// What every operation runs with: the connection, the state backends, the state flags and
/// the hook that shows progress.
pub struct Env<'a, K: Connector> {
    /// Connects to the cluster.
    pub connector: &'a K,
    /// The state backends this mip has.
    pub backends: &'a Backends<K::Cluster>,
    /// What the command line says about the state.
    pub state: &'a StateFlags,
    /// Where progress goes.
    pub hook: Arc<dyn Hook>,
    /// The state [`Env::connect`] read (without the lock) to find the remote clusters it holds
    /// objects on, kept for the command's own lock-free read (a plan or drift reads it once).
    peeked: std::sync::Mutex<Option<mip_state::Snapshot>>,
}

impl<'a, K: Connector> Env<'a, K> {
    /// An environment.
    pub fn new(
        connector: &'a K,
        backends: &'a Backends<K::Cluster>,
        state: &'a StateFlags,
        hook: Arc<dyn Hook>,
    ) -> Self {
        Env { connector, backends, state, hook, peeked: std::sync::Mutex::default() }
    }
}

impl<K: Connector> Env<'_, K> {
    /// The state [`Env::connect`] read, once; `None` when it read none (then read it).
    fn take_peeked(&self) -> Option<mip_state::Snapshot> {
        self.peeked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// Loads the inventory and shows its warnings.
    fn load(&self, opts: &LoadOptions) -> Result<Loaded, Error> {
        load(opts, self.hook.as_ref())
    }

    /// Connects to the management cluster and checks the inventory's guard; then to every
    /// remote cluster that holds objects of the desired state or of the state (what a removed
    /// federation or cluster left there is deleted there), each checked against the server it
    /// must lead to. A cluster the inventory declares with a context is reached through it;
    /// one it no longer declares, through the context the state remembers for its objects.
    async fn connect(&self, loaded: &Loaded) -> Result<Conn<K>, Error> {
        let connected = self.connector.connect().await?;
        crate::live::check_guard(loaded, &connected.cluster.server_url(), connected.context.as_deref())?;
        let mut clusters = Clusters::single(connected.cluster);
        let mut wanted: BTreeMap<String, Option<mip_state::Via>> = BTreeMap::new();
        for a in loaded.desired.objects.keys() {
            if let Some(c) = &a.cluster {
                wanted.entry(c.clone()).or_default();
            }
        }
        // The state read here is only a peek (no lock): a broken store is reported by the
        // command's own read.
        if let Ok(backend) = self.backend(loaded, Some(&clusters))
            && let Ok(Some((snapshot, _))) = backend.read(false).await
        {
            for (a, e) in &snapshot.managed {
                if let Some(c) = &a.cluster {
                    let via = wanted.entry(c.clone()).or_default();
                    if via.is_none() {
                        via.clone_from(&e.via);
                    }
                }
            }
            *self.peeked.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshot);
        }
        for (name, remembered) in wanted {
            let declared = loaded.inventory.cluster(&name).and_then(|c| {
                let context = c.context.as_ref()?;
                Some((context.value.clone(), c.server.value.clone(), format!("clusters[{name}].server")))
            });
            let from_state =
                remembered.map(|v| (v.context, v.server, format!("the state's record of `{name}`")));
            let Some((context, expected, what)) = declared.or(from_state) else { continue };
            let target = Target { name: name.clone(), context: context.clone() };
            let remote = self.connector.connect_to(&target).await?;
            let server = remote.cluster.server_url();
            if server.trim_end_matches('/') != expected.trim_end_matches('/') {
                return Err(Error::WrongCluster {
                    expected: format!("`{expected}` ({what}, through context `{context}`)"),
                    actual: server,
                });
            }
            clusters.add(name, remote.cluster, context);
        }
        Ok(clusters)
    }

    /// The state backend of a command: flags, else the inventory's `state:` section.
    ///
    /// A deployment of another revision than the inventory's (`--revision BRANCH`) keeps its
    /// own state beside main's, as a Terraform workspace does: it shares every object with main
    /// but its root Applications, and must neither delete main's roots nor lose track of its
    /// own.
    fn backend(&self, loaded: &Loaded, cluster: Option<&Conn<K>>) -> Result<Box<dyn Backend>, Error> {
        let cluster = cluster.map(Clusters::main);
        let mut spec = self.state.spec(loaded.inventory.state.as_ref());
        if loaded.desired.revision != loaded.inventory.revision.value {
            spec.workspace = Some(loaded.desired.prefix.trim_end_matches('-').to_owned());
        }
        self.backends.build(&spec, cluster)
    }

    /// Runs `body` with the cluster, then reports the requests it made (whatever the result).
    async fn counted<T>(
        &self,
        cluster: &Conn<K>,
        body: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let result = body.await;
        self.hook.requests(cluster.requests());
        result
    }
}

/// Loads the inventory and shows its warnings through `hook`: how every operation starts,
/// those without a cluster too.
fn load(opts: &LoadOptions, hook: &dyn Hook) -> Result<Loaded, Error> {
    let loaded = crate::load::load(opts)?;
    hook.warnings(&loaded.warnings);
    Ok(loaded)
}

/// How often a held lock is tried again while `--lock-timeout` runs.
const LOCK_RETRY: Duration = Duration::from_millis(500);

/// Opens a backend's store (taking its lock) for `operation`. While another run holds the lock,
/// tries again until `lock_timeout` has passed (`--lock-timeout`; zero: refuse at once), then
/// fails with the holder named, as without a timeout.
async fn open(
    backend: &dyn Backend,
    operation: Operation,
    lock_timeout: Duration,
) -> Result<Arc<DynStore>, Error> {
    let deadline = tokio::time::Instant::now() + lock_timeout;
    loop {
        match backend.open(operation.clone()) {
            Err(mip_state::Error::LockHeld(_)) if tokio::time::Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep(LOCK_RETRY.min(left)).await;
            }
            opened => return Ok(Arc::from(opened?)),
        }
    }
}

/// Appends `operation` to the store's history: how it ended and what it did, with the serial
/// it ended at.
fn record_history(
    store: &DynStore,
    operation: Operation,
    outcome: Outcome,
    summary: String,
) -> Result<(), Error> {
    let serial = store.snapshot()?.serial;
    store.append_history(HistoryEntry {
        serial,
        operation,
        summary,
        at_unix: mip_state::now_unix(),
        folded: None,
        outcome: Some(outcome),
    })?;
    Ok(())
}

/// Records a run of the scheduler in the history, whatever its end: its outcome when it
/// returned one, else (an error stopped it: the state or the cluster failed mid-run) a `failed`
/// entry with what the state shows it did and the error, provided it changed the state at all
/// (`before`: the serial when it started). The run's own result is returned unchanged.
fn record_run(
    store: &DynStore,
    operation: Operation,
    before: u64,
    done: &str,
    run: Result<crate::live::ApplyOutcome, Error>,
) -> Result<crate::live::ApplyOutcome, Error> {
    match run {
        Ok(outcome) => {
            record_history(store, operation, outcome.outcome(), outcome.summary(done))?;
            Ok(outcome)
        }
        Err(e) => {
            if let Ok(after) = store.snapshot()
                && after.serial > before
            {
                let recorded = after.serial - before;
                let error = e.to_string();
                let error = error.lines().next().unwrap_or_default();
                let summary = format!("{recorded} record(s) written before it stopped: {error}");
                // Best effort: the store may be what failed; the run's error is what matters.
                let _ = record_history(store, operation, Outcome::Failed, summary);
            }
            Err(e)
        }
    }
}
