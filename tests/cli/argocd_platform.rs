//! The whole platform **Healthy** on real Argo CD, as a site without internet runs it: every
//! common app (the four built-in ones and one the inventory defines), two local federations and a
//! hybrid one, the real leaf charts (Exareme2, the MIP stack, the data catalogue at mip-infra's
//! pins, Submariner's packaged charts) from `../shared/fixtures/upstream`, served by local mirrors
//! (Git repositories, and a static Helm repository for Submariner) that the inventory's
//! `mirrors:` maps the upstream URLs to, on simulated nodes that run pods (the workload tier).
//!
//! `mip apply` (default `--wait-for healthy`) returns 0 only once every Application is Synced
//! and Healthy; the test then asserts the exact set of Applications (the plan's, and their
//! number), each Synced and Healthy, named one by one if not. No Application is excluded. Then a
//! canary upgrade of one federation's app, made in the inventory only, is the one Application
//! the plan shows Argo CD moving, and Argo CD moves it while the other federation stays. Last, a
//! broken values file reference in one federation fails the next apply, naming that Application
//! and no other.

use crate::takeover::copy_tree;
use crate::*;
use mip_test_support::{ArgoCd, ArgoCdOptions, TestCluster, TestClusterOptions, WorkloadOptions};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(420);
const APPS: &str = "applications.argoproj.io";
const EXAREME2: &str = "https://github.com/madgik/exareme2";
const MIP_DEPLOYMENT: &str = "https://github.com/HBPMedical/mip-deployment";
const DATACATALOG: &str = "https://github.com/madgik/datacatalog";
const SUBMARINER_CHARTS: &str = "https://submariner-io.github.io/submariner-charts/charts";
/// The version of the packaged Submariner charts in the fixtures (mip-infra pins 0.21.0).
const SUBMARINER_VERSION: &str = "0.18.1";
/// The Applications Argo CD generates from this tree (the plan lists the same; see below).
const APPLICATIONS: usize = 35;

/// `mip` against `cluster` in `dir` (no terminal; the test Keycloak client in the env).
pub(crate) fn mip_on(cluster: &TestCluster, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mip"))
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .env("NO_COLOR", "1")
        .env("MIP_TEST_KC_ID", "mip-client")
        .env("MIP_TEST_KC_SECRET", "CANARY-kc-secret-9f1e")
        .env_remove("MIP_INVENTORY")
        .stdin(Stdio::null())
        .output()
        .expect("mip runs")
}

