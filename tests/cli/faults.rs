//! The fault-injection tier of `mip` itself, on real clusters: kube-apiserver killed and
//! restarted (same etcd, same port) while `mip apply` writes and while it waits for Argo CD;
//! plan, apply and drift through a Toxiproxy adding latency, cutting connections or swallowing
//! them; a throttling API server (HTTP 429) under `--parallelism 16`; and 20 concurrent plans
//! and drifts reading the cluster state while an apply holds its Lease.
//!
//! What each test holds mip to is in `docs/reliability.md`. No timing is asserted except the
//! bounds mip promises; figures go to stderr as `reliability-figure:` lines.

use crate::examples_live::{play_argo, report_healthy};
use crate::*;
use mip_test_support::{TestCluster, TestClusterOptions, Toxic, figure};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// An inventory of `n` federations (Exareme2 only: no credentials needed).
fn inventory(argocd: &str, n: usize) -> String {
    let inventory = Inventory::new(argocd)
        .repositories("https://example.org/infra.git", "https://example.org/deploy.git");
    let federation = |i: usize| Federation::local(&format!("federation-{i:03}")).apps(&["exareme2"]);
    (0..n).fold(inventory, |inventory, i| inventory.federation(federation(i))).to_yaml()
}

/// `args` for the live test environment `e` (its inventory and state directory).
fn live_args<'a>(e: &'a crate::live::Env, args: &[&'a str]) -> Vec<&'a str> {
    [args, &["-i", &e.inv, "--state-dir", &e.state][..]].concat()
}

/// `mip` in `dir` against `kubeconfig`, started in the background with stdout piped (with the
/// live tests' client id in the environment).
fn spawn_mip(kubeconfig: &Path, dir: &Path, args: &[&str]) -> Child {
    let mip = mip_cmd().kubeconfig(kubeconfig).dir(dir).env("MIP_TEST_KC_ID", crate::live::CLIENT_ID);
    mip.args(args).spawn(Stdio::piped(), Stdio::piped())
}

/// `apply -i mip.yaml --auto-approve --output json` and `extra`.
fn apply_json<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [&["apply", "-i", "mip.yaml", "--auto-approve", "--output", "json"][..], extra].concat()
}

/// Reads JSON progress lines from `child`'s stdout until `until` holds for one; returns them.
fn read_events(child: &mut Child, until: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut seen = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        let event: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_default();
        line.clear();
        let stop = until(&event);
        seen.push(event);
        if stop {
            break;
        }
    }
    // Keep draining, so mip never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    seen
}

/// Waits for `child`; its exit code and stderr.
fn finish(mut child: Child) -> (i32, String) {
    let mut err = String::new();
    use std::io::Read as _;
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    let status = child.wait().expect("mip ends");
    (status.code().expect("exited"), err)
}

/// The objects Argo CD would generate, from the output of `plan --output json`.
fn expected_of(plan: &Output) -> Vec<(String, serde_json::Value)> {
    assert_eq!(code(plan), 0, "{}", stderr(plan));
    let p: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
    p["expected"]
        .as_array()
        .expect("expected")
        .iter()
        .map(|e| (e["address"].as_str().expect("address").to_owned(), e["model"].clone()))
        .collect()
}

