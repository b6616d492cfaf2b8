//! What the MIP GitOps tree contains: names, projects, paths and sources of the objects Argo
//! CD generates. Every name here matches what the reference ApplicationSets compute (their go
//! templates are quoted next to the function that mirrors them). What each app deploys comes
//! from its definition ([`mip_inventory::apps`]); the functions here turn a definition into
//! Argo CD fields, once for the rendered tree and the expected objects alike.

use crate::model::{AppSource, ResolveOptions};
use mip_inventory::apps::{AppDef, AppSpec, Layout, NetworkPolicies, Repo, Source};
use mip_inventory::{Federation, FederationApp, FederationAppKind, FederationKind, Inventory};

use std::collections::BTreeMap;

/// Argo CD's finalizer on an Application that makes its deletion cascade to what it manages.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// Bootstrap AppProject, applied by mip; the root Applications live in it.
pub const INFRA_PROJECT: &str = "mip-argo-project-infrastructure";
/// The AppProject Argo CD creates on every start; mip locks it down.
pub const DEFAULT_PROJECT: &str = "default";
/// AppSet (from `base/`) that creates the static projects' Applications.
pub const STATIC_PROJECTS_APPSET: &str = "mip-argo-projects";
/// AppSet (from `base/`) that creates one project Application per federation.
pub const FEDERATION_PROJECTS_APPSET: &str = "mip-argo-projects-of-federations";
/// AppSet (from `base/mip-infrastructure/`) that creates federation and common Applications.
pub const INFRA_APPSET: &str = "mip-infrastructure";
/// AppSet (from `common/security`) for federation network policies.
pub const FEDERATION_NETPOL_APPSET: &str = "federation-network-policies";
/// AppSet (from `common/security`) for common namespaces' network policies.
pub const COMMON_NETPOL_APPSET: &str = "common-network-policies";

/// The static AppProjects, rendered under `projects/static/` and created by AppSet
/// [`STATIC_PROJECTS_APPSET`], each for one kind of Application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StaticProject {
    /// `mip-argo-project-federations`: federation-specific applications.
    Federations,
    /// `mip-argo-project-shared-apps`: the shared app templates (Exareme2, MIP stack).
    SharedApps,
    /// `mip-argo-project-common`: common apps (data catalogue, ingress).
    Common,
    /// `mip-argo-project-security`: network policies.
    Security,
    /// `mip-argo-project-submariner`: the Submariner broker and operator.
    Submariner,
}

impl StaticProject {
    /// Every static project, in the order the AppSet lists them.
    pub const ALL: [StaticProject; 5] = [
        StaticProject::Federations,
        StaticProject::SharedApps,
        StaticProject::Common,
        StaticProject::Security,
        StaticProject::Submariner,
    ];

    /// The AppProject's name.
    pub fn name(self) -> &'static str {
        match self {
            StaticProject::Federations => "mip-argo-project-federations",
            StaticProject::SharedApps => "mip-argo-project-shared-apps",
            StaticProject::Common => "mip-argo-project-common",
            StaticProject::Security => "mip-argo-project-security",
            StaticProject::Submariner => "mip-argo-project-submariner",
        }
    }

    /// Its directory under `projects/static/`.
    pub fn dir(self) -> &'static str {
        match self {
            StaticProject::Federations => "mip-federations",
            StaticProject::SharedApps => "mip-shared-apps",
            StaticProject::Common => "mip-common",
            StaticProject::Security => "mip-security",
            StaticProject::Submariner => "submariner",
        }
    }
}

/// The app whose network policies the platform renders: the first enabled common app with
/// `networkPolicies` (the built-in `security`), with its sets.
pub fn network_policies(inv: &Inventory) -> Option<(&mip_inventory::CommonApp, &NetworkPolicies)> {
    inv.common_apps.iter().find_map(|a| {
        let def = inv.app_def(a.kind.value.as_str())?;
        def.network_policies.as_ref().map(|np| (a, np))
    })
}

