//! Waiting for the cluster: a CRD until it is Established, a deletion until the object is gone,
//! and the objects Argo CD generates until they exist.

use super::read::read_live;
use crate::Error;
use crate::seams::{Event, Hook};
use mip_core::ObjectRef;
use mip_core::cluster::{Cluster, ClusterError};
use mip_plan::Plan;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// How often a single object is looked at while waiting for it.
const OBJECT_POLL: Duration = Duration::from_millis(200);

/// Looks at one object until `done` says so, or `timeout` passes; then `late` makes the error
/// from the last look.
async fn poll<C: Cluster>(
    cluster: &C,
    addr: &ObjectRef,
    timeout: Duration,
    done: impl Fn(Option<&Value>) -> bool,
    late: impl FnOnce(Option<Value>) -> ClusterError,
) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let obj = cluster.get(addr).await?;
        if done(obj.as_ref()) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(late(obj));
        }
        tokio::time::sleep(OBJECT_POLL).await;
    }
}

/// Waits until a CRD reports `Established=True`.
pub(crate) async fn wait_established<C: Cluster>(
    cluster: &C,
    addr: &ObjectRef,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let established = |crd: Option<&Value>| {
        crd.and_then(|c| c.pointer("/status/conditions")).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Established")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
    };
    poll(cluster, addr, timeout, established, |_| ClusterError::Other {
        operation: format!("apply `{addr}`"),
        message: format!("not Established after {} s", timeout.as_secs()),
    })
    .await
}

/// Waits until a deleted object is really gone (foreground deletion and finalizers take
/// time); a deletion stuck on a finalizer is reported, naming the finalizers.
pub(crate) async fn wait_gone<C: Cluster>(
    cluster: &C,
    addr: &ObjectRef,
    timeout: Duration,
) -> Result<(), ClusterError> {
    poll(
        cluster,
        addr,
        timeout,
        |obj| obj.is_none(),
        |obj| {
            let finalizers = obj
                .as_ref()
                .and_then(|o| o.pointer("/metadata/finalizers"))
                .map(ToString::to_string)
                .unwrap_or_else(|| "none".into());
            ClusterError::Other {
                operation: format!("delete `{addr}`"),
                message: format!(
                    "still present after {} s (finalizers: {finalizers}); a finalizer is blocking it",
                    timeout.as_secs()
                ),
            }
        },
    )
    .await
}

/// Waits until every Argo-owned object the plan expects exists, or the timeout passes;
/// returns the ones still missing. A zero timeout does not wait (nothing is pending).
pub(crate) async fn wait_for_argo<C: Cluster>(
    cluster: &C,
    plan: &Plan,
    timeout: Duration,
    poll: Duration,
    hook: &dyn Hook,
) -> Result<Vec<ObjectRef>, Error> {
    if timeout.is_zero() {
        return Ok(Vec::new());
    }
    let mut missing: BTreeSet<ObjectRef> =
        plan.expected.iter().filter(|e| !e.present).map(|e| e.address.clone()).collect();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let found = read_live(cluster, &missing).await?;
        missing.retain(|a| !found.contains_key(a));
        hook.event(Event::Waiting(missing.len()));
        if missing.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(missing.into_iter().collect());
        }
        tokio::time::sleep(poll).await;
    }
}
