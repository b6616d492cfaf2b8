//! The live engine end to end, against the real test cluster (etcd + kube-apiserver +
//! kube-controller-manager with Argo CD's CRDs): plan, apply, idempotence, drift, adoption of
//! the `default` project, conflicts, stale and tampered plans, the state lock, destroy, and a
//! canary proving that no secret value reaches any output or artifact.

use crate::*;
use mip_test_support::TestCluster;
use mip_test_support::inventory::MIP_DEPLOYMENT;
use std::path::Path;

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) inv: String,
    pub(crate) state: String,
    pub(crate) argocd: String,
    pub(crate) fed: String,
}

/// The Keycloak client's id and secret: canaries, long and unique (what the leak checks look for).
pub(crate) const CLIENT_ID: &str = "CANARY-client-id-7d1c4a90e2b35f6817c0d9ae42b6f3c5";
pub(crate) const CLIENT_SECRET: &str = "CANARY-client-secret-93fe0b7a5c1d24e8f6a9b3c70d5e1f28";

pub(crate) fn setup(tag: &str) -> Env {
    let cluster = TestCluster::shared();
    let argocd = cluster.fresh_namespace_blocking(&format!("argocd-{tag}"));
    let fed = format!("fed-{tag}-{}", &argocd[argocd.len() - 4..]);
    let dir = tempfile::tempdir().expect("tmp");
    // The context guard test edits its `argocd: {namespace: …}` line as text; others append
    // federations.
    let inv = Inventory::new(&argocd)
        .upstream(MIP_DEPLOYMENT)
        .keycloak(Secret::env("MIP_TEST_KC_ID"), Secret::file("kc-secret"))
        .federation(Federation::local(&fed).apps(&["exareme2", "mip-stack"]))
        .to_yaml();
    std::fs::write(dir.path().join("mip.yaml"), inv).expect("w");
    std::fs::write(dir.path().join("kc-secret"), CLIENT_SECRET).expect("w");
    let state = dir.path().join("state").display().to_string();
    let inv = dir.path().join("mip.yaml").display().to_string();
    Env { dir, inv, state, argocd, fed }
}

impl Env {
    /// `mip` in the test's directory against the shared cluster, the client id in the
    /// environment; no inventory or state flags.
    pub(crate) fn mip(&self) -> Mip {
        mip_on(TestCluster::shared(), self.dir.path()).env("MIP_TEST_KC_ID", CLIENT_ID)
    }

    /// [`Env::mip`] with `args`, the test's inventory (but for `mip state …`) and its state
    /// directory.
    pub(crate) fn mip_args(&self, args: &[&str]) -> Mip {
        let mip = self.mip().args(args).state_dir(&self.state);
        if args.first() == Some(&"state") { mip } else { mip.inventory(&self.inv) }
    }
}

pub(crate) fn run(e: &Env, args: &[&str]) -> Output {
    run_env(e, args, &[])
}

pub(crate) fn run_env(e: &Env, args: &[&str], extra: &[(&str, &str)]) -> Output {
    e.mip_args(args).envs(extra).run()
}

pub(crate) fn kubectl(args: &[&str]) -> Output {
    TestCluster::shared().kubectl_run(args)
}

/// Plays the part of Argo CD's application controller for deleted Applications while `f` runs:
/// an Application being deleted loses its resources finalizer (the real controller removes it
/// once it has deleted what the Application manages; the test cluster runs no Argo CD).
pub(crate) fn with_argo_finalizers<T>(ns: &str, f: impl FnOnce() -> T) -> T {
    with_argo_finalizers_except(ns, None, f)
}

/// [`with_argo_finalizers`], but the Application `keep` keeps its finalizer (as if Argo CD
/// could not delete what it deployed).
pub(crate) fn with_argo_finalizers_except<T>(ns: &str, keep: Option<&str>, f: impl FnOnce() -> T) -> T {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let o = kubectl(&["get", "applications", "-n", ns, "-o", "json"]);
                let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
                for app in list["items"].as_array().cloned().unwrap_or_default() {
                    if app["metadata"]["deletionTimestamp"].is_string() {
                        let name = app["metadata"]["name"].as_str().unwrap_or_default();
                        if keep == Some(name) {
                            continue;
                        }
                        let patch = r#"{"metadata": {"finalizers": null}}"#;
                        kubectl(&["patch", "application", name, "-n", ns, "--type", "merge", "-p", patch]);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        // Stops the helper however `f` ends (a failed assertion in it included), so the scope
        // can join it.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _stop = Stop(&done);
        f()
    })
}

