//! The store's lock: an OS advisory lock (`flock` on Unix, through [`std::fs::File::try_lock`])
//! on the file `lock`, plus a side file `lock.json` that names the holder.
//!
//! Why an OS lock and not a key in the database: the kernel drops it when the holder's process
//! ends, however it ends (`kill -9`, out of memory, power loss), so there is never a stale lock
//! to "force-unlock" by hand. The side file is only a message to the next opener; it is trusted
//! only while the OS lock is held, and a stale one left by a killed holder is overwritten.

use crate::{Error, Operation, fsutil};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Who holds the store's lock, as written to `lock.json` by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// `user@host` of the holder.
    pub holder: String,
    /// Process id of the holder on its host.
    pub pid: u32,
    /// What the holder is doing (`apply`, `destroy`, [`Operation::Read`], …).
    pub operation: Operation,
    /// When the holder took the lock, seconds since the Unix epoch.
    pub started_unix: u64,
    /// For a lock that expires unless renewed (the cluster store's Lease): until when the
    /// holder last renewed it, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<u64>,
}

impl LockInfo {
    /// The info for this process, taking the lock now for `operation`.
    pub fn current(operation: Operation) -> LockInfo {
        LockInfo {
            holder: format!("{}@{}", user_name(), host_name()),
            pid: std::process::id(),
            operation,
            started_unix: now_unix(),
            expires_unix: None,
        }
    }

    /// The info used when the lock is held but `lock.json` cannot be read (the holder is not
    /// mip, or crashed between taking the lock and writing the file).
    fn unknown() -> LockInfo {
        LockInfo {
            holder: "unknown".to_owned(),
            pid: 0,
            operation: Operation::Unknown,
            started_unix: 0,
            expires_unix: None,
        }
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "held by `{}` (pid {}) for `{}` since {}",
            self.holder,
            self.pid,
            self.operation,
            rfc3339_utc(self.started_unix)
        )?;
        match self.expires_unix {
            Some(expires) => write!(f, ", lease valid until {} unless renewed", rfc3339_utc(expires)),
            None => Ok(()),
        }
    }
}

/// The held lock. Dropping it waits for the database to be closed, tightens the modes of every
/// file in the store (the database may have created files since the open), removes `lock.json`
/// and releases the OS lock, in that order.
#[derive(Debug)]
pub(crate) struct LockGuard {
    /// The open `lock` file; the OS lock lives as long as this descriptor.
    _file: File,
    /// The store directory.
    dir: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // The database handle was dropped just before (it is declared before the guard); let
        // sled's IO threads close it, so the next holder finds it free.
        crate::db_dir::wait_sled_closed(&self.dir.join(crate::db_dir::DB_DIR));
        // Best effort: nothing useful can be done with an error while dropping, and the OS lock
        // is released with the descriptor whatever happens here.
        let _ = fsutil::restrict_tree(&self.dir);
        let _ = std::fs::remove_file(self.dir.join(LOCK_INFO_FILE));
    }
}

/// The file the OS lock is taken on.
pub(crate) const LOCK_FILE: &str = "lock";
/// The side file naming the holder.
pub(crate) const LOCK_INFO_FILE: &str = "lock.json";

/// How long a writer waits for a reader to finish before reporting the lock as held.
const READER_WAIT: Duration = Duration::from_secs(3);
/// How often the lock is retried while waiting.
const RETRY_EVERY: Duration = Duration::from_millis(25);

/// Takes the lock of the store in `dir` for `operation`, or says who holds it.
///
/// `wait_for_readers`: if the holder is a reader, retry for a few seconds first.
pub(crate) fn acquire(dir: &Path, operation: Operation, wait_for_readers: bool) -> Result<LockGuard, Error> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(fsutil::FILE_MODE)
        .open(&path)
        .map_err(Error::io(&path))?;
    fsutil::chmod(&path, fsutil::FILE_MODE)?;
    let deadline = SystemTime::now() + READER_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(dir);
                let reader = matches!(holder.operation, Operation::Read);
                if wait_for_readers && reader && SystemTime::now() < deadline {
                    std::thread::sleep(RETRY_EVERY);
                    continue;
                }
                return Err(Error::LockHeld(holder));
            }
            Err(TryLockError::Error(source)) => return Err(Error::Io { path, source }),
        }
    }
    let info = LockInfo::current(operation);
    let bytes = serde_json::to_vec_pretty(&info).map_err(|e| Error::Internal { reason: e.to_string() })?;
    fsutil::write_atomic(&dir.join(LOCK_INFO_FILE), &bytes)?;
    Ok(LockGuard { _file: file, dir: dir.to_owned() })
}

/// Reads `lock.json` of a held lock. The holder writes it just after taking the lock, so a
/// missing or unreadable file is retried briefly before giving up on naming the holder.
fn read_holder(dir: &Path) -> LockInfo {
    for _ in 0..20 {
        if let Some(info) = std::fs::read(dir.join(LOCK_INFO_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<LockInfo>(&bytes).ok())
        {
            return info;
        }
        std::thread::sleep(RETRY_EVERY);
    }
    LockInfo::unknown()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The login name, from the environment (no libc call: `unsafe` is forbidden here).
fn user_name() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The host name, from the kernel where it says it, else the environment.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `2024-05-01T12:00:00Z` for a Unix time (the plain number for one past year 9999).
pub fn rfc3339_utc(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| unix.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn display_names_holder_pid_operation_and_time() {
        let info = LockInfo {
            holder: "ana@node1".into(),
            pid: 42,
            operation: Operation::Apply,
            started_unix: 0,
            expires_unix: None,
        };
        assert_eq!(info.to_string(), "held by `ana@node1` (pid 42) for `apply` since 1970-01-01T00:00:00Z");
        let lease = LockInfo { expires_unix: Some(30), ..info };
        assert!(lease.to_string().ends_with(", lease valid until 1970-01-01T00:00:30Z unless renewed"));
    }
}
