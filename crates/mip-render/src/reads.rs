//! Which files of the GitOps tree each Argo CD Application reads. Pure.
//!
//! A pull request changes files; Argo CD re-syncs the Applications that read them. This module
//! answers "who reads this file" from the tree itself, the way Argo CD and kustomize read it:
//! - a source `path` with a kustomization reads the kustomization and, recursively, every
//!   local file and directory it names (`resources`, `components`, `bases`, `patches[].path`,
//!   `patchesStrategicMerge`, `patchesJson6902[].path`, generators' `files`/`envs`,
//!   `helmCharts[].valuesFile`/`additionalValuesFiles`, `crds`);
//! - a path with a `Chart.yaml` (a Helm chart of ours) reads every file under it;
//! - any other path is a directory source: its YAML and JSON files, not recursively;
//! - a Helm `valueFiles` entry `$values/<file>` reads that file of the repository.
//!
//! Applications that an Application makes from the tree (the children a federation's
//! kustomization places, with `namePrefix`) read the `$values/` files their documents and the
//! patches aimed at them name.

use mip_core::ObjectRef;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// An Application as the reads are computed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// Its address (children are matched by its name).
    pub address: ObjectRef,
    /// The Application that generates it (`None` for a root).
    pub parent: Option<ObjectRef>,
    /// Its sources' paths in the tree (sources of our own repositories only).
    pub paths: Vec<String>,
    /// Its `$values/` files (the part after `$values/`).
    pub values: Vec<String>,
}

/// Normalises `dir/rel` (`..` and `.` resolved); `None` when it leaves the tree.
pub(crate) fn join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in dir.join(rel).components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn is_dir(files: &BTreeMap<PathBuf, String>, dir: &Path) -> bool {
    files.range(dir.to_path_buf()..).next().is_some_and(|(p, _)| p.starts_with(dir) && p != dir)
}

fn kustomization(files: &BTreeMap<PathBuf, String>, dir: &Path) -> Option<PathBuf> {
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| files.contains_key(p))
}

fn yaml(files: &BTreeMap<PathBuf, String>, path: &Path) -> Vec<Value> {
    files
        .get(path)
        .and_then(|t| crate::takeover::documents(&path.display().to_string(), t))
        .unwrap_or_default()
}

/// Every file a source path reads (see the [module docs](self)).
pub fn closure(files: &BTreeMap<PathBuf, String>, path: &str) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    if let Some(start) = join(Path::new(""), path) {
        read_dir(files, &start, &mut out, &mut seen);
    }
    out
}

fn read_dir(
    files: &BTreeMap<PathBuf, String>,
    dir: &Path,
    out: &mut BTreeSet<PathBuf>,
    seen: &mut BTreeSet<PathBuf>,
) {
    if !seen.insert(dir.to_path_buf()) {
        return;
    }
    if let Some(k) = kustomization(files, dir) {
        out.insert(k.clone());
        for doc in yaml(files, &k) {
            for rel in kustomize_references(&doc) {
                let Some(p) = join(dir, &rel) else { continue };
                if files.contains_key(&p) {
                    out.insert(p);
                } else if is_dir(files, &p) {
                    read_dir(files, &p, out, seen);
                }
            }
        }
    } else if files.contains_key(&dir.join("Chart.yaml")) {
        out.extend(files.keys().filter(|p| p.starts_with(dir)).cloned());
    } else {
        out.extend(
            files
                .keys()
                .filter(|p| p.parent() == Some(dir))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
                .cloned(),
        );
    }
}

/// The local paths a kustomization names (remote URLs left out).
fn kustomize_references(k: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.contains("://") && !s.starts_with("git@")) {
            out.push(s.to_owned());
        }
    };
    for key in ["resources", "components", "bases", "crds", "patchesStrategicMerge"] {
        for v in k[key].as_array().into_iter().flatten() {
            push(Some(v));
        }
    }
    for key in ["patches", "patchesJson6902"] {
        for v in k[key].as_array().into_iter().flatten() {
            push(v.get("path"));
        }
    }
    for key in ["configMapGenerator", "secretGenerator"] {
        for g in k[key].as_array().into_iter().flatten() {
            for list in ["files", "envs"] {
                for f in g[list].as_array().into_iter().flatten() {
                    // `key=path` names the path after `=`.
                    push(
                        f.as_str()
                            .map(|s| s.rsplit('=').next().unwrap_or(s))
                            .map(|s| Value::String(s.into()))
                            .as_ref(),
                    );
                }
            }
            push(g.get("env"));
        }
    }
    for c in k["helmCharts"].as_array().into_iter().flatten() {
        push(c.get("valuesFile"));
        for f in c["additionalValuesFiles"].as_array().into_iter().flatten() {
            push(Some(f));
        }
    }
    out
}

/// Every string under a value.
pub(crate) fn strings<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// `$values/<file>` strings of a value.
fn values_refs(v: &Value) -> Vec<String> {
    let mut all = Vec::new();
    strings(v, &mut all);
    all.iter().filter_map(|s| s.strip_prefix("$values/")).map(str::to_owned).collect()
}

