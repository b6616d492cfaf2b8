//! `mip plan --base REF` and `--base-inventory FILE`: the review plan of what the inventory
//! changes against its base, with no cluster and no state (`mip_plan::review` compares; this
//! module reads the two inventories).
//!
//! The base at a Git revision is read with the `git` command, from the repository the
//! inventory lives in: a CI checkout is a Git working tree that only `git` itself reads
//! faithfully (packed and promisor objects of shallow or partial clones, worktrees,
//! `safe.directory`, replace refs), and an operator has it installed anyway. Only plumbing
//! (`rev-parse`, `cat-file`) is run, with no pager, no prompt and no textconv, so the bytes are
//! the committed ones.

use super::plan::Planned;
use super::targets::narrow;
use crate::Error;
use crate::load::{LoadOptions, Loaded, ReadRelative, load_bytes};
use mip_graph::{Dag, Desired};
use mip_plan::review::{Side, review as compare};
use mip_plan::{BaseRef, FileChange, FileStatus, Mode, PlanInput};
use mip_render::reads::Reader;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the base inventory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// The same inventory file at a Git revision (`--base REF`).
    Git(String),
    /// Another file (`--base-inventory FILE`); its prerequisites are read next to it.
    File(PathBuf),
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct ReviewRequest {
    /// The head inventory (and `--revision`, applied to both sides).
    pub load: LoadOptions,
    /// The base.
    pub base: Base,
    /// `--target` addresses, as typed.
    pub targets: Vec<String>,
    /// Save the plan here (owner-only file), for `mip show`.
    pub out: Option<PathBuf>,
}

/// Plans what the head inventory changes against the base (see the [module docs](self)).
///
/// # Errors
/// The head's load errors; [`Error::ReadBase`] when the base cannot be read;
/// [`Error::Invalid`] when the base does not load (its locations name it as `REV:path`);
/// [`Error::UnknownTarget`], [`Error::BadAddress`]; plan-file write errors.
pub fn review(req: &ReviewRequest) -> Result<Planned, Error> {
    let head = crate::load::load(&req.load)?;
    let base = match &req.base {
        Base::File(path) => Some(crate::load::load(&LoadOptions {
            inventory: path.clone(),
            revision: req.load.revision.clone(),
        })?),
        Base::Git(rev) => load_at_revision(&req.load.inventory, rev, req.load.revision.as_ref())?,
    };
    let base_ref = BaseRef {
        inventory: base
            .as_ref()
            .map_or_else(|| base_name(&req.base, &req.load.inventory), |b| b.path.clone()),
        inventory_digest: base.as_ref().map(|b| b.digest.clone()).unwrap_or_default(),
        git_revision: match &req.base {
            Base::Git(rev) => Some(rev.clone()),
            Base::File(_) => None,
        },
    };
    let empty = Desired {
        objects: Default::default(),
        revision: String::new(),
        prefix: String::new(),
        warnings: Default::default(),
    };
    let empty_dag = Dag::build(&empty.objects)
        .map_err(|e| Error::ReadBase { base: base_ref.inventory.clone(), reason: e.to_string() })?;
    let base_side = match &base {
        Some(b) => Side { desired: &b.desired, dag: &b.dag },
        None => Side { desired: &empty, dag: &empty_dag },
    };
    let input = PlanInput {
        inventory: &head.path,
        inventory_digest: head.digest.clone(),
        mode: Mode::Review,
        mip_version: env!("CARGO_PKG_VERSION"),
    };
    let plan = compare(base_side, Side { desired: &head.desired, dag: &head.dag }, &input, base_ref);
    // At a Git revision, the files of the tree too: what Argo CD reads changes with them.
    let plan = match &req.base {
        Base::Git(rev) => {
            let files = edited_files(&req.load.inventory, rev, &head, base.as_ref())?;
            mip_plan::review::with_files(plan, files)
        }
        Base::File(_) => plan,
    };
    let plan = narrow(plan, &req.targets)?;
    if let Some(path) = &req.out {
        super::plan::save(&plan, path)?;
    }
    Ok(Planned { loaded: head, plan })
}

