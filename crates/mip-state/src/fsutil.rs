//! Owner-only files and directories, atomic writes and random ids.
//!
//! Modes are set with `chmod` after creation, so they do not depend on the caller's umask;
//! the store directory is made `0700` first, so a file is never readable by others even in the
//! moment between its creation (by sled, with the umask's mode) and its `chmod`.

use crate::Error;
use std::fs;
use std::io::Read;
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

/// A random id shaped like a version-4 UUID, from the kernel's random source.
pub(crate) fn random_id() -> Result<String, Error> {
    let path = Path::new("/dev/urandom");
    let mut b = [0u8; 16];
    fs::File::open(path).and_then(|mut f| f.read_exact(&mut b)).map_err(Error::io(path))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
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