/// `kubectl apply --server-side` of `manifest` as field manager `manager`.
pub(crate) fn kubectl_apply(manifest: &str, manager: &str) {
    TestCluster::shared().kubectl_apply(
        manifest,
        &["--server-side", "--force-conflicts", &format!("--field-manager={manager}")],
    );
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

pub(crate) fn secret_values(ns: &str, name: &str) -> Vec<String> {
    let o = kubectl(&["get", "secret", "-n", ns, name, "-o", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    v["data"].as_object().expect("data").values().map(|b| decode(b.as_str().expect("str"))).collect()
}

fn decode(b64: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")).expect("utf8")
}

/// The canaries of a `setup` environment once applied: every value of the Secrets mip made in
/// the federation's namespace (generated, and the Keycloak client from env and file), and the
/// client's id and secret as given.
pub(crate) fn canaries(e: &Env) -> Vec<Canary> {
    let mut c = secret_canaries(TestCluster::shared().kubectl(), &e.fed, "mip-secret", "generated");
    assert_eq!(c.len(), 10, "mip-secret's keys");
    c.extend(secret_canaries(TestCluster::shared().kubectl(), &e.fed, "keycloak-credentials", "sourced"));
    c.extend([
        Canary::new("the Keycloak client id (env)", CLIENT_ID),
        Canary::new("the Keycloak client secret (file)", CLIENT_SECRET),
    ]);
    c
}

#[test]
fn bootstrap_is_ordered_idempotent_and_leaks_nothing() {
    let e = setup("boot");
    // Every run's stdout and stderr, and every file mip writes, for the canary at the end.
    let mut art = Artifacts::default();

    // The argocd-server-created `default` project exists, owned by another manager.
    kubectl_apply(
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {{name: default, namespace: {}}}\nspec:\n  sourceRepos: ['*']\n  destinations: [{{server: '*', namespace: '*'}}]\n  clusterResourceWhitelist: [{{group: '*', kind: '*'}}]\n",
            e.argocd
        ),
        "argocd-server",
    );

    let plan = run(&e, &["plan", "--detailed-exitcode", "--output", "json"]);
    art.keep("plan", &plan);
    assert_eq!(code(&plan), 2, "{}", stderr(&plan));
    let p = json(&plan);
    crate::schema::assert_schema("plan", &p);
    assert_eq!(p["mode"], "live");
    let default = p["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| {
            c["address"].as_str().is_some_and(|a| a.ends_with(&format!("/AppProject/{}/default", e.argocd)))
        })
        .expect("default");
    assert_eq!(default["action"], "update");
    assert!(default["reason"].as_str().expect("r").contains("adopt"), "{default}");

    let plan_file = e.dir.path().join("plan.mip").display().to_string();
    let o = run(&e, &["plan", "--out", &plan_file, "-vvv"]);
    art.keep("plan --out -vvv", &o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o =
        run(&e, &["apply", &plan_file, "--auto-approve", "--wait-timeout", "0", "-vvv", "--output", "json"]);
    art.keep("apply -vvv --output json", &o);
    assert_eq!(code(&o), 0, "apply failed: {}", stderr(&o));
    // Every progress line matches the published schema; the outcome comes last.
    let events = crate::schema::assert_schema_lines("progress-event", &stdout(&o));
    assert!(events.iter().any(|ev| ev["event"] == "done"), "{}", stdout(&o));
    assert_eq!(events.last().map(|ev| ev["event"].clone()), Some("outcome".into()), "{}", stdout(&o));

    // Locked down by blacklist, the other manager's whitelist left alone.
    let proj = json(&kubectl(&["get", "appproject", "-n", &e.argocd, "default", "-o", "json"]));
    assert_eq!(proj["spec"]["sourceRepos"], serde_json::json!([]));
    assert_eq!(proj["spec"]["namespaceResourceBlacklist"][0]["kind"], "*");
    // Secrets: generated values are 24 alphanumerics; sourced ones come from env and file.
    let all = secret_values(&e.fed, "mip-secret");
    assert_eq!(all.len(), 10);
    // Every key generated, user names included, as the mip-infra README's gen_secrets.sh does.
    assert!(
        all.iter().all(|v| v.len() == 24 && v.chars().all(|c| c.is_ascii_alphanumeric())),
        "{}",
        all.len()
    );
    let kc = secret_values(&e.fed, "keycloak-credentials");
    assert!(kc.contains(&CLIENT_ID.to_owned()) && kc.contains(&CLIENT_SECRET.to_owned()));
    let root = kubectl(&["get", "application", "-n", &e.argocd, "main-infra-clusterset"]);
    assert!(root.status.success());

    // A saved plan applies once: the state moved on.
    let again = run(&e, &["apply", &plan_file, "--auto-approve", "--wait-timeout", "0"]);
    art.keep("apply again", &again);
    assert_eq!(code(&again), 4, "{}", stderr(&again));
    assert!(stderr(&again).contains("stale"), "{}", stderr(&again));

    // Idempotent: nothing to do, and generated secrets keep their values.
    let replan = run(&e, &["plan", "--detailed-exitcode", "-vvv"]);
    art.keep("replan -vvv", &replan);
    assert_eq!(code(&replan), 0, "re-plan is not empty:\n{}\n{}", stdout(&replan), stderr(&replan));
    let noop = run_env(&e, &["apply", "--auto-approve", "--wait-timeout", "0"], &[("MIP_STATS", "1")]);
    art.keep("no-op apply", &noop);
    assert_eq!(code(&noop), 0, "{}", stderr(&noop));
    assert!(stderr(&noop).contains("No changes"), "{}", stderr(&noop));
    assert!(
        stderr(&noop).contains(", 0 writes (0 dry runs)"),
        "a no-op apply must not write: {}",
        stderr(&noop)
    );
    assert_eq!(secret_values(&e.fed, "mip-secret"), all, "generated values must survive a re-apply");
    // Without Argo CD's controllers the generated objects are missing: that is drift (exit 2)
    // with no mip-owned change. Once "Argo CD" (here: the test, as manager argocd-controller)
    // creates them, drift is clean and an apply's gate releases.
    let drift = run(&e, &["drift", "--output", "json", "-vvv"]);
    art.keep("drift -o json -vvv (Argo CD's side missing)", &drift);
    assert_eq!(code(&drift), 2, "{}", stderr(&drift));
    let dj = json(&drift);
    crate::schema::assert_schema("drift", &dj);
    assert_eq!(dj["changes"], serde_json::json!([]), "{dj}");
    let missing: Vec<String> = dj["missing"]
        .as_array()
        .expect("missing")
        .iter()
        .map(|m| m.as_str().expect("s").to_owned())
        .collect();
    assert!(missing.len() > 10, "{missing:?}");
    let creator = {
        let missing = missing.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            for m in &missing {
                fake_argo_object(m);
            }
        })
    };
    let gated = run(
        &e,
        &[
            "apply",
            "--auto-approve",
            "--wait-timeout",
            "60s",
            "--wait-for",
            "exists",
            "-vv",
            "--output",
            "json",
        ],
    );
    creator.join().expect("creator");
    art.keep("gated apply -vv --output json", &gated);
    assert_eq!(code(&gated), 0, "the gate did not release: {}", stderr(&gated));
    // Readiness changes and the final wait as JSON lines, each matching the schema.
    let events = crate::schema::assert_schema_lines("progress-event", &stdout(&gated));
    assert!(
        events.iter().any(|ev| ev["event"] == "waiting" && ev["not_ready"] == 0),
        "everything Argo CD reconciles is ready: {}",
        stdout(&gated)
    );
    // The objects this test created in Argo CD's place carry no real spec: Argo CD's side
    // differs (one finding per object, never a mip-owned change); mip's side is clean.
    let argo_side =
        run_env(&e, &["drift", "--output", "json", "--log-format", "json"], &[("RUST_LOG", "trace")]);
    art.keep("drift -o json, RUST_LOG=trace in JSON (Argo CD's side differs)", &argo_side);
    assert_eq!(code(&argo_side), 2, "{}", stderr(&argo_side));
    let aj = json(&argo_side);
    crate::schema::assert_schema("drift", &aj);
    assert_eq!(aj["changes"], serde_json::json!([]), "{aj}");
    assert!(aj["argo"].as_array().expect("argo").iter().all(|a| a["kind"] == "spec-differs"), "{aj}");
    let drift = run(&e, &["drift", "--mip-only", "-vvv"]);
    art.keep("drift --mip-only -vvv", &drift);
    assert_eq!(code(&drift), 0, "{}", stdout(&drift));

    // Argo CD reports a generated Application Degraded at the revision it tracks: drift names
    // it on Argo CD's side (exit 2), doctor explains it with the unhealthy resource.
    let leaf = format!("{}-exareme2", e.fed);
    let app: serde_json::Value = serde_json::from_slice(
        &kubectl(&["get", "application", "-n", &e.argocd, &leaf, "-o", "json"]).stdout,
    )
    .expect("the Application");
    let status = serde_json::json!({"status": {
        "sync": {"status": "OutOfSync", "comparedTo": {"source": app["spec"]["source"],
                 "destination": app["spec"]["destination"]}},
        "health": {"status": "Degraded"},
        "resources": [{"kind": "StatefulSet", "name": "exareme2-worker", "health": {"status": "Degraded", "message": "0/1 ready"}}]}});
    let patched = kubectl(&[
        "patch",
        "application",
        &leaf,
        "-n",
        &e.argocd,
        "--type",
        "merge",
        "-p",
        &status.to_string(),
    ]);
    assert!(patched.status.success(), "{}", String::from_utf8_lossy(&patched.stderr));
    let d = run(&e, &["drift", "--output", "json", "-vvv"]);
    art.keep("drift -o json -vvv (degraded)", &d);
    assert_eq!(code(&d), 2, "{}", stderr(&d));
    let kinds: Vec<String> = json(&d)["argo"]
        .as_array()
        .expect("argo")
        .iter()
        .filter(|a| a["address"].as_str().is_some_and(|x| x.ends_with(&format!("/{leaf}"))))
        .map(|a| a["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(kinds.contains(&"degraded".to_owned()) && kinds.contains(&"out-of-sync".to_owned()), "{kinds:?}");
    assert_eq!(code(&run(&e, &["drift", "--mip-only"])), 0, "--mip-only leaves Argo CD's side out");
    for (what, args) in [
        ("drift -vvv", &["drift", "-vvv"][..]),
        (
            "drift -o prometheus -vv --log-format json",
            &["drift", "-o", "prometheus", "-vv", "--log-format", "json"],
        ),
        ("doctor -o json -vvv", &["doctor", "-o", "json", "-vvv"]),
    ] {
        let o = run(&e, args);
        art.keep(what, &o);
        assert_eq!(code(&o), 2, "{what}: {}{}", stdout(&o), stderr(&o));
    }
    let doc = run(&e, &["doctor", "-vvv"]);
    art.keep("doctor -vvv", &doc);
    assert_eq!(code(&doc), 2, "{}", stdout(&doc));
    assert!(
        stdout(&doc).contains("[degraded]")
            && stdout(&doc).contains("StatefulSet/exareme2-worker (0/1 ready)"),
        "{}",
        stdout(&doc)
    );

    // State lists what mip manages.
    let st = run(&e, &["state", "list", "--output", "json"]);
    art.keep("state", &st);
    let s = json(&st);
    crate::schema::assert_schema("state-list", &s);
    assert!(s["serial"].as_u64().expect("serial") > 0);
    assert!(
        s["managed"]
            .as_array()
            .expect("m")
            .iter()
            .any(|m| m["address"] == format!("v1/Secret/{}/mip-secret", e.fed))
    );

    // What else reads the inventory, the plan or the state: the plan in the other formats, the
    // saved plan shown, what the state holds for each Secret, the history; the tree rendered
    // (files and output) and imported back.
    let plan_path = Path::new(&plan_file);
    for (what, args) in [
        ("plan -o markdown -vvv", vec!["plan", "-o", "markdown", "-vvv"]),
        ("show -o json -vvv", vec!["show", &plan_file, "-o", "json", "-vvv"]),
        ("show -o markdown", vec!["show", &plan_file, "-o", "markdown"]),
        ("show", vec!["show", &plan_file]),
    ] {
        let o = if args[0] == "show" { e.mip().args(&args).run() } else { run(&e, &args) };
        art.keep(what, &o);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
    }
    for name in ["mip-secret", "keycloak-credentials"] {
        let addr = format!("v1/Secret/{}/{name}", e.fed);
        let o = run(&e, &["state", "show", &addr, "-i", &e.inv, "-vvv"]);
        art.keep(&format!("state show {addr} -vvv"), &o);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        crate::schema::assert_schema("state-entry", &json(&o));
    }
    let tree = e.dir.path().join("tree");
    let tree_s = tree.display().to_string();
    let rendered = e.mip().args(["render", &tree_s, "-i", &e.inv, "-vvv"]).run();
    art.keep("render -vvv", &rendered);
    assert_eq!(code(&rendered), 0, "{}", stderr(&rendered));
    art.dir("rendered tree", &tree);
    let imported_file = e.dir.path().join("imported.yaml");
    let imported_s = imported_file.display().to_string();
    let imported = e.mip().args(["import", &tree_s, "-vvv"]).run();
    art.keep("import -vvv", &imported);
    assert_eq!(code(&imported), 0, "{}", stderr(&imported));
    let o = e.mip().args(["import", &tree_s, "--out", &imported_s, "--log-format", "json", "-vvv"]).run();
    art.keep("import -o FILE", &o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    art.file("imported inventory", &imported_file);
    art.file("plan file", plan_path);
    art.dir("state store before destroy", Path::new(&e.state));
    let secrets = canaries(&e);
    assert_eq!(
        secrets
            .iter()
            .filter(|c| c.what.starts_with("generated"))
            .map(|c| c.value.clone())
            .collect::<Vec<_>>(),
        all
    );

    // Destroy removes what mip made (the namespace goes, with its secrets) and forgets `default`.
    let d = with_argo_finalizers(&e.argocd, || run(&e, &["destroy", "--auto-approve", "-vvv"]));
    art.keep("destroy -vvv", &d);
    assert_eq!(code(&d), 0, "{}", stderr(&d));
    let gone = kubectl(&["get", "application", "-n", &e.argocd, "main-infra-clusterset"]);
    assert!(!gone.status.success(), "root application still there");
    assert!(
        kubectl(&["get", "appproject", "-n", &e.argocd, "default"]).status.success(),
        "`default` must not be deleted"
    );
    // The history names each operation as it was: the applies, then the destroy.
    let h = run(&e, &["state", "history", "-vvv"]);
    art.keep("state history -vvv", &h);
    assert_eq!(code(&h), 0, "{}", stderr(&h));
    let history = stdout(&h);
    let ops: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(head, _)| {
            head.split_once(" serial ").map_or("", |(_, rest)| rest.split_once(' ').map_or("", |r| r.1))
        })
        .collect();
    assert_eq!(ops.last(), Some(&"destroy completed"), "{}", stdout(&h));
    assert!(ops.contains(&"apply completed"), "{}", stdout(&h));

    // Canary: no secret value, raw or base64, in any output, the plan file, the rendered tree,
    // the imported inventory, or the state store (before and after the destroy).
    art.dir("state store after destroy", Path::new(&e.state));
    art.assert_no_secret(&secrets);
}

#[test]
fn drift_conflicts_stale_plans_and_locks() {
    let e = setup("drift");
    let o = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // Someone loosens the bootstrap project with another tool: drift, exit 2, stable fingerprint.
    kubectl_apply(
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {{name: mip-argo-project-infrastructure, namespace: {}}}\nspec:\n  description: edited by hand\n",
            e.argocd
        ),
        "kubectl-edit",
    );
    let d1 = run(&e, &["drift", "--output", "json"]);
    assert_eq!(code(&d1), 2, "{}", stderr(&d1));
    let j1 = json(&d1);
    assert!(
        j1["changes"]
            .as_array()
            .expect("c")
            .iter()
            .any(|c| c["address"].as_str().is_some_and(|a| a.ends_with("mip-argo-project-infrastructure")))
    );
    let d2 = run(&e, &["drift", "--output", "json"]);
    assert_eq!(json(&d2)["fingerprint"], j1["fingerprint"], "drift fingerprint must be stable");

    // mip never forces over another manager: the conflict names it, the apply is partial.
    let a = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&a), 5, "{}", stderr(&a));
    assert!(stderr(&a).contains("kubectl-edit"), "conflict must name the other manager: {}", stderr(&a));

    // --force-conflicts is the opt-in that restores mip's value; then no drift.
    let f = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--force-conflicts"]);
    assert_eq!(code(&f), 0, "{}", stderr(&f));
    let proj = json(&kubectl(&[
        "get",
        "appproject",
        "-n",
        &e.argocd,
        "mip-argo-project-infrastructure",
        "-o",
        "json",
    ]));
    assert_ne!(proj["spec"]["description"], "edited by hand");
    assert_eq!(json(&run(&e, &["drift", "--output", "json"]))["changes"], serde_json::json!([]));

    // Another manager adding a field mip does not own is not drift.
    let o = kubectl(&[
        "annotate",
        "appproject",
        "-n",
        &e.argocd,
        "mip-argo-project-infrastructure",
        "team.example.org/owner=ops",
    ]);
    assert!(o.status.success());
    let o = kubectl(&["label", "namespace", &e.fed, "team.example.org/tier=gold"]);
    assert!(o.status.success());
    assert_eq!(
        json(&run(&e, &["drift", "--output", "json"]))["changes"],
        serde_json::json!([]),
        "a foreign field showed as drift"
    );

    // The store is lost: rebuild it from the cluster; the plan is still empty.
    std::fs::remove_dir_all(&e.state).expect("rm state");
    let rb = run(&e, &["state", "rebuild", "-i", &e.inv]);
    assert_eq!(code(&rb), 0, "{}", stderr(&rb));
    assert!(stderr(&rb).contains("object(s) recorded"), "{}", stderr(&rb));
    let after = json(&run(&e, &["state", "list", "--output", "json"]));
    assert!(after["managed"].as_array().expect("m").len() >= 7, "{after}");
    let p = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&p), 0, "{}", stdout(&p));

    // A plan made, then the cluster changes: the plan is stale and names the object.
    let plan_file = e.dir.path().join("p.mip").display().to_string();
    assert!(kubectl(&["delete", "secret", "-n", &e.fed, "keycloak-credentials"]).status.success());
    assert_eq!(code(&run(&e, &["plan", "--out", &plan_file])), 0);
    kubectl(&["label", "namespace", &e.fed, &format!("{MANAGED_BY_LABEL}=someone-else"), "--overwrite"]);
    let stale = run(&e, &["apply", &plan_file, "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&stale), 4, "{}", stderr(&stale));
    assert!(stderr(&stale).contains(&format!("v1/Namespace/{}", e.fed)), "{}", stderr(&stale));

    // A tampered plan is refused.
    let text = std::fs::read_to_string(&plan_file).expect("plan").replacen(
        "main-argo-projects",
        "evil-argo-projects",
        1,
    );
    std::fs::write(&plan_file, text).expect("w");
    let t = run(&e, &["apply", &plan_file, "--auto-approve"]);
    assert_eq!(code(&t), 4, "{}", stderr(&t));
    assert!(stderr(&t).contains("modified after it was written"), "{}", stderr(&t));

    // The state lock: held by another run, named, exit 3; nothing written.
    let held = mip_state::SledStore::open(Path::new(&e.state), mip_state::Operation::Apply).expect("lock");
    let l = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&l), 3, "{}", stderr(&l));
    assert!(stderr(&l).contains("pid"), "holder not named: {}", stderr(&l));
    // Reading the state needs no lock (the last committed snapshot); its history does.
    let listed = run(&e, &["state", "list"]);
    assert_eq!(code(&listed), 0, "state list during an apply: {}", stderr(&listed));
    assert!(stdout(&listed).contains(&format!("v1/Namespace/{}", e.fed)), "{}", stdout(&listed));
    assert_eq!(code(&run(&e, &["state", "history"])), 3);
    drop(held);

    // Without a terminal and without --auto-approve, apply refuses (safety).
    let r = run(&e, &["apply"]);
    assert_eq!(code(&r), 6, "{}", stderr(&r));
}

