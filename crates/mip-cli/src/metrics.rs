//! `mip drift --output prometheus` and `--pushgateway URL`: the drift report as Prometheus
//! metrics, in the text exposition format (what a node-exporter textfile collector reads and a
//! Pushgateway accepts).
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `mip_drift_objects{kind, finding}` | gauge | objects per Kubernetes kind and finding: `drifted` (a mip-owned object differs, is absent, or is managed but no longer in the inventory), `missing` (an object Argo CD should have generated), `out_of_sync`, `degraded` (unhealthy) and `spec_differs` (Argo CD's side) |
//! | `mip_drift_findings{finding}` | gauge | the same, summed over kinds; every finding present, 0 when none |
//! | `mip_drift_detected` | gauge | 1 when anything drifted (exit 2), else 0 |
//! | `mip_drift_info{fingerprint}` | gauge | always 1; the label is the report's stable fingerprint, for deduplicating alerts |
//! | `mip_drift_success` | gauge | 1 when the check ran, 0 when it failed (exit 1) |
//! | `mip_drift_last_run_timestamp_seconds` | gauge | when the check started (Unix time) |
//! | `mip_drift_last_success_timestamp_seconds` | gauge | when the last check that ran started |
//! | `mip_drift_duration_seconds` | gauge | how long the check took |
//!
//! A failed check reports only `mip_drift_success 0`, its run time and duration: pushed with
//! `POST` (which replaces only the metrics of the same names), the Pushgateway keeps the last
//! successful run's counts and timestamp, so "drift" and "the check stopped running" stay two
//! separate alerts (`examples/cron/prometheus-rule.yaml`).

use mip_engine::live::Drift;
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

/// The metrics of a drift report.
pub fn exposition(d: &Drift, run: &Run) -> String {
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
        "mip_drift_info",
        "The drift report's fingerprint (stable while the same drift persists).",
    );
    let _ = writeln!(out, "mip_drift_info{{fingerprint=\"{}\"}} 1", escape(&d.fingerprint));
    timing(&mut out, run, true);
    out
}

/// The metrics of a check that failed.
pub fn exposition_failed(run: &Run) -> String {
    let mut out = String::new();
    timing(&mut out, run, false);
    out
}

/// Pushes `body` to the Pushgateway at `url` (`http://host:port`, optionally with a path
/// prefix) under job `mip_drift`, with `POST` (metrics of other names in the group are kept).
///
/// # Errors
/// A URL that is not `http://…`, a connection or timeout error, or a status other than 2xx.
pub async fn push(url: &str, body: &str, timeout: Duration) -> anyhow::Result<()> {
    use anyhow::{Context as _, bail};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("`--pushgateway {url}`: only `http://` URLs are supported (a Pushgateway inside the cluster)");
    };
    let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p.trim_end_matches('/')));
    if authority.is_empty() || authority.contains('@') {
        bail!("`--pushgateway {url}`: expected `http://host:port[/path]`");
    }
    let address = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    let path = if prefix.is_empty() {
        "/metrics/job/mip_drift".to_owned()
    } else {
        format!("/{prefix}/metrics/job/mip_drift")
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", timeout.as_secs()))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("failed to push the metrics to `{url}`"))?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with('2') {
        let first = text.lines().next().unwrap_or("no response");
        let detail = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        bail!("the Pushgateway at `{url}` refused the metrics: {first} {detail}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
