//! `mip import`: an existing mip-infra-style checkout read back into an inventory. Pure: the
//! files of the checkout in, the inventory (YAML) and a report of what it could not express out.
//!
//! What it reads, in the reference layout: the ApplicationSets under `base/` (the Argo CD
//! namespace, the two repositories and their revision from the git generators, the common apps
//! they list, clusters from the list generators), the projects' `sourceRepos` (upstream chart
//! repositories), each federation directory (`deployments/local/federations/<Name>/`,
//! `deployments/hybrid/federations/<Name>/mip-infrastructure/`: the shared apps its
//! kustomization includes, the values files its patches add, the patch files themselves, an
//! `exareme2-overlay` Application and its overlay's resources), the shared-app templates and
//! common apps' Applications (upstream revisions differing from the catalogue become
//! `apps: {<app>: {targetRevision}}`), and the RBAC manifests under `base/` (prerequisites).
//! Everything else is reported with the reason, never guessed.

use mip_inventory::apps::{Catalogue, Repo, Scope};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An imported inventory and what it could not express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The inventory, as YAML.
    pub inventory: String,
    /// One line per thing left out or assumed, with the reason.
    pub report: Vec<String>,
}

/// The checkout's YAML documents, by path (unparseable files are reported and skipped).
fn documents(files: &BTreeMap<PathBuf, String>, report: &mut Vec<String>) -> BTreeMap<PathBuf, Vec<Value>> {
    let mut out = BTreeMap::new();
    for (path, text) in files {
        if !path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        let name = path.display().to_string();
        match mip_inventory::yaml::parse_stream(&name, text) {
            Ok(docs) => {
                out.insert(path.clone(), docs.iter().map(mip_inventory::yaml::Node::to_json).collect());
            }
            // Helm templates are not YAML before rendering; only they may fail.
            Err(_) if name.contains("/templates/") => {}
            Err(d) => report.push(format!("`{name}` is not valid YAML, skipped: {d}")),
        }
    }
    out
}

