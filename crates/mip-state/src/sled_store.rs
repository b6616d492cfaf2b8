//! The on-disk [`StateStore`]: sled in `<dir>/db`, guarded by the lock of [`crate::lock`].
//!
//! All keys live in sled's default tree, so a record (entry + serial) is one atomic batch:
//! `format_version`, `lineage` and `serial` (JSON values), `managed/<address>` (a JSON
//! [`ManagedEntry`]) and `history/<n>` (a JSON [`HistoryEntry`], `n` big-endian so keys sort in
//! order).
//!
//! A new store is built in `<dir>/db.new` and renamed to `<dir>/db` only once its keys are on
//! disk, so `<dir>/db` existing means "a store was created": a `db` without `format_version` is
//! corrupt, never mistaken for a fresh store.
//!
//! sled 0.34 also takes its own `flock` on `db/db`; since every opener goes through our lock
//! first, that one never refuses a mip process.

use crate::db_dir::{DB_DIR, SLED_RELEASE_WAIT, wait_sled_closed};
use crate::lock::{self, LockGuard};
use crate::{
    DEFAULT_HISTORY_LIMIT, Error, FORMAT_VERSION, HistoryEntry, ManagedEntry, Operation, Record, Snapshot,
    StateStore, bound_history, fsutil,
};
use mip_core::ObjectRef;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Where a new store is built before it is renamed to [`DB_DIR`].
const DB_NEW_DIR: &str = "db.new";
/// The copy of the last committed snapshot for readers while a writer holds the lock.
const MIRROR_FILE: &str = "snapshot.json";

/// Key of the format version.
const KEY_FORMAT_VERSION: &str = "format_version";
/// Key of the lineage.
const KEY_LINEAGE: &str = "lineage";
/// Key of the serial.
const KEY_SERIAL: &str = "serial";
/// Prefix of managed entries.
const PREFIX_MANAGED: &str = "managed/";
/// Prefix of history entries.
const PREFIX_HISTORY: &str = "history/";

/// sled's page cache limit; the state of a federation is kilobytes.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The sled-backed store. Holds the lock for as long as it lives; dropping it releases the lock
/// (and removes `lock.json`).
#[derive(Debug)]
pub struct SledStore {
    /// The database (dropped before the lock: fields drop in declaration order).
    db: sled::Db,
    /// The store directory.
    dir: PathBuf,
    /// Fixed at creation (or by [`StateStore::import`] into the empty store).
    lineage: Mutex<String>,
    /// Serialises read-modify-write of the serial within this process.
    write: Mutex<()>,
    /// The committed snapshot, kept in memory so that a record costs O(1) reads, and when
    /// `snapshot.json` was last written (it is rewritten at most every [`MIRROR_EVERY`] and
    /// on drop, so an apply of N objects does not rewrite an N-entry file N times).
    mirror: Mutex<MirrorCache>,
    /// How many operations the history keeps in full ([`bound_history`]).
    history_limit: usize,
    /// The OS lock, released last.
    _lock: LockGuard,
}

/// How often `snapshot.json` is rewritten at most while records stream in.
const MIRROR_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// See [`SledStore::mirror`].
#[derive(Debug)]
struct MirrorCache {
    snapshot: Snapshot,
    written: std::time::Instant,
    dirty: bool,
}

/// `snapshot.json`: a snapshot with its format version.
#[derive(Serialize, Deserialize)]
struct Mirror {
    /// [`FORMAT_VERSION`] of the writer.
    format_version: String,
    /// The snapshot.
    #[serde(flatten)]
    snapshot: Snapshot,
}

