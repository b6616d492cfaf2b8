//! `mip drift --output prometheus` and `--pushgateway URL`: the drift report as Prometheus
//! metrics, in the text exposition format (what a node-exporter textfile collector reads and a
//! Pushgateway accepts).
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `mip_drift_objects{kind, finding}` | gauge | objects per Kubernetes kind and finding: `drifted` (a mip-owned object differs, is absent, or is managed but no longer in the inventory), `missing` (an object Argo CD should have generated), `out_of_sync`, `degraded` (unhealthy) and `spec_differs` (Argo CD's side) |
//! | `mip_drift_findings{finding}` | gauge | the same, summed over kinds; every finding present, 0 when none |
//! | `mip_drift_detected` | gauge | 1 when anything drifted (exit 2), else 0 |
//! | `mip_drift_fingerprint` | gauge | the report's stable fingerprint as a number (its first 13 hex digits), the same while the same drift persists: for deduplicating alerts without a label that starts a new series whenever drift changes |
//! | `mip_drift_fingerprint_change_timestamp_seconds` | gauge | (pushed only) when the fingerprint last changed: carried over from the group's previous push while it stays the same |
//! | `mip_drift_success` | gauge | 1 when the check ran, 0 when it failed (exit 1) |
//! | `mip_drift_last_run_timestamp_seconds` | gauge | when the check started (Unix time) |
//! | `mip_drift_last_success_timestamp_seconds` | gauge | when the last check that ran started |
//! | `mip_drift_duration_seconds` | gauge | how long the check took |
//!
//! A failed check reports only `mip_drift_success 0`, its run time and duration: pushed with
//! `POST` (which replaces only the metrics of the same names), the Pushgateway keeps the last
//! successful run's counts and timestamp, so "drift" and "the check stopped running" stay two
//! separate alerts (`examples/cron/prometheus-rule.yaml`).
//!
//! The push goes through a real HTTP client (reqwest on rustls: `http` or `https`, the system's
//! roots plus `--pushgateway-ca-file`, `HTTPS_PROXY`/`NO_PROXY`, basic auth with the password
//! from the environment or a bearer token from a file; credentials never in the URL, so never in
//! a message), to the group `job` + `--pushgateway-label`s (default `platform=` the inventory's
//! infra repository), each value base64url-encoded in the path, so two platforms never
//! overwrite each other.

use mip_engine::ops::drift::Drift;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The findings, in output order.
const FINDINGS: [&str; 5] = ["drifted", "missing", "out_of_sync", "degraded", "spec_differs"];

/// When a check ran and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Start, seconds since the Unix epoch.
    pub started_unix: f64,
    /// Duration.
    pub duration: Duration,
}

impl Run {
    /// A run that started now.
    pub fn start() -> (Run, std::time::Instant) {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        (Run { started_unix: unix, duration: Duration::ZERO }, std::time::Instant::now())
    }
}

/// A label value, escaped as the exposition format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn timing(out: &mut String, run: &Run, success: bool) {
    header(out, "mip_drift_success", "1 when the drift check ran, 0 when it failed.");
    let _ = writeln!(out, "mip_drift_success {}", u8::from(success));
    header(out, "mip_drift_last_run_timestamp_seconds", "When the last drift check started (Unix time).");
    let _ = writeln!(out, "mip_drift_last_run_timestamp_seconds {:.3}", run.started_unix);
    if success {
        header(
            out,
            "mip_drift_last_success_timestamp_seconds",
            "When the last drift check that ran started (Unix time).",
        );
        let _ = writeln!(out, "mip_drift_last_success_timestamp_seconds {:.3}", run.started_unix);
    }
    header(out, "mip_drift_duration_seconds", "How long the last drift check took.");
    let _ = writeln!(out, "mip_drift_duration_seconds {:.3}", run.duration.as_secs_f64());
}

