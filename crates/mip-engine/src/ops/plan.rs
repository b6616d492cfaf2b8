//! `mip plan`: offline against the state only, or live against the cluster and the state; the
//! plan optionally saved as a hashed plan file.

use super::Env;
use crate::Error;
use crate::backend::BackendKind;
use crate::load::{LoadOptions, Loaded, plan_against, plan_offline, prior_from};
use crate::seams::Connector;
use mip_plan::Plan;
use std::path::PathBuf;

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The inventory.
    pub load: LoadOptions,
    /// Against the local state only, without contacting a cluster.
    pub offline: bool,
    /// Save the plan here (owner-only file).
    pub out: Option<PathBuf>,
}

/// A plan and the inventory it was made from.
#[derive(Debug)]
pub struct Planned {
    /// The loaded inventory (its Argo-owned models released).
    pub loaded: Loaded,
    /// The plan.
    pub plan: Plan,
}

/// Plans (see the [module docs](self)).
///
/// # Errors
/// Inventory, cluster, state and plan-file errors; [`Error::OfflineClusterState`] for
/// `--offline` with the state in the cluster.
pub async fn plan<K: Connector>(env: &Env<'_, K>, req: &PlanRequest) -> Result<Planned, Error> {
    let mut loaded = env.load(&req.load)?;
    loaded.release_argo_models();
    let plan = if req.offline {
        let spec = env.state.spec(loaded.inventory.state.as_ref());
        if spec.kind == BackendKind::Cluster {
            return Err(Error::OfflineClusterState);
        }
        match env.backends.build(&spec, None)?.read(false).await? {
            Some((snapshot, _)) => plan_against(&loaded, &prior_from(&snapshot)),
            None => plan_offline(&loaded),
        }
    } else {
        let cluster = env.connect(&loaded).await?;
        env.counted(&cluster, live(env, &cluster, &loaded)).await?
    };
    if let Some(path) = &req.out {
        let bytes = mip_plan::planfile::to_bytes(&plan).map_err(|e| Error::WritePlanFile {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        mip_core::fsio::write_atomic(path, &bytes, Some(0o600))
            .map_err(|source| Error::WritePlanFile { path: path.display().to_string(), source })?;
    }
    Ok(Planned { loaded, plan })
}

/// The live plan against the cluster and the state read without the lock.
pub(crate) async fn live<K: Connector>(
    env: &Env<'_, K>,
    cluster: &K::Cluster,
    loaded: &Loaded,
) -> Result<Plan, Error> {
    let backend = env.backend(loaded.inventory.state.as_ref(), Some(cluster))?;
    let snapshot = backend.read(false).await?.map(|(s, _)| s);
    crate::live::plan_live(cluster, loaded, snapshot.as_ref()).await
}
