//! One object's write and its waits: server-side apply (a CRD then waits until Established), a
//! delete that waits until the object is gone, and the refresh asked of Argo CD after a root
//! Application is written. (What Argo CD reconciles is watched by [`super::gates`].)

use mip_core::cluster::{ApplyOptions, Cluster, ClusterError};
use mip_core::{Action, ObjectRef};
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

/// Argo CD's annotation that asks for a refresh of an Application now, as `argocd app get
/// --hard-refresh` sets it; Argo CD removes it once done.
const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";
/// The ApplicationSet controller's counterpart: regenerate from the generators now (what its
/// Git webhook does), instead of at its requeue period.
const APPSET_REFRESH_ANNOTATION: &str = "argocd.argoproj.io/application-set-refresh";

/// Asks Argo CD to reconcile `addr` now instead of at its next resync (an Application) or
/// requeue (an ApplicationSet), under a field manager of its own. Best effort: a refused refresh
/// only means waiting for the resync period. Whether it was asked.
pub(crate) async fn request_refresh<C: Cluster>(cluster: &C, addr: &ObjectRef, action: Action) -> bool {
    if addr.group != "argoproj.io" || action == Action::Delete {
        return false;
    }
    let (key, value) = match addr.kind.as_str() {
        // `hard`: the controller resolves the branch again (no revision cache) and renders
        // anew, as `argocd app get --hard-refresh` does; `normal` would compare with a
        // revision cached up to the repo-server's expiry (3 min by default).
        "Application" => (REFRESH_ANNOTATION, "hard"),
        "ApplicationSet" => (APPSET_REFRESH_ANNOTATION, "true"),
        _ => return false,
    };
    cluster.annotate(addr, "mip-refresh", key, value).await.unwrap_or(false)
}

/// One write: a server-side apply (a CRD then waits until Established, so its custom
/// resources can follow), or a delete that waits until the object is gone.
pub(crate) async fn write<C: Cluster>(
    cluster: &C,
    addr: &ObjectRef,
    action: Action,
    manifest: &Value,
    force: bool,
    timeout: Duration,
) -> Result<Option<Value>, ClusterError> {
    if action == Action::Delete {
        cluster.delete(addr).await?;
        return wait_gone(cluster, addr, timeout).await.map(|()| None);
    }
    let obj = cluster.apply(addr, manifest, ApplyOptions { dry_run: false, force }).await?;
    if addr.kind == "CustomResourceDefinition" {
        wait_established(cluster, addr, timeout).await?;
    }
    Ok(Some(obj))
}
