//! The cluster state backend: opens a [`ClusterStore`] for writing commands and reads the state
//! without the Lease for reading ones.

use crate::state::{ClusterStateConfig, ClusterStore, read_state};
use crate::{ConnectOptions, KubeCluster};
use mip_state::{Backend, BoxFuture, DynStore, Error, Operation, StateRead};

/// The state in Secrets and a Lease of the cluster `connect` reaches.
#[derive(Debug)]
pub struct ClusterBackend {
    connect: ConnectOptions,
    config: ClusterStateConfig,
    /// The command's own connection, when it has one: reads go through it, so they are counted
    /// with the command's requests and need no second TLS handshake.
    client: Option<KubeCluster>,
}

impl ClusterBackend {
    /// The backend for `config`, reached through `connect`.
    pub fn new(connect: ConnectOptions, config: ClusterStateConfig) -> ClusterBackend {
        ClusterBackend { connect, config, client: None }
    }

    /// Reads through `cluster` (the command's connection) instead of a connection of its own.
    #[must_use]
    pub fn reading_through(mut self, cluster: &KubeCluster) -> ClusterBackend {
        self.client = Some(cluster.clone_for_state());
        self
    }
}

impl Backend for ClusterBackend {
    fn describe(&self) -> String {
        format!("Secret `{}/{}`", self.config.namespace, self.config.name)
    }

    fn open(&self, operation: Operation) -> Result<Box<DynStore>, Error> {
        Ok(Box::new(ClusterStore::open(self.connect.clone(), self.config.clone(), operation)?))
    }

    /// Needs no lock: one GET of the index Secret (and one per further chunk).
    fn read(&self, _history: bool) -> BoxFuture<'_, Result<StateRead, Error>> {
        Box::pin(async move {
            match &self.client {
                Some(cluster) => read_state(cluster, &self.config).await,
                None => {
                    let cluster =
                        KubeCluster::connect(self.connect.clone()).await.map_err(|e| Error::Remote {
                            location: self.describe(),
                            reason: e.to_string(),
                            hint: "check the kubeconfig and the context".to_owned(),
                        })?;
                    read_state(&cluster, &self.config).await
                }
            }
        })
    }
}