/// The Applications of a desired state as [`Reader`]s: their sources' paths in our own
/// repositories and their `$values/` files.
fn readers_of(loaded: &Loaded) -> Vec<Reader> {
    let repos = &loaded.inventory.repositories;
    let own = [repos.infra.url.value.as_str(), repos.deployments.url.value.as_str()];
    loaded
        .desired
        .objects
        .values()
        .filter(|o| o.addr.is(mip_core::Kind::Application))
        .map(|o| {
            let body = o.body();
            let spec = body.get("spec");
            let sources: Vec<&serde_json::Value> = spec
                .and_then(|s| s.get("sources"))
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .chain(spec.and_then(|s| s.get("source")))
                .collect();
            let paths = sources
                .iter()
                .filter(|s| s["repoURL"].as_str().is_some_and(|u| own.contains(&u)))
                .filter_map(|s| s["path"].as_str().map(str::to_owned))
                .collect();
            let values = sources
                .iter()
                .flat_map(|s| {
                    s.pointer("/helm/valueFiles").and_then(serde_json::Value::as_array).into_iter().flatten()
                })
                .filter_map(|v| v.as_str()?.strip_prefix("$values/").map(str::to_owned))
                .collect();
            Reader { address: (*o.addr).clone(), parent: o.generated_by.as_deref().cloned(), paths, values }
        })
        .collect()
}

/// The files of the tree (`tree.path`, relative to the inventory) that differ between `rev`
/// and the work tree and that an Application reads (at the head, or at the base for a file
/// the change deletes), each with its masked diff and its readers.
fn edited_files(
    inventory: &Path,
    rev: &str,
    head: &Loaded,
    base: Option<&Loaded>,
) -> Result<Vec<FileChange>, Error> {
    let tree = head.inventory.tree.path.as_ref().map_or(".", |p| p.value.as_str());
    let git = Git { dir: dir_of(inventory).join(tree), rev: rev.to_owned() };
    let fail = |reason: String| Error::ReadBase { base: format!("{rev}:{tree}"), reason };
    let before = git.files_at_revision().map_err(|e| fail(e.unwrap_or_default()))?;
    let after = git.files_in_work_tree().map_err(|e| fail(e.unwrap_or_default()))?;
    let head_readers = mip_render::reads::readers(&after, &readers_of(head));
    let base_readers = base.map(|b| mip_render::reads::readers(&before, &readers_of(b))).unwrap_or_default();
    let mut out = Vec::new();
    let paths: std::collections::BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let (old, new) = (before.get(path), after.get(path));
        if old == new {
            continue;
        }
        let status = match (old, new) {
            (None, _) => FileStatus::Added,
            (_, None) => FileStatus::Deleted,
            _ => FileStatus::Modified,
        };
        let readers = if status == FileStatus::Deleted { &base_readers } else { &head_readers };
        let Some(read_by) = readers.get(path).filter(|r| !r.is_empty()) else { continue };
        let read_by = read_by.iter().cloned().collect();
        out.push(FileChange {
            path: path.display().to_string(),
            status,
            read_by,
            diff: mip_render::masked_diff(path, old.map(String::as_str), new.map(String::as_str)),
        });
    }
    Ok(out)
}

fn base_name(base: &Base, inventory: &Path) -> String {
    match base {
        Base::Git(rev) => format!("{rev}:{}", file_name(inventory)),
        Base::File(p) => p.display().to_string(),
    }
}

