//! A fake [`Connector`] over the [`FakeCluster`] and an in-memory state [`Backend`] with a lock,
//! so that the operations of [`crate::ops`] run in unit tests, in milliseconds, with no API
//! server and no disk: locking, plan-file checks and staleness, the inventory's guard,
//! confirmation, the history and the choice of backend.
//!
//! # Why `cfg(any(test, feature = "test-support"))`
//!
//! A connector and a state backend are exactly what the CLI injects into the engine. Compiled
//! into the product, a connector that pretends to be a cluster could be wired in by mistake; kept
//! out, such a mistake does not build. `#[cfg(test)]` alone would keep it out too, but only the
//! engine's own tests could use it; behind the `test-support` feature another crate's tests use it
//! with `mip-engine = { workspace = true, features = ["test-support"] }` under
//! `[dev-dependencies]` (a dev-dependency's features do not reach a normal build: resolver 3).
//! [`FakeCluster`] itself stays where it was, since it is no seam.
//!
//! # What is fake
//!
//! - [`FakeConnector`] hands out the one [`FakeCluster`] it was given (shared: the test reads it
//!   after the operation) with the context it was told, and counts its connections. It reaches no
//!   remote cluster: [`Connector::connect_to`] fails as [`ClusterError::Unreachable`].
//! - [`MemoryBackend`] keeps a [`MemoryStore`] and a lock that a second opener finds held
//!   ([`mip_state::Error::LockHeld`] naming the holder, as the real backends do); the lock is
//!   released when the opened store is dropped. Like the local backend, it holds no state until it
//!   is first opened ([`Backend::read`] gives `None`).

use super::FakeCluster;
use crate::backend::{BackendKind, Backends, StateSpec};
use crate::seams::{Connected, Connector, Target};
use mip_core::ObjectRef;
use mip_core::cluster::{ApplyOptions, Cluster, ClusterError, KindRef, RequestCounts};
use mip_state::{
    Backend, BoxFuture, DynStore, HistoryEntry, LockInfo, MemoryStore, Record, Snapshot, StateRead,
    StateStore,
};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The [`FakeCluster`] as the connector hands it out: shared with the test that made it.
#[derive(Clone)]
pub struct SharedCluster(pub Arc<FakeCluster>);

impl Cluster for SharedCluster {
    fn server_url(&self) -> String {
        self.0.server_url()
    }

    async fn is_namespaced(&self, kind: &KindRef) -> Result<bool, ClusterError> {
        self.0.is_namespaced(kind).await
    }

    async fn list(
        &self,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.0.list(kind, namespace, label_selector).await
    }

    async fn get(&self, addr: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        self.0.get(addr).await
    }

    async fn apply(
        &self,
        addr: &ObjectRef,
        manifest: &Value,
        opts: ApplyOptions,
    ) -> Result<Value, ClusterError> {
        self.0.apply(addr, manifest, opts).await
    }

    async fn annotate(
        &self,
        addr: &ObjectRef,
        manager: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, ClusterError> {
        self.0.annotate(addr, manager, key, value).await
    }

    async fn delete(&self, addr: &ObjectRef) -> Result<bool, ClusterError> {
        self.0.delete(addr).await
    }

    fn requests(&self) -> RequestCounts {
        self.0.requests()
    }
}

/// Connects to one [`FakeCluster`] (see the [module docs](self)).
pub struct FakeConnector {
    /// The management cluster.
    cluster: Arc<FakeCluster>,
    /// The kubeconfig context it is reached through, for the guard.
    context: Option<String>,
    /// How many times [`Connector::connect`] was called.
    connects: AtomicUsize,
}

impl FakeConnector {
    /// Connects to `cluster`, through no named context.
    pub fn new(cluster: Arc<FakeCluster>) -> FakeConnector {
        FakeConnector { cluster, context: None, connects: AtomicUsize::new(0) }
    }

    /// Reaches the cluster through kubeconfig context `context` (what the guard
    /// `argocd.context` compares).
    #[must_use]
    pub fn with_context(self, context: &str) -> FakeConnector {
        FakeConnector { context: Some(context.to_owned()), ..self }
    }

    /// How many times an operation connected to the management cluster.
    pub fn connects(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }
}

impl Connector for FakeConnector {
    type Cluster = SharedCluster;

