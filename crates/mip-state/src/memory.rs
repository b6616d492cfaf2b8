//! An in-memory [`StateStore`] for the tests of other crates (Terraform's `statemgr` fake):
//! the same semantics as [`crate::SledStore`] (serial, entry serials, history order), no disk
//! and no lock.

use crate::{Error, HistoryEntry, Record, Snapshot, StateStore, fsutil};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A [`StateStore`] that lives in memory. Cheap to create; each one has its own lineage.
#[derive(Debug)]
pub struct MemoryStore {
    /// The state and history, behind one mutex so a record is atomic.
    inner: Mutex<Inner>,
}

/// What a [`MemoryStore`] holds.
#[derive(Debug)]
struct Inner {
    /// The current state.
    snapshot: Snapshot,
    /// The audit trail, oldest first.
    history: Vec<HistoryEntry>,
}

impl MemoryStore {
    /// An empty store (serial 0) with a random lineage.
    pub fn new() -> Result<Self, Error> {
        Ok(Self::with_lineage(fsutil::random_id()?))
    }

    /// An empty store with a given lineage, for deterministic tests and snapshots.
    pub fn with_lineage(lineage: impl Into<String>) -> Self {
        Self::from_snapshot(Snapshot { lineage: lineage.into(), serial: 0, managed: BTreeMap::new() })
    }

    /// A store that starts from `snapshot` (e.g. "mip applied these objects at serial 7").
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        MemoryStore { inner: Mutex::new(Inner { snapshot, history: Vec::new() }) }
    }

    /// The store's lineage.
    pub fn lineage(&self) -> String {
        self.inner().snapshot.lineage.clone()
    }

    /// The lock; a panic in another thread cannot leave the state half-written (every
    /// mutation is one assignment), so a poisoned lock is still usable.
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for MemoryStore {
    fn snapshot(&self) -> Result<Snapshot, Error> {
        Ok(self.inner().snapshot.clone())
    }

    fn record_many(&self, records: Vec<Record>) -> Result<u64, Error> {
        Ok(self.inner().snapshot.record(records))
    }

    fn import(&self, snapshot: &Snapshot, history: &[HistoryEntry]) -> Result<(), Error> {
        let mut inner = self.inner();
        if !inner.snapshot.is_fresh() || !inner.history.is_empty() {
            return Err(Error::NotEmpty {
                location: "in memory".to_owned(),
                serial: inner.snapshot.serial,
                entries: inner.snapshot.managed.len(),
            });
        }
        *inner = Inner { snapshot: snapshot.clone(), history: history.to_vec() };
        Ok(())
    }

    fn append_history(&self, entry: HistoryEntry) -> Result<(), Error> {
        self.inner().history.push(entry);
        Ok(())
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        Ok(self.inner().history.clone())
    }
}
