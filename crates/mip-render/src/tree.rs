//! The files of the GitOps tree, built from the inventory.
//!
//! One file on purpose (about 850 lines): one function per directory of the tree, sharing one
//! context. The projects' rules and the network-policy sets are data (`projects.yaml`, the
//! security app's definition), merged with the inventory's; this file only lays them out.

use crate::emit;
use mip_core::{Diagnostic, Diagnostics, IN_CLUSTER_SERVER, Location};
use mip_graph::ResolveOptions;
use mip_graph::catalogue as cat;
use mip_inventory::apps::{AppDef, AppSpec, Layout, NetworkPolicies, Repo};
use mip_inventory::projects::{FEDERATION_TOKEN, ProjectRules};
use mip_inventory::{CommonApp, Federation, FederationApp, Inventory};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

const ARGO: &str = "argoproj.io/v1alpha1";
const KUSTOMIZE: &str = "kustomize.config.k8s.io/v1beta1";
const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// Go template (sprig) of a federation's lowered directory name, given a generated path:
/// the basename for `deployments/local/federations/<Name>`, the parent's basename for
/// `deployments/hybrid/federations/<Name>/mip-infrastructure`. Mirrors
/// [`cat::federation_segment`]. `hasPrefix`, not the reference's `contains "local"`, so a
/// hybrid federation whose name contains `local` is not taken for a local one.
pub const SEGMENT_TEMPLATE: &str = r#"{{ if hasPrefix "deployments/local/" .path.path }}{{ .path.basename | lower }}{{ else }}{{ .path.path | dir | base | lower }}{{ end }}"#;
/// Go template of a federation's kind (`local` or `hybrid`), given a generated path.
pub const KIND_TEMPLATE: &str =
    r#"{{ if hasPrefix "deployments/local/" .path.path }}local{{ else }}hybrid{{ end }}"#;
/// Name template of AppSet `mip-infrastructure`, as in the reference; mirrors [`cat::infra_app_name`].
pub const INFRA_NAME_TEMPLATE: &str =
    r#"{{ .path.path | replace "/" "-" | lower | replace "federations-federation-" "" }}"#;
/// The federation name inside the project chart's template.
pub const CHART_FEDERATION: &str = "{{ .Values.federationName }}";
/// The destination server inside the project chart's template (per-federation, from `values.yaml`).
pub const CHART_SERVER: &str = "{{ index .Values.servers .Values.federationName | default .Values.server }}";

struct Ctx<'a> {
    inv: &'a Inventory,
    ns: String,
    infra: String,
    deploy: String,
    infra_rev: String,
    deploy_rev: String,
    repos: cat::Repos,
    header: String,
    files: BTreeMap<PathBuf, String>,
}

fn gk(group: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind })
}

fn owned_gks(list: &[(String, String)]) -> Value {
    Value::Array(list.iter().map(|(g, k)| gk(g, k)).collect())
}

fn labels_argocd(extra: &[(&str, &str)]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("app.kubernetes.io/managed-by".into(), json!("argocd"));
    for (k, v) in extra {
        m.insert((*k).to_owned(), json!(v));
    }
    Value::Object(m)
}

fn auto_sync(options: &[&str]) -> Value {
    json!({ "syncOptions": options, "automated": { "selfHeal": true } })
}

impl Ctx<'_> {
    fn put(&mut self, path: &str, docs: &[Value]) {
        let mut text = self.header.clone();
        for d in docs {
            text.push_str("---\n");
            text.push_str(&emit::document(d));
        }
        self.files.insert(PathBuf::from(path), text);
    }

    fn kustomization(&mut self, dir: &str, resources: &[String]) {
        let k = json!({ "apiVersion": KUSTOMIZE, "kind": "Kustomization", "resources": resources });
        self.put(&format!("{dir}/kustomization.yaml"), &[k]);
    }

    fn meta(&self, name: &str) -> Value {
        json!({ "name": name, "namespace": self.ns, "labels": labels_argocd(&[]) })
    }

    fn server_of(&self, cluster: &str) -> String {
        self.inv.server_of(cluster)
    }

    /// Clusters that federations deploy to, in inventory order, with their federations.
    fn federation_clusters(&self) -> Vec<(String, String, Vec<&Federation>)> {
        let mut out: Vec<(String, String, Vec<&Federation>)> = Vec::new();
        for c in &self.inv.clusters {
            let feds: Vec<&Federation> =
                self.inv.federations.iter().filter(|f| f.cluster.value == c.name.value).collect();
            if !feds.is_empty() {
                out.push((c.name.value.clone(), c.server.value.clone(), feds));
            }
        }
        // A federation on an undeclared cluster cannot pass validation; keep it anyway.
        let orphans: Vec<&Federation> =
            self.inv.federations.iter().filter(|f| self.inv.cluster(&f.cluster.value).is_none()).collect();
        if !orphans.is_empty() {
            out.push((mip_inventory::IN_CLUSTER.to_owned(), IN_CLUSTER_SERVER.to_owned(), orphans));
        }
        out
    }

    fn federation_dirs(feds: &[&Federation]) -> Value {
        Value::Array(feds.iter().map(|f| json!({ "path": f.git_path() })).collect())
    }
}

