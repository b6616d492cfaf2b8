//! Taking over the real mip-infra tree (`../shared/reference/mip-infra`, the upstream
//! repository's tree) as an operator would: `mip import`, `mip validate`, `mip render --adopt`
//! in a git repository of that tree; then what Argo CD deploys from it is compared with the
//! original the way Argo CD reads it. Equal, except the one deliberate difference: the
//! `default` AppProject's lock-down leaves `base/`, since mip applies it itself.

use crate::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The upstream tree, beside the project (CI has a copy of `shared/` there too).
pub fn reference_tree() -> PathBuf {
    let p = root().join("../shared/reference/mip-infra");
    assert!(p.is_dir(), "the reference tree is missing at {}", p.display());
    p
}

/// Copies a tree (files only, writable) into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::write(&target, std::fs::read(entry.path()).expect("read")).expect("write");
        }
    }
}

/// A git repository holding a copy of the reference tree, committed on `main`.
pub fn reference_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    copy_tree(&reference_tree(), dir.path());
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "the platform as upstream has it"]);
    dir
}

fn files(dir: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir.join(rel)).expect("read dir") {
        let entry = entry.expect("entry");
        let path = rel.join(entry.file_name());
        if entry.file_name() == ".git" {
            continue;
        }
        if entry.file_type().expect("type").is_dir() {
            files(dir, &path, out);
        } else {
            out.insert(path, std::fs::read(entry.path()).expect("read"));
        }
    }
}

fn parsed(name: &str, bytes: &[u8]) -> Value {
    let text = String::from_utf8_lossy(bytes);
    match mip_inventory::yaml::parse_stream(name, &text) {
        Ok(docs) => Value::Array(docs.iter().map(mip_inventory::yaml::Node::to_json).collect()),
        // A Helm template: its text is what Argo CD renders.
        Err(_) => Value::String(text.into_owned()),
    }
}

/// What Argo CD deploys from a tree, unit by unit:
/// - `root <dir>`: the documents of the files a root Application reads (a directory source:
///   the YAML files directly in it);
/// - `kustomize <dir>`: `kustomize build` of each kustomization; one that pulls a Helm chart
///   or a remote resource (not reachable here) is the documents of every file under it, its
///   whole input;
/// - `file <path>`: every other file, parsed when YAML, as text otherwise (Helm templates).
///
/// `skip` names files left out (the inventory mip adds).
pub fn effective_state(dir: &Path, kustomize: &Path, skip: &[&str]) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    files(dir, Path::new(""), &mut all);
    all.retain(|p, _| !skip.iter().any(|s| p == Path::new(s)));
    let mut units = BTreeMap::new();
    for root_dir in ["base", "base/mip-infrastructure"] {
        let docs: Vec<Value> = all
            .iter()
            .filter(|(p, _)| p.parent() == Some(Path::new(root_dir)))
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .flat_map(|(p, b)| parsed(&p.display().to_string(), b).as_array().cloned().unwrap_or_default())
            .collect();
        units.insert(format!("root {root_dir}"), Value::Array(docs));
    }
    for (path, bytes) in &all {
        if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
            let kdir = path.parent().expect("dir");
            let text = String::from_utf8_lossy(bytes);
            let offline = !text.contains("helmCharts") && !text.contains("https://");
            let unit = if offline {
                let o = Command::new(kustomize).arg("build").arg(dir.join(kdir)).output().expect("kustomize");
                assert!(
                    o.status.success(),
                    "kustomize build {}: {}",
                    kdir.display(),
                    String::from_utf8_lossy(&o.stderr)
                );
                parsed("build", &o.stdout)
            } else {
                Value::Array(
                    all.iter()
                        .filter(|(p, _)| p.starts_with(kdir))
                        .map(|(p, b)| serde_json::json!([p.display().to_string(), parsed("input", b)]))
                        .collect(),
                )
            };
            units.insert(format!("kustomize {}", kdir.display()), unit);
        }
        units.insert(format!("file {}", path.display()), parsed(&path.display().to_string(), bytes));
    }
    units
}

