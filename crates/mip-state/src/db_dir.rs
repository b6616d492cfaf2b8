//! Where the sled database lives in the store directory, and waiting for sled to let go of
//! it: shared by the store ([`crate::sled_store`]) and its lock ([`crate::lock`], which waits
//! before it releases), so that neither depends on the other for it.

use std::path::Path;
use std::time::{Duration, Instant};

/// The sled directory inside the store directory.
pub(crate) const DB_DIR: &str = "db";

/// How long a dropped sled instance may keep its file locked.
pub(crate) const SLED_RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Waits until no sled instance has the database in `db_path` open (its `flock` is free), so
/// that dropping a store really closes it before the store lock is released.
pub(crate) fn wait_sled_closed(db_path: &Path) {
    let deadline = Instant::now() + SLED_RELEASE_WAIT;
    let Ok(file) = std::fs::File::open(db_path.join("db")) else {
        return;
    };
    while Instant::now() < deadline {
        match file.try_lock() {
            Ok(()) => return, // released when `file` drops
            Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(5)),
            Err(std::fs::TryLockError::Error(_)) => return,
        }
    }
}