#[test]
fn apiserver_restarted_during_apply_and_during_the_wait_loses_nothing_and_converges() {
    let mut cluster =
        TestCluster::start(TestClusterOptions { argocd_namespace: "argocd".into(), ..Default::default() });
    let dir = tempfile::tempdir().expect("tmp");
    let federations = 40;
    // The state in the cluster: the Lease's heartbeat and the state's commits ride out the
    // restarts too.
    let o = cluster.kubectl().args(["create", "namespace", "mip-system"]).output().expect("kubectl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = inventory("argocd", federations) + "state: {backend: cluster, namespace: mip-system}\n";
    std::fs::write(dir.path().join("mip.yaml"), text).expect("write");
    let kubeconfig = cluster.kubeconfig_path().to_owned();

    // 1. Killed while apply writes (one write at a time, so the kill lands among them).
    let mut apply =
        spawn_mip(&kubeconfig, dir.path(), &apply_json(&["--wait-timeout", "0", "--parallelism", "1"]));
    let before = read_events(&mut apply, |e| {
        e["event"] == "done" && e["address"].as_str().is_some_and(|a| a.contains("federation-010"))
    });
    assert!(before.iter().any(|e| e["event"] == "done"), "apply wrote before the kill: {before:?}");
    let started = Instant::now();
    cluster.kill_apiserver();
    std::thread::sleep(Duration::from_secs(1)); // the outage itself, not an assertion
    let back = cluster.start_apiserver().expect("the API server comes back");
    let (first, err) = finish(apply);
    figure("apiserver_restart_ready_s", format!("{:.1}", (Duration::from_secs(1) + back).as_secs_f64()));
    figure("apiserver_restart_during_apply_exit", first);
    // The outage (about 4 s) is shorter than the request timeout (10 s): every write in
    // flight is retried and the apply completes.
    assert_eq!(first, 0, "retried through the restart: {err}");
    let again = mip_on(&cluster, dir.path())
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "0"])
        .run();
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(stderr(&again).contains("No changes"), "the first apply did everything: {}", stderr(&again));
    figure("apiserver_restart_during_apply_converged_s", format!("{:.1}", started.elapsed().as_secs_f64()));
    let plan = mip_on(&cluster, dir.path()).args(["plan", "-i", "mip.yaml", "--detailed-exitcode"]).run();
    assert_eq!(code(&plan), 0, "converged: nothing left to do\n{}{}", stdout(&plan), stderr(&plan));
    // Nothing lost: every federation's namespace exists and the state manages each once.
    let state =
        mip_on(&cluster, dir.path()).args(["state", "list", "-i", "mip.yaml", "--output", "json"]).run();
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("json");
    let managed: Vec<&str> =
        state["managed"].as_array().expect("managed").iter().filter_map(|m| m["address"].as_str()).collect();
    for i in 0..federations {
        let ns = format!("v1/Namespace/federation-{i:03}");
        assert_eq!(managed.iter().filter(|a| **a == ns).count(), 1, "{ns} in the state once");
    }
    // Nothing recorded twice: each record takes the next serial and the entry keeps it, so a
    // second record of any object would leave a serial no entry holds (creates only, here).
    let mut serials: Vec<u64> = state["managed"]
        .as_array()
        .expect("managed")
        .iter()
        .map(|m| m["serial"].as_u64().expect("serial"))
        .collect();
    serials.sort_unstable();
    let last = state["serial"].as_u64().expect("serial");
    assert_eq!(serials, (1..=last).collect::<Vec<_>>(), "every serial 1..={last} held by exactly one entry");
    let namespaces = cluster.kubectl().args(["get", "namespaces", "-o", "name"]).output().expect("kubectl");
    let namespaces = String::from_utf8_lossy(&namespaces.stdout).to_string();
    assert_eq!(namespaces.lines().filter(|l| l.starts_with("namespace/federation-")).count(), federations);

    // 2. Killed while apply waits for Argo CD (played from this thread once the server is back).
    let expected =
        expected_of(&mip_on(&cluster, dir.path()).args(["plan", "-i", "mip.yaml", "--output", "json"]).run());
    let mut apply = spawn_mip(
        &kubeconfig,
        dir.path(),
        &apply_json(&["--wait-timeout", "120", "--request-timeout", "30s"]),
    );
    read_events(&mut apply, |e| e["event"] == "waiting");
    let back = cluster.restart_apiserver().expect("the API server comes back");
    figure("apiserver_restart_during_wait_ready_s", format!("{:.1}", back.as_secs_f64()));
    play_argo(&cluster, &expected);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (waited, err) = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                report_healthy(&cluster, "argocd");
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let out = finish(apply);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    });
    assert_eq!(waited, 0, "the wait rode out the restart: {err}");
    let plan = mip_on(&cluster, dir.path()).args(["plan", "-i", "mip.yaml", "--detailed-exitcode"]).run();
    assert_eq!(code(&plan), 0, "{}{}", stdout(&plan), stderr(&plan));
    let drift = mip_on(&cluster, dir.path()).args(["drift", "-i", "mip.yaml"]).run();
    assert_eq!(code(&drift), 0, "{}{}", stdout(&drift), stderr(&drift));
}