impl SledStore {
    /// Opens the store in `dir` for writing, creating `dir` (`0700`) and an empty store (new
    /// lineage, serial 0) if missing, and takes the lock for `operation` (`apply`, `destroy`,
    /// …). The lock is held until the store is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::LockHeld`] naming the holder if another process (or another `SledStore` in this
    /// one) holds the lock; a read-only holder is waited for a few seconds first.
    /// [`Error::Corrupt`], [`Error::Incompatible`], [`Error::Io`] as their docs say.
    pub fn open(dir: &Path, operation: Operation) -> Result<Self, Error> {
        fsutil::create_private_dir(dir)?;
        let guard = lock::acquire(dir, operation, true)?;
        let db_path = dir.join(DB_DIR);
        if !db_path.exists() {
            create(dir)?;
        }
        let db = open_db(&db_path)?;
        let (lineage, _) = read_header(&db, &db_path)?;
        let mut store = SledStore {
            db,
            dir: dir.to_owned(),
            lineage: Mutex::new(lineage),
            write: Mutex::new(()),
            mirror: Mutex::new(MirrorCache {
                snapshot: Snapshot { lineage: String::new(), serial: 0, managed: Default::default() },
                // The first record of a burst writes the mirror at once; the rest are coalesced.
                written: std::time::Instant::now()
                    .checked_sub(MIRROR_EVERY)
                    .unwrap_or_else(std::time::Instant::now),
                dirty: false,
            }),
            history_limit: DEFAULT_HISTORY_LIMIT,
            _lock: guard,
        };
        fsutil::restrict_tree(dir)?;
        let snapshot = store.read_snapshot()?;
        check_against_mirror(dir, &snapshot)?;
        // After a crash the mirror may lag behind the database; bring it up to date.
        store.write_mirror(&snapshot)?;
        store
            .mirror
            .get_mut()
            .map_err(|_| Error::Internal { reason: "mirror lock poisoned".into() })?
            .snapshot = snapshot;
        Ok(store)
    }

    /// Reads the state for `plan`, without taking part in an apply.
    ///
    /// - No store in `dir`: `Ok(None)`, and nothing is created (not even `dir`).
    /// - Lock free: takes it for a moment (as [`Operation::Read`]), reads the database, releases.
    /// - Lock held (an apply is running): returns `snapshot.json`, the state as of the holder's
    ///   last completed record (written atomically, so never torn). A plan made from it is
    ///   checked against the serial at apply time like any other.
    ///
    /// # Errors
    ///
    /// [`Error::LockHeld`] if the lock is held and `snapshot.json` is missing or unreadable;
    /// [`Error::Corrupt`], [`Error::Incompatible`], [`Error::Io`] as their docs say.
    pub fn open_read_only(dir: &Path) -> Result<Option<Snapshot>, Error> {
        let db_path = dir.join(DB_DIR);
        if !db_path.is_dir() {
            return Ok(None);
        }
        match lock::acquire(dir, Operation::Read, false) {
            Ok(guard) => {
                let db = open_db(&db_path)?;
                let snapshot = snapshot_of(&db, &db_path);
                drop(db);
                drop(guard);
                let snapshot = snapshot?;
                check_against_mirror(dir, &snapshot)?;
                Ok(Some(snapshot))
            }
            Err(Error::LockHeld(holder)) => match read_mirror(dir) {
                Ok(Some(snapshot)) => Ok(Some(snapshot)),
                Err(e @ Error::Incompatible { .. }) => Err(e),
                Ok(None) | Err(_) => Err(Error::LockHeld(holder)),
            },
            Err(e) => Err(e),
        }
    }