/// Renders the tree (see the crate docs).
pub fn render(inv: &Inventory, opts: &ResolveOptions) -> BTreeMap<PathBuf, String> {
    let rev = |r: &mip_inventory::Repository| opts.revision.clone().unwrap_or_else(|| inv.revision_of(r));
    let source = std::path::Path::new(&inv.file)
        .file_name()
        .map_or_else(|| inv.file.clone(), |f| f.to_string_lossy().into_owned());
    let mut c = Ctx {
        inv,
        ns: inv.argocd.namespace.value.clone(),
        infra: inv.repositories.infra.url.value.clone(),
        deploy: inv.repositories.deployments.url.value.clone(),
        infra_rev: rev(&inv.repositories.infra),
        deploy_rev: rev(&inv.repositories.deployments),
        repos: cat::Repos::of(inv, opts),
        header: crate::header(&source),
        files: BTreeMap::new(),
    };
    argo_projects(&mut c);
    infrastructure(&mut c);
    static_projects(&mut c);
    federation_chart(&mut c);
    for fed in &inv.federations {
        federation_dir(&mut c, fed);
    }
    shared_apps(&mut c);
    for app in &inv.common_apps {
        common_app(&mut c, app);
    }
    // The operator's paths (`tree.keep`): mip renders nothing there.
    let mut files = c.files;
    files.retain(|p, _| !inv.tree.keeps(&p.to_string_lossy()));
    files
}

fn argo_projects(c: &mut Ctx<'_>) {
    let elements: Vec<Value> = cat::StaticProject::ALL
        .iter()
        .map(|p| json!({ "projectName": p.name(), "fileName": p.dir() }))
        .collect();
    let statics = json!({
        "apiVersion": ARGO,
        "kind": "ApplicationSet",
        "metadata": c.meta(cat::STATIC_PROJECTS_APPSET),
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{ "list": { "elements": elements } }],
            "template": {
                "metadata": { "name": "{{ .projectName }}-app", "labels": labels_argocd(&[("app.kubernetes.io/part-of", cat::STATIC_PROJECTS_APPSET)]) },
                "spec": {
                    "project": cat::INFRA_PROJECT,
                    "source": { "repoURL": c.infra, "targetRevision": c.infra_rev, "path": "projects/static/{{ .fileName }}" },
                    "destination": { "server": IN_CLUSTER_SERVER, "namespace": c.ns },
                    "syncPolicy": auto_sync(&["CreateNamespace=true"]),
                },
            },
        },
    });
    let feds: Vec<&Federation> = c.inv.federations.iter().collect();
    let generator = if feds.is_empty() {
        json!({ "list": { "elements": [] } })
    } else {
        json!({ "git": { "repoURL": c.deploy, "revision": c.deploy_rev, "directories": Ctx::federation_dirs(&feds) } })
    };
    let federations = json!({
        "apiVersion": ARGO,
        "kind": "ApplicationSet",
        "metadata": c.meta(cat::FEDERATION_PROJECTS_APPSET),
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [generator],
            "template": {
                "metadata": {
                    "name": format!("argo-project-{SEGMENT_TEMPLATE}-{KIND_TEMPLATE}-app"),
                    "labels": labels_argocd(&[("app.kubernetes.io/part-of", cat::FEDERATION_PROJECTS_APPSET)]),
                },
                "spec": {
                    "project": cat::INFRA_PROJECT,
                    "source": {
                        "repoURL": c.infra,
                        "targetRevision": c.infra_rev,
                        "path": "projects/templates/federation",
                        "helm": { "valueFiles": ["values.yaml"], "parameters": [{ "name": "federationName", "value": SEGMENT_TEMPLATE }] },
                    },
                    "destination": { "server": IN_CLUSTER_SERVER, "namespace": c.ns },
                    "syncPolicy": auto_sync(&["CreateNamespace=true"]),
                },
            },
        },
    });
    c.put("base/argo-projects.yaml", &[statics, federations]);
}

