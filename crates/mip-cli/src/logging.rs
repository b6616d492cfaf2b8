//! Logs on stderr through `tracing`: `RUST_LOG` when set (the `tracing-subscriber` filter
//! syntax, e.g. `RUST_LOG=kube=debug` for every API request kube makes), else the `-v` level:
//!
//! | flag | filter |
//! |---|---|
//! | none | `warn` |
//! | `-v` | `mip=info,warn` |
//! | `-vv` | `mip=debug,kube=debug,info` (each API request: method, URL, status, duration) |
//! | `-vvv` | `mip=trace,kube=trace,debug` |
//!
//! `--log-format json` writes one JSON object per line (`timestamp`, `level`, `target`,
//! `fields.message`, kube's span fields) for log collectors, and mip's own notes and progress
//! lines (otherwise plain text for people) become such objects too, with `target` `mip`.
//!
//! No secret value is logged: mip never hands one to a log call, and kube's request traces
//! carry methods, URLs (names, never values) and status codes, never headers or bodies; the
//! canary tests run with `RUST_LOG=trace` and grep every line.

use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Whether logs are JSON lines (mip's notes then become log events too).
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// The filter of a `-v` level when `RUST_LOG` is not set.
fn default_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "mip=info,warn",
        2 => "mip=debug,kube=debug,info",
        _ => "mip=trace,kube=trace,debug",
    }
}

/// Installs the subscriber. A `RUST_LOG` that does not parse is reported and the `-v` level is
/// used instead.
pub fn init(verbose: u8, format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let (filter, bad) = match from_env.as_deref().map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, None),
        Some(Err(e)) => (EnvFilter::new(default_filter(verbose)), Some(e.to_string())),
        None => (EnvFilter::new(default_filter(verbose)), None),
    };
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    // mip's notes (the summary, progress lines, errors) are output, not logs: never filtered.
    let filter = match NOTE.parse() {
        Ok(always) => filter.add_directive(always),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(ansi).with_target(true).try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
    if installed.is_err() {
        return;
    }
    if let Some(e) = bad {
        tracing::warn!(target: "mip", "`RUST_LOG` is not a valid filter ({e}); using the `-v` level");
    }
}

/// The target of mip's notes, shown whatever the filter says.
const NOTE: &str = "mip::note=trace";

/// A note as a log event (JSON mode): errors (`error: …`, `file:1:2: error[…]`) at error level,
/// warnings at warn, the rest at info.
pub fn note(text: &str) {
    let text = text.trim_end();
    if text.starts_with("error") || text.contains(": error[") {
        tracing::error!(target: "mip::note", "{text}");
    } else if text.starts_with("warning") || text.contains(": warning[") {
        tracing::warn!(target: "mip::note", "{text}");
    } else {
        tracing::info!(target: "mip::note", "{text}");
    }
}
