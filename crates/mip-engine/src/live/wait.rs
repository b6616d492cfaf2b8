//! One object's write and its waits: server-side apply (a CRD then waits until Established), a
//! delete that waits until the object is gone, and the refresh asked of Argo CD after a root
//! Application is written. (What Argo CD reconciles is watched by [`super::gates`].)

use super::outcome::Interrupt;
use mip_core::cluster::{ApplyOptions, Cluster, ClusterError};
use mip_core::{Action, ObjectRef};
use serde_json::Value;
use std::time::Duration;

/// How often a single object is looked at while waiting for it.
const OBJECT_POLL: Duration = Duration::from_millis(200);

/// How long one object's wait may last, and what stops it early.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    /// When the wait gives up.
    pub until: tokio::time::Instant,
    /// A signal: the wait ends at once (the object is reported as still there).
    pub interrupt: Interrupt,
}

impl Bound {
    /// `timeout` from now, or the run's `deadline` if sooner.
    pub(crate) fn new(
        timeout: Duration,
        deadline: Option<tokio::time::Instant>,
        interrupt: Interrupt,
    ) -> Bound {
        let until = tokio::time::Instant::now() + timeout;
        Bound { until: deadline.map_or(until, |d| d.min(until)), interrupt }
    }
}

/// How a wait ended without its object being ready.
enum Late {
    /// The time ran out.
    Timeout,
    /// A signal stopped it.
    Interrupted,
}

/// Looks at one object until `done` says so, the bound's time passes or its interrupt fires;
/// then `late` makes the error from the last look.
async fn poll<C: Cluster>(
    cluster: &C,
    addr: &ObjectRef,
    bound: &Bound,
    done: impl Fn(Option<&Value>) -> bool,
    late: impl FnOnce(Option<Value>, Late, Duration) -> ClusterError,
) -> Result<(), ClusterError> {
    let started = tokio::time::Instant::now();
    loop {
        let obj = cluster.get(addr).await?;
        if done(obj.as_ref()) {
            return Ok(());
        }
        if bound.interrupt.is_triggered() {
            return Err(late(obj, Late::Interrupted, started.elapsed()));
        }
        if tokio::time::Instant::now() >= bound.until {
            return Err(late(obj, Late::Timeout, started.elapsed()));
        }
        let next = (tokio::time::Instant::now() + OBJECT_POLL).min(bound.until);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = bound.interrupt.triggered() => {}
        }
    }
}

/// Waits until a CRD reports `Established=True`.
pub(crate) async fn wait_established<C: Cluster>(
    cluster: &C,
    addr: &ObjectRef,
    bound: &Bound,
) -> Result<(), ClusterError> {
    let established = |crd: Option<&Value>| {
        crd.and_then(|c| c.pointer("/status/conditions")).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Established")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
    };
    poll(cluster, addr, bound, established, |_, late, waited| ClusterError::Other {
        operation: format!("apply `{addr}`"),
        message: match late {
            Late::Timeout => format!("not Established after {} s", waited.as_secs()),
            Late::Interrupted => "interrupted before it was Established".to_owned(),
        },
    })
    .await
}

/// Waits until a deleted object is really gone (foreground deletion and finalizers take
/// time); one still there at the end is reported with what holds it
/// ([`ClusterError::StillThere`]).
pub(crate) async fn wait_gone<C: Cluster>(
    cluster: &C,
    addr: &ObjectRef,
    bound: &Bound,
) -> Result<(), ClusterError> {
    poll(
        cluster,
        addr,
        bound,
        |obj| obj.is_none(),
        |obj, late, waited| ClusterError::StillThere {
            addr: addr.clone(),
            finalizers: obj.as_ref().map(finalizers).unwrap_or_default(),
            interrupted: matches!(late, Late::Interrupted),
            waited_s: waited.as_secs(),
        },
    )
    .await
}

/// An object's finalizers: `metadata.finalizers`, then a namespace's `spec.finalizers` (the
/// namespace controller's `kubernetes`).
fn finalizers(obj: &Value) -> Vec<String> {
    ["/metadata/finalizers", "/spec/finalizers"]
        .iter()
        .filter_map(|p| obj.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
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
    bound: &Bound,
) -> Result<Option<Value>, ClusterError> {
    if action == Action::Delete {
        cluster.delete(addr).await?;
        return wait_gone(cluster, addr, bound).await.map(|()| None);
    }
    let obj = cluster.apply(addr, manifest, ApplyOptions { dry_run: false, force }).await?;
    if addr.is(mip_core::Kind::CustomResourceDefinition) {
        wait_established(cluster, addr, bound).await?;
    }
    Ok(Some(obj))
}