/// The units that differ between two effective states.
pub fn differing(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

fn kustomize() -> PathBuf {
    mip_test_support::binaries::argocd_bin_dir().expect("Argo CD tier binaries (kustomize)").join("kustomize")
}

#[test]
fn the_real_tree_taken_over_deploys_what_it_deployed_but_the_default_projects_lock_down() {
    let repo = reference_repo();
    let dir = repo.path();
    let kustomize = kustomize();
    let original = effective_state(dir, &kustomize, &[]);

    let run = |args: &[&str]| run_in(dir, args);
    let (c, _, err) = run(&["import", ".", "--out", "mip.yaml"]);
    assert_eq!(c, 0, "{err}");
    // The duplicate RBAC objects of the real tree are taken as `kubectl apply` takes them.
    let (c, _, err) = run(&["validate", "-i", "mip.yaml"]);
    assert_eq!(c, 0, "the import of the real tree validates: {err}");
    assert!(
        err.contains("submariner-rbac.yaml:265:1: warning[duplicate-object]: object `rbac.authorization.k8s.io/v1/ClusterRole/submariner-routeagent` is declared again (first at ./base/mip-infrastructure/rbac/submariner-rbac.yaml:89:1)"),
        "{err}"
    );
    let inventory = std::fs::read_to_string(dir.join("mip.yaml")).expect("inventory");
    // The tree reads Submariner's charts from another URL than the catalogue's: a mirror.
    assert!(
        inventory.contains("mirrors:\n  - upstream: https://submariner-io.github.io/submariner-charts/charts\n    mirror: https://raw.githubusercontent.com/submariner-io/submariner-charts/gh-pages/charts\n"),
        "{inventory}"
    );

    // The static projects' rules are mip's data with mip-infra's values: each project is
    // expressed (its own source repositories as `projects:`, as the tree lists them, least
    // privilege kept per project) and none of their files is kept.
    assert!(
        inventory.contains("  mip-argo-project-security:\n    sourceRepos:\n      - https://github.com/Medical-Informatics-Platform/mip-infra.git\n      - git@github.com:Medical-Informatics-Platform/mip-deployments.git\n"),
        "{inventory}"
    );
    let keep = inventory.split("\ntree:\n").nth(1).expect("tree.keep");
    assert!(!keep.contains("projects/static/"), "a static project file is kept: {keep}");
    // Before this import kept anything: the same inventory without `tree:` renders over the
    // operator's files; the figure is for the record (the issue counted 21 of 48 units).
    let before = {
        let copy = tempfile::tempdir().expect("tmp");
        copy_tree(dir, copy.path());
        let unkept = inventory.split("\ntree:\n").next().expect("inventory").to_owned() + "\n";
        std::fs::write(copy.path().join("mip.yaml"), unkept).expect("write");
        let o = mip_cmd().args(["render", ".", "-i", "mip.yaml", "--adopt"]).dir(copy.path()).run();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        differing(&original, &effective_state(copy.path(), &kustomize, &["mip.yaml"]))
    };

    let (c, diff, err) = run(&["render", ".", "-i", "mip.yaml", "--adopt"]);
    assert_eq!(c, 0, "{err}");
    assert!(
        err.contains("removed `argoproj.io/v1alpha1/AppProject/argocd-mip-team/default` from `./base/argo-projects.yaml`: mip applies it itself"),
        "{err}"
    );
    assert!(diff.contains("--- a/base/argo-projects.yaml"), "the removal is shown as a diff: {diff}");
    let after = effective_state(dir, &kustomize, &["mip.yaml"]);
    let changed = differing(&original, &after);
    let units = original.len();
    eprintln!(
        "effective state: before keeping {} of {units} units equal ({} differ: {before:?}); after {} of {units} equal ({changed:?})",
        units - before.len(),
        before.len(),
        units - changed.len()
    );
    assert_eq!(
        changed,
        vec!["file base/argo-projects.yaml".to_owned(), "root base".to_owned()],
        "only the deliberate difference may change what Argo CD deploys"
    );
    // ... and it is exactly the `default` project: every other document of `base/` is there.
    let without_default: Vec<Value> = original["root base"]
        .as_array()
        .expect("docs")
        .iter()
        .filter(|d| !(d["kind"] == "AppProject" && d["metadata"]["name"] == "default"))
        .cloned()
        .collect();
    assert_eq!(after["root base"], Value::Array(without_default));
    // The plan shows mip applying the lock-down, first.
    let (c, plan, err) = run(&["plan", "--offline", "-i", "mip.yaml"]);
    assert_eq!(c, 0, "{err}");
    let first_step = plan.find("# step").map(|i| &plan[i..]).unwrap_or_default();
    assert!(
        first_step.starts_with(
            "# step default-project\n    + argoproj.io/v1alpha1/AppProject/argocd-mip-team/default"
        ),
        "{plan}"
    );
    let (_, again, _) = run(&["plan", "--offline", "-i", "mip.yaml"]);
    assert_eq!(plan, again, "the same inputs give byte-identical plans");
    let (c, out, err) = run(&["render", ".", "-i", "mip.yaml", "--check"]);
    assert_eq!(c, 0, "after the takeover the tree is up to date: {out}{err}");
    // Rendering again changes nothing (the kept files stay the operator's).
    let status_before = git(dir, &["status", "--porcelain"]);
    let (c, _, err) = run(&["render", ".", "-i", "mip.yaml"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(git(dir, &["status", "--porcelain"]), status_before);
}

/// `mip` in `dir`, its exit code and its JSON plan (or stdout) and stderr.
fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let o = mip_cmd().dir(dir).args(args).run();
    (code(&o), stdout(&o), stderr(&o))
}

/// The edited files of a review plan, each with the names of its readers.
fn files_of(plan: &Value) -> BTreeMap<String, Vec<String>> {
    plan["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let readers = f["read_by"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str()?.rsplit('/').next().map(str::to_owned))
                .collect();
            (f["path"].as_str().unwrap_or_default().to_owned(), readers)
        })
        .collect()
}

fn argo(plan: &Value, action: &str) -> Vec<String> {
    plan["expected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == action)
        .filter_map(|e| e["address"].as_str()?.rsplit('/').next().map(str::to_owned))
        .collect()
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).expect("read");
    assert!(text.contains(from), "`{from}` is not in {file}");
    std::fs::write(&p, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn pull_requests_to_the_real_tree_plan_the_applications_that_read_what_they_change() {
    let repo = reference_repo();
    let dir = repo.path();
    assert_eq!(run_in(dir, &["import", ".", "--out", "mip.yaml"]).0, 0);
    let (c, _, err) = run_in(dir, &["render", ".", "-i", "mip.yaml", "--adopt"]);
    assert_eq!(c, 0, "{err}");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "taken over by mip"]);
    let review = |what: &str| -> (i32, Value, String) {
        let (c, out, err) =
            run_in(dir, &["plan", "--base", "main", "-i", "mip.yaml", "-o", "json", "--detailed-exitcode"]);
        let plan = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{what}: {e}: {out}{err}"));
        let (_, text, _) = run_in(dir, &["plan", "--base", "main", "-i", "mip.yaml"]);
        (c, plan, text)
    };
    let reset = || {
        git(dir, &["checkout", "-q", "-f", "main"]);
        git(dir, &["clean", "-fdq"]);
    };

    // An upgrade of the data catalogue's database image: one values file, one Application.
    edit(dir, "common/datacatalog/values.yaml", "image: postgres:15", "image: postgres:16");
    let (c, plan, text) = review("values");
    assert_eq!(c, 2, "a deployed file changed: {text}");
    assert_eq!(
        files_of(&plan),
        BTreeMap::from([("common/datacatalog/values.yaml".to_owned(), vec!["datacatalog".to_owned()])])
    );
    assert_eq!(plan["summary"]["argo_resync"], 1);
    assert!(text.contains("-  image: postgres:15\n") && text.contains("+  image: postgres:16\n"), "{text}");
    assert!(text.contains("re-sync 1 for the files it reads"), "{text}");
    reset();

    // A federation's kustomize patch of Exareme2: the federation's wrapper and its Exareme2.
    edit(
        dir,
        "deployments/local/federations/federation-A/customizations/exareme2-kustomize.yaml",
        "- /spec/replicas",
        "- /spec/minReadySeconds",
    );
    let (c, plan, _) = review("patch");
    assert_eq!(c, 2);
    assert_eq!(
        files_of(&plan),
        BTreeMap::from([(
            "deployments/local/federations/federation-A/customizations/exareme2-kustomize.yaml".to_owned(),
            vec!["deployments-local-a".to_owned(), "federation-a-exareme2".to_owned()]
        )])
    );
    reset();

    // A revision bump of Exareme2 in the shared template: every federation's Exareme2.
    edit(
        dir,
        "deployments/shared-apps/exareme2/exareme2.yaml",
        "c1d4eb3d9d90edcf868a3a6395cc37b19c934e66",
        "0123456789abcdef0123456789abcdef01234567",
    );
    let (c, plan, _) = review("revision");
    assert_eq!(c, 2);
    let readers = &files_of(&plan)["deployments/shared-apps/exareme2/exareme2.yaml"];
    for app in [
        "federation-a-exareme2",
        "federation-z-exareme2",
        "deployments-local-a",
        "deployments-hybrid-z-mip-infrastructure",
    ] {
        assert!(readers.contains(&app.to_owned()), "{app}: {readers:?}");
    }
    assert!(!readers.iter().any(|r| r.contains("mip-stack")), "{readers:?}");
    reset();

    // A new federation, added with mip and rendered: its namespace, what Argo CD creates, and
    // the new directory read by its wrapper.
    let (c, _, err) = run_in(
        dir,
        &[
            "federation",
            "add",
            "federation-B",
            "--kind",
            "local",
            "--app",
            "exareme2",
            "-i",
            "mip.yaml",
            "--render",
            ".",
        ],
    );
    assert_eq!(c, 0, "{err}");
    let (c, plan, text) = review("federation");
    assert_eq!(c, 2);
    let created = argo(&plan, "create");
    for app in ["deployments-local-b", "federation-b-exareme2", "mip-argo-project-federation-b"] {
        assert!(created.contains(&app.to_owned()), "{app}: {text}");
    }
    assert!(text.contains("+ v1/Namespace/federation-b"), "{text}");
    assert_eq!(
        files_of(&plan).get("deployments/local/federations/federation-B/kustomization.yaml"),
        Some(&vec!["deployments-local-b".to_owned()])
    );
    assert_eq!(
        plan["summary"]["argo_resync"].as_u64().unwrap_or(0),
        0,
        "a new Application is created, not re-synced: {text}"
    );
    reset();

    // A common app removed: from the inventory, from the kept ApplicationSet (the operator's
    // file), and its rendered files with `mip render`.
    edit(dir, "mip.yaml", "  - name: nginx-ingress\n", "");
    edit(
        dir,
        "base/mip-infrastructure/mip-infrastructure.yaml",
        "                - path: common/nginx-ingress\n",
        "",
    );
    let (c, _, err) = run_in(dir, &["render", ".", "-i", "mip.yaml"]);
    assert_eq!(c, 0, "{err}");
    let (c, plan, text) = review("common app");
    assert_eq!(c, 2);
    let deleted = argo(&plan, "delete");
    for app in ["common-nginx-ingress", "nginx-public-ingress"] {
        assert!(deleted.contains(&app.to_owned()), "{app}: {text}");
    }
    let files = files_of(&plan);
    assert!(
        files["base/mip-infrastructure/mip-infrastructure.yaml"]
            .iter()
            .any(|r| r.ends_with("infra-clusterset")),
        "{files:?}"
    );
    assert_eq!(files["common/nginx-ingress/kustomization.yaml"], ["common-nginx-ingress"], "{files:?}");
    assert!(text.contains("- common/nginx-ingress/kustomization.yaml (deleted)"), "{text}");
    reset();

    // A values file that carries a credential by mistake: the diff masks it, in every format.
    edit(
        dir,
        "common/datacatalog/values.yaml",
        "image: postgres:15",
        "image: postgres:15\n  password: CANARY-pr-values-4f2a9c1e\n  token: |\n    CANARY-pr-block-77d0e3b5",
    );
    let (c, plan, text) = review("canary");
    assert_eq!(c, 2);
    let (_, markdown, err) = run_in(dir, &["plan", "--base", "main", "-i", "mip.yaml", "-o", "markdown"]);
    for out in [plan.to_string(), text.clone(), markdown.clone(), err] {
        assert!(
            !out.contains("CANARY-pr-values") && !out.contains("CANARY-pr-block"),
            "a secret value leaked: {out}"
        );
    }
    assert!(text.contains("+  password: (masked)") && markdown.contains("+  password: (masked)"), "{text}");
    reset();

    // Documentation only: nothing Argo CD reads changed.
    std::fs::write(dir.join("README.md"), "# The platform\n").expect("write");
    edit(
        dir,
        "deployments/local/federations/federation-A/customizations/REFERENCE-advanced-kustomization-examples.yaml",
        "---",
        "--- # read by no one",
    );
    let (c, plan, text) = review("docs");
    assert_eq!(c, 0, "{text}");
    assert!(plan.get("files").is_none(), "{plan}");
    assert!(text.contains("No changes. The inventory changes nothing against its base."), "{text}");
    reset();
}