/// `mip-argo-project-<suffix>`.
pub fn project_name(suffix: &str) -> String {
    format!("mip-argo-project-{suffix}")
}

/// Sanitised branch prefix: every character but ASCII letters and digits becomes `-`, as the
/// reference scripts' `sed 's/[^a-zA-Z0-9]/-/g'` does, lowered because Kubernetes names are
/// lowercase (`Feature/X` would otherwise give an invalid name).
pub fn branch_prefix(revision: &str) -> String {
    let s: String = revision
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("{s}-")
}

/// Name segment used by the project templates: `{{ .path.basename | lower }}` for local,
/// `{{ .path.path | dir | base | lower }}` for hybrid; both give the lowered directory name.
pub fn federation_segment(f: &Federation) -> String {
    f.k8s_name()
}

/// `argo-project-{{...}}-local-app` / `-hybrid-app` (AppSet `mip-argo-projects-of-federations`).
pub fn federation_project_app(f: &Federation) -> String {
    format!("argo-project-{}-{}-app", federation_segment(f), f.kind.value.as_str())
}

/// `mip-argo-project-<federation>`, the AppProject the federation Helm chart renders.
pub fn federation_project(f: &Federation) -> String {
    project_name(&federation_segment(f))
}

/// AppSet `mip-infrastructure`'s name template for a generated path:
/// `{{ .path.path | replace "/" "-" | lower | replace "federations-federation-" "" }}`.
pub fn infra_app_name(path: &str) -> String {
    path.replace('/', "-").to_lowercase().replace("federations-federation-", "")
}

/// The federation wrapper Application (`deployments-local-a`, `deployments-hybrid-z-mip-infrastructure`).
pub fn federation_wrapper_app(f: &Federation) -> String {
    infra_app_name(&f.git_path())
}

/// Child Applications of a federation wrapper: kustomize `namePrefix: <federation>-`.
pub fn federation_child_app(f: &Federation, app: &FederationAppKind) -> String {
    format!("{}-{}", f.k8s_name(), app.as_str())
}

/// The remote clusters where a federation's apps with `remoteNodes` also run: its
/// `remoteClusters` when it is hybrid (none otherwise).
pub fn remote_node_clusters(f: &Federation) -> Vec<&str> {
    if f.kind.value == FederationKind::Hybrid {
        f.remote_clusters.iter().map(|r| r.value.as_str()).collect()
    } else {
        Vec::new()
    }
}

/// Whether a federation runs an app with `remoteNodes` on remote clusters.
pub fn runs_on_remote_nodes(inv: &Inventory, f: &Federation) -> bool {
    !remote_node_clusters(f).is_empty()
        && f.apps.iter().filter_map(|a| federation_app_def(inv, a)).any(|d| d.remote_nodes)
}

/// `<app>-<cluster>`: the Application of an app with `remoteNodes` on one remote cluster, in
/// the federation's directory (the kustomize prefix adds the federation's name).
pub fn remote_node_app(app: &FederationAppKind, cluster: &str) -> String {
    format!("{}-{cluster}", app.as_str())
}

/// The servers a federation's project permits besides its own cluster: those of the remote
/// clusters its apps also run on.
pub fn project_remote_servers(inv: &Inventory, f: &Federation) -> Vec<String> {
    if !runs_on_remote_nodes(inv, f) {
        return Vec::new();
    }
    remote_node_clusters(f).into_iter().map(|c| inv.server_of(c)).collect()
}

/// `netpol-<federation>-<kind>` (AppSet `federation-network-policies`).
pub fn federation_netpol_app(f: &Federation) -> String {
    format!("netpol-{}-{}", federation_segment(f), f.kind.value.as_str())
}

/// Whether a federation is local.
pub fn is_local(f: &Federation) -> bool {
    f.kind.value == FederationKind::Local
}

