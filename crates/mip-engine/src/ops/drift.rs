//! `mip drift`: the live plan, reduced to what differs, and what Argo CD reports out of sync or
//! degraded, or holds with another spec than the rendered tree says.

use super::Env;
use crate::Error;
use crate::live::drift::argo_drift;
use crate::live::drift_of;

pub use crate::live::Drift;
use crate::load::LoadOptions;
use crate::seams::Connector;

/// Compares the cluster with the inventory.
///
/// # Errors
/// Inventory, cluster and state errors.
pub async fn drift<K: Connector>(
    env: &Env<'_, K>,
    load: &LoadOptions,
    mip_only: bool,
) -> Result<Drift, Error> {
    let loaded = env.load(load)?;
    let cluster = env.connect(&loaded).await?;
    let (mut plan, live) = env.counted(&cluster, super::plan::live_read(env, &cluster, &loaded)).await?;
    if mip_only {
        // Only mip's own objects: what Argo CD has yet to generate is its side too.
        plan.expected.clear();
        return Ok(drift_of(&plan, Vec::new()));
    }
    let argo = argo_drift(&loaded.desired, &plan, &live);
    Ok(drift_of(&plan, argo))
}

/// The platform a drift check is about, for grouping its metrics: the inventory's infra
/// repository URL (`None` when the inventory cannot be read).
pub fn platform(load: &LoadOptions) -> Option<String> {
    crate::load::load(load).ok().map(|l| l.inventory.repositories.infra.url.value.clone())
}
