//! Time to a Healthy platform (issue 23): real Argo CD at its default resync (180 s), simulated
//! nodes (the workload tier), the real leaf charts from local mirrors (`platform`), from an
//! empty cluster:
//!
//! 1. **bootstrap**: until every Application is Synced and Healthy;
//! 2. **add a federation**: federation-B committed to Git, until its Applications are too;
//! 3. **upgrade**: a new Exareme2 revision pinned for federation-A only, until that
//!    Application runs it, Synced and Healthy.
//!
//! Three ways, each run on its own cluster, interleaved:
//!
//! - **mip**: `mip apply` (default `--wait-for healthy`); its wall time;
//! - **script**: the mip-infra README's procedure scripted as fast as a script can follow it:
//!   `kubectl` for what it does with kubectl and for what its `argocd --core` commands create
//!   (a project, an Application, a sync: a refresh), one step after the other (prerequisites,
//!   the `default` project, gen_secrets.sh's namespaces and Secrets, the bootstrap project, the
//!   argo-projects root; once every AppProject exists the infra root), polling every second
//!   for what the next step needs and at the end until every Application is Healthy;
//! - **floor**: Argo CD's own: the same finished objects applied with one `kubectl apply`, then
//!   polled every second until every Application is Healthy; after a commit, every Application
//!   and ApplicationSet told to read Git again (hard refresh, `application-set-refresh`) at once
//!   and every 5 s until done: as fast as Argo CD can be told.
//!
//! The script's `argocd app sync` of a root is a hard refresh of it; the argocd CLI has no
//! command that makes an ApplicationSet read Git again, so the script waits for Argo CD's own
//! requeue there, as an operator following the README does.
//!
//! The objects the script and the floor apply are the ones mip would (`mip plan -o json`, its
//! Secrets with empty values: nothing reads them without containers).

use crate::stats::summarize;
use anyhow::{Context, bail, ensure};
use mip_test_support::platform::{self, DATACATALOG, EXAREME2, MIP_DEPLOYMENT, Mirrors};
use mip_test_support::{ArgoCd, ArgoCdOptions, TestCluster, TestClusterOptions, WorkloadOptions};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs per way.
    pub repeat: usize,
    /// The mip binary.
    pub mip: PathBuf,
    /// The ways to measure (default: all three).
    pub ways: Vec<Way>,
}

/// How the platform is brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// `mip apply`.
    Mip,
    /// The README's procedure, scripted.
    Script,
    /// Everything at once, then Argo CD.
    Floor,
}

impl Way {
    /// mip, the script, the floor.
    pub const ALL: [Way; 3] = [Way::Mip, Way::Script, Way::Floor];

    /// `mip`, `script` or `floor`.
    pub fn parse(s: &str) -> Option<Way> {
        match s {
            "mip" => Some(Way::Mip),
            "script" => Some(Way::Script),
            "floor" => Some(Way::Floor),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Way::Mip => "mip apply",
            Way::Script => "scripted README procedure",
            Way::Floor => "Argo CD floor (kubectl apply all, poll)",
        }
    }
}

/// One run's three durations, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Empty cluster to every Application Healthy.
    pub bootstrap: f64,
    /// A federation added in Git to its Applications Healthy.
    pub add_federation: f64,
    /// An app upgraded in one federation to that Application Healthy on the new revision.
    pub upgrade: f64,
}

/// Which duration of a sample a row shows.
type Pick = fn(&Sample) -> f64;

const APPS: &str = "applications.argoproj.io";
const TIMEOUT: Duration = Duration::from_secs(900);
const POLL: Duration = Duration::from_secs(1);