fn file_name(inventory: &Path) -> String {
    inventory
        .file_name()
        .map_or_else(|| inventory.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The directory `git` runs in: the inventory's own.
fn dir_of(inventory: &Path) -> PathBuf {
    match inventory.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The inventory at `rev`, loaded with its prerequisites at the same revision; `None` when the
/// revision does not have the file yet (the change adds it: everything is created).
fn load_at_revision(inventory: &Path, rev: &str, revision: Option<&String>) -> Result<Option<Loaded>, Error> {
    let git = Git { dir: dir_of(inventory), rev: rev.to_owned() };
    let shown = format!("{rev}:{}", file_name(inventory));
    let fail = |reason: String| Error::ReadBase { base: shown.clone(), reason };
    if rev.is_empty() || rev.starts_with('-') {
        return Err(fail(format!("`{rev}` is not a revision")));
    }
    // The revision must name a commit; the file may be absent from it.
    git.run(&["rev-parse", "--verify", "--quiet", "--end-of-options", &format!("{rev}^{{commit}}")])
        .map_err(|e| fail(e.unwrap_or_else(|| format!("`{rev}` is not a commit of this repository"))))?;
    let name = file_name(inventory);
    if git.run(&["cat-file", "-e", &git.spec(&name)]).is_err() {
        return Ok(None);
    }
    let bytes = git.run(&["cat-file", "blob", &git.spec(&name)]).map_err(|e| fail(e.unwrap_or_default()))?;
    load_bytes(shown, bytes, revision, &git).map(Some)
}

/// Files at a Git revision, relative to a directory of the work tree.
struct Git {
    dir: PathBuf,
    rev: String,
}

impl Git {
    /// `REV:./path`: git resolves `./` against the directory it runs in.
    fn spec(&self, relative: &str) -> String {
        format!("{}:./{}", self.rev, relative.trim_start_matches("./"))
    }

    /// Runs git plumbing; stdout, or git's first line of stderr (`None` when it said nothing).
    fn run(&self, args: &[&str]) -> Result<Vec<u8>, Option<String>> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["--no-pager", "-c", "core.fsmonitor=false"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .output()
            .map_err(|e| Some(format!("cannot run `git`: {e}")))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err.lines().next().map(|l| l.trim_start_matches("fatal: ").to_owned()).filter(|l| !l.is_empty()))
    }

    /// Every UTF-8 file under the directory at the revision (relative paths); none when the
    /// directory is not in it.
    fn files_at_revision(&self) -> Result<BTreeMap<PathBuf, String>, Option<String>> {
        let listing =
            self.run(&["ls-tree", "-r", "-z", "--name-only", "--end-of-options", &self.rev, "--", "."])?;
        let names: Vec<String> = listing
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        self.batch(&names)
    }

    /// The work tree's files under the directory that Git tracks or would add (ignored ones
    /// left out), as they are on disk.
    fn files_in_work_tree(&self) -> Result<BTreeMap<PathBuf, String>, Option<String>> {
        let listing =
            self.run(&["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."])?;
        let mut out = BTreeMap::new();
        for name in listing.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).into_owned();
            // A deleted but still indexed file is absent from the work tree.
            if let Ok(bytes) = std::fs::read(self.dir.join(&name))
                && let Ok(text) = String::from_utf8(bytes)
            {
                out.insert(PathBuf::from(name), text);
            }
        }
        Ok(out)
    }

    /// The blobs of `names` at the revision in one `git cat-file --batch`.
    fn batch(&self, names: &[String]) -> Result<BTreeMap<PathBuf, String>, Option<String>> {
        use std::io::Write;
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["--no-pager", "cat-file", "--batch"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Some(format!("cannot run `git`: {e}")))?;
        let input: String = names.iter().map(|n| format!("{}\n", self.spec(n))).collect();
        let mut stdin = child.stdin.take().ok_or(None)?;
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().map_err(|e| Some(e.to_string()))?;
        let _ = writer.join();
        let mut rest = out.stdout.as_slice();
        let mut files = BTreeMap::new();
        for name in names {
            let end = rest.iter().position(|b| *b == b'\n').ok_or(None)?;
            let header = String::from_utf8_lossy(&rest[..end]).into_owned();
            rest = &rest[end + 1..];
            let size: usize = match header.rsplit(' ').next().and_then(|s| s.parse().ok()) {
                Some(n) if header.contains(" blob ") => n,
                _ => continue,
            };
            let body = rest.get(..size).ok_or(None)?;
            if let Ok(text) = std::str::from_utf8(body) {
                files.insert(PathBuf::from(name), text.to_owned());
            }
            rest = rest.get(size + 1..).unwrap_or_default();
        }
        Ok(files)
    }
}

