//! The choice of state backend: `--state-backend`, else the inventory's `state:` section, else
//! local; and the map of constructors that turns the choice into a [`Backend`].
//!
//! The engine registers the local (sled) backend itself; a caller registers the backends that
//! need a crate the engine does not depend on (the CLI registers `mip-kube`'s cluster backend).
//! Adding a backend is one `register` call, not a new match arm in every command.

use crate::Error;
use mip_inventory::StateSettings;
use mip_state::{Backend, LocalBackend};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A kind of state backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendKind {
    /// The sled store on this machine.
    Local,
    /// Secrets and a Lease in the cluster.
    Cluster,
}

impl BackendKind {
    /// As flags and messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Cluster => "cluster",
        }
    }
}

impl From<mip_inventory::StateBackend> for BackendKind {
    fn from(b: mip_inventory::StateBackend) -> Self {
        match b {
            mip_inventory::StateBackend::Local => BackendKind::Local,
            mip_inventory::StateBackend::Cluster => BackendKind::Cluster,
        }
    }
}

/// What the command line says about the state (each `None` leaves the choice to the
/// inventory, then to the default).
#[derive(Debug, Clone)]
pub struct StateFlags {
    /// `--state-backend`.
    pub backend: Option<BackendKind>,
    /// `--state-dir`.
    pub dir: PathBuf,
    /// `--state-namespace`.
    pub namespace: Option<String>,
    /// `--state-name`.
    pub name: Option<String>,
    /// `--lock-ttl`.
    pub lock_ttl: Duration,
    /// `--lock-timeout`: how long opening a locked store retries while another run holds the
    /// lock (zero: refuse at once).
    pub lock_timeout: Duration,
    /// Payload bytes per state Secret.
    pub chunk_bytes: usize,
    /// `--history-limit`: operations the history keeps in full; older ones are folded into
    /// one summary entry.
    pub history_limit: usize,
}

/// A resolved state location: flags over the inventory's `state:` section. Namespace and name
/// stay `None` where neither says (the backend has its defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSpec {
    /// The backend.
    pub kind: BackendKind,
    /// Local: the store's directory.
    pub dir: PathBuf,
    /// Cluster: the namespace.
    pub namespace: Option<String>,
    /// Cluster: the state's name.
    pub name: Option<String>,
    /// Cluster: the lock's time to live.
    pub lock_ttl: Duration,
    /// Cluster: payload bytes per Secret.
    pub chunk_bytes: usize,
    /// Operations the history keeps in full (both backends).
    pub history_limit: usize,
    /// A branch deployment's own state (`--revision BRANCH`): the local store in
    /// `<dir>/workspaces/<branch>`, the cluster state named `<name>-<branch>`.
    pub workspace: Option<String>,
}

impl StateSpec {
    /// The local store's directory.
    pub fn local_dir(&self) -> PathBuf {
        match &self.workspace {
            Some(ws) => self.dir.join("workspaces").join(ws),
            None => self.dir.clone(),
        }
    }

    /// The cluster state's name, from the configured (or default) one.
    pub fn cluster_name(&self, name: &str) -> String {
        match &self.workspace {
            Some(ws) => format!("{name}-{ws}"),
            None => name.to_owned(),
        }
    }
}

impl StateFlags {
    /// The spec of backend `kind`, configured by the flags and else the inventory.
    pub fn spec_of(&self, kind: BackendKind, settings: Option<&StateSettings>) -> StateSpec {
        let from_inventory = |pick: fn(&StateSettings) -> Option<&mip_inventory::Located<String>>| {
            settings.and_then(pick).map(|l| l.value.clone())
        };
        StateSpec {
            kind,
            dir: self.dir.clone(),
            namespace: self.namespace.clone().or_else(|| from_inventory(|s| s.namespace.as_ref())),
            name: self.name.clone().or_else(|| from_inventory(|s| s.name.as_ref())),
            lock_ttl: self.lock_ttl,
            chunk_bytes: self.chunk_bytes,
            history_limit: self.history_limit,
            workspace: None,
        }
    }

