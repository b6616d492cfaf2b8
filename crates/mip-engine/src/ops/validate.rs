//! `mip validate [--tree DIR] [--branch-check [--branch NAME]]`: the inventory loaded (parse,
//! resolution, Argo CD's checks, ordering), the files of the user's it names looked for in a
//! rendered tree, and its revisions (and the tree's) checked against the Git branch.

use super::load;
use super::render::read_tree_files;
use crate::Error;
use crate::load::{LoadOptions, Loaded};
use crate::seams::Hook;
use mip_core::Diagnostics;
use std::path::{Path, PathBuf};

pub use mip_graph::Step;

/// What to check.
#[derive(Debug, Clone)]
pub struct ValidateRequest {
    /// The inventory.
    pub load: LoadOptions,
    /// `--tree DIR`: a rendered tree that must hold every file of the user's the inventory names.
    pub tree: Option<PathBuf>,
    /// `--branch-check`: also check revisions against the branch.
    pub branch_check: bool,
    /// `--branch`: the branch (default: `.git/HEAD` above the inventory).
    pub branch: Option<String>,
}

/// The branch check's result.
#[derive(Debug, Clone)]
pub struct BranchChecked {
    /// The branch checked against.
    pub branch: String,
    /// Every offending revision, located.
    pub offenders: Diagnostics,
}

/// What validation found. An invalid inventory is [`Error::Invalid`].
#[derive(Debug)]
pub struct Validated {
    /// The inventory, resolved and ordered.
    pub loaded: Loaded,
    /// With `--tree`: the files of the user's the tree lacks (located errors).
    pub missing_files: Option<Diagnostics>,
    /// With `--branch-check`, unless files are missing: the offending revisions.
    pub branch: Option<BranchChecked>,
}

impl Validated {
    /// Whether a check found errors (the inventory itself is valid).
    pub fn has_errors(&self) -> bool {
        self.missing_files.as_ref().is_some_and(Diagnostics::has_errors)
            || self.branch.as_ref().is_some_and(|b| b.offenders.has_errors())
    }
}

/// Validates (see the [module docs](self)).
///
/// # Errors
/// The load errors ([`Error::Invalid`] with every problem); for the branch check,
/// [`Error::FileIo`] reading the tree or `.git`, [`Error::DetachedHead`],
/// [`Error::NoGitRepository`].
pub fn validate(req: &ValidateRequest, hook: &dyn Hook) -> Result<Validated, Error> {
    let loaded = load(&req.load, hook)?;
    let missing_files = req
        .tree
        .as_deref()
        .map(|dir| mip_render::missing_user_files(&loaded.inventory, |p| dir.join(p).is_file()));
    let branch = if req.branch_check && !missing_files.as_ref().is_some_and(Diagnostics::has_errors) {
        let branch = match &req.branch {
            Some(b) => b.clone(),
            None => current_branch(&req.load.inventory)?,
        };
        let offenders = branch_check(&loaded, &branch, req.tree.as_deref())?;
        Some(BranchChecked { branch, offenders })
    } else {
        None
    };
    Ok(Validated { loaded, missing_files, branch })
}

/// The revisions of the inventory, and of the YAML files of `tree`, that do not match `branch`.
fn branch_check(loaded: &Loaded, branch: &str, tree: Option<&Path>) -> Result<Diagnostics, Error> {
    let mut diags = mip_render::branch::check_inventory(&loaded.inventory, branch);
    let Some(dir) = tree else { return Ok(diags) };
    let repos = &loaded.inventory.repositories;
    let own = [repos.infra.url.value.as_str(), repos.deployments.url.value.as_str()];
    for (rel, text) in read_tree_files(dir)? {
        let Some(text) = text else { continue };
        let is_yaml = rel.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml {
            continue;
        }
        // The user's own YAML (values, patches, manifests) is checked too, when it parses:
        // a Helm template need not be YAML, a generated file must be.
        let file = dir.join(&rel).display().to_string();
        match mip_inventory::yaml::parse_stream(&file, &text) {
            Ok(docs) => diags.extend(mip_render::branch::check_documents(&file, &docs, branch, &own)),
            Err(d) if mip_render::is_generated(&text) => diags.push(d),
            Err(_) => {}
        }
    }
    Ok(diags)
}

/// The current branch from `.git/HEAD` of the repository holding `start` (a worktree's
/// `.git` file is followed).
fn current_branch(start: &Path) -> Result<String, Error> {
    let io = |action, path: &Path| {
        let path = path.display().to_string();
        move |source| Error::FileIo { action, path, source }
    };
    let start = std::fs::canonicalize(start).map_err(io("resolve", start))?;
    let mut dir = if start.is_dir() {
        start.clone()
    } else {
        start.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    loop {
        let git = dir.join(".git");
        if git.is_dir() || git.is_file() {
            let git_dir = if git.is_file() {
                let text = std::fs::read_to_string(&git).map_err(io("read", &git))?;
                let target = text.trim().strip_prefix("gitdir: ").map(str::to_owned).unwrap_or_default();
                dir.join(target)
            } else {
                git
            };
            let head = git_dir.join("HEAD");
            let text = std::fs::read_to_string(&head).map_err(io("read", &head))?;
            return mip_render::branch::branch_from_head(&text)
                .ok_or_else(|| Error::DetachedHead(head.display().to_string()));
        }
        if !dir.pop() {
            return Err(Error::NoGitRepository(start.display().to_string()));
        }
    }
}
