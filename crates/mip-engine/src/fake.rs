//! An in-memory [`Cluster`] for fast unit tests of the scheduler and the operations. Never a
//! stand-in for the real API server in integration tests (those run a real kube-apiserver).
//!
//! It honours server-side apply well enough for scheduling and planning: `managedFields`
//! records the fields each manager set, a field another manager owns with another value is a
//! [`ClusterError::Conflict`] unless forced, a real apply returns only the metadata, a dry run
//! persists nothing, Secrets turn `stringData` into base64 `data`, CRDs are Established at once.
//! Tests can make a write slow, make one fail, and read the order and overlap of writes.

#[cfg(any(test, feature = "test-support"))]
pub mod connector;

use base64::Engine as _;
use mip_core::cluster::{ApplyOptions, Cluster, ClusterError, KindRef, RequestCounts};
use mip_core::{FIELD_MANAGER, ObjectRef};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// One real write (apply or delete), with the sequence numbers of its start and end: a write
/// that ended before another started has a smaller `ended` than the other's `started`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    /// The object.
    pub addr: ObjectRef,
    /// `apply` or `delete`.
    pub verb: &'static str,
    /// Sequence number at the start.
    pub started: u64,
    /// Sequence number at the end.
    pub ended: u64,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<ObjectRef, Value>,
    failures: BTreeMap<ObjectRef, ClusterError>,
    writes: Vec<WriteRecord>,
    next_uid: u64,
}

/// The fake cluster. See the [module docs](self).
#[derive(Default)]
pub struct FakeCluster {
    inner: Mutex<Inner>,
    latency: Duration,
    seq: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    reads: AtomicU64,
    writes: AtomicU64,
    dry_runs: AtomicU64,
}

impl FakeCluster {
    /// An empty cluster whose writes take no time.
    pub fn new() -> FakeCluster {
        FakeCluster::default()
    }

    /// Every real write takes `latency` (so writes overlap and their order shows).
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> FakeCluster {
        self.latency = latency;
        self
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes of `addr` fail with `error` from now on.
    pub fn fail_on(&self, addr: &ObjectRef, error: ClusterError) {
        self.inner().failures.insert(addr.clone(), error);
    }

    /// Creates or changes an object as another field manager (e.g. `argocd-controller`).
    /// Logged as a write with verb `as <manager>` (not counted as a request of mip's).
    pub fn apply_as(&self, manager: &str, addr: &ObjectRef, manifest: &Value) {
        let at = self.seq.fetch_add(1, Ordering::SeqCst);
        let mut inner = self.inner();
        let existing = inner.objects.get(addr).cloned();
        let obj = merged(&mut inner, existing.as_ref(), addr, manifest, manager);
        inner.objects.insert(addr.clone(), obj);
        inner.writes.push(WriteRecord {
            addr: addr.clone(),
            verb: "as another manager",
            started: at,
            ended: at,
        });
    }

    /// The object as stored, if any.
    pub fn object(&self, addr: &ObjectRef) -> Option<Value> {
        self.inner().objects.get(addr).cloned()
    }

    /// Every real write so far, in the order they ended.
    pub fn write_log(&self) -> Vec<WriteRecord> {
        self.inner().writes.clone()
    }

    /// The most writes that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Runs one real write: counts it, holds it for the latency, logs its start and end.
    async fn write<T>(
        &self,
        addr: &ObjectRef,
        verb: &'static str,
        body: impl FnOnce(&mut Inner) -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let started = self.seq.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let result = {
            let mut inner = self.inner();
            match inner.failures.get(addr) {
                Some(e) => Err(e.clone()),
                None => body(&mut inner),
            }
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let ended = self.seq.fetch_add(1, Ordering::SeqCst);
        self.inner().writes.push(WriteRecord { addr: addr.clone(), verb, started, ended });
        result
    }
}

/// Kinds without a namespace.
fn cluster_scoped(kind: &str) -> bool {
    matches!(kind, "Namespace" | "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding")
}

/// The `fieldsV1` set of everything a manifest sets (lists are owned whole).
fn fields_of(v: &Value) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() => {
            Value::Object(m.iter().map(|(k, c)| (format!("f:{k}"), fields_of(c))).collect())
        }
        _ => json!({}),
    }
}

/// Leaf paths of a `fieldsV1` set, as JSON pointers.
fn leaves(fields: &Value, prefix: &str, out: &mut Vec<String>) {
    let Some(m) = fields.as_object().filter(|m| !m.is_empty()) else {
        out.push(prefix.to_owned());
        return;
    };
    for (k, sub) in m {
        if let Some(name) = k.strip_prefix("f:") {
            leaves(sub, &format!("{prefix}/{}", mip_core::canonical::pointer_token(name)), out);
        }
    }
}

