//! Waiting for one object: a CRD until it is Established, a deletion until the object is gone.
//! (What Argo CD reconciles is watched by [`super::gates`].)

use mip_core::ObjectRef;
use mip_core::cluster::{Cluster, ClusterError};
use serde_json::Value;
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
