//! `mip drift`.

use crate::cli::{ClusterArgs, DriftFormat, InventoryArgs};
use crate::env::{Parts, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::metrics;
use crate::views;
use anyhow::Context as _;
use mip_engine::live::Drift;
use std::fmt::Write as _;

/// Compares and reports; exit 2 when something drifted.
///
/// # Errors
/// The engine's errors.
pub fn run(
    inv: &InventoryArgs,
    cluster: &ClusterArgs,
    output: DriftFormat,
    mip_only: bool,
    pushgateway: Option<&str>,
) -> Result<ExitStatus, CliError> {
    let parts = Parts::new(cluster);
    let runtime = runtime()?;
    let (mut run, started) = metrics::Run::start();
    let result =
        runtime.block_on(mip_engine::ops::drift::drift(&parts.env(), &super::load_options(inv), mip_only));
    run.duration = started.elapsed();
    if let Some(url) = pushgateway {
        let body = match &result {
            Ok(d) => metrics::exposition(d, &run),
            Err(_) => metrics::exposition_failed(&run),
        };
        // A failed push is reported; the check's own result decides the exit code.
        if let Err(e) = runtime.block_on(metrics::push(url, &body, cluster.connect.request_timeout)) {
            views::note(&format!("warning: {e:#}"));
        }
    }
    let d = result?;
    let out = match output {
        DriftFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&d).context("failed to serialise drift")?)
        }
        DriftFormat::Text => text(&d),
        DriftFormat::Prometheus => metrics::exposition(&d, &run),
    };
    views::stdout(&out)?;
    Ok(if d.is_empty() { ExitStatus::Success } else { ExitStatus::Changes })
}

fn text(d: &Drift) -> String {
    if d.is_empty() {
        return "No drift: the cluster matches the inventory.\n".to_owned();
    }
    let mut s = String::new();
    for c in &d.changes {
        let _ = writeln!(s, "{:>3} {} ({})", c.action.symbol(), c.address, c.reason);
        for l in c.diff.iter().flat_map(|diff| diff.lines()) {
            let _ = writeln!(s, "      {l}");
        }
    }
    for m in &d.missing {
        let _ = writeln!(s, " <= {m} (expected from Argo CD, missing)");
    }
    for a in &d.argo {
        let _ = writeln!(s, "  ! {} [argo:{}] {}", a.address, a.kind.as_str(), a.detail);
    }
    let _ = writeln!(
        s,
        "Drift: {} object(s) differ, {} missing, {} in Argo CD; fingerprint {}",
        d.changes.len(),
        d.missing.len(),
        d.argo.len(),
        d.fingerprint
    );
    s
}
