//! Running mip where operators run it, against the real test cluster: `KUBECONFIG` with several
//! files merged as kubectl merges them, a pod's in-cluster configuration (ServiceAccount token,
//! CA, `KUBERNETES_SERVICE_HOST/PORT`, no kubeconfig) with the read-only role, SIGTERM during an
//! apply that waits for Argo CD (cluster state: the Lease is released at once and the state
//! holds what finished), and `--lock-timeout`.

use crate::live::{Env, kubectl, run, setup};
use crate::*;
use base64::Engine as _;
use mip_test_support::TestCluster;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `mip` in the test's directory with exactly these variables on top of a cleared `KUBECONFIG`
/// and `HOME` (so nothing on the machine is found by accident).
fn mip_with(e: &Env, args: &[&str], vars: &[(&str, &str)]) -> Output {
    e.mip().no_kubeconfig(e.dir.path()).args(args).inventory(&e.inv).state_dir(&e.state).envs(vars).run()
}

/// The test cluster's CA certificate (PEM), from the admin kubeconfig.
fn cluster_ca() -> Vec<u8> {
    let admin = std::fs::read_to_string(TestCluster::shared().kubeconfig_path()).expect("admin kubeconfig");
    let data = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .expect("CA in the admin kubeconfig");
    base64::engine::general_purpose::STANDARD.decode(data).expect("base64")
}

#[test]
fn kubeconfig_lists_merge_and_a_context_of_the_second_file_is_used() {
    let e = setup("kcmerge");
    // The first file sets `current-context` to a server that refuses connections; the second is
    // the test cluster's admin kubeconfig (context `mip-test`).
    let first = e.dir.path().join("first.kubeconfig");
    std::fs::write(
        &first,
        "apiVersion: v1\nkind: Config\ncurrent-context: elsewhere\nclusters:\n- name: elsewhere\n  cluster: {server: 'https://127.0.0.1:1'}\n\
         users:\n- name: nobody\n  user: {token: not-a-token}\ncontexts:\n- name: elsewhere\n  context: {cluster: elsewhere, user: nobody}\n",
    )
    .expect("write");
    let second = TestCluster::shared().kubeconfig_path().display().to_string();
    let missing = e.dir.path().join("missing.kubeconfig");
    let list = format!("{}:{}:{second}", first.display(), missing.display());
    let vars = [("KUBECONFIG", list.as_str())];

    let plan = mip_with(&e, &["plan", "--context", mip_test_support::CONTEXT], &vars);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stdout(&plan).contains(&format!("+ v1/Namespace/{}", e.fed)), "{}", stdout(&plan));

    // Without `--context`, the first file's `current-context` wins: that server is refused.
    let refused = mip_with(&e, &["plan", "--request-timeout", "2s"], &vars);
    assert_eq!(code(&refused), 1, "{}", stderr(&refused));
    assert!(stderr(&refused).contains("127.0.0.1:1"), "{}", stderr(&refused));
    // A context no file defines is named with the contexts that exist.
    let unknown = mip_with(&e, &["plan", "--context", "nope"], &vars);
    assert_eq!(code(&unknown), 1);
    assert!(stderr(&unknown).contains("`elsewhere`, `mip-test`"), "{}", stderr(&unknown));
}

