//! The whole platform with the real Argo CD controllers: every common app (the four built-in
//! ones and one the inventory defines), a local federation with every app plus one the
//! inventory defines, a second local federation and a hybrid one, all served from the local
//! Git repository. Every Application whose content is in that repository reaches Synced (the
//! tree is complete: no "app path does not exist"); then a canary upgrade of one federation's
//! app, made in the inventory only, is shown by `mip plan` as the one Application Argo CD will
//! move, and Argo CD moves it while the other federation stays.
//!
//! No network: Applications whose charts come from the internet (Exareme2, the MIP stack, the
//! data catalogue, and Submariner's Helm charts that its kustomizations pull) cannot be
//! fetched; the test checks that each of them fails for that reason and not for a missing path.

use crate::*;
use mip_test_support::{ArgoCd, ArgoCdOptions, TestCluster, TestClusterOptions};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(420);
const APPS: &str = "applications.argoproj.io";

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

/// The platform; `notebooks` (an app the inventory defines, read from the local repository at
/// a pinned commit) runs in federation-A at `pin_a` and federation-B at the definition's `rev`.
fn inventory(repo: &str, ns: &str, rev: Option<&str>, pin_a: Option<&str>) -> String {
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
upstreamRepos:
  - https://github.com/madgik/exareme2
  - https://github.com/HBPMedical/mip-deployment
  - https://github.com/madgik/datacatalog
credentials:
  keycloak:
    clientId: {{env: MIP_TEST_KC_ID}}
    clientSecret: {{env: MIP_TEST_KC_SECRET}}
apps:
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
      - name: exareme2
      - name: mip-stack
      - name: exareme2-overlay{a}
  - name: federation-B
    kind: local
    apps:
      - name: exareme2{b}
  - name: federation-Z
    kind: hybrid
    apps:
      - name: exareme2
",
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

fn sources(app: &Value) -> Vec<Value> {
    let spec = &app["spec"];
    let mut v: Vec<Value> = spec["sources"].as_array().cloned().unwrap_or_default();
    if spec["source"].is_object() {
        v.push(spec["source"].clone());
    }
    v
}

pub(crate) fn text(v: &Value, p: &str) -> String {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Applications whose content the local repository holds entirely (Submariner's kustomizations
/// pull their Helm charts from the internet).
fn local(app: &Value, repo: &str) -> bool {
    let name = text(app, "/metadata/name");
    let s = sources(app);
    !s.is_empty() && s.iter().all(|x| x["repoURL"] == repo) && !name.starts_with("submariner-")
}

/// Waits until every local Application is Synced and every name in `want` exists; returns all.
fn wait_synced(cluster: &TestCluster, argocd: &ArgoCd, repo: &str, want: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let all = items(cluster, APPS, cluster.argocd_namespace());
        let pending: Vec<String> = all
            .iter()
            .filter(|a| local(a, repo) && text(a, "/status/sync/status") != "Synced")
            .map(|a| {
                format!(
                    "{}: {} {}",
                    text(a, "/metadata/name"),
                    text(a, "/status/sync/status"),
                    text(a, "/status/conditions/0/message")
                )
            })
            .collect();
        let missing: Vec<&&str> =
            want.iter().filter(|w| !all.iter().any(|a| text(a, "/metadata/name") == **w)).collect();
        if pending.is_empty() && missing.is_empty() {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "after {TIMEOUT:?}: not synced {pending:#?}, missing {missing:?}\n{}",
            argocd.log_tails()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
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

#[test]
fn the_whole_platform_syncs_from_a_complete_tree_and_a_canary_upgrade_moves_one_federation() {
    let cluster = TestCluster::start(TestClusterOptions::default());
    let argocd = ArgoCd::start(&cluster, ArgoCdOptions::default());
    let ns = cluster.argocd_namespace().to_owned();
    let repo = argocd.repo_url();
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let tree = d.join("tree");

    // The notebooks' first version, at a commit the inventory then pins.
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, None, None)).expect("inventory");
    render(&cluster, d);
    write(&tree, "common/datacatalog/values.yaml", "{}\n");
    write(&tree, "apps/notebooks/settings.yaml", &notebooks_manifest("1"));
    let v1 = argocd.commit_tree(&tree, "notebooks v1");
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, Some(&v1), None)).expect("inventory");
    render(&cluster, d);
    let o = mip_on(&cluster, d, &["render", "tree", "--check", "-i", "mip.yaml"]);
    assert_eq!(code(&o), 0, "the tree is complete: {}\n{}", stdout(&o), stderr(&o));
    argocd.commit_tree(&tree, "the platform");

    let o = mip_on(
        &cluster,
        d,
        &["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "400", "--wait-for", "exists"],
    );
    assert_eq!(code(&o), 0, "mip apply: {}\n{}\n{}", stdout(&o), stderr(&o), argocd.log_tails());
    let want = [
        "netpol-federation-a-local",
        "netpol-federation-z-hybrid",
        "netpol-mip-common-datacatalog",
        "nginx-public-ingress",
        "federation-a-exareme2-overlay",
        "federation-a-notebooks",
        "federation-b-notebooks",
        "monitoring",
    ];
    let all = wait_synced(&cluster, &argocd, &repo, &want);
    let local_count = all.iter().filter(|a| local(a, &repo)).count();
    eprintln!("argocd platform: {local_count} of {} Applications are local and Synced", all.len());
    for a in &all {
        let message = text(a, "/status/conditions/0/message");
        assert!(!message.contains("does not exist"), "{}: {message}", text(a, "/metadata/name"));
    }
    // What the network policies chart rendered is in the federation's namespace.
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
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, Some(&v1), Some(&v2))).expect("inventory");
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
}
