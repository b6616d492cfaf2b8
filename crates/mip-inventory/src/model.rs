//! The typed inventory, as decoded and validated.

pub use crate::located::{Located, SecretRef};
use mip_core::Location;
use std::fmt;

/// The `apiVersion` this version of mip reads.
pub const API_VERSION: &str = "mip.ebrains.eu/v1alpha1";
/// The `kind` of an inventory document.
pub const KIND: &str = "Inventory";
/// The cluster Argo CD runs in, always declared.
pub const IN_CLUSTER: &str = "in-cluster";

/// A whole, valid inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Path of the inventory file as given by the user.
    pub file: String,
    /// The Argo CD instance mip drives.
    pub argocd: ArgoCd,
    /// Default Git revision (branch, tag or commit) of every repository.
    pub revision: Located<String>,
    /// The two Git repositories of the platform.
    pub repositories: Repositories,
    /// Upstream chart repositories that the federation and common projects may source.
    pub upstream_repos: Vec<Located<String>>,
    /// Clusters, `in-cluster` first (implicit unless declared).
    pub clusters: Vec<Cluster>,
    /// Credentials shared by federations and common apps.
    pub credentials: Credentials,
    /// Cluster-wide applications.
    pub common_apps: Vec<CommonApp>,
    /// Federations, in inventory order.
    pub federations: Vec<Federation>,
    /// Manifests applied before the infrastructure (RBAC and the like).
    pub prerequisites: Vec<Prerequisite>,
    /// Where mip keeps its state (`state:`); `None` is the local store. Command-line flags
    /// override it.
    pub state: Option<StateSettings>,
    /// Deletions an unattended apply refuses unless `--allow-delete` names the object
    /// (`protect:`); `None` is the default (namespaces and Secrets), an empty list protects
    /// nothing.
    pub protect: Option<Vec<Protected>>,
    /// The effective app catalogue: the built-in definitions merged with `apps:`.
    pub catalogue: crate::apps::Catalogue,
    /// The effective rules of mip's projects: the built-in ones merged with `projects:`.
    pub projects: crate::projects::Projects,
    /// The GitOps tree mip renders (`tree:`): where it is, and the paths that stay the
    /// operator's.
    pub tree: TreeSettings,
    /// Upstream sources mapped to local mirrors (`mirrors:`), for sites without internet.
    pub mirrors: Vec<Mirror>,
}

/// One entry of `mirrors:`: where an upstream Git or Helm repository is served locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The upstream URL as app definitions and `upstreamRepos` name it.
    pub upstream: Located<String>,
    /// The URL Argo CD reads instead.
    pub mirror: Located<String>,
}

/// A repository URL without the differences Argo CD ignores when it compares them (a
/// trailing `/` or `.git`, the case of the host).
pub fn normalize_repo_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    trimmed.to_ascii_lowercase()
}

impl Inventory {
    /// The URL Argo CD reads for `url`: its mirror, or itself.
    pub fn mirrored<'a>(&'a self, url: &'a str) -> &'a str {
        let key = normalize_repo_url(url);
        self.mirrors
            .iter()
            .find(|m| normalize_repo_url(&m.upstream.value) == key)
            .map_or(url, |m| m.mirror.value.as_str())
    }
}

/// The `tree:` section: the rendered GitOps tree and the files mip leaves to the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSettings {
    /// The tree's directory, relative to the inventory's (`None`: the inventory's own
    /// directory). `mip plan --base` reads the tree's files here at both revisions.
    pub path: Option<Located<String>>,
    /// Paths (relative to the tree) that mip never writes, changes or removes: the
    /// operator's files where mip would otherwise render one (`mip import` keeps every file
    /// whose content mip's render would change). An entry ending in `/` keeps a directory.
    pub keep: Vec<Located<String>>,
}

impl TreeSettings {
    /// Whether `path` (relative to the tree, `/`-separated) is kept.
    pub fn keeps(&self, path: &str) -> bool {
        self.keep.iter().any(|k| match k.value.strip_suffix('/') {
            Some(dir) => path.starts_with(&k.value) || path == dir,
            None => path == k.value,
        })
    }
}

