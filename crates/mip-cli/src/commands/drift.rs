//! `mip drift`.

use crate::cli::{ClusterArgs, DriftFormat, InventoryArgs, PushArgs};
use crate::env::{Parts, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::metrics;
use crate::views;
use anyhow::Context as _;
use mip_engine::ops::drift::Drift;
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
    push: &PushArgs,
) -> Result<ExitStatus, CliError> {
    let parts = Parts::new(cluster);
    let runtime = runtime()?;
    // The push's settings are checked before the cluster is read.
    let gateway = push.pushgateway.as_deref().map(|url| gateway(url, push, inv, cluster)).transpose()?;
    let (mut run, started) = metrics::Run::start();
    let result =
        runtime.block_on(mip_engine::ops::drift::drift(&parts.env(), &super::load_options(inv), mip_only));
    run.duration = started.elapsed();
    if let Some(gateway) = &gateway {
        let pushed = runtime.block_on(async {
            let body = match &result {
                Ok(d) => {
                    let changed = gateway.changed_at(&d.fingerprint, run.started_unix).await;
                    metrics::exposition(d, &run, Some(changed))
                }
                Err(_) => metrics::exposition_failed(&run),
            };
            gateway.push(&body).await
        });
        // A failed push is reported; the check's own result decides the exit code.
        if let Err(e) = pushed {
            views::note(&format!("warning: {e:#}"));
        }
    }
    let d = result?;
    let out = match output {
        DriftFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&d).context("failed to serialise drift")?)
        }
        DriftFormat::Text => text(&d),
        DriftFormat::Prometheus => metrics::exposition(&d, &run, None),
    };
    views::stdout(&out)?;
    Ok(if d.is_empty() { ExitStatus::Success } else { ExitStatus::Changes })
}

/// The Pushgateway of `--pushgateway URL` and its flags; without a `platform` label, the
/// inventory's infra repository names the platform (`unknown` when the inventory cannot be read:
/// the check's own error says why).
fn gateway(
    url: &str,
    push: &PushArgs,
    inv: &InventoryArgs,
    cluster: &ClusterArgs,
) -> anyhow::Result<metrics::Gateway> {
    use anyhow::Context as _;
    let url = metrics::Gateway::parse_url(url)?;
    let mut labels = push.pushgateway_labels.clone();
    if !labels.iter().any(|(k, _)| k == "platform") {
        let platform = mip_engine::ops::drift::platform(&super::load_options(inv))
            .unwrap_or_else(|| "unknown".to_owned());
        labels.insert(0, ("platform".to_owned(), platform));
    }
    let auth = match (&push.pushgateway_user, &push.pushgateway_bearer_token_file) {
        (Some(user), _) => {
            let password = std::env::var("MIP_PUSHGATEWAY_PASSWORD")
                .context("`--pushgateway-user` needs the password in `MIP_PUSHGATEWAY_PASSWORD`")?;
            metrics::Auth::Basic { user: user.clone(), password: mip_core::Sensitive::new(password) }
        }
        (None, Some(file)) => {
            let token = std::fs::read_to_string(file).with_context(|| {
                format!("failed to read `--pushgateway-bearer-token-file {}`", file.display())
            })?;
            metrics::Auth::Bearer(mip_core::Sensitive::new(token.trim()))
        }
        (None, None) => metrics::Auth::None,
    };
    Ok(metrics::Gateway {
        url,
        job: push.pushgateway_job.clone(),
        labels,
        auth,
        client: metrics::Gateway::client(
            push.pushgateway_ca_file.as_deref(),
            cluster.connect.request_timeout,
        )?,
    })
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