    /// The spec of a command: `--state-backend`, else the inventory's, else local.
    pub fn spec(&self, settings: Option<&StateSettings>) -> StateSpec {
        let kind = self
            .backend
            .or_else(|| settings.map(|s| BackendKind::from(s.backend)))
            .unwrap_or(BackendKind::Local);
        self.spec_of(kind, settings)
    }
}

/// Builds a backend from its spec; `cluster` is the command's own connection when it has one
/// (a backend in the cluster reads through it).
pub type Constructor<C> = Box<dyn Fn(&StateSpec, Option<&C>) -> Box<dyn Backend> + Send + Sync>;

/// The backends this mip has, by kind.
pub struct Backends<C> {
    constructors: BTreeMap<BackendKind, Constructor<C>>,
}

impl<C> Default for Backends<C> {
    /// The local backend only.
    fn default() -> Self {
        let mut b = Backends { constructors: BTreeMap::new() };
        b.register(
            BackendKind::Local,
            Box::new(|spec: &StateSpec, _: Option<&C>| {
                Box::new(LocalBackend { dir: spec.local_dir(), history_limit: spec.history_limit })
            }),
        );
        b
    }
}

impl<C> Backends<C> {
    /// Adds (or replaces) the constructor of `kind`.
    pub fn register(&mut self, kind: BackendKind, constructor: Constructor<C>) {
        self.constructors.insert(kind, constructor);
    }

    /// The backend of `spec`.
    ///
    /// # Errors
    /// [`Error::NoBackend`] when no constructor is registered for its kind.
    pub fn build(&self, spec: &StateSpec, cluster: Option<&C>) -> Result<Box<dyn Backend>, Error> {
        let make = self.constructors.get(&spec.kind).ok_or(Error::NoBackend(spec.kind.as_str()))?;
        Ok(make(spec, cluster))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// No flag given: each choice left to the inventory, then to the default; a held lock
    /// refused at once.
    pub(crate) fn flags() -> StateFlags {
        StateFlags {
            backend: None,
            dir: "state/store".into(),
            namespace: None,
            name: None,
            lock_ttl: Duration::from_secs(30),
            lock_timeout: Duration::ZERO,
            chunk_bytes: 1024,
            history_limit: mip_state::DEFAULT_HISTORY_LIMIT,
        }
    }

    fn settings(backend: mip_inventory::StateBackend, ns: &str) -> StateSettings {
        let at = mip_core::Location { file: "mip.yaml".into(), line: 1, column: 1 };
        StateSettings {
            backend,
            namespace: Some(mip_inventory::Located { value: ns.into(), at }),
            name: None,
        }
    }

    #[test]
    fn flag_over_inventory_over_local() {
        assert_eq!(flags().spec(None).kind, BackendKind::Local);
        let s = settings(mip_inventory::StateBackend::Cluster, "team");
        let spec = flags().spec(Some(&s));
        assert_eq!((spec.kind, spec.namespace.as_deref()), (BackendKind::Cluster, Some("team")));
        let f = StateFlags { backend: Some(BackendKind::Local), namespace: Some("x".into()), ..flags() };
        let spec = f.spec(Some(&s));
        assert_eq!((spec.kind, spec.namespace.as_deref()), (BackendKind::Local, Some("x")));
    }

    #[test]
    fn a_branch_workspace_has_its_own_store_and_state_name() {
        let spec = StateSpec { workspace: Some("feat-x".into()), ..flags().spec(None) };
        assert_eq!(spec.local_dir(), PathBuf::from("state/store/workspaces/feat-x"));
        assert_eq!(spec.cluster_name("mip-state"), "mip-state-feat-x");
        let main = flags().spec(None);
        assert_eq!(
            (main.local_dir(), main.cluster_name("mip-state")),
            (PathBuf::from("state/store"), "mip-state".into())
        );
    }

    #[test]
    fn unregistered_backend_is_an_error() {
        let b: Backends<()> = Backends::default();
        let spec = StateSpec { kind: BackendKind::Cluster, ..flags().spec(None) };
        assert!(matches!(b.build(&spec, None), Err(Error::NoBackend("cluster"))));
        assert_eq!(
            b.build(&flags().spec(None), None).map(|b| b.describe()).ok().as_deref(),
            Some("`state/store`")
        );
    }
}
