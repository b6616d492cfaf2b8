//! [`Inventory`]: a typed builder for the `mip.yaml` inventories tests write, with the fields
//! tests use. [`Inventory::to_yaml`] writes YAML with `federations:` last, each federation in
//! block style (`  - name: …`), so a test may append one more as text.
//!
//! Tests whose subject is the literal text (parse errors, locations in messages, comments kept)
//! keep their YAML as text.

use std::fmt::Write as _;
use std::path::Path;

pub use crate::platform::{EXAREME2, MIP_DEPLOYMENT};

/// Where a credential's value comes from.
#[derive(Debug, Clone)]
pub enum Secret {
    /// `{env: NAME}`.
    Env(String),
    /// `{file: PATH}` (relative to the inventory).
    File(String),
}

impl Secret {
    /// `{env: name}`.
    pub fn env(name: &str) -> Self {
        Secret::Env(name.to_owned())
    }

    /// `{file: path}`.
    pub fn file(path: &str) -> Self {
        Secret::File(path.to_owned())
    }

    fn yaml(&self) -> String {
        match self {
            Secret::Env(name) => format!("{{env: {}}}", quote(name)),
            Secret::File(path) => format!("{{file: {}}}", quote(path)),
        }
    }
}

/// A cluster of the inventory's `clusters:`.
#[derive(Debug, Clone)]
pub struct Cluster {
    name: String,
    server: String,
    context: Option<String>,
    bearer_token: Option<Secret>,
    ca_file: Option<String>,
}

impl Cluster {
    /// Cluster `name` at API server `server`.
    pub fn new(name: &str, server: &str) -> Self {
        Cluster {
            name: name.to_owned(),
            server: server.to_owned(),
            context: None,
            bearer_token: None,
            ca_file: None,
        }
    }

    /// The kubeconfig context that reaches it.
    #[must_use]
    pub fn context(mut self, context: &str) -> Self {
        self.context = Some(context.to_owned());
        self
    }

    /// Its bearer token.
    #[must_use]
    pub fn bearer_token(mut self, token: Secret) -> Self {
        self.bearer_token = Some(token);
        self
    }

    /// Its CA file.
    #[must_use]
    pub fn ca_file(mut self, path: &str) -> Self {
        self.ca_file = Some(path.to_owned());
        self
    }
}

/// An app of a federation.
#[derive(Debug, Clone)]
pub struct App {
    name: String,
    target_revision: Option<String>,
    values: Vec<String>,
}

impl App {
    /// The app `name`, as the catalogue defines it.
    pub fn new(name: &str) -> Self {
        App { name: name.to_owned(), target_revision: None, values: Vec::new() }
    }

    /// Pinned at `revision`.
    #[must_use]
    pub fn target_revision(mut self, revision: &str) -> Self {
        self.target_revision = Some(revision.to_owned());
        self
    }

    /// With a values file.
    #[must_use]
    pub fn values(mut self, file: &str) -> Self {
        self.values.push(file.to_owned());
        self
    }

    fn yaml(&self) -> String {
        let mut out = format!("{{name: {}", quote(&self.name));
        if let Some(revision) = &self.target_revision {
            let _ = write!(out, ", targetRevision: {}", quote(revision));
        }
        if !self.values.is_empty() {
            let _ = write!(out, ", values: [{}]", list(&self.values));
        }
        out + "}"
    }
}

/// A federation.
#[derive(Debug, Clone)]
pub struct Federation {
    name: String,
    kind: &'static str,
    cluster: Option<String>,
    remote_clusters: Vec<String>,
    apps: Vec<App>,
}

impl Federation {
    /// A `local` federation named `name`, without apps.
    pub fn local(name: &str) -> Self {
        Federation {
            name: name.to_owned(),
            kind: "local",
            cluster: None,
            remote_clusters: Vec::new(),
            apps: Vec::new(),
        }
    }

    /// A `hybrid` federation named `name` over `remote_clusters`, without apps.
    pub fn hybrid(name: &str, remote_clusters: &[&str]) -> Self {
        Federation {
            kind: "hybrid",
            remote_clusters: remote_clusters.iter().map(|&c| c.to_owned()).collect(),
            ..Federation::local(name)
        }
    }