fn infrastructure(c: &mut Ctx<'_>) {
    let mut generators = Vec::new();
    for (name, server, feds) in c.federation_clusters() {
        generators.push(json!({ "matrix": { "generators": [
            { "git": { "repoURL": c.deploy, "revision": c.deploy_rev, "directories": Ctx::federation_dirs(&feds) } },
            { "list": { "elements": [{ "clusterName": name, "server": server, "repoURL": c.deploy, "revision": c.deploy_rev }] } },
        ] } }));
    }
    if !c.inv.common_apps.is_empty() {
        let dirs: Vec<Value> =
            c.inv.common_apps.iter().map(|a| json!({ "path": format!("common/{}", a.kind.value) })).collect();
        generators.push(json!({ "matrix": { "generators": [
            { "git": { "repoURL": c.infra, "revision": c.infra_rev, "directories": dirs } },
            { "list": { "elements": [{ "clusterName": mip_inventory::IN_CLUSTER, "server": IN_CLUSTER_SERVER, "repoURL": c.infra, "revision": c.infra_rev }] } },
        ] } }));
    }
    if generators.is_empty() {
        generators.push(json!({ "list": { "elements": [] } }));
    }
    let project = format!(
        r#"{{{{ if hasPrefix "deployments/" .path.path }}}}mip-argo-project-{SEGMENT_TEMPLATE}{{{{ else }}}}{}{{{{ end }}}}"#,
        cat::INFRA_PROJECT
    );
    let set = json!({
        "apiVersion": ARGO,
        "kind": "ApplicationSet",
        "metadata": c.meta(cat::INFRA_APPSET),
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": generators,
            "template": {
                "metadata": {
                    "name": INFRA_NAME_TEMPLATE,
                    "labels": labels_argocd(&[("app.kubernetes.io/part-of", cat::INFRA_APPSET), ("mip.ebrains.eu/cluster", "{{ .clusterName }}")]),
                    "annotations": { "mip.ebrains.eu/cluster-server": "{{ .server }}" },
                },
                "spec": {
                    "project": project,
                    "source": { "repoURL": "{{ .repoURL }}", "targetRevision": "{{ .revision }}", "path": "{{ .path.path }}" },
                    "destination": { "server": IN_CLUSTER_SERVER, "namespace": c.ns },
                    "syncPolicy": auto_sync(&["CreateNamespace=true", "ApplyOutOfSyncOnly=true"]),
                },
            },
        },
    });
    c.put("base/mip-infrastructure/mip-infrastructure.yaml", &[set]);
}

/// A project's spec from its rules (`projects.yaml`, the inventory's `projects:`), with what
/// mip computes: its repositories, destinations, and the kinds its apps declare.
fn project_spec(
    rules: &ProjectRules,
    sp: Option<cat::StaticProject>,
    c: &Ctx<'_>,
    repos: Value,
    destinations: Vec<Value>,
    subst: &dyn Fn(&str) -> String,
) -> Value {
    let name = subst(&format!("mip-argo-project-{FEDERATION_TOKEN}"));
    let name = sp.map_or(name, |sp| sp.name().to_owned());
    let mut spec = serde_json::Map::new();
    spec.insert("description".into(), json!(subst(&rules.description)));
    spec.insert("sourceRepos".into(), repos);
    spec.insert("destinations".into(), Value::Array(destinations));
    // Kinds the apps declare (`kinds:`) are added, to a list the rules write or to a new one.
    let with_apps = |base: &Option<Vec<(String, String)>>, namespaced: bool| -> Option<Value> {
        let mut list = base.clone().unwrap_or_default();
        let extra = cat::extra_kinds(c.inv, sp, namespaced, &list);
        if base.is_none() && extra.is_empty() {
            return None;
        }
        list.extend(extra);
        Some(owned_gks(&list))
    };
    if let Some(v) = with_apps(&rules.cluster_whitelist, false) {
        spec.insert("clusterResourceWhitelist".into(), v);
    }
    if let Some(v) = with_apps(&rules.namespace_whitelist, true) {
        spec.insert("namespaceResourceWhitelist".into(), v);
    }
    if let Some(list) = &rules.cluster_blacklist {
        spec.insert("clusterResourceBlacklist".into(), owned_gks(list));
    }
    if let Some(w) = &rules.sync_windows {
        spec.insert("syncWindows".into(), w.clone());
    }
    let roles: Vec<Value> = rules
        .roles
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "description": subst(&r.description),
                "policies": ProjectRules::policies(&name, r),
                "groups": r.groups.iter().map(|g| subst(g)).collect::<Vec<_>>(),
            })
        })
        .collect();
    if !roles.is_empty() {
        spec.insert("roles".into(), Value::Array(roles));
    }
    Value::Object(spec)
}

