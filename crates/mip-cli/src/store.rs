//! Which state store a command uses, and opening it: the local sled store or the cluster's
//! (`mip_kube::ClusterStore`), chosen by `--state-backend`, else the inventory's `state:`
//! section, else local.

use crate::cli::{ClusterArgs, StateBackendArg};
use mip_core::ObjectRef;
use mip_inventory::{StateBackend, StateSettings};
use mip_kube::{ClusterStateConfig, ClusterStore, ConnectOptions, KubeCluster};
use mip_state::{Error, HistoryEntry, ManagedEntry, Record, SledStore, Snapshot, StateStore};
use std::path::PathBuf;
use std::time::Duration;

/// A resolved state location.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The sled store in this directory.
    Local(PathBuf),
    /// Secrets and a Lease in the cluster the connection reaches.
    Cluster(ConnectOptions, ClusterStateConfig),
}

/// The connection the flags describe.
pub fn connect_options(args: &ClusterArgs) -> ConnectOptions {
    ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        timeout: Duration::from_secs(args.request_timeout.max(1)),
    }
}

/// The backend of a command: the flag, else the inventory's setting, else local.
pub fn backend(args: &ClusterArgs, settings: Option<&StateSettings>) -> Backend {
    let kind = args.state_backend.unwrap_or(match settings.map(|s| s.backend) {
        Some(StateBackend::Cluster) => StateBackendArg::Cluster,
        Some(StateBackend::Local) | None => StateBackendArg::Local,
    });
    backend_of(kind, args, settings)
}

/// The backend `kind`, configured by the flags and else the inventory (for `state migrate`,
/// which names both sides).
pub fn backend_of(kind: StateBackendArg, args: &ClusterArgs, settings: Option<&StateSettings>) -> Backend {
    match kind {
        StateBackendArg::Local => Backend::Local(args.state_dir.clone()),
        StateBackendArg::Cluster => {
            let defaults = ClusterStateConfig::default();
            let from_inventory = |pick: fn(&StateSettings) -> Option<&mip_inventory::Located<String>>| {
                settings.and_then(pick).map(|l| l.value.clone())
            };
            let config = ClusterStateConfig {
                namespace: args
                    .state_namespace
                    .clone()
                    .or_else(|| from_inventory(|s| s.namespace.as_ref()))
                    .unwrap_or(defaults.namespace),
                name: args
                    .state_name
                    .clone()
                    .or_else(|| from_inventory(|s| s.name.as_ref()))
                    .unwrap_or(defaults.name),
                lock_ttl: Duration::from_secs(args.lock_ttl.max(1)),
                chunk_bytes: args.state_chunk_bytes.max(1),
            };
            Backend::Cluster(connect_options(args), config)
        }
    }
}

impl Backend {
    /// For messages: the directory, or `Secret `ns/name``.
    pub fn describe(&self) -> String {
        match self {
            Backend::Local(dir) => format!("`{}`", dir.display()),
            Backend::Cluster(_, config) => format!("Secret `{}/{}`", config.namespace, config.name),
        }
    }

    /// Opens the store for writing, taking its lock for `operation`.
    pub fn open(&self, operation: &str) -> Result<Store, Error> {
        match self {
            Backend::Local(dir) => SledStore::open(dir, operation).map(Store::Local),
            Backend::Cluster(connect, config) => {
                ClusterStore::open(connect.clone(), config.clone(), operation).map(Store::Cluster)
            }
        }
    }

    /// Reads the state without the write lock (plan, drift, `state list`); `None` when there
    /// is none. The cluster backend reads through `cluster`, so its requests are counted with
    /// the plan's.
    pub fn read(
        &self,
        rt: &tokio::runtime::Runtime,
        cluster: &KubeCluster,
    ) -> Result<Option<Snapshot>, Error> {
        match self {
            Backend::Local(dir) => SledStore::open_read_only(dir),
            Backend::Cluster(_, config) => {
                rt.block_on(mip_kube::read_state(cluster, config)).map(|s| s.map(|(snapshot, _)| snapshot))
            }
        }
    }

    /// The state, and its history when `history` is asked for, read without the write lock
    /// where the backend allows it: the local store's history needs its lock (an apply in
    /// progress makes that exit 3), its snapshot does not; the cluster store needs no lock.
    pub fn read_with_history(
        &self,
        rt: &tokio::runtime::Runtime,
        history: bool,
    ) -> Result<Option<(Snapshot, Vec<HistoryEntry>)>, Error> {
        match self {
            Backend::Local(dir) => {
                let Some(snapshot) = SledStore::open_read_only(dir)? else { return Ok(None) };
                if !history {
                    return Ok(Some((snapshot, Vec::new())));
                }
                let store = SledStore::open(dir, "state history")?;
                Ok(Some((store.snapshot()?, store.history()?)))
            }
            Backend::Cluster(connect, config) => rt.block_on(async {
                let cluster = KubeCluster::connect(connect.clone()).await.map_err(|e| Error::Remote {
                    location: self.describe(),
                    reason: e.to_string(),
                    hint: "check the kubeconfig and the context".to_owned(),
                })?;
                mip_kube::read_state(&cluster, config).await
            }),
        }
    }
}

/// An open, locked store of either backend.
#[derive(Debug)]
pub enum Store {
    /// Local.
    Local(SledStore),
    /// In the cluster.
    Cluster(ClusterStore),
}

impl StateStore for Store {
    fn snapshot(&self) -> Result<Snapshot, Error> {
        match self {
            Store::Local(s) => s.snapshot(),
            Store::Cluster(s) => s.snapshot(),
        }
    }

    fn record(&self, addr: &ObjectRef, entry: Option<ManagedEntry>) -> Result<u64, Error> {
        match self {
            Store::Local(s) => s.record(addr, entry),
            Store::Cluster(s) => s.record(addr, entry),
        }
    }

    fn record_many(&self, records: Vec<Record>) -> Result<u64, Error> {
        match self {
            Store::Local(s) => s.record_many(records),
            Store::Cluster(s) => s.record_many(records),
        }
    }

    fn import(&self, snapshot: &Snapshot, history: &[HistoryEntry]) -> Result<(), Error> {
        match self {
            Store::Local(s) => s.import(snapshot, history),
            Store::Cluster(s) => s.import(snapshot, history),
        }
    }

    fn group_commit_window(&self) -> Duration {
        match self {
            Store::Local(s) => s.group_commit_window(),
            Store::Cluster(s) => s.group_commit_window(),
        }
    }

    fn append_history(&self, entry: HistoryEntry) -> Result<(), Error> {
        match self {
            Store::Local(s) => s.append_history(entry),
            Store::Cluster(s) => s.append_history(entry),
        }
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        match self {
            Store::Local(s) => s.history(),
            Store::Cluster(s) => s.history(),
        }
    }
}
