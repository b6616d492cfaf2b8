//! What the MIP GitOps tree contains: names, projects, paths and upstream repositories of
//! the objects Argo CD generates. Every name here matches what the reference ApplicationSets
//! compute (their go templates are quoted next to the function that mirrors them).

use mip_inventory::{CommonAppKind, Federation, FederationAppKind, FederationKind};

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

    /// Its destination namespaces (globs) on the in-cluster server; `argocd_ns` is the Argo
    /// CD namespace, where the projects that create Applications must also deploy.
    pub fn namespaces(self, argocd_ns: &str) -> Vec<String> {
        let v: &[&str] = match self {
            StaticProject::Federations => &["federation-*", argocd_ns],
            StaticProject::SharedApps => &["federation-*", "test-*"],
            StaticProject::Common => {
                &["monitoring", "security", "mip-common-*", "kube-system", "ingress-nginx", argocd_ns]
            }
            StaticProject::Security => &["federation-*", "mip-common-*"],
            StaticProject::Submariner => &["submariner-k8s-broker", "submariner-operator"],
        };
        v.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// Common namespaces that get network policies from `common-network-policies`.
pub const COMMON_NETPOL_NAMESPACES: [&str; 2] = ["mip-common-datacatalog", "mip-common-security"];

/// Upstream chart repository of the Exareme2 app.
pub const EXAREME2_REPO: &str = "https://github.com/madgik/exareme2";
/// Upstream chart repository of the MIP stack.
pub const MIP_STACK_REPO: &str = "https://github.com/HBPMedical/mip-deployment";
/// Upstream chart repository of the data catalogue.
pub const DATACATALOG_REPO: &str = "https://github.com/madgik/datacatalog";

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
pub fn federation_child_app(f: &Federation, app: FederationAppKind) -> String {
    format!("{}-{}", f.k8s_name(), app.as_str())
}

/// `netpol-<federation>-<kind>` (AppSet `federation-network-policies`).
pub fn federation_netpol_app(f: &Federation) -> String {
    format!("netpol-{}-{}", federation_segment(f), f.kind.value.as_str())
}

/// Upstream repositories an app sources besides mip's own repositories.
pub fn federation_app_upstream(app: FederationAppKind) -> Option<&'static str> {
    match app {
        FederationAppKind::Exareme2 => Some(EXAREME2_REPO),
        FederationAppKind::MipStack => Some(MIP_STACK_REPO),
        FederationAppKind::Exareme2Overlay => None,
    }
}

/// Sync waves of the federation children (ordering of apply only; Argo CD does not wait on
/// child Application health without a Lua health check).
pub fn federation_app_wave(app: FederationAppKind) -> i32 {
    match app {
        FederationAppKind::Exareme2 => 1,
        FederationAppKind::MipStack | FederationAppKind::Exareme2Overlay => 2,
    }
}

/// A child Application generated for a common app.
pub struct CommonChild {
    /// Application name.
    pub name: &'static str,
    /// Its static project.
    pub project: StaticProject,
    /// Destination namespace (`None` = the app's configured namespace).
    pub namespace: Option<&'static str>,
    /// Upstream repository, if any.
    pub upstream: Option<&'static str>,
}

/// The Applications that a common app's wrapper (`common-<name>`) generates.
pub fn common_children(kind: CommonAppKind) -> Vec<CommonChild> {
    match kind {
        CommonAppKind::Datacatalog => {
            vec![CommonChild {
                name: "datacatalog",
                project: StaticProject::Common,
                namespace: None,
                upstream: Some(DATACATALOG_REPO),
            }]
        }
        CommonAppKind::NginxIngress => {
            vec![CommonChild {
                name: "nginx-public-ingress",
                project: StaticProject::Common,
                namespace: None,
                upstream: None,
            }]
        }
        CommonAppKind::Submariner => vec![
            CommonChild {
                name: "submariner-broker",
                project: StaticProject::Submariner,
                namespace: Some("submariner-k8s-broker"),
                upstream: None,
            },
            CommonChild {
                name: "submariner-operator",
                project: StaticProject::Submariner,
                namespace: Some("submariner-operator"),
                upstream: None,
            },
        ],
        CommonAppKind::Security => Vec::new(),
    }
}

/// Whether a federation is local.
pub fn is_local(f: &Federation) -> bool {
    f.kind.value == FederationKind::Local
}

/// The keys of the per-federation `mip-secret` (deprecated keys kept because the reference
/// tree's `gen_secrets.sh` still sets them).
pub const MIP_SECRET_KEYS: [&str; 10] = [
    "gateway-db.DB_ADMIN_USER",
    "gateway-db.DB_ADMIN_PASSWORD",
    "portalbackend-db.DB_ADMIN_USER",
    "portalbackend-db.DB_ADMIN_PASSWORD",
    "portalbackend-db.PORTAL_DB_USER",
    "portalbackend-db.PORTAL_DB_PASSWORD",
    "keycloak-db.POSTGRES_USER",
    "keycloak-db.POSTGRES_PASSWORD",
    "keycloak.KEYCLOAK_USER",
    "keycloak.KEYCLOAK_PASSWORD",
];

/// Keys of `mip-secret` with the fixed database user names the reference tree's
/// `gen_secrets.sh` sets (the charts create these roles); every other key is generated.
pub const MIP_SECRET_FIXED_USERS: [(&str, &str); 3] = [
    ("gateway-db.DB_ADMIN_USER", "postgres"),
    ("portalbackend-db.DB_ADMIN_USER", "postgres"),
    ("portalbackend-db.PORTAL_DB_USER", "portal"),
];

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
