//! `mip init`: a commented starter inventory for a newcomer (or, `--from-tree`, the import of
//! an existing mip-infra checkout), checked by the parser before it is written, and never
//! written over an existing file unless asked.

use crate::Error;
use std::path::{Path, PathBuf};

/// What a newcomer is asked (the CLI prompts on a terminal, flags otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// The Argo CD namespace.
    pub argocd_namespace: String,
    /// The infra repository (base/, projects/, common/).
    pub infra_repo: String,
    /// The deployments repository (deployments/); may be the infra one.
    pub deployments_repo: String,
    /// The first federation's directory name.
    pub federation: String,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            argocd_namespace: "argocd-mip-team".to_owned(),
            infra_repo: "https://github.com/Medical-Informatics-Platform/mip-infra.git".to_owned(),
            deployments_repo: "https://github.com/Medical-Informatics-Platform/mip-infra.git".to_owned(),
            federation: "federation-A".to_owned(),
        }
    }
}

/// Where the starter comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The answers.
    Answers(Answers),
    /// An existing checkout, as `mip import` reads it.
    Tree(PathBuf),
}

/// What `mip init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initialised {
    /// The file written.
    pub path: PathBuf,
    /// What an import could not express (empty for a starter).
    pub report: Vec<String>,
}

/// The commented starter inventory.
pub fn starter(a: &Answers) -> String {
    let ssh = a.deployments_repo.starts_with("git@") || a.deployments_repo.starts_with("ssh://");
    let key = if ssh {
        "\n    sshPrivateKey: {file: ./argocd-remote-key}   # the deploy key Argo CD reads the repository with"
    } else {
        ""
    };
    format!(
        "# The MIP platform mip sets up: `mip validate`, `mip render tree`, `mip plan`, `mip apply`.
# Reference: mip's docs/inventory.md; apps: `mip apps list`.
apiVersion: mip.ebrains.eu/v1alpha1
kind: Inventory

argocd:
  namespace: {ns}           # where Argo CD runs and keeps its Applications and projects

revision: main                       # the Git branch every repository is deployed from

repositories:
  infra:                             # holds base/, projects/ and common/ (what `mip render` writes)
    url: {infra}
  deployments:                       # holds deployments/ (may be the same repository)
    url: {deploy}{key}

upstreamRepos:                       # chart repositories the generated projects may source
  - https://github.com/madgik/exareme2

# credentials:
#   keycloak:                        # needed by mip-stack and datacatalog
#     clientId: {{env: MIP_KEYCLOAK_CLIENT_ID}}
#     clientSecret: {{prompt: \"Keycloak client secret\"}}

# commonApps:                        # datacatalog, nginx-ingress, security, submariner, or your own
#   - name: security

federations:
  - name: {fed}                      # the Git directory name; Kubernetes uses it lowercased
    kind: local                      # local | hybrid
    apps:
      - name: exareme2               # add mip-stack with Keycloak credentials above
",
        ns = a.argocd_namespace,
        infra = a.infra_repo,
        deploy = a.deployments_repo,
        fed = a.federation,
    )
}

/// Writes the starter (or the import of a tree) to `path`.
///
/// # Errors
/// [`Error::WriteInventory`] when `path` exists and `force` is not set, or it cannot be
/// written; [`Error::Invalid`] when the answers make an invalid inventory (nothing written);
/// the import's errors.
pub fn init(path: &Path, source: &Source, force: bool) -> Result<Initialised, Error> {
    let name = path.display().to_string();
    if path.exists() && !force {
        return Err(Error::WriteInventory {
            path: name,
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "it exists; `--force` overwrites it",
            ),
        });
    }
    let (text, report) = match source {
        Source::Answers(a) => (starter(a), Vec::new()),
        Source::Tree(dir) => {
            let imported = super::import::import(dir, None)?;
            (imported.inventory, imported.report)
        }
    };
    if let Err(diagnostics) = mip_inventory::parse(&name, &text) {
        return Err(Error::Invalid { path: name, diagnostics });
    }
    mip_core::fsio::write_atomic(path, text.as_bytes(), None)
        .map_err(|source| Error::WriteInventory { path: name, source })?;
    Ok(Initialised { path: path.to_path_buf(), report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_is_a_valid_inventory_for_any_sane_answers() {
        for a in [
            Answers::default(),
            Answers {
                argocd_namespace: "argocd".into(),
                infra_repo: "https://example.org/infra.git".into(),
                deployments_repo: "git@example.org:team/deployments.git".into(),
                federation: "Lyon".into(),
            },
        ] {
            let text = starter(&a);
            let parsed = mip_inventory::parse("mip.yaml", &text).unwrap_or_else(|d| panic!("{text}\n{d:?}"));
            assert_eq!(parsed.inventory.federations[0].name.value, a.federation);
            assert_eq!(
                parsed.inventory.repositories.deployments.ssh_private_key.is_some(),
                a.deployments_repo.starts_with("git@")
            );
        }
    }
}