impl ReadRelative for Git {
    fn shown(&self, relative: &str) -> String {
        format!("{}:{}", self.rev, relative.trim_start_matches("./"))
    }

    fn read(&self, relative: &str) -> std::io::Result<String> {
        let bytes = self
            .run(&["cat-file", "blob", &self.spec(relative)])
            .map_err(|e| std::io::Error::other(e.unwrap_or_else(|| "not in this revision".to_owned())))?;
        String::from_utf8(bytes).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mip_core::Action;

    const INVENTORY: &str = "apiVersion: mip.ebrains.eu/v1alpha1
kind: Inventory
argocd: {namespace: argocd}
revision: main
repositories:
  infra: {url: 'https://github.com/Medical-Informatics-Platform/mip-infra.git'}
  deployments: {url: 'https://github.com/Medical-Informatics-Platform/mip-infra.git'}
upstreamRepos: ['https://github.com/madgik/exareme2']
prerequisites:
  - file: rbac/sa.yaml
federations:
  - name: federation-A
    kind: local
    apps: [{name: exareme2}]
";
    const FEDERATION_B: &str = "  - name: federation-B\n    kind: local\n    apps: [{name: exareme2}]\n";

    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn sa(name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: federation-a\n"
        )
    }

    /// A repository whose inventory lives in `gitops/`: commit 1 has federations A and B and
    /// ServiceAccount `one`; commit 2 drops B and renames the ServiceAccount to `two`.
    fn repository() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let dir = root.join("gitops");
        std::fs::create_dir_all(dir.join("rbac")).expect("mkdir");
        git(root, &["init", "-q", "-b", "main"]);
        std::fs::write(dir.join("mip.yaml"), format!("{INVENTORY}{FEDERATION_B}")).expect("write");
        std::fs::write(dir.join("rbac/sa.yaml"), sa("one")).expect("write");
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "one"]);
        std::fs::write(dir.join("mip.yaml"), INVENTORY).expect("write");
        std::fs::write(dir.join("rbac/sa.yaml"), sa("two")).expect("write");
        git(root, &["commit", "-q", "-am", "two"]);
        (tmp, dir.join("mip.yaml"))
    }

    fn request(inventory: &Path, base: Base) -> ReviewRequest {
        ReviewRequest {
            load: LoadOptions { inventory: inventory.to_path_buf(), revision: None },
            base,
            targets: Vec::new(),
            out: None,
        }
    }

    fn lines(plan: &mip_plan::Plan) -> Vec<String> {
        let mip = plan.changes.iter().map(|c| format!("{} {}", c.action.as_str(), c.address));
        let argo = plan.expected.iter().map(|e| format!("argo {} {}", e.action.as_str(), e.address));
        mip.chain(argo).collect()
    }

    #[test]
    fn the_base_at_a_git_revision_is_the_file_and_its_prerequisites_at_that_revision() {
        let (tmp, inventory) = repository();
        let from_git = review(&request(&inventory, Base::Git("HEAD~1".into()))).expect("plans").plan;
        let old = tmp.path().join("old");
        std::fs::create_dir_all(old.join("rbac")).expect("mkdir");
        std::fs::write(old.join("mip.yaml"), format!("{INVENTORY}{FEDERATION_B}")).expect("write");
        std::fs::write(old.join("rbac/sa.yaml"), sa("one")).expect("write");
        let from_file = review(&request(&inventory, Base::File(old.join("mip.yaml")))).expect("plans").plan;
        assert_eq!(lines(&from_git), lines(&from_file));
        assert_eq!(from_git.summary, from_file.summary);
        assert_eq!(from_git.base.as_ref().map(|b| b.inventory.as_str()), Some("HEAD~1:mip.yaml"));
        assert_eq!(
            from_git.base.as_ref().map(|b| &b.inventory_digest),
            from_file.base.as_ref().map(|b| &b.inventory_digest)
        );
        let l = lines(&from_git);
        assert!(l.contains(&"create v1/ServiceAccount/federation-a/two".to_owned()), "{l:#?}");
        assert!(l.contains(&"delete v1/ServiceAccount/federation-a/one".to_owned()), "{l:#?}");
        assert!(l.contains(&"delete v1/Namespace/federation-b".to_owned()), "{l:#?}");
        assert!(
            l.contains(
                &"argo delete argoproj.io/v1alpha1/Application/argocd/federation-b-exareme2".to_owned()
            ),
            "{l:#?}"
        );
        assert_eq!(from_git.mode, mip_plan::Mode::Review);
    }

    #[test]
    fn the_head_against_itself_changes_nothing() {
        let (_tmp, inventory) = repository();
        let plan = review(&request(&inventory, Base::Git("HEAD".into()))).expect("plans").plan;
        assert!(!plan.summary.changes_anything(), "{:?}", lines(&plan));
    }

    #[test]
    fn a_revision_without_the_inventory_creates_everything() {
        let (tmp, inventory) = repository();
        git(tmp.path(), &["checkout", "-q", "--orphan", "empty"]);
        git(tmp.path(), &["rm", "-rq", "--cached", "."]);
        git(tmp.path(), &["commit", "-q", "--allow-empty", "-m", "empty"]);
        git(tmp.path(), &["checkout", "-q", "-f", "main"]);
        let plan = review(&request(&inventory, Base::Git("empty".into()))).expect("plans").plan;
        assert!(plan.changes.iter().all(|c| c.action == Action::Create));
        assert!(plan.expected.iter().all(|e| e.action == Action::Create));
        assert_eq!(plan.summary.create, plan.changes.len());
        assert!(plan.summary.create > 0);
    }

    #[test]
    fn an_unknown_revision_is_an_error_that_names_it() {
        let (_tmp, inventory) = repository();
        let err = review(&request(&inventory, Base::Git("no-such-branch".into()))).expect_err("refused");
        assert!(matches!(&err, Error::ReadBase { base, .. } if base == "no-such-branch:mip.yaml"), "{err}");
        assert!(err.to_string().contains("no-such-branch"), "{err}");
        assert!(err.hint().is_some_and(|h| h.contains("fetch-depth")));
        let err = review(&request(&inventory, Base::Git("--output=x".into()))).expect_err("refused");
        assert!(matches!(err, Error::ReadBase { .. }), "{err}");
    }

    #[test]
    fn an_invalid_base_is_reported_at_its_revision_and_line() {
        let (tmp, inventory) = repository();
        std::fs::write(&inventory, INVENTORY.replace("kind: local", "knd: local")).expect("write");
        git(tmp.path(), &["commit", "-q", "-am", "broken"]);
        std::fs::write(&inventory, INVENTORY).expect("write");
        let err = review(&request(&inventory, Base::Git("HEAD".into()))).expect_err("refused");
        let Error::Invalid { path, diagnostics } = &err else { panic!("{err}") };
        assert_eq!(path, "HEAD:mip.yaml");
        let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        assert!(shown.iter().all(|d| d.starts_with("HEAD:mip.yaml:")), "{shown:#?}");
        assert!(
            shown.iter().any(|d| d.starts_with("HEAD:mip.yaml:13:5:") && d.contains("knd")),
            "{shown:#?}"
        );
    }

    #[test]
    fn targets_narrow_a_review_and_an_unknown_one_is_refused() {
        let (_tmp, inventory) = repository();
        let mut req = request(&inventory, Base::Git("HEAD~1".into()));
        req.targets = vec!["v1/ServiceAccount/federation-a/two".into()];
        let plan = review(&req).expect("plans").plan;
        assert_eq!(lines(&plan)[..1], ["create v1/ServiceAccount/federation-a/two".to_owned()]);
        assert!(lines(&plan).iter().all(|l| !l.contains("federation-b")), "{:?}", lines(&plan));
        req.targets = vec!["v1/Namespace/nope".into()];
        assert!(matches!(review(&req), Err(Error::UnknownTarget(_))));
    }
}
