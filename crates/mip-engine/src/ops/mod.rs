//! The commands, one operation each: [`plan`](plan::plan), [`apply`](apply::apply),
//! [`destroy`](destroy::destroy), [`drift`](drift::drift) and the `state` commands in
//! [`state`]. Each takes typed inputs and an [`Env`], and returns a typed outcome or an
//! [`Error`](crate::Error); the caller renders the outcome and maps the error's class to an exit
//! code.
//!
//! An operation checks its local inputs (inventory, plan file, addresses) before it contacts the
//! cluster; it owns the choice of state backend, the lock, plan-file loading and staleness,
//! confirmation and every state write.

pub mod apply;
pub mod destroy;
pub mod doctor;
pub mod drift;
pub mod import;
pub mod init;
pub mod plan;
pub mod review;
pub mod show;
pub mod state;

use crate::Error;
use crate::backend::{Backends, StateFlags};
use crate::live::Clusters;
use crate::load::{LoadOptions, Loaded};
use crate::seams::{Connector, Hook, Operation, Target};
use mip_core::cluster::Cluster;
use mip_state::{Backend, DynStore, HistoryEntry};
use std::collections::BTreeSet;
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
}

impl<K: Connector> Env<'_, K> {
    /// Loads the inventory and shows its warnings.
    fn load(&self, opts: &LoadOptions) -> Result<Loaded, Error> {
        let loaded = crate::load::load(opts)?;
        self.hook.warnings(&loaded.warnings);
        Ok(loaded)
    }

    /// Connects to the management cluster and checks the inventory's guard; then to every
    /// remote cluster that the inventory gives a kubeconfig context and that holds objects of
    /// the desired state, each checked against the server the inventory names for it.
    async fn connect(&self, loaded: &Loaded) -> Result<Conn<K>, Error> {
        let connected = self.connector.connect().await?;
        crate::live::check_guard(loaded, &connected.cluster.server_url(), connected.context.as_deref())?;
        let mut clusters = Clusters::single(connected.cluster);
        let used: BTreeSet<&str> =
            loaded.desired.objects.keys().filter_map(|a| a.cluster.as_deref()).collect();
        for c in loaded.inventory.clusters.iter().filter(|c| used.contains(c.name.value.as_str())) {
            let Some(context) = &c.context else { continue };
            let target = Target { name: c.name.value.clone(), context: context.value.clone() };
            let remote = self.connector.connect_to(&target).await?;
            let server = remote.cluster.server_url();
            if server.trim_end_matches('/') != c.server.value.trim_end_matches('/') {
                return Err(Error::WrongCluster {
                    expected: format!(
                        "`{}` (clusters[{}].server, through context `{}`)",
                        c.server.value, c.name.value, context.value
                    ),
                    actual: server,
                });
            }
            clusters.add(c.name.value.clone(), remote.cluster);
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
        match backend.open(operation.as_str()) {
            Err(mip_state::Error::LockHeld(_)) if tokio::time::Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep(LOCK_RETRY.min(left)).await;
            }
            opened => return Ok(Arc::from(opened?)),
        }
    }
}

/// Appends `operation` to the store's history, with the serial it ended at.
fn record_history(store: &DynStore, operation: Operation, summary: String) -> Result<(), Error> {
    let serial = store.snapshot()?.serial;
    store.append_history(HistoryEntry {
        serial,
        operation: operation.as_str().to_owned(),
        summary,
        at_unix: mip_state::now_unix(),
        folded: None,
    })?;
    Ok(())
}