/// For each file of the tree that some Application reads, those Applications' addresses.
pub fn readers(files: &BTreeMap<PathBuf, String>, apps: &[Reader]) -> BTreeMap<PathBuf, BTreeSet<ObjectRef>> {
    let mut out: BTreeMap<PathBuf, BTreeSet<ObjectRef>> = BTreeMap::new();
    let mut add = |p: PathBuf, who: &ObjectRef| {
        out.entry(p).or_default().insert(who.clone());
    };
    for app in apps {
        let mut read = BTreeSet::new();
        for path in &app.paths {
            read.extend(closure(files, path));
        }
        for v in &app.values {
            if let Some(p) = join(Path::new(""), v) {
                add(p, &app.address);
            }
        }
        // Children: an Application document in what this one reads, or a patch aimed at one,
        // names the `$values/` files (and is the definition) of the child it becomes.
        let children: Vec<&Reader> =
            apps.iter().filter(|c| c.parent.as_ref() == Some(&app.address)).collect();
        for file in &read {
            add(file.clone(), &app.address);
            if children.is_empty() {
                continue;
            }
            for doc in yaml(files, file) {
                let named = |n: &str| -> Vec<&Reader> {
                    children
                        .iter()
                        .copied()
                        .filter(|c| c.address.name == n || c.address.name.ends_with(&format!("-{n}")))
                        .collect()
                };
                let mut targets: Vec<&Reader> = Vec::new();
                if doc["kind"] == "Application" {
                    targets.extend(
                        doc.pointer("/metadata/name").and_then(Value::as_str).map(named).unwrap_or_default(),
                    );
                }
                // Patches of a kustomization aimed at an Application by name.
                for p in doc["patches"].as_array().into_iter().flatten() {
                    let Some(target) = p.pointer("/target/name").and_then(Value::as_str) else { continue };
                    let aimed = named(target);
                    if let Some(rel) = p["path"].as_str()
                        && let Some(patch) = join(file.parent().unwrap_or(Path::new("")), rel)
                    {
                        for c in &aimed {
                            add(patch.clone(), &c.address);
                        }
                        for v in yaml(files, &patch).iter().flat_map(values_refs) {
                            for c in &aimed {
                                if let Some(p) = join(Path::new(""), &v) {
                                    add(p, &c.address);
                                }
                            }
                        }
                    }
                    for v in values_refs(&p["patch"]) {
                        for c in &aimed {
                            if let Some(p) = join(Path::new(""), &v) {
                                add(p, &c.address);
                            }
                        }
                    }
                }
                if !targets.is_empty() {
                    for c in &targets {
                        add(file.clone(), &c.address);
                    }
                    for v in values_refs(&doc) {
                        for c in &targets {
                            if let Some(p) = join(Path::new(""), &v) {
                                add(p, &c.address);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
        files.iter().map(|(p, t)| (PathBuf::from(p), (*t).to_owned())).collect()
    }

    fn app(name: &str) -> ObjectRef {
        ObjectRef::new("argoproj.io/v1alpha1", "Application", Some("ns"), name)
    }

    fn reader(name: &str, parent: Option<&str>, paths: &[&str], values: &[&str]) -> Reader {
        Reader {
            address: app(name),
            parent: parent.map(app),
            paths: paths.iter().map(|s| (*s).to_owned()).collect(),
            values: values.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_kustomization_reads_what_it_names_recursively_and_nothing_else() {
        let files = tree(&[
            (
                "fed/A/kustomization.yaml",
                "resources: [../../shared/app, np.yaml, https://example.org/x.yaml]\npatches: [{path: c/p.yaml, target: {kind: Application, name: app}}]\n",
            ),
            ("fed/A/np.yaml", "kind: NetworkPolicy\n"),
            (
                "fed/A/c/p.yaml",
                "- {op: add, path: /spec/sources/0/helm/valueFiles/-, value: $values/fed/A/c/v.yaml}\n",
            ),
            ("fed/A/c/v.yaml", "a: 1\n"),
            ("fed/A/README.md", "docs\n"),
            ("fed/A/unused.yaml", "kind: X\n"),
            ("shared/app/kustomization.yaml", "resources: [app.yaml]\n"),
            (
                "shared/app/app.yaml",
                "kind: Application\nmetadata: {name: app}\nspec: {sources: [{helm: {valueFiles: [$values/shared/app/values.yaml]}}]}\n",
            ),
            ("shared/app/values.yaml", "b: 2\n"),
            ("chart/Chart.yaml", "name: c\n"),
            ("chart/templates/t.yaml", "{{ x }}\n"),
            ("dir/a.yaml", "kind: A\n"),
            ("dir/sub/b.yaml", "kind: B\n"),
        ]);
        let read: Vec<String> = closure(&files, "fed/A").iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            read,
            [
                "fed/A/c/p.yaml",
                "fed/A/kustomization.yaml",
                "fed/A/np.yaml",
                "shared/app/app.yaml",
                "shared/app/kustomization.yaml"
            ]
        );
        assert_eq!(closure(&files, "chart").len(), 2, "a chart of ours reads every file under it");
        assert_eq!(closure(&files, "dir").len(), 1, "a directory source is not recursive");

        let apps = [
            reader("wrapper-a", None, &["fed/A"], &[]),
            reader("fed-a-app", Some("wrapper-a"), &[], &[]),
            reader("other", None, &[], &["shared/app/values.yaml"]),
        ];
        let who = readers(&files, &apps);
        let of = |p: &str| {
            who.get(Path::new(p))
                .map(|s| s.iter().map(|a| a.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(of("fed/A/c/v.yaml"), ["fed-a-app"], "the patch's values file is the child's");
        assert_eq!(of("shared/app/values.yaml"), ["fed-a-app", "other"]);
        assert_eq!(of("fed/A/c/p.yaml"), ["fed-a-app", "wrapper-a"]);
        assert_eq!(of("fed/A/np.yaml"), ["wrapper-a"]);
        assert!(of("fed/A/README.md").is_empty() && of("fed/A/unused.yaml").is_empty());
    }

    #[test]
    fn paths_never_leave_the_tree() {
        let files = tree(&[("a/kustomization.yaml", "resources: [../../../etc/passwd]\n")]);
        assert_eq!(closure(&files, "a").len(), 1);
        assert!(closure(&files, "../x").is_empty());
    }
}
