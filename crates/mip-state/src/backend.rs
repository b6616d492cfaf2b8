//! Where a state is kept, as one object: [`Backend`] opens a locked [`StateStore`] for a
//! writing command and reads the state without the lock for a reading one.
//!
//! The engine chooses the backend of a command (flag, else inventory, else local) from a map of
//! constructors; each backend lives with the code that knows its storage: [`LocalBackend`] here
//! (sled), the cluster backend in `mip-kube`. No caller matches on a backend kind.

use crate::{DEFAULT_HISTORY_LIMIT, Error, HistoryEntry, Operation, SledStore, Snapshot, StateStore};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed future: the backend trait is used as `dyn Backend`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An open, locked store of any backend.
pub type DynStore = dyn StateStore + Send + Sync;

/// The state and, when asked for, its history.
pub type StateRead = Option<(Snapshot, Vec<HistoryEntry>)>;

/// A place where the state is kept.
pub trait Backend: Send + Sync {
    /// For messages: the directory, or `Secret `ns/name``.
    fn describe(&self) -> String;

    /// Opens the store for writing, taking its lock for `operation` (creating an empty store
    /// when there is none). Blocking; callable from inside an async runtime.
    ///
    /// # Errors
    /// [`Error::LockHeld`] and the backend's own errors.
    fn open(&self, operation: Operation) -> Result<Box<DynStore>, Error>;

    /// Reads the state without the write lock where the backend allows it (plan, drift,
    /// `state list`); with `history`, its audit trail too. `None` when there is no state;
    /// nothing is created.
    fn read(&self, history: bool) -> BoxFuture<'_, Result<StateRead, Error>>;
}

/// The sled store in a directory on this machine.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    /// The store's directory.
    pub dir: PathBuf,
    /// How many operations the history keeps in full (`--history-limit`).
    pub history_limit: usize,
}

impl LocalBackend {
    /// The store in `dir`, with the default history limit.
    pub fn new(dir: PathBuf) -> Self {
        LocalBackend { dir, history_limit: DEFAULT_HISTORY_LIMIT }
    }
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        format!("`{}`", self.dir.display())
    }

    fn open(&self, operation: Operation) -> Result<Box<DynStore>, Error> {
        Ok(Box::new(SledStore::open(&self.dir, operation)?.with_history_limit(self.history_limit)))
    }

    /// The snapshot needs no lock (an apply in progress does not block a plan); the history
    /// does, so reading it while an apply runs is [`Error::LockHeld`].
    fn read(&self, history: bool) -> BoxFuture<'_, Result<StateRead, Error>> {
        Box::pin(async move {
            let Some(snapshot) = SledStore::open_read_only(&self.dir)? else { return Ok(None) };
            if !history {
                return Ok(Some((snapshot, Vec::new())));
            }
            let store = SledStore::open(&self.dir, Operation::StateHistory)?;
            Ok(Some((store.snapshot()?, store.history()?)))
        })
    }
}
