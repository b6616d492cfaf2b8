//! `mip import DIR`: an existing mip-infra checkout read back into an inventory (the
//! conversion is `mip_render::import`, pure; this reads the files and writes the result).

use crate::Error;
use mip_render::import::Imported;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every UTF-8 file under `dir` (relative paths), `.git` skipped; other files are left out.
fn read_tree(dir: &Path) -> Result<BTreeMap<PathBuf, String>, Error> {
    let err = |p: &Path| {
        let path = p.display().to_string();
        move |source| Error::ReadTree { path, source }
    };
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = if rel.as_os_str().is_empty() { dir.to_path_buf() } else { dir.join(&rel) };
        for entry in std::fs::read_dir(&abs).map_err(err(&abs))? {
            let entry = entry.map_err(err(&abs))?;
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let path = rel.join(&name);
            let kind = entry.file_type().map_err(err(&entry.path()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).map_err(err(&entry.path()))?;
                if let Ok(text) = String::from_utf8(bytes) {
                    out.insert(path, text);
                }
            }
        }
    }
    Ok(out)
}

/// Imports the checkout at `dir`; with `out`, writes the inventory there (atomically, nothing
/// written on error) instead of returning it for stdout.
///
/// # Errors
/// [`Error::ReadTree`], [`Error::NotATree`] when no mip-infra ApplicationSet is found,
/// [`Error::WriteInventory`].
pub fn import(dir: &Path, out: Option<&Path>) -> Result<Imported, Error> {
    let files = read_tree(dir)?;
    let imported = mip_render::import::import(&files, &dir.display().to_string()).map_err(Error::NotATree)?;
    if let Some(path) = out {
        mip_core::fsio::write_atomic(path, imported.inventory.as_bytes(), None)
            .map_err(|source| Error::WriteInventory { path: path.display().to_string(), source })?;
    }
    Ok(imported)
}
