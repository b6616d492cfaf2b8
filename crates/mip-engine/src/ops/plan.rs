//! `mip plan`: offline against the state only, or live against the cluster and the state; the
//! plan optionally saved as a hashed plan file.

use super::Conn;
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
    /// `--target` addresses, as typed: plan only these and what they depend on.
    pub targets: Vec<String>,
}

/// A plan and the inventory it was made from.
#[derive(Debug)]
pub struct Planned {
    /// The loaded inventory (offline: its Argo-owned models released).
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
    // A live plan compares the models with what Argo CD generated (what it will change); an
    // offline plan needs only their addresses.
    if req.offline {
        loaded.release_argo_models();
    }
    let plan = if req.offline {
        let spec = env.state.spec(loaded.inventory.state.as_ref());
        if spec.kind == BackendKind::Cluster {
            return Err(Error::OfflineClusterState);
        }
        match env.backend(&loaded, None)?.read(false).await? {
            Some((snapshot, _)) => plan_against(&loaded, &prior_from(&snapshot)),
            None => plan_offline(&loaded),
        }
    } else {
        let cluster = env.connect(&loaded).await?;
        env.counted(&cluster, live(env, &cluster, &loaded)).await?
    };
    let plan = super::targets::narrow(plan, &req.targets)?;
    if let Some(path) = &req.out {
        save(&plan, path)?;
    }
    Ok(Planned { loaded, plan })
}

/// Writes a plan file (owner-only, atomically).
pub(crate) fn save(plan: &Plan, path: &std::path::Path) -> Result<(), Error> {
    let bytes = mip_plan::planfile::to_bytes(plan).map_err(|e| Error::WritePlanFile {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    mip_core::fsio::write_atomic(path, &bytes, Some(0o600))
        .map_err(|source| Error::WritePlanFile { path: path.display().to_string(), source })
}

/// The live plan against the cluster and the state read without the lock.
pub(crate) async fn live<K: Connector>(
    env: &Env<'_, K>,
    cluster: &Conn<K>,
    loaded: &Loaded,
) -> Result<Plan, Error> {
    Ok(live_read(env, cluster, loaded).await?.0)
}

/// [`live`], and every object the plan read.
pub(crate) async fn live_read<K: Connector>(
    env: &Env<'_, K>,
    cluster: &Conn<K>,
    loaded: &Loaded,
) -> Result<(Plan, std::collections::BTreeMap<mip_core::ObjectRef, serde_json::Value>), Error> {
    let snapshot = match env.take_peeked() {
        Some(snapshot) => Some(snapshot),
        None => env.backend(loaded, Some(cluster))?.read(false).await?.map(|(s, _)| s),
    };
    crate::live::plan::plan_live_read(cluster, loaded, snapshot.as_ref()).await
}