fn inventory(repo: &str, ns: &str, m: &Mirrors, with_b: bool, pin_a: Option<&str>) -> String {
    let b = if with_b {
        "  - name: federation-B\n    kind: local\n    apps:\n      - {name: exareme2, values: [exareme2-values.yaml]}\n"
    } else {
        ""
    };
    let a_exareme2 = pin_a.map_or_else(String::new, |p| format!(", targetRevision: {p}"));
    format!(
        "apiVersion: mip.ebrains.eu/v1alpha1
kind: Inventory
argocd: {{namespace: {ns}}}
revision: main
repositories:
  infra: {{url: '{repo}'}}
  deployments: {{url: '{repo}'}}
upstreamRepos: ['{EXAREME2}', '{MIP_DEPLOYMENT}', '{DATACATALOG}']
mirrors:
{mirrors}credentials:
  keycloak:
    clientId: {{env: MIP_BENCH_KC_ID}}
    clientSecret: {{env: MIP_BENCH_KC_SECRET}}
prerequisites:
  - file: rbac/nginx-public-rbac.yaml
  - file: rbac/submariner-rbac.yaml
apps:
{pins}commonApps:
  - name: datacatalog
  - name: nginx-ingress
  - name: security
  - name: submariner
federations:
  - name: federation-A
    kind: local
    apps:
      - {{name: exareme2, values: [exareme2-values.yaml]{a_exareme2}}}
      - {{name: mip-stack, values: [mip-stack-values.yaml]}}
{b}  - name: federation-Z
    kind: hybrid
    apps:
      - {{name: exareme2, values: [exareme2-values.yaml]}}
",
        mirrors = m.inventory_lines(),
        pins = m.pins(),
    )
}

/// One run's cluster, Argo CD and working directory.
struct Site {
    cluster: TestCluster,
    argocd: ArgoCd,
    _dir: tempfile::TempDir,
    d: PathBuf,
    mip: PathBuf,
    mirrors: Mirrors,
}

impl Site {
    fn start(mip: &Path) -> anyhow::Result<Site> {
        let cluster = TestCluster::start(TestClusterOptions {
            workloads: Some(WorkloadOptions::default()),
            ..Default::default()
        });
        let argocd =
            ArgoCd::start(&cluster, ArgoCdOptions { resync: Duration::from_secs(180), ..Default::default() });
        let dir = tempfile::tempdir().context("failed to create a temp dir")?;
        let d = dir.path().to_path_buf();
        let mirrors = Mirrors::serve(&argocd, &d)?;
        let nginx = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/mip-infra/rbac/nginx-public-rbac.yaml");
        platform::write(
            &d,
            "rbac/nginx-public-rbac.yaml",
            &std::fs::read_to_string(&nginx).context("nginx RBAC")?,
        )?;
        platform::write(
            &d,
            "rbac/submariner-rbac.yaml",
            &platform::submariner_cluster_rbac(&argocd.bin_dir().join("helm"))?,
        )?;
        platform::write_values(&d.join("tree"), &["federation-b"])?;
        Ok(Site { cluster, argocd, _dir: dir, d, mip: mip.to_path_buf(), mirrors })
    }