#[test]
fn in_a_pod_the_service_account_plans_and_drifts_with_the_read_only_role() {
    let e = setup("incluster");
    let applied = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&applied), 0, "admin apply: {}", stderr(&applied));

    // The read-only role for ServiceAccount `mip-drift`, and what the kubelet mounts for it.
    let sa_ns = TestCluster::shared().fresh_namespace_blocking("mip-pod");
    TestCluster::shared()
        .kubectl_apply(&crate::rbac::example("rbac/mip-readonly.yaml", &e.argocd, &sa_ns), &[]);
    let o = kubectl(&["create", "serviceaccount", "-n", &sa_ns, "mip-drift"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kubectl(&["create", "token", "mip-drift", "-n", &sa_ns, "--duration=1h"]);
    assert!(o.status.success(), "kubectl create token: {}", stderr(&o));
    let sa = e.dir.path().join("serviceaccount");
    std::fs::create_dir(&sa).expect("mkdir");
    std::fs::write(sa.join("token"), stdout(&o).trim()).expect("token");
    std::fs::write(sa.join("ca.crt"), cluster_ca()).expect("ca");
    std::fs::write(sa.join("namespace"), &sa_ns).expect("namespace");
    let server = TestCluster::shared().server_url().trim_start_matches("https://").to_owned();
    let (host, port) = server.trim_end_matches('/').rsplit_once(':').expect("host:port");
    let sa_dir = sa.display().to_string();
    let pod = [
        ("KUBERNETES_SERVICE_HOST", host),
        ("KUBERNETES_SERVICE_PORT", port),
        ("MIP_SERVICEACCOUNT_DIR", sa_dir.as_str()),
    ];

    let plan = mip_with(&e, &["plan", "--detailed-exitcode"], &pod);
    assert_eq!(code(&plan), 0, "plan in the pod: {}{}", stdout(&plan), stderr(&plan));
    // No Argo CD runs here: what it would generate is missing (exit 2); mip's own objects match.
    let drift = mip_with(&e, &["drift", "--output", "json"], &pod);
    assert_eq!(code(&drift), 2, "drift in the pod: {}{}", stdout(&drift), stderr(&drift));
    let report: serde_json::Value = serde_json::from_slice(&drift.stdout).expect("json");
    assert_eq!(report["changes"], serde_json::json!([]), "{report}");
    assert!(!report["missing"].as_array().expect("missing").is_empty(), "{report}");
    // It is the ServiceAccount, not an admin: a write is refused, naming the account.
    let fed2 = format!("{}-2", e.fed);
    let text = std::fs::read_to_string(&e.inv).expect("inventory");
    std::fs::write(
        &e.inv,
        format!("{text}  - name: {fed2}\n    kind: local\n    apps: [{{name: exareme2}}]\n"),
    )
    .expect("write");
    let apply = mip_with(&e, &["apply", "--auto-approve", "--wait-timeout", "0"], &pod);
    assert_eq!(code(&apply), 1, "{}", stderr(&apply));
    assert!(
        stderr(&apply).contains(&format!("system:serviceaccount:{sa_ns}:mip-drift")),
        "{}",
        stderr(&apply)
    );

    // Without the service variables this is no pod: no configuration, a clear error.
    let none = mip_with(&e, &["plan"], &[("MIP_SERVICEACCOUNT_DIR", sa_dir.as_str())]);
    assert_eq!(code(&none), 1);
    assert!(stderr(&none).contains("no kubeconfig file exists"), "{}", stderr(&none));
}

/// `mip` in the background, stderr lines sent to a channel as they come.
fn spawn_apply(e: &Env, args: &[&str]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = e.mip_args(args).spawn(Stdio::null(), Stdio::piped());
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Lines until one contains `needle` (all of them, for messages).
fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return;
            }
        }
    }
    panic!("no line with `{needle}`: {seen:#?}");
}