/// One entry of `protect:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protected {
    /// Every object of a kind, e.g. `Namespace`.
    Kind(Located<String>),
    /// One object, by address, e.g. `v1/Secret/federation-a/mip-secret`.
    Address(Located<mip_core::ObjectRef>),
}

/// The `state:` section: where mip's state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    /// The backend.
    pub backend: StateBackend,
    /// For the cluster backend: the namespace of the state Secrets and the Lease.
    pub namespace: Option<Located<String>>,
    /// For the cluster backend: the name of the state (index Secret, chunk and Lease prefix).
    pub name: Option<Located<String>>,
}

/// Where the state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBackend {
    /// The sled store on this machine (`--state-dir`).
    Local,
    /// Secrets and a Lease in the target cluster, shared by a team and its CronJobs.
    Cluster,
}

/// The Argo CD instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoCd {
    /// Namespace Argo CD runs in and holds its Applications, projects and credentials.
    pub namespace: Located<String>,
    /// What mip does with the `default` AppProject.
    pub default_project: DefaultProjectPolicy,
    /// Safety guard: the API server URL mip must be talking to.
    pub api_server: Option<Located<String>>,
    /// Safety guard: the kubeconfig context mip must use.
    pub context: Option<Located<String>>,
}

/// Treatment of the `default` AppProject (it cannot be deleted: argocd-server recreates it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultProjectPolicy {
    /// Apply a spec that permits nothing (deny by blacklist); loosening it is drift.
    LockDown,
    /// Leave it alone.
    Unmanaged,
}

/// The infra and deployments repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repositories {
    /// Holds `base/`, `projects/` and `common/` (public, HTTPS in the reference setup).
    pub infra: Repository,
    /// Holds `deployments/` (private, SSH in the reference setup).
    pub deployments: Repository,
}

/// One Git repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// `infra` or `deployments`.
    pub role: &'static str,
    /// Clone URL.
    pub url: Located<String>,
    /// Revision override; the inventory's `revision` when absent.
    pub revision: Option<Located<String>>,
    /// SSH private key, for `git@` / `ssh://` URLs.
    pub ssh_private_key: Option<SecretRef>,
    /// HTTPS user name.
    pub username: Option<SecretRef>,
    /// HTTPS password or token.
    pub password: Option<SecretRef>,
}

impl Repository {
    /// Whether Argo CD needs a credential Secret for this repository.
    pub fn has_credentials(&self) -> bool {
        self.ssh_private_key.is_some() || self.password.is_some()
    }
}

/// A cluster Argo CD deploys to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Inventory name (DNS-1123 label).
    pub name: Located<String>,
    /// API server URL as Argo CD addresses it.
    pub server: Located<String>,
    /// Kubeconfig context mip uses to reach it.
    pub context: Option<Located<String>>,
    /// How Argo CD authenticates to it (remote clusters).
    pub credentials: ClusterCredentials,
    /// PEM file of the cluster's CA certificate (relative to the inventory), for a token or a
    /// client certificate given by the user (a registered cluster's CA comes with its token).
    pub ca_file: Option<Located<String>>,
    /// Whether the entry was added implicitly (`in-cluster` not written by the user).
    pub implicit: bool,
}

impl Cluster {
    /// Whether mip registers the cluster (writes Argo CD's ServiceAccount, role and token
    /// there, as `argocd cluster add` does).
    pub fn registration(&self) -> Option<&Registration> {
        match &self.credentials {
            ClusterCredentials::Register(r) => Some(r),
            _ => None,
        }
    }
}

/// How Argo CD authenticates to a remote cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(clippy::large_enum_variant, reason = "one per cluster of the inventory, never moved in bulk")]
pub enum ClusterCredentials {
    /// None given (a validation error for any cluster but `in-cluster`).
    None,
    /// A bearer token from a source (a cluster mip cannot write to).
    BearerToken(SecretRef),
    /// A client certificate and key (PEM) from sources.
    ClientCertificate {
        /// The certificate.
        certificate: SecretRef,
        /// Its private key.
        key: SecretRef,
    },
    /// mip registers the cluster through its kubeconfig context (the default with a
    /// `context` and no other credentials).
    Register(Registration),
}

