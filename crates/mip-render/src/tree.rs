//! The files of the GitOps tree, built from the inventory.

use crate::emit;
use mip_core::IN_CLUSTER_SERVER;
use mip_graph::ResolveOptions;
use mip_graph::catalogue as cat;
use mip_inventory::{CommonApp, CommonAppKind, Federation, FederationAppKind, Inventory};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

const ARGO: &str = "argoproj.io/v1alpha1";
const KUSTOMIZE: &str = "kustomize.config.k8s.io/v1beta1";
const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// Pinned upstream chart commits (the reference tree's versions).
pub const EXAREME2_CHART_REVISION: &str = "c1d4eb3d9d90edcf868a3a6395cc37b19c934e66";
/// `HBPMedical/mip-deployment` at the reference tree's commit.
pub const MIP_STACK_CHART_REVISION: &str = "f7c64415c48f56bdb25188721d5857a5d79e2547";
/// `madgik/datacatalog` at the reference tree's commit (1.2.1).
pub const DATACATALOG_CHART_REVISION: &str = "1ada3bb89efc651a53c16f57c0b210a78e096fff";

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
    header: String,
    files: BTreeMap<PathBuf, String>,
}

fn gk(group: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind })
}

fn gks(list: &[(&str, &str)]) -> Value {
    Value::Array(list.iter().map(|(g, k)| gk(g, k)).collect())
}

/// Cluster-scoped kinds no generated project may touch.
const SENSITIVE: [(&str, &str); 5] = [
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
];

/// Namespaced kinds of the federation workloads (charts of Exareme2 and the MIP stack).
const WORKLOADS: [(&str, &str); 17] = [
    ("argoproj.io", "Application"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "PersistentVolumeClaim"),
    ("", "ServiceAccount"),
    ("", "Pod"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("batch", "Job"),
    ("batch", "CronJob"),
];

/// What a static project permits besides its destinations.
struct ProjectRules {
    description: &'static str,
    /// Cluster-scoped kinds it may manage.
    cluster: &'static [(&'static str, &'static str)],
    /// Namespaced kinds (`None`: [`WORKLOADS`]).
    namespaced: Option<&'static [(&'static str, &'static str)]>,
    /// Namespaced kinds added to those.
    extra_namespaced: &'static [(&'static str, &'static str)],
    /// Whether [`SENSITIVE`] is blacklisted.
    blacklist: bool,
    /// `(role, description, actions, group)`.
    roles: &'static [(&'static str, &'static str, &'static [&'static str], &'static str)],
}

const ALL_ACTIONS: &[&str] = &["get", "create", "update", "delete", "sync"];
const READ_SYNC: &[&str] = &["get", "sync"];