#[test]
fn the_context_guard_refuses_another_cluster() {
    let e = setup("guard");
    let text = std::fs::read_to_string(&e.inv).expect("inv").replace(
        &format!("argocd: {{namespace: {}}}", e.argocd),
        &format!("argocd: {{namespace: {}, apiServer: 'https://prod.example.org:6443'}}", e.argocd),
    );
    std::fs::write(&e.inv, text).expect("w");
    let o = run(&e, &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(stderr(&o).contains("prod.example.org"), "{}", stderr(&o));
}

/// Creates an object as Argo CD would (manager `argocd-controller`), with a minimal valid spec.
fn fake_argo_object(addr: &str) {
    let parts: Vec<&str> = addr.split('/').collect();
    let [_, _, kind, ns, name] = parts.as_slice() else { panic!("unexpected address {addr}") };
    let spec = match *kind {
        "AppProject" => "spec: {description: generated}".to_owned(),
        "Application" => "spec: {project: p, destination: {server: 'https://kubernetes.default.svc', namespace: x}, source: {repoURL: 'https://example.org/r.git', path: p}}".to_owned(),
        "ApplicationSet" => "spec: {generators: [], template: {metadata: {name: x}, spec: {project: p, destination: {server: 'https://kubernetes.default.svc', namespace: x}}}}".to_owned(),
        other => panic!("unexpected kind {other}"),
    };
    kubectl_apply(
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}, namespace: {ns}}}\n{spec}\n"
        ),
        "argocd-controller",
    );
}

