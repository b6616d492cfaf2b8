//! `mip doctor` (alias `mip status`): reads the cluster, names each known Argo CD failure mode
//! with its fix. Text: one line per finding; JSON: `{format_version, argocd_namespace, healthy,
//! checked, findings[]}`. Exit 0 when healthy, 2 when something was found, 1 on error.

use crate::cli::{ClusterArgs, InventoryArgs, OutputFormat};
use crate::exit::ExitStatus;
use crate::{live, views};
use anyhow::Context;
use mip_engine::doctor::Report;
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
        let errors = r.findings.iter().filter(|f| f.severity == mip_engine::doctor::Severity::Error).count();
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
pub fn doctor(inv: &InventoryArgs, args: &ClusterArgs, output: OutputFormat) -> anyhow::Result<ExitStatus> {
    let loaded = match crate::load(inv)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let rt = live::runtime()?;
    let cluster = match live::connect(&rt, args) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Err(code) = live::guard(&loaded, &cluster) {
        return Ok(code);
    }
    let report = match rt.block_on(mip_engine::doctor::doctor(&cluster, &loaded)) {
        Ok(r) => r,
        Err(e) => return Ok(live::fail(&e)),
    };
    live::stats(&cluster);
    let out = match output {
        OutputFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&report).context("failed to serialise the report")?)
        }
        OutputFormat::Text | OutputFormat::Markdown => text(&report),
    };
    views::stdout(&out)?;
    Ok(if report.healthy { ExitStatus::Success } else { ExitStatus::Changes })
}