fn project_rules(project: cat::StaticProject) -> ProjectRules {
    match project {
        cat::StaticProject::Federations => ProjectRules {
            description: "Federation-specific applications and configurations",
            cluster: &[],
            namespaced: None,
            extra_namespaced: &[],
            blacklist: true,
            roles: &[
                ("federation-admin", "Full access to federation resources", ALL_ACTIONS, "argocd-admins"),
                (
                    "federation-developer",
                    "Limited access to federation resources",
                    READ_SYNC,
                    "argocd-developers",
                ),
            ],
        },
        cat::StaticProject::SharedApps => ProjectRules {
            description: "Shared applications like exareme2 and mip-stack",
            cluster: &[],
            namespaced: None,
            extra_namespaced: &[],
            blacklist: true,
            roles: &[
                ("shared-apps-admin", "Full access to shared applications", ALL_ACTIONS, "argocd-admins"),
                (
                    "shared-apps-developer",
                    "Limited access to shared applications",
                    READ_SYNC,
                    "argocd-developers",
                ),
            ],
        },
        cat::StaticProject::Common => ProjectRules {
            description: "Common resources like monitoring, security, and datacatalog",
            cluster: &[
                ("", "Namespace"),
                ("", "PersistentVolume"),
                ("networking.k8s.io", "IngressClass"),
                ("cert-manager.io", "ClusterIssuer"),
            ],
            namespaced: None,
            extra_namespaced: &[
                ("monitoring.coreos.com", "ServiceMonitor"),
                ("monitoring.coreos.com", "PrometheusRule"),
                ("cert-manager.io", "Certificate"),
                ("cert-manager.io", "Issuer"),
            ],
            blacklist: true,
            roles: &[
                ("common-admin", "Full access to common resources", ALL_ACTIONS, "argocd-admins"),
                ("common-operator", "Limited access to common resources", READ_SYNC, "argocd-operators"),
            ],
        },
        cat::StaticProject::Security => ProjectRules {
            description: "Network security policies for federations and common namespaces",
            cluster: &[("", "Namespace")],
            namespaced: Some(&[("argoproj.io", "Application"), ("networking.k8s.io", "NetworkPolicy")]),
            extra_namespaced: &[],
            blacklist: true,
            roles: &[
                ("security-admin", "Full access to network security policies", ALL_ACTIONS, "argocd-admins"),
                (
                    "security-operator",
                    "Limited access to network security policies",
                    READ_SYNC,
                    "argocd-operators",
                ),
            ],
        },
        cat::StaticProject::Submariner => ProjectRules {
            description: "Project for Submariner deployment",
            cluster: &[
                ("apiextensions.k8s.io", "CustomResourceDefinition"),
                ("submariner.io", "Cluster"),
                ("submariner.io", "Endpoint"),
                ("submariner.io", "Gateway"),
                ("submariner.io", "ClusterGlobalEgressIP"),
                ("submariner.io", "GlobalEgressIP"),
            ],
            namespaced: Some(&[
                ("apps", "Deployment"),
                ("apps", "DaemonSet"),
                ("batch", "Job"),
                ("", "ServiceAccount"),
                ("", "Service"),
                ("", "ConfigMap"),
                ("", "Secret"),
                ("rbac.authorization.k8s.io", "Role"),
                ("rbac.authorization.k8s.io", "RoleBinding"),
                ("submariner.io", "Submariner"),
                ("submariner.io", "ServiceDiscovery"),
                ("submariner.io", "Broker"),
            ]),
            extra_namespaced: &[],
            blacklist: false,
            roles: &[(
                "submariner-admin",
                "Admin access to Submariner resources",
                ALL_ACTIONS,
                "argocd-admins",
            )],
        },
    }
}