    /// Keeps the `limit` most recent operations of the history in full and folds older ones
    /// into one summary entry (default [`DEFAULT_HISTORY_LIMIT`]); applied at the next
    /// [`StateStore::append_history`].
    #[must_use]
    pub fn with_history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    /// The store's lineage.
    pub fn lineage(&self) -> String {
        self.lineage.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The in-memory copy of the committed snapshot.
    fn cache(&self) -> Result<MutexGuard<'_, MirrorCache>, Error> {
        self.mirror.lock().map_err(|_| Error::Internal { reason: "mirror lock poisoned".into() })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The in-process write lock; it guards no data of its own, so poisoning is harmless.
    fn writer(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sled directory.
    fn db_path(&self) -> PathBuf {
        self.dir.join(DB_DIR)
    }

    /// The snapshot, read from sled.
    fn read_snapshot(&self) -> Result<Snapshot, Error> {
        snapshot_of(&self.db, &self.db_path())
    }

    /// Writes `snapshot.json` atomically.
    fn write_mirror(&self, snapshot: &Snapshot) -> Result<(), Error> {
        let mirror = Mirror { format_version: FORMAT_VERSION.to_owned(), snapshot: snapshot.clone() };
        fsutil::write_atomic(&self.dir.join(MIRROR_FILE), &to_json(&mirror)?)
    }

    /// Applies `batch` and waits for it to be on disk.
    fn commit(&self, batch: sled::Batch) -> Result<(), Error> {
        let path = self.db_path();
        sled_call(&path, || self.db.apply_batch(batch))?;
        sled_call(&path, || self.db.flush()).map(|_| ())
    }
}

impl StateStore for SledStore {
    fn snapshot(&self) -> Result<Snapshot, Error> {
        let _w = self.writer();
        self.read_snapshot()
    }

    fn record_many(&self, records: Vec<Record>) -> Result<u64, Error> {
        let _w = self.writer();
        // The cache is the committed snapshot, so it numbers the records like the database.
        let mut cache = self.cache()?;
        if records.is_empty() {
            return Ok(cache.snapshot.serial);
        }
        let (stamped, serial) = cache.snapshot.stamp(records);
        let mut batch = sled::Batch::default();
        for (addr, entry) in &stamped {
            let key = format!("{PREFIX_MANAGED}{addr}");
            match entry {
                Some(entry) => batch.insert(key.as_bytes(), to_json(entry)?),
                None => batch.remove(key.as_bytes()),
            }
        }
        batch.insert(KEY_SERIAL, to_json(&serial)?);
        self.commit(batch)?;
        cache.snapshot.apply_stamped(stamped, serial);
        if cache.written.elapsed() >= MIRROR_EVERY {
            self.write_mirror(&cache.snapshot)?;
            cache.written = std::time::Instant::now();
            cache.dirty = false;
        } else {
            cache.dirty = true;
        }
        Ok(serial)
    }

    fn import(&self, snapshot: &Snapshot, history: &[HistoryEntry]) -> Result<(), Error> {
        let _w = self.writer();
        let path = self.db_path();
        let current = self.read_snapshot()?;
        let old_history = sled_call(&path, || Ok(self.db.scan_prefix(PREFIX_HISTORY).count()))?;
        if !current.is_fresh() || old_history != 0 {
            return Err(Error::NotEmpty {
                location: format!("`{}`", self.dir.display()),
                serial: current.serial,
                entries: current.managed.len(),
            });
        }
        let mut batch = sled::Batch::default();
        batch.insert(KEY_LINEAGE, to_json(&snapshot.lineage)?);
        batch.insert(KEY_SERIAL, to_json(&snapshot.serial)?);
        for (addr, entry) in &snapshot.managed {
            batch.insert(format!("{PREFIX_MANAGED}{addr}").as_bytes(), to_json(entry)?);
        }
        let mut history = history.to_vec();
        bound_history(&mut history, self.history_limit);
        for (n, entry) in history.iter().enumerate() {
            batch.insert(history_key(n as u64), to_json(entry)?);
        }
        self.commit(batch)?;
        self.write_mirror(snapshot)?;
        let mut cache = self.cache()?;
        cache.snapshot = snapshot.clone();
        cache.written = std::time::Instant::now();
        cache.dirty = false;
        *self.lineage.lock().unwrap_or_else(PoisonError::into_inner) = snapshot.lineage.clone();
        Ok(())
    }

    fn append_history(&self, entry: HistoryEntry) -> Result<(), Error> {
        let _w = self.writer();
        let path = self.db_path();
        let pairs: Vec<_> = sled_call(&path, || self.db.scan_prefix(PREFIX_HISTORY).collect())?;
        let next = match pairs.last() {
            Some((key, _)) => history_index(key, &path)? + 1,
            None => 0,
        };
        let mut batch = sled::Batch::default();
        let summary_first = match pairs.first() {
            Some((_, v)) => from_json::<HistoryEntry>(v, &path, "a history entry")?.is_summary(),
            None => false,
        };
        if pairs.len() < self.history_limit + usize::from(summary_first) {
            batch.insert(history_key(next), to_json(&entry)?);
            return self.commit(batch);
        }
        // Over the limit: fold the oldest into the summary and renumber what is kept so that it
        // ends at `next` (keys stay increasing for any mip that appends after this one).
        let mut history = pairs
            .iter()
            .map(|(_, v)| from_json(v, &path, "a history entry"))
            .collect::<Result<Vec<HistoryEntry>, _>>()?;
        history.push(entry);
        bound_history(&mut history, self.history_limit);
        for (key, _) in &pairs {
            batch.remove(key);
        }
        let first = next + 1 - history.len() as u64;
        for (n, entry) in (first..).zip(&history) {
            batch.insert(history_key(n), to_json(entry)?);
        }
        self.commit(batch)
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        let _w = self.writer();
        let path = self.db_path();
        let pairs: Vec<_> = sled_call(&path, || self.db.scan_prefix(PREFIX_HISTORY).collect())?;
        pairs.iter().map(|(_, v)| from_json(v, &path, "a history entry")).collect()
    }
}

/// Creates an empty store in `<dir>/db.new`, then renames it to `<dir>/db`.
fn create(dir: &Path) -> Result<(), Error> {
    let new = dir.join(DB_NEW_DIR);
    if new.exists() {
        // A creation that crashed before its rename: nothing in it was ever used.
        std::fs::remove_dir_all(&new).map_err(Error::io(&new))?;
    }
    fsutil::create_private_dir(&new)?;
    let db = open_db(&new)?;
    let mut batch = sled::Batch::default();
    batch.insert(KEY_FORMAT_VERSION, to_json(&FORMAT_VERSION)?);
    batch.insert(KEY_LINEAGE, to_json(&fsutil::random_id()?)?);
    batch.insert(KEY_SERIAL, to_json(&0u64)?);
    sled_call(&new, || db.apply_batch(batch))?;
    sled_call(&new, || db.flush())?;
    drop(db);
    wait_sled_closed(&new);
    fsutil::restrict_tree(&new)?;
    let db_path = dir.join(DB_DIR);
    std::fs::rename(&new, &db_path).map_err(Error::io(&db_path))?;
    fsutil::sync_dir(dir)
}

/// Opens sled in `path`. No background flusher: every write flushes itself.
///
/// The caller holds the store lock, so if sled's own `flock` on `db/db` is taken, the taker is
/// a sled instance that was just dropped (sled's IO threads let go of the file a moment after
/// the last handle): retried for a while rather than reported.
fn open_db(path: &Path) -> Result<sled::Db, Error> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_BYTES)
        .mode(sled::Mode::LowSpace)
        .flush_every_ms(None);
    let deadline = Instant::now() + SLED_RELEASE_WAIT;
    loop {
        match sled_call(path, || config.open()) {
            Err(Error::Io { source, .. }) if is_sled_lock_error(&source) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Whether sled failed to open because its `flock` was taken (sled 0.34 reports it as an
/// `Other` IO error with this message; see `Config::try_lock` in sled).
fn is_sled_lock_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Other && e.to_string().starts_with("could not acquire lock on")
}

/// Checks `format_version` and returns `(lineage, serial)`.
fn read_header(db: &sled::Db, path: &Path) -> Result<(String, u64), Error> {
    let version: String = match sled_call(path, || db.get(KEY_FORMAT_VERSION))? {
        Some(v) => from_json(&v, path, "`format_version`")?,
        None => {
            return Err(Error::corrupt(
                path,
                "the database has no `format_version` key: it lost its data or was not written by mip",
            ));
        }
    };
    if version != FORMAT_VERSION {
        return Err(Error::Incompatible { found_version: version, reads: &[FORMAT_VERSION] });
    }
    let lineage: String = match sled_call(path, || db.get(KEY_LINEAGE))? {
        Some(v) => from_json(&v, path, "`lineage`")?,
        None => return Err(Error::corrupt(path, "the database has no `lineage` key")),
    };
    Ok((lineage, read_serial(db, path)?))
}

/// The current serial.
fn read_serial(db: &sled::Db, path: &Path) -> Result<u64, Error> {
    match sled_call(path, || db.get(KEY_SERIAL))? {
        Some(v) => from_json(&v, path, "`serial`"),
        None => Err(Error::corrupt(path, "the database has no `serial` key")),
    }
}

/// The snapshot in `db`.
fn snapshot_of(db: &sled::Db, path: &Path) -> Result<Snapshot, Error> {
    let (lineage, serial) = read_header(db, path)?;
    let pairs: Vec<_> = sled_call(path, || db.scan_prefix(PREFIX_MANAGED).collect())?;
    let mut managed = BTreeMap::new();
    for (key, value) in pairs {
        let text = std::str::from_utf8(&key[PREFIX_MANAGED.len()..])
            .map_err(|_| Error::corrupt(path, "a managed key is not UTF-8"))?;
        let addr: ObjectRef = text
            .parse()
            .map_err(|e| Error::corrupt(path, format!("managed key `{text}` is not an address: {e}")))?;
        let entry: ManagedEntry = from_json(&value, path, &format!("the entry of `{text}`"))?;
        managed.insert(addr, entry);
    }
    Ok(Snapshot { lineage, serial, managed })
}

/// Reads `snapshot.json`: `None` if missing.
fn read_mirror(dir: &Path) -> Result<Option<Snapshot>, Error> {
    let path = dir.join(MIRROR_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path, source }),
    };
    let mirror: Mirror = from_json(&bytes, &path, "the snapshot")?;
    if mirror.format_version != FORMAT_VERSION {
        return Err(Error::Incompatible { found_version: mirror.format_version, reads: &[FORMAT_VERSION] });
    }
    Ok(Some(mirror.snapshot))
}

/// Cross-checks the database with `snapshot.json`, which is written only after a record is on
/// disk: a database *behind* it lost committed records (sled takes a truncated log for the tail
/// of a crash and silently recovers the prefix), and one with another lineage is another store.
fn check_against_mirror(dir: &Path, snapshot: &Snapshot) -> Result<(), Error> {
    let Some(mirror) = read_mirror(dir)? else {
        return Ok(());
    };
    let db_path = dir.join(DB_DIR);
    if mirror.lineage != snapshot.lineage {
        return Err(Error::corrupt(
            db_path,
            format!(
                "the database has lineage `{}` but `{MIRROR_FILE}` has `{}`: files of two stores were mixed",
                snapshot.lineage, mirror.lineage
            ),
        ));
    }
    if mirror.serial > snapshot.serial {
        return Err(Error::corrupt(
            db_path,
            format!(
                "the database is at serial `{}` but `{MIRROR_FILE}` saw serial `{}` committed: records were lost (a truncated or replaced file)",
                snapshot.serial, mirror.serial
            ),
        ));
    }
    Ok(())
}

/// The key of history entry `n`: big-endian, so keys sort in order.
fn history_key(n: u64) -> Vec<u8> {
    let mut key = PREFIX_HISTORY.as_bytes().to_vec();
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// The index of a `history/<n>` key.
fn history_index(key: &[u8], path: &Path) -> Result<u64, Error> {
    key.get(PREFIX_HISTORY.len()..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::corrupt(path, "a history key is malformed"))
}

/// JSON bytes of a value this crate defines (cannot fail in practice).
fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Internal { reason: format!("cannot serialise: {e}") })
}

