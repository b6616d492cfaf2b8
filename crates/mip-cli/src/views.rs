//! The only module that writes to the terminal: data on stdout, diagnostics on stderr.
#![expect(clippy::print_stderr, reason = "this module is the CLI's one writer to stderr")]

use crate::cli::DataFormat;
use crate::contract::{DiagnosticItem, ObjectItem, ValidateReport};
use mip_core::Diagnostics;
use mip_engine::ops::Loaded;
use std::fmt::Write as _;
use std::io::Write;

static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets the `-v` level.
pub fn set_verbosity(v: u8) {
    VERBOSITY.store(v, std::sync::atomic::Ordering::Relaxed);
}

/// The `-v` level.
pub fn verbosity() -> u8 {
    VERBOSITY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes data to stdout (a closed pipe is reported as `BrokenPipe` and exits 0).
pub fn stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Streams what `write` produces to stdout through a 64 KiB buffer, so a large document is
/// never held whole in memory. IO errors (a closed pipe) come back as they are.
pub fn stream_stdout(write: impl FnOnce(&mut dyn std::fmt::Write) -> std::fmt::Result) -> anyhow::Result<()> {
    struct Sink<W: Write> {
        out: W,
        error: Option<std::io::Error>,
    }
    impl<W: Write> std::fmt::Write for Sink<W> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.out.write_all(s.as_bytes()).map_err(|e| {
                self.error = Some(e);
                std::fmt::Error
            })
        }
    }
    let mut sink =
        Sink { out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()), error: None };
    let written = write(&mut sink);
    if let Some(e) = sink.error.take() {
        return Err(e.into());
    }
    written.map_err(|_| anyhow::anyhow!("failed to format the output"))?;
    sink.out.flush()?;
    Ok(())
}

/// Whether an error is a closed stdout pipe (`mip plan | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// One line per diagnostic on stderr.
pub fn diagnostics(d: &Diagnostics) {
    for x in d {
        note(&x.to_string());
    }
}

/// An error on stderr, in the one form of `STYLE.md`: `error: <what> (hint: <what to do>)`.
pub fn error(message: &str, hint: Option<&str>) {
    note(&error_line(message, hint));
}

/// The line [`error`] writes.
pub fn error_line(message: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) => format!("error: {message} (hint: {h})"),
        None => format!("error: {message}"),
    }
}

/// A note on stderr.
pub fn note(s: &str) {
    if crate::logging::json() {
        crate::logging::note(s);
    } else {
        eprintln!("{s}");
    }
}

/// The `validate` report of a valid inventory.
pub fn validate(loaded: &Loaded, format: DataFormat) -> String {
    let mip = loaded.desired.mip_owned().count();
    let argo = loaded.desired.argo_owned().count();
    match format {
        DataFormat::Json => {
            let objects = loaded
                .dag
                .order()
                .map(|a| {
                    let o = &loaded.desired.objects[a];
                    ObjectItem { address: a.clone(), owner: o.owner, step: o.step }
                })
                .collect();
            let mut report = validate_report(&loaded.path, &loaded.warnings);
            report.inventory_digest = Some(loaded.digest.clone());
            report.mip_owned = Some(mip);
            report.argo_owned = Some(argo);
            report.objects = Some(objects);
            json_document(&report)
        }
        DataFormat::Text => {
            let mut s = String::new();
            let _ = writeln!(
                s,
                "`{}` is valid: {} federation(s), {} cluster(s), {mip} object(s) owned by mip, {argo} expected from Argo CD, {} warning(s).",
                loaded.path,
                loaded.inventory.federations.len(),
                loaded.inventory.clusters.len(),
                loaded.warnings.iter().count()
            );
            s
        }
    }
}

/// The `validate` JSON report of `diagnostics` for `inventory`: valid when none is an error.
/// Only the fields every report has are filled in.
pub fn validate_report(inventory: &str, diagnostics: &Diagnostics) -> ValidateReport {
    let sorted = diagnostics.clone().sorted();
    ValidateReport {
        format_version: crate::contract::FORMAT_VERSION.to_owned(),
        valid: !sorted.has_errors(),
        inventory: inventory.to_owned(),
        diagnostics: sorted.iter().map(DiagnosticItem::from).collect(),
        warnings: sorted
            .iter()
            .filter(|d| d.severity == mip_core::Severity::Warning)
            .map(ToString::to_string)
            .collect(),
        inventory_digest: None,
        mip_owned: None,
        argo_owned: None,
        objects: None,
    }
}

/// A JSON document, pretty, with a final newline.
pub fn json_document(doc: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(doc).unwrap_or_default();
    s.push('\n');
    s
}