/// The mirrors of the upstream sources (`(upstream, mirror URL, pin)`), and the Submariner
/// operator's kustomization for the served chart version (JSON; `None`: the catalogue's).
struct Mirrors {
    served: Vec<(&'static str, String, String)>,
    operator_kustomization: Option<String>,
}

impl Mirrors {
    fn pin(&self, upstream: &str) -> &str {
        self.served.iter().find(|(u, _, _)| *u == upstream).map(|(_, _, p)| p.as_str()).expect("mirrored")
    }
}

/// The operator's kustomization as a site on the served chart version writes it: the
/// catalogue's (as `mip render` wrote it), less the two Secret references of the Submariner
/// resource that the 0.18 CRD does not have (the API server would prune them, and Argo CD would
/// see it OutOfSync for ever; 0.21.0, mip-infra's pin and the catalogue's, has them).
fn operator_kustomization(tree: &Path) -> String {
    let text = std::fs::read_to_string(tree.join("common/submariner/operator/kustomization.yaml"))
        .expect("rendered");
    let mut doc: Value = serde_saphyr::from_str(&text).expect("yaml");
    let patches = doc["patches"].as_array_mut().expect("the catalogue's operator patches");
    let mut edited = 0;
    for p in patches.iter_mut() {
        if let Some(text) = p["patch"].as_str().filter(|t| t.contains("kind: Submariner")) {
            let kept: Vec<&str> = text.lines().filter(|l| !l.contains("Secret: ")).collect();
            p["patch"] = Value::String(kept.join("\n"));
            edited += 1;
        }
    }
    assert_eq!(edited, 1, "{doc}");
    assert!(!doc.to_string().contains("brokerK8sSecret"), "{doc}");
    doc["helmCharts"][0].as_object_mut().expect("chart").remove("version"); // the pin sets it
    Value::Array(vec![doc]).to_string()
}

/// The platform; `notebooks` (an app the inventory defines, read from the local repository at
/// a pinned commit) runs in federation-A at `pin_a` and federation-B at the definition's `rev`;
/// federation-B's Exareme2 reads `b_values`.
fn inventory(
    repo: &str,
    ns: &str,
    m: &Mirrors,
    rev: Option<&str>,
    pin_a: Option<&str>,
    b_values: &str,
) -> String {
    let operator = m
        .operator_kustomization
        .as_deref()
        .map_or_else(String::new, |docs| format!("\n    files: {{operator/kustomization.yaml: {docs}}}"));
    let notebooks_def = rev.map_or_else(String::new, |rev| {
        format!(
            "  notebooks:
    scope: federation
    description: Notebook settings, from a directory of the repository at a pinned commit
    applications:
      - wave: 3
        sources:
          - {{repoURL: {repo}, targetRevision: {rev}, path: apps/notebooks}}
        syncOptions: [CreateNamespace=true]
"
        )
    });
    let notebooks = |pin: Option<&str>| match (rev, pin) {
        (None, _) => String::new(),
        (Some(_), None) => "\n      - name: notebooks".to_owned(),
        (Some(_), Some(p)) => format!("\n      - {{name: notebooks, targetRevision: {p}}}"),
    };
    let mirrors: String = m
        .served
        .iter()
        .map(|(u, mirror, _)| format!("  - {{upstream: '{u}', mirror: '{mirror}'}}\n"))
        .collect();
    format!(
        "apiVersion: mip.ebrains.eu/v1alpha1
kind: Inventory
argocd:
  namespace: {ns}
revision: main
repositories:
  infra:
    url: {repo}
  deployments:
    url: {repo}
upstreamRepos: ['{EXAREME2}', '{MIP_DEPLOYMENT}', '{DATACATALOG}']
mirrors:
{mirrors}credentials:
  keycloak:
    clientId: {{env: MIP_TEST_KC_ID}}
    clientSecret: {{env: MIP_TEST_KC_SECRET}}
prerequisites:
  - file: rbac/nginx-public-rbac.yaml
  - file: rbac/submariner-rbac.yaml
apps:
  exareme2: {{targetRevision: {exareme2}}}
  mip-stack: {{targetRevision: {mip_stack}}}
  datacatalog: {{targetRevision: {datacatalog}}}
  submariner:
    targetRevision: {SUBMARINER_VERSION}{operator}
  monitoring:
    scope: common
    description: A common app of the inventory's own, its manifests rendered by mip
    namespace: observability
    applications:
      - name: monitoring
        project: mip-argo-project-common
        source: {{repo: infra, path: common/monitoring/manifests}}
        syncOptions: [CreateNamespace=true]
    files:
      manifests/kustomization.yaml:
        - {{apiVersion: kustomize.config.k8s.io/v1beta1, kind: Kustomization, resources: [settings.yaml]}}
      manifests/settings.yaml:
        - {{apiVersion: v1, kind: ConfigMap, metadata: {{name: monitoring-settings}}, data: {{scrape: 30s}}}}
{notebooks_def}commonApps:
  - name: datacatalog
  - name: nginx-ingress
  - name: security
  - name: submariner
  - name: monitoring
federations:
  - name: federation-A
    kind: local
    apps:
      - {{name: exareme2, values: [exareme2-values.yaml]}}
      - {{name: mip-stack, values: [mip-stack-values.yaml]}}
      - name: exareme2-overlay{a}
  - name: federation-B
    kind: local
    apps:
      - {{name: exareme2, values: [{b_values}]}}{b}
  - name: federation-Z
    kind: hybrid
    apps:
      - {{name: exareme2, values: [exareme2-values.yaml]}}
",
        exareme2 = m.pin(EXAREME2),
        mip_stack = m.pin(MIP_DEPLOYMENT),
        datacatalog = m.pin(DATACATALOG),
        a = notebooks(pin_a),
        b = notebooks(None),
    )
}

fn items(cluster: &TestCluster, kind: &str, ns: &str) -> Vec<Value> {
    let o = cluster.kubectl().args(["get", kind, "-n", ns, "-o", "json"]).output().expect("kubectl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list: Value = serde_json::from_slice(&o.stdout).expect("json");
    list["items"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn text(v: &Value, p: &str) -> String {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn notebooks_manifest(version: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notebooks\ndata:\n  version: '{version}'\n")
}

fn render(cluster: &TestCluster, d: &Path) {
    let o = mip_on(cluster, d, &["render", "tree", "-i", "mip.yaml"]);
    assert_eq!(code(&o), 0, "mip render: {}", stderr(&o));
}

fn configmap_version(cluster: &TestCluster, ns: &str) -> String {
    let o = cluster
        .kubectl()
        .args(["get", "configmap", "-n", ns, "notebooks", "-o", "json"])
        .output()
        .expect("kubectl");
    if !o.status.success() {
        return String::new();
    }
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    text(&v, "/data/version")
}

/// Serves each fixture chart as its mirror: a Git repository holding the chart at the path the
/// definition reads (`kubernetes/`), and the packaged Submariner charts as a Helm repository.
fn serve_mirrors(argocd: &ArgoCd, d: &Path) -> Mirrors {
    let fixtures = root().join("../shared/fixtures/upstream");
    let mut out = Vec::new();
    for (upstream, name, dir) in [
        (EXAREME2, "exareme2", "exareme2/kubernetes"),
        (MIP_DEPLOYMENT, "mip-deployment", "mip-deployment/kubernetes"),
        (DATACATALOG, "datacatalog", "datacatalog/kubernetes"),
    ] {
        let chart = fixtures.join(dir);
        assert!(chart.join("Chart.yaml").is_file(), "the fixture chart is missing at {}", chart.display());
        let tree = d.join("upstream").join(name);
        std::fs::create_dir_all(tree.join("kubernetes")).expect("mkdir");
        copy_tree(&chart, &tree.join("kubernetes"));
        let (url, sha) = argocd.serve_repo(name, &tree, &format!("{name} at mip-infra's pin"));
        out.push((upstream, url, sha));
    }
    let charts = argocd.serve_helm_repo("submariner-charts", &fixtures.join("submariner-charts/charts"));
    out.push((SUBMARINER_CHARTS, charts, SUBMARINER_VERSION.to_owned()));
    Mirrors { served: out, operator_kustomization: None }
}

/// The Submariner operator chart's cluster-wide RBAC, as an administrator applies it before
/// Argo CD deploys the chart (mip-infra's `submariner-rbac.yaml`): the charts' namespaces and
/// the operator chart's own ClusterRoles and ClusterRoleBindings, rendered by the tier's `helm`.
fn submariner_cluster_rbac(argocd: &ArgoCd) -> String {
    let chart = root().join(format!(
        "../shared/fixtures/upstream/submariner-charts/charts/submariner-operator-{SUBMARINER_VERSION}.tgz"
    ));
    let o = Command::new(argocd.bin_dir().join("helm"))
        .args(["template", "submariner-operator"])
        .arg(&chart)
        .args(["--namespace", "submariner-operator"])
        .output()
        .expect("helm");
    assert!(o.status.success(), "helm template: {}", String::from_utf8_lossy(&o.stderr));
    let all = String::from_utf8_lossy(&o.stdout).into_owned();
    let docs: Vec<&str> = all
        .split("\n---")
        .filter(|d| d.contains("\nkind: ClusterRole\n") || d.contains("\nkind: ClusterRoleBinding\n"))
        .collect();
    assert!(docs.len() >= 2, "the operator chart has cluster RBAC: {all}");
    // As mip-infra's file, it also creates the two namespaces: the Submariner project may not.
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
    out
}

/// Every Application in the Argo CD namespace that is not Synced and Healthy, with why.
fn not_healthy(apps: &[Value]) -> Vec<String> {
    apps.iter()
        .filter(|a| {
            text(a, "/status/sync/status") != "Synced" || text(a, "/status/health/status") != "Healthy"
        })
        .map(|a| {
            format!(
                "{}: {} {} {}",
                text(a, "/metadata/name"),
                text(a, "/status/sync/status"),
                text(a, "/status/health/status"),
                text(a, "/status/conditions/0/message")
            )
        })
        .collect()
}

#[test]
fn the_whole_platform_is_healthy_from_mirrors_and_a_canary_upgrade_moves_one_federation() {
    let cluster = TestCluster::start(TestClusterOptions {
        workloads: Some(WorkloadOptions::default()),
        ..Default::default()
    });
    let argocd = ArgoCd::start(&cluster, ArgoCdOptions::default());
    let ns = cluster.argocd_namespace().to_owned();
    let repo = argocd.repo_url();
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let tree = d.join("tree");
    let mut mirrors = serve_mirrors(&argocd, d);
    let b_values = "exareme2-values.yaml";
    write(
        d,
        "rbac/nginx-public-rbac.yaml",
        &std::fs::read_to_string(root().join("examples/mip-infra/rbac/nginx-public-rbac.yaml"))
            .expect("rbac"),
    );
    write(d, "rbac/submariner-rbac.yaml", &submariner_cluster_rbac(&argocd));

    // The values files of mip-infra's own federations and data catalogue, as the upstream tree
    // has them (federation-B is a second local federation: federation-A's, in its namespace).
    let real = root().join("../shared/reference/mip-infra");
    let values = |rel: &str| std::fs::read_to_string(real.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let (a, z) = (
        "deployments/local/federations/federation-A",
        "deployments/hybrid/federations/federation-Z/mip-infrastructure",
    );
    for app in ["exareme2", "mip-stack"] {
        write(
            &tree,
            &format!("{a}/{app}-values.yaml"),
            &values(&format!("{a}/customizations/{app}-values.yaml")),
        );
    }
    write(
        &tree,
        "deployments/local/federations/federation-B/exareme2-values.yaml",
        &values(&format!("{a}/customizations/exareme2-values.yaml")).replace("federation-a", "federation-b"),
    );
    write(
        &tree,
        &format!("{z}/exareme2-values.yaml"),
        &values(&format!("{z}/customizations/exareme2-values.yaml")),
    );
    write(&tree, "common/datacatalog/values.yaml", &values("common/datacatalog/values.yaml"));

    // The notebooks' first version, at a commit the inventory then pins.
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, &mirrors, None, None, b_values))
        .expect("inventory");
    render(&cluster, d);
    mirrors.operator_kustomization = Some(operator_kustomization(&tree));
    write(&tree, "apps/notebooks/settings.yaml", &notebooks_manifest("1"));
    let v1 = argocd.commit_tree(&tree, "notebooks v1");
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, &mirrors, Some(&v1), None, b_values))
        .expect("inventory");
    render(&cluster, d);
    let o = mip_on(&cluster, d, &["render", "tree", "--check", "-i", "mip.yaml"]);
    assert_eq!(code(&o), 0, "the tree is complete: {}\n{}", stdout(&o), stderr(&o));
    let o = mip_on(&cluster, d, &["validate", "-i", "mip.yaml", "--tree", "tree"]);
    assert_eq!(code(&o), 0, "the inventory and its tree validate: {}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "no mirror is unused, nothing is missing: {}", stderr(&o));
    argocd.commit_tree(&tree, "the platform");

    // The plan names what Argo CD will generate: those Applications, and no other, must exist.
    let o = mip_on(&cluster, d, &["plan", "-i", "mip.yaml", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan: Value = serde_json::from_str(&stdout(&o)).expect("plan json");
    let applications = |list: &str| -> Vec<String> {
        plan[list]
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| text(e, "/address").contains("/Application/"))
            .map(|e| text(e, "/address").rsplit('/').next().unwrap_or_default().to_owned())
            .collect()
    };
    let mut expected = applications("expected");
    expected.extend(applications("changes"));
    expected.sort();
    for app in [
        "federation-a-exareme2",
        "federation-a-mip-stack",
        "federation-a-exareme2-overlay",
        "federation-b-exareme2",
        "federation-z-exareme2",
        "datacatalog",
        "nginx-public-ingress",
        "submariner-broker",
        "submariner-operator",
        "netpol-federation-z-hybrid",
        "netpol-mip-common-datacatalog",
        "monitoring",
    ] {
        assert!(expected.iter().any(|e| e == app), "the plan expects `{app}`: {expected:#?}");
    }
    assert_eq!(expected.len(), APPLICATIONS, "{expected:#?}");

    let started = Instant::now();
    let o = mip_on(&cluster, d, &["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "600"]);
    assert_eq!(
        code(&o),
        0,
        "mip apply (--wait-for healthy): {}\n{}\n{}",
        stdout(&o),
        stderr(&o),
        argocd.log_tails()
    );
    eprintln!(
        "argocd platform: {APPLICATIONS} Applications Healthy {:?} after apply started",
        started.elapsed()
    );

    // Every Application: exactly the plan's, each Synced and Healthy, named one by one if not.
    let apps = items(&cluster, APPS, &ns);
    let mut names: Vec<String> = apps.iter().map(|a| text(a, "/metadata/name")).collect();
    names.sort();
    assert_eq!(names, expected, "Argo CD generated exactly the Applications the plan named");
    let unhealthy = not_healthy(&apps);
    assert!(unhealthy.is_empty(), "not Synced and Healthy: {unhealthy:#?}");
    // The leaf charts' workloads run in their namespaces (Argo CD 3 keeps per-resource health
    // out of the status, so they are read from the cluster), on the nodes they select.
    for namespace in [
        "federation-a",
        "federation-b",
        "federation-z",
        "mip-common-datacatalog",
        "ingress-nginx",
        "submariner-operator",
    ] {
        for kind in ["deployments", "statefulsets"] {
            for w in items(&cluster, kind, namespace) {
                let want = w["spec"]["replicas"].as_u64().unwrap_or(1);
                let ready = w["status"]["readyReplicas"].as_u64().unwrap_or(0);
                assert_eq!(ready, want, "{namespace}/{kind}/{} ready", text(&w, "/metadata/name"));
            }
        }
    }
    assert!(!items(&cluster, "deployments", "federation-a").is_empty(), "the MIP stack runs");
    assert!(!items(&cluster, "deployments", "mip-common-datacatalog").is_empty(), "the data catalogue runs");
    let operator = items(&cluster, "deployments", "submariner-operator");
    assert!(operator.iter().any(|w| text(w, "/metadata/name") == "submariner-operator"), "{operator:#?}");
    // The chart's cluster RBAC came from the prerequisite, not from Argo CD.
    let o = cluster
        .kubectl()
        .args(["get", "clusterrole", "submariner-operator", "-o", "json"])
        .output()
        .expect("kubectl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let role: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        !text(&role, "/metadata/labels/app.kubernetes.io~1instance").contains("submariner"),
        "Argo CD does not own it: {role}"
    );
    let policies = items(&cluster, "networkpolicies", "federation-a");
    assert!(
        policies.iter().any(|p| text(p, "/metadata/name") == "federation-namespace-isolation"),
        "{policies:?}"
    );
    assert_eq!(configmap_version(&cluster, "federation-a"), "1");
    assert_eq!(configmap_version(&cluster, "federation-b"), "1");
    // Nothing to do, and nothing Argo CD would change: the models match what Argo CD generated.
    let o = mip_on(&cluster, d, &["plan", "-i", "mip.yaml", "--detailed-exitcode"]);
    assert_eq!(code(&o), 0, "plan after apply: {}\n{}", stdout(&o), stderr(&o));

    // The canary: a new version in Git, pinned for federation-A only, in the inventory.
    write(&tree, "apps/notebooks/settings.yaml", &notebooks_manifest("2"));
    let v2 = argocd.commit_tree(&tree, "notebooks v2");
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, &mirrors, Some(&v1), Some(&v2), b_values))
        .expect("inventory");
    let o = mip_on(&cluster, d, &["plan", "-i", "mip.yaml", "--detailed-exitcode"]);
    assert_eq!(code(&o), 2, "the plan shows what Argo CD will move: {}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("~ argoproj.io/v1alpha1/Application/") && out.contains("/federation-a-notebooks"),
        "{out}"
    );
    let line = |sign: char, rev: &str| {
        out.lines().any(|l| {
            l.trim_start().starts_with(sign) && l.contains(&format!("\"targetRevision\": \"{rev}\""))
        })
    };
    assert!(line('-', &v1) && line('+', &v2), "{out}");
    assert!(
        !out.contains(&format!("~ argoproj.io/v1alpha1/Application/{ns}/federation-b-notebooks")),
        "{out}"
    );
    assert!(out.contains("Argo CD will create 0, change 1 and delete 0"), "{out}");
    let o = mip_on(&cluster, d, &["render", "tree", "--check", "-i", "mip.yaml"]);
    assert_eq!(code(&o), 1, "render --check fails until the tree is re-rendered");
    assert!(
        stdout(&o).contains("deployments/local/federations/federation-A/kustomization.yaml"),
        "{}",
        stdout(&o)
    );
    render(&cluster, d);
    argocd.commit_tree(&tree, "federation-A on notebooks v2");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let apps = items(&cluster, APPS, &ns);
        let rev = |name: &str| {
            apps.iter()
                .find(|a| text(a, "/metadata/name") == name)
                .map(|a| (text(a, "/spec/sources/0/targetRevision"), text(a, "/status/sync/status")))
                .unwrap_or_default()
        };
        let (a, b) = (rev("federation-a-notebooks"), rev("federation-b-notebooks"));
        if a == (v2.clone(), "Synced".to_owned()) && configmap_version(&cluster, "federation-a") == "2" {
            assert_eq!(b.0, v1, "federation-B stays on the first version");
            break;
        }
        assert!(Instant::now() < deadline, "federation-A never moved: {a:?} {b:?}\n{}", argocd.log_tails());
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(configmap_version(&cluster, "federation-b"), "1");
    let o = mip_on(&cluster, d, &["plan", "-i", "mip.yaml", "--detailed-exitcode"]);
    assert_eq!(code(&o), 0, "plan after the upgrade: {}\n{}", stdout(&o), stderr(&o));

    // Negative: federation-B's Exareme2 reads a values file the tree does not have. Argo CD
    // cannot render that Application; the next apply fails naming it, and only it.
    std::fs::write(
        d.join("mip.yaml"),
        inventory(&repo, &ns, &mirrors, Some(&v1), Some(&v2), "no-such-values.yaml"),
    )
    .expect("inventory");
    let o = mip_on(&cluster, d, &["render", "tree", "-i", "mip.yaml"]);
    assert_eq!(code(&o), 0, "render only warns of a missing file: {}", stderr(&o));
    argocd.commit_tree(&tree, "a broken values reference in federation-B");
    let deadline = Instant::now() + TIMEOUT;
    while !not_healthy(&items(&cluster, APPS, &ns)).iter().any(|a| a.contains("no-such-values.yaml")) {
        assert!(Instant::now() < deadline, "Argo CD never reported the missing file\n{}", argocd.log_tails());
        std::thread::sleep(Duration::from_secs(2));
    }
    let o = mip_on(&cluster, d, &["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "60"]);
    assert_eq!(code(&o), 5, "{}\n{}", stdout(&o), stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("federation-b-exareme2"), "the failure names the Application: {all}");
    let apps = items(&cluster, APPS, &ns);
    let unhealthy = not_healthy(&apps);
    assert!(
        unhealthy.len() == 1
            && unhealthy[0].starts_with("federation-b-exareme2:")
            && unhealthy[0].contains("no-such-values.yaml"),
        "only federation-B's Exareme2 is broken, for its values file: {unhealthy:#?}"
    );
}