fn merge(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, t) => *b = t.clone(),
    }
}

/// What `manager` sends, as stored: identity fields dropped from its field set, a Secret's
/// `stringData` encoded into `data`.
fn normalised(manifest: &Value) -> Value {
    let mut m = manifest.clone();
    let string_data = m.as_object_mut().and_then(|o| o.remove("stringData"));
    if let Some(Value::Object(sd)) = string_data {
        let data: Map<String, Value> = sd
            .into_iter()
            .map(|(k, v)| {
                let text = v.as_str().unwrap_or_default().to_owned();
                (k, Value::String(base64::engine::general_purpose::STANDARD.encode(text)))
            })
            .collect();
        merge(&mut m, &json!({ "data": data }));
    }
    m
}

/// The object after `manager` applied `manifest`: the other managers' fields kept, this
/// manager's replaced, `managedFields` updated.
fn merged(
    inner: &mut Inner,
    existing: Option<&Value>,
    addr: &ObjectRef,
    manifest: &Value,
    manager: &str,
) -> Value {
    let sent = normalised(manifest);
    let mut owned = sent.clone();
    if let Some(o) = owned.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("name");
            meta.remove("namespace");
        }
        // Identity fields are implicit: a manifest without labels or annotations owns no
        // metadata field at all (an empty set would own the whole of `metadata`).
        if o.get("metadata").and_then(Value::as_object).is_some_and(Map::is_empty) {
            o.remove("metadata");
        }
    }
    let mut entries: Vec<Value> = existing
        .and_then(|e| e.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter().filter(|e| e.get("manager").and_then(Value::as_str) != Some(manager)).cloned().collect()
        })
        .unwrap_or_default();
    let mut obj = json!({ "apiVersion": manifest.get("apiVersion"), "kind": addr.kind, "metadata": { "name": addr.name } });
    if let Some(ns) = &addr.namespace {
        obj["metadata"]["namespace"] = json!(ns);
    }
    if let Some(e) = existing {
        for entry in &entries {
            if let Some(part) = fields_of_entry(e, entry) {
                merge(&mut obj, &part);
            }
        }
        for k in ["uid", "creationTimestamp"] {
            if let Some(v) = e.pointer(&format!("/metadata/{k}")) {
                obj["metadata"][k] = v.clone();
            }
        }
    } else {
        inner.next_uid += 1;
        obj["metadata"]["uid"] = json!(format!("fake-uid-{}", inner.next_uid));
    }
    merge(&mut obj, &sent);
    entries.push(json!({ "manager": manager, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields_of(&owned) }));
    obj["metadata"]["managedFields"] = Value::Array(entries);
    let version = existing
        .and_then(|e| e.pointer("/metadata/resourceVersion"))
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    obj["metadata"]["resourceVersion"] = json!((version + 1).to_string());
    if addr.is(mip_core::Kind::CustomResourceDefinition) {
        obj["status"] = json!({ "conditions": [{ "type": "Established", "status": "True" }] });
    }
    obj
}

/// The part of `obj` one `managedFields` entry owns, whatever its operation (Apply or Update).
fn fields_of_entry(obj: &Value, entry: &Value) -> Option<Value> {
    let manager = entry.get("manager").and_then(Value::as_str)?;
    let mut one = obj.clone();
    let mut as_apply = entry.clone();
    as_apply["operation"] = json!("Apply");
    one["metadata"]["managedFields"] = json!([as_apply]);
    mip_plan::diff::owned_fields(&one, manager)
}

/// The managers other than mip that own a field `manifest` sets to another value.
fn conflicts(existing: &Value, manifest: &Value) -> Vec<String> {
    let sent = normalised(manifest);
    let mut managers = Vec::new();
    let entries =
        existing.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
    for entry in entries {
        let Some(m) = entry.get("manager").and_then(Value::as_str) else { continue };
        if m == FIELD_MANAGER {
            continue;
        }
        let mut paths = Vec::new();
        leaves(entry.get("fieldsV1").unwrap_or(&Value::Null), "", &mut paths);
        let clash = paths.iter().any(
            |p| matches!((sent.pointer(p), existing.pointer(p)), (Some(want), Some(have)) if want != have),
        );
        if clash {
            managers.push(m.to_owned());
        }
    }
    managers
}