/// How mip registers a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Bind Argo CD's ServiceAccount cluster-wide (`clusterAdmin: true`) instead of only in the
    /// namespaces mip creates there (least privilege, the default).
    pub cluster_admin: bool,
    /// Where the registration was asked for (the `register` key, else the `context` key).
    pub at: Location,
}

/// Keycloak client credentials (`keycloak-credentials`, `datacatalog-secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeycloakCredentials {
    /// Client id.
    pub client_id: SecretRef,
    /// Client secret.
    pub client_secret: SecretRef,
    /// Where the block was written.
    pub at: Location,
}

/// Shared credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The EBRAINS Keycloak tenant client, used by every federation unless overridden.
    pub keycloak: Option<KeycloakCredentials>,
}

/// The name of a common app: a built-in one (the associated constants) or one the inventory
/// defines under `apps:` (see [`crate::apps`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommonAppKind(pub std::borrow::Cow<'static, str>);

#[allow(non_upper_case_globals)]
impl CommonAppKind {
    /// The data catalogue (`mip-common-datacatalog`).
    pub const Datacatalog: CommonAppKind = CommonAppKind(std::borrow::Cow::Borrowed("datacatalog"));
    /// The public ingress controller (`ingress-nginx`).
    pub const NginxIngress: CommonAppKind = CommonAppKind(std::borrow::Cow::Borrowed("nginx-ingress"));
    /// Network policies for federations and common namespaces.
    pub const Security: CommonAppKind = CommonAppKind(std::borrow::Cow::Borrowed("security"));
    /// Submariner broker and operator for hybrid federations.
    pub const Submariner: CommonAppKind = CommonAppKind(std::borrow::Cow::Borrowed("submariner"));

    /// An app by name.
    pub fn new(name: &str) -> Self {
        CommonAppKind(std::borrow::Cow::Owned(name.to_owned()))
    }

    /// Name as written in the inventory and as the `common/<name>` directory.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommonAppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A common application enabled in the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonApp {
    /// Which app.
    pub kind: Located<CommonAppKind>,
    /// Namespace override (single-namespace apps only).
    pub namespace: Option<Located<String>>,
    /// Keycloak override (apps whose Secrets take Keycloak credentials).
    pub keycloak: Option<KeycloakCredentials>,
    /// `targetRevision`: pins the app's upstream sources here.
    pub target_revision: Option<Located<String>>,
    /// The namespace of its definition (`None`: it deploys to several).
    pub default_namespace: Option<String>,
}

impl CommonApp {
    /// The namespace the app deploys to, if it has exactly one.
    pub fn namespace(&self) -> Option<String> {
        self.namespace.as_ref().map(|n| n.value.clone()).or_else(|| self.default_namespace.clone())
    }
}

/// `local` (all on one cluster) or `hybrid` (remote worker nodes joined with Submariner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FederationKind {
    /// Every node in the federation's cluster.
    Local,
    /// Workers on remote clusters.
    Hybrid,
}