    /// On cluster `cluster` (not the management cluster).
    #[must_use]
    pub fn on(mut self, cluster: &str) -> Self {
        self.cluster = Some(cluster.to_owned());
        self
    }

    /// With one more app.
    #[must_use]
    pub fn app(mut self, app: App) -> Self {
        self.apps.push(app);
        self
    }

    /// With these apps, by name.
    #[must_use]
    pub fn apps(mut self, names: &[&str]) -> Self {
        self.apps.extend(names.iter().map(|name| App::new(name)));
        self
    }

    fn yaml(&self) -> String {
        let mut out = format!("  - name: {}\n    kind: {}\n", quote(&self.name), self.kind);
        if let Some(cluster) = &self.cluster {
            let _ = writeln!(out, "    cluster: {}", quote(cluster));
        }
        if !self.remote_clusters.is_empty() {
            let _ = writeln!(out, "    remoteClusters: [{}]", list(&self.remote_clusters));
        }
        let apps: Vec<String> = self.apps.iter().map(App::yaml).collect();
        let _ = writeln!(out, "    apps: [{}]", apps.join(", "));
        out
    }
}

/// An inventory. [`Inventory::new`] is the common case; the methods add what a test needs.
#[derive(Debug, Clone)]
pub struct Inventory {
    argocd_namespace: String,
    infra: String,
    deployments: String,
    deployments_ssh_key: Option<Secret>,
    upstream_repos: Vec<String>,
    mirrors: Vec<(String, String)>,
    keycloak: Option<(Secret, Secret)>,
    blocks: Vec<String>,
    clusters: Vec<Cluster>,
    federations: Vec<Federation>,
}

impl Inventory {
    /// Argo CD in `argocd_namespace`, revision `main`, the infra and deployments repositories
    /// on `example.org`, Exareme2 as the one upstream repository, no federation.
    pub fn new(argocd_namespace: &str) -> Self {
        Inventory {
            argocd_namespace: argocd_namespace.to_owned(),
            infra: "https://example.org/mip-infra.git".to_owned(),
            deployments: "https://example.org/mip-deployments.git".to_owned(),
            deployments_ssh_key: None,
            upstream_repos: vec![EXAREME2.to_owned()],
            mirrors: Vec::new(),
            keycloak: None,
            blocks: Vec::new(),
            clusters: Vec::new(),
            federations: Vec::new(),
        }
    }

    /// The infra and deployments repositories.
    #[must_use]
    pub fn repositories(mut self, infra: &str, deployments: &str) -> Self {
        infra.clone_into(&mut self.infra);
        deployments.clone_into(&mut self.deployments);
        self
    }

    /// The deployments repository's SSH private key.
    #[must_use]
    pub fn deployments_ssh_key(mut self, key: Secret) -> Self {
        self.deployments_ssh_key = Some(key);
        self
    }

    /// These upstream repositories instead (none: no `upstreamRepos:`).
    #[must_use]
    pub fn upstreams(mut self, urls: &[&str]) -> Self {
        self.upstream_repos = urls.iter().map(|&url| url.to_owned()).collect();
        self
    }

    /// One more upstream repository.
    #[must_use]
    pub fn upstream(mut self, url: &str) -> Self {
        self.upstream_repos.push(url.to_owned());
        self
    }

    /// A mirror of `upstream`.
    #[must_use]
    pub fn mirror(mut self, upstream: &str, mirror: &str) -> Self {
        self.mirrors.push((upstream.to_owned(), mirror.to_owned()));
        self
    }

    /// The Keycloak client's id and secret.
    #[must_use]
    pub fn keycloak(mut self, client_id: Secret, client_secret: Secret) -> Self {
        self.keycloak = Some((client_id, client_secret));
        self
    }

    /// A top-level block written as YAML (`apps:`, `commonApps:`, …: what the builder does not
    /// type), after the credentials and before `clusters:`. It must end with a newline.
    #[must_use]
    pub fn yaml(mut self, block: &str) -> Self {
        self.blocks.push(block.to_owned());
        self
    }

    /// One more cluster.
    #[must_use]
    pub fn cluster(mut self, cluster: Cluster) -> Self {
        self.clusters.push(cluster);
        self
    }

