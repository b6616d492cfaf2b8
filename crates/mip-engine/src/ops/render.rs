//! `mip render DIR [--check] [--adopt]`: the GitOps tree of the inventory compared with the
//! checkout in DIR, then checked (`--check`, nothing written) or written. The tree, the
//! comparison and the takeover trims are pure (`mip_render`); this reads the checkout and
//! writes, adopts and deletes its files.

use super::load;
use crate::Error;
use crate::load::LoadOptions;
use crate::seams::Hook;
use mip_core::Diagnostics;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use mip_render::takeover::Trim;
pub use mip_render::{TreeStatus, UserFile};

/// What to render, and where.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    /// The inventory (and `--revision`).
    pub load: LoadOptions,
    /// The tree's root (the checkout of the GitOps repository).
    pub dir: PathBuf,
    /// `--check`: compare only, write nothing.
    pub check: bool,
    /// `--adopt`: take over the user's files at paths mip renders.
    pub adopt: bool,
}

/// How a render ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `--check`: the checkout is what the inventory renders, and every file of the user's it
    /// names is there.
    UpToDate,
    /// `--check`: something differs (see [`Rendered::diff`]); nothing was written.
    OutOfDate,
    /// Files mip did not generate are at paths it renders, and `--adopt` was not given:
    /// nothing was written.
    InTheWay,
    /// The tree was written: missing and changed files, adopted files and trims; stale
    /// generated files removed.
    Written,
}

/// What a render found and did. Paths are relative to [`RenderRequest::dir`].
#[derive(Debug, Clone)]
pub struct Rendered {
    /// How it ended.
    pub verdict: Verdict,
    /// How many files the inventory renders.
    pub generated: usize,
    /// How the checkout compared with the rendered tree (before anything was written).
    pub status: TreeStatus,
    /// The operator's files that declare objects mip applies itself, without those documents
    /// (written unless `--check`: one owner per object).
    pub trims: Vec<Trim>,
    /// The user's files the inventory names (values, patches) that the checkout lacks.
    pub missing_user_files: Vec<UserFile>,
    /// The same, as located errors (what `--check` reports).
    pub missing: Diagnostics,
    /// A unified diff: with `--check`, everything that is out of date; when written, what
    /// adopting and trimming changed in the user's files. Empty otherwise.
    pub diff: String,
}

/// Which file-system call failed on a file of a tree.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TreeIo {
    /// Listing a directory.
    ReadDir,
    /// Reading a directory entry's type.
    Inspect,
    /// Reading a file.
    Read,
}

impl TreeIo {
    fn action(self) -> &'static str {
        match self {
            TreeIo::ReadDir => "read directory",
            TreeIo::Inspect => "inspect",
            TreeIo::Read => "read",
        }
    }
}

/// Every file under `dir` (relative paths), `.git` skipped; `None` for a file that is not
/// UTF-8. `err` turns a failed call on a path into the caller's error.
pub(crate) fn read_checkout(
    dir: &Path,
    err: impl Fn(TreeIo, &Path, std::io::Error) -> Error,
) -> Result<BTreeMap<PathBuf, Option<String>>, Error> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = if rel.as_os_str().is_empty() { dir.to_path_buf() } else { dir.join(&rel) };
        let entries = std::fs::read_dir(&abs).map_err(|e| err(TreeIo::ReadDir, &abs, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| err(TreeIo::ReadDir, &abs, e))?;
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let path = rel.join(&name);
            let kind = entry.file_type().map_err(|e| err(TreeIo::Inspect, &entry.path(), e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).map_err(|e| err(TreeIo::Read, &entry.path(), e))?;
                out.insert(path, String::from_utf8(bytes).ok());
            }
        }
    }
    Ok(out)
}

