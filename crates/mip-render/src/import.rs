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
    let gens = git_generators(&docs);
    let deploy = gens.iter().find(|(_, _, d)| d.iter().any(|p| p.starts_with("deployments/")));
    let infra_gen = gens.iter().find(|(_, _, d)| d.iter().any(|p| p.starts_with("common/")));
    let Some((deploy_url, deploy_rev, _)) = deploy else {
        return Err(format!("no ApplicationSet under `{dir}` has a git generator over `deployments/`"));
    };
    // The infra repository: the common apps' generator, else the source of the projects' AppSet.
    let projects_source = docs.values().flatten().filter(|d| d["kind"] == "ApplicationSet").find_map(|d| {
        let p = s(d, "/spec/template/spec/source/path")?;
        p.starts_with("projects/").then(|| {
            (
                s(d, "/spec/template/spec/source/repoURL").unwrap_or_default().to_owned(),
                s(d, "/spec/template/spec/source/targetRevision").unwrap_or_default().to_owned(),
            )
        })
    });
    let (infra_url, infra_rev) = match (infra_gen, projects_source) {
        (Some((u, r, _)), _) => (u.clone(), r.clone()),
        (None, Some((u, r))) => (u, r),
        (None, None) => {
            report.push("no infra repository found (no common apps, no projects ApplicationSet): the deployments repository is used for both".to_owned());
            (deploy_url.clone(), deploy_rev.clone())
        }
    };
    let namespace = docs
        .values()
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
        });
    let revision = if deploy_rev.is_empty() { "main".to_owned() } else { deploy_rev.clone() };
    let own = [infra_url.as_str(), deploy_url.as_str()];

    // Upstream chart repositories: every project's sourceRepos but ours, in order.
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

    let mut overrides: BTreeMap<String, String> = BTreeMap::new();
    // Upstream sources the tree reads from elsewhere (a site's mirror): upstream → mirror.
    let mut mirrors: BTreeMap<String, String> = BTreeMap::new();
    let mut check_version = |app: &str, rev: Option<String>, report: &mut Vec<String>| {
        let (Some(def), Some(rev)) = (catalogue.get(app), rev) else { return };
        if def.version() != rev {
            if let Some(prev) = overrides.get(app).filter(|p| **p != rev) {
                report.push(format!("`{app}` runs at `{prev}` and `{rev}`: `{prev}` kept for all (pin the other federation's entry with `targetRevision`)"));
                return;
            }
            overrides.insert(app.to_owned(), rev);
        }
    };

    // Federations.
    let mut feds_out = Vec::new();
    let mut uses_keycloak = false;
    for fed in federations(files) {
        let k =
            &docs.get(&PathBuf::from(format!("{}/kustomization.yaml", fed.dir))).cloned().unwrap_or_default();
        let Some(k) = k.first() else { continue };
        let mut apps: Vec<Map<String, Value>> = Vec::new();
        for r in k["resources"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let Some(app) = shared_app(r) {
                if catalogue.get(app).is_none_or(|d| d.scope != Scope::Federation) {
                    report.push(format!("federation `{}`: shared app `{app}` has no definition; define it under `apps:` (left out)", fed.name));
                    continue;
                }
                let template = rel(&fed.dir, r).join(format!("{app}.yaml"));
                let tdoc = docs.get(&template).and_then(|d| d.first());
                let rev = tdoc.and_then(|d| upstream_revision(d, &own));
                check_version(app, rev, &mut report);
                if let (Some(d), Some(def)) = (tdoc, catalogue.get(app)) {
                    mirrored_sources(d, def, &own, &mut mirrors);
                }
                let mut m = Map::new();
                m.insert("name".into(), json!(app));
                apps.push(m);
                continue;
            }
            // A resource file: the overlay Application, or something mip does not express.
            let path = rel(&fed.dir, r);
            let overlay = docs.get(&path).into_iter().flatten().find(|d| {
                d["kind"] == "Application"
                    && s(d, "/metadata/name").is_some_and(|n| n.ends_with("exareme2-overlay"))
            });
            match overlay {
                Some(app) => {
                    let src = s(app, "/spec/source/path").unwrap_or_default();
                    let overlay_dir = src.strip_prefix(&format!("{}/", fed.dir)).unwrap_or(src).to_owned();
                    let mut m = Map::new();
                    m.insert("name".into(), json!("exareme2-overlay"));
                    let ok = catalogue
                        .get("exareme2-overlay")
                        .and_then(|d| d.applications.first())
                        .and_then(|a| a.sources.first())
                        .is_some_and(|s| s.repo == Repo::Deployments && s.path.as_deref() == Some(overlay_dir.as_str()));
                    if !ok {
                        report.push(format!("federation `{}`: the overlay reads `{src}`; mip renders it at `{}/customizations/overlays/exareme2` (move the files, or override `apps.exareme2-overlay`)", fed.name, fed.dir));
                    }
                    let kpath = PathBuf::from(src).join("kustomization.yaml");
                    let resources: Vec<Value> = docs
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
                    report.push(format!("federation `{}`: `{}` becomes mip's (rendered from the inventory); its other settings are the catalogue's", fed.name, path.display()));
                    apps.push(m);
                }
                None => report.push(format!(
                    "federation `{}`: resource `{}` is not expressed (mip renders a federation's apps from the inventory; network policies come from the `security` common app)",
                    fed.name,
                    path.display()
                )),
            }
        }
        // Values files and patch files, per app.
        for p in k["patches"].as_array().into_iter().flatten() {
            let (Some(path), Some(target)) =
                (p["path"].as_str(), p.pointer("/target/name").and_then(Value::as_str))
            else {
                report.push(format!("federation `{}`: an inline patch is not expressed: {p}", fed.name));
                continue;
            };
            let Some(entry) = apps.iter_mut().find(|a| a["name"] == target) else {
                report.push(format!(
                    "federation `{}`: patch `{path}` targets `{target}`, which it does not run",
                    fed.name
                ));
                continue;
            };
            let doc = docs.get(&rel(&fed.dir, path)).and_then(|d| d.first()).cloned().unwrap_or_default();
            let prefix = format!("$values/{}/", fed.dir);
            let mut values: Vec<Value> = Vec::new();
            let mut other = false;
            let strategic = !doc.is_array();
            match doc.as_array() {
                Some(ops) => {
                    for op in ops {
                        let target_path = op["path"].as_str().unwrap_or_default();
                        match (target_path, op["value"].as_str()) {
                            (p, Some(v)) if p.ends_with("/helm/valueFiles/-") && v.starts_with(&prefix) => {
                                values.push(json!(v.trim_start_matches(&prefix)));
                            }
                            (
                                "/spec/project" | "/spec/destination/namespace" | "/spec/destination/server",
                                _,
                            ) => {}
                            _ => other = true,
                        }
                    }
                }
                None => {
                    // A strategic-merge patch: its values files are imported; it stays a patch.
                    let mut all = Vec::new();
                    crate::reads::strings(&doc, &mut all);
                    values.extend(
                        all.iter()
                            .filter(|v| v.starts_with(&prefix))
                            .map(|v| json!(v.trim_start_matches(&prefix))),
                    );
                    other = true;
                    report.push(format!("federation `{}`: patch `{path}` is a strategic-merge patch that replaces the Application's sources: its values files were imported; as a kept patch it would override the sources mip sets (revision pins), so reduce it to what mip does not set", fed.name));
                }
            }
            if !values.is_empty() {
                entry.insert("values".into(), Value::Array(values));
            }
            if other {
                entry.insert("patches".into(), json!([path]));
            }
            if other && !strategic {
                report.push(format!("federation `{}`: patch `{path}` is kept as a patch file; mip's own patch now sets the project, destination and values files, so remove those operations from it", fed.name));
            }
        }
        uses_keycloak |= apps.iter().any(|a| a["name"] == "mip-stack");
        let mut f = Map::new();
        f.insert("name".into(), json!(fed.name));
        f.insert("kind".into(), json!(fed.kind));
        f.insert("apps".into(), Value::Array(apps.into_iter().map(Value::Object).collect()));
        feds_out.push(Value::Object(f));
    }

    // Common apps.
    let mut common_out = Vec::new();
    let common_dirs: Vec<String> = infra_gen.map(|(_, _, d)| d.clone()).unwrap_or_default();
    for dir_path in common_dirs.iter().filter_map(|d| d.strip_prefix("common/")) {
        let name = dir_path.trim_end_matches('/');
        let Some(def) = catalogue.get(name).filter(|d| d.scope == Scope::Common) else {
            report.push(format!("common app `{name}` has no definition: define it under `apps:` (scope: common) to keep it; left out"));
            continue;
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
            check_version(name, upstream_revision(app, &own), &mut report);
            mirrored_sources(app, def, &own, &mut mirrors);
            if let (Some(ns), Some(default)) =
                (s(app, "/spec/destination/namespace"), def.namespace.as_deref())
                && spec.namespace.is_none()
                && ns != default
            {
                m.insert("namespace".into(), json!(ns));
            }
        }
        // The Helm chart repositories of the files the definition renders, as the tree has them.
        for (rel_path, def_docs) in &def.files {
            let tree_docs = docs.get(&PathBuf::from(format!("common/{name}/{rel_path}")));
            for (dd, td) in def_docs.iter().zip(tree_docs.into_iter().flatten()) {
                let charts = |v: &Value| -> Vec<String> {
                    v["helmCharts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["repo"].as_str().map(str::to_owned))
                        .collect()
                };
                for (up, here) in charts(dd).into_iter().zip(charts(td)) {
                    if mip_inventory::normalize_repo_url(&up) != mip_inventory::normalize_repo_url(&here) {
                        mirrors.entry(up).or_insert(here);
                    }
                }
            }
        }
        uses_keycloak |= def.secrets.values().flat_map(|k| k.values()).any(|k| k.is_keycloak());
        common_out.push(Value::Object(m));
    }

    // The upstream repositories of the imported apps, when no project listed them.
    let used: Vec<String> = feds_out
        .iter()
        .flat_map(|f| f["apps"].as_array().cloned().unwrap_or_default())
        .chain(common_out.iter().cloned())
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

    // Clusters other than Argo CD's own.
    for server in list_servers(&docs).into_iter().filter(|s| s != mip_core::IN_CLUSTER_SERVER) {
        report.push(format!("cluster `{server}` is named in a list generator: declare it under `clusters:` with its credentials (not imported)"));
    }

    // Prerequisites: RBAC manifests under base/.
    let prerequisites: Vec<Value> = files
        .keys()
        .filter(|p| p.starts_with("base") && p.components().any(|c| c.as_os_str() == "rbac"))
        .map(|p| json!({ "file": format!("{}/{}", dir.trim_end_matches('/'), p.display()) }))
        .collect();

    let mut inv = Map::new();
    inv.insert("apiVersion".into(), json!(mip_inventory::API_VERSION));
    inv.insert("kind".into(), json!(mip_inventory::KIND));
    inv.insert("argocd".into(), json!({ "namespace": namespace }));
    inv.insert("revision".into(), json!(revision));
    let repo = |url: &str, rev: &str, role: &str, report: &mut Vec<String>| {
        let mut r = Map::new();
        r.insert("url".into(), json!(url));
        if !rev.is_empty() && rev != revision {
            r.insert("revision".into(), json!(rev));
        }
        if url.starts_with("git@") || url.starts_with("ssh://") {
            r.insert("sshPrivateKey".into(), json!({ "file": "./argocd-remote-key" }));
            report.push(format!("repositories.{role}: an SSH URL; its key is read from `./argocd-remote-key` (change the path)"));
        }
        Value::Object(r)
    };
    let infra = repo(&infra_url, &infra_rev, "infra", &mut report);
    let deployments = repo(deploy_url, deploy_rev, "deployments", &mut report);
    inv.insert("repositories".into(), json!({ "infra": infra, "deployments": deployments }));
    if !upstream.is_empty() {
        inv.insert("upstreamRepos".into(), json!(upstream));
    }
    if uses_keycloak {
        inv.insert(
            "credentials".into(),
            json!({ "keycloak": { "clientId": { "env": "MIP_KEYCLOAK_CLIENT_ID" }, "clientSecret": { "prompt": "Keycloak client secret" } } }),
        );
        report.push("credentials.keycloak: read from `MIP_KEYCLOAK_CLIENT_ID` and a prompt (the tree holds no secrets; change the sources)".to_owned());
    }
    if !overrides.is_empty() {
        let apps: Map<String, Value> =
            overrides.iter().map(|(k, v)| (k.clone(), json!({ "targetRevision": v }))).collect();
        inv.insert("apps".into(), Value::Object(apps));
    }
    if !common_out.is_empty() {
        inv.insert("commonApps".into(), Value::Array(common_out));
    }
    if !feds_out.is_empty() {
        inv.insert("federations".into(), Value::Array(feds_out));
    }
    if !prerequisites.is_empty() {
        inv.insert("prerequisites".into(), Value::Array(prerequisites));
    }
    if !mirrors.is_empty() {
        let list: Vec<Value> = mirrors.iter().map(|(u, m)| json!({ "upstream": u, "mirror": m })).collect();
        for (u, m) in &mirrors {
            report.push(format!("mirrors: the tree reads `{u}` from `{m}`"));
        }
        inv.insert("mirrors".into(), Value::Array(list));
    }
    let header = format!("# imported by mip from `{dir}`; review the report on stderr\n");
    // The tree's own project rules, where they differ from mip's: `projects:` (their
    // derivation reads the inventory, so it is parsed once without them).
    let draft = format!("{header}{}", crate::to_yaml(&Value::Object(inv.clone())));
    if let Ok(parsed) = mip_inventory::parse("mip.yaml", &draft) {
        let projects = project_overrides(&docs, &parsed.inventory, &mut report);
        if !projects.is_empty() {
            inv.insert("projects".into(), Value::Object(projects));
        }
    }
    let first = format!("{header}{}", crate::to_yaml(&Value::Object(inv.clone())));
    // Same effect or kept: each path mip would render stays the operator's unless mip's
    // file declares the same documents, so rendering the import changes no deployed value.
    let parsed = mip_inventory::parse("mip.yaml", &first).map_err(|d| {
        let first = d.iter().find(|d| d.severity == mip_core::Severity::Error).map(ToString::to_string);
        format!("the imported inventory does not validate: {}", first.unwrap_or_default())
    })?;
    let rendered = crate::render(&parsed.inventory, &mip_graph::ResolveOptions::default());
    let mut keep: Vec<String> = Vec::new();
    let mut same = 0;
    for (path, new) in &rendered {
        let shown = path.display().to_string();
        match files.get(path) {
            Some(old) if crate::takeover::same_effect(old, new) => same += 1,
            Some(old) => {
                let name = path.display().to_string();
                let diff =
                    match (crate::takeover::documents(&name, old), crate::takeover::documents(&name, new)) {
                        (Some(a), Some(b)) => crate::takeover::differences(&a, &b, 3).join(", "),
                        _ => "the text (not YAML)".to_owned(),
                    };
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
    report.extend(roles(files, &rendered, &parsed.inventory));
    if !keep.is_empty() {
        let entries: Vec<Value> = keep.iter().map(|k| json!(k)).collect();
        inv.insert("tree".into(), json!({ "keep": entries }));
    }
    let text = format!("{header}{}", crate::to_yaml(&Value::Object(inv)));
    Ok(Imported { inventory: text, report })
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
    use mip_graph::catalogue as cat;
    let repos = cat::Repos::of(inv, &mip_graph::ResolveOptions::default());
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let kinds = |v: Option<&Value>| -> Value {
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
    };
    let mut out = Map::new();
    for sp in cat::StaticProject::ALL {
        let name = sp.name();
        let Some(rules) = inv.projects.get(name) else { continue };
        let found = docs.iter().find_map(|(path, list)| {
            let doc = list.iter().find(|d| d["kind"] == "AppProject" && d["metadata"]["name"] == name)?;
            path.starts_with("projects/static").then_some((path, doc))
        });
        let Some((path, doc)) = found else { continue };
        let spec = &doc["spec"];
        let mut namespaces: Vec<String> = Vec::new();
        for ns in
            spec["destinations"].as_array().into_iter().flatten().filter_map(|d| d["namespace"].as_str())
        {
            if !namespaces.iter().any(|n| n == ns) {
                namespaces.push(ns.to_owned());
            }
        }
        let mut roles = Vec::new();
        let mut expressible = true;
        for role in spec["roles"].as_array().into_iter().flatten() {
            let rname = role["name"].as_str().unwrap_or_default();
            let mut actions = Vec::new();
            for p in strings(role.get("policies")) {
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
            let mut r =
                json!({ "name": rname, "description": role["description"].as_str().unwrap_or_default() });
            r["actions"] = json!(actions);
            r["groups"] = json!(strings(role.get("groups")));
            roles.push(r);
        }
        let labels = doc["metadata"].get("labels").cloned().unwrap_or_else(|| json!({}));
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        let tree = json!({
            "description": spec["description"].as_str().unwrap_or_default(),
            "file": file,
            "labels": labels,
            "clusterResourceWhitelist": kinds(spec.get("clusterResourceWhitelist")),
            "namespaceResourceWhitelist": kinds(spec.get("namespaceResourceWhitelist")),
            "clusterResourceBlacklist": kinds(spec.get("clusterResourceBlacklist")),
            "syncWindows": spec.get("syncWindows").cloned().unwrap_or(Value::Null),
            "roles": roles,
        });
        let mine = rules.to_json();
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
        // What mip derives is compared as derived: the tree's lists are kept where they differ.
        if namespaces.is_empty() {
            report.push(format!(
                "`{}`: project `{name}` has no destinations: mip's namespaces are used",
                path.display()
            ));
        } else if namespaces != cat::project_namespaces(sp, &inv.argocd.namespace.value, inv) {
            over.insert("namespaces".into(), json!(namespaces));
        }
        let sources = strings(spec.get("sourceRepos"));
        if sources != cat::project_source_repos(inv, &repos, Some(sp)) {
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