    /// One more federation.
    #[must_use]
    pub fn federation(mut self, federation: Federation) -> Self {
        self.federations.push(federation);
        self
    }

    /// The inventory as YAML.
    pub fn to_yaml(&self) -> String {
        let mut out = format!(
            "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {{namespace: {}}}\nrevision: main\n\
             repositories:\n  infra: {{url: {}}}\n",
            quote(&self.argocd_namespace),
            quote(&self.infra)
        );
        match &self.deployments_ssh_key {
            None => {
                let _ = writeln!(out, "  deployments: {{url: {}}}", quote(&self.deployments));
            }
            Some(key) => {
                let _ = writeln!(
                    out,
                    "  deployments: {{url: {}, sshPrivateKey: {}}}",
                    quote(&self.deployments),
                    key.yaml()
                );
            }
        }
        if !self.upstream_repos.is_empty() {
            let _ = writeln!(out, "upstreamRepos: [{}]", list(&self.upstream_repos));
        }
        if !self.mirrors.is_empty() {
            out.push_str("mirrors:\n");
            for (upstream, mirror) in &self.mirrors {
                let _ = writeln!(out, "  - {{upstream: {}, mirror: {}}}", quote(upstream), quote(mirror));
            }
        }
        if let Some((id, secret)) = &self.keycloak {
            let _ = writeln!(
                out,
                "credentials:\n  keycloak: {{clientId: {}, clientSecret: {}}}",
                id.yaml(),
                secret.yaml()
            );
        }
        for block in &self.blocks {
            out.push_str(block);
        }
        if !self.clusters.is_empty() {
            out.push_str("clusters:\n");
            for cluster in &self.clusters {
                let _ =
                    write!(out, "  - {{name: {}, server: {}", quote(&cluster.name), quote(&cluster.server));
                if let Some(context) = &cluster.context {
                    let _ = write!(out, ", context: {}", quote(context));
                }
                if let Some(token) = &cluster.bearer_token {
                    let _ = write!(out, ", bearerToken: {}", token.yaml());
                }
                if let Some(ca) = &cluster.ca_file {
                    let _ = write!(out, ", caFile: {}", quote(ca));
                }
                out.push_str("}\n");
            }
        }
        if self.federations.is_empty() {
            out.push_str("federations: []\n");
        } else {
            out.push_str("federations:\n");
            for federation in &self.federations {
                out.push_str(&federation.yaml());
            }
        }
        out
    }

    /// Writes [`Inventory::to_yaml`] to `path`.
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.to_yaml())
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    }
}

/// `s` as a YAML flow scalar: plain when it is a simple word, else single-quoted.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric());
    if plain { s.to_owned() } else { format!("'{}'", s.replace('\'', "''")) }
}

fn list(items: &[String]) -> String {
    items.iter().map(|item| quote(item)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inventory_is_written_with_its_federations_last() {
        let text = Inventory::new("argocd")
            .cluster(Cluster::new("hospital", "https://127.0.0.1:6443").context("hospital"))
            .federation(Federation::local("federation-H").on("hospital").apps(&["exareme2"]))
            .federation(
                Federation::hybrid("federation-Z", &["hospital"]).app(App::new("exareme2").values("v.yaml")),
            )
            .to_yaml();
        assert_eq!(
            text,
            "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: argocd}\nrevision: main\n\
             repositories:\n  infra: {url: 'https://example.org/mip-infra.git'}\n  \
             deployments: {url: 'https://example.org/mip-deployments.git'}\n\
             upstreamRepos: ['https://github.com/madgik/exareme2']\n\
             clusters:\n  - {name: hospital, server: 'https://127.0.0.1:6443', context: hospital}\n\
             federations:\n  - name: federation-H\n    kind: local\n    cluster: hospital\n    apps: [{name: exareme2}]\n  \
             - name: federation-Z\n    kind: hybrid\n    remoteClusters: [hospital]\n    apps: [{name: exareme2, values: [v.yaml]}]\n"
        );
        assert_eq!(Inventory::new("a").to_yaml().lines().last(), Some("federations: []"));
    }
}
