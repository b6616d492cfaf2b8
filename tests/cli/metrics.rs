//! `mip drift --output prometheus` checked by Prometheus' own `promtool check metrics`, and
//! `--pushgateway` against a real Pushgateway (Debian's `prometheus-pushgateway`, started here
//! on a loopback port), read back from it; a failed check pushes `mip_drift_success 0` and
//! keeps the last good run. `scripts/test` installs both packages when missing
//! (`tools/ensure-deb.sh`); a missing tool fails the test, it is never skipped.

use crate::live::{kubectl, run, setup};
use crate::*;
use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tool from PATH, or a failure naming how `scripts/test` installs it.
pub(crate) fn tool(name: &str, package: &str) -> String {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    match found {
        Some(p) => p.display().to_string(),
        None => panic!(
            "`{name}` is not on PATH: run `bash tools/ensure-deb.sh {name} {package}` (scripts/test does)"
        ),
    }
}

/// `GET http://127.0.0.1:port/path`: (status, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// A Pushgateway on a free loopback port, killed on drop.
struct Pushgateway {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pushgateway() -> Pushgateway {
    let bin = tool("prometheus-pushgateway", "prometheus-pushgateway");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tmp");
    let child = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
        .spawn()
        .expect("pushgateway starts");
    let gateway = Pushgateway { child, port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(get(port, "/-/ready"), Ok((200, _))) {
        assert!(Instant::now() < deadline, "the Pushgateway did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    gateway
}

/// The sample lines of `name` in an exposition text.
fn samples<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    text.lines().filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{'])).collect()
}

#[test]
fn drift_metrics_pass_promtool_and_reach_a_real_pushgateway() {
    let promtool = tool("promtool", "prometheus");
    let e = setup("metrics");
    let applied = run(&e, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
    // Drift: a mip-owned Secret deleted behind mip's back; Argo CD's objects missing (no Argo CD).
    let o = kubectl(&["delete", "secret", "-n", &e.fed, "keycloak-credentials"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let drift = run(&e, &["drift", "--output", "prometheus"]);
    assert_eq!(code(&drift), 2, "{}", stderr(&drift));
    let text = stdout(&drift);
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    check.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let checked = check.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(text.contains("mip_drift_objects{kind=\"Secret\",finding=\"drifted\"} 1\n"), "{text}");
    assert!(text.contains("mip_drift_objects{kind=\"AppProject\",finding=\"missing\"} "), "{text}");
    assert!(text.contains("mip_drift_findings{finding=\"degraded\"} 0\n"), "{text}");
    assert!(text.contains("mip_drift_detected 1\n"), "{text}");
    assert!(text.contains("mip_drift_success 1\n"), "{text}");
    let json = run(&e, &["drift", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let fingerprint = report["fingerprint"].as_str().expect("fingerprint");
    assert!(text.contains(&format!("mip_drift_info{{fingerprint=\"{fingerprint}\"}} 1\n")), "{text}");

    // Pushed, then read back from the Pushgateway's own /metrics.
    let gateway = pushgateway();
    let url = format!("http://127.0.0.1:{}", gateway.port);
    let pushed = run(&e, &["drift", "--output", "json", "--pushgateway", &url]);
    assert_eq!(code(&pushed), 2, "{}", stderr(&pushed));
    assert!(!stderr(&pushed).contains("warning"), "{}", stderr(&pushed));
    let (status, exposed) = get(gateway.port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let info = samples(&exposed, "mip_drift_info");
    assert!(
        info.iter().any(|l| l.contains(fingerprint) && l.contains("job=\"mip_drift\"")),
        "{info:?}\n{exposed}"
    );
    assert!(samples(&exposed, "mip_drift_detected").iter().any(|l| l.ends_with(" 1")), "{exposed}");
    let last_success = samples(&exposed, "mip_drift_last_success_timestamp_seconds");
    assert_eq!(last_success.len(), 1, "{exposed}");

    // A check that fails (the API server unreachable) pushes success 0 and keeps the last good
    // run's counts and timestamp.
    let failed = run(&e, &["drift", "--kubeconfig", "/nonexistent/kubeconfig", "--pushgateway", &url]);
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    let (_, exposed) = get(gateway.port, "/metrics").expect("GET /metrics");
    assert!(samples(&exposed, "mip_drift_success").iter().any(|l| l.ends_with(" 0")), "{exposed}");
    assert_eq!(samples(&exposed, "mip_drift_last_success_timestamp_seconds"), last_success, "{exposed}");
    assert!(samples(&exposed, "mip_drift_detected").iter().any(|l| l.ends_with(" 1")), "{exposed}");

    // A Pushgateway that is not there is a warning; the drift result still decides the exit.
    drop(gateway);
    let unreachable = run(&e, &["drift", "--pushgateway", &url, "--request-timeout", "2s"]);
    assert_eq!(code(&unreachable), 2, "{}", stderr(&unreachable));
    assert!(stderr(&unreachable).contains("warning: failed to push the metrics"), "{}", stderr(&unreachable));
}