/// The metrics of a drift report; `changed_at`: when its fingerprint last changed, when known
/// (a push reads it from the group's previous push).
pub fn exposition(d: &Drift, run: &Run, changed_at: Option<f64>) -> String {
    let mut per_kind: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for c in &d.changes {
        *per_kind.entry((c.address.kind.clone(), "drifted")).or_default() += 1;
    }
    for m in &d.missing {
        *per_kind.entry((m.kind.clone(), "missing")).or_default() += 1;
    }
    for a in &d.argo {
        let finding = match a.kind.as_str() {
            "out-of-sync" => "out_of_sync",
            "degraded" => "degraded",
            _ => "spec_differs",
        };
        *per_kind.entry((a.address.kind.clone(), finding)).or_default() += 1;
    }
    let mut out = String::new();
    header(&mut out, "mip_drift_objects", "Objects that differ from the inventory, by kind and finding.");
    for ((kind, finding), n) in &per_kind {
        let _ = writeln!(out, "mip_drift_objects{{kind=\"{}\",finding=\"{finding}\"}} {n}", escape(kind));
    }
    header(&mut out, "mip_drift_findings", "Objects that differ from the inventory, by finding.");
    for finding in FINDINGS {
        let n: u64 = per_kind.iter().filter(|((_, f), _)| *f == finding).map(|(_, n)| n).sum();
        let _ = writeln!(out, "mip_drift_findings{{finding=\"{finding}\"}} {n}");
    }
    header(&mut out, "mip_drift_detected", "1 when the cluster differs from the inventory.");
    let _ = writeln!(out, "mip_drift_detected {}", u8::from(!d.is_empty()));
    header(
        &mut out,
        "mip_drift_fingerprint",
        "The drift report's fingerprint as a number (stable while the same drift persists).",
    );
    let _ = writeln!(out, "mip_drift_fingerprint {}", fingerprint_number(&d.fingerprint));
    if let Some(at) = changed_at {
        header(
            &mut out,
            "mip_drift_fingerprint_change_timestamp_seconds",
            "When the drift report's fingerprint last changed (Unix time).",
        );
        let _ = writeln!(out, "mip_drift_fingerprint_change_timestamp_seconds {at:.3}");
    }
    timing(&mut out, run, true);
    out
}

/// The first 13 hex digits of a `sha256:…` fingerprint as a number: below 2^52, so exact as a
/// sample value (a float).
pub fn fingerprint_number(fingerprint: &str) -> u64 {
    let hex = fingerprint.rsplit(':').next().unwrap_or_default();
    u64::from_str_radix(hex.get(..13).unwrap_or(hex), 16).unwrap_or(0)
}

/// The metrics of a check that failed.
pub fn exposition_failed(run: &Run) -> String {
    let mut out = String::new();
    timing(&mut out, run, false);
    out
}

/// Where and how to push: the Pushgateway, the group, and the credentials.
pub struct Gateway {
    /// The Pushgateway's base URL, with any path prefix (never credentials).
    pub url: reqwest::Url,
    /// The grouping key: `job`, then the labels.
    pub job: String,
    /// Grouping labels beside the job.
    pub labels: Vec<(String, String)>,
    /// How to authenticate.
    pub auth: Auth,
    /// The HTTP client, built once ([`Gateway::client`]) for the read of the previous push and
    /// the push.
    pub client: reqwest::Client,
}

/// Credentials for the Pushgateway.
pub enum Auth {
    /// None.
    None,
    /// HTTP basic auth.
    Basic {
        /// User.
        user: String,
        /// Password (from the environment).
        password: mip_core::Sensitive,
    },
    /// `Authorization: Bearer` with this token (from a file).
    Bearer(mip_core::Sensitive),
}

impl Gateway {
    /// Checks the URL: `http` or `https`, a host, no credentials (they would show in process
    /// lists and in every message naming the URL).
    ///
    /// # Errors
    /// A URL that is not one.
    pub fn parse_url(url: &str) -> anyhow::Result<reqwest::Url> {
        use anyhow::bail;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("`--pushgateway {url}`: {e} (hint: `https://host:port[/path]`)"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
            bail!("`--pushgateway {url}`: expected `http://` or `https://host:port[/path]`");
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            bail!(
                "`--pushgateway`: credentials in the URL would show in process lists and messages (hint: `--pushgateway-user` with `MIP_PUSHGATEWAY_PASSWORD`, or `--pushgateway-bearer-token-file`)"
            );
        }
        Ok(parsed)
    }

    /// The group's URL: `…/metrics/job@base64/<job>/<label>@base64/<value>…` (base64url, so
    /// any value, a URL included, is one path segment).
    fn group_url(&self) -> reqwest::Url {
        use base64::Engine as _;
        let encode = |v: &str| match base64::engine::general_purpose::URL_SAFE.encode(v) {
            e if e.is_empty() => "=".to_owned(),
            e => e,
        };
        let mut path = self.url.path().trim_end_matches('/').to_owned();
        path.push_str(&format!("/metrics/job@base64/{}", encode(&self.job)));
        for (k, v) in &self.labels {
            path.push_str(&format!("/{k}@base64/{}", encode(v)));
        }
        let mut url = self.url.clone();
        url.set_path(&path);
        url
    }

