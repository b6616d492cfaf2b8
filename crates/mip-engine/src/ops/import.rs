//! `mip import DIR`: an existing mip-infra checkout read back into an inventory (the
//! conversion is `mip_render::import`, pure; this reads the files and writes the result).

use crate::Error;
use mip_render::import::Imported;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every UTF-8 file under `dir` (relative paths), `.git` skipped; other files are left out.
fn read_tree(dir: &Path) -> Result<BTreeMap<PathBuf, String>, Error> {
    let files = super::render::read_checkout(dir, |_, path, source| Error::ReadTree {
        path: path.display().to_string(),
        source,
    })?;
    Ok(files.into_iter().filter_map(|(path, text)| Some((path, text?))).collect())
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