fn project_meta(c: &Ctx<'_>, name: &str, rules: &ProjectRules, subst: &dyn Fn(&str) -> String) -> Value {
    let mut meta = json!({ "name": name, "namespace": c.ns });
    if !rules.labels.is_empty() {
        let labels: serde_json::Map<String, Value> =
            rules.labels.iter().map(|(k, v)| (subst(k), json!(subst(v)))).collect();
        meta["labels"] = Value::Object(labels);
    }
    meta
}

fn static_projects(c: &mut Ctx<'_>) {
    for project in cat::StaticProject::ALL {
        let (name, dir) = (project.name(), project.dir());
        // Every static project has rules (the built-in file names each; a test holds it).
        let Some(rules) = c.inv.projects.get(name) else { continue };
        // Least privilege: the repositories of what deploys through this project (the same
        // list `mip_graph::resolve` expects).
        let repos = cat::project_source_repos(c.inv, &c.repos, Some(project));
        let dests: Vec<Value> = cat::project_destinations(project, &c.ns, c.inv)
            .into_iter()
            .map(|(server, ns)| json!({ "namespace": ns, "server": server }))
            .collect();
        let same = |s: &str| s.to_owned();
        let spec = project_spec(rules, Some(project), c, json!(repos), dests, &same);
        let doc = json!({ "apiVersion": ARGO, "kind": "AppProject", "metadata": project_meta(c, name, rules, &same), "spec": spec });
        let file = rules.file.clone().unwrap_or_else(|| format!("{dir}.yaml"));
        let base = format!("projects/static/{dir}");
        c.put(&format!("{base}/{file}"), &[doc]);
        c.kustomization(&base, &[file]);
    }
}

fn federation_chart(c: &mut Ctx<'_>) {
    let base = "projects/templates/federation";
    let chart = json!({
        "apiVersion": "v2",
        "name": "federation-appproject",
        "description": "The AppProject of one federation (federationName is set by the ApplicationSet)",
        "type": "application",
        "version": "0.1.0",
        "appVersion": "1.0.0",
    });
    c.put(&format!("{base}/Chart.yaml"), &[chart]);
    let servers: serde_json::Map<String, Value> =
        c.inv.federations.iter().map(|f| (f.k8s_name(), json!(c.server_of(&f.cluster.value)))).collect();
    let mut values = json!({ "server": IN_CLUSTER_SERVER, "servers": servers });
    // The remote clusters a hybrid federation's apps also run on (`remoteNodes` apps).
    let remotes: serde_json::Map<String, Value> = c
        .inv
        .federations
        .iter()
        .map(|f| (f.k8s_name(), cat::project_remote_servers(c.inv, f)))
        .filter(|(_, servers)| !servers.is_empty())
        .map(|(name, servers)| (name, json!(servers)))
        .collect();
    let any_remote = !remotes.is_empty();
    if any_remote {
        values["remotes"] = Value::Object(remotes);
    }
    c.put(&format!("{base}/values.yaml"), &[values]);
    let project = format!("mip-argo-project-{CHART_FEDERATION}");
    let mut destinations = vec![
        json!({ "namespace": CHART_FEDERATION, "server": CHART_SERVER }),
        json!({ "namespace": c.ns, "server": IN_CLUSTER_SERVER }),
    ];
    if any_remote {
        // One destination per remote server of this federation: a Helm `range`, written in
        // place of this marker once the document is emitted.
        destinations.push(json!({ "namespace": REMOTES_MARKER, "server": REMOTES_MARKER }));
    }
    // The rules of `federation` (the built-in file names it; a test holds it).
    let Some(rules) = c.inv.projects.get(mip_inventory::projects::FEDERATION) else { return };
    let subst = |s: &str| s.replace(FEDERATION_TOKEN, CHART_FEDERATION);
    let repos = json!(cat::project_source_repos(c.inv, &c.repos, None));
    let spec = project_spec(rules, None, c, repos, destinations, &subst);
    let mut metadata = project_meta(c, &project, rules, &subst);
    // Removing a federation prunes its project and its Applications at the same time; an
    // Application whose project is already gone cannot be deleted ("error getting app project
    // … not found", argo-cd#4369). With this finalizer the application controller keeps the
    // project until no Application references it.
    metadata["finalizers"] = json!([FINALIZER]);
    let template = json!({ "apiVersion": ARGO, "kind": "AppProject", "metadata": metadata, "spec": spec });
    let path = format!("{base}/templates/appproject.yaml");
    c.put(&path, &[template]);
    if let Some(text) = c.files.get_mut(&PathBuf::from(&path)) {
        *text = remote_destinations(text);
    }
}