    /// The client: each request bounded by `timeout`, the system's roots plus `ca_file`.
    ///
    /// # Errors
    /// An unreadable or malformed `ca_file`.
    pub fn client(ca_file: Option<&std::path::Path>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        use anyhow::Context as _;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("mip/", env!("CARGO_PKG_VERSION")));
        if let Some(file) = ca_file {
            let pem = std::fs::read(file)
                .with_context(|| format!("failed to read `--pushgateway-ca-file {}`", file.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem).with_context(|| {
                format!("`--pushgateway-ca-file {}` is not a PEM certificate", file.display())
            })?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build().context("failed to set up the HTTP client")
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }

    /// When the fingerprint last changed, by the group's previous push (`GET /api/v1/metrics`):
    /// that push's change time while the fingerprint is the same, else `now`. Best effort: a
    /// Pushgateway that cannot say counts as a change.
    pub async fn changed_at(&self, fingerprint: &str, now: f64) -> f64 {
        let client = &self.client;
        let mut url = self.url.clone();
        url.set_path(&format!("{}/api/v1/metrics", self.url.path().trim_end_matches('/')));
        let Ok(response) = self.authorize(client.get(url)).send().await else { return now };
        let Ok(doc) = response.json::<serde_json::Value>().await else { return now };
        let mut wanted: std::collections::BTreeMap<&str, &str> =
            self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        wanted.insert("job", &self.job);
        let group = doc["data"].as_array().into_iter().flatten().find(|g| {
            g["labels"].as_object().is_some_and(|l| {
                l.len() == wanted.len()
                    && wanted.iter().all(|(k, v)| l.get(*k).and_then(|x| x.as_str()) == Some(*v))
            })
        });
        let value =
            |name: &str| -> Option<f64> { group?[name]["metrics"][0]["value"].as_str()?.parse().ok() };
        let same =
            value("mip_drift_fingerprint").is_some_and(|v| v == fingerprint_number(fingerprint) as f64);
        match value("mip_drift_fingerprint_change_timestamp_seconds") {
            Some(at) if same => at,
            _ => now,
        }
    }

    /// Pushes `body` to the group with `POST` (metrics of other names in the group are kept).
    ///
    /// # Errors
    /// A connection, TLS or timeout error, or a status other than 2xx (the Pushgateway's words).
    pub async fn push(&self, body: &str) -> anyhow::Result<()> {
        use anyhow::{Context as _, bail};
        let client = &self.client;
        let request = client
            .post(self.group_url())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(body.to_owned());
        let url = &self.url;
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", error_chain(&e)))
            .with_context(|| format!("failed to push the metrics to `{url}`"))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            bail!("the Pushgateway at `{url}` refused the metrics: {status} {}", detail.trim());
        }
        Ok(())
    }
}

/// An error and its causes on one line (reqwest's own message stops at "error sending request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One HTTP exchange on a loopback port: the request as received, answered `204`.
    async fn record_one_request() -> (u16, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the body its Content-Length announces.
            loop {
                let n = conn.read(&mut buf).await.expect("read");
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned)
                        })
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        break;
                    }
                }
            }
            conn.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").await.expect("answer");
            String::from_utf8_lossy(&seen).to_string()
        });
        (port, task)
    }

    #[tokio::test]
    async fn a_bearer_token_from_a_file_is_sent_and_the_group_is_one_base64_segment_per_label() {
        let (port, request) = record_one_request().await;
        let gateway = Gateway {
            url: Gateway::parse_url(&format!("http://127.0.0.1:{port}/prefix/")).expect("url"),
            job: "mip_drift".to_owned(),
            labels: vec![
                ("platform".to_owned(), "https://example.org/infra.git".to_owned()),
                ("empty".to_owned(), String::new()),
            ],
            auth: Auth::Bearer(mip_core::Sensitive::new("CANARY-bearer-token-0f3a9c")),
            client: Gateway::client(None, Duration::from_secs(10)).expect("client"),
        };
        gateway.push("mip_drift_success 1\n").await.expect("pushed");
        let seen = request.await.expect("recorded");
        let first = seen.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            "POST /prefix/metrics/job@base64/bWlwX2RyaWZ0/platform@base64/aHR0cHM6Ly9leGFtcGxlLm9yZy9pbmZyYS5naXQ=/empty@base64/= HTTP/1.1",
            "{seen}"
        );
        assert!(
            seen.to_ascii_lowercase().contains("authorization: bearer canary-bearer-token-0f3a9c\r\n"),
            "{seen}"
        );
        assert!(seen.ends_with("mip_drift_success 1\n"), "{seen}");
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_being_repeated() {
        let e = Gateway::parse_url("https://mip:hunter2@gateway:9091").expect_err("refused").to_string();
        assert!(e.contains("credentials in the URL") && !e.contains("hunter2"), "{e}");
        assert!(Gateway::parse_url("ftp://gateway").is_err());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_failed_check_reports_only_its_run() {
        let run = Run { started_unix: 1_700_000_000.5, duration: Duration::from_millis(1500) };
        let text = exposition_failed(&run);
        assert!(text.contains("mip_drift_success 0\n"), "{text}");
        assert!(text.contains("mip_drift_last_run_timestamp_seconds 1700000000.500\n"), "{text}");
        assert!(text.contains("mip_drift_duration_seconds 1.500\n"), "{text}");
        assert!(!text.contains("last_success") && !text.contains("mip_drift_detected"), "{text}");
    }
}
