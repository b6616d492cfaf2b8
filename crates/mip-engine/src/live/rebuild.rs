//! Rebuilding a lost state from the cluster.

use super::read::read_live;
use super::secrets::{live_value, value_hashes};
use crate::Error;
use crate::load::Loaded;
use mip_core::ObjectRef;
use mip_core::cluster::Cluster;
use mip_state::{DynStore, ManagedEntry, Record};
use serde_json::Value;
use std::collections::BTreeSet;

/// Records every mip-owned object of the inventory that exists and whose fields are owned by
/// field manager `mip`, with the inventory's fingerprint. Returns how many were recorded.
///
/// # Errors
/// Cluster and state errors.
pub async fn rebuild_state<C: Cluster>(
    cluster: &C,
    store: &DynStore,
    loaded: &Loaded,
) -> Result<usize, Error> {
    let addrs: BTreeSet<ObjectRef> = loaded.desired.mip_owned().map(|o| (*o.addr).clone()).collect();
    let live = read_live(cluster, &addrs).await?;
    let lineage = store.snapshot()?.lineage;
    let records: Vec<Record> = loaded
        .desired
        .mip_owned()
        .filter_map(|o| {
            let l = live.get(&o.addr)?;
            mip_plan::diff::owned_fields(l, mip_core::FIELD_MANAGER)?;
            let uid = l.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
            let secret_hashes = value_hashes(&lineage, &o.addr, o.sensitive.keys(), |k| live_value(l, k));
            let via = super::clusters::via_of(cluster, &o.addr);
            let entry =
                ManagedEntry { fingerprint: mip_plan::fingerprint(o), uid, serial: 0, secret_hashes, via };
            Some(((*o.addr).clone(), Some(entry)))
        })
        .collect();
    let n = records.len();
    store.record_many(records)?;
    Ok(n)
}