/// Stands for the remote destinations in the federation project template.
const REMOTES_MARKER: &str = "mip-remote-destinations";

/// The marker destination replaced by a Helm loop over the federation's remote servers, at the
/// marker's indentation.
fn remote_destinations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == format!("- namespace: {REMOTES_MARKER}") {
            let indent = &line[..line.len() - trimmed.len()];
            lines.next(); // its `server:` line
            out.push_str(&format!("{indent}{{{{- range index .Values.remotes .Values.federationName }}}}\n"));
            out.push_str(&format!("{indent}- namespace: '{{{{ $.Values.federationName }}}}'\n"));
            out.push_str(&format!("{indent}  server: '{{{{ . }}}}'\n"));
            out.push_str(&format!("{indent}{{{{- end }}}}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The JSON patch that places a shared app into a federation: project, destination, what the
/// federation's definition changes from the template (a pinned revision, a source, the sync
/// wave, annotations, sync options), then the federation's values files.
fn federation_patch(c: &Ctx<'_>, fed: &Federation, app: &FederationApp, def: &AppDef) -> String {
    let mut ops = vec![
        json!({ "op": "add", "path": "/spec/project", "value": cat::federation_project(fed) }),
        json!({ "op": "add", "path": "/spec/destination/server", "value": c.server_of(&fed.cluster.value) }),
        json!({ "op": "add", "path": "/spec/destination/namespace", "value": fed.k8s_name() }),
    ];
    let template = c.inv.app_def(def.name.as_str());
    if let (Some(t), Some(tspec), Some(spec)) =
        (template, template.and_then(cat::federation_spec), cat::federation_spec(def))
    {
        let pin = app.target_revision.as_ref().map(|p| p.value.as_str());
        let (was, now) =
            (cat::sources(t, tspec, &c.repos, None, None), cat::sources(def, spec, &c.repos, pin, None));
        if was.len() == now.len() {
            for (i, (w, n)) in was.iter().zip(&now).enumerate() {
                let mut only_revision = w.clone();
                only_revision.target_revision.clone_from(&n.target_revision);
                if only_revision == *n && w != n {
                    ops.push(json!({ "op": "add", "path": format!("/spec/sources/{i}/targetRevision"), "value": n.target_revision }));
                } else if w != n {
                    // `add` at an index would insert: the template's source is replaced.
                    ops.push(json!({ "op": "replace", "path": format!("/spec/sources/{i}"), "value": n.to_value() }));
                }
            }
        } else {
            let now: Vec<Value> = now.iter().map(mip_graph::AppSource::to_value).collect();
            ops.push(json!({ "op": "add", "path": "/spec/sources", "value": now }));
        }
        let annotation = |k: &str| format!("/metadata/annotations/{}", mip_core::canonical::pointer_token(k));
        if spec.wave != tspec.wave
            && let Some(w) = spec.wave
        {
            ops.push(json!({ "op": "add", "path": annotation("argocd.argoproj.io/sync-wave"), "value": w.to_string() }));
        }
        for (k, v) in spec.annotations.iter().filter(|a| !tspec.annotations.contains(a)) {
            ops.push(json!({ "op": "add", "path": annotation(k), "value": v }));
        }
        if spec.sync_options != tspec.sync_options {
            ops.push(
                json!({ "op": "add", "path": "/spec/syncPolicy/syncOptions", "value": spec.sync_options }),
            );
        }
        if spec.prune != tspec.prune {
            ops.push(json!({ "op": "add", "path": "/spec/syncPolicy/automated/prune", "value": spec.prune }));
        }
    }
    for v in &app.values {
        ops.push(json!({ "op": "add", "path": "/spec/sources/0/helm/valueFiles/-", "value": format!("$values/{}/{}", fed.git_path(), v.value) }));
    }
    emit::document(&Value::Array(ops))
}

fn federation_dir(c: &mut Ctx<'_>, fed: &Federation) {
    let dir = fed.git_path();
    let up = "../".repeat(dir.split('/').count() - 1);
    let mut resources = Vec::new();
    let mut patches = Vec::new();
    for app in &fed.apps {
        let kind = &app.kind.value;
        let Some(def) = cat::federation_app_def(c.inv, app) else { continue };
        if def.layout == Layout::Overlay {
            resources.push(format!("{kind}.yaml"));
            overlay_app(c, fed, app, def);
            continue;
        }
        resources.push(format!("{up}shared-apps/{kind}"));
        let target = json!({ "kind": "Application", "name": kind.as_str() });
        patches.push(json!({ "target": target, "patch": federation_patch(c, fed, app, def) }));
        for p in &app.patches {
            patches.push(json!({ "path": p.value, "target": target }));
        }
        if def.remote_nodes {
            for remote in cat::remote_node_clusters(fed) {
                resources.push(format!("{}.yaml", cat::remote_node_app(kind, remote)));
                remote_node_app(c, fed, app, def, remote);
            }
        }
    }
    let mut k = serde_json::Map::new();
    k.insert("apiVersion".into(), json!(KUSTOMIZE));
    k.insert("kind".into(), json!("Kustomization"));
    k.insert("namespace".into(), json!(c.ns));
    k.insert("namePrefix".into(), json!(format!("{}-", fed.k8s_name())));
    k.insert(
        "labels".into(),
        json!([{ "pairs": { "app.kubernetes.io/managed-by": "argocd", "app.kubernetes.io/part-of": fed.k8s_name() } }]),
    );
    k.insert("resources".into(), json!(resources));
    if !patches.is_empty() {
        k.insert("patches".into(), Value::Array(patches));
    }
    c.put(&format!("{dir}/kustomization.yaml"), &[Value::Object(k)]);
}

/// The Application of a definition (metadata, sources, destination, sync policy), as the
/// shared-app templates, overlays and common apps write it.
fn application(
    c: &Ctx<'_>,
    spec: &AppSpec,
    project: &str,
    sources: Vec<mip_graph::AppSource>,
    server: &str,
    namespace: &str,
) -> Value {
    let sources: Vec<Value> = sources.iter().map(mip_graph::AppSource::to_value).collect();
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), json!(spec.name));
    meta.insert("namespace".into(), json!(c.ns));
    let mut annotations = serde_json::Map::new();
    if let Some(w) = spec.wave {
        annotations.insert("argocd.argoproj.io/sync-wave".into(), json!(w.to_string()));
    }
    for (k, v) in &spec.annotations {
        annotations.insert(k.clone(), json!(v));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    meta.insert("finalizers".into(), json!([FINALIZER]));
    let mut spec_m = serde_json::Map::new();
    spec_m.insert("project".into(), json!(project));
    match (spec.single_source, sources.as_slice()) {
        (true, [one]) => spec_m.insert("source".into(), one.clone()),
        _ => spec_m.insert("sources".into(), Value::Array(sources)),
    };
    spec_m.insert("destination".into(), json!({ "server": server, "namespace": namespace }));
    let options: Vec<&str> = spec.sync_options.iter().map(String::as_str).collect();
    let mut policy = auto_sync(&options);
    if spec.prune {
        policy["automated"]["prune"] = json!(true);
    }
    spec_m.insert("syncPolicy".into(), policy);
    json!({ "apiVersion": ARGO, "kind": "Application", "metadata": meta, "spec": spec_m })
}

/// An overlay app: its Application in the federation's directory and the kustomize overlay
/// it reads, whose resources are the entry's `patches` (files of the user).
fn overlay_app(c: &mut Ctx<'_>, fed: &Federation, app: &FederationApp, def: &AppDef) {
    let dir = fed.git_path();
    let Some(spec) = cat::federation_spec(def) else { return };
    let pin = app.target_revision.as_ref().map(|p| p.value.as_str());
    let sources = cat::sources(def, spec, &c.repos, pin, Some(&dir));
    let doc = application(
        c,
        spec,
        &cat::federation_project(fed),
        sources,
        &c.server_of(&fed.cluster.value),
        &fed.k8s_name(),
    );
    c.put(&format!("{dir}/{}.yaml", def.name), &[doc]);
    for src in spec.sources.iter().filter(|s| s.repo == Repo::Deployments) {
        let Some(path) = &src.path else { continue };
        let up = "../".repeat(path.split('/').count());
        let resources: Vec<String> = app.patches.iter().map(|p| format!("{up}{}", p.value)).collect();
        let k = json!({
            "apiVersion": KUSTOMIZE,
            "kind": "Kustomization",
            "namespace": fed.k8s_name(),
            "labels": [{ "pairs": { "federation": fed.k8s_name(), "customization-layer": "overlay" } }],
            "resources": resources,
        });
        c.put(&format!("{dir}/{path}/kustomization.yaml"), &[k]);
    }
}

/// An app with `remoteNodes` on one remote cluster of a hybrid federation: a whole Application
/// in the federation's directory (the kustomize prefix adds the federation's name), with the
/// federation's pin and values files, sent to that cluster.
fn remote_node_app(c: &mut Ctx<'_>, fed: &Federation, app: &FederationApp, def: &AppDef, remote: &str) {
    let Some(spec) = cat::federation_spec(def) else { return };
    let pin = app.target_revision.as_ref().map(|p| p.value.as_str());
    let sources = cat::with_values(cat::sources(def, spec, &c.repos, pin, None), fed, app);
    let name = cat::remote_node_app(&app.kind.value, remote);
    let spec = AppSpec { name: name.clone(), ..spec.clone() };
    let doc =
        application(c, &spec, &cat::federation_project(fed), sources, &c.server_of(remote), &fed.k8s_name());
    c.put(&format!("{}/{name}.yaml", fed.git_path()), &[doc]);
}

fn shared_apps(c: &mut Ctx<'_>) {
    let mut used: Vec<&AppDef> = Vec::new();
    for f in &c.inv.federations {
        for a in &f.apps {
            // The template is the catalogue's definition; a federation's `override:` is its patch.
            if let Some(def) = c.inv.app_def(a.kind.value.as_str())
                && def.layout == Layout::Shared
                && !used.iter().any(|u| u.name == def.name)
            {
                used.push(def);
            }
        }
    }
    used.sort_by(|a, b| a.name.cmp(&b.name));
    for def in used {
        let Some(spec) = cat::federation_spec(def) else { continue };
        let sources = cat::sources(def, spec, &c.repos, None, None);
        let doc = application(
            c,
            spec,
            cat::StaticProject::SharedApps.name(),
            sources,
            IN_CLUSTER_SERVER,
            "placeholder-namespace",
        );
        let dir = format!("deployments/shared-apps/{}", def.name);
        c.put(&format!("{dir}/{}.yaml", def.name), &[doc]);
        c.kustomization(&dir, &[format!("{}.yaml", def.name)]);
    }
}

fn common_app(c: &mut Ctx<'_>, app: &CommonApp) {
    let kind = &app.kind.value;
    let Some(def) = c.inv.app_def(kind.as_str()) else { return };
    let dir = format!("common/{kind}");
    let ns = app.namespace().unwrap_or_default();
    let pin = app.target_revision.as_ref().map(|p| p.value.as_str());
    let mut docs = Vec::new();
    for spec in &def.applications {
        let sources = cat::sources(def, spec, &c.repos, pin, None);
        let ns = spec.namespace.clone().unwrap_or_else(|| ns.clone());
        let project = spec.project.clone().unwrap_or_default();
        docs.push(application(c, spec, &project, sources, IN_CLUSTER_SERVER, &ns));
    }
    if let Some(sets) = &def.network_policies {
        docs.extend(security_sets(c, &dir, sets));
    }
    // The file keeps the name the reference tree gives it.
    let file = match kind.as_str() {
        "security" => "netpol.yaml".to_owned(),
        other => format!("{other}.yaml"),
    };
    c.put(&format!("{dir}/{file}"), &docs);
    c.kustomization(&dir, &[file]);
    for (rel, docs) in &def.files {
        // Helm charts of kustomizations are upstream sources too: `mirrors:` maps their
        // repository, and a pin (the entry's `targetRevision`, else the definition's) is their
        // chart version.
        let chart_pin = pin.or(def.target_revision.as_deref());
        let docs: Vec<Value> = docs
            .iter()
            .map(|d| {
                let mut d = d.clone();
                for chart in d.get_mut("helmCharts").and_then(Value::as_array_mut).into_iter().flatten() {
                    if let Some(repo) = chart.get("repo").and_then(Value::as_str).map(|r| c.repos.upstream(r))
                    {
                        chart["repo"] = json!(repo);
                    }
                    if let Some(version) = chart_pin {
                        chart["version"] = json!(version);
                    }
                }
                d
            })
            .collect();
        c.put(&format!("{dir}/{rel}"), &docs);
    }
}

/// The two network-policy ApplicationSets of an app with `networkPolicies` (in `dir`).
fn security_sets(c: &Ctx<'_>, dir: &str, sets: &NetworkPolicies) -> Vec<Value> {
    let project = cat::StaticProject::Security.name();
    let mut generators = Vec::new();
    for (name, server, feds) in c.federation_clusters() {
        generators.push(json!({ "matrix": { "generators": [
            { "git": { "repoURL": c.deploy, "revision": c.deploy_rev, "directories": Ctx::federation_dirs(&feds) } },
            { "list": { "elements": [{ "clusterName": name, "server": server }] } },
        ] } }));
    }
    if generators.is_empty() {
        generators.push(json!({ "list": { "elements": [] } }));
    }
    let param = |name: &str, value: &str| json!({ "name": name, "value": value });
    let mut federation_params =
        vec![param("targetNamespace", SEGMENT_TEMPLATE), param("federationType", KIND_TEMPLATE)];
    federation_params.extend(sets.federation_parameters.iter().map(|(n, v)| param(n, v)));
    let mut common_params = vec![param("targetNamespace", "{{ .commonNamespace }}")];
    common_params.extend(sets.common_parameters.iter().map(|(n, v)| param(n, v)));
    let federations = json!({
        "apiVersion": ARGO,
        "kind": "ApplicationSet",
        "metadata": c.meta(cat::FEDERATION_NETPOL_APPSET),
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": generators,
            "template": {
                "metadata": {
                    "name": format!("netpol-{SEGMENT_TEMPLATE}-{KIND_TEMPLATE}"),
                    "labels": labels_argocd(&[("app.kubernetes.io/part-of", cat::FEDERATION_NETPOL_APPSET)]),
                },
                "spec": {
                    "project": project,
                    "source": {
                        "repoURL": c.infra,
                        "targetRevision": c.infra_rev,
                        "path": format!("{dir}/federation"),
                        "helm": { "parameters": federation_params },
                    },
                    "destination": { "server": "{{ .server }}", "namespace": SEGMENT_TEMPLATE },
                    "syncPolicy": auto_sync(&["ApplyOutOfSyncOnly=true"]),
                },
            },
        },
    });
    let elements: Vec<Value> =
        sets.common_namespaces.iter().map(|ns| json!({ "commonNamespace": ns })).collect();
    let common = json!({
        "apiVersion": ARGO,
        "kind": "ApplicationSet",
        "metadata": c.meta(cat::COMMON_NETPOL_APPSET),
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{ "list": { "elements": elements } }],
            "template": {
                "metadata": {
                    "name": "netpol-{{ .commonNamespace }}",
                    "labels": labels_argocd(&[("app.kubernetes.io/part-of", cat::COMMON_NETPOL_APPSET)]),
                },
                "spec": {
                    "project": project,
                    "source": {
                        "repoURL": c.infra,
                        "targetRevision": c.infra_rev,
                        "path": format!("{dir}/common-templates"),
                        "helm": { "parameters": common_params },
                    },
                    "destination": { "server": IN_CLUSTER_SERVER, "namespace": "{{ .commonNamespace }}" },
                    "syncPolicy": auto_sync(&["CreateNamespace=true", "ApplyOutOfSyncOnly=true"]),
                },
            },
        },
    });
    vec![federations, common]
}

