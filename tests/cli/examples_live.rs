//! Fresh bootstraps of the shipped examples on dedicated real clusters (the examples name their
//! own Argo CD namespace), with the Argo-generated objects created from a separate thread as Argo
//! CD would, to release the gates; and crash safety: `kill -9` of mip during an apply.

use crate::*;
use mip_test_support::{TestCluster, TestClusterOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Deep merge of `top` into `base`.
fn merge(base: &mut serde_json::Value, top: &serde_json::Value) {
    match (base, top) {
        (serde_json::Value::Object(b), serde_json::Value::Object(t)) => {
            for (k, v) in t {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, t) => *b = t.clone(),
    }
}

/// Creates, as Argo CD would (manager `argocd-controller`), every object the plan expects, with
/// the fields the plan says mip models for it (over a minimal valid spec).
pub(crate) fn play_argo(cluster: &TestCluster, expected: &[(String, serde_json::Value)]) {
    let mut docs = String::new();
    for (addr, model) in expected {
        let parts: Vec<&str> = addr.split('/').collect();
        let [_, _, kind, ns, name] = parts.as_slice() else { panic!("unexpected address {addr}") };
        let mut doc = match *kind {
            "AppProject" => serde_json::json!({"spec": {"description": "generated"}}),
            "Application" => serde_json::json!({"spec": {"project": "p",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"},
                "source": {"repoURL": "https://example.org/r.git", "path": "p"}}}),
            "ApplicationSet" => {
                serde_json::json!({"spec": {"generators": [], "template": {"metadata": {"name": "x"},
                "spec": {"project": "p", "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"}}}}})
            }
            other => panic!("unexpected kind {other}"),
        };
        if model.get("spec").and_then(|s| s.get("sources")).is_some()
            && let Some(spec) = doc.get_mut("spec").and_then(serde_json::Value::as_object_mut)
        {
            spec.remove("source");
        }
        if model.is_object() {
            merge(&mut doc, model);
        }
        merge(
            &mut doc,
            &serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": ns}}),
        );
        docs.push_str(&format!("---\n{doc}\n"));
    }
    cluster.kubectl_apply(&docs, &["--server-side", "--field-manager=argocd-controller"]);
}

/// Reports every Application in `ns` Synced (compared with the revision its spec tracks) and
/// Healthy, as Argo CD's application controller does once it has synced (the Application CRD
/// has no status subresource).
pub(crate) fn report_healthy(cluster: &TestCluster, ns: &str) {
    let o =
        cluster.kubectl().args(["get", "applications", "-n", ns, "-o", "json"]).output().expect("kubectl");
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    for app in list["items"].as_array().cloned().unwrap_or_default() {
        let name = app["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let destination = app["spec"]["destination"].clone();
        let compared = match app["spec"]["sources"].as_array() {
            Some(sources) => serde_json::json!({ "sources": sources, "destination": destination }),
            None => serde_json::json!({ "source": app["spec"]["source"], "destination": destination }),
        };
        let status = serde_json::json!({"status": {
            "sync": {"status": "Synced", "comparedTo": compared},
            "health": {"status": "Healthy"}}});
        let o = cluster
            .kubectl()
            .args(["patch", "application", &name, "-n", ns, "--type", "merge", "-p", &status.to_string()])
            .output()
            .expect("kubectl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

fn bootstrap(example: &str, argocd_ns: &str, prepare: impl Fn(&Path) -> Vec<(String, String)>) {
    let cluster =
        TestCluster::start(TestClusterOptions { argocd_namespace: argocd_ns.into(), ..Default::default() });
    let dir = tempfile::tempdir().expect("tmp");
    let src = root().join("examples").join(example);
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).expect("rel");
        let dst = dir.path().join(rel);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &dst).expect("copy");
    }
    let env_owned = prepare(dir.path());
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let plan =
        mip_on(&cluster, dir.path()).args(["plan", "-i", "mip.yaml", "--output", "json"]).envs(&env).run();
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let p: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
    let expected: Vec<(String, serde_json::Value)> = p["expected"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| (e["address"].as_str().expect("a").to_owned(), e["model"].clone()))
        .collect();

    // A gate that never releases fails, naming what is missing.
    let short = mip_on(&cluster, dir.path())
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "2"])
        .envs(&env)
        .run();
    assert_eq!(code(&short), 5, "{}", stderr(&short));
    assert!(stderr(&short).contains("pending: argoproj.io/v1alpha1/AppProject/"), "{}", stderr(&short));
    assert!(stderr(&short).contains("not created yet"), "{}", stderr(&short));
    // The order holds across the Argo CD boundary: the argo-projects root was written, the
    // infra root waited at its gate for the projects Argo CD never generated.
    assert!(cluster.exists("application", argocd_ns, "main-argo-projects"), "{}", stderr(&short));
    assert!(
        !cluster.exists("application", argocd_ns, "main-infra-clusterset"),
        "infra root written before its gate opened"
    );
    assert!(stderr(&short).contains("skipped (waits for `argoproj.io/v1alpha1/"), "{}", stderr(&short));

    // "Argo CD" creates its objects from another thread while mip waits, and reports every
    // Application Synced and Healthy once it exists: the gates release, the final wait ends.
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let argo = std::thread::scope(|s| {
        let h = s.spawn(|| {
            std::thread::sleep(Duration::from_secs(2));
            play_argo(&cluster, &expected);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                report_healthy(&cluster, argocd_ns);
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let out = mip_on(&cluster, dir.path())
            .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "60"])
            .envs(&env)
            .run();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        h.join().expect("argo thread");
        out
    });
    assert_eq!(code(&argo), 0, "{}", stderr(&argo));
    assert!(started.elapsed() < Duration::from_secs(60));
    let again =
        mip_on(&cluster, dir.path()).args(["plan", "-i", "mip.yaml", "--detailed-exitcode"]).envs(&env).run();
    assert_eq!(code(&again), 0, "re-plan after bootstrap is not empty:\n{}", stdout(&again));
    let drift = mip_on(&cluster, dir.path()).args(["drift", "-i", "mip.yaml"]).envs(&env).run();
    assert_eq!(code(&drift), 0, "{}", stdout(&drift));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn examples_minimal_bootstraps_from_scratch() {
    bootstrap("minimal", "argocd", |_| Vec::new());
}

#[test]
fn examples_mip_infra_bootstraps_from_scratch() {
    bootstrap("mip-infra", "argocd-mip-team", |dir| {
        // The SSH key file exists; the prompt becomes an env source for an unattended run.
        std::fs::write(
            dir.join("argocd-remote-key"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\ntest-key\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .expect("key");
        let inv = std::fs::read_to_string(dir.join("mip.yaml"))
            .expect("inv")
            .replace("{prompt: \"Keycloak client secret\"}", "{env: MIP_KEYCLOAK_CLIENT_SECRET}");
        std::fs::write(dir.join("mip.yaml"), inv).expect("inv");
        vec![
            ("MIP_KEYCLOAK_CLIENT_ID".into(), "id".into()),
            ("MIP_KEYCLOAK_CLIENT_SECRET".into(), "secret".into()),
        ]
    });
}

/// `mip state list --output json` in `dir`: the state's serial, and each recorded address with
/// the serial of the record that wrote it and the uid it recorded.
fn recorded(cluster: &TestCluster, dir: &Path) -> (u64, BTreeMap<String, (u64, String)>) {
    let o = mip_on(cluster, dir).args(["state", "list", "--output", "json"]).run();
    assert_eq!(code(&o), 0, "the state is readable: {}", stderr(&o));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let entries = st["managed"].as_array().expect("managed").iter().map(|e| {
        let serial = e["serial"].as_u64().expect("serial");
        (address(&e["address"]), (serial, e["uid"].as_str().unwrap_or_default().to_owned()))
    });
    (st["serial"].as_u64().expect("serial"), entries.collect())
}

fn address(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// The uid of the object at `addr` (`[group/]version/Kind/[namespace/]name`) in the cluster.
fn live_uid(cluster: &TestCluster, addr: &str) -> Option<String> {
    let parts: Vec<&str> = addr.split('/').collect();
    let v = parts.iter().position(|p| p.starts_with('v') && p[1..].starts_with(|c: char| c.is_ascii_digit()));
    let v = v.unwrap_or_else(|| panic!("no version in {addr}"));
    let kind =
        if v == 0 { parts[1].to_owned() } else { format!("{}.{}", parts[v + 1], parts[..v].join(".")) };
    let mut cmd = cluster.kubectl();
    cmd.args(["get", &kind, parts[parts.len() - 1], "-o", "jsonpath={.metadata.uid}"]);
    if parts.len() - v == 4 {
        cmd.args(["-n", parts[v + 2]]);
    }
    let o = cmd.output().expect("kubectl");
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `apply --output json` events as they come: `(event, address)`.
fn events(out: impl std::io::Read) -> impl Iterator<Item = (String, String, serde_json::Value)> {
    std::io::BufReader::new(out).lines().map_while(Result::ok).map(|line| {
        let ev: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        (ev["event"].as_str().unwrap_or_default().to_owned(), address(&ev["address"]), ev)
    })
}

/// Twice, mip is killed (`SIGKILL`) as soon as its `--output json` events show a `done` and a
/// write started whose `done` has not come: mid-apply by construction, and checked afterwards
/// from the state. What mip reported between that event and its death is read from the pipe
/// after the kill: the writes in flight are those it started and had not reported done when
/// it died (a write landing in that gap is adopted by the next apply, not written again). `done` is reported after the record is committed, so what was reported is
/// recorded, and at most the writes in flight are recorded beyond it (a write finished but
/// waiting for its group commit is in flight too). Each record takes one serial, so serial
/// arithmetic shows anything recorded twice.
#[test]
fn kill_9_during_apply_loses_nothing_and_the_next_apply_converges() {
    let cluster =
        TestCluster::start(TestClusterOptions { argocd_namespace: "argocd".into(), ..Default::default() });
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(root().join("examples/minimal/mip.yaml"), dir.path().join("mip.yaml")).expect("copy");
    let apply = ["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "0", "--output", "json"];
    let mut total = None;
    let (mut serial, mut before) = (0, BTreeMap::new());
    let mut in_flight_at_kills = BTreeSet::new();
    for round in 1..=2 {
        let mut child = mip_on(&cluster, dir.path())
            .args([&apply[..], &["--parallelism", "1"]].concat())
            .spawn(Stdio::piped(), Stdio::null());
        let (mut started, mut done, mut killed) = (BTreeSet::new(), BTreeSet::new(), false);
        let mut seen = events(child.stdout.take().expect("stdout"));
        let observe = |(event, addr, ev): (String, String, serde_json::Value),
                       total: &mut Option<usize>,
                       started: &mut BTreeSet<String>,
                       done: &mut BTreeSet<String>| match event.as_str() {
            "writing" => _ = total.get_or_insert(ev["changes"].as_u64().expect("changes") as usize),
            "start" => _ = started.insert(addr),
            "done" => _ = done.insert(addr),
            _ => {}
        };
        for e in seen.by_ref() {
            observe(e, &mut total, &mut started, &mut done);
            // Something recorded, something started and not reported done: kill now.
            if !done.is_empty() && !started.is_subset(&done) {
                child.kill().expect("kill -9");
                killed = true;
                break;
            }
        }
        let _ = child.wait();
        // Between the event that decided the kill and the kill itself, mip went on: what it
        // reported meanwhile is still in the pipe (each event is one line, one write). The
        // writes in flight are those started and not reported done by the time it died.
        seen.for_each(|e| observe(e, &mut total, &mut started, &mut done));
        assert!(killed, "round {round}: no write in flight after a done: {done:?}");
        let in_flight: BTreeSet<String> = started.difference(&done).cloned().collect();
        in_flight_at_kills.extend(in_flight.iter().cloned());
        let total = total.expect("a `writing` event");
        // The lock died with the process; the state is readable and consistent.
        let (now_serial, now) = recorded(&cluster, dir.path());
        eprintln!(
            "round {round}: killed with {in_flight:?} in flight; done {done:?}; recorded {} of {total}",
            now.len()
        );
        let new: BTreeSet<&String> = now.keys().filter(|a| !before.contains_key(*a)).collect();
        assert!(
            done.iter().all(|a| new.contains(a)),
            "round {round}: reported done, not recorded: {done:?} {now:?}"
        );
        assert!(
            new.iter().all(|a| done.contains(*a) || in_flight.contains(*a)),
            "round {round}: recorded beyond the writes in flight ({in_flight:?}): {new:?}, done {done:?}"
        );
        assert!(now.len() < total, "round {round}: the kill did not land mid-apply: all {total} recorded");
        assert_eq!(now_serial - serial, new.len() as u64, "round {round}: a record was written twice");
        for (a, entry) in &before {
            assert_eq!(now.get(a), Some(entry), "round {round}: an earlier record of {a} was rewritten");
        }
        // Kill-safety: nothing is recorded before its write landed.
        for (a, (_, uid)) in &now {
            assert_eq!(
                live_uid(&cluster, a).as_ref(),
                Some(uid),
                "round {round}: {a} recorded but not in the cluster"
            );
        }
        (serial, before) = (now_serial, now);
    }
    // The next apply takes the lock, writes exactly what was not recorded, and converges.
    let done = mip_on(&cluster, dir.path()).args(apply).run();
    assert_eq!(code(&done), 0, "{}", stderr(&done));
    let written: BTreeSet<String> =
        events(&done.stdout[..]).filter(|(e, ..)| e == "done").map(|(_, a, _)| a).collect();
    let (final_serial, after) = recorded(&cluster, dir.path());
    let total = total.expect("total");
    assert_eq!(after.len(), total, "{after:?}");
    for (a, entry) in &before {
        assert_eq!(after.get(a), Some(entry), "{a}, recorded before the kill, was written again");
    }
    // What the killed runs did not record is written now, or, if its write landed before the
    // kill, recorded as it is (adopted, no write): once each, one serial each.
    let rest: BTreeSet<&String> = after.keys().filter(|a| !before.contains_key(*a)).collect();
    assert!(written.iter().all(|a| rest.contains(a)), "written {written:?}, not recorded before {rest:?}");
    assert!(
        rest.iter().all(|a| written.contains(*a) || in_flight_at_kills.contains(*a)),
        "recorded without a write: {rest:?}, written {written:?}"
    );
    assert_eq!(final_serial - serial, (total - before.len()) as u64, "a record was written twice");
    let plan = mip_on(&cluster, dir.path()).args(["plan", "-i", "mip.yaml", "--detailed-exitcode"]).run();
    assert_eq!(code(&plan), 0, "not converged:\n{}", stdout(&plan));
}