/// mip's two repositories and the revisions in effect (`--revision` overrides both).
#[derive(Debug, Clone)]
pub struct Repos {
    /// The infra repository's URL.
    pub infra: String,
    /// Its revision.
    pub infra_rev: String,
    /// The deployments repository's URL.
    pub deploy: String,
    /// Its revision.
    pub deploy_rev: String,
    /// `mirrors:`: normalised upstream URL → the mirror Argo CD reads instead.
    pub mirrors: BTreeMap<String, String>,
}

impl Repos {
    /// The repositories of an inventory under `opts`.
    pub fn of(inv: &Inventory, opts: &ResolveOptions) -> Repos {
        let rev = |r: &mip_inventory::Repository| opts.revision.clone().unwrap_or_else(|| inv.revision_of(r));
        Repos {
            infra: inv.repositories.infra.url.value.clone(),
            infra_rev: rev(&inv.repositories.infra),
            deploy: inv.repositories.deployments.url.value.clone(),
            deploy_rev: rev(&inv.repositories.deployments),
            mirrors: inv
                .mirrors
                .iter()
                .map(|m| (mip_inventory::normalize_repo_url(&m.upstream.value), m.mirror.value.clone()))
                .collect(),
        }
    }

    /// The URL Argo CD reads for an upstream repository: its mirror, or itself.
    pub fn upstream(&self, url: &str) -> String {
        if self.mirrors.is_empty() {
            return url.to_owned();
        }
        self.mirrors.get(&mip_inventory::normalize_repo_url(url)).cloned().unwrap_or_else(|| url.to_owned())
    }
}

/// The revision of an upstream source: the entry's pin, else the definition's, else the
/// source's own.
pub fn upstream_revision(def: &AppDef, src: &Source, pin: Option<&str>) -> String {
    pin.or(def.target_revision.as_deref()).or(src.target_revision.as_deref()).unwrap_or_default().to_owned()
}

/// One Argo CD source of a definition's Application: mip's own repositories at their
/// revision, upstream ones at [`upstream_revision`]; `dir` prefixes the path of an own-repo
/// source (an overlay's path is relative to the federation's directory). Keys in Argo CD's
/// order: `repoURL`, `targetRevision`, `path`, `chart`, `ref`, `helm`.
pub fn source(def: &AppDef, src: &Source, repos: &Repos, pin: Option<&str>, dir: Option<&str>) -> AppSource {
    let own_path = |p: &str| dir.map_or_else(|| p.to_owned(), |d| format!("{d}/{p}"));
    let (repo_url, target_revision, path) = match &src.repo {
        Repo::Infra => (repos.infra.clone(), repos.infra_rev.clone(), src.path.as_deref().map(own_path)),
        Repo::Deployments => {
            (repos.deploy.clone(), repos.deploy_rev.clone(), src.path.as_deref().map(own_path))
        }
        Repo::Url(u) => (repos.upstream(u), upstream_revision(def, src, pin), src.path.clone()),
    };
    AppSource {
        repo_url,
        target_revision,
        path,
        chart: src.chart.clone(),
        reference: src.reference.clone(),
        value_files: src.value_files.clone(),
    }
}

/// Every source of a definition's Application, as [`source`].
pub fn sources(
    def: &AppDef,
    spec: &AppSpec,
    repos: &Repos,
    pin: Option<&str>,
    dir: Option<&str>,
) -> Vec<AppSource> {
    spec.sources.iter().map(|s| source(def, s, repos, pin, dir)).collect()
}

/// `sources` with a federation app entry's values files (`values:`) appended to the first
/// source's Helm value files, as `$values/<federation dir>/<file>`: what Argo CD reads once the
/// federation's patch (or its remote-node Application) has placed the app.
pub fn with_values(mut sources: Vec<AppSource>, fed: &Federation, app: &FederationApp) -> Vec<AppSource> {
    if let Some(first) = sources.first_mut() {
        first
            .value_files
            .extend(app.values.iter().map(|v| format!("$values/{}/{}", fed.git_path(), v.value)));
    }
    sources
}