/// The checkout of a tree mip renders or checks: empty when `dir` does not exist yet.
pub(crate) fn read_tree_files(dir: &Path) -> Result<BTreeMap<PathBuf, Option<String>>, Error> {
    if !dir.exists() {
        return Ok(BTreeMap::new());
    }
    read_checkout(dir, |io, path, source| tree_error(io.action(), path, source))
}

fn tree_error(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::FileIo { action, path: path.display().to_string(), source }
}

/// Writes a generated file atomically ([`mip_core::fsio::write_atomic`]), creating its
/// directory.
fn write_generated(path: &Path, text: &str) -> Result<(), Error> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| tree_error("create directory", parent, e))?;
    mip_core::fsio::write_atomic(path, text.as_bytes(), None).map_err(|e| tree_error("write", path, e))
}

/// The diff of one file of the checkout against its new text (`None`: absent).
fn diff_of(checkout: &BTreeMap<PathBuf, Option<String>>, path: &Path, new: Option<&str>) -> String {
    mip_render::diff(path, checkout.get(path).and_then(Option::as_deref), new)
}

/// Renders (see the [module docs](self)).
///
/// # Errors
/// The load errors; [`Error::FileIo`] when the checkout cannot be read or written (files
/// written before it stay); [`Error::Takeover`] when an operator's file cannot be trimmed.
pub fn render(req: &RenderRequest, hook: &dyn Hook) -> Result<Rendered, Error> {
    let loaded = load(&req.load, hook)?;
    let resolve = mip_graph::ResolveOptions { revision: req.load.revision.clone() };
    let files = mip_render::render(&loaded.inventory, &resolve);
    let checkout = read_tree_files(&req.dir)?;
    let status = mip_render::compare(&files, &checkout, &loaded.inventory.tree);
    // One owner per object: documents of the operator's that declare what mip applies.
    let trims =
        mip_render::takeover::trims(&loaded.desired, &loaded.inventory.argocd.namespace.value, &checkout)
            .map_err(Error::Takeover)?;
    let missing = mip_render::missing_user_files(&loaded.inventory, |p| checkout.contains_key(p));
    let missing_user_files: Vec<UserFile> = mip_render::user_files_located(&loaded.inventory)
        .into_iter()
        .filter(|f| !checkout.contains_key(&f.path))
        .collect();
    let mut out = Rendered {
        verdict: Verdict::Written,
        generated: files.len(),
        status,
        trims,
        missing_user_files,
        missing,
        diff: String::new(),
    };
    let (status, trims) = (&out.status, &out.trims);
    let trim_diffs = || trims.iter().map(|t| diff_of(&checkout, &t.path, Some(&t.text)));
    let rendered_diff = |p: &PathBuf| diff_of(&checkout, p, files.get(p).map(String::as_str));
    if req.check {
        let mut diff: String = trim_diffs().collect();
        diff.extend(status.missing.iter().chain(&status.changed).map(rendered_diff));
        diff.extend(status.stale.iter().map(|p| diff_of(&checkout, p, None)));
        let up_to_date = status.up_to_date() && out.missing.is_empty() && trims.is_empty();
        out.verdict = if up_to_date { Verdict::UpToDate } else { Verdict::OutOfDate };
        out.diff = diff;
        return Ok(out);
    }
    if !status.conflicts.is_empty() && !req.adopt {
        out.verdict = Verdict::InTheWay;
        return Ok(out);
    }
    // Taking over: what changes in each file, then what leaves the operator's files.
    let diff: String = status.conflicts.iter().map(rendered_diff).chain(trim_diffs()).collect();
    for p in status.conflicts.iter().chain(&status.missing).chain(&status.changed) {
        write_generated(&req.dir.join(p), &files[p])?;
    }
    for t in trims {
        write_generated(&req.dir.join(&t.path), &t.text)?;
    }
    for p in &status.stale {
        let abs = req.dir.join(p);
        std::fs::remove_file(&abs).map_err(|e| tree_error("remove stale generated file", &abs, e))?;
    }
    out.diff = diff;
    Ok(out)
}
