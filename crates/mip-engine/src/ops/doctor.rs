//! `mip doctor`: the cluster read and each known Argo CD failure mode named with its fix.

use super::Env;
use crate::Error;
use crate::load::LoadOptions;
use crate::seams::Connector;

pub use crate::doctor::{Report, Severity};

/// Reads the cluster and reports.
///
/// # Errors
/// Inventory and cluster errors.
pub async fn doctor<K: Connector>(env: &Env<'_, K>, load: &LoadOptions) -> Result<Report, Error> {
    let loaded = env.load(load)?;
    let cluster = env.connect(&loaded).await?;
    env.counted(&cluster, crate::doctor::doctor(&cluster, &loaded)).await
}
