//! mip's state: what mip last applied, so a plan can tell create, update, no-op and delete
//! without asking the cluster what it owns, and so a saved plan applies only to the state it
//! was made for.
//!
//! The model is Terraform's `statemgr`: a [`StateStore`] trait with two implementations here,
//! [`SledStore`] on disk (the real one, `state/store/` by default) and [`MemoryStore`] (a fake for
//! the tests of other crates); `mip-kube`'s `ClusterStore` is the third, in the cluster (this
//! crate never talks to a cluster). A store is a [`Snapshot`]: a **lineage** fixed when the store is
//! created (a plan from another store is refused), a **serial** that every [`StateStore::record`]
//! bumps (a plan from an older serial is stale), and one [`ManagedEntry`] per address mip
//! applied. A [`HistoryEntry`] list is the audit trail.
//!
//! # Guarantees
//!
//! - **No secrets.** An entry holds a fingerprint (a digest over the owned fields and the
//!   *sources* of secret keys), never a value; nothing in this crate can take a secret.
//! - **One writer.** [`SledStore::open`] takes an OS advisory lock (`flock`), which the kernel
//!   releases when the holder dies, even by `kill -9`; a second opener gets
//!   [`Error::LockHeld`] naming `user@host`, pid, operation and start time from `lock.json`.
//! - **Durable records.** [`StateStore::record`] and [`StateStore::record_many`] return only
//!   after sled has flushed to disk; a crash loses at most the batch in flight, so the next run
//!   converges.
//! - **Owner-only files.** The store directory is `0700` and its files `0600`, whatever the
//!   umask.
//! - **Corruption is an error, not a panic.** Damaged files give [`Error::Corrupt`] with the
//!   path and a hint; mip never repairs a store on its own.
//!
//! What this crate does *not* do: decide what to apply, compute fingerprints, talk to a
//! cluster, print.
//!
//! # Layout on disk (format version 1)
//!
//! ```text
//! <dir>/            0700
//!   db/             sled: format_version, lineage, serial, managed/<address>, history/<n>
//!   lock            the flock target (empty)
//!   lock.json       the holder, while a lock is held
//!   snapshot.json   the last committed Snapshot, written atomically after each record, so a
//!                   reader (plan) can read the state while an apply holds the lock
//! ```
//!
//! # Example
//! ```
//! use mip_state::{ManagedEntry, SledStore, StateStore};
//! let tmp = tempfile::tempdir()?;
//! let dir = tmp.path().join("store");
//! assert!(SledStore::open_read_only(&dir)?.is_none()); // nothing there, nothing created
//!
//! let store = SledStore::open(&dir, mip_state::Operation::Apply)?;
//! let addr = "v1/Namespace/federation-a".parse()?;
//! let entry = ManagedEntry { fingerprint: "sha256:00".into(), uid: None, serial: 0, ..Default::default() };
//! assert_eq!(store.record(&addr, Some(entry))?, 1);
//! assert_eq!(store.snapshot()?.managed[&addr].serial, 1);
//! drop(store); // releases the lock
//!
//! let snapshot = SledStore::open_read_only(&dir)?.expect("the store exists");
//! assert_eq!(snapshot.serial, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod backend;
mod db_dir;
mod error;
mod fsutil;
mod history;
mod lock;
mod memory;
mod operation;
mod sled_store;

pub use backend::{Backend, BoxFuture, DynStore, LocalBackend, StateRead};
pub use error::Error;
pub use history::{DEFAULT_HISTORY_LIMIT, Folded, bound_history};
pub use lock::{LockInfo, now_unix, rfc3339_utc};
pub use memory::MemoryStore;
pub use operation::Operation;
pub use sled_store::SledStore;

use mip_core::ObjectRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format of the local (sled) store this crate reads and writes; a store with another one is
/// [`Error::Incompatible`].
pub const FORMAT_VERSION: &str = "1";

/// What mip last applied to one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedEntry {
    /// The fingerprint of what was applied (`sha256:` over the owned fields and secret
    /// *sources*). Never a secret value.
    pub fingerprint: String,
    /// The object's `metadata.uid` after the apply, if known: a different uid later means the
    /// object was deleted and recreated behind mip's back.
    pub uid: Option<String>,
    /// The store serial at which this entry was written. [`StateStore::record`] sets it to the
    /// new serial; the value passed in is ignored.
    pub serial: u64,
    /// For Secrets: key → salted hash of the value mip applied (`mip_core::canonical::salted_hash`
    /// with the lineage as salt), to detect a value changed in the cluster without storing it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_hashes: BTreeMap<String, String>,
    /// For an object on a remote cluster: how mip reached it, so that it can still be reached
    /// (to delete the object) once the inventory no longer declares that cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

/// How mip reaches a remote cluster: a kubeconfig context and the API server it must lead to
/// (the guard). Neither is secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Via {
    /// The kubeconfig context.
    pub context: String,
    /// The API server URL the context must reach.
    pub server: String,
}

/// One change of [`StateStore::record_many`]: an address and what was applied to it (`None`:
/// forget it).
pub type Record = (ObjectRef, Option<ManagedEntry>);

/// A new random lineage (a version-4 UUID from the OS random source), for stores created
/// elsewhere (the cluster store of `mip-kube`).
///
/// # Errors
/// [`Error::Internal`] when the OS has no random source.
pub fn new_lineage() -> Result<String, Error> {
    fsutil::random_id()
}

