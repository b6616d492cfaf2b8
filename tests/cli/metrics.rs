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
    let gateway = start_pushgateway(&[], tempfile::tempdir().expect("tmp"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(get(gateway.port, "/-/ready"), Ok((200, _))) {
        assert!(Instant::now() < deadline, "the Pushgateway did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    gateway
}

/// The test password of the TLS Pushgateway's basic auth, long and unique as a canary, and its
/// bcrypt hash (cost 4) for the Pushgateway's web configuration.
const GATEWAY_PASSWORD: &str = "CANARY-pushgateway-password-5e1b7c2d9a04f3";
const GATEWAY_PASSWORD_BCRYPT: &str = "$2b$04$XgPmj0e3JcMN.HTm3CE3Q.kKF1j949gal6jhdSqdANpc1Z0vmLXZm";

/// A Pushgateway serving https with basic auth (its `--web.config.file`), its certificate from
/// a fresh test CA; the CA's PEM file.
fn tls_pushgateway() -> (Pushgateway, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = mip_test_support::localhost_tls();
    for (name, pem) in [("ca.pem", &ca), ("tls.crt", &cert), ("tls.key", &key)] {
        std::fs::write(dir.path().join(name), pem).expect("write");
    }
    let config = format!(
        "tls_server_config:\n  cert_file: {0}/tls.crt\n  key_file: {0}/tls.key\nbasic_auth_users:\n  mip: '{GATEWAY_PASSWORD_BCRYPT}'\n",
        dir.path().display()
    );
    std::fs::write(dir.path().join("web.yaml"), config).expect("write");
    let ca_file = dir.path().join("ca.pem");
    let web = format!("--web.config.file={}", dir.path().join("web.yaml").display());
    let gateway = start_pushgateway(&[web.as_str()], dir);
    // Up once it accepts connections (its readiness endpoint now wants TLS and the password).
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", gateway.port)).is_err() {
        assert!(Instant::now() < deadline, "the TLS Pushgateway did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (gateway, ca_file)
}

fn start_pushgateway(args: &[&str], dir: tempfile::TempDir) -> Pushgateway {
    let bin = tool("prometheus-pushgateway", "prometheus-pushgateway");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let child = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
        .spawn()
        .expect("pushgateway starts");
    Pushgateway { child, port, _dir: dir }
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
    let mut check = Command::new(&promtool);
    check.args(["check", "metrics"]);
    let checked = mip_test_support::run_piped(check, text.as_str());
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
    // The fingerprint as a number (no label that starts a new series whenever drift changes);
    // the change time only where it can be known (a push).
    let number = u64::from_str_radix(&fingerprint["sha256:".len()..][..13], 16).expect("hex");
    assert!(text.contains(&format!("mip_drift_fingerprint {number}\n")), "{text}");
    assert!(!text.contains("fingerprint=") && !text.contains("change_timestamp"), "{text}");

    // Pushed, then read back from the Pushgateway's own /metrics: in the platform's own group
    // (by default the inventory's infra repository), the fingerprint's change time set.
    let gateway = pushgateway();
    let url = format!("http://127.0.0.1:{}", gateway.port);
    let pushed = run(&e, &["drift", "--output", "json", "--pushgateway", &url]);
    assert_eq!(code(&pushed), 2, "{}", stderr(&pushed));
    assert!(!stderr(&pushed).contains("warning"), "{}", stderr(&pushed));
    let (status, exposed) = get(gateway.port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let group = "job=\"mip_drift\",platform=\"https://example.org/mip-infra.git\"";
    let ours = |exposed: &str, name: &str| -> Vec<String> {
        samples(exposed, name).into_iter().filter(|l| l.contains(group)).map(str::to_owned).collect()
    };
    let pushed_number = ours(&exposed, "mip_drift_fingerprint");
    assert_eq!(pushed_number.len(), 1, "{exposed}");
    let value: f64 = pushed_number[0].rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a value");
    assert_eq!(value, number as f64, "exact: below 2^52 ({exposed})");
    assert!(ours(&exposed, "mip_drift_detected").iter().any(|l| l.ends_with(" 1")), "{exposed}");
    let last_success = ours(&exposed, "mip_drift_last_success_timestamp_seconds");
    assert_eq!(last_success.len(), 1, "{exposed}");
    let changed = ours(&exposed, "mip_drift_fingerprint_change_timestamp_seconds");
    assert_eq!(changed.len(), 1, "{exposed}");

    // The same drift again: the change time is carried over; another platform on the same
    // Pushgateway has its own group and overwrites nothing.
    let again = run(&e, &["drift", "--pushgateway", &url]);
    assert_eq!(code(&again), 2, "{}", stderr(&again));
    let other = run(&e, &["drift", "--pushgateway", &url, "--pushgateway-label", "platform=staging"]);
    assert_eq!(code(&other), 2, "{}", stderr(&other));
    let (_, exposed) = get(gateway.port, "/metrics").expect("GET /metrics");
    assert_eq!(ours(&exposed, "mip_drift_fingerprint_change_timestamp_seconds"), changed, "{exposed}");
    assert_ne!(ours(&exposed, "mip_drift_last_run_timestamp_seconds"), last_success, "{exposed}");
    let staging = samples(&exposed, "mip_drift_detected");
    assert!(staging.iter().any(|l| l.contains("platform=\"staging\"")), "{exposed}");
    assert!(staging.iter().any(|l| l.contains(group)), "{exposed}");
    // Drift changes (a second Secret deleted): so does the change time.
    let o = kubectl(&["delete", "secret", "-n", &e.fed, "mip-secret"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let moved = run(&e, &["drift", "--pushgateway", &url]);
    assert_eq!(code(&moved), 2, "{}", stderr(&moved));
    let (_, exposed) = get(gateway.port, "/metrics").expect("GET /metrics");
    assert_ne!(ours(&exposed, "mip_drift_fingerprint_change_timestamp_seconds"), changed, "{exposed}");
    let last_success = ours(&exposed, "mip_drift_last_success_timestamp_seconds");

    // A check that fails (the API server unreachable) pushes success 0 and keeps the last good
    // run's counts and timestamp.
    let failed = run(&e, &["drift", "--kubeconfig", "/nonexistent/kubeconfig", "--pushgateway", &url]);
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    let (_, exposed) = get(gateway.port, "/metrics").expect("GET /metrics");
    assert!(ours(&exposed, "mip_drift_success").iter().any(|l| l.ends_with(" 0")), "{exposed}");
    assert_eq!(ours(&exposed, "mip_drift_last_success_timestamp_seconds"), last_success, "{exposed}");
    assert!(ours(&exposed, "mip_drift_detected").iter().any(|l| l.ends_with(" 1")), "{exposed}");

    // A Pushgateway that is not there is a warning; the drift result still decides the exit.
    drop(gateway);
    let unreachable = run(&e, &["drift", "--pushgateway", &url, "--request-timeout", "2s"]);
    assert_eq!(code(&unreachable), 2, "{}", stderr(&unreachable));
    assert!(stderr(&unreachable).contains("warning: failed to push the metrics"), "{}", stderr(&unreachable));

    // https with basic auth: the test CA trusted by --pushgateway-ca-file, the password from
    // the environment, never in any output; without it, the Pushgateway's 401 is the warning.
    let (tls, ca) = tls_pushgateway();
    let url = format!("https://localhost:{}", tls.port);
    let ca = ca.display().to_string();
    let args = [
        "drift",
        "--pushgateway",
        url.as_str(),
        "--pushgateway-ca-file",
        ca.as_str(),
        "--pushgateway-user",
        "mip",
        "-vv",
    ];
    let secured = crate::live::run_env(&e, &args, &[("MIP_PUSHGATEWAY_PASSWORD", GATEWAY_PASSWORD)]);
    assert_eq!(code(&secured), 2, "{}", stderr(&secured));
    assert!(!stderr(&secured).contains("warning"), "{}", stderr(&secured));
    let wrong = crate::live::run_env(&e, &args, &[("MIP_PUSHGATEWAY_PASSWORD", "not-the-password")]);
    assert!(stderr(&wrong).contains("refused the metrics: 401 Unauthorized"), "{}", stderr(&wrong));
    let untrusted = run(&e, &["drift", "--pushgateway", &url, "--request-timeout", "5s"]);
    assert!(stderr(&untrusted).contains("warning: failed to push the metrics"), "{}", stderr(&untrusted));
    assert!(stderr(&untrusted).to_lowercase().contains("certificate"), "{}", stderr(&untrusted));
    let mut artifacts = Artifacts::default();
    for (what, o) in [("https push", &secured), ("wrong password", &wrong), ("untrusted", &untrusted)] {
        artifacts.keep(what, o);
    }
    artifacts.assert_no_secret(&[Canary::new("the Pushgateway password", GATEWAY_PASSWORD)]);
    // Credentials in the URL are refused before anything is read.
    let inline = run(&e, &["drift", "--pushgateway", "https://mip:hunter2@localhost:1"]);
    assert_eq!(code(&inline), 1, "{}", stderr(&inline));
    assert!(stderr(&inline).contains("credentials in the URL"), "{}", stderr(&inline));
    assert!(!stderr(&inline).contains("hunter2"), "{}", stderr(&inline));
}