/// The number just before `what` in a summary line (`Apply: 6 done, 0 failed, 1 skipped, …`).
fn count_before(line: &str, what: &str) -> usize {
    let head = &line[..line.find(what).unwrap_or_else(|| panic!("no `{what}` in {line}"))];
    head.rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> (i32, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.code().expect("exit code"), start.elapsed());
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("mip did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_while_waiting_for_argo_cd_releases_the_lease_and_keeps_what_finished() {
    let e = setup("sigterm");
    let ns = TestCluster::shared().fresh_namespace_blocking("mip-state");
    let text = std::fs::read_to_string(&e.inv).expect("inventory");
    std::fs::write(&e.inv, format!("{text}state: {{backend: cluster, namespace: {ns}}}\n")).expect("write");

    // The apply writes what does not depend on Argo CD, records it, then waits (holding the
    // Lease) for the projects Argo CD would generate from the root Application (not running here).
    // Its Lease outlives it by 10 min if not released, far beyond the waiter's 1 min below.
    let (mut holder, lines) =
        spawn_apply(&e, &["apply", "--auto-approve", "--wait-timeout", "5m", "--lock-ttl", "10m"]);
    let mut seen = Vec::new();
    wait_for_line(&lines, "main-argo-projects: create done", &mut seen);

    // Meanwhile `--lock-timeout` waits, then gives up naming the holder (exit 3).
    let started = Instant::now();
    let gave_up = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--lock-timeout", "1500ms"]);
    assert_eq!(code(&gave_up), 3, "{}", stderr(&gave_up));
    assert!(started.elapsed() >= Duration::from_millis(1500), "gave up before the timeout");
    assert!(stderr(&gave_up).contains(&format!("(pid {})", holder.id())), "{}", stderr(&gave_up));
    // One that waits long enough starts now and gets the lock once the holder stops.
    let (mut waiter, waiter_lines) =
        spawn_apply(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--lock-timeout", "1m"]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(waiter.try_wait().expect("wait").is_none(), "the waiter must wait for the lock");

    let term = Command::new("kill").args(["-TERM", &holder.id().to_string()]).status().expect("kill");
    assert!(term.success());
    // Promptly: the wait (5 min) is cut short; the bound is generous, what makes it prompt is
    // checked below (the Lease released, not left to expire).
    let (status, took) = wait_exit(&mut holder, Duration::from_secs(60));
    // Right after the exit the Lease is gone or already the waiter's, never the dead holder's.
    let lease = kubectl(&["get", "lease", "-n", &ns, "mip-state-lock", "-o", "json"]);
    if lease.status.success() {
        let lease: serde_json::Value = serde_json::from_slice(&lease.stdout).expect("json");
        let pid =
            lease["metadata"]["annotations"]["mip.ebrains.eu/pid"].as_str().unwrap_or_default().to_owned();
        assert_ne!(pid, holder.id().to_string(), "the Lease was left to its holder: {lease}");
    }
    seen.extend(lines.iter());
    let err = seen.join("\n");
    assert_eq!(status, 5, "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?} to stop: {err}");
    assert!(err.contains("SIGTERM: stopping"), "{err}");
    let interrupted =
        seen.iter().find(|l| l.starts_with("Interrupted by SIGTERM:")).unwrap_or_else(|| panic!("{err}"));
    assert!(interrupted.contains("lock is released"), "{interrupted}");
    let summary = seen.iter().find(|l| l.starts_with("Apply: ")).unwrap_or_else(|| panic!("{err}"));
    let done: usize = summary["Apply: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    let skipped = count_before(summary, " skipped");
    assert!(done >= 6 && skipped >= 1, "{summary}");
    assert!(err.contains("skipped (interrupted before it started)"), "{err}");

    // The Lease was released: the waiter takes it within its 1 min `--lock-timeout` (a Lease
    // left to expire would take 10 min: exit 3). Planning against the state the interrupted
    // apply left, it writes exactly what that one skipped.
    let (status, _) = wait_exit(&mut waiter, Duration::from_secs(120));
    let waiter_err = waiter_lines.iter().collect::<Vec<_>>().join("\n");
    assert_eq!(status, 0, "{waiter_err}");
    let rest =
        waiter_err.lines().find(|l| l.starts_with("Apply: ")).unwrap_or_else(|| panic!("{waiter_err}"));
    assert_eq!(count_before(rest, " done"), skipped, "{rest}");
    assert!(!kubectl(&["get", "lease", "-n", &ns, "mip-state-lock"]).status.success(), "released");

    // The state holds what the two finished, each recorded once.
    let listed = run(&e, &["state", "list", "--output", "json", "-i", &e.inv]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(listed["managed"].as_array().expect("managed").len(), done + skipped, "{listed}");
    let history = stdout(&run(&e, &["state", "history", "-i", &e.inv]));
    assert!(
        history.contains(&format!("apply interrupted: {done} applied, 0 failed, {skipped} skipped")),
        "{history}"
    );
    let plan = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "{}{}", stdout(&plan), stderr(&plan));
}

/// The canary for the log paths: an apply, a re-plan with a drifted Secret, a drift and a
/// doctor, at `RUST_LOG=trace` in JSON and at `-v`, `-vv` and `-vvv` in text, leak no secret
/// value, raw or base64 (the client id and secret from env and file, the generated values),
/// while kube's request traces do show.
#[test]
fn logs_at_every_level_and_format_carry_no_secret_value() {
    let e = setup("logcanary");
    let trace = [("RUST_LOG", "trace")];
    let mut art = Artifacts::default();
    let mut step = |args: &[&str], vars: &[(&str, &str)], codes: &[i32]| {
        let o = crate::live::run_env(&e, args, vars);
        assert!(codes.contains(&code(&o)), "{args:?}: exit {}: {}", code(&o), stderr(&o));
        let env: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        art.keep(&format!("{}mip {}", env.concat(), args.join(" ")), &o);
        stderr(&o)
    };
    let applied =
        step(&["apply", "--auto-approve", "--wait-timeout", "0", "--log-format", "json"], &trace, &[0]);
    // Every stderr line is a JSON object; kube's request traces are among them.
    for line in applied.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(applied.contains("\"target\":\"kube_client"), "no kube traces at RUST_LOG=trace: {applied}");
    assert!(applied.contains("Apply: ") && applied.contains("\"target\":\"mip::note\""), "{applied}");
    // The values as applied, before the re-apply below writes the sourced Secret again.
    let mut secrets = crate::live::canaries(&e);
    let o = kubectl(&["delete", "secret", "-n", &e.fed, "keycloak-credentials"]);
    assert!(o.status.success(), "{}", stderr(&o));
    step(&["plan", "-v"], &[], &[0]);
    step(&["plan", "-vv", "-o", "json"], &[], &[0]);
    step(&["plan", "-vvv"], &[], &[0]);
    step(&["drift", "--log-format", "json"], &trace, &[2]);
    step(&["drift", "-vvv", "-o", "json"], &[], &[2]);
    step(&["apply", "--auto-approve", "--wait-timeout", "0", "-vvv"], &trace, &[0]);
    step(&["doctor", "-vvv", "--log-format", "json"], &trace, &[0, 2]);

    // The generated values survived the re-apply; the sourced ones were written again.
    secrets.extend(crate::live::canaries(&e));
    assert!(secrets.len() >= 2 * 14, "{}", secrets.len());
    art.assert_no_secret(&secrets);
}

/// The root Applications mip's apply made, by name (the test cluster runs no Argo CD).
fn applications(ns: &str) -> Vec<String> {
    let o = kubectl(&["get", "applications", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"]);
    stdout(&o).split_whitespace().map(str::to_owned).collect()
}

/// How many objects the state holds.
fn managed(e: &Env) -> usize {
    let listed = run(e, &["state", "list", "--output", "json", "-i", &e.inv]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    listed["managed"].as_array().expect("managed").len()
}

/// The last line of `mip state history`.
fn last_history(e: &Env) -> String {
    let h = stdout(&run(e, &["state", "history", "-i", &e.inv]));
    h.lines().last().unwrap_or_else(|| panic!("no history: {h}")).to_owned()
}

/// Destroy where Argo CD does not delete what one root Application deployed (its controller
/// down or broken; the test cluster runs none, and a helper thread plays its part for every
/// other Application): a SIGTERM while destroy waits for that one stops it at once, with what
/// was deleted recorded once and an `interrupted` history entry; `--wait-timeout` bounds the
/// next destroy, which names the object, its finalizer, who removes it and the fix (exit 5,
/// a `failed` entry); once the finalizer goes, destroy completes.
#[test]
fn destroy_never_waits_without_end_and_every_destroy_is_in_the_history() {
    let e = setup("destroy-held");
    let o = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let apps = applications(&e.argocd);
    assert!(apps.len() >= 2, "{apps:?}");
    let held = apps.last().expect("an application").clone();
    let before = managed(&e);

    // 1. SIGTERM once destroy is waiting for the held Application to go (its deletion asked).
    let (deleted, failed, skipped) =
        crate::live::with_argo_finalizers_except(&e.argocd, Some(held.as_str()), || {
            let (mut child, lines) = spawn_apply(&e, &["destroy", "--auto-approve", "--wait-timeout", "10m"]);
            // The signal goes once the held Application's deletion is asked *and* another
            // deletion has finished: the other objects of its wave go at the same time, and a
            // signal sent between the two (a loaded machine) would find none done yet.
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut seen: Vec<String> = Vec::new();
            loop {
                seen.extend(lines.try_iter());
                let o = kubectl(&[
                    "get",
                    "application",
                    "-n",
                    &e.argocd,
                    &held,
                    "-o",
                    "jsonpath={.metadata.deletionTimestamp}",
                ]);
                if !stdout(&o).trim().is_empty() && seen.iter().any(|l| l.contains(": delete done")) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the held Application was never deleted, or nothing else was: {seen:?}"
                );
                assert!(child.try_wait().expect("wait").is_none(), "destroy ended before deleting {held}");
                std::thread::sleep(Duration::from_millis(100));
            }
            let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
            assert!(term.success());
            // Generous: stopping is a poll away (200 ms), but this machine is shared.
            let (status, _) = wait_exit(&mut child, Duration::from_secs(60));
            seen.extend(lines.iter());
            let err = seen.join("\n");
            assert_eq!(status, 5, "{err}");
            assert!(err.contains(&format!("{held}` is still there when interrupted")), "{err}");
            let summary = err.lines().find(|l| l.starts_with("Destroy: ")).unwrap_or_else(|| panic!("{err}"));
            // The held one, and any other whose deletion was in flight at the signal.
            let failed = count_before(summary, " failed");
            assert_eq!(err.matches("is still there when interrupted").count(), failed, "{err}");
            (count_before(summary, " deleted"), failed, count_before(summary, " not started"))
        });
    assert!(deleted >= 1, "the other Applications were deleted first");
    // What was deleted is forgotten once each: the state lost exactly that many records.
    assert_eq!(managed(&e), before - deleted, "deleted {deleted} of {before}");
    let last = last_history(&e);
    assert!(
        last.contains(&format!(
            " destroy interrupted: {deleted} deleted, {failed} failed, {skipped} skipped"
        )),
        "{last}"
    );

    // 2. The next destroy is bounded by --wait-timeout and says what holds each Application
    // left (the held one, and any whose finalizer the helper had not yet removed at the signal).
    let left = applications(&e.argocd);
    assert!(left.contains(&held), "{left:?}");
    let started = Instant::now();
    let d = run(&e, &["destroy", "--auto-approve", "--wait-timeout", "3s"]);
    let err = stderr(&d);
    assert_eq!(code(&d), 5, "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}: {err}", started.elapsed());
    for app in &left {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("{app}` is still there after ")))
            .unwrap_or_else(|| panic!("{app} not named: {err}"));
        for needle in [
            "held by finalizer `resources-finalizer.argocd.argoproj.io`",
            "Argo CD's application controller removes it",
            "app.kubernetes.io/name=argocd-application-controller",
            &format!("kubectl -n {} patch application.argoproj.io {app} --type merge", e.argocd),
        ] {
            assert!(line.contains(needle), "no `{needle}` in: {line}");
        }
    }
    let last = last_history(&e);
    assert!(last.contains(" destroy failed: 0 deleted"), "{last}");
    assert!(last.contains(&format!(", {} failed, ", left.len())), "{last}");
    assert!(kubectl(&["get", "application", "-n", &e.argocd, &held]).status.success(), "still there");

    // 3. Argo CD back: it removes the finalizers once it has deleted what the Applications
    // deployed, and they go. The next destroy has nothing left to delete but forgets the
    // records of what is gone (the state held them: their deletion was never seen through),
    // and says so in the history.
    let patch = r#"{"metadata": {"finalizers": null}}"#;
    for app in &left {
        let p = kubectl(&["patch", "application", app, "-n", &e.argocd, "--type", "merge", "-p", patch]);
        assert!(p.status.success(), "{}", stderr(&p));
    }
    let held_addr = format!("argoproj.io/v1alpha1/Application/{}/{held}", e.argocd);
    let listed = stdout(&run(&e, &["state", "list", "-i", &e.inv]));
    assert!(listed.lines().any(|l| l == held_addr), "{listed}");
    let d = run(&e, &["destroy", "--auto-approve"]);
    assert_eq!(code(&d), 0, "{}", stderr(&d));
    let n = left.len();
    assert!(
        stderr(&d).contains(&format!("{n} object(s) the state held were already gone and are forgotten")),
        "{}",
        stderr(&d)
    );
    assert!(applications(&e.argocd).is_empty(), "{:?}", applications(&e.argocd));
    let listed = stdout(&run(&e, &["state", "list", "-i", &e.inv]));
    assert!(!listed.contains("/Application/"), "{listed}");
    let last = last_history(&e);
    assert!(last.contains(&format!(" destroy completed: 0 deleted, {n} already gone forgotten")), "{last}");
}
