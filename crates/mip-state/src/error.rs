//! The one error type of the crate. Causes go in `#[source]`, never into the message, so an
//! `anyhow` chain prints each of them once; every variant has a [`Error::hint`] saying what to do.

use crate::LockInfo;
use std::path::PathBuf;

/// What can go wrong opening, reading or writing the state store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the store's lock (an `apply` in progress, or a reader).
    #[error("the state store is locked: {0}")]
    LockHeld(LockInfo),
    /// The store's files exist but cannot be understood: damaged, truncated, half-written by
    /// something other than mip, or missing keys every mip store has.
    #[error("the state store at `{}` is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file or directory that is damaged.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The file system refused a read or a write (permissions, full disk, not a directory).
    #[error("cannot read or write the state store at `{}`", path.display())]
    Io {
        /// The file or directory mip was working on.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store was written by a mip with another state format: a newer mip (upgrade), or
    /// something this mip never wrote.
    #[error(
        "the state store has format version `{found_version}`, this mip reads version {}",
        versions(reads)
    )]
    Incompatible {
        /// The `format_version` the store records.
        found_version: String,
        /// The versions this mip reads, oldest first (it writes the last one).
        reads: &'static [&'static str],
    },
    /// A store kept elsewhere (the cluster store of `mip-kube`) could not be read or written:
    /// the API server is unreachable, refused the request, or the namespace is missing.
    #[error("cannot read or write the state in {location}: {reason}")]
    Remote {
        /// Where the state is (`Secret mip-system/mip-state on https://…`).
        location: String,
        /// What went wrong.
        reason: String,
        /// What to do about it.
        hint: String,
    },
    /// A store kept elsewhere is damaged: a chunk is missing or its checksum does not match.
    #[error("the state in {location} is corrupt: {reason}")]
    CorruptRemote {
        /// Where the state is.
        location: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The lock was lost while held: the holder could not renew its lease in time and another
    /// process took it, or the state was written by someone else meanwhile. Nothing more is
    /// written.
    #[error("lost the state lock on {location}: {reason}")]
    LockLost {
        /// Where the state is.
        location: String,
        /// What happened.
        reason: String,
    },
    /// [`crate::StateStore::import`] into a store that already holds state.
    #[error("the destination state store {location} is not empty (serial {serial}, {entries} object(s))")]
    NotEmpty {
        /// The destination.
        location: String,
        /// Its serial.
        serial: u64,
        /// How many objects it manages.
        entries: usize,
    },
    /// A broken invariant of this crate (a bug, not a problem with the store or the machine).
    #[error("internal error in the state store: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },
}

/// `` `1` `` or `` `1` and `2` ``.
fn versions(reads: &[&str]) -> String {
    let quoted: Vec<String> = reads.iter().map(|v| format!("`{v}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => "none".to_owned(),
    }
}

impl Error {
    /// What the user can do about it, one line without a trailing period.
    pub fn hint(&self) -> String {
        match self {
            Error::LockHeld(_) => {
                "wait for it to finish; a killed holder releases the lock automatically".to_owned()
            }
            Error::Corrupt { path, .. } => format!(
                "restore the state store directory that holds `{}` from a backup, or move that directory aside (keep it to inspect) to start a new store; mip never repairs a store on its own",
                path.display()
            ),
            Error::Io { path, .. } => format!(
                "check that `{}` exists, is yours and is writable, and that the disk is not full",
                path.display()
            ),
            Error::Incompatible { found_version, reads } => {
                let newest = reads.last().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                match found_version.parse::<u64>() {
                    Ok(found) if found > newest => format!(
                        "the state was written by a newer mip (format {found_version}); upgrade mip (`mip --version` says which one you run): a mip reads every older format, never a newer one"
                    ),
                    _ => "use the mip release that wrote this store, or a newer one".to_owned(),
                }
            }
            Error::Remote { hint, .. } => hint.clone(),
            Error::CorruptRemote { .. } => "restore the state from a backup (e.g. `mip state migrate --from local --to cluster` from a local copy), or delete the state Secrets to start a new store and run `mip state rebuild`; mip never repairs a store on its own".to_owned(),
            Error::LockLost { .. } => "nothing more was written; check who holds the lock now, then re-run: the next plan shows what is left to do".to_owned(),
            Error::NotEmpty { .. } => "migrate into a new, empty store (another `--state-dir` or `--state-name`), or remove the destination first".to_owned(),
            Error::Internal { .. } => {
                "this is a bug in mip; please report it with the command you ran".to_owned()
            }
        }
    }

    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// An [`Error::Corrupt`] for `path`.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Corrupt { path: path.into(), reason: reason.into() }
    }
}