impl FederationKind {
    /// Name as written in the inventory and in Git paths.
    pub fn as_str(self) -> &'static str {
        match self {
            FederationKind::Local => "local",
            FederationKind::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for FederationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a federation app: a built-in one (the associated constants) or one the
/// inventory defines under `apps:` (see [`crate::apps`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FederationAppKind(pub std::borrow::Cow<'static, str>);

#[allow(non_upper_case_globals)]
impl FederationAppKind {
    /// The Exareme2 analytics engine (Helm chart from madgik/exareme2).
    pub const Exareme2: FederationAppKind = FederationAppKind(std::borrow::Cow::Borrowed("exareme2"));
    /// The MIP stack: portal, gateway, databases (HBPMedical/mip-deployment).
    pub const MipStack: FederationAppKind = FederationAppKind(std::borrow::Cow::Borrowed("mip-stack"));
    /// Local kustomize overlay for Exareme2 (from the deployments repo).
    pub const Exareme2Overlay: FederationAppKind =
        FederationAppKind(std::borrow::Cow::Borrowed("exareme2-overlay"));

    /// An app by name.
    pub fn new(name: &str) -> Self {
        FederationAppKind(std::borrow::Cow::Owned(name.to_owned()))
    }

    /// Name as written in the inventory.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FederationAppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One application of a federation and its customizations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationApp {
    /// Which app.
    pub kind: Located<FederationAppKind>,
    /// Helm values files, relative to the federation directory.
    pub values: Vec<Located<String>>,
    /// Kustomize JSON patches, relative to the federation directory (for an overlay app:
    /// the overlay's resources).
    pub patches: Vec<Located<String>>,
    /// `targetRevision`: pins the app's upstream sources in this federation (a canary).
    pub target_revision: Option<Located<String>>,
    /// `override:`: this federation's own definition of the app (any field of the schema
    /// merged onto the effective one, scope and layout excepted); `None` uses the catalogue's.
    pub definition: Option<crate::apps::AppDef>,
}

/// A federation: a data-sharing network of hospitals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    /// Name as written (the Git directory name, e.g. `federation-A`).
    pub name: Located<String>,
    /// Local or hybrid.
    pub kind: Located<FederationKind>,
    /// Cluster its applications deploy to.
    pub cluster: Located<String>,
    /// Remote clusters whose nodes join it (hybrid only).
    pub remote_clusters: Vec<Located<String>>,
    /// Its applications.
    pub apps: Vec<FederationApp>,
    /// Keycloak override.
    pub keycloak: Option<KeycloakCredentials>,
}

impl Federation {
    /// The Kubernetes name: the directory name lowered (`federation-A` → `federation-a`),
    /// as the reference ApplicationSets compute it with `| lower`.
    pub fn k8s_name(&self) -> String {
        self.name.value.to_lowercase()
    }

    /// Whether the federation runs the given app.
    pub fn has_app(&self, kind: FederationAppKind) -> bool {
        self.apps.iter().any(|a| a.kind.value == kind)
    }

    /// Whether the federation runs the app of this name.
    pub fn runs(&self, app: &str) -> bool {
        self.apps.iter().any(|a| a.kind.value.as_str() == app)
    }

    /// The federation's directory in the deployments repository.
    pub fn git_path(&self) -> String {
        match self.kind.value {
            FederationKind::Local => format!("deployments/local/federations/{}", self.name.value),
            FederationKind::Hybrid => {
                format!("deployments/hybrid/federations/{}/mip-infrastructure", self.name.value)
            }
        }
    }
}

/// A manifest file applied before the infrastructure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    /// Path, relative to the inventory file.
    pub file: Located<String>,
}

impl Inventory {
    /// The revision of a repository (its own, else the inventory's).
    pub fn revision_of(&self, repo: &Repository) -> String {
        repo.revision.as_ref().map_or_else(|| self.revision.value.clone(), |r| r.value.clone())
    }

    /// Looks a cluster up by name.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name.value == name)
    }

    /// The API server URL of a cluster as Argo CD addresses it (the in-cluster server for a
    /// name the inventory does not declare, which validation refuses).
    pub fn server_of(&self, name: &str) -> String {
        self.cluster(name).map_or_else(|| mip_core::IN_CLUSTER_SERVER.to_owned(), |c| c.server.value.clone())
    }

    /// Whether a common app is enabled.
    pub fn common_app(&self, kind: CommonAppKind) -> Option<&CommonApp> {
        self.common_apps.iter().find(|a| a.kind.value == kind)
    }

    /// The definition of an app the inventory lists (always present in a valid inventory).
    pub fn app_def(&self, name: &str) -> Option<&crate::apps::AppDef> {
        self.catalogue.get(name)
    }
}

#[cfg(test)]
mod tree_tests {
    use super::*;

    fn at() -> mip_core::Location {
        mip_core::Location { file: "mip.yaml".into(), line: 1, column: 1 }
    }

    #[test]
    fn keep_entries_name_a_file_or_a_whole_directory() {
        let tree = TreeSettings {
            path: None,
            keep: ["base/argo-projects.yaml", "common/submariner/"]
                .iter()
                .map(|k| Located { value: (*k).to_owned(), at: at() })
                .collect(),
        };
        assert!(tree.keeps("base/argo-projects.yaml"));
        assert!(!tree.keeps("base/argo-projects.yaml.bak") && !tree.keeps("base"));
        assert!(tree.keeps("common/submariner/operator/values.yaml") && tree.keeps("common/submariner"));
        assert!(!tree.keeps("common/submariner-extra/x.yaml"), "a directory entry is not a name prefix");
    }
}