fn s<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The git generators of every ApplicationSet: `(repoURL, revision, directory patterns)`.
fn git_generators(docs: &BTreeMap<PathBuf, Vec<Value>>) -> Vec<(String, String, Vec<String>)> {
    fn walk(v: &Value, out: &mut Vec<(String, String, Vec<String>)>) {
        if let Some(g) = v.get("git") {
            let dirs = g["directories"]
                .as_array()
                .map(|d| d.iter().filter_map(|x| x["path"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            out.push((
                g["repoURL"].as_str().unwrap_or_default().to_owned(),
                g["revision"].as_str().unwrap_or_default().to_owned(),
                dirs,
            ));
        }
        if let Some(inner) = v.pointer("/matrix/generators").and_then(Value::as_array) {
            for i in inner {
                walk(i, out);
            }
        }
    }
    let mut out = Vec::new();
    for d in docs.values().flatten().filter(|d| d["kind"] == "ApplicationSet") {
        for g in d.pointer("/spec/generators").and_then(Value::as_array).into_iter().flatten() {
            walk(g, &mut out);
        }
    }
    out
}

/// The servers of the list generators' elements (`cluster` or `server`).
fn list_servers(docs: &BTreeMap<PathBuf, Vec<Value>>) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        for e in v.pointer("/list/elements").and_then(Value::as_array).into_iter().flatten() {
            for k in ["cluster", "server"] {
                if let Some(s) = e[k].as_str().filter(|s| !s.contains("{{")) {
                    out.push(s.to_owned());
                }
            }
        }
        for i in v.pointer("/matrix/generators").and_then(Value::as_array).into_iter().flatten() {
            walk(i, out);
        }
    }
    let mut out = Vec::new();
    for d in docs.values().flatten().filter(|d| d["kind"] == "ApplicationSet") {
        for g in d.pointer("/spec/generators").and_then(Value::as_array).into_iter().flatten() {
            walk(g, &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `../../shared-apps/<app>` (any depth) → `<app>`.
fn shared_app(resource: &str) -> Option<&str> {
    let mut parts = resource.trim_end_matches('/').rsplit('/');
    let app = parts.next()?;
    (parts.next()? == "shared-apps").then_some(app)
}

/// `dir/p` normalised (a path leaving the checkout is empty: it names no file of it).
fn rel(dir: &str, p: &str) -> PathBuf {
    crate::reads::join(Path::new(dir), p).unwrap_or_default()
}

struct Fed {
    name: String,
    kind: &'static str,
    dir: String,
}

fn federations(files: &BTreeMap<PathBuf, String>) -> Vec<Fed> {
    let mut out = Vec::new();
    for p in files.keys() {
        let parts: Vec<String> = p.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        match parts.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["deployments", "local", "federations", name, "kustomization.yaml"] => out.push(Fed {
                name: (*name).to_owned(),
                kind: "local",
                dir: format!("deployments/local/federations/{name}"),
            }),
            ["deployments", "hybrid", "federations", name, "mip-infrastructure", "kustomization.yaml"] => {
                out.push(Fed {
                    name: (*name).to_owned(),
                    kind: "hybrid",
                    dir: format!("deployments/hybrid/federations/{name}/mip-infrastructure"),
                });
            }
            _ => {}
        }
    }
    // Local federations first, as the reference README lists them.
    out.sort_by(|a, b| (a.kind == "hybrid", &a.name).cmp(&(b.kind == "hybrid", &b.name)));
    out
}

/// The upstream revision of an Application's first upstream source.
fn upstream_revision(app: &Value, own: &[&str]) -> Option<String> {
    let mut sources: Vec<&Value> = app
        .pointer("/spec/sources")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if let Some(one) = app.pointer("/spec/source") {
        sources.push(one);
    }
    sources
        .into_iter()
        .find(|src| src["repoURL"].as_str().is_some_and(|u| !own.contains(&u)))
        .and_then(|src| src["targetRevision"].as_str().map(str::to_owned))
}

/// The upstream sources of a definition that an Application of the tree reads from another
/// URL (a mirror): the definition's URL → the tree's, source by source in order.
fn mirrored_sources(
    app: &Value,
    def: &mip_inventory::apps::AppDef,
    own: &[&str],
    out: &mut BTreeMap<String, String>,
) {
    let mut tree: Vec<&str> = app
        .pointer("/spec/sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(app.pointer("/spec/source"))
        .filter_map(|s| s["repoURL"].as_str())
        .filter(|u| !own.contains(u))
        .collect();
    tree.dedup();
    let upstream: Vec<&str> = def
        .upstream_sources()
        .filter_map(|s| match &s.repo {
            Repo::Url(u) => Some(u.as_str()),
            _ => None,
        })
        .collect();
    for (up, here) in upstream.into_iter().zip(tree) {
        if mip_inventory::normalize_repo_url(up) != mip_inventory::normalize_repo_url(here) {
            out.entry(up.to_owned()).or_insert_with(|| here.to_owned());
        }
    }
}

/// Imports a checkout (`path → text`, relative paths); `dir` names it in the report and the
/// prerequisites' paths (relative to where the inventory will be written).
///
/// # Errors
/// A one-line reason when the checkout has no federation or common app ApplicationSet to read.
pub fn import(files: &BTreeMap<PathBuf, String>, dir: &str) -> Result<Imported, String> {
    let mut report = Vec::new();
    let docs = documents(files, &mut report);
    let catalogue = Catalogue::builtin();
    let repos = repositories(&docs, dir, &mut report)?;
    let namespace = argocd_namespace(&docs, &mut report);
    let own = [repos.infra_url.as_str(), repos.deploy_url.as_str()];
    let mut upstream = upstream_repos(&docs, &own);
    let found = read_apps(&docs, &catalogue, own, files, &repos.common_dirs, &mut report);
    add_used_upstreams(&catalogue, &found, &mut upstream, &mut report);
    report_clusters(&docs, &mut report);
    let mut inv = draft_inventory(&namespace, &repos, upstream, found, files, dir, &mut report);
    let header = format!("# imported by mip from `{dir}`; review the report on stderr\n");
    add_project_overrides(&mut inv, &header, &docs, &mut report);
    let first = format!("{header}{}", crate::to_yaml(&Value::Object(inv.clone())));
    // Same effect or kept: each path mip would render stays the operator's unless mip's
    // file declares the same documents, so rendering the import changes no deployed value.
    let parsed = mip_inventory::parse("mip.yaml", &first).map_err(|d| {
        let first = d.iter().find(|d| d.severity == mip_core::Severity::Error).map(ToString::to_string);
        format!("the imported inventory does not validate: {}", first.unwrap_or_default())
    })?;
    let rendered = crate::render(&parsed.inventory, &mip_graph::ResolveOptions::default());
    let keep = kept_paths(files, &rendered, &mut report);
    report.extend(roles(files, &rendered, &parsed.inventory));
    if !keep.is_empty() {
        let entries: Vec<Value> = keep.iter().map(|k| json!(k)).collect();
        inv.insert("tree".into(), json!({ "keep": entries }));
    }
    let text = format!("{header}{}", crate::to_yaml(&Value::Object(inv)));
    Ok(Imported { inventory: text, report })
}

/// The tree's two repositories, as its ApplicationSets name them.
struct Repositories {
    deploy_url: String,
    deploy_rev: String,
    infra_url: String,
    infra_rev: String,
    /// The directories of the common apps' git generator.
    common_dirs: Vec<String>,
}

/// The deployments repository (the git generator over `deployments/`) and the infra one: the
/// common apps' generator, else the source of the projects' ApplicationSet, else (reported)
/// the deployments repository.
fn repositories(
    docs: &BTreeMap<PathBuf, Vec<Value>>,
    dir: &str,
    report: &mut Vec<String>,
) -> Result<Repositories, String> {
    let gens = git_generators(docs);
    let deploy = gens.iter().find(|(_, _, d)| d.iter().any(|p| p.starts_with("deployments/")));
    let infra_gen = gens.iter().find(|(_, _, d)| d.iter().any(|p| p.starts_with("common/")));
    let Some((deploy_url, deploy_rev, _)) = deploy else {
        return Err(format!("no ApplicationSet under `{dir}` has a git generator over `deployments/`"));
    };
    let (infra_url, infra_rev) = match (infra_gen, projects_source(docs)) {
        (Some((u, r, _)), _) => (u.clone(), r.clone()),
        (None, Some((u, r))) => (u, r),
        (None, None) => {
            report.push("no infra repository found (no common apps, no projects ApplicationSet): the deployments repository is used for both".to_owned());
            (deploy_url.clone(), deploy_rev.clone())
        }
    };
    Ok(Repositories {
        deploy_url: deploy_url.clone(),
        deploy_rev: deploy_rev.clone(),
        infra_url,
        infra_rev,
        common_dirs: infra_gen.map(|(_, _, d)| d.clone()).unwrap_or_default(),
    })
}

/// The source (`repoURL`, `targetRevision`) of the ApplicationSet over `projects/`.
fn projects_source(docs: &BTreeMap<PathBuf, Vec<Value>>) -> Option<(String, String)> {
    docs.values().flatten().filter(|d| d["kind"] == "ApplicationSet").find_map(|d| {
        let p = s(d, "/spec/template/spec/source/path")?;
        p.starts_with("projects/").then(|| {
            (
                s(d, "/spec/template/spec/source/repoURL").unwrap_or_default().to_owned(),
                s(d, "/spec/template/spec/source/targetRevision").unwrap_or_default().to_owned(),
            )
        })
    })
}

/// Argo CD's namespace: an ApplicationSet's or AppProject's, else a kustomization's, else
/// (reported) `argocd`.
fn argocd_namespace(docs: &BTreeMap<PathBuf, Vec<Value>>, report: &mut Vec<String>) -> String {
    docs.values()
        .flatten()
        .filter(|d| d["kind"] == "ApplicationSet" || d["kind"] == "AppProject")
        .find_map(|d| s(d, "/metadata/namespace").map(str::to_owned))
        .or_else(|| {
            docs.values()
                .flatten()
                .filter(|d| d["kind"] == "Kustomization")
                .find_map(|d| s(d, "/namespace").map(str::to_owned))
        })
        .unwrap_or_else(|| {
            report.push("the Argo CD namespace is written nowhere: `argocd` assumed".to_owned());
            "argocd".to_owned()
        })
}

/// Upstream chart repositories: every project's sourceRepos but ours, in order.
fn upstream_repos(docs: &BTreeMap<PathBuf, Vec<Value>>, own: &[&str]) -> Vec<String> {
    let mut upstream: Vec<String> = Vec::new();
    for d in docs.values().flatten().filter(|d| d["kind"] == "AppProject") {
        for r in d
            .pointer("/spec/sourceRepos")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !own.contains(&r) && r != "*" && !upstream.iter().any(|u| u == r) {
                upstream.push(r.to_owned());
            }
        }
    }
    upstream
}

/// The federations and common apps read from the tree, and what reading them gathered.
struct Found {
    feds: Vec<Value>,
    common: Vec<Value>,
    /// Upstream revisions differing from the catalogue's: app → revision.
    overrides: BTreeMap<String, String>,
    /// Upstream sources the tree reads from elsewhere (a site's mirror): upstream → mirror.
    mirrors: BTreeMap<String, String>,
    uses_keycloak: bool,
}

/// Reads every federation directory, then every common app of the infra generator.
fn read_apps(
    docs: &BTreeMap<PathBuf, Vec<Value>>,
    catalogue: &Catalogue,
    own: [&str; 2],
    files: &BTreeMap<PathBuf, String>,
    common_dirs: &[String],
    report: &mut Vec<String>,
) -> Found {
    let mut reader = Reader {
        docs,
        catalogue,
        own,
        overrides: BTreeMap::new(),
        mirrors: BTreeMap::new(),
        uses_keycloak: false,
        report,
    };
    let feds = federations(files).iter().filter_map(|fed| reader.federation(fed)).collect();
    let common = common_dirs
        .iter()
        .filter_map(|d| d.strip_prefix("common/"))
        .filter_map(|d| reader.common_app(d.trim_end_matches('/')))
        .collect();
    Found {
        feds,
        common,
        overrides: reader.overrides,
        mirrors: reader.mirrors,
        uses_keycloak: reader.uses_keycloak,
    }
}

/// The state of reading the apps: what the tree has, and what it gathers on the way.
struct Reader<'a, 'r> {
    docs: &'a BTreeMap<PathBuf, Vec<Value>>,
    catalogue: &'a Catalogue,
    /// The infra and deployments repositories' URLs: any other source is upstream.
    own: [&'a str; 2],
    overrides: BTreeMap<String, String>,
    mirrors: BTreeMap<String, String>,
    uses_keycloak: bool,
    report: &'r mut Vec<String>,
}

impl Reader<'_, '_> {
    /// An upstream revision the tree runs `app` at: kept as an override where it differs from
    /// the catalogue's (the first one seen, when two federations differ: reported).
    fn check_version(&mut self, app: &str, rev: Option<String>) {
        let (Some(def), Some(rev)) = (self.catalogue.get(app), rev) else { return };
        if def.version() != rev {
            if let Some(prev) = self.overrides.get(app).filter(|p| **p != rev) {
                self.report.push(format!("`{app}` runs at `{prev}` and `{rev}`: `{prev}` kept for all (pin the other federation's entry with `targetRevision`)"));
                return;
            }
            self.overrides.insert(app.to_owned(), rev);
        }
    }

    /// A federation's entry: the apps its kustomization's resources name, given the values
    /// files and patches of its patches (`None` without a kustomization).
    fn federation(&mut self, fed: &Fed) -> Option<Value> {
        let docs = self.docs;
        let k =
            docs.get(&PathBuf::from(format!("{}/kustomization.yaml", fed.dir))).and_then(|d| d.first())?;
        let mut apps: Vec<Map<String, Value>> = Vec::new();
        for r in k["resources"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let entry = match shared_app(r) {
                Some(app) => self.shared_app_entry(fed, r, app),
                None => self.resource_entry(fed, r),
            };
            apps.extend(entry);
        }
        // Values files and patch files, per app.
        for p in k["patches"].as_array().into_iter().flatten() {
            self.patch(fed, p, &mut apps);
        }
        self.uses_keycloak |= apps.iter().any(|a| a["name"] == "mip-stack");
        let mut f = Map::new();
        f.insert("name".into(), json!(fed.name));
        f.insert("kind".into(), json!(fed.kind));
        f.insert("apps".into(), Value::Array(apps.into_iter().map(Value::Object).collect()));
        Some(Value::Object(f))
    }

    /// A shared app a federation includes (`resource` names its directory): its entry, its
    /// template's revision and mirrors checked (`None`, reported, without a definition).
    fn shared_app_entry(&mut self, fed: &Fed, resource: &str, app: &str) -> Option<Map<String, Value>> {
        let (docs, catalogue) = (self.docs, self.catalogue);
        let Some(def) = catalogue.get(app).filter(|d| d.scope == Scope::Federation) else {
            self.report.push(format!(
                "federation `{}`: shared app `{app}` has no definition; define it under `apps:` (left out)",
                fed.name
            ));
            return None;
        };
        let template = rel(&fed.dir, resource).join(format!("{app}.yaml"));
        let tdoc = docs.get(&template).and_then(|d| d.first());
        let rev = tdoc.and_then(|d| upstream_revision(d, &self.own));
        self.check_version(app, rev);
        if let Some(d) = tdoc {
            mirrored_sources(d, def, &self.own, &mut self.mirrors);
        }
        let mut m = Map::new();
        m.insert("name".into(), json!(app));
        Some(m)
    }

    /// A resource file a federation includes: the overlay Application's entry, or (reported)
    /// nothing, for something mip does not express.
    fn resource_entry(&mut self, fed: &Fed, resource: &str) -> Option<Map<String, Value>> {
        let docs = self.docs;
        let path = rel(&fed.dir, resource);
        let overlay = docs.get(&path).into_iter().flatten().find(|d| {
            d["kind"] == "Application"
                && s(d, "/metadata/name").is_some_and(|n| n.ends_with("exareme2-overlay"))
        });
        let Some(app) = overlay else {
            self.report.push(format!(
                "federation `{}`: resource `{}` is not expressed (mip renders a federation's apps from the inventory; network policies come from the `security` common app)",
                fed.name,
                path.display()
            ));
            return None;
        };
        Some(self.overlay_entry(fed, app, &path))
    }

    /// The `exareme2-overlay` entry of the overlay Application at `path`: its overlay's
    /// resources become patches (reported where it reads elsewhere than mip renders it).
    fn overlay_entry(&mut self, fed: &Fed, app: &Value, path: &Path) -> Map<String, Value> {
        let src = s(app, "/spec/source/path").unwrap_or_default();
        let overlay_dir = src.strip_prefix(&format!("{}/", fed.dir)).unwrap_or(src).to_owned();
        let mut m = Map::new();
        m.insert("name".into(), json!("exareme2-overlay"));
        let ok = self
            .catalogue
            .get("exareme2-overlay")
            .and_then(|d| d.applications.first())
            .and_then(|a| a.sources.first())
            .is_some_and(|s| s.repo == Repo::Deployments && s.path.as_deref() == Some(overlay_dir.as_str()));
        if !ok {
            self.report.push(format!("federation `{}`: the overlay reads `{src}`; mip renders it at `{}/customizations/overlays/exareme2` (move the files, or override `apps.exareme2-overlay`)", fed.name, fed.dir));
        }
        let kpath = PathBuf::from(src).join("kustomization.yaml");
        let resources: Vec<Value> = self
            .docs
            .get(&kpath)
            .and_then(|d| d.first())
            .and_then(|d| d["resources"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .map(|r| json!(format!("{overlay_dir}/{r}")))
            .collect();
        if !resources.is_empty() {
            m.insert("patches".into(), Value::Array(resources));
        }
        self.report.push(format!("federation `{}`: `{}` becomes mip's (rendered from the inventory); its other settings are the catalogue's", fed.name, path.display()));
        m
    }

    /// A patch of a federation's kustomization: the values files it adds go to its target's
    /// entry; a patch doing more is kept as a patch file (reported).
    fn patch(&mut self, fed: &Fed, p: &Value, apps: &mut [Map<String, Value>]) {
        let (Some(path), Some(target)) =
            (p["path"].as_str(), p.pointer("/target/name").and_then(Value::as_str))
        else {
            self.report.push(format!("federation `{}`: an inline patch is not expressed: {p}", fed.name));
            return;
        };
        let Some(entry) = apps.iter_mut().find(|a| a["name"] == target) else {
            self.report.push(format!(
                "federation `{}`: patch `{path}` targets `{target}`, which it does not run",
                fed.name
            ));
            return;
        };
        let doc = self.docs.get(&rel(&fed.dir, path)).and_then(|d| d.first()).cloned().unwrap_or_default();
        let prefix = format!("$values/{}/", fed.dir);
        let strategic = !doc.is_array();
        let (values, other) = match doc.as_array() {
            Some(ops) => json_patch_values(ops, &prefix),
            None => {
                // A strategic-merge patch: its values files are imported; it stays a patch.
                let values = strategic_values(&doc, &prefix);
                self.report.push(format!("federation `{}`: patch `{path}` is a strategic-merge patch that replaces the Application's sources: its values files were imported; as a kept patch it would override the sources mip sets (revision pins), so reduce it to what mip does not set", fed.name));
                (values, true)
            }
        };
        if !values.is_empty() {
            entry.insert("values".into(), Value::Array(values));
        }
        if other {
            entry.insert("patches".into(), json!([path]));
        }
        if other && !strategic {
            self.report.push(format!("federation `{}`: patch `{path}` is kept as a patch file; mip's own patch now sets the project, destination and values files, so remove those operations from it", fed.name));
        }
    }

    /// A common app of the infra generator: its entry (with a namespace differing from the
    /// definition's), its Applications' revisions and mirrors checked (`None`, reported,
    /// without a definition).
    fn common_app(&mut self, name: &str) -> Option<Value> {
        let (docs, catalogue) = (self.docs, self.catalogue);
        let Some(def) = catalogue.get(name).filter(|d| d.scope == Scope::Common) else {
            self.report.push(format!("common app `{name}` has no definition: define it under `apps:` (scope: common) to keep it; left out"));
            return None;
        };
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        let apps: Vec<&Value> = docs
            .iter()
            .filter(|(p, _)| p.starts_with(format!("common/{name}")))
            .flat_map(|(_, d)| d)
            .filter(|d| d["kind"] == "Application")
            .collect();
        for spec in &def.applications {
            let Some(app) = apps.iter().find(|a| s(a, "/metadata/name") == Some(spec.name.as_str())) else {
                continue;
            };
            self.check_version(name, upstream_revision(app, &self.own));
            mirrored_sources(app, def, &self.own, &mut self.mirrors);
            if let (Some(ns), Some(default)) =
                (s(app, "/spec/destination/namespace"), def.namespace.as_deref())
                && spec.namespace.is_none()
                && ns != default
            {
                m.insert("namespace".into(), json!(ns));
            }
        }
        self.chart_mirrors(name, def);
        self.uses_keycloak |= def.secrets.values().flat_map(|k| k.values()).any(|k| k.is_keycloak());
        Some(Value::Object(m))
    }

    /// The Helm chart repositories of the files the definition renders, as the tree has them.
    fn chart_mirrors(&mut self, name: &str, def: &mip_inventory::apps::AppDef) {
        for (rel_path, def_docs) in &def.files {
            let tree_docs = self.docs.get(&PathBuf::from(format!("common/{name}/{rel_path}")));
            for (dd, td) in def_docs.iter().zip(tree_docs.into_iter().flatten()) {
                for (up, here) in helm_chart_repos(dd).into_iter().zip(helm_chart_repos(td)) {
                    if mip_inventory::normalize_repo_url(&up) != mip_inventory::normalize_repo_url(&here) {
                        self.mirrors.entry(up).or_insert(here);
                    }
                }
            }
        }
    }
}

/// The values files a JSON patch adds under the federation's directory (`prefix`), and
/// whether it does anything but those, the project and the destination.
fn json_patch_values(ops: &[Value], prefix: &str) -> (Vec<Value>, bool) {
    let mut values: Vec<Value> = Vec::new();
    let mut other = false;
    for op in ops {
        let target_path = op["path"].as_str().unwrap_or_default();
        match (target_path, op["value"].as_str()) {
            (p, Some(v)) if p.ends_with("/helm/valueFiles/-") && v.starts_with(prefix) => {
                values.push(json!(v.trim_start_matches(prefix)));
            }
            ("/spec/project" | "/spec/destination/namespace" | "/spec/destination/server", _) => {}
            _ => other = true,
        }
    }
    (values, other)
}

/// The values files under the federation's directory (`prefix`) a strategic-merge patch names.
fn strategic_values(doc: &Value, prefix: &str) -> Vec<Value> {
    let mut all = Vec::new();
    crate::reads::strings(doc, &mut all);
    all.iter().filter(|v| v.starts_with(prefix)).map(|v| json!(v.trim_start_matches(prefix))).collect()
}

/// The `repo` of each of a kustomization's `helmCharts`.
fn helm_chart_repos(v: &Value) -> Vec<String> {
    v["helmCharts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["repo"].as_str().map(str::to_owned))
        .collect()
}

/// The upstream repositories of the imported apps, when no project listed them (reported).
fn add_used_upstreams(
    catalogue: &Catalogue,
    found: &Found,
    upstream: &mut Vec<String>,
    report: &mut Vec<String>,
) {
    let used: Vec<String> = found
        .feds
        .iter()
        .flat_map(|f| f["apps"].as_array().cloned().unwrap_or_default())
        .chain(found.common.iter().cloned())
        .filter_map(|a| a["name"].as_str().map(str::to_owned))
        .collect();
    for name in used {
        for src in catalogue.get(&name).into_iter().flat_map(|d| d.upstream_sources()) {
            if let Repo::Url(u) = &src.repo
                && !upstream.contains(u)
            {
                report.push(format!("upstreamRepos: `{u}` added (`{name}` sources it)"));
                upstream.push(u.clone());
            }
        }
    }
}

/// Clusters other than Argo CD's own: reported, not imported.
fn report_clusters(docs: &BTreeMap<PathBuf, Vec<Value>>, report: &mut Vec<String>) {
    for server in list_servers(docs).into_iter().filter(|s| s != mip_core::IN_CLUSTER_SERVER) {
        report.push(format!("cluster `{server}` is named in a list generator: declare it under `clusters:` with its credentials (not imported)"));
    }
}

/// The inventory, but for the projects' rules and `tree.keep`.
fn draft_inventory(
    namespace: &str,
    repos: &Repositories,
    upstream: Vec<String>,
    found: Found,
    files: &BTreeMap<PathBuf, String>,
    dir: &str,
    report: &mut Vec<String>,
) -> Map<String, Value> {
    let revision = if repos.deploy_rev.is_empty() { "main" } else { repos.deploy_rev.as_str() };
    let mut inv = Map::new();
    inv.insert("apiVersion".into(), json!(mip_inventory::API_VERSION));
    inv.insert("kind".into(), json!(mip_inventory::KIND));
    inv.insert("argocd".into(), json!({ "namespace": namespace }));
    inv.insert("revision".into(), json!(revision));
    let infra = repository(&repos.infra_url, &repos.infra_rev, revision, "infra", report);
    let deployments = repository(&repos.deploy_url, &repos.deploy_rev, revision, "deployments", report);
    inv.insert("repositories".into(), json!({ "infra": infra, "deployments": deployments }));
    if !upstream.is_empty() {
        inv.insert("upstreamRepos".into(), json!(upstream));
    }
    if found.uses_keycloak {
        inv.insert(
            "credentials".into(),
            json!({ "keycloak": { "clientId": { "env": "MIP_KEYCLOAK_CLIENT_ID" }, "clientSecret": { "prompt": "Keycloak client secret" } } }),
        );
        report.push("credentials.keycloak: read from `MIP_KEYCLOAK_CLIENT_ID` and a prompt (the tree holds no secrets; change the sources)".to_owned());
    }
    if !found.overrides.is_empty() {
        let apps: Map<String, Value> =
            found.overrides.iter().map(|(k, v)| (k.clone(), json!({ "targetRevision": v }))).collect();
        inv.insert("apps".into(), Value::Object(apps));
    }
    if !found.common.is_empty() {
        inv.insert("commonApps".into(), Value::Array(found.common));
    }
    if !found.feds.is_empty() {
        inv.insert("federations".into(), Value::Array(found.feds));
    }
    let prerequisites = prerequisites(files, dir);
    if !prerequisites.is_empty() {
        inv.insert("prerequisites".into(), Value::Array(prerequisites));
    }
    if !found.mirrors.is_empty() {
        let list: Vec<Value> =
            found.mirrors.iter().map(|(u, m)| json!({ "upstream": u, "mirror": m })).collect();
        for (u, m) in &found.mirrors {
            report.push(format!("mirrors: the tree reads `{u}` from `{m}`"));
        }
        inv.insert("mirrors".into(), Value::Array(list));
    }
    inv
}

/// A repository's entry: its revision where it differs from the inventory's; an SSH URL's key
/// read from a file (reported).
fn repository(url: &str, rev: &str, revision: &str, role: &str, report: &mut Vec<String>) -> Value {
    let mut r = Map::new();
    r.insert("url".into(), json!(url));
    if !rev.is_empty() && rev != revision {
        r.insert("revision".into(), json!(rev));
    }
    if url.starts_with("git@") || url.starts_with("ssh://") {
        r.insert("sshPrivateKey".into(), json!({ "file": "./argocd-remote-key" }));
        report.push(format!(
            "repositories.{role}: an SSH URL; its key is read from `./argocd-remote-key` (change the path)"
        ));
    }
    Value::Object(r)
}

/// Prerequisites: the RBAC manifests under `base/`, by their path from the inventory.
fn prerequisites(files: &BTreeMap<PathBuf, String>, dir: &str) -> Vec<Value> {
    files
        .keys()
        .filter(|p| p.starts_with("base") && p.components().any(|c| c.as_os_str() == "rbac"))
        .map(|p| json!({ "file": format!("{}/{}", dir.trim_end_matches('/'), p.display()) }))
        .collect()
}

/// The tree's own project rules, where they differ from mip's: `projects:` (their
/// derivation reads the inventory, so it is parsed once without them).
fn add_project_overrides(
    inv: &mut Map<String, Value>,
    header: &str,
    docs: &BTreeMap<PathBuf, Vec<Value>>,
    report: &mut Vec<String>,
) {
    let draft = format!("{header}{}", crate::to_yaml(&Value::Object(inv.clone())));
    if let Ok(parsed) = mip_inventory::parse("mip.yaml", &draft) {
        let projects = project_overrides(docs, &parsed.inventory, report);
        if !projects.is_empty() {
            inv.insert("projects".into(), Value::Object(projects));
        }
    }
}

/// The paths mip renders that stay the operator's (`tree.keep`): those whose file mip would
/// change or add, each reported; the count of the others is reported last.
fn kept_paths(
    files: &BTreeMap<PathBuf, String>,
    rendered: &BTreeMap<PathBuf, String>,
    report: &mut Vec<String>,
) -> Vec<String> {
    let mut keep: Vec<String> = Vec::new();
    let mut same = 0;
    for (path, new) in rendered {
        let shown = path.display().to_string();
        match files.get(path) {
            Some(old) if crate::takeover::same_effect(old, new) => same += 1,
            Some(old) => {
                let diff = text_differences(&shown, old, new);
                report
                    .push(format!("kept `{shown}` as it is (`tree.keep`): mip's render would change {diff}"));
                keep.push(shown);
            }
            None => {
                report.push(format!(
                    "kept `{shown}` absent (`tree.keep`): mip would add a file the tree does not have"
                ));
                keep.push(shown);
            }
        }
    }
    report.push(format!(
        "{same} file(s) mip renders declare what the tree's do (same documents): `mip render --adopt` takes them over"
    ));
    keep
}

/// What differs between the tree's file `name` and mip's, in a few words.
fn text_differences(name: &str, old: &str, new: &str) -> String {
    match (crate::takeover::documents(name, old), crate::takeover::documents(name, new)) {
        (Some(a), Some(b)) => crate::takeover::differences(&a, &b, 3).join(", "),
        _ => "the text (not YAML)".to_owned(),
    }
}

/// The rules the tree's static projects differ in from mip's (`projects.yaml` and what mip
/// derives: source repositories, namespaces), as `projects:` overrides, one key per differing
/// field. A role whose policies are not one `applications` action each on the whole project
/// cannot be expressed: the report says so, and the file stays the operator's.
fn project_overrides(
    docs: &BTreeMap<PathBuf, Vec<Value>>,
    inv: &mip_inventory::Inventory,
    report: &mut Vec<String>,
) -> Map<String, Value> {
    let repos = mip_graph::catalogue::Repos::of(inv, &mip_graph::ResolveOptions::default());
    let mut out = Map::new();
    for sp in mip_graph::catalogue::StaticProject::ALL {
        let name = sp.name();
        let Some(rules) = inv.projects.get(name) else { continue };
        let Some((path, doc)) = static_project_doc(docs, name) else { continue };
        let mut over = differing_rules(name, path, doc, &rules.to_json(), report);
        let spec = &doc["spec"];
        // What mip derives is compared as derived: the tree's lists are kept where they differ.
        let namespaces = destination_namespaces(spec);
        if namespaces.is_empty() {
            report.push(format!(
                "`{}`: project `{name}` has no destinations: mip's namespaces are used",
                path.display()
            ));
        } else if namespaces != mip_graph::catalogue::project_namespaces(sp, &inv.argocd.namespace.value, inv)
        {
            over.insert("namespaces".into(), json!(namespaces));
        }
        let sources = string_list(spec.get("sourceRepos"));
        if sources != mip_graph::catalogue::project_source_repos(inv, &repos, Some(sp)) {
            over.insert("sourceRepos".into(), json!(sources));
        }
        if !over.is_empty() {
            let keys: Vec<&str> = over.keys().map(String::as_str).collect();
            report.push(format!(
                "projects.{name}: the tree's own {} (from `{}`)",
                keys.join(", "),
                path.display()
            ));
            out.insert(name.to_owned(), Value::Object(over));
        }
    }
    out
}

/// The AppProject `name` under `projects/static`, and its path.
fn static_project_doc<'d>(
    docs: &'d BTreeMap<PathBuf, Vec<Value>>,
    name: &str,
) -> Option<(&'d PathBuf, &'d Value)> {
    docs.iter().find_map(|(path, list)| {
        let doc = list.iter().find(|d| d["kind"] == "AppProject" && d["metadata"]["name"] == name)?;
        path.starts_with("projects/static").then_some((path, doc))
    })
}

/// The tree's project rules (those of `projects.yaml`) that differ from mip's (`mine`), one
/// key each; roles that cannot be expressed are left out (reported).
fn differing_rules(
    name: &str,
    path: &Path,
    doc: &Value,
    mine: &Value,
    report: &mut Vec<String>,
) -> Map<String, Value> {
    let spec = &doc["spec"];
    let (roles, expressible) = project_roles(spec, name);
    let labels = doc["metadata"].get("labels").cloned().unwrap_or_else(|| json!({}));
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
    let tree = json!({
        "description": spec["description"].as_str().unwrap_or_default(),
        "file": file,
        "labels": labels,
        "clusterResourceWhitelist": group_kinds(spec.get("clusterResourceWhitelist")),
        "namespaceResourceWhitelist": group_kinds(spec.get("namespaceResourceWhitelist")),
        "clusterResourceBlacklist": group_kinds(spec.get("clusterResourceBlacklist")),
        "syncWindows": spec.get("syncWindows").cloned().unwrap_or(Value::Null),
        "roles": roles,
    });
    let mut over = Map::new();
    for (k, v) in tree.as_object().into_iter().flatten() {
        if k == "roles" && !expressible {
            report.push(format!("`{}`: a role of project `{name}` has policies other than one action on its applications each: kept as the tree has it", path.display()));
            continue;
        }
        if k == "description" && v.as_str().is_some_and(str::is_empty) {
            continue; // a description mip requires; the tree has none
        }
        if mine.get(k).unwrap_or(&Value::Null) != v {
            over.insert(k.clone(), v.clone());
        }
    }
    over
}

/// The namespaces of a project's destinations, each once, in order.
fn destination_namespaces(spec: &Value) -> Vec<String> {
    let mut namespaces: Vec<String> = Vec::new();
    for ns in spec["destinations"].as_array().into_iter().flatten().filter_map(|d| d["namespace"].as_str()) {
        if !namespaces.iter().any(|n| n == ns) {
            namespaces.push(ns.to_owned());
        }
    }
    namespaces
}

/// A project's roles as mip writes them (name, description, actions, groups), and whether
/// every policy is one `applications` action on the whole project.
fn project_roles(spec: &Value, name: &str) -> (Vec<Value>, bool) {
    let mut roles = Vec::new();
    let mut expressible = true;
    for role in spec["roles"].as_array().into_iter().flatten() {
        let rname = role["name"].as_str().unwrap_or_default();
        let mut actions = Vec::new();
        for p in string_list(role.get("policies")) {
            let parts: Vec<&str> = p.split(',').map(str::trim).collect();
            match parts.as_slice() {
                ["p", subject, "applications", action, object, "allow"]
                    if *subject == format!("proj:{name}:{rname}") && *object == format!("{name}/*") =>
                {
                    actions.push((*action).to_owned());
                }
                _ => expressible = false,
            }
        }
        let mut r = json!({ "name": rname, "description": role["description"].as_str().unwrap_or_default() });
        r["actions"] = json!(actions);
        r["groups"] = json!(string_list(role.get("groups")));
        roles.push(r);
    }
    (roles, expressible)
}

/// The strings of a YAML list (none when absent).
fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect()
}

/// A list of `{group, kind}` as `group/kind` texts (null when absent).
fn group_kinds(v: Option<&Value>) -> Value {
    match v.and_then(Value::as_array) {
        None => Value::Null,
        Some(list) => json!(
            list.iter()
                .map(|gk| format!(
                    "{}/{}",
                    gk["group"].as_str().unwrap_or(""),
                    gk["kind"].as_str().unwrap_or("")
                ))
                .collect::<Vec<_>>()
        ),
    }
}

/// One report line for each file of the checkout that mip does not render: what it is to
/// mip (data the inventory names, a prerequisite, the operator's file kept in place, or
/// outside mip with why).
fn roles(
    files: &BTreeMap<PathBuf, String>,
    rendered: &BTreeMap<PathBuf, String>,
    inv: &mip_inventory::Inventory,
) -> Vec<String> {
    let user: std::collections::BTreeSet<PathBuf> = crate::user_files(inv).into_iter().collect();
    let mut out = Vec::new();
    for path in files.keys().filter(|p| !rendered.contains_key(*p)) {
        let shown = path.display().to_string();
        let role = if user.contains(path) {
            "data the inventory names (a values or patch file): kept in place, read by Argo CD".to_owned()
        } else if inv.tree.keeps(&shown) {
            continue;
        } else if path.starts_with("argo-setup") {
            "outside mip: Argo CD's own installation (install it as the seed does; mip drives an Argo CD that runs)".to_owned()
        } else if path.extension().is_some_and(|e| e == "md") {
            "outside mip: documentation".to_owned()
        } else if path.starts_with("base") && path.components().any(|c| c.as_os_str() == "rbac") {
            "a prerequisite: mip applies it before the infrastructure (`prerequisites`)".to_owned()
        } else if path == Path::new("projects/mip-infrastructure.yaml") {
            "outside mip's tree: mip applies the bootstrap project `mip-argo-project-infrastructure` itself"
                .to_owned()
        } else {
            "the operator's file, kept in place: mip renders nothing at this path".to_owned()
        };
        out.push(format!("`{shown}`: {role}"));
    }
    out
}
