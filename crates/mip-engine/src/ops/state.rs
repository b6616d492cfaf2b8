//! The `mip state` commands: read (list, show, history) without the write lock where the
//! backend allows it; `rm`, `rebuild` and `migrate` under the lock.

use super::{Env, open, record_history};
use crate::Error;
use crate::backend::BackendKind;
use crate::load::{LoadOptions, state_settings};
use crate::seams::{Connector, Operation};
use mip_core::ObjectRef;
use mip_state::{HistoryEntry, Outcome, Snapshot};

pub use mip_state::{DEFAULT_HISTORY_LIMIT, ManagedEntry, rfc3339_utc};
use std::path::Path;

/// The state and, when asked for, its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateView {
    /// The state.
    pub snapshot: Snapshot,
    /// The history (empty unless asked for).
    pub history: Vec<HistoryEntry>,
}

/// Reads the state of the backend the flags or the inventory's `state:` section choose.
///
/// # Errors
/// [`Error::NoState`] when there is none; inventory and state errors.
pub async fn read<K: Connector>(
    env: &Env<'_, K>,
    inventory: &Path,
    history: bool,
) -> Result<StateView, Error> {
    let backend = backend(env, inventory, None)?;
    match backend.read(history).await? {
        Some((snapshot, history)) => Ok(StateView { snapshot, history }),
        None => Err(Error::NoState(backend.describe())),
    }
}

/// The backend of a state command (`kind` overrides the flags' and the inventory's choice);
/// the inventory file is read for its `state:` section only, and only if it exists.
fn backend<K: Connector>(
    env: &Env<'_, K>,
    inventory: &Path,
    kind: Option<BackendKind>,
) -> Result<Box<dyn mip_state::Backend>, Error> {
    let settings =
        if env.state.backend.is_some() && kind.is_none() { None } else { state_settings(inventory)? };
    let spec = match kind {
        Some(kind) => env.state.spec_of(kind, settings.as_ref()),
        None => env.state.spec(settings.as_ref()),
    };
    env.backends.build(&spec, None)
}

/// Forgets one object (it stays in the cluster); the object and the new serial.
///
/// # Errors
/// [`Error::BadAddress`], [`Error::NotInState`], state errors.
pub async fn rm<K: Connector>(
    env: &Env<'_, K>,
    inventory: &Path,
    address: &str,
) -> Result<(ObjectRef, u64), Error> {
    let addr: ObjectRef = address
        .parse()
        .map_err(|e: mip_core::AddressError| Error::BadAddress { flag: "state rm", reason: e.to_string() })?;
    let store =
        open(backend(env, inventory, None)?.as_ref(), Operation::StateRm, env.state.lock_timeout).await?;
    if !store.snapshot()?.managed.contains_key(&addr) {
        return Err(Error::NotInState(addr));
    }
    let serial = store.record(&addr, None)?;
    record_history(store.as_ref(), Operation::StateRm, Outcome::Completed, format!("forgot {addr}"))?;
    Ok((addr, serial))
}

/// Rebuilds the state from the cluster; how many objects were recorded.
///
/// # Errors
/// Inventory, cluster and state errors.
pub async fn rebuild<K: Connector>(env: &Env<'_, K>, load: &LoadOptions) -> Result<usize, Error> {
    let loaded = env.load(load)?;
    let cluster = env.connect(&loaded).await?;
    env.counted(&cluster, async {
        let backend = env.backend(&loaded, Some(&cluster))?;
        let store = open(backend.as_ref(), Operation::StateRebuild, env.state.lock_timeout).await?;
        let n = crate::live::rebuild_state(&cluster, store.as_ref(), &loaded).await?;
        record_history(store.as_ref(), Operation::StateRebuild, Outcome::Completed, format!("{n} recorded"))?;
        Ok(n)
    })
    .await
}

/// What a migration copied.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// The state copied.
    pub snapshot: Snapshot,
    /// How many history entries.
    pub history: usize,
    /// The source, for messages.
    pub source: String,
    /// The destination, for messages.
    pub destination: String,
}

/// Copies everything into the empty destination, reads it back and compares, and leaves the
/// source as it was.
///
/// # Errors
/// [`Error::SameBackend`], [`Error::NothingToMigrate`] (nothing created),
/// [`Error::MigrationMismatch`], state errors (`NotEmpty` for a destination that holds a state).
pub async fn migrate<K: Connector>(
    env: &Env<'_, K>,
    inventory: &Path,
    from: BackendKind,
    to: BackendKind,
) -> Result<Migrated, Error> {
    if from == to {
        return Err(Error::SameBackend);
    }
    let source = backend(env, inventory, Some(from))?;
    let destination = backend(env, inventory, Some(to))?;
    // Read first: opening creates an empty store, and an empty source must create nothing.
    if source.read(false).await?.is_none() {
        return Err(Error::NothingToMigrate { source_desc: source.describe() });
    }
    let src = open(source.as_ref(), Operation::StateMigrate, env.state.lock_timeout).await?;
    let dst = open(destination.as_ref(), Operation::StateMigrate, env.state.lock_timeout).await?;
    let snapshot = src.snapshot()?;
    let history = src.history()?;
    dst.import(&snapshot, &history)?;
    // Read back what the destination holds now, through a fresh read after release.
    drop(dst);
    let copied = destination.read(true).await?;
    if copied.as_ref() != Some(&(snapshot.clone(), history.clone())) {
        return Err(Error::MigrationMismatch {
            destination: destination.describe(),
            source_desc: source.describe(),
        });
    }
    drop(src);
    Ok(Migrated {
        history: history.len(),
        snapshot,
        source: source.describe(),
        destination: destination.describe(),
    })
}