/// A kubeconfig through a fresh Toxiproxy in front of the shared cluster.
fn through_proxy(dir: &Path) -> (mip_test_support::Toxiproxy, std::path::PathBuf) {
    let cluster = TestCluster::shared();
    let proxy = cluster.toxiproxy().expect("toxiproxy");
    let kubeconfig = dir.join("proxied.kubeconfig");
    cluster.kubeconfig_via(&proxy.server_url(), &kubeconfig).expect("kubeconfig");
    (proxy, kubeconfig)
}

#[test]
fn plan_apply_and_drift_through_a_faulty_network_succeed_or_fail_cleanly_naming_the_server() {
    let e = crate::live::setup("faulty-net");
    let (proxy, kubeconfig) = through_proxy(e.dir.path());
    let kc = kubeconfig.display().to_string();
    let via = |args: &[&str]| crate::live::run_env(&e, args, &[("KUBECONFIG", kc.as_str())]);

    // 200 ms on every answer: slower, and exactly the same plan as a direct one.
    proxy.add(&Toxic::latency(200)).expect("toxic");
    let direct = crate::live::run(&e, &["plan", "--output", "json"]);
    let started = Instant::now();
    let slow = via(&["plan", "--output", "json"]);
    figure("latency_200ms_plan_s", format!("{:.1}", started.elapsed().as_secs_f64()));
    assert_eq!(code(&slow), 0, "{}", stderr(&slow));
    assert_eq!(stdout(&slow), stdout(&direct), "the same plan through a slow link");
    let started = Instant::now();
    let applied = via(&["apply", "--auto-approve", "--wait-timeout", "0"]);
    figure("latency_200ms_apply_s", format!("{:.1}", started.elapsed().as_secs_f64()));
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
    // No Argo CD runs here: drift on mip's side only.
    let drift = via(&["drift", "--mip-only"]);
    assert_eq!(code(&drift), 0, "{}{}", stdout(&drift), stderr(&drift));

    // A black hole: a bounded, one-line error naming the server, nothing written.
    proxy.add(&Toxic::timeout(0)).expect("toxic");
    let state_before = std::fs::read(Path::new(&e.state).join("snapshot.json")).expect("state");
    for args in
        [&["plan"][..], &["apply", "--auto-approve", "--wait-timeout", "0"][..], &["drift", "--mip-only"][..]]
    {
        let started = Instant::now();
        let mut all = args.to_vec();
        all.extend(["--request-timeout", "2s"]);
        let o = via(&all);
        let elapsed = started.elapsed();
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "{args:?}: {err}");
        assert!(err.contains(&proxy.server_url()) && err.contains("unreachable"), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{args:?}: {err}");
        assert!(elapsed < Duration::from_secs(20), "{args:?}: {elapsed:?}");
        figure(
            &format!("black_hole_{}_error_after_s_timeout_2s", args[0]),
            format!("{:.1}", elapsed.as_secs_f64()),
        );
    }
    assert_eq!(std::fs::read(Path::new(&e.state).join("snapshot.json")).expect("state"), state_before);

    // Half the connections reset as they open: retried; the plan is still the empty one.
    proxy.clear().expect("clear");
    proxy.add(&Toxic::reset_peer(0).toxicity(0.5)).expect("toxic");
    // Each request is retried on a new connection within the request timeout (10 s): failing
    // them all would take about 20 resets in a row (one chance in a million per request).
    let plan = via(&["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "retried, and still the empty plan: {}", stderr(&plan));
    figure("resets_50pct_plan_exit", code(&plan));
}

/// Reads an apply's JSON progress: signals `first_write` at its first write (the Lease is held
/// by then) and returns how long its writes took (first `start` to last `done`) once it waits
/// for Argo CD or ends. The rest of its output is drained in the background.
fn write_phase(child: &mut Child, first_write: Option<std::sync::mpsc::Sender<()>>) -> Duration {
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut first, mut last) = (None, None);
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        let event: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_default();
        line.clear();
        match event["event"].as_str() {
            Some("start") if first.is_none() => {
                first = Some(Instant::now());
                if let Some(signal) = &first_write {
                    let _ = signal.send(());
                }
            }
            Some("done") => last = Some(Instant::now()),
            Some("waiting" | "outcome") => break,
            _ => {}
        }
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => panic!("the apply wrote nothing"),
    }
}

