//! `mip drift`: the live plan, reduced to what differs.

use super::Env;
use crate::Error;
use crate::live::{Drift, drift_of};
use crate::load::LoadOptions;
use crate::seams::Connector;

/// Compares the cluster with the inventory.
///
/// # Errors
/// Inventory, cluster and state errors.
pub async fn drift<K: Connector>(env: &Env<'_, K>, load: &LoadOptions) -> Result<Drift, Error> {
    let mut loaded = env.load(load)?;
    loaded.release_argo_models();
    let cluster = env.connect(&loaded).await?;
    let plan = env.counted(&cluster, super::plan::live(env, &cluster, &loaded)).await?;
    Ok(drift_of(&plan))
}