/// Parses a stored JSON value; `what` names it in the error.
fn from_json<T: DeserializeOwned>(bytes: &[u8], path: &Path, what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::corrupt(path, format!("{what} is not valid: {e}")))
}

/// Runs a sled call, turning its errors and its panics (sled 0.34 panics on some damaged
/// files) into [`Error`].
fn sled_call<T>(path: &Path, f: impl FnOnce() -> sled::Result<T>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(from_sled(path, e)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(Error::corrupt(path, format!("the database failed while reading it: {message}")))
        }
    }
}

/// Maps a sled error: damaged data is [`Error::Corrupt`], a failing file system [`Error::Io`].
fn from_sled(path: &Path, e: sled::Error) -> Error {
    match e {
        sled::Error::Io(source) => match source.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => {
                Error::corrupt(path, format!("the database is truncated or damaged: {source}"))
            }
            _ => Error::Io { path: path.to_owned(), source },
        },
        sled::Error::Corruption { at, .. } => Error::corrupt(
            path,
            match at {
                Some(at) => format!("sled found damaged data at `{at:?}`"),
                None => "sled found damaged data".to_owned(),
            },
        ),
        sled::Error::Unsupported(reason) | sled::Error::ReportableBug(reason) => Error::corrupt(path, reason),
        sled::Error::CollectionNotFound(name) => {
            Error::Internal { reason: format!("sled tree `{}` not found", String::from_utf8_lossy(&name)) }
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Best effort: the database is the truth; a lagging mirror is brought up to date by the
        // next writable open.
        let pending = match self.mirror.get_mut() {
            Ok(cache) if cache.dirty => Some(cache.snapshot.clone()),
            _ => None,
        };
        if let Some(snapshot) = pending {
            let _ = self.write_mirror(&snapshot);
        }
    }
}