    fn mip(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.mip)
            .args(args)
            .current_dir(&self.d)
            .env("KUBECONFIG", self.cluster.kubeconfig_path())
            .env("NO_COLOR", "1")
            .env("MIP_BENCH_KC_ID", "mip-client")
            .env("MIP_BENCH_KC_SECRET", "bench-kc-secret")
            .env_remove("MIP_INVENTORY")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("failed to run {}", self.mip.display()))?;
        if !out.status.success() {
            bail!("`mip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Writes the inventory, renders the tree and commits it (not timed).
    fn commit(&mut self, with_b: bool, pin_a: Option<&str>, message: &str) -> anyhow::Result<()> {
        let text =
            inventory(&self.argocd.repo_url(), self.cluster.argocd_namespace(), &self.mirrors, with_b, pin_a);
        std::fs::write(self.d.join("mip.yaml"), text)?;
        self.mip(&["render", "tree", "-i", "mip.yaml"])?;
        if self.mirrors.operator_kustomization.is_none() {
            self.mirrors.adapt_operator(&self.d.join("tree"))?;
            return self.commit(with_b, pin_a, message);
        }
        self.argocd.commit_tree(&self.d.join("tree"), message);
        Ok(())
    }

    fn kubectl(&self, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
        let mut c = self.cluster.kubectl();
        c.args(args).stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().context("kubectl")?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            use std::io::Write as _;
            stdin.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl apply --server-side` of JSON documents (one process, as a script's one line).
    fn apply(&self, docs: &[Value]) -> anyhow::Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": docs });
        self.kubectl(
            &["apply", "--server-side", "--force-conflicts", "--field-manager", "script", "-f", "-"],
            Some(&list.to_string()),
        )?;
        Ok(())
    }

    /// What `argocd app get --hard-refresh` (and `argocd app sync`) does for a root: Argo CD
    /// resolves the revision and renders it again now.
    fn refresh(&self, roots: &[String]) -> anyhow::Result<()> {
        let ns = self.cluster.argocd_namespace();
        for root in roots {
            self.kubectl(
                &["annotate", "--overwrite", APPS, "-n", ns, root, "argocd.argoproj.io/refresh=hard"],
                None,
            )?;
        }
        Ok(())
    }

    /// Every Application hard-refreshed and every ApplicationSet told to read Git again.
    fn refresh_all(&self) -> anyhow::Result<()> {
        let names: Vec<String> = self.applications()?.iter().map(|a| text(a, "/metadata/name")).collect();
        self.refresh(&names)?;
        self.refresh_sets()
    }

    /// The floor's extra: every ApplicationSet's generators read Git again now (the argocd CLI
    /// has no command for it; mip sets the same annotation).
    fn refresh_sets(&self) -> anyhow::Result<()> {
        let ns = self.cluster.argocd_namespace();
        let names = self.kubectl(&["get", "applicationsets.argoproj.io", "-n", ns, "-o", "name"], None)?;
        for set in names.lines().filter(|l| !l.is_empty()) {
            self.kubectl(
                &[
                    "annotate",
                    "--overwrite",
                    "-n",
                    ns,
                    set,
                    "argocd.argoproj.io/application-set-refresh=true",
                ],
                None,
            )?;
        }
        Ok(())
    }

    fn applications(&self) -> anyhow::Result<Vec<Value>> {
        let text = self.kubectl(&["get", APPS, "-n", self.cluster.argocd_namespace(), "-o", "json"], None)?;
        let v: Value = serde_json::from_str(&text)?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    /// Polls every second until the Applications are exactly `want`, each Synced and Healthy,
    /// and `extra` holds for them.
    fn until_healthy(&self, want: &[String], extra: &dyn Fn(&[Value]) -> bool) -> anyhow::Result<()> {
        self.until_healthy_nudging(want, extra, false)
    }

    /// [`Site::until_healthy`]; with `nudge`, every 5 s every Application is hard-refreshed and
    /// every ApplicationSet told to read Git again (the floor: as fast as Argo CD can be told).
    fn until_healthy_nudging(
        &self,
        want: &[String],
        extra: &dyn Fn(&[Value]) -> bool,
        nudge: bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        let mut nudged = Instant::now();
        loop {
            if nudge && nudged.elapsed() >= Duration::from_secs(5) {
                self.refresh_all()?;
                nudged = Instant::now();
            }
            let apps = self.applications()?;
            let mut names: Vec<String> = apps.iter().map(|a| text(a, "/metadata/name")).collect();
            names.sort();
            let healthy = apps.iter().all(|a| {
                text(a, "/status/sync/status") == "Synced" && text(a, "/status/health/status") == "Healthy"
            });
            if names == want && healthy && extra(&apps) {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "not Healthy after {TIMEOUT:?}: {names:?}");
            std::thread::sleep(POLL);
        }
    }

    /// Polls every second until every AppProject of `want` exists.
    fn until_projects(&self, want: &[String]) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.kubectl(
                &["get", "appprojects.argoproj.io", "-n", self.cluster.argocd_namespace(), "-o", "name"],
                None,
            )?;
            if want.iter().all(|p| text.lines().any(|l| l.ends_with(&format!("/{p}")))) {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "AppProjects missing after {TIMEOUT:?}");
            std::thread::sleep(POLL);
        }
    }
}

fn text(v: &Value, p: &str) -> String {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// What the plan says: the objects mip applies by step, the Applications and AppProjects
/// Argo CD generates (roots included).
struct Planned {
    steps: Vec<(String, Vec<Value>)>,
    applications: Vec<String>,
    projects: Vec<String>,
    roots: Vec<String>,
}

fn planned(site: &Site) -> anyhow::Result<Planned> {
    let plan: Value = serde_json::from_str(&site.mip(&["plan", "-i", "mip.yaml", "-o", "json"])?)?;
    let name = |e: &Value| text(e, "/address").rsplit('/').next().unwrap_or_default().to_owned();
    let mut steps: Vec<(String, Vec<Value>)> = Vec::new();
    let mut roots = Vec::new();
    for c in plan["changes"].as_array().into_iter().flatten() {
        let step = text(c, "/step");
        let manifest = c["manifest"].clone();
        if text(c, "/address").contains("/Application/") {
            roots.push(name(c));
        }
        match steps.iter_mut().find(|(s, _)| *s == step) {
            Some((_, docs)) => docs.push(manifest),
            None => steps.push((step, vec![manifest])),
        }
    }
    let of_kind = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = plan["expected"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(plan["changes"].as_array().into_iter().flatten())
            .filter(|e| text(e, "/address").contains(&format!("/{kind}/")))
            .map(name)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    Ok(Planned { steps, applications: of_kind("Application"), projects: of_kind("AppProject"), roots })
}

/// The README's bootstrap, step by step.
fn script_bootstrap(site: &Site, p: &Planned) -> anyhow::Result<()> {
    let step =
        |name: &str| p.steps.iter().find(|(s, _)| s == name).map(|(_, d)| d.clone()).unwrap_or_default();
    let bootstrap = step("bootstrap");
    let kind = |d: &Value| text(d, "/kind");
    // `kubectl apply -f base/mip-infrastructure/rbac/…` (the prerequisites).
    let prerequisites: Vec<Value> = bootstrap
        .iter()
        .filter(|d| !matches!(kind(d).as_str(), "Secret" | "AppProject") && !is_federation_namespace(d))
        .cloned()
        .collect();
    site.apply(&prerequisites)?;
    site.apply(&step("default-project"))?;
    // gen_secrets.sh: each namespace, then its Secrets (one kubectl per Secret, as the script).
    for ns in bootstrap.iter().filter(|d| is_federation_namespace(d)) {
        site.apply(std::slice::from_ref(ns))?;
    }
    for secret in bootstrap.iter().filter(|d| kind(d) == "Secret") {
        site.apply(std::slice::from_ref(secret))?;
    }
    // `argocd proj create -f projects/mip-infrastructure.yaml`.
    let projects: Vec<Value> = bootstrap.iter().filter(|d| kind(d) == "AppProject").cloned().collect();
    site.apply(&projects)?;
    // `argocd app create …-argo-projects` + `argocd app sync`, then `kubectl get appprojects`
    // until the projects are there.
    site.apply(&step("argo-projects"))?;
    site.refresh(&p.roots[..1.min(p.roots.len())])?;
    site.until_projects(&p.projects)?;
    // `argocd app create …-infra-clusterset` + `argocd app sync`.
    site.apply(&step("infra"))?;
    site.refresh(&p.roots)?;
    site.until_healthy(&p.applications, &|_| true)
}

fn is_federation_namespace(d: &Value) -> bool {
    text(d, "/kind") == "Namespace" && text(d, "/metadata/name").starts_with("federation-")
}

fn all_objects(p: &Planned) -> Vec<Value> {
    p.steps.iter().flat_map(|(_, d)| d.iter().cloned()).collect()
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed().as_secs_f64())
}

fn one_run(options: &Options, way: Way) -> anyhow::Result<Sample> {
    let mut site = Site::start(&options.mip)?;
    let apply = ["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "15m"];

    // 1. Bootstrap.
    site.commit(false, None, "the platform")?;
    let p = planned(&site)?;
    let bootstrap = timed(|| match way {
        Way::Mip => {
            site.mip(&apply)?;
            site.until_healthy(&p.applications, &|_| true)
        }
        Way::Script => script_bootstrap(&site, &p),
        Way::Floor => {
            site.apply(&all_objects(&p))?;
            site.until_healthy(&p.applications, &|_| true)
        }
    })?;

    // 2. federation-B, through Git.
    site.commit(true, None, "federation-B")?;
    let p = planned(&site)?;
    let add_federation = timed(|| match way {
        Way::Mip => {
            site.mip(&apply)?;
            site.until_healthy(&p.applications, &|_| true)
        }
        Way::Script | Way::Floor => {
            // gen_secrets.sh for the new federation (the script: its namespace, then each Secret;
            // the floor: at once), then `argocd app sync` of both roots.
            let new: Vec<Value> = all_objects(&p)
                .into_iter()
                .filter(|d| {
                    text(d, "/metadata/namespace") == "federation-b"
                        || text(d, "/metadata/name") == "federation-b"
                })
                .collect();
            if way == Way::Script {
                for d in &new {
                    site.apply(std::slice::from_ref(d))?;
                }
            } else {
                site.apply(&new)?;
                site.refresh_sets()?;
            }
            site.refresh(&p.roots)?;
            site.until_healthy_nudging(&p.applications, &|_| true, way == Way::Floor)
        }
    })?;

    // 3. A new Exareme2 revision, pinned for federation-A only.
    let upstream = site.d.join("upstream/exareme2");
    platform::write(&upstream, "kubernetes/UPGRADE.md", "A new revision of the mirror.\n")?;
    let (_, new_rev) = site.argocd.serve_repo("exareme2", &upstream, "exareme2, next revision");
    site.commit(true, Some(&new_rev), "federation-A on the next Exareme2")?;
    let p = planned(&site)?;
    let on_new = |apps: &[Value]| {
        apps.iter().any(|a| {
            text(a, "/metadata/name") == "federation-a-exareme2"
                && text(a, "/status/sync/revisions/0") == new_rev
        })
    };
    let upgrade = timed(|| match way {
        Way::Mip => {
            site.mip(&apply)?;
            site.until_healthy(&p.applications, &on_new)
        }
        Way::Script | Way::Floor => {
            if way == Way::Floor {
                site.refresh_all()?;
            }
            site.refresh(&p.roots)?;
            site.until_healthy_nudging(&p.applications, &on_new, way == Way::Floor)
        }
    })?;
    Ok(Sample { bootstrap, add_federation, upgrade })
}

/// Runs each way `repeat` times, interleaved; a Markdown section with medians, ranges and the
/// ratios.
///
/// # Errors
/// A cluster, Argo CD or mip that fails, or a platform that never becomes Healthy.
pub fn run(options: &Options) -> anyhow::Result<String> {
    let mut samples: Vec<(Way, Sample)> = Vec::new();
    for i in 0..options.repeat {
        for way in options.ways.iter().copied() {
            let s = one_run(options, way)?;
            crate::run::progress(&format!(
                "run {}: {}: bootstrap {:.1} s, add federation {:.1} s, upgrade {:.1} s",
                i + 1,
                way.name(),
                s.bootstrap,
                s.add_federation,
                s.upgrade
            ));
            samples.push((way, s));
        }
    }
    let median = |way: Way, pick: fn(&Sample) -> f64| {
        let v: Vec<f64> = samples.iter().filter(|(w, _)| *w == way).map(|(_, s)| pick(s)).collect();
        summarize(&v)
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| step | mip apply | scripted README procedure | Argo CD floor | script / mip | mip / floor |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let steps: [(&str, Pick); 3] = [
        ("empty cluster to every Application Healthy", |s| s.bootstrap),
        ("a federation added in Git, to its Applications Healthy", |s| s.add_federation),
        ("an app upgraded in one federation, to it Healthy on the new revision", |s| s.upgrade),
    ];
    for (label, pick) in steps {
        let cells: Vec<Option<crate::stats::Summary>> = Way::ALL.iter().map(|w| median(*w, pick)).collect();
        let cell = |s: &Option<crate::stats::Summary>| {
            s.as_ref()
                .map_or_else(|| "-".to_owned(), |s| format!("{:.1} s ({:.1}–{:.1})", s.median, s.min, s.max))
        };
        let ratio = |a: &Option<crate::stats::Summary>, b: &Option<crate::stats::Summary>| match (a, b) {
            (Some(a), Some(b)) if b.median > 0.0 => format!("{:.2}×", a.median / b.median),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} |",
            cell(&cells[0]),
            cell(&cells[1]),
            cell(&cells[2]),
            ratio(&cells[1], &cells[0]),
            ratio(&cells[0], &cells[2])
        );
    }
    let _ = writeln!(
        md,
        "\nMedian (min–max) of {} run(s) per way, each on its own cluster (real Argo CD, resync 180 s; kwok nodes; the leaf charts from local mirrors).",
        options.repeat
    );
    Ok(md)
}
