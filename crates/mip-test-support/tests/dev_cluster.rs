//! `mip-dev-cluster` (what `scripts/dev-cluster` runs) and the watchdog: nothing outlives its
//! owner, not even after `kill -9`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mip_test_support::dev::DevState;
use mip_test_support::pid_alive;

const DEV_CLUSTER: &str = env!("CARGO_BIN_EXE_mip-dev-cluster");

fn dev_cluster(command: &str, state_dir: &Path) -> Output {
    Command::new(DEV_CLUSTER)
        .arg(command)
        .arg("--state-dir")
        .arg(state_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("run `mip-dev-cluster {command}`: {error}"))
}

fn assert_success(command: &str, output: &Output) {
    assert!(
        output.status.success(),
        "`mip-dev-cluster {command}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits until none of `pids` is alive; panics naming the survivors after `timeout`.
fn assert_all_gone(pids: &[(String, u32)], timeout: Duration) {
    let started = Instant::now();
    loop {
        let alive: Vec<_> = pids.iter().filter(|(_, pid)| pid_alive(*pid)).collect();
        if alive.is_empty() {
            return;
        }
        assert!(started.elapsed() < timeout, "still running after {timeout:?}: {alive:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn all_pids(state: &DevState) -> Vec<(String, u32)> {
    let mut pids = state.components.clone();
    pids.push(("watchdog".into(), state.watchdog_pid));
    pids.push(("mip-dev-cluster serve".into(), state.pid));
    pids
}

#[test]
fn up_then_kubectl_then_down() {
    let temp = tempfile::tempdir().expect("temp dir");
    let state_dir = temp.path().join("dev");

    assert_success("up", &dev_cluster("up", &state_dir));
    let state = DevState::read(&state_dir).expect("read state").expect("state file after `up`");
    assert_eq!(state.components.len(), 3, "{state:?}");

    let status = dev_cluster("status", &state_dir);
    assert_success("status", &status);
    assert!(String::from_utf8_lossy(&status.stdout).starts_with("running"));

    let env = dev_cluster("env", &state_dir);
    assert_success("env", &env);
    let env = String::from_utf8(env.stdout).expect("utf-8 env output");
    assert!(env.contains("export KUBECONFIG="), "{env}");

    // Exactly what a person does: eval the env output, then use `kubectl` from PATH.
    let script = format!("{env}command -v kubectl\nkubectl get namespaces -o name\n");
    let kubectl = Command::new("sh").arg("-c").arg(&script).stdin(Stdio::null()).output().expect("sh");
    let stdout = String::from_utf8_lossy(&kubectl.stdout);
    assert!(
        kubectl.status.success(),
        "kubectl failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next().map(Path::new), Some(state.bin_dir.join("kubectl").as_path()), "{stdout}");
    let namespaces: Vec<&str> = lines.collect();
    for expected in ["namespace/default", "namespace/kube-system", "namespace/argocd-mip-team"] {
        assert!(namespaces.contains(&expected), "{expected} missing in {namespaces:?}");
    }

    assert_success("down", &dev_cluster("down", &state_dir));
    assert_all_gone(&all_pids(&state), Duration::from_secs(5));
    assert!(!state_dir.exists(), "`down` left `{}`", state_dir.display());
    assert_eq!(dev_cluster("status", &state_dir).status.code(), Some(1), "status after down");
}

#[test]
fn kill_9_of_the_owner_leaves_no_orphans() {
    let temp = tempfile::tempdir().expect("temp dir");
    let state_dir = temp.path().join("dev");
    let log = std::fs::File::create(temp.path().join("serve.log")).expect("log file");
    let mut serve = Command::new(DEV_CLUSTER)
        .arg("serve")
        .arg("--state-dir")
        .arg(&state_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("spawn `mip-dev-cluster serve`");

    let started = Instant::now();
    let state = loop {
        if let Some(state) = DevState::read(&state_dir).expect("read state") {
            break state;
        }
        if let Some(status) = serve.try_wait().expect("poll serve") {
            let log = std::fs::read_to_string(temp.path().join("serve.log")).unwrap_or_default();
            panic!("`serve` exited before the cluster was ready ({status}):\n{log}");
        }
        assert!(started.elapsed() < Duration::from_secs(180), "cluster not ready after 180s");
        std::thread::sleep(Duration::from_millis(100));
    };
    for (name, pid) in &state.components {
        assert!(pid_alive(*pid), "{name} (pid {pid}) is not running");
    }

    serve.kill().expect("SIGKILL serve");
    serve.wait().expect("reap serve");

    // The watchdog polls every 0.2 s; allow for a loaded machine.
    assert_all_gone(&all_pids(&state), Duration::from_secs(15));
    let data_dir = state_dir.join("cluster");
    let started = Instant::now();
    while data_dir.exists() {
        assert!(started.elapsed() < Duration::from_secs(5), "the watchdog left `{}`", data_dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}