#[test]
fn twenty_readers_of_the_cluster_state_while_an_apply_holds_the_lease_read_committed_serials() {
    let e = crate::live::setup("load");
    let cluster = TestCluster::shared();
    let ns = cluster.fresh_namespace_blocking("mip-state-load");
    let text = std::fs::read_to_string(&e.inv).expect("inventory");
    let mut text = format!("{text}state: {{backend: cluster, namespace: {ns}}}\n");
    let add = |text: &mut String, from: usize, to: usize| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let at = lines.iter().position(|l| l.starts_with("state:")).expect("state line");
        for i in (from..to).rev() {
            lines.insert(
                at,
                format!("  - {{name: {}-x{i:02}, kind: local, apps: [{{name: exareme2}}]}}", e.fed),
            );
        }
        *text = lines.join("\n") + "\n";
    };
    let kubeconfig = cluster.kubeconfig_path().to_owned();
    add(&mut text, 0, 30);
    std::fs::write(&e.inv, &text).expect("write");
    let first = crate::live::run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));

    // The same apply (30 more federations) alone, then with the readers.
    add(&mut text, 30, 60);
    std::fs::write(&e.inv, &text).expect("write");
    let args = live_args(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--output", "json"]);
    let mut alone = spawn_mip(&kubeconfig, e.dir.path(), &args);
    let alone_writes = write_phase(&mut alone, None);
    assert_eq!(finish(alone).0, 0);

    add(&mut text, 60, 90);
    std::fs::write(&e.inv, &text).expect("write");
    let before = crate::live::run(&e, &["state", "list", "--output", "json"]);
    let before: serde_json::Value = serde_json::from_slice(&before.stdout).expect("json");
    let before = before["serial"].as_u64().expect("serial");
    let expected = expected_of(&crate::live::run(&e, &["plan", "--output", "json"]));
    // This apply waits for Argo CD, so it holds the Lease until the readers are done.
    let args = live_args(
        &e,
        &["apply", "--auto-approve", "--wait-timeout", "120", "--wait-for", "exists", "--output", "json"],
    );
    let mut loaded = spawn_mip(&kubeconfig, e.dir.path(), &args);
    let (signal, first_write) = std::sync::mpsc::channel();
    let readers = std::thread::spawn({
        let (kubeconfig, dir) = (kubeconfig.clone(), e.dir.path().to_owned());
        let reader_args: Vec<Vec<String>> = ["plan", "drift"]
            .iter()
            .map(|verb| live_args(&e, &[verb, "--output", "json"]).into_iter().map(str::to_owned).collect())
            .collect();
        move || {
            first_write.recv().expect("the apply writes");
            let children: Vec<(usize, Child)> = (0..20)
                .map(|i| {
                    let args: Vec<&str> = reader_args[i % 2].iter().map(String::as_str).collect();
                    (i % 2, spawn_mip(&kubeconfig, &dir, &args))
                })
                .collect();
            children
                .into_iter()
                .map(|(kind, child)| (kind, child.wait_with_output().expect("reader ends")))
                .collect::<Vec<_>>()
        }
    });
    let loaded_writes = write_phase(&mut loaded, Some(signal));
    let readers_started = Instant::now();
    let readers = readers.join().expect("readers");
    figure("load_20_readers_all_done_s", format!("{:.1}", readers_started.elapsed().as_secs_f64()));
    let argo_started = Instant::now();
    let lease = crate::live::kubectl(&["get", "lease", "-n", &ns, "mip-state-lock"]);
    assert!(lease.status.success(), "the apply still holds the Lease once every reader is done");
    let mut serials = Vec::new();
    for (kind, out) in &readers {
        // plan: 0; drift: 0 or 2 (the apply's new objects are not the state's yet).
        assert!(code(out) == 0 || (*kind == 1 && code(out) == 2), "{}", stderr(out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(serial) = doc.pointer("/state/serial").and_then(serde_json::Value::as_u64) {
            serials.push(serial);
        }
    }
    // Argo CD (played here) creates what the apply waits for; it ends.
    play_argo(cluster, &expected);
    let (applied, err) = finish(loaded);
    assert_eq!(applied, 0, "{err}");
    figure(
        "load_apply_wait_for_argo_after_readers_s",
        format!("{:.1}", argo_started.elapsed().as_secs_f64()),
    );
    let listed = crate::live::run(&e, &["state", "list", "--output", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let last = listed["serial"].as_u64().expect("serial");
    assert!(serials.len() == 10, "each plan reports the serial it read: {serials:?}");
    // Each read a serial of this run (the race itself, a reader overlapping a commit, is
    // made to happen in `a_reader_overlapping_a_commit_reads_the_old_or_the_new_serial_whole`).
    assert!(serials.iter().all(|s| (before..=last).contains(s)), "{serials:?} vs {before}..={last}");
    let mut seen = serials.clone();
    seen.sort_unstable();
    seen.dedup();
    figure("load_20_readers_serials_seen", format!("{seen:?} (final {last})"));
    figure("load_apply_30_federations_writes_alone_s", format!("{:.2}", alone_writes.as_secs_f64()));
    figure(
        "load_apply_30_federations_writes_with_20_readers_s",
        format!("{:.2}", loaded_writes.as_secs_f64()),
    );
}

#[test]
fn priority_and_fairness_with_a_tiny_share_throttles_apply_and_it_completes() {
    // API priority and fairness on, 15 seats in all; mip's ServiceAccount gets its own priority
    // level with 1 share of about 250 (one seat) and no queue: what does not fit is rejected
    // with 429 and `Retry-After`. (system:masters is exempt from APF, so mip is not the admin.)
    let cluster = TestCluster::start(TestClusterOptions {
        argocd_namespace: "argocd".into(),
        apiserver_args: vec![
            "--enable-priority-and-fairness=true".into(),
            "--max-requests-inflight=10".into(),
            "--max-mutating-requests-inflight=5".into(),
        ],
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("mip.yaml"), inventory("argocd", 40)).expect("write");
    let kubectl = |args: &[&str]| {
        let o = cluster.kubectl().args(args).output().expect("kubectl");
        assert!(o.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    kubectl(&["create", "serviceaccount", "-n", "default", "mip"]);
    kubectl(&[
        "create",
        "clusterrolebinding",
        "mip",
        "--clusterrole=cluster-admin",
        "--serviceaccount=default:mip",
    ]);
    let token = kubectl(&["create", "token", "mip", "-n", "default", "--duration=1h"]);
    let tiny = r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {name: mip-tiny}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: {type: Reject}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: mip-tiny}
spec:
  priorityLevelConfiguration: {name: mip-tiny}
  matchingPrecedence: 100
  distinguisherMethod: {type: ByUser}
  rules:
  - subjects: [{kind: ServiceAccount, serviceAccount: {name: mip, namespace: default}}]
    resourceRules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true, namespaces: ["*"]}]
    nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]
"#;
    let manifest = dir.path().join("tiny.yaml");
    std::fs::write(&manifest, tiny).expect("write");
    kubectl(&["apply", "--server-side", "-f", manifest.to_str().expect("utf8")]);
    // The API server takes the new flow schema up asynchronously: wait until it says so.
    let dangling = "jsonpath={.status.conditions[?(@.type==\"Dangling\")].status}";
    let deadline = Instant::now() + Duration::from_secs(60);
    while kubectl(&["get", "flowschema", "mip-tiny", "-o", dangling]) != "False" {
        assert!(Instant::now() < deadline, "the flow schema was never taken up");
        std::thread::sleep(Duration::from_millis(200));
    }
    let admin = std::fs::read_to_string(cluster.kubeconfig_path()).expect("kubeconfig");
    let ca = admin.lines().find_map(|l| l.trim().strip_prefix("certificate-authority-data: ")).expect("ca");
    let kubeconfig = dir.path().join("sa.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: sa\nclusters:\n- name: t\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
             users:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context: {{cluster: t, user: sa}}\n",
            cluster.server_url()
        ),
    )
    .expect("write");
    let started = Instant::now();
    let apply = mip_cmd()
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "0", "--parallelism", "16"])
        .dir(dir.path())
        .kubeconfig(&kubeconfig)
        .run();
    figure(
        "apf_tiny_share_cli_apply_40_federations_parallelism_16_s",
        format!("{:.1}", started.elapsed().as_secs_f64()),
    );
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    let metrics = kubectl(&["get", "--raw", "/metrics"]);
    let throttled: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_flowcontrol_rejected_requests_total{")
                && l.contains("priority_level=\"mip-tiny\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    figure("apf_tiny_share_cli_apply_rejected_429", throttled);
    assert!(throttled > 0.0, "priority and fairness rejected some of mip's requests");
    let plan = mip_cmd()
        .args(["plan", "-i", "mip.yaml", "--detailed-exitcode"])
        .dir(dir.path())
        .kubeconfig(&kubeconfig)
        .run();
    assert_eq!(code(&plan), 0, "{}{}", stdout(&plan), stderr(&plan));
}

/// Waits until `file` exists: the process that paused there (mip's test hook,
/// `MIP_TEST_PAUSE_AT`) has reached its point.
fn wait_paused(file: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !file.exists() {
        assert!(child.try_wait().expect("wait").is_none(), "mip ended before it reached its pause");
        assert!(Instant::now() < deadline, "mip never reached its pause");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The serial a plan's JSON reports it read.
fn serial_read(out: &Output) -> u64 {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    doc.pointer("/state/serial")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("{}", stderr(out)))
}

/// Readers never take the state's lock, so they race commits. Made to happen every run with
/// mip's pause hook, on a state whose group spans many small Secrets: a reader while a commit
/// has written its new group but not its index reads the old serial whole; a reader that read
/// the old index just before a commit replaced it and deleted the group it replaced finds it
/// gone, reads the new index and the new serial whole. Both checked against the serials the
/// apply committed.
#[test]
fn a_reader_overlapping_a_commit_reads_the_old_or_the_new_serial_whole() {
    let e = crate::live::setup("overlap");
    let ns = TestCluster::shared().fresh_namespace_blocking("mip-state-overlap");
    let text = std::fs::read_to_string(&e.inv).expect("inventory");
    std::fs::write(&e.inv, format!("{text}state: {{backend: cluster, namespace: {ns}}}\n")).expect("write");
    let small = [("MIP_STATE_CHUNK_BYTES", "256")];
    let first = crate::live::run_env(&e, &["apply", "--auto-approve", "--wait-timeout", "0"], &small);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let old = crate::live::run(&e, &["plan", "--output", "json"]);
    let old_serial = serial_read(&old);
    // A state of several chunks: the reader in the gap has chunks to miss.
    let index = crate::live::kubectl(&[
        "get",
        "secret",
        "-n",
        &ns,
        "mip-state",
        "-o",
        "jsonpath={.data.index\\.json}",
    ]);
    let index = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, stdout(&index).trim())
        .expect("base64");
    let index: serde_json::Value = serde_json::from_slice(&index).expect("index");
    assert!(index["chunks"].as_u64().expect("chunks") >= 3, "{index}");

    // One more federation: the apply's first commit pauses between its chunks and its index.
    let text = std::fs::read_to_string(&e.inv).expect("inventory");
    let more = format!("  - {{name: {}-more, kind: local, apps: [{{name: exareme2}}]}}\nstate:", e.fed);
    std::fs::write(&e.inv, text.replacen("state:", &more, 1)).expect("write");
    let dir = e.dir.path();
    let (held, gap) = (dir.join("commit-held"), dir.join("reader-held"));
    let held_s = held.display().to_string();
    let mut apply = e
        .mip()
        .args(["apply", "--auto-approve", "--wait-timeout", "0", "--output", "json"])
        .inventory(&e.inv)
        .state_dir(&e.state)
        .envs(&[
            small[0],
            ("MIP_TEST_PAUSE_AT", "commit-before-index"),
            ("MIP_TEST_PAUSE_FILE", held_s.as_str()),
        ])
        .spawn(Stdio::piped(), Stdio::piped());
    wait_paused(&held, &mut apply);
    // While the commit is held: a reader reads the old serial, whole (checksummed).
    let during = crate::live::run(&e, &["plan", "--output", "json"]);
    assert_eq!(code(&during), 0, "{}", stderr(&during));
    assert_eq!(serial_read(&during), old_serial, "a reader during the commit reads the old serial");
    // Another reads the old index, then pauses before its chunks (`state list` reads the
    // state once; a plan's first read is a peek it repeats on failure, which would hide a
    // reader that cannot follow a commit).
    let gap_s = gap.display().to_string();
    let mut reader = e
        .mip()
        .args(["state", "list", "--output", "json"])
        .inventory(&e.inv)
        .state_dir(&e.state)
        .envs(&[("MIP_TEST_PAUSE_AT", "read-before-chunks"), ("MIP_TEST_PAUSE_FILE", gap_s.as_str())])
        .spawn(Stdio::piped(), Stdio::piped());
    wait_paused(&gap, &mut reader);
    // The commit goes on: the new index, the replaced group's Secrets deleted; the apply ends.
    std::fs::remove_file(&held).expect("release the commit");
    let (applied, err) = finish(apply);
    assert_eq!(applied, 0, "{err}");
    let listed = crate::live::run(&e, &["state", "list", "--output", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let new_serial = listed["serial"].as_u64().expect("serial");
    assert!(new_serial > old_serial, "{new_serial} > {old_serial}");
    // The paused reader's group is gone: it reads the new index and the new state, whole.
    std::fs::remove_file(&gap).expect("release the reader");
    let out = reader.wait_with_output().expect("reader ends");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(read, listed, "the reader that lost its chunks reads the new serial, whole");
    figure("overlap_reader_serials_old_new", format!("{old_serial} {new_serial}"));
}

#[test]
fn history_limit_bounds_the_history_of_both_backends() {
    for backend in ["local", "cluster"] {
        let e = crate::live::setup(&format!("history-{backend}"));
        let mut inventory = std::fs::read_to_string(&e.inv).expect("inventory");
        if backend == "cluster" {
            let ns = TestCluster::shared().fresh_namespace_blocking("mip-state-history");
            inventory.push_str(&format!("state: {{backend: cluster, namespace: {ns}}}\n"));
        }
        for i in 0..4 {
            // Each run adds a federation, so each apply writes and is recorded.
            let line = format!("  - {{name: {}-h{i}, kind: local, apps: [{{name: exareme2}}]}}\n", e.fed);
            inventory = match inventory.find("state:") {
                Some(at) => format!("{}{line}{}", &inventory[..at], &inventory[at..]),
                None => format!("{inventory}{line}"),
            };
            std::fs::write(&e.inv, &inventory).expect("write");
            let o = crate::live::run(
                &e,
                &["apply", "--auto-approve", "--wait-timeout", "0", "--history-limit", "2"],
            );
            assert_eq!(code(&o), 0, "{backend}: {}", stderr(&o));
        }
        let o = crate::live::run(&e, &["state", "history", "-i", &e.inv]);
        assert_eq!(code(&o), 0, "{backend}: {}", stderr(&o));
        let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 3, "{backend}: a summary and the 2 most recent applies: {lines:?}");
        assert!(lines[0].contains(" earlier: 2 earlier operations, serials "), "{backend}: {lines:?}");
        assert!(lines[0].ends_with("): 2 apply"), "{backend}: {lines:?}");
        assert!(lines[1..].iter().all(|l| l.contains(" apply completed: ")), "{backend}: {lines:?}");
    }
}
