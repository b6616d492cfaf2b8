//! `mip doctor` (alias `mip status`): reads the cluster, names each known Argo CD failure mode
//! with its fix. Text: one line per finding; JSON: `{format_version, argocd_namespace, healthy,
//! checked, findings[]}`. Exit 0 when healthy, 2 when something was found, 1 on error.

use crate::cli::{ClusterArgs, DataFormat, InventoryArgs};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use anyhow::Context;
use mip_engine::ops::doctor::{Report, Severity};
use std::fmt::Write as _;

/// The text report: one line per finding, then a summary line.
fn text(r: &Report) -> String {
    let mut s = String::new();
    for f in &r.findings {
        let _ = writeln!(s, "{}[{}] {}: {} (fix: {})", f.severity.as_str(), f.code, f.address, f.what, f.fix);
    }
    let checked = r.checked.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ");
    if r.healthy {
        let _ =
            writeln!(s, "Healthy: no known failure mode in `{}` ({checked} checked).", r.argocd_namespace);
    } else {
        let errors = r.findings.iter().filter(|f| f.severity == Severity::Error).count();
        let _ = writeln!(
            s,
            "{} problem(s) in `{}`: {errors} error(s), {} warning(s) ({checked} checked).",
            r.findings.len(),
            r.argocd_namespace,
            r.findings.len() - errors
        );
    }
    s
}

/// `mip doctor`.
pub fn doctor(inv: &InventoryArgs, args: &ClusterArgs, output: DataFormat) -> Result<ExitStatus, CliError> {
    let parts = crate::env::Parts::new(args);
    let load = crate::commands::load_options(inv);
    let report = crate::env::runtime()?.block_on(mip_engine::ops::doctor::doctor(&parts.env(), &load))?;
    let out = match output {
        DataFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&report).context("failed to serialise the report")?)
        }
        DataFormat::Text => text(&report),
    };
    views::stdout(&out)?;
    Ok(if report.healthy { ExitStatus::Success } else { ExitStatus::Changes })
}