/// A file the rendered tree refers to but does not write: the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFile {
    /// Its path in the tree.
    pub path: PathBuf,
    /// The inventory entry that names it.
    pub at: Location,
    /// What refers to it, for messages.
    pub what: String,
}

/// Every user file the tree refers to: each federation's values and patch files (an
/// overlay's resources among them) and the `$values/` files of the common apps, in path order.
pub fn user_files_located(inv: &Inventory) -> Vec<UserFile> {
    let mut out: Vec<UserFile> = Vec::new();
    for fed in &inv.federations {
        for app in &fed.apps {
            for (f, kind) in
                app.values.iter().map(|v| (v, "values file")).chain(app.patches.iter().map(|p| (p, "patch")))
            {
                out.push(UserFile {
                    path: PathBuf::from(fed.git_path()).join(&f.value),
                    at: f.at.clone(),
                    what: format!("{kind} of `{}` in federation `{}`", app.kind.value, fed.name.value),
                });
            }
        }
    }
    for app in &inv.common_apps {
        if let Some(def) = inv.app_def(app.kind.value.as_str()) {
            for f in def.values_files() {
                out.push(UserFile {
                    path: PathBuf::from(f),
                    at: app.kind.at.clone(),
                    what: format!("values file of common app `{}` (`$values/` in its definition)", def.name),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// Paths of [`user_files_located`].
pub fn user_files(inv: &Inventory) -> Vec<PathBuf> {
    user_files_located(inv).into_iter().map(|f| f.path).collect()
}

/// One located error per user file absent from a checkout (`exists` answers for a path
/// relative to the tree): Argo CD fails an Application whose values or patch file is missing.
pub fn missing_user_files(inv: &Inventory, exists: impl Fn(&std::path::Path) -> bool) -> Diagnostics {
    let mut d = Diagnostics::new();
    for f in user_files_located(inv).into_iter().filter(|f| !exists(&f.path)) {
        d.push(
            Diagnostic::error(
                Some(f.at),
                "missing-file",
                format!("`{}` does not exist in the tree ({})", f.path.display(), f.what),
            )
            .with_hint("write the file, or remove it from the inventory; Argo CD fails an Application whose values or patch file is missing"),
        );
    }
    d
}
