//! The Lease that locks the cluster state: taken by a writer, renewed by a heartbeat, taken
//! over once expired, and given up (fencing the holder's writes) once lost. See the
//! [module docs](super) for why it is safe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams, Preconditions};
use mip_core::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use mip_state::{Error, LockInfo, Operation};

use super::{ClusterStateConfig, LABEL_STATE, STATE_MANAGER, Shared, is_conflict, is_not_found};

/// Annotations of the Lease, naming the holder for the next opener.
const ANNOTATION_HOLDER: &str = "mip.ebrains.eu/holder";
const ANNOTATION_PID: &str = "mip.ebrains.eu/pid";
const ANNOTATION_OPERATION: &str = "mip.ebrains.eu/operation";
const ANNOTATION_STARTED: &str = "mip.ebrains.eu/started";

fn now() -> Timestamp {
    Timestamp::now()
}

/// Who holds `lease`, for the next opener's error message.
fn holder_of(lease: &Lease) -> LockInfo {
    let annotations = lease.metadata.annotations.clone().unwrap_or_default();
    let spec = lease.spec.clone().unwrap_or_default();
    let expires = spec.renew_time.or(spec.acquire_time).map(|t| {
        t.0.as_second().max(0).unsigned_abs()
            + u64::from(spec.lease_duration_seconds.unwrap_or(0).max(0).unsigned_abs())
    });
    LockInfo {
        holder: annotations
            .get(ANNOTATION_HOLDER)
            .cloned()
            .or(spec.holder_identity)
            .unwrap_or_else(|| "unknown".to_owned()),
        pid: annotations.get(ANNOTATION_PID).and_then(|p| p.parse().ok()).unwrap_or(0),
        operation: annotations
            .get(ANNOTATION_OPERATION)
            .map_or(Operation::Unknown, |op| Operation::from(op.as_str())),
        started_unix: annotations.get(ANNOTATION_STARTED).and_then(|s| s.parse().ok()).unwrap_or(0),
        expires_unix: expires,
    }
}

/// Whether nobody holds `lease`: released, or not renewed within its duration.
fn is_free(lease: &Lease) -> bool {
    let Some(spec) = &lease.spec else { return true };
    if spec.holder_identity.as_deref().unwrap_or("").is_empty() {
        return true;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else { return true };
    let duration_ms = i64::from(spec.lease_duration_seconds.unwrap_or(0)) * 1000;
    renewed.0.as_millisecond() + duration_ms < now().as_millisecond()
}

/// The Lease this process writes to hold the lock.
fn our_lease(
    config: &ClusterStateConfig,
    identity: &str,
    info: &LockInfo,
    previous: Option<&Lease>,
) -> Lease {
    let t = MicroTime(now());
    let transitions = previous
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.lease_transitions)
        .map_or(0, |n| n.saturating_add(1));
    Lease {
        metadata: ObjectMeta {
            name: Some(config.lock_name()),
            labels: Some(BTreeMap::from([
                (LABEL_STATE.to_owned(), config.name.clone()),
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
            ])),
            annotations: Some(BTreeMap::from([
                (ANNOTATION_HOLDER.to_owned(), info.holder.clone()),
                (ANNOTATION_PID.to_owned(), info.pid.to_string()),
                (ANNOTATION_OPERATION.to_owned(), info.operation.to_string()),
                (ANNOTATION_STARTED.to_owned(), info.started_unix.to_string()),
            ])),
            resource_version: previous.and_then(|l| l.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.to_owned()),
            lease_duration_seconds: Some(config.ttl_seconds()),
            acquire_time: Some(t.clone()),
            renew_time: Some(t),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

/// Takes the Lease, or says who holds it.
pub(super) async fn acquire(shared: &Shared, identity: &str, info: &LockInfo) -> Result<Lease, Error> {
    let config = &shared.config;
    let name = config.lock_name();
    let params = PostParams { field_manager: Some(STATE_MANAGER.to_owned()), ..PostParams::default() };
    for _ in 0..5 {
        shared.cluster.count_read();
        let existing = shared
            .retry(|| shared.leases.get_opt(&name))
            .await
            .map_err(|e| shared.remote(e, "get", "coordination.k8s.io/leases", &name))?;
        let result = match &existing {
            None => {
                shared.cluster.count_write(false);
                let lease = our_lease(config, identity, info, None);
                shared.retry(|| shared.leases.create(&params, &lease)).await
            }
            // Ours already: a create or replace whose answer was lost, then retried.
            Some(lease)
                if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(identity) =>
            {
                return Ok(lease.clone());
            }
            Some(lease) if is_free(lease) => {
                shared.cluster.count_write(false);
                shared.leases.replace(&name, &params, &our_lease(config, identity, info, Some(lease))).await
            }
            Some(lease) => return Err(Error::LockHeld(holder_of(lease))),
        };
        match result {
            Ok(lease) => return Ok(lease),
            // Someone else took or changed it between our read and our write: look again.
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(shared.remote(e, "create", "coordination.k8s.io/leases", &name)),
        }
    }
    shared.cluster.count_read();
    match shared.retry(|| shared.leases.get_opt(&name)).await {
        Ok(Some(lease)) => Err(Error::LockHeld(holder_of(&lease))),
        _ => Err(shared.lock_lost("the Lease kept changing while mip tried to take it")),
    }
}

/// Renews the Lease every third of the TTL until told to stop; returns the Lease if it is
/// still ours then (to release it), `None` once it was lost (the reason is in `shared.lost`).
pub(super) async fn heartbeat(
    shared: Arc<Shared>,
    mut lease: Lease,
    identity: String,
    stop: Arc<tokio::sync::Notify>,
) -> Option<Lease> {
    let ttl = shared.config.lock_ttl.max(Duration::from_secs(1));
    let every = ttl / 3;
    let name = shared.config.lock_name();
    let params = PostParams { field_manager: Some(STATE_MANAGER.to_owned()), ..PostParams::default() };
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = stop.notified() => return Some(lease),
            () = tokio::time::sleep(every) => {}
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(now()));
        }
        shared.cluster.count_write(false);
        match shared.retry(|| shared.leases.replace(&name, &params, &lease)).await {
            Ok(l) => {
                lease = l;
                renewed = Instant::now();
                continue;
            }
            Err(e) if is_conflict(&e) || is_not_found(&e) => {
                shared.cluster.count_read();
                match shared.retry(|| shared.leases.get_opt(&name)).await {
                    Ok(Some(l))
                        if l.spec.as_ref().and_then(|s| s.holder_identity.as_deref())
                            == Some(identity.as_str()) =>
                    {
                        lease = l;
                        continue;
                    }
                    Ok(other) => {
                        let by = other.as_ref().map_or_else(
                            || "deleted".to_owned(),
                            |l| format!("taken over, now {}", holder_of(l)),
                        );
                        *shared.lost() = Some(format!("the Lease `{name}` was {by}"));
                        return None;
                    }
                    Err(_) => {}
                }
            }
            Err(_) => {}
        }
        if renewed.elapsed() >= ttl {
            *shared.lost() = Some(format!("the Lease `{name}` could not be renewed for {ttl:?}"));
            return None;
        }
    }
}