/// The directory an overlay app's own-repo paths are relative to.
pub fn overlay_dir(def: &AppDef, f: &Federation) -> Option<String> {
    (def.layout == Layout::Overlay).then(|| f.git_path())
}

/// The effective definition of a federation's app entry: its own (`override:`), else the
/// catalogue's (present in a valid inventory).
pub fn federation_app_def<'i>(inv: &'i Inventory, app: &'i FederationApp) -> Option<&'i AppDef> {
    app.definition.as_ref().or_else(|| inv.app_def(app.kind.value.as_str()))
}

/// The Application a federation app makes (exactly one, checked when decoding).
pub fn federation_spec(def: &AppDef) -> Option<&AppSpec> {
    def.applications.first()
}

/// The static project a name refers to.
pub fn static_project(name: &str) -> Option<StaticProject> {
    StaticProject::ALL.into_iter().find(|p| p.name() == name)
}

/// Destination namespaces of a static project: its rules' (`projects.yaml`, the inventory's
/// `projects:`) and those of the enabled common apps running in it that no existing pattern covers (an
/// app the inventory defines gets its namespace permitted without a new mip build).
pub fn project_namespaces(sp: StaticProject, argocd_ns: &str, inv: &Inventory) -> Vec<String> {
    let mut out = inv.projects.get(sp.name()).map(|r| r.namespaces_in(argocd_ns)).unwrap_or_default();
    for entry in &inv.common_apps {
        let Some(def) = inv.app_def(entry.kind.value.as_str()) else { continue };
        for spec in def.applications.iter().filter(|a| a.project.as_deref() == Some(sp.name())) {
            let Some(ns) = spec.namespace.clone().or_else(|| entry.namespace()) else { continue };
            if !out.iter().any(|p| crate::permit::glob_match(p, &ns)) {
                out.push(ns);
            }
        }
    }
    out
}

/// Destinations (server, namespace) of a static project: each of its namespaces on the
/// in-cluster server, and a federation's namespaces (`federation-*`) also on every cluster a
/// federation deploys to or joins (its `cluster` and `remoteClusters`), so a federation on a
/// remote cluster is permitted where its apps run.
pub fn project_destinations(sp: StaticProject, argocd_ns: &str, inv: &Inventory) -> Vec<(String, String)> {
    let mut servers: Vec<String> = Vec::new();
    for f in &inv.federations {
        for c in std::iter::once(&f.cluster).chain(&f.remote_clusters) {
            if let Some(cluster) = inv.cluster(&c.value)
                && cluster.server.value != mip_core::IN_CLUSTER_SERVER
                && !servers.contains(&cluster.server.value)
            {
                servers.push(cluster.server.value.clone());
            }
        }
    }
    let mut out = Vec::new();
    for ns in project_namespaces(sp, argocd_ns, inv) {
        out.push((mip_core::IN_CLUSTER_SERVER.to_owned(), ns.clone()));
        if ns.starts_with("federation-") {
            out.extend(servers.iter().map(|s| (s.clone(), ns.clone())));
        }
    }
    out
}

