//! The one atomic file write of mip, and the directory `fsync` it ends with.
//!
//! Inventories, rendered GitOps files, plan files and the local state's files are all written
//! the same way, so that every one of them survives a crash or a power loss in one piece.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent writes from one process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that a reader sees the old or the new content, never a mix.
///
/// # Guarantees
/// - The data goes to a temporary file in the same directory, is `fsync`ed, renamed over
///   `path`, and the directory is `fsync`ed, so the new content survives a power loss once
///   this returns.
/// - `Some(mode)` sets the permission bits (e.g. `0o600`) on the temporary file before any data
///   is written, whatever the umask, so the content is never readable by others. `None` keeps
///   the permissions of the file being replaced, or the umask's default for a new file.
/// - Through a symbolic link, the link's target is replaced and the link kept.
/// - On failure, the temporary file is removed and `path` is left as it was.
///
/// # Errors
/// The first IO error; the parent directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let target = if path.is_symlink() { fs::canonicalize(path)? } else { path.to_path_buf() };
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp =
        dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), NEXT_TMP.fetch_add(1, Ordering::Relaxed)));
    let permissions = match mode {
        Some(mode) => Some(fs::Permissions::from_mode(mode)),
        None => match fs::metadata(&target) {
            Ok(m) => Some(m.permissions()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        },
    };
    let written = match write_synced(&tmp, bytes, permissions.clone()) {
        // Left behind by a crashed process that had the same id: never written through.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp).and_then(|()| write_synced(&tmp, bytes, permissions))
        }
        other => other,
    }
    .and_then(|()| fs::rename(&tmp, &target));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(&dir)
}

/// `fsync` of a directory, so that a rename or a creation in it survives a power loss.
///
/// # Errors
/// The IO error of opening or syncing `dir`.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `tmp` afresh (never through an existing file or link; only for its owner until
/// `permissions` are set), sets the permissions, writes `bytes` and `fsync`s.
fn write_synced(tmp: &Path, bytes: &[u8], permissions: Option<fs::Permissions>) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    if permissions.is_some() {
        options.mode(0o600);
    }
    let mut f = options.open(tmp)?;
    if let Some(p) = permissions {
        f.set_permissions(p)?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_an_existing_file_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("plan.json");
        fs::write(&path, "old content, longer than the new").unwrap();
        write_atomic(&path, b"new", None).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(entries(dir), ["plan.json"]);
    }

    #[test]
    fn sets_the_given_mode_on_new_and_replaced_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("state.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"private", Some(0o600)).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        write_atomic(&dir.join("new.json"), b"{}", Some(0o640)).unwrap();
        assert_eq!(fs::metadata(dir.join("new.json")).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(entries(dir), ["new.json", "state.json"]);
    }

    #[test]
    fn without_a_mode_keeps_the_replaced_files_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("mip.yaml");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"new", None).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn through_a_symbolic_link_replaces_the_target_and_keeps_the_link() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let target = dir.join("real.yaml");
        let link = dir.join("mip.yaml");
        fs::write(&target, "old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new", None).unwrap();
        assert!(link.is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(entries(dir), ["mip.yaml", "real.yaml"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("occupied");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), "x").unwrap();
        assert!(write_atomic(&path, b"new", None).is_err(), "a non-empty directory cannot be replaced");
        assert_eq!(entries(dir), ["occupied"]);
    }
}