fn policies(project: &str, role: &str, actions: &[&str]) -> Vec<String> {
    actions
        .iter()
        .map(|a| format!("p, proj:{project}:{role}, applications, {a}, {project}/*, allow"))
        .collect()
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

    /// Every repository the generated projects may source (the same list
    /// `mip_graph::resolve` expects).
    fn source_repos(&self) -> Vec<String> {
        let mut v = vec![self.infra.clone(), self.deploy.clone()];
        for u in &self.inv.upstream_repos {
            if !v.contains(&u.value) {
                v.push(u.value.clone());
            }
        }
        v.dedup();
        v
    }

    fn server_of(&self, cluster: &str) -> String {
        self.inv.cluster(cluster).map_or_else(|| IN_CLUSTER_SERVER.to_owned(), |c| c.server.value.clone())
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
    c.files
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

fn static_projects(c: &mut Ctx<'_>) {
    let repos = c.source_repos();
    for project in cat::StaticProject::ALL {
        let (name, dir) = (project.name(), project.dir());
        let p = project_rules(project);
        let dests: Vec<Value> = project
            .namespaces(&c.ns)
            .into_iter()
            .map(|ns| json!({ "namespace": ns, "server": IN_CLUSTER_SERVER }))
            .collect();
        let mut namespaced: Vec<(&str, &str)> =
            p.namespaced.map_or_else(|| WORKLOADS.to_vec(), <[_]>::to_vec);
        namespaced.extend_from_slice(p.extra_namespaced);
        let roles: Vec<Value> = p
            .roles
            .iter()
            .map(|(role, desc, actions, group)| {
                json!({ "name": role, "description": desc, "policies": policies(name, role, actions), "groups": [group] })
            })
            .collect();
        let mut spec = serde_json::Map::new();
        spec.insert("description".into(), json!(p.description));
        spec.insert("sourceRepos".into(), json!(repos));
        spec.insert("destinations".into(), Value::Array(dests));
        if !p.cluster.is_empty() {
            spec.insert("clusterResourceWhitelist".into(), gks(p.cluster));
        }
        spec.insert("namespaceResourceWhitelist".into(), gks(&namespaced));
        if p.blacklist {
            spec.insert("clusterResourceBlacklist".into(), gks(&SENSITIVE));
        }
        spec.insert("roles".into(), Value::Array(roles));
        let project =
            json!({ "apiVersion": ARGO, "kind": "AppProject", "metadata": c.meta(name), "spec": spec });
        let base = format!("projects/static/{dir}");
        c.put(&format!("{base}/{dir}.yaml"), &[project]);
        c.kustomization(&base, &[format!("{dir}.yaml")]);
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
    let values = json!({ "server": IN_CLUSTER_SERVER, "servers": servers });
    c.put(&format!("{base}/values.yaml"), &[values]);
    let project = format!("mip-argo-project-{CHART_FEDERATION}");
    let role = |role: &str, desc: &str, actions: &[&str], groups: &[&str], own: &str| {
        let mut g: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
        g.push(format!("{CHART_FEDERATION}-{own}"));
        json!({ "name": role, "description": format!("{desc} {CHART_FEDERATION} resources"), "policies": policies(&project, role, actions), "groups": g })
    };
    let template = json!({
        "apiVersion": ARGO,
        "kind": "AppProject",
        "metadata": {
            "name": project,
            "namespace": c.ns,
            "labels": labels_argocd(&[("app.kubernetes.io/name", &format!("{CHART_FEDERATION}-project")), ("federation", CHART_FEDERATION)]),
            // Removing a federation prunes its project and its Applications at the same time;
            // an Application whose project is already gone cannot be deleted ("error getting
            // app project … not found", argo-cd#4369). With this finalizer the application
            // controller keeps the project until no Application references it.
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "description": format!("Federation-specific project for {CHART_FEDERATION}"),
            "sourceRepos": c.source_repos(),
            "destinations": [
                { "namespace": CHART_FEDERATION, "server": CHART_SERVER },
                { "namespace": c.ns, "server": IN_CLUSTER_SERVER },
            ],
            "clusterResourceWhitelist": gks(&[("", "Namespace")]),
            "namespaceResourceWhitelist": gks(&WORKLOADS),
            "clusterResourceBlacklist": gks(&SENSITIVE),
            "roles": [
                role("federation-admin", "Admin access to", ALL_ACTIONS, &["argocd-admins"], "admins"),
                role("federation-developer", "Developer access to", READ_SYNC, &["argocd-developers"], "developers"),
            ],
        },
    });
    c.put(&format!("{base}/templates/appproject.yaml"), &[template]);
}

/// The JSON patch that places a shared app into a federation.
fn federation_patch(c: &Ctx<'_>, fed: &Federation, values: &[String]) -> String {
    let mut ops = vec![
        json!({ "op": "add", "path": "/spec/project", "value": cat::federation_project(fed) }),
        json!({ "op": "add", "path": "/spec/destination/server", "value": c.server_of(&fed.cluster.value) }),
        json!({ "op": "add", "path": "/spec/destination/namespace", "value": fed.k8s_name() }),
    ];
    for v in values {
        ops.push(json!({ "op": "add", "path": "/spec/sources/0/helm/valueFiles/-", "value": format!("$values/{}/{v}", fed.git_path()) }));
    }
    emit::document(&Value::Array(ops))
}

fn federation_dir(c: &mut Ctx<'_>, fed: &Federation) {
    let dir = fed.git_path();
    let up = "../".repeat(dir.split('/').count() - 1);
    let mut resources = Vec::new();
    let mut patches = Vec::new();
    for app in &fed.apps {
        let kind = app.kind.value;
        if kind == FederationAppKind::Exareme2Overlay {
            resources.push("exareme2-overlay.yaml".to_owned());
            overlay_app(c, fed);
            continue;
        }
        resources.push(format!("{up}shared-apps/{kind}"));
        let values: Vec<String> = app.values.iter().map(|v| v.value.clone()).collect();
        let target = json!({ "kind": "Application", "name": kind.as_str() });
        patches.push(json!({ "target": target, "patch": federation_patch(c, fed, &values) }));
        for p in &app.patches {
            patches.push(json!({ "path": p.value, "target": target }));
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

fn overlay_app(c: &mut Ctx<'_>, fed: &Federation) {
    let dir = fed.git_path();
    let app = json!({
        "apiVersion": ARGO,
        "kind": "Application",
        "metadata": {
            "name": FederationAppKind::Exareme2Overlay.as_str(),
            "namespace": c.ns,
            "annotations": { "argocd.argoproj.io/sync-wave": cat::federation_app_wave(FederationAppKind::Exareme2Overlay).to_string() },
            "finalizers": [FINALIZER],
        },
        "spec": {
            "project": cat::federation_project(fed),
            "source": { "repoURL": c.deploy, "targetRevision": c.deploy_rev, "path": format!("{dir}/customizations/overlays/exareme2") },
            "destination": { "server": c.server_of(&fed.cluster.value), "namespace": fed.k8s_name() },
            "syncPolicy": {
                "syncOptions": ["CreateNamespace=true", "ApplyOutOfSyncOnly=true", "ServerSideApply=true"],
                "automated": { "selfHeal": true, "prune": true },
            },
        },
    });
    c.put(&format!("{dir}/exareme2-overlay.yaml"), &[app]);
}

fn shared_apps(c: &mut Ctx<'_>) {
    for kind in [FederationAppKind::Exareme2, FederationAppKind::MipStack] {
        if !c.inv.federations.iter().any(|f| f.has_app(kind)) {
            continue;
        }
        let (upstream, revision) = match kind {
            FederationAppKind::Exareme2 => (cat::EXAREME2_REPO, EXAREME2_CHART_REVISION),
            _ => (cat::MIP_STACK_REPO, MIP_STACK_CHART_REVISION),
        };
        let mut annotations = serde_json::Map::new();
        annotations
            .insert("argocd.argoproj.io/sync-wave".into(), json!(cat::federation_app_wave(kind).to_string()));
        if kind == FederationAppKind::MipStack {
            annotations
                .insert("argocd.argoproj.io/sync-options".into(), json!("SkipDryRunOnMissingResource=true"));
        }
        let app = json!({
            "apiVersion": ARGO,
            "kind": "Application",
            "metadata": { "name": kind.as_str(), "namespace": c.ns, "annotations": annotations, "finalizers": [FINALIZER] },
            "spec": {
                "project": cat::StaticProject::SharedApps.name(),
                "sources": [
                    { "repoURL": upstream, "targetRevision": revision, "path": "kubernetes", "helm": { "valueFiles": ["values.yaml"] } },
                    { "repoURL": c.deploy, "targetRevision": c.deploy_rev, "ref": "values" },
                ],
                "destination": { "server": IN_CLUSTER_SERVER, "namespace": "placeholder-namespace" },
                "syncPolicy": auto_sync(&["CreateNamespace=true", "ApplyOutOfSyncOnly=true"]),
            },
        });
        let dir = format!("deployments/shared-apps/{kind}");
        c.put(&format!("{dir}/{kind}.yaml"), &[app]);
        c.kustomization(&dir, &[format!("{kind}.yaml")]);
    }
}

fn common_application(
    c: &Ctx<'_>,
    name: &str,
    project: cat::StaticProject,
    wave: Option<&str>,
    sources: Value,
    namespace: &str,
    options: &[&str],
) -> Value {
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(c.ns));
    if let Some(w) = wave {
        meta.insert("annotations".into(), json!({ "argocd.argoproj.io/sync-wave": w }));
    }
    meta.insert("finalizers".into(), json!([FINALIZER]));
    let mut spec = serde_json::Map::new();
    spec.insert("project".into(), json!(project.name()));
    let key = if sources.is_array() { "sources" } else { "source" };
    spec.insert(key.into(), sources);
    spec.insert("destination".into(), json!({ "server": IN_CLUSTER_SERVER, "namespace": namespace }));
    spec.insert("syncPolicy".into(), auto_sync(options));
    json!({ "apiVersion": ARGO, "kind": "Application", "metadata": meta, "spec": spec })
}

fn common_app(c: &mut Ctx<'_>, app: &CommonApp) {
    let kind = app.kind.value;
    let dir = format!("common/{kind}");
    let ns = app.namespace().unwrap_or_default();
    let (file, docs) = match kind {
        CommonAppKind::Datacatalog => {
            let sources = json!([
                { "repoURL": cat::DATACATALOG_REPO, "targetRevision": DATACATALOG_CHART_REVISION, "path": "kubernetes",
                  "helm": { "valueFiles": ["values.yaml", "$values/common/datacatalog/values.yaml"] } },
                { "repoURL": c.infra, "targetRevision": c.infra_rev, "ref": "values" },
            ]);
            (
                "datacatalog.yaml",
                vec![common_application(
                    c,
                    "datacatalog",
                    cat::StaticProject::Common,
                    None,
                    sources,
                    &ns,
                    &["CreateNamespace=true", "ApplyOutOfSyncOnly=true"],
                )],
            )
        }
        CommonAppKind::NginxIngress => {
            let source = json!({ "repoURL": c.infra, "targetRevision": c.infra_rev, "path": "common/nginx-ingress/manifests" });
            (
                "nginx-ingress.yaml",
                vec![common_application(
                    c,
                    "nginx-public-ingress",
                    cat::StaticProject::Common,
                    None,
                    source,
                    &ns,
                    &["CreateNamespace=true", "Replace=true"],
                )],
            )
        }
        CommonAppKind::Submariner => {
            let mut docs = Vec::new();
            for (i, child) in cat::common_children(kind).iter().enumerate() {
                let part = child.name.trim_start_matches("submariner-");
                let sources = json!([{ "repoURL": c.infra, "targetRevision": c.infra_rev, "path": format!("common/submariner/{part}") }]);
                let ns = child.namespace.map_or_else(|| ns.clone(), str::to_owned);
                docs.push(common_application(
                    c,
                    child.name,
                    child.project,
                    Some(&i.to_string()),
                    sources,
                    &ns,
                    &["CreateNamespace=true"],
                ));
            }
            ("submariner.yaml", docs)
        }
        CommonAppKind::Security => ("netpol.yaml", security_sets(c)),
    };
    c.put(&format!("{dir}/{file}"), &docs);
    c.kustomization(&dir, &[file.to_owned()]);
}

fn security_sets(c: &Ctx<'_>) -> Vec<Value> {
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
                        "path": "common/security/federation",
                        "helm": { "parameters": [
                            param("targetNamespace", SEGMENT_TEMPLATE),
                            param("federationType", KIND_TEMPLATE),
                            param("networkPolicy.excludedSelector[0].key", "app"),
                            param("networkPolicy.excludedSelector[0].operator", "NotIn"),
                            param("networkPolicy.excludedSelector[0].values[0]", "exareme2-worker"),
                        ] },
                    },
                    "destination": { "server": "{{ .server }}", "namespace": SEGMENT_TEMPLATE },
                    "syncPolicy": auto_sync(&["ApplyOutOfSyncOnly=true"]),
                },
            },
        },
    });
    let elements: Vec<Value> =
        cat::COMMON_NETPOL_NAMESPACES.iter().map(|ns| json!({ "commonNamespace": ns })).collect();
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
                        "path": "common/security/common-templates",
                        "helm": { "parameters": [param("targetNamespace", "{{ .commonNamespace }}")] },
                    },
                    "destination": { "server": IN_CLUSTER_SERVER, "namespace": "{{ .commonNamespace }}" },
                    "syncPolicy": auto_sync(&["CreateNamespace=true", "ApplyOutOfSyncOnly=true"]),
                },
            },
        },
    });
    vec![federations, common]
}

/// Files the rendered tree refers to but does not write: each federation's values and
/// patch files, relative to the tree.
pub fn user_files(inv: &Inventory) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for fed in &inv.federations {
        for app in &fed.apps {
            for f in app.values.iter().chain(&app.patches) {
                out.push(PathBuf::from(fed.git_path()).join(&f.value));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