    async fn connect(&self) -> Result<Connected<SharedCluster>, ClusterError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        Ok(Connected { cluster: SharedCluster(Arc::clone(&self.cluster)), context: self.context.clone() })
    }

    async fn connect_to(&self, target: &Target) -> Result<Connected<SharedCluster>, ClusterError> {
        Err(ClusterError::Unreachable {
            server: format!("context `{}`", target.context),
            reason: "the fake connector reaches no remote cluster".to_owned(),
        })
    }
}

/// A state kept in memory, with a lock (see the [module docs](self)). Clones share the state.
#[derive(Clone)]
pub struct MemoryBackend(Arc<Shared>);

/// What the clones of a [`MemoryBackend`] share.
struct Shared {
    /// The state and history.
    store: MemoryStore,
    /// Whether a state exists (first opened, or made from a snapshot).
    exists: AtomicBool,
    /// Who holds the lock.
    holder: Mutex<Option<LockInfo>>,
}

fn unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryBackend {
    /// No state yet; the first open creates one with `lineage`.
    pub fn new(lineage: &str) -> MemoryBackend {
        MemoryBackend::with(MemoryStore::with_lineage(lineage), false)
    }

    /// A state that already exists, at `snapshot` (its lineage and serial), with no history.
    pub fn from_snapshot(snapshot: Snapshot) -> MemoryBackend {
        MemoryBackend::with(MemoryStore::from_snapshot(snapshot), true)
    }

    fn with(store: MemoryStore, exists: bool) -> MemoryBackend {
        MemoryBackend(Arc::new(Shared { store, exists: AtomicBool::new(exists), holder: Mutex::new(None) }))
    }

    /// Takes the lock as `holder` (another run, as far as the engine can tell) until the returned
    /// store is dropped, creating the state if there is none.
    ///
    /// # Errors
    /// [`mip_state::Error::LockHeld`] naming the current holder.
    pub fn hold(&self, holder: LockInfo) -> Result<Box<DynStore>, mip_state::Error> {
        let mut held = unpoisoned(&self.0.holder);
        if let Some(current) = held.as_ref() {
            return Err(mip_state::Error::LockHeld(current.clone()));
        }
        *held = Some(holder);
        self.0.exists.store(true, Ordering::SeqCst);
        Ok(Box::new(Locked(Arc::clone(&self.0))))
    }

    /// Registers this backend as `kind` in `backends` (replacing the one there: the local one
    /// of [`Backends::default`] writes to disk), whatever the spec says.
    pub fn register_as<C>(&self, kind: BackendKind, backends: &mut Backends<C>) {
        let backend = self.clone();
        backends.register(kind, Box::new(move |_: &StateSpec, _: Option<&C>| Box::new(backend.clone())));
    }
}

impl Backend for MemoryBackend {
    fn describe(&self) -> String {
        format!("memory `{}`", self.0.store.lineage())
    }

    fn open(&self, operation: mip_state::Operation) -> Result<Box<DynStore>, mip_state::Error> {
        self.hold(LockInfo::current(operation))
    }

    /// Reads without the lock, even while it is held (as the cluster backend does).
    fn read(&self, history: bool) -> BoxFuture<'_, Result<StateRead, mip_state::Error>> {
        Box::pin(async move {
            if !self.0.exists.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let trail = if history { self.0.store.history()? } else { Vec::new() };
            Ok(Some((self.0.store.snapshot()?, trail)))
        })
    }
}

/// The store of a [`MemoryBackend`] while its lock is held; dropping it releases the lock.
struct Locked(Arc<Shared>);

impl Drop for Locked {
    fn drop(&mut self) {
        *unpoisoned(&self.0.holder) = None;
    }
}

impl StateStore for Locked {
    fn snapshot(&self) -> Result<Snapshot, mip_state::Error> {
        self.0.store.snapshot()
    }

    fn record_many(&self, records: Vec<Record>) -> Result<u64, mip_state::Error> {
        self.0.store.record_many(records)
    }

    fn import(&self, snapshot: &Snapshot, history: &[HistoryEntry]) -> Result<(), mip_state::Error> {
        self.0.store.import(snapshot, history)
    }

    fn group_commit_window(&self) -> std::time::Duration {
        self.0.store.group_commit_window()
    }

    fn append_history(&self, entry: HistoryEntry) -> Result<(), mip_state::Error> {
        self.0.store.append_history(entry)
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, mip_state::Error> {
        self.0.store.history()
    }
}
