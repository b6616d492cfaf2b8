//! Owner-only files and directories, atomic writes and random ids.
//!
//! Modes are set with `chmod` after creation, so they do not depend on the caller's umask;
//! the store directory is made `0700` first, so a file is never readable by others even in the
//! moment between its creation (by sled, with the umask's mode) and its `chmod`.

use crate::Error;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Mode of every file in the store.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of the store directory and the directories in it.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Sets the permission bits of `path`.
pub(crate) fn chmod(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Error::io(path))
}

/// Creates `dir` (and missing parents) and makes `dir` itself `0700`.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(Error::io(dir))?;
    chmod(dir, DIR_MODE)
}

/// Makes every file below `dir` `0600` and every directory `0700` (symlinks are left alone).
pub(crate) fn restrict_tree(dir: &Path) -> Result<(), Error> {
    chmod(dir, DIR_MODE)?;
    for entry in fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(Error::io(&path))?;
        if kind.is_dir() {
            restrict_tree(&path)?;
        } else if kind.is_file() {
            chmod(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

/// [`mip_core::fsio::write_atomic`] of an owner-only (`0600`) file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    mip_core::fsio::write_atomic(path, bytes, Some(FILE_MODE)).map_err(Error::io(path))
}

/// [`mip_core::fsio::sync_dir`]: a rename in `dir` survives a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    mip_core::fsio::sync_dir(dir).map_err(Error::io(dir))
}

/// A random version-4 UUID, from the OS random source.
pub(crate) fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal { reason: format!("no random source: {e}") })?;
    Ok(uuid::Builder::from_random_bytes(bytes).into_uuid().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_uuid_shaped_and_differ() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_eq!(a.matches('-').count(), 4);
    }
}