/// The whole managed state at one serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The random id fixed when the store was created.
    pub lineage: String,
    /// The number of records since the store was created (0 for a new store).
    pub serial: u64,
    /// What mip applied, by address.
    pub managed: BTreeMap<ObjectRef, ManagedEntry>,
}

impl Snapshot {
    /// Gives each record the serial it is written at, counting on from this snapshot's serial
    /// (the first gets `serial + 1`); returns them and the last serial. Every store numbers
    /// records this way.
    pub fn stamp(&self, records: Vec<Record>) -> (Vec<Record>, u64) {
        let mut serial = self.serial;
        let stamped = records
            .into_iter()
            .map(|(addr, entry)| {
                serial += 1;
                (addr, entry.map(|entry| ManagedEntry { serial, ..entry }))
            })
            .collect();
        (stamped, serial)
    }

    /// Applies records [stamped](Snapshot::stamp) against this snapshot, in order (a later
    /// record of the same address wins), and moves the serial to `serial`.
    pub fn apply_stamped(&mut self, stamped: Vec<Record>, serial: u64) {
        for (addr, entry) in stamped {
            match entry {
                Some(entry) => {
                    self.managed.insert(addr, entry);
                }
                None => {
                    self.managed.remove(&addr);
                }
            }
        }
        self.serial = serial;
    }

    /// [`stamp`](Snapshot::stamp) then [`apply_stamped`](Snapshot::apply_stamped); the last
    /// serial.
    pub fn record(&mut self, records: Vec<Record>) -> u64 {
        let (stamped, serial) = self.stamp(records);
        self.apply_stamped(stamped, serial);
        serial
    }

    /// Whether nothing was ever recorded: serial 0 and no entry (with an empty history, what
    /// [`StateStore::import`] requires).
    pub fn is_fresh(&self) -> bool {
        self.serial == 0 && self.managed.is_empty()
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The store serial when the operation finished.
    pub serial: u64,
    /// The operation (`apply`, `destroy`, …); [`Operation::Summary`] on the summary entry.
    pub operation: Operation,
    /// A one-line summary (`3 created, 1 updated`).
    pub summary: String,
    /// When it finished, seconds since the Unix epoch.
    pub at_unix: u64,
    /// Set on the one summary entry that stands for older operations folded away by
    /// [`bound_history`] (`--history-limit`); `None` on every operation's own entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded: Option<Folded>,
    /// How the operation ended; `None` on entries written before mip recorded it (they were
    /// all completed: only a completed operation was recorded then) and on a summary entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl HistoryEntry {
    /// Whether this is the one entry that stands for older operations folded away by
    /// [`bound_history`] (its operation is [`Operation::Summary`]).
    pub fn is_summary(&self) -> bool {
        self.folded.is_some()
    }
}

/// How an operation that changed the state ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything it set out to do was done.
    Completed,
    /// It ended early: a change failed, or an error stopped it after it had changed the state.
    Failed,
    /// A signal stopped it; what finished before is recorded.
    Interrupted,
}

impl Outcome {
    /// As the history shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Where mip keeps what it applied. Synchronous (sled is); both implementations are `Send +
/// Sync`, and `record` may be called from several threads at once.
pub trait StateStore {
    /// The current state.
    fn snapshot(&self) -> Result<Snapshot, Error>;

    /// Remembers what was applied to `addr` (`Some`), or forgets `addr` (`None`, after a
    /// delete), and bumps the serial in the same atomic write. Returns the new serial, only
    /// once the write is durable. The entry's `serial` is set to the new serial.
    fn record(&self, addr: &ObjectRef, entry: Option<ManagedEntry>) -> Result<u64, Error> {
        self.record_many(vec![(addr.clone(), entry)])
    }

    /// Group commit: several [`record`](StateStore::record)s in one atomic, durable write (one
    /// flush on disk, one write to the cluster). Each record bumps the serial by one, in order;
    /// returns the last serial. An empty batch writes nothing and returns the current serial.
    fn record_many(&self, records: Vec<Record>) -> Result<u64, Error>;

    /// Fills an **empty** store (serial 0, nothing managed, no history) with `snapshot` (its
    /// lineage and serial included) and `history`, in one atomic write: `mip state migrate`.
    ///
    /// # Errors
    /// [`Error::NotEmpty`] when the store holds anything; the store is then left as it was.
    fn import(&self, snapshot: &Snapshot, history: &[HistoryEntry]) -> Result<(), Error>;

    /// How long a writer may hold finished changes back to commit them together with
    /// [`record_many`](StateStore::record_many): a local flush is cheap (25 ms), a write to a
    /// cluster rewrites the whole state (see `mip-kube`'s store).
    fn group_commit_window(&self) -> std::time::Duration {
        std::time::Duration::from_millis(25)
    }

    /// Appends to the audit trail (durably, like `record`), then folds what exceeds the store's
    /// history limit into one summary entry ([`bound_history`]). Does not change the serial.
    fn append_history(&self, entry: HistoryEntry) -> Result<(), Error>;

    /// The audit trail, oldest first.
    fn history(&self) -> Result<Vec<HistoryEntry>, Error>;
}