/// Deletes our Lease (only if nobody changed it since our last renewal).
pub(super) async fn release(shared: &Shared, lease: Lease) {
    let params = DeleteParams {
        preconditions: Some(Preconditions { resource_version: lease.metadata.resource_version, uid: None }),
        ..DeleteParams::default()
    };
    shared.cluster.count_write(false);
    let name = shared.config.lock_name();
    let _ = shared.retry(|| shared.leases.delete(&name, &params)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Lease as the build before the typed operation wrote it: its annotations read as they
    /// were, an operation this build does not know kept, a missing one [`Operation::Unknown`].
    #[test]
    fn an_old_lease_names_its_holder_and_operation() {
        let old: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "mip-state-lock", "annotations": {
                "mip.ebrains.eu/holder": "ana@node1", "mip.ebrains.eu/pid": "42",
                "mip.ebrains.eu/operation": "state rm", "mip.ebrains.eu/started": "1700000000"}},
            "spec": {"holderIdentity": "ana@node1/42/x", "leaseDurationSeconds": 30,
                     "renewTime": "2023-11-14T22:13:20.000000Z"}
        }))
        .unwrap();
        let info = holder_of(&old);
        assert!(matches!(info.operation, Operation::StateRm), "{info:?}");
        assert_eq!(
            (info.holder.as_str(), info.pid, info.expires_unix),
            ("ana@node1", 42, Some(1_700_000_030))
        );

        let mut newer = old.clone();
        newer
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(ANNOTATION_OPERATION.to_owned(), "state compact".to_owned());
        assert!(matches!(holder_of(&newer).operation, Operation::Other(ref name) if name == "state compact"));

        let mut bare = old;
        bare.metadata.annotations = None;
        assert!(matches!(holder_of(&bare).operation, Operation::Unknown));
    }

    /// What this build writes in the annotation is the name the build before wrote.
    #[test]
    fn the_lease_carries_the_operation_by_its_old_name() {
        let config = ClusterStateConfig::default();
        let info = LockInfo { operation: Operation::StateMigrate, ..LockInfo::current(Operation::Apply) };
        let lease = our_lease(&config, "me", &info, None);
        let annotations = lease.metadata.annotations.unwrap();
        assert_eq!(annotations[ANNOTATION_OPERATION], "state migrate");
    }
}