fn metadata_only(obj: &Value) -> Value {
    json!({ "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null) })
}

impl Cluster for FakeCluster {
    fn server_url(&self) -> String {
        "https://fake.invalid:6443".to_owned()
    }

    async fn is_namespaced(&self, kind: &KindRef) -> Result<bool, ClusterError> {
        Ok(!cluster_scoped(&kind.kind))
    }

    async fn list(
        &self,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let selector = label_selector.and_then(|s| s.split_once('='));
        Ok(self
            .inner()
            .objects
            .iter()
            .filter(|(a, _)| {
                KindRef::of(a) == *kind && namespace.is_none_or(|ns| a.namespace.as_deref() == Some(ns))
            })
            .filter(|(_, o)| {
                selector.is_none_or(|(k, v)| {
                    o.get("metadata")
                        .and_then(|m| m.get("labels"))
                        .and_then(|l| l.get(k))
                        .and_then(Value::as_str)
                        == Some(v)
                })
            })
            .map(|(_, o)| o.clone())
            .collect())
    }

    async fn get(&self, addr: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.object(addr))
    }

    async fn apply(
        &self,
        addr: &ObjectRef,
        manifest: &Value,
        opts: ApplyOptions,
    ) -> Result<Value, ClusterError> {
        let run = |inner: &mut Inner| {
            let existing = inner.objects.get(addr).cloned();
            if let Some(e) = &existing {
                let managers = conflicts(e, manifest);
                if !opts.force && !managers.is_empty() {
                    return Err(ClusterError::Conflict {
                        addr: addr.clone(),
                        managers,
                        message: "fields owned by another manager".to_owned(),
                    });
                }
            }
            let obj = merged(inner, existing.as_ref(), addr, manifest, FIELD_MANAGER);
            if opts.dry_run {
                return Ok(obj);
            }
            inner.objects.insert(addr.clone(), obj.clone());
            Ok(metadata_only(&obj))
        };
        if opts.dry_run {
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.dry_runs.fetch_add(1, Ordering::SeqCst);
            return run(&mut self.inner());
        }
        self.write(addr, "apply", run).await
    }

    async fn annotate(
        &self,
        addr: &ObjectRef,
        manager: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, ClusterError> {
        self.write(addr, "annotate", |inner| {
            let Some(obj) = inner.objects.get_mut(addr) else { return Ok(false) };
            obj["metadata"]["annotations"][key] = json!(value);
            if let Some(entries) = obj.pointer_mut("/metadata/managedFields").and_then(Value::as_array_mut) {
                let fields = json!({ "f:metadata": { "f:annotations": { format!("f:{key}"): {} } } });
                entries.push(json!({ "manager": manager, "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields }));
            }
            Ok(true)
        })
        .await
    }

    async fn delete(&self, addr: &ObjectRef) -> Result<bool, ClusterError> {
        self.write(addr, "delete", |inner| Ok(inner.objects.remove(addr).is_some())).await
    }

    fn requests(&self) -> RequestCounts {
        RequestCounts {
            reads: self.reads.load(Ordering::SeqCst),
            writes: self.writes.load(Ordering::SeqCst),
            dry_runs: self.dry_runs.load(Ordering::SeqCst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm() -> (ObjectRef, Value) {
        let addr = ObjectRef::new("v1", "ConfigMap", Some("ns"), "c");
        let m = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "data": {"a": "1"}});
        (addr, m)
    }

    #[tokio::test]
    async fn apply_records_ownership_and_returns_metadata_only() {
        let f = FakeCluster::new();
        let (addr, m) = cm();
        let back = f.apply(&addr, &m, ApplyOptions::default()).await.expect("applied");
        assert!(back.get("data").is_none() && back.pointer("/metadata/uid").is_some());
        let live = f.object(&addr).expect("stored");
        let owned = mip_plan::diff::owned_fields(&live, FIELD_MANAGER).expect("mip owns fields");
        assert_eq!(owned["data"]["a"], "1");
        assert!(!mip_plan::diff::diff(&m, &live, false).changed);
    }

    #[tokio::test]
    async fn another_managers_field_conflicts_unless_forced() {
        let f = FakeCluster::new();
        let (addr, m) = cm();
        f.apply_as("kubectl", &addr, &json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "0"}}));
        let e = f.apply(&addr, &m, ApplyOptions::default()).await.expect_err("conflict");
        assert!(matches!(e, ClusterError::Conflict { ref managers, .. } if managers == &["kubectl"]));
        f.apply(&addr, &m, ApplyOptions { force: true, dry_run: false }).await.expect("forced");
        assert_eq!(f.object(&addr).expect("stored")["data"]["a"], "1");
    }

    #[tokio::test]
    async fn dry_run_persists_nothing_and_secrets_store_base64() {
        let f = FakeCluster::new();
        let addr = ObjectRef::new("v1", "Secret", Some("ns"), "s");
        let m = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}, "stringData": {"k": "v"}});
        let dry = f.apply(&addr, &m, ApplyOptions { dry_run: true, force: false }).await.expect("dry run");
        assert_eq!(dry["data"]["k"], "dg==");
        assert!(f.object(&addr).is_none());
        assert_eq!(f.requests().dry_runs, 1);
    }
}
