//! The in-cluster state backend end to end, against the real test cluster: selected by the
//! inventory's `state:` section, shared by plan/drift (no lock) and apply (Lease), two applies
//! at once (one refused naming the holder), `kill -9` of the holder (the next apply waits out
//! the TTL, then proceeds), a corrupted chunk (refused with a hint), `mip state migrate`
//! local → cluster → local, and the drift account that can read the state but not take its
//! lock.

use crate::live::{CLIENT_ID, CLIENT_SECRET, Env, kubectl, run, setup};
use crate::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mip_test_support::TestCluster;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Adds `state: {backend: cluster, namespace: NS}` to the test inventory.
fn use_cluster_state(e: &Env, ns: &str) {
    let text = std::fs::read_to_string(&e.inv).expect("inventory");
    std::fs::write(&e.inv, format!("{text}state: {{backend: cluster, namespace: {ns}}}\n")).expect("write");
}

/// `mip` as [`run`] does, started in the background.
fn spawn(e: &Env, args: &[&str]) -> std::process::Child {
    e.mip().args(args).inventory(&e.inv).state_dir(&e.state).spawn(Stdio::null(), Stdio::null())
}

/// Waits until the state's Lease names `pid` as its holder.
fn wait_for_lease(ns: &str, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = kubectl(&["get", "lease", "-n", ns, "mip-state-lock", "-o", "json"]);
        if o.status.success() {
            let lease: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
            if lease["metadata"]["annotations"]["mip.ebrains.eu/pid"].as_str()
                == Some(pid.to_string().as_str())
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "mip (pid {pid}) never took the Lease");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// When the state's Lease expires: its `renewTime` plus `leaseDurationSeconds`, as written by
/// its holder (whose clock is this machine's).
fn lease_expiry(ns: &str) -> SystemTime {
    let o = kubectl(&["get", "lease", "-n", ns, "mip-state-lock", "-o", "json"]);
    assert!(o.status.success(), "the Lease is there: {}", stderr(&o));
    let lease: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let renewed = lease["spec"]["renewTime"].as_str().unwrap_or_else(|| panic!("renewTime: {lease}"));
    let ttl = lease["spec"]["leaseDurationSeconds"].as_u64().unwrap_or_else(|| panic!("duration: {lease}"));
    let date = Command::new("date").args(["-u", "-d", renewed, "+%s%N"]).output().expect("date runs");
    let nanos: u64 =
        String::from_utf8_lossy(&date.stdout).trim().parse().unwrap_or_else(|e| panic!("{e}: {renewed}"));
    SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos) + Duration::from_secs(ttl)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

/// The state as stored in the namespace, readable: the index, and each blob it lists (the
/// groups of entries and the history, format 3) put back together from the index Secret or its
/// parts' Secrets and un-gzipped, so the canary below greps what the state really holds.
fn state_secrets_text(ns: &str) -> String {
    let o = kubectl(&["get", "secrets", "-n", ns, "-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let data = |name: &str, key: &str| -> Vec<u8> {
        let item = list["items"].as_array().expect("items").iter().find(|i| i["metadata"]["name"] == name);
        let value = item.and_then(|i| i["data"][key].as_str()).unwrap_or_else(|| panic!("{name}/{key}"));
        STANDARD.decode(value).expect("base64")
    };
    let index_bytes = data("mip-state", "index.json");
    let index: serde_json::Value = serde_json::from_slice(&index_bytes).expect("index");
    assert_eq!(index["encoding"], "gzip", "{index}");
    let blobs = index["groups"].as_array().expect("groups").iter().chain([&index["history"]]);
    let mut texts = vec![String::from_utf8_lossy(&index_bytes).into_owned()];
    for blob in blobs {
        let name = blob["name"].as_str().expect("name");
        let stored = match blob["parts"].as_u64().expect("parts") {
            0 => data("mip-state", name),
            parts => (0..parts)
                .flat_map(|i| data(&if i == 0 { name.to_owned() } else { format!("{name}-{i}") }, "chunk"))
                .collect(),
        };
        texts.push(gunzip(&stored));
    }
    let text = texts.join("\n");
    assert!(text.contains("\"fingerprint\""), "{text}");
    text
}

fn gunzip(stored: &[u8]) -> String {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip runs");
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(stored).expect("write");
    let payload = child.wait_with_output().expect("gzip");
    assert!(payload.status.success(), "the payload is gzip");
    String::from_utf8(payload.stdout).expect("the payload is JSON text")
}

#[test]
fn the_cluster_state_is_shared_locked_by_a_lease_and_survives_kill_9() {
    let e = setup("cstate");
    let ns = TestCluster::shared().fresh_namespace_blocking("mip-state");
    use_cluster_state(&e, &ns);

    let applied = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--lock-ttl", "4"]);
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
    assert!(!std::path::Path::new(&e.state).exists(), "the inventory chose the cluster: no local store");
    assert!(kubectl(&["get", "secret", "-n", &ns, "mip-state"]).status.success());
    assert!(!kubectl(&["get", "lease", "-n", &ns, "mip-state-lock"]).status.success(), "released");
    let plan = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "the plan reads the cluster state: {}{}", stdout(&plan), stderr(&plan));
    let listed = json(&run(&e, &["state", "list", "--output", "json", "-i", &e.inv]));
    let serial = listed["serial"].as_u64().expect("serial");
    assert!(listed["managed"].as_array().expect("managed").len() >= 7, "{listed}");
    let text = state_secrets_text(&ns);
    assert!(!text.contains(CLIENT_SECRET) && !text.contains(CLIENT_ID), "a secret value reached the state");
    let generated = crate::live::secret_values(&e.fed, "mip-secret");
    assert!(generated.len() >= 8, "{}", generated.len());
    for value in generated.iter().filter(|v| v.len() >= 12) {
        assert!(!text.contains(value.as_str()), "a generated secret value reached the cluster state");
    }

    // An apply that holds the lock while it waits for Argo CD (not running here).
    let mut holder = spawn(&e, &["apply", "--auto-approve", "--wait-timeout", "60", "--lock-ttl", "6"]);
    wait_for_lease(&ns, holder.id());

    // A second apply is refused at once, naming the holder; plan and drift take no lock.
    let second = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--lock-ttl", "4"]);
    let err = stderr(&second);
    assert_eq!(code(&second), 3, "{err}");
    assert!(err.contains(&format!("(pid {}) for `apply`", holder.id())), "holder not named: {err}");
    assert!(err.contains("lease valid until"), "{err}");
    let plan = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "plan while an apply runs: {}", stderr(&plan));
    let drift = run(&e, &["drift", "--output", "json"]);
    assert!(matches!(code(&drift), 0 | 2), "drift while an apply runs: {}", stderr(&drift));

    // kill -9: the Lease stays until renewTime + TTL (read from the cluster: the dead holder
    // renews it no more), then the next apply takes it over.
    holder.kill().expect("kill -9");
    let _ = holder.wait();
    let expires = lease_expiry(&ns);
    let refused = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--lock-ttl", "4"]);
    // Refusal is promised only while the Lease is valid: an apply that ended before the
    // expiry must have been refused; one slowed past it (a loaded machine) may take over.
    if SystemTime::now() < expires {
        assert_eq!(code(&refused), 3, "the dead holder's Lease has not expired yet: {}", stderr(&refused));
    } else {
        eprintln!("the apply after kill -9 ended after the Lease expired: refusal not checked");
    }
    let taken = loop {
        let o = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--lock-ttl", "4"]);
        if code(&o) != 3 {
            break o;
        }
        assert!(
            SystemTime::now() < expires + Duration::from_secs(30),
            "the Lease never expired: {}",
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(code(&taken), 0, "{}", stderr(&taken));
    assert!(SystemTime::now() >= expires, "taken over before the Lease expired");
    let after = json(&run(&e, &["state", "list", "--output", "json", "-i", &e.inv]));
    assert_eq!(after["lineage"], listed["lineage"]);
    assert!(after["serial"].as_u64().expect("serial") >= serial, "state lost: {after}");
    assert_eq!(after["managed"], listed["managed"], "the killed apply changed nothing");
    let history = run(&e, &["state", "history", "-i", &e.inv]);
    assert!(
        stdout(&history).contains(" apply completed: 7 applied"),
        "the first apply's record: {}",
        stdout(&history)
    );

    // Saved plans carry the cluster state's lineage and serial: the first applies, the second
    // (made against the same serial) is stale once the first has moved it.
    let text = std::fs::read_to_string(&e.inv).expect("inventory");
    let fed2 = format!("{}-2", e.fed);
    let text = text.replace(
        "\nstate:",
        &format!("\n  - name: {fed2}\n    kind: local\n    apps: [{{name: exareme2}}]\nstate:"),
    );
    std::fs::write(&e.inv, text).expect("write inventory");
    let (p1, p2) = (e.dir.path().join("p1.mip"), e.dir.path().join("p2.mip"));
    let (p1, p2) = (p1.display().to_string(), p2.display().to_string());
    assert_eq!(code(&run(&e, &["plan", "--out", &p1])), 0);
    assert_eq!(code(&run(&e, &["plan", "--out", &p2])), 0);
    let first = run(&e, &["apply", &p1, "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let second = run(&e, &["apply", &p2, "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&second), 4, "{}", stderr(&second));
    assert!(kubectl(&["get", "namespace", &fed2]).status.success());
}

#[test]
fn a_corrupted_state_chunk_is_refused_with_a_hint() {
    let e = setup("ccorrupt");
    let ns = TestCluster::shared().fresh_namespace_blocking("mip-state");
    use_cluster_state(&e, &ns);
    let applied = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0", "--state-chunk-bytes", "256"]);
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
    let o = kubectl(&["get", "secrets", "-n", &ns, "-l", "mip.ebrains.eu/generation", "-o", "name"]);
    let chunks: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert!(chunks.len() >= 2, "expected several chunks: {chunks:?}");

    // Another valid-looking value of the same length: only the checksum can tell.
    let o = kubectl(&["get", "-n", &ns, &chunks[0], "-o", "jsonpath={.data.chunk}"]);
    let original = stdout(&o);
    let mut flipped: Vec<u8> = original.clone().into_bytes();
    flipped[4] = if flipped[4] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let patch = format!("{{\"data\":{{\"chunk\":\"{flipped}\"}}}}");
    assert!(kubectl(&["patch", "-n", &ns, &chunks[0], "--type=merge", "-p", &patch]).status.success());

    for args in
        [&["plan"][..], &["apply", "--auto-approve", "--wait-timeout", "0"][..], &["state", "list"][..]]
    {
        let o = run(&e, args);
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "{args:?}: {err}");
        assert!(err.contains("is corrupt") && err.contains("checksum"), "{args:?}: {err}");
        assert!(err.contains("hint: restore the state from a backup"), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "one error line: {err}");
    }
    let o = kubectl(&["get", "-n", &ns, &chunks[0], "-o", "jsonpath={.data.chunk}"]);
    assert_eq!(stdout(&o), flipped, "mip never repairs a store");
    assert!(!kubectl(&["get", "lease", "-n", &ns, "mip-state-lock"]).status.success(), "lock released");
}

#[test]
fn migrate_moves_the_state_local_to_cluster_to_local_unchanged() {
    let e = setup("cmigrate");
    let ns = TestCluster::shared().fresh_namespace_blocking("mip-state");
    let applied = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
    let list = |extra: &[&str]| {
        let o = run(&e, &[&["state", "list", "--output", "json"][..], extra].concat());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    let history = |extra: &[&str]| {
        let o = run(&e, &[&["state", "history"][..], extra].concat());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    let cluster = ["--state-backend", "cluster", "--state-namespace", ns.as_str()];
    let local_list = list(&[]);
    let local_history = history(&[]);
    assert!(local_history.contains(" apply completed: "), "{local_history}");

    let up =
        run(&e, &[&["state", "migrate", "--from", "local", "--to", "cluster"][..], &cluster[2..]].concat());
    assert_eq!(code(&up), 0, "{}", stderr(&up));
    assert!(stderr(&up).contains("the source is left as it was"), "{}", stderr(&up));
    assert_eq!(list(&cluster), local_list, "the cluster holds the same state");
    assert_eq!(history(&cluster), local_history);
    let plan = run(&e, &[&["plan", "--detailed-exitcode"][..], &cluster].concat());
    assert_eq!(code(&plan), 0, "{}{}", stdout(&plan), stderr(&plan));

    // A second migration into the now full cluster state is refused; nothing changes.
    let again =
        run(&e, &[&["state", "migrate", "--from", "local", "--to", "cluster"][..], &cluster[2..]].concat());
    assert_eq!(code(&again), 1, "{}", stderr(&again));
    assert!(stderr(&again).contains("is not empty"), "{}", stderr(&again));

    // Back into a new local directory: the same content again.
    let back_dir = e.dir.path().join("state-back").display().to_string();
    let down = mip_on(TestCluster::shared(), e.dir.path())
        .args(["state", "migrate", "--from", "cluster", "--to", "local", "--state-namespace", &ns])
        .state_dir(&back_dir)
        .run();
    assert_eq!(code(&down), 0, "{}", stderr(&down));
    let back = |args: &[&str]| {
        let o = mip_cmd().args(args).state_dir(&back_dir).dir(e.dir.path()).run();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(back(&["state", "list", "--output", "json"]), local_list);
    assert_eq!(back(&["state", "history"]), local_history);

    // Nothing to migrate from an empty source; nothing is created.
    let empty_dir = e.dir.path().join("no-state").display().to_string();
    let nothing = mip_on(TestCluster::shared(), e.dir.path())
        .args(["state", "migrate", "--from", "local", "--to", "cluster", "--state-namespace", &ns])
        .args(["--state-dir", &empty_dir, "--state-name", "other"])
        .run();
    assert_eq!(code(&nothing), 1, "{}", stderr(&nothing));
    assert!(stderr(&nothing).contains("nothing to migrate"), "{}", stderr(&nothing));
    assert!(!std::path::Path::new(&empty_dir).exists());
    assert!(!kubectl(&["get", "secret", "-n", &ns, "other"]).status.success());

    let same = run(&e, &["state", "migrate", "--from", "local", "--to", "local"]);
    assert_eq!(code(&same), 1, "{}", stderr(&same));
}
