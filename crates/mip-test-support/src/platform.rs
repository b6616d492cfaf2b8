//! The MIP platform as a site without internet runs it, for the whole-platform Argo CD test
//! (`tests/cli/argocd_platform.rs`) and the time-to-Healthy benchmark (`mip-bench argocd`):
//! local mirrors of the upstream sources (the leaf charts of `../shared/fixtures/upstream` as
//! Git repositories, Submariner's packaged charts as a Helm repository), the inventory lines
//! that map the upstream URLs to them and pin the served revisions, the values files of the
//! upstream mip-infra tree, and the Submariner cluster RBAC an administrator applies first.

use crate::ArgoCd;
use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Exareme2's upstream repository.
pub const EXAREME2: &str = "https://github.com/madgik/exareme2";
/// The MIP stack's upstream repository.
pub const MIP_DEPLOYMENT: &str = "https://github.com/HBPMedical/mip-deployment";
/// The data catalogue's upstream repository.
pub const DATACATALOG: &str = "https://github.com/madgik/datacatalog";
/// Submariner's upstream chart repository.
pub const SUBMARINER_CHARTS: &str = "https://submariner-io.github.io/submariner-charts/charts";
/// The version of the packaged Submariner charts in the fixtures (mip-infra pins 0.21.0).
pub const SUBMARINER_VERSION: &str = "0.18.1";

/// `../shared` beside the project root (the fixtures and the upstream mip-infra tree).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The served mirrors: `(upstream, mirror URL, pin)` each, and the Submariner operator's
/// kustomization for the served chart version (JSON; `None` until [`Mirrors::adapt_operator`]).
#[derive(Debug, Clone)]
pub struct Mirrors {
    /// `(upstream URL, mirror URL, pinned revision or chart version)`.
    pub served: Vec<(&'static str, String, String)>,
    /// The operator kustomization's documents (JSON) for the served chart version.
    pub operator_kustomization: Option<String>,
}

impl Mirrors {
    /// Serves each fixture chart as its mirror: a Git repository holding the chart at the path
    /// the catalogue reads (`kubernetes/`) and the packaged Submariner charts as a Helm
    /// repository. `work` holds the repositories' trees.
    ///
    /// # Errors
    /// A fixture that is missing.
    pub fn serve(argocd: &ArgoCd, work: &Path) -> Result<Mirrors> {
        let fixtures = shared_dir().join("fixtures/upstream");
        let mut served = Vec::new();
        for (upstream, name) in
            [(EXAREME2, "exareme2"), (MIP_DEPLOYMENT, "mip-deployment"), (DATACATALOG, "datacatalog")]
        {
            let chart = fixtures.join(name).join("kubernetes");
            ensure!(
                chart.join("Chart.yaml").is_file(),
                "the fixture chart is missing at {}",
                chart.display()
            );
            let tree = work.join("upstream").join(name);
            crate::argocd::copy_dir(&chart, &tree.join("kubernetes"))?;
            let (url, sha) = argocd.serve_repo(name, &tree, &format!("{name} at mip-infra's pin"));
            served.push((upstream, url, sha));
        }
        let charts = argocd.serve_helm_repo("submariner-charts", &fixtures.join("submariner-charts/charts"));
        served.push((SUBMARINER_CHARTS, charts, SUBMARINER_VERSION.to_owned()));
        Ok(Mirrors { served, operator_kustomization: None })
    }

    /// The pin of an upstream source's mirror.
    ///
    /// # Panics
    /// If `upstream` is not mirrored.
    pub fn pin(&self, upstream: &str) -> &str {
        match self.served.iter().find(|(u, _, _)| *u == upstream) {
            Some((_, _, pin)) => pin,
            None => panic!("`{upstream}` is not mirrored"),
        }
    }

    /// The inventory's `mirrors:` entries, one per line (indented two spaces).
    pub fn inventory_lines(&self) -> String {
        self.served
            .iter()
            .map(|(u, mirror, _)| format!("  - {{upstream: '{u}', mirror: '{mirror}'}}\n"))
            .collect()
    }

    /// The inventory's `apps:` entries that pin every mirrored source (indented two spaces),
    /// with the operator's kustomization once adapted.
    pub fn pins(&self) -> String {
        let operator = self
            .operator_kustomization
            .as_deref()
            .map_or_else(String::new, |docs| format!("\n    files: {{operator/kustomization.yaml: {docs}}}"));
        format!(
            "  exareme2: {{targetRevision: {}}}\n  mip-stack: {{targetRevision: {}}}\n  datacatalog: {{targetRevision: {}}}\n  submariner:\n    targetRevision: {SUBMARINER_VERSION}{operator}\n",
            self.pin(EXAREME2),
            self.pin(MIP_DEPLOYMENT),
            self.pin(DATACATALOG),
        )
    }