/// Kinds the enabled apps of a project need beyond `base`, in inventory order: the common
/// apps of static project `sp`, or (with `None`) every federation app.
pub fn extra_kinds(
    inv: &Inventory,
    sp: Option<StaticProject>,
    namespaced: bool,
    base: &[(String, String)],
) -> Vec<(String, String)> {
    let mut defs: Vec<&AppDef> = Vec::new();
    match sp {
        Some(sp) => {
            for entry in &inv.common_apps {
                if let Some(def) = inv.app_def(entry.kind.value.as_str())
                    && def.applications.iter().any(|a| a.project.as_deref() == Some(sp.name()))
                {
                    defs.push(def);
                }
            }
        }
        None => {
            // Every federation's definition (an `override:` may add kinds): the chart is shared.
            for f in &inv.federations {
                defs.extend(f.apps.iter().filter_map(|a| federation_app_def(inv, a)));
            }
        }
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for def in defs {
        let kinds = if namespaced { &def.kinds.namespaced } else { &def.kinds.cluster };
        for k in kinds {
            if !base.contains(k) && !out.contains(k) {
                out.push(k.clone());
            }
        }
    }
    out
}

/// The repositories a project may source, least privilege: mip's own repositories where its
/// Applications read them, and the upstream repositories its apps source that the inventory
/// allows (`upstreamRepos`). `None` is a federation's project (and the static federations and
/// shared-apps projects, which hold the same apps): the federations' apps. A static project of
/// common apps: the apps whose Applications it holds (and, for the security project, the
/// network-policy Applications, which read the infra repository). An app sourcing a repository
/// the inventory does not allow is left to the permission check, which names it.
///
/// A project whose rules list `sourceRepos` (`projects:`, as `mip import` carries a tree's own
/// lists) gets exactly those, as written (a mirror is named as such); an app reading another
/// repository then fails the permission check, which names the project.
pub fn project_source_repos(inv: &Inventory, repos: &Repos, project: Option<StaticProject>) -> Vec<String> {
    let key = project.map_or(mip_inventory::projects::FEDERATION, StaticProject::name);
    if let Some(list) = inv.projects.get(key).and_then(|r| r.source_repos.as_ref()) {
        let mut out: Vec<String> = Vec::new();
        for u in list {
            if !out.contains(u) {
                out.push(u.clone());
            }
        }
        return out;
    }
    let mut used: Vec<String> = vec![repos.infra.clone()];
    let mut push = |u: &str| {
        if !used.iter().any(|x| x == u) {
            used.push(u.to_owned());
        }
    };
    let url = |s: &mip_inventory::apps::Source| match &s.repo {
        Repo::Infra => repos.infra.clone(),
        Repo::Deployments => repos.deploy.clone(),
        Repo::Url(u) => repos.upstream(u),
    };
    match project {
        None | Some(StaticProject::Federations | StaticProject::SharedApps) => {
            // The federation wrappers read the deployments repository.
            push(&repos.deploy);
            for f in &inv.federations {
                for app in &f.apps {
                    let Some(def) = federation_app_def(inv, app) else { continue };
                    for s in def.applications.iter().flat_map(|a| &a.sources) {
                        push(&url(s));
                    }
                }
            }
        }
        Some(sp) => {
            for entry in &inv.common_apps {
                let Some(def) = inv.app_def(entry.kind.value.as_str()) else { continue };
                for spec in def.applications.iter().filter(|a| a.project.as_deref() == Some(sp.name())) {
                    for s in &spec.sources {
                        push(&url(s));
                    }
                }
            }
        }
    }
    // `upstreamRepos` names upstream URLs; a mirrored one allows its mirror.
    let allowed = |u: &String| {
        *u == repos.infra
            || *u == repos.deploy
            || inv.upstream_repos.iter().any(|r| repos.upstream(&r.value) == *u)
    };
    used.retain(allowed);
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infra_names_match_the_reference_template() {
        assert_eq!(infra_app_name("deployments/local/federations/federation-A"), "deployments-local-a");
        assert_eq!(
            infra_app_name("deployments/hybrid/federations/federation-Z/mip-infrastructure"),
            "deployments-hybrid-z-mip-infrastructure"
        );
        assert_eq!(infra_app_name("common/datacatalog"), "common-datacatalog");
        assert_eq!(
            infra_app_name("deployments/local/federations/Lyon"),
            "deployments-local-federations-lyon"
        );
    }

    #[test]
    fn static_project_names_follow_the_project_prefix() {
        for p in StaticProject::ALL {
            assert!(p.name().starts_with("mip-argo-project-"), "{p:?}");
            assert_eq!(project_name(p.name().trim_start_matches("mip-argo-project-")), p.name());
        }
    }

    #[test]
    fn branch_prefix_is_sanitised_and_lowercase() {
        assert_eq!(branch_prefix("main"), "main-");
        assert_eq!(branch_prefix("feat/Argo_project.x"), "feat-argo-project-x-");
    }
}
