//! Walks the located YAML tree into a typed [`Inventory`], collecting every problem.
//!
//! Each function reads one level, reports what is wrong at the exact node, and goes on with
//! whatever it could read, so one run lists all problems. Cross-references (duplicates,
//! dangling cluster names) are checked afterwards in [`crate::check`].
//!
//! One file on purpose (about 900 lines): one decoder method per inventory section, in the
//! order of the format's reference, so each key's rules (types, names, hints) sit in one place.

use crate::apps::{AppDef, Catalogue, KeySource, Scope};
use crate::decoder::{Decoder, Fields, describe};
use crate::model::*;
use crate::names;
use crate::yaml::{Node, Value};

/// The top-level keys of an inventory.
const INVENTORY_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "argocd",
    "revision",
    "repositories",
    "upstreamRepos",
    "clusters",
    "credentials",
    "commonApps",
    "federations",
    "prerequisites",
    "state",
    "protect",
    "apps",
    "projects",
    "tree",
    "mirrors",
];

impl Decoder<'_> {
    fn keycloak(&mut self, node: &Node, path: &str) -> Option<KeycloakCredentials> {
        let at = self.loc(node);
        let mut f = self.fields(node, path)?;
        let id = match f.get("clientId") {
            Some(n) => self.secret_ref(n, &format!("{path}.clientId"), false),
            None => {
                self.missing(&f, "clientId", None);
                None
            }
        };
        let secret = match f.get("clientSecret") {
            Some(n) => self.secret_ref(n, &format!("{path}.clientSecret"), false),
            None => {
                self.missing(&f, "clientSecret", None);
                None
            }
        };
        self.finish(f, &["clientId", "clientSecret"]);
        Some(KeycloakCredentials { client_id: id?, client_secret: secret?, at })
    }

    fn opt_keycloak(&mut self, f: &mut Fields<'_>, key: &str) -> Option<KeycloakCredentials> {
        let path = f.child(key);
        f.get(key).and_then(|n| self.keycloak(n, &path))
    }

    fn argocd(&mut self, node: &Node) -> Option<ArgoCd> {
        let mut f = self.fields(node, "argocd")?;
        let namespace =
            self.req_string(&mut f, "namespace", Some("the namespace Argo CD runs in, e.g. `argocd`"));
        let default_project = match f.get("defaultProject") {
            None => Some(DefaultProjectPolicy::LockDown),
            Some(n) => match &n.value {
                Value::Str(s) if s == "lock-down" => Some(DefaultProjectPolicy::LockDown),
                Value::Str(s) if s == "unmanaged" => Some(DefaultProjectPolicy::Unmanaged),
                other => {
                    let at = self.loc(n);
                    self.error(
                        at,
                        "invalid-value",
                        format!(
                            "`argocd.defaultProject` must be `lock-down` or `unmanaged`, found {}",
                            describe(other)
                        ),
                        Some(
                            "`default` cannot be deleted (argocd-server recreates it); lock it down"
                                .to_owned(),
                        ),
                    );
                    None
                }
            },
        };
        let api_server = self.opt_string(&mut f, "apiServer");
        let context = self.opt_string(&mut f, "context");
        self.finish(f, &["namespace", "defaultProject", "apiServer", "context"]);
        if let Some(ns) = &namespace {
            names::check_label(self, ns, "argocd.namespace");
        }
        if let Some(url) = &api_server {
            names::check_https_url(self, url, "argocd.apiServer");
        }
        Some(ArgoCd { namespace: namespace?, default_project: default_project?, api_server, context })
    }

    fn repository(&mut self, node: &Node, role: &'static str) -> Option<Repository> {
        let path = format!("repositories.{role}");
        let mut f = self.fields(node, &path)?;
        let url = self.req_string(&mut f, "url", None);
        let revision = self.opt_string(&mut f, "revision");
        let ssh_private_key =
            f.get("sshPrivateKey").and_then(|n| self.secret_ref(n, &format!("{path}.sshPrivateKey"), false));
        let user_node = f.get("username");
        let pass_node = f.get("password");
        let username = user_node.and_then(|n| self.secret_ref(n, &format!("{path}.username"), false));
        let password = pass_node.and_then(|n| self.secret_ref(n, &format!("{path}.password"), false));
        self.finish(f, &["url", "revision", "sshPrivateKey", "username", "password"]);
        let url = url?;
        names::check_repo_url(self, &url, &format!("{path}.url"));
        if let Some(r) = &revision {
            names::check_revision(self, r, &format!("{path}.revision"));
        }
        let ssh = url.value.starts_with("git@") || url.value.starts_with("ssh://");
        if ssh && ssh_private_key.is_none() {
            self.error(
                url.at.clone(),
                "missing-credential",
                format!("`{path}.url` is an SSH URL but `{path}.sshPrivateKey` is missing"),
                Some("add `sshPrivateKey: {file: path/to/key}`".to_owned()),
            );
        }
        if !ssh && ssh_private_key.is_some() {
            self.error(
                url.at.clone(),
                "invalid-value",
                format!("`{path}.sshPrivateKey` is set but `{}` is not an SSH URL", url.value),
                Some("use a `git@host:org/repo.git` URL or HTTPS credentials".to_owned()),
            );
        }
        if let (Some(n), None) | (None, Some(n)) = (user_node, pass_node) {
            self.error(
                self.loc(n),
                "missing-credential",
                format!("`{path}` needs both `username` and `password`, or neither"),
                Some("HTTPS credentials are a pair".to_owned()),
            );
        }
        if let Some(rest) = url.value.strip_prefix("https://")
            && rest.split('/').next().is_some_and(|host| host.contains('@'))
        {
            self.error(
                url.at.clone(),
                "literal-secret",
                format!("`{path}.url` contains credentials (`user@` or `user:token@`)"),
                Some("remove them from the URL and use `username` and `password` sources".to_owned()),
            );
        }
        Some(Repository { role, url, revision, ssh_private_key, username, password })
    }

    fn repositories(&mut self, node: &Node) -> Option<Repositories> {
        let mut f = self.fields(node, "repositories")?;
        let infra = match f.get("infra") {
            Some(n) => self.repository(n, "infra"),
            None => {
                self.missing(
                    &f,
                    "infra",
                    Some("the repository holding `base/`, `projects/` and `common/`".to_owned()),
                );
                None
            }
        };
        let deployments = match f.get("deployments") {
            Some(n) => self.repository(n, "deployments"),
            None => {
                self.missing(&f, "deployments", Some("the repository holding `deployments/`".to_owned()));
                None
            }
        };
        self.finish(f, &["infra", "deployments"]);
        Some(Repositories { infra: infra?, deployments: deployments? })
    }

    fn cluster(&mut self, node: &Node, path: &str) -> Option<Cluster> {
        let mut f = self.fields(node, path)?;
        let name = self.req_string(&mut f, "name", None);
        let server =
            self.req_string(&mut f, "server", Some("the API server URL Argo CD uses for this cluster"));
        let context = self.opt_string(&mut f, "context");
        let secret = |d: &mut Self, f: &mut Fields<'_>, key: &str| {
            f.get(key).and_then(|n| d.secret_ref(n, &format!("{path}.{key}"), false))
        };
        let bearer_token = secret(self, &mut f, "bearerToken");
        let certificate = secret(self, &mut f, "clientCertificate");
        let key = secret(self, &mut f, "clientKey");
        let register = f.get("register").and_then(|n| self.registration(n, &format!("{path}.register")));
        let ca_file = self.opt_string(&mut f, "caFile");
        self.finish(
            f,
            &[
                "name",
                "server",
                "context",
                "bearerToken",
                "clientCertificate",
                "clientKey",
                "register",
                "caFile",
            ],
        );
        if let Some(n) = &name {
            names::check_label(self, n, &format!("{path}.name"));
        }
        if let Some(s) = &server {
            names::check_https_url(self, s, &format!("{path}.server"));
        }
        let credentials =
            self.cluster_credentials(path, node, &context, bearer_token, certificate, key, register)?;
        Some(Cluster { name: name?, server: server?, context, credentials, ca_file, implicit: false })
    }

    /// `register: true | false | {clusterAdmin: BOOL}`; `Some(None)` is `register: false`.
    fn registration(&mut self, node: &Node, path: &str) -> Option<Option<Registration>> {
        let at = self.loc(node);
        match &node.value {
            Value::Bool(true) => Some(Some(Registration { cluster_admin: false, at })),
            Value::Bool(false) => Some(None),
            Value::Map(_) => {
                let mut f = self.fields(node, path)?;
                let admin = match f.get("clusterAdmin").map(|n| &n.value) {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        let n = f.get("clusterAdmin")?;
                        self.type_error(n, &format!("{path}.clusterAdmin"), "`true` or `false`");
                        false
                    }
                };
                self.finish(f, &["clusterAdmin"]);
                Some(Some(Registration { cluster_admin: admin, at }))
            }
            _ => {
                self.type_error(node, path, "`true`, `false` or a mapping");
                None
            }
        }
    }

    /// Which credentials Argo CD gets for a cluster: exactly one way, or registration by
    /// default when mip can reach the cluster through a context.
    #[allow(clippy::too_many_arguments)]
    fn cluster_credentials(
        &mut self,
        path: &str,
        node: &Node,
        context: &Option<Located<String>>,
        bearer_token: Option<SecretRef>,
        certificate: Option<SecretRef>,
        key: Option<SecretRef>,
        register: Option<Option<Registration>>,
    ) -> Option<ClusterCredentials> {
        let given = [
            bearer_token.is_some(),
            certificate.is_some() || key.is_some(),
            matches!(register, Some(Some(_))),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            self.error(
                self.loc(node),
                "conflicting-credentials",
                format!("`{path}` gives Argo CD more than one way to authenticate"),
                Some(
                    "keep one of `register`, `bearerToken`, or `clientCertificate` with `clientKey`"
                        .to_owned(),
                ),
            );
            return None;
        }
        if let Some(Some(r)) = &register
            && context.is_none()
        {
            self.error(
                r.at.clone(),
                "missing-context",
                format!("`{path}.register` needs the kubeconfig context mip reaches the cluster through"),
                Some("add `context: <kubeconfig context>` to the cluster".to_owned()),
            );
            return None;
        }
        Some(match (bearer_token, certificate, key, register) {
            (Some(t), ..) => ClusterCredentials::BearerToken(t),
            (None, Some(certificate), Some(key), _) => {
                ClusterCredentials::ClientCertificate { certificate, key }
            }
            (None, Some(r), None, _) | (None, None, Some(r), _) => {
                self.error(
                    r.at.clone(),
                    "missing-credential",
                    format!("`{path}` needs both `clientCertificate` and `clientKey`"),
                    Some("give the certificate and its private key, each from a source".to_owned()),
                );
                return None;
            }
            (None, None, None, Some(Some(r))) => ClusterCredentials::Register(r),
            (None, None, None, None) => match context {
                Some(c) => {
                    ClusterCredentials::Register(Registration { cluster_admin: false, at: c.at.clone() })
                }
                None => ClusterCredentials::None,
            },
            (None, None, None, Some(None)) => ClusterCredentials::None,
        })
    }

    /// The definition an entry names, or an `unknown-app` error with the known names.
    fn lookup<'c>(
        &mut self,
        cat: &'c Catalogue,
        name: &Located<String>,
        scope: Scope,
        path: &str,
    ) -> Option<&'c AppDef> {
        match cat.get(&name.value) {
            Some(def) if def.scope == scope => Some(def),
            Some(def) => {
                self.error(
                    name.at.clone(),
                    "wrong-scope",
                    format!("`{path}.name`: `{}` is a {} app", name.value, def.scope),
                    Some(match def.scope {
                        Scope::Common => "list it under `commonApps`".to_owned(),
                        Scope::Federation => "list it under a federation's `apps`".to_owned(),
                    }),
                );
                None
            }
            None => {
                let known = cat.names(scope);
                let what = if scope == Scope::Common { "common" } else { "federation" };
                let hint = names::closest(&name.value, &known).map_or_else(
                    || format!("known {what} apps: {} (define new ones under `apps:`)", known.join(", ")),
                    |b| format!("did you mean `{b}`?"),
                );
                self.error(
                    name.at.clone(),
                    "unknown-app",
                    format!("`{path}.name`: unknown {what} app `{}`", name.value),
                    Some(hint),
                );
                None
            }
        }
    }

    /// `targetRevision` of an app entry: pins the app's upstream sources there.
    fn pin(&mut self, f: &mut Fields<'_>, def: Option<&AppDef>, path: &str) -> Option<Located<String>> {
        let pin = self.opt_string(f, "targetRevision")?;
        names::check_revision(self, &pin, &format!("{path}.targetRevision"));
        if let Some(def) = def
            && def.upstream_urls().is_empty()
        {
            self.error(
                pin.at.clone(),
                "invalid-value",
                format!("`{path}.targetRevision`: `{}` has no upstream source or chart to pin", def.name),
                Some(
                    "its sources are mip's own repositories, which follow the inventory's `revision`"
                        .to_owned(),
                ),
            );
        }
        Some(pin)
    }

    fn common_app(&mut self, node: &Node, path: &str, cat: &Catalogue) -> Option<CommonApp> {
        let mut f = self.fields(node, path)?;
        let name = self.req_string(&mut f, "name", None);
        let namespace = self.opt_string(&mut f, "namespace");
        let keycloak = self.opt_keycloak(&mut f, "keycloak");
        let def = match &name {
            Some(n) => self.lookup(cat, n, Scope::Common, path),
            None => None,
        };
        let target_revision = self.pin(&mut f, def, path);
        self.finish(f, &["name", "namespace", "keycloak", "targetRevision"]);
        let name = name?;
        let def = def?;
        if let Some(ns) = &namespace {
            if def.namespace.is_none() {
                self.error(
                    ns.at.clone(),
                    "invalid-value",
                    format!(
                        "`{path}.namespace`: `{}` deploys to several namespaces and takes no override",
                        def.name
                    ),
                    Some("remove `namespace`".to_owned()),
                );
            } else {
                names::check_label(self, ns, &format!("{path}.namespace"));
            }
        }
        let uses_keycloak = def.secrets.values().flat_map(|k| k.values()).any(KeySource::is_keycloak);
        if let (Some(k), false) = (&keycloak, uses_keycloak) {
            self.error(
                k.at.clone(),
                "invalid-value",
                format!("`{path}.keycloak`: `{}` uses no Keycloak credentials", def.name),
                Some("remove it, or set `credentials.keycloak` for every app".to_owned()),
            );
        }
        Some(CommonApp {
            kind: Located { value: CommonAppKind::new(&name.value), at: name.at },
            namespace,
            keycloak,
            target_revision,
            default_namespace: def.namespace.clone(),
        })
    }

    fn federation_app(&mut self, node: &Node, path: &str, cat: &Catalogue) -> Option<FederationApp> {
        let mut f = self.fields(node, path)?;
        let name = self.req_string(&mut f, "name", None);
        let values = self.string_list(&mut f, "values");
        let patches = self.string_list(&mut f, "patches");
        let def = match &name {
            Some(n) => self.lookup(cat, n, Scope::Federation, path),
            None => None,
        };
        let target_revision = self.pin(&mut f, def, path);
        let definition = match (f.get("override"), &name, def) {
            (Some(over), Some(n), Some(_)) => {
                crate::apps::federation_override(self, cat, &n.value, over, &format!("{path}.override"))
            }
            _ => None,
        };
        self.finish(f, &["name", "values", "patches", "targetRevision", "override"]);
        for (i, p) in values.iter().enumerate() {
            names::check_relative_path(self, p, &format!("{path}.values[{i}]"));
        }
        for (i, p) in patches.iter().enumerate() {
            names::check_relative_path(self, p, &format!("{path}.patches[{i}]"));
        }
        let name = name?;
        def?;
        Some(FederationApp {
            kind: Located { value: FederationAppKind::new(&name.value), at: name.at },
            values,
            patches,
            target_revision,
            definition,
        })
    }

    fn federation(&mut self, node: &Node, path: &str, cat: &Catalogue) -> Option<Federation> {
        let mut f = self.fields(node, path)?;
        let name =
            self.req_string(&mut f, "name", Some("the federation's directory name, e.g. `federation-A`"));
        let kind = match f.get("kind") {
            None => {
                self.missing(&f, "kind", Some("`local` or `hybrid`".to_owned()));
                None
            }
            Some(n) => match &n.value {
                Value::Str(s) if s == "local" => Some(FederationKind::Local),
                Value::Str(s) if s == "hybrid" => Some(FederationKind::Hybrid),
                other => {
                    let at = self.loc(n);
                    self.error(
                        at,
                        "invalid-value",
                        format!("`{path}.kind` must be `local` or `hybrid`, found {}", describe(other)),
                        Some("`local`: all nodes in one cluster; `hybrid`: remote workers joined with Submariner (lowercase)".to_owned()),
                    );
                    None
                }
            }
            .map(|k| Located { value: k, at: self.loc(n) }),
        };
        let cluster = match f.get("cluster") {
            Some(n) => self.string(n, &format!("{path}.cluster")),
            None => Some(Located { value: IN_CLUSTER.to_owned(), at: self.loc(node) }),
        };
        let remote_clusters = self.string_list(&mut f, "remoteClusters");
        let apps = match f.get("apps") {
            None => Vec::new(),
            Some(n) => self.seq(n, &format!("{path}.apps")).map_or_else(Vec::new, |items| {
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| self.federation_app(a, &format!("{path}.apps[{i}]"), cat))
                    .collect()
            }),
        };
        let keycloak = self.opt_keycloak(&mut f, "keycloak");
        self.finish(f, &["name", "kind", "cluster", "remoteClusters", "apps", "keycloak"]);
        let name = name?;
        names::check_federation_name(self, &name, &format!("{path}.name"));
        // An invalid `kind` was reported above; a placeholder keeps the federation in the
        // cross-reference checks (duplicates, clusters) so every problem shows in one run.
        let guess = if remote_clusters.is_empty() { FederationKind::Local } else { FederationKind::Hybrid };
        let kind = kind.unwrap_or_else(|| Located { value: guess, at: name.at.clone() });
        Some(Federation { name, kind, cluster: cluster?, remote_clusters, apps, keycloak })
    }

    fn prerequisite(&mut self, node: &Node, path: &str) -> Option<Prerequisite> {
        let mut f = self.fields(node, path)?;
        let file = self.req_string(
            &mut f,
            "file",
            Some("a manifest path relative to the inventory".to_owned()).as_deref(),
        );
        self.finish(f, &["file"]);
        Some(Prerequisite { file: file? })
    }

    /// Decodes the whole document. `None` when something required could not be read.
    pub(crate) fn inventory(&mut self, root: &Node) -> Option<Inventory> {
        if root.value == Value::Null {
            self.error(
                self.loc(root),
                "empty-inventory",
                "the inventory is empty".to_owned(),
                Some(format!("start with `apiVersion: {API_VERSION}` and `kind: {KIND}`")),
            );
            return None;
        }
        if !matches!(root.value, Value::Map(_)) {
            self.error(
                self.loc(root),
                "wrong-type",
                format!("the inventory must be a mapping, found {}", root.value.type_name()),
                Some(format!("start with `apiVersion: {API_VERSION}`")),
            );
            return None;
        }
        let mut f = self.fields(root, "")?;
        let header_ok = self.header(&mut f);
        let argocd = self.required(&mut f, "argocd", "e.g. `argocd: {namespace: argocd}`", Self::argocd);
        let revision = self.req_string(&mut f, "revision", Some("the Git branch to deploy, e.g. `main`"));
        if let Some(r) = &revision {
            names::check_revision(self, r, "revision");
        }
        let repositories =
            self.required(&mut f, "repositories", "declare `infra` and `deployments`", Self::repositories);
        let upstream_repos = self.string_list(&mut f, "upstreamRepos");
        for u in &upstream_repos {
            names::check_repo_url(self, u, "upstreamRepos");
        }
        let mut clusters = self.list(&mut f, "clusters", |d, n, p| d.cluster(n, p));
        let credentials = Credentials { keycloak: f.get("credentials").and_then(|n| self.credentials(n)) };
        let catalogue = crate::apps::catalogue(self, f.get("apps"));
        let projects = crate::projects::projects(self, f.get("projects"));
        let common_apps = self.list(&mut f, "commonApps", |d, n, p| d.common_app(n, p, &catalogue));
        let federations = self.list(&mut f, "federations", |d, n, p| d.federation(n, p, &catalogue));
        let prerequisites = self.list(&mut f, "prerequisites", |d, n, p| d.prerequisite(n, p));
        let state = f.get("state").and_then(|n| self.state(n));
        let protect = f.get("protect").and_then(|n| self.protect(n));
        let tree = f.get("tree").and_then(|n| self.tree(n)).unwrap_or_default();
        let mirrors = self.list(&mut f, "mirrors", |d, n, p| d.mirror(n, p));
        self.finish(f, INVENTORY_KEYS);
        self.add_in_cluster(&mut clusters, root);
        // Missing required parts were reported above; placeholders let the cross-reference
        // checks still run, so the user sees every problem at once. An inventory with any
        // error is never returned to callers (see `crate::parse`).
        let _ = header_ok;
        Some(Inventory {
            file: self.file.to_owned(),
            argocd: argocd.unwrap_or_else(|| self.placeholder_argocd(root)),
            revision: revision.unwrap_or_else(|| self.placeholder(root)),
            repositories: repositories.unwrap_or_else(|| self.placeholder_repositories(root)),
            upstream_repos,
            clusters,
            credentials,
            common_apps,
            federations,
            prerequisites,
            state,
            protect,
            catalogue,
            projects,
            tree,
            mirrors,
        })
    }

    /// The required section `key`, read by `read` (`None` when missing, reported with `hint`,
    /// or unreadable).
    fn required<T>(
        &mut self,
        f: &mut Fields<'_>,
        key: &str,
        hint: &str,
        read: impl FnOnce(&mut Self, &Node) -> Option<T>,
    ) -> Option<T> {
        match f.get(key) {
            Some(n) => read(self, n),
            None => {
                self.missing(f, key, Some(hint.to_owned()));
                None
            }
        }
    }

    /// Argo CD's own cluster, first, unless the inventory declares it.
    fn add_in_cluster(&self, clusters: &mut Vec<Cluster>, root: &Node) {
        if !clusters.iter().any(|c| c.name.value == IN_CLUSTER) {
            clusters.insert(
                0,
                Cluster {
                    name: Located { value: IN_CLUSTER.to_owned(), at: self.loc(root) },
                    server: Located { value: mip_core::IN_CLUSTER_SERVER.to_owned(), at: self.loc(root) },
                    context: None,
                    credentials: ClusterCredentials::None,
                    ca_file: None,
                    implicit: true,
                },
            );
        }
    }

    /// An empty text at the document's root, standing for a missing required string.
    fn placeholder(&self, root: &Node) -> Located<String> {
        Located { value: String::new(), at: self.loc(root) }
    }

    /// The `argocd` section standing for a missing one.
    fn placeholder_argocd(&self, root: &Node) -> ArgoCd {
        ArgoCd {
            namespace: self.placeholder(root),
            default_project: DefaultProjectPolicy::LockDown,
            api_server: None,
            context: None,
        }
    }

    /// The `repositories` section standing for a missing one.
    fn placeholder_repositories(&self, root: &Node) -> Repositories {
        let repo = |role| Repository {
            role,
            url: self.placeholder(root),
            revision: None,
            ssh_private_key: None,
            username: None,
            password: None,
        };
        Repositories { infra: repo("infra"), deployments: repo("deployments") }
    }

    /// `{upstream: URL, mirror: URL}`: a mirror may be plain `http://` (a site's own server).
    fn mirror(&mut self, node: &Node, path: &str) -> Option<Mirror> {
        let mut f = self.fields(node, path)?;
        let upstream = self.req_string(
            &mut f,
            "upstream",
            Some("the URL app definitions name, e.g. `https://github.com/madgik/exareme2`"),
        );
        let mirror = self.req_string(
            &mut f,
            "mirror",
            Some("the local server's URL, e.g. `https://git.hospital.local/madgik/exareme2.git`"),
        );
        self.finish(f, &["upstream", "mirror"]);
        let (upstream, mirror) = (upstream?, mirror?);
        for (v, key) in [(&upstream, "upstream"), (&mirror, "mirror")] {
            let s = &v.value;
            if !names::is_repo_url(s, true) {
                self.error(
                    v.at.clone(),
                    "invalid-url",
                    format!("`{path}.{key}`: `{s}` is not a Git or Helm repository URL"),
                    Some(
                        "use `https://host/path`, `http://host/path`, `ssh://host/path` or `git@host:path`"
                            .to_owned(),
                    ),
                );
                return None;
            }
        }
        Some(Mirror { upstream, mirror })
    }

    /// `tree: {path, keep}`: relative paths inside the tree, never leaving it.
    fn tree(&mut self, node: &Node) -> Option<TreeSettings> {
        let mut f = self.fields(node, "tree")?;
        let path = self.opt_string(&mut f, "path");
        let keep = self.string_list(&mut f, "keep");
        self.finish(f, &["path", "keep"]);
        let mut out = TreeSettings { path: None, keep: Vec::new() };
        if let Some(p) = path
            && self.relative_path(&p, "tree.path", true)
        {
            out.path = Some(p);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, k) in keep.into_iter().enumerate() {
            if !self.relative_path(&k, &format!("tree.keep[{i}]"), false) {
                continue;
            }
            if !seen.insert(k.value.clone()) {
                self.error(
                    k.at.clone(),
                    "duplicate",
                    format!("duplicate `tree.keep` entry `{}`", k.value),
                    Some("list each path once".to_owned()),
                );
                continue;
            }
            out.keep.push(k);
        }
        Some(out)
    }

    /// Whether a path is relative, `/`-separated and stays inside its directory (`..` may
    /// lead out of the inventory's directory only for `tree.path`).
    fn relative_path(&mut self, p: &Located<String>, what: &str, may_go_up: bool) -> bool {
        let bad = p.value.is_empty()
            || p.value.starts_with('/')
            || p.value.contains('\\')
            || (!may_go_up && p.value.split('/').any(|s| s == ".." || s == "."));
        if bad {
            self.error(
                p.at.clone(),
                "invalid-value",
                format!("`{what}` must be a relative path inside the tree, found `{}`", p.value),
                Some(
                    "write it as in `git ls-files`, e.g. `common/submariner/` or `base/argo-projects.yaml`"
                        .to_owned(),
                ),
            );
        }
        !bad
    }

    /// `protect:`: a list of kinds (`Namespace`) and addresses (`v1/Secret/ns/name`).
    fn protect(&mut self, node: &Node) -> Option<Vec<Protected>> {
        // `protect:` with no value is an error rather than "nothing": `protect: []` says that.
        let items = self.seq(node, "protect")?;
        let mut out: Vec<Protected> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, n) in items.iter().enumerate() {
            let Some(entry) = self.string(n, &format!("protect[{i}]")) else { continue };
            let hint = "a kind such as `Namespace` or `Secret`, or an address such as `v1/Secret/federation-a/mip-secret`";
            let protected = if entry.value.contains('/') {
                match entry.value.parse::<mip_core::ObjectRef>() {
                    Ok(a) => Protected::Address(Located { value: a, at: entry.at.clone() }),
                    Err(e) => {
                        self.error(
                            entry.at.clone(),
                            "invalid-value",
                            format!("`protect[{i}]` is not an address: {e}"),
                            Some(hint.to_owned()),
                        );
                        continue;
                    }
                }
            } else if entry.value.starts_with(|c: char| c.is_ascii_uppercase())
                && entry.value.chars().all(|c| c.is_ascii_alphanumeric())
            {
                Protected::Kind(entry.clone())
            } else {
                let mut chars = entry.value.chars();
                let fix = chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str());
                let hint = match fix {
                    Some(f) if f.chars().all(|c| c.is_ascii_alphanumeric()) && !f.is_empty() => {
                        format!("Kubernetes kinds are capitalised: `{f}`")
                    }
                    _ => hint.to_owned(),
                };
                self.error(
                    entry.at.clone(),
                    "invalid-value",
                    format!("`protect[{i}]` is neither a kind nor an address: `{}`", entry.value),
                    Some(hint),
                );
                continue;
            };
            if !seen.insert(entry.value.clone()) {
                self.error(
                    entry.at.clone(),
                    "duplicate",
                    format!("duplicate `protect` entry `{}`", entry.value),
                    Some("list each kind or address once".to_owned()),
                );
                continue;
            }
            out.push(protected);
        }
        Some(out)
    }

    fn state(&mut self, node: &Node) -> Option<StateSettings> {
        let mut f = self.fields(node, "state")?;
        let backend = match f.get("backend") {
            None => Some(StateBackend::Local),
            Some(n) => match &n.value {
                Value::Str(s) if s == "local" => Some(StateBackend::Local),
                Value::Str(s) if s == "cluster" => Some(StateBackend::Cluster),
                other => {
                    let at = self.loc(n);
                    self.error(
                        at,
                        "invalid-value",
                        format!("`state.backend` must be `local` or `cluster`, found {}", describe(other)),
                        Some(
                            "`cluster` keeps the state in Secrets of the target cluster, for teams"
                                .to_owned(),
                        ),
                    );
                    None
                }
            },
        };
        let namespace = self.opt_string(&mut f, "namespace");
        let name = self.opt_string(&mut f, "name");
        self.finish(f, &["backend", "namespace", "name"]);
        if let Some(ns) = &namespace {
            names::check_label(self, ns, "state.namespace");
        }
        if let Some(n) = &name {
            names::check_label(self, n, "state.name");
        }
        Some(StateSettings { backend: backend?, namespace, name })
    }

    fn credentials(&mut self, node: &Node) -> Option<KeycloakCredentials> {
        let mut f = self.fields(node, "credentials")?;
        let k = self.opt_keycloak(&mut f, "keycloak");
        self.finish(f, &["keycloak"]);
        k
    }

    fn header(&mut self, f: &mut Fields<'_>) -> bool {
        let mut ok = true;
        match self.req_string(f, "apiVersion", Some(&format!("add `apiVersion: {API_VERSION}`"))) {
            Some(v) if v.value == API_VERSION => {}
            Some(v) => {
                ok = false;
                self.error(
                    v.at,
                    "unsupported-version",
                    format!("unsupported `apiVersion` `{}`", v.value),
                    Some(format!("this mip reads `{API_VERSION}`")),
                );
            }
            None => ok = false,
        }
        match self.req_string(f, "kind", Some(&format!("add `kind: {KIND}`"))) {
            Some(v) if v.value == KIND => {}
            Some(v) => {
                ok = false;
                self.error(
                    v.at,
                    "invalid-value",
                    format!("`kind` must be `{KIND}`, found `{}`", v.value),
                    Some(format!("write `kind: {KIND}`")),
                );
            }
            None => ok = false,
        }
        ok
    }
}