    /// Adapts the operator's kustomization, as `mip render` wrote it into `tree`, to the served
    /// chart version, as a site on that version does: less the two Secret references of the
    /// Submariner resource that the 0.18 CRD does not have (the API server would prune them
    /// and Argo CD would see it OutOfSync for ever; 0.21.0, mip-infra's pin and the catalogue's,
    /// has them).
    ///
    /// # Errors
    /// When the rendered file is missing or not the catalogue's.
    pub fn adapt_operator(&mut self, tree: &Path) -> Result<()> {
        let path = tree.join("common/submariner/operator/kustomization.yaml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("`{}`", path.display()))?;
        let mut doc: Value = serde_saphyr::from_str(&text).context("the operator kustomization is YAML")?;
        let patches = doc["patches"].as_array_mut().context("the catalogue's operator patches")?;
        let mut edited = 0;
        for p in patches.iter_mut() {
            if let Some(text) = p["patch"].as_str().filter(|t| t.contains("kind: Submariner")) {
                let kept: Vec<&str> = text.lines().filter(|l| !l.contains("Secret: ")).collect();
                p["patch"] = Value::String(kept.join("\n"));
                edited += 1;
            }
        }
        ensure!(
            edited == 1 && !doc.to_string().contains("brokerK8sSecret"),
            "unexpected operator kustomization: {doc}"
        );
        if let Some(chart) = doc["helmCharts"][0].as_object_mut() {
            chart.remove("version"); // the pin sets it
        }
        self.operator_kustomization = Some(Value::Array(vec![doc]).to_string());
        Ok(())
    }
}

/// The Submariner charts' namespaces and the operator chart's cluster-wide RBAC (its own
/// ClusterRoles and ClusterRoleBindings, rendered by `helm`), as an administrator applies them
/// before Argo CD deploys the chart (mip-infra's `submariner-rbac.yaml`).
///
/// # Errors
/// When `helm template` fails or renders no cluster RBAC.
pub fn submariner_cluster_rbac(helm: &Path) -> Result<String> {
    let chart = shared_dir().join(format!(
        "fixtures/upstream/submariner-charts/charts/submariner-operator-{SUBMARINER_VERSION}.tgz"
    ));
    let o = Command::new(helm)
        .args(["template", "submariner-operator"])
        .arg(&chart)
        .args(["--namespace", "submariner-operator"])
        .output()
        .with_context(|| format!("failed to run `{}`", helm.display()))?;
    if !o.status.success() {
        bail!("helm template: {}", String::from_utf8_lossy(&o.stderr));
    }
    let all = String::from_utf8_lossy(&o.stdout).into_owned();
    let docs: Vec<&str> = all
        .split("\n---")
        .filter(|d| d.contains("\nkind: ClusterRole\n") || d.contains("\nkind: ClusterRoleBinding\n"))
        .collect();
    ensure!(docs.len() >= 2, "the operator chart has no cluster RBAC: {all}");
    let mut out = String::from(
        "# The Submariner charts' namespaces and the operator chart's cluster RBAC (helm template), applied by mip first.\n",
    );
    for ns in ["submariner-k8s-broker", "submariner-operator"] {
        out.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"));
    }
    for doc in docs {
        out.push_str("---");
        out.push_str(doc.trim_end());
        out.push('\n');
    }
    Ok(out)
}

/// Writes the values files of the upstream mip-infra tree into `tree` for the federations mip
/// renders: federation-A's Exareme2 and MIP stack values, federation-Z's Exareme2 values, the
/// data catalogue's; and for each of `more_local` (lowered names of further local federations)
/// federation-A's Exareme2 values in its own namespace. The values files are named
/// `<app>-values.yaml` in each federation's directory.
///
/// # Errors
/// A file of the upstream tree that is missing, or a write that fails.
pub fn write_values(tree: &Path, more_local: &[&str]) -> Result<()> {
    let real = shared_dir().join("reference/mip-infra");
    let read =
        |rel: &str| std::fs::read_to_string(real.join(rel)).with_context(|| format!("upstream `{rel}`"));
    let (a, z) = (
        "deployments/local/federations/federation-A",
        "deployments/hybrid/federations/federation-Z/mip-infrastructure",
    );
    for app in ["exareme2", "mip-stack"] {
        write(
            tree,
            &format!("{a}/{app}-values.yaml"),
            &read(&format!("{a}/customizations/{app}-values.yaml"))?,
        )?;
    }
    for name in more_local {
        let upper = name.strip_prefix("federation-").map(str::to_uppercase).unwrap_or_default();
        write(
            tree,
            &format!("deployments/local/federations/federation-{upper}/exareme2-values.yaml"),
            &read(&format!("{a}/customizations/exareme2-values.yaml"))?.replace("federation-a", name),
        )?;
    }
    write(
        tree,
        &format!("{z}/exareme2-values.yaml"),
        &read(&format!("{z}/customizations/exareme2-values.yaml"))?,
    )?;
    write(tree, "common/datacatalog/values.yaml", &read("common/datacatalog/values.yaml")?)?;
    Ok(())
}

/// Writes `text` at `dir/rel`, creating directories.
///
/// # Errors
/// A directory or file that cannot be written.
pub fn write(dir: &Path, rel: &str, text: &str) -> Result<()> {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    std::fs::write(&p, text).with_context(|| format!("failed to write `{}`", p.display()))
}