#[test]
fn a_branch_deployment_has_its_own_state_and_its_teardown_leaves_main_alone() {
    let e = setup("branch");
    let main = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--output", "json"]);
    assert_eq!(code(&main), 0, "{}", stderr(&main));
    // Progress for machines: one JSON event per line, the outcome last.
    let events: Vec<serde_json::Value> =
        stdout(&main).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(events.first().map(|e| e["event"].clone()), Some("plan".into()), "{}", stdout(&main));
    assert!(
        events.iter().any(|e| e["event"] == "done"
            && e["address"].as_str().is_some_and(|a| a.ends_with("main-argo-projects")))
    );
    let last = events.last().expect("events");
    assert_eq!((last["event"].as_str(), last["complete"].as_bool()), (Some("outcome"), Some(true)), "{last}");
    let branch = run(&e, &["apply", "--revision", "feat/x", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&branch), 0, "{}", stderr(&branch));
    // Every root carries Argo CD's resources finalizer, so deleting one cascades.
    let root = kubectl(&[
        "get",
        "application",
        "-n",
        &e.argocd,
        "feat-x-infra-clusterset",
        "-o",
        "jsonpath={.metadata.finalizers}",
    ]);
    assert!(String::from_utf8_lossy(&root.stdout).contains("resources-finalizer.argocd.argoproj.io"));
    // The branch keeps its own state: main's plan is still empty, main's roots untouched.
    let plan = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "main's plan after the branch apply: {}", stdout(&plan));
    assert!(Path::new(&e.state).join("workspaces/feat-x").is_dir());

    let d =
        with_argo_finalizers(&e.argocd, || run(&e, &["destroy", "--revision", "feat/x", "--auto-approve"]));
    assert_eq!(code(&d), 0, "{}", stderr(&d));
    for root in ["feat-x-argo-projects", "feat-x-infra-clusterset"] {
        assert!(!kubectl(&["get", "application", "-n", &e.argocd, root]).status.success(), "{root} left");
    }
    for root in ["main-argo-projects", "main-infra-clusterset"] {
        assert!(
            kubectl(&["get", "application", "-n", &e.argocd, root]).status.success(),
            "main's {root} deleted"
        );
    }
    assert!(kubectl(&["get", "namespace", &e.fed]).status.success(), "a shared namespace was deleted");
    let plan = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "main's plan after the branch teardown: {}", stdout(&plan));
    let workspace = format!("{}/workspaces/feat-x", e.state);
    let h = mip_cmd().args(["state", "history", "-i", &e.inv, "--state-dir", &workspace]).run();
    assert!(stdout(&h).lines().last().is_some_and(|l| l.contains(" destroy completed: ")), "{}", stdout(&h));
}
