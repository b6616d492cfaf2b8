//! `mip drift`.

use crate::cli::{ClusterArgs, DataFormat, InventoryArgs};
use crate::env::{Parts, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
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
    output: DataFormat,
    mip_only: bool,
) -> Result<ExitStatus, CliError> {
    let parts = Parts::new(cluster);
    let d = runtime()?.block_on(mip_engine::ops::drift::drift(&parts.env(), &super::load_options(inv), mip_only))?;
    let out = match output {
        DataFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&d).context("failed to serialise drift")?)
        }
        DataFormat::Text => text(&d),
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
