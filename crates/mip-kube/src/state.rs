//! The in-cluster [`StateStore`]: mip's state kept in the cluster's own etcd, so a team of
//! operators and a drift CronJob share one state, locked by a `coordination.k8s.io` Lease.
//!
//! # Layout (format version [`CLUSTER_FORMAT_VERSION`]; reads [`CLUSTER_FORMATS_READ`])
//!
//! In the namespace of [`ClusterStateConfig::namespace`], for the state named `N`
//! ([`ClusterStateConfig::name`]):
//!
//! ```text
//! Secret N                type mip.ebrains.eu/state, the commit point:
//!   index.json            {format_version, lineage, serial, generation, chunks, size, sha256,
//!                          encoding: gzip, stored_size}
//!   chunk-0               the first chunk of the payload
//! Secret N-g<G>-<i>       chunk i ≥ 1 of generation G, only when the payload is larger than one
//!                         chunk (Secrets are limited to 1 MiB)
//! Lease N-lock            the write lock, while an apply (or destroy, rm, rebuild, migrate) runs
//! ```
//!
//! The payload is the JSON of the snapshot (lineage, serial, managed entries) and the history,
//! gzip-compressed (about 3× smaller: a 10 000-federation state fits one Secret); `size` and
//! `sha256` are over the uncompressed JSON, so the checksum proves what mip reads, whatever the
//! encoding. The history keeps [`ClusterStateConfig::history_limit`] operations in full and folds
//! older ones into one summary entry, so the payload does not grow with every run. Like the local
//! store, it holds fingerprints and salted hashes, never a secret value.
//!
//! # Why it is safe
//!
//! - **Atomic commits.** A write creates the chunks of a new generation first, then replaces
//!   the index Secret with a `resourceVersion` precondition, then deletes the old generation. A
//!   reader sees the old state or the new one, never a mix; a writer killed half-way leaves
//!   only unreferenced chunks, deleted by the next writer.
//! - **Checked reads.** The chunks' size and SHA-256 must match the index, and the payload's
//!   lineage and serial must match it too; anything else is [`Error::CorruptRemote`], never
//!   repaired.
//! - **A lock that expires.** The Lease names holder, pid, operation and start time, is renewed
//!   every third of its TTL by a heartbeat on the store's own runtime, and may be taken over
//!   only once `renewTime + leaseDurationSeconds` has passed: a `kill -9`ed holder blocks the
//!   next apply for at most one TTL (Terraform's Kubernetes backend lock never expires). Expiry
//!   compares the holder's clock with the taker's, like client-go leader election; keep clocks
//!   in sync (NTP) and the TTL well above their skew.
//! - **Fencing.** A holder whose heartbeat fails for a whole TTL, or finds the Lease taken,
//!   stops writing ([`Error::LockLost`]); and every index write carries the `resourceVersion`
//!   it last saw, so even a holder that does not know it lost the lock cannot overwrite the
//!   state of the next one.
//! - **Readers take no lock.** `mip plan` and `mip drift` read with [`read_state`]: one GET
//!   for a state below one chunk.
//!
//! # Threads
//!
//! [`StateStore`] is synchronous (the engine calls it between waves of async work), so a
//! [`ClusterStore`] owns a small runtime of its own (one worker thread, which also runs the
//! heartbeat) and blocks on it; called from inside another runtime, it blocks from a scoped
//! thread, never inside the caller's runtime.
//!
//! One file on purpose (about 1 000 lines): the store is one protocol (read with checksums,
//! generations and chunks, the commit point, the Lease and its heartbeat, fencing), and its
//! invariants span those parts; split across files, each would hide what the others rely on.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use mip_core::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef};
use mip_state::{Error, HistoryEntry, LockInfo, Record, Snapshot, StateStore};
use serde::{Deserialize, Serialize};

use crate::error::Operation;
use crate::{ConnectOptions, KubeCluster};

/// The Secret type of the index and chunk Secrets.
pub const SECRET_TYPE: &str = "mip.ebrains.eu/state";
/// Label naming the state a Secret or Lease belongs to.
pub const LABEL_STATE: &str = "mip.ebrains.eu/state";
/// Label of a chunk Secret: its generation.
const LABEL_GENERATION: &str = "mip.ebrains.eu/generation";
/// Annotations of the Lease, naming the holder for the next opener.
const ANNOTATION_HOLDER: &str = "mip.ebrains.eu/holder";
const ANNOTATION_PID: &str = "mip.ebrains.eu/pid";
const ANNOTATION_OPERATION: &str = "mip.ebrains.eu/operation";
const ANNOTATION_STARTED: &str = "mip.ebrains.eu/started";
/// Field manager of the chunk writes.
const STATE_MANAGER: &str = "mip-state";
/// Keys of the index Secret.
const KEY_INDEX: &str = "index.json";
const KEY_FIRST_CHUNK: &str = "chunk-0";
/// Key of a chunk Secret.
const KEY_CHUNK: &str = "chunk";

/// Where the state lives in the cluster, and how it is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStateConfig {
    /// The namespace of the state Secrets and the Lease; it must exist.
    pub namespace: String,
    /// The state's name: the index Secret's name, prefix of the chunks and the Lease.
    pub name: String,
    /// How long the lock outlives its holder's last heartbeat.
    pub lock_ttl: Duration,
    /// Payload bytes per Secret (below the API server's 1 MiB object limit, base64 included).
    pub chunk_bytes: usize,
    /// Operations the history keeps in full (`--history-limit`); older ones are folded into
    /// one summary entry ([`mip_state::bound_history`]).
    pub history_limit: usize,
}

impl Default for ClusterStateConfig {
    fn default() -> Self {
        ClusterStateConfig {
            namespace: "mip-system".to_owned(),
            name: "mip-state".to_owned(),
            lock_ttl: Duration::from_secs(30),
            chunk_bytes: 512 * 1024,
            history_limit: mip_state::DEFAULT_HISTORY_LIMIT,
        }
    }
}

impl ClusterStateConfig {
    fn lock_name(&self) -> String {
        format!("{}-lock", self.name)
    }

    fn chunk_name(&self, generation: u64, index: usize) -> String {
        format!("{}-g{generation}-{index}", self.name)
    }

    fn ttl_seconds(&self) -> i32 {
        i32::try_from(self.lock_ttl.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

/// The index Secret's `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Index {
    format_version: String,
    lineage: String,
    serial: u64,
    generation: u64,
    chunks: usize,
    /// Bytes of the payload's JSON, uncompressed.
    size: usize,
    /// Over the uncompressed JSON.
    sha256: String,
    /// How the chunks encode the JSON: `gzip` (format 2); absent in format 1 (plain JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encoding: Option<String>,
    /// Bytes in the chunks, as stored (compressed); format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stored_size: Option<usize>,
}

/// The format this store writes: 2, the payload gzip-compressed with `size` and `sha256` over
/// the uncompressed JSON. An older mip (which reads format 1 only) refuses it with
/// [`Error::Incompatible`]; this one reads both.
pub const CLUSTER_FORMAT_VERSION: &str = "2";

/// The formats this store reads, oldest first: 1 (plain JSON, mip before compression) and 2.
pub const CLUSTER_FORMATS_READ: &[&str] = &["1", CLUSTER_FORMAT_VERSION];

/// The one encoding of format 2.
const ENCODING_GZIP: &str = "gzip";

/// Gzip of the payload: the fastest level (the state is mostly hex digests, which no level
/// compresses much further; the JSON around them compresses well at any level).
fn compress(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    use std::io::Write as _;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 3), flate2::Compression::fast());
    encoder.write_all(bytes).map_err(internal)?;
    encoder.finish().map_err(internal)
}

/// Un-gzips at most `size + 1` bytes (a payload larger than its index says is corrupt, and no
/// crafted chunk can make mip allocate more than the index announced).
fn decompress(stored: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::with_capacity(size);
    flate2::read::GzDecoder::new(stored).take(size as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

/// What the chunks hold, concatenated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Payload {
    #[serde(flatten)]
    snapshot: Snapshot,
    history: Vec<HistoryEntry>,
}

/// A state read from the cluster, with what a writer needs to replace it.
#[derive(Debug, Clone)]
struct Stored {
    payload: Payload,
    /// The index Secret's `resourceVersion` (the precondition of the next write).
    resource_version: String,
    generation: u64,
    chunks: usize,
}

/// What a writer holds between commits.
#[derive(Debug)]
struct Current {
    payload: Payload,
    /// `None` until the index Secret exists.
    resource_version: Option<String>,
    generation: u64,
    chunks: usize,
}

/// The API handles shared with the heartbeat task.
struct Shared {
    cluster: KubeCluster,
    secrets: Api<Secret>,
    leases: Api<Lease>,
    config: ClusterStateConfig,
    /// Why the lock was lost, once it was.
    lost: Mutex<Option<String>>,
}

impl Shared {
    fn new(cluster: KubeCluster, config: ClusterStateConfig) -> Shared {
        let secrets = Api::namespaced(cluster.client.clone(), &config.namespace);
        let leases = Api::namespaced(cluster.client.clone(), &config.namespace);
        Shared { cluster, secrets, leases, config, lost: Mutex::new(None) }
    }

    fn location(&self) -> String {
        location(&self.cluster, &self.config)
    }

    fn lost(&self) -> MutexGuard<'_, Option<String>> {
        self.lost.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An API error as a state error, with a hint that names the namespace and the resource.
    fn remote(&self, error: kube::Error, verb: &'static str, resource: &str, name: &str) -> Error {
        let not_found = matches!(&error, kube::Error::Api(s) if s.code == 404);
        let addr = match resource {
            "secrets" => Some(ObjectRef::new("v1", "Secret", Some(&self.config.namespace), name)),
            _ => None,
        };
        let op = Operation {
            verb,
            resource: resource.to_owned(),
            namespace: Some(&self.config.namespace),
            addr: addr.as_ref(),
            apply: false,
        };
        let mapped = self.cluster.error(error, &op);
        let ns = &self.config.namespace;
        let hint = match &mapped {
            mip_core::cluster::ClusterError::Forbidden { .. } => format!(
                "mip's cluster state needs get, list, create, update, patch and delete on `secrets` and `leases` in namespace `{ns}` (readers only get on `secrets`); see examples/rbac/"
            ),
            mip_core::cluster::ClusterError::Unreachable { .. } => {
                "check the kubeconfig context, the network and any proxy, then re-run".to_owned()
            }
            _ if not_found => format!(
                "create the namespace first (`kubectl create namespace {ns}`), or choose another with `--state-namespace`"
            ),
            _ => "re-run; if it persists, check the API server's health".to_owned(),
        };
        Error::Remote { location: self.location(), reason: mapped.to_string(), hint }
    }

    /// Runs one API call, retrying transient failures within the request timeout (see
    /// `retry.rs`).
    async fn retry<T, F, Fut>(&self, attempt: F) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        crate::retry::with_retry(&self.cluster.limiter, self.cluster.timeout, attempt).await
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::CorruptRemote { location: self.location(), reason: reason.into() }
    }

    fn lock_lost(&self, reason: impl Into<String>) -> Error {
        Error::LockLost { location: self.location(), reason: reason.into() }
    }
}

fn location(cluster: &KubeCluster, config: &ClusterStateConfig) -> String {
    format!("Secret `{}/{}` on `{}`", config.namespace, config.name, cluster.server)
}

fn internal(reason: impl std::fmt::Display) -> Error {
    Error::Internal { reason: reason.to_string() }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 409)
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Reads the state for `mip plan`, `mip drift` and `mip state list`, without the lock: `None`
/// when there is none. Consistent: a state being written meanwhile is read before or after
/// that write, never half.
///
/// # Errors
/// [`Error::Remote`] for API errors, [`Error::CorruptRemote`] for a damaged state,
/// [`Error::Incompatible`] for another format version.
pub async fn read_state(
    cluster: &KubeCluster,
    config: &ClusterStateConfig,
) -> Result<Option<(Snapshot, Vec<HistoryEntry>)>, Error> {
    let shared = Shared::new(cluster.clone_for_state(), config.clone());
    let stored = read(&shared).await?;
    Ok(stored.map(|s| (s.payload.snapshot, s.payload.history)))
}

/// Reads the index and the chunks it names, checked against its size and checksum.
async fn read(shared: &Shared) -> Result<Option<Stored>, Error> {
    let name = &shared.config.name;
    let mut previous_generation = None;
    for _ in 0..READ_ATTEMPTS {
        shared.cluster.count_read();
        let index_secret = match shared.retry(|| shared.secrets.get_opt(name)).await {
            Ok(Some(secret)) => secret,
            Ok(None) => return Ok(None),
            Err(e) => return Err(shared.remote(e, "get", "secrets", name)),
        };
        if index_secret.type_.as_deref() != Some(SECRET_TYPE) {
            return Err(shared.corrupt(format!(
                "Secret `{name}` has type `{}`, not `{SECRET_TYPE}`: it is not a mip state (choose another `--state-name`)",
                index_secret.type_.as_deref().unwrap_or("")
            )));
        }
        let data = index_secret.data.unwrap_or_default();
        let index: Index = match data.get(KEY_INDEX) {
            Some(bytes) => serde_json::from_slice(&bytes.0)
                .map_err(|e| shared.corrupt(format!("`{KEY_INDEX}` cannot be read: {e}")))?,
            None => return Err(shared.corrupt(format!("the index Secret has no `{KEY_INDEX}`"))),
        };
        if !CLUSTER_FORMATS_READ.contains(&index.format_version.as_str()) {
            return Err(Error::Incompatible {
                found_version: index.format_version,
                reads: CLUSTER_FORMATS_READ,
            });
        }
        let Some(first) = data.get(KEY_FIRST_CHUNK) else {
            return Err(shared.corrupt(format!("the index Secret has no `{KEY_FIRST_CHUNK}`")));
        };
        let mut bytes = first.0.clone();
        let mut missing = None;
        pause_for_test("read-before-chunks").await;
        for i in 1..index.chunks {
            let chunk_name = shared.config.chunk_name(index.generation, i);
            shared.cluster.count_read();
            match shared.retry(|| shared.secrets.get_opt(&chunk_name)).await {
                Ok(Some(chunk)) => match chunk.data.as_ref().and_then(|d| d.get(KEY_CHUNK)) {
                    Some(part) => bytes.extend_from_slice(&part.0),
                    None => {
                        return Err(
                            shared.corrupt(format!("chunk Secret `{chunk_name}` has no `{KEY_CHUNK}`"))
                        );
                    }
                },
                Ok(None) => {
                    missing = Some(chunk_name);
                    break;
                }
                Err(e) => return Err(shared.remote(e, "get", "secrets", &chunk_name)),
            }
        }
        if let Some(chunk_name) = missing {
            // A writer may have committed a new generation (and deleted this one) while we
            // read: read the new index. The same generation twice is a lost chunk.
            if previous_generation == Some(index.generation) {
                return Err(shared.corrupt(format!(
                    "chunk Secret `{chunk_name}` of generation {} is missing",
                    index.generation
                )));
            }
            previous_generation = Some(index.generation);
            continue;
        }
        let bytes = match (index.format_version.as_str(), index.encoding.as_deref()) {
            ("1", None) => bytes,
            (_, Some(ENCODING_GZIP)) => {
                if index.stored_size.is_some_and(|stored| stored != bytes.len()) {
                    return Err(shared.corrupt(format!(
                        "the chunks of generation {} hold {} bytes, the index says {} stored bytes",
                        index.generation,
                        bytes.len(),
                        index.stored_size.unwrap_or_default()
                    )));
                }
                decompress(&bytes, index.size).map_err(|e| {
                    shared.corrupt(format!(
                        "the chunks of generation {} cannot be un-gzipped ({e}): they do not match the index's size and checksum",
                        index.generation
                    ))
                })?
            }
            (version, encoding) => {
                return Err(shared.corrupt(format!(
                    "format {version} with encoding `{}` is not a combination mip writes",
                    encoding.unwrap_or("none")
                )));
            }
        };
        let checksum = format!("sha256:{}", mip_core::canonical::sha256_hex(&bytes));
        if bytes.len() != index.size || checksum != index.sha256 {
            return Err(shared.corrupt(format!(
                "the chunks of generation {} hold {} bytes with checksum `{checksum}`, the index says {} bytes with `{}`",
                index.generation,
                bytes.len(),
                index.size,
                index.sha256
            )));
        }
        let payload: Payload = serde_json::from_slice(&bytes)
            .map_err(|e| shared.corrupt(format!("the payload cannot be read: {e}")))?;
        if payload.snapshot.lineage != index.lineage || payload.snapshot.serial != index.serial {
            return Err(shared.corrupt(format!(
                "the payload has lineage `{}` serial {}, the index lineage `{}` serial {}",
                payload.snapshot.lineage, payload.snapshot.serial, index.lineage, index.serial
            )));
        }
        let resource_version = index_secret.metadata.resource_version.unwrap_or_default();
        return Ok(Some(Stored {
            payload,
            resource_version,
            generation: index.generation,
            chunks: index.chunks,
        }));
    }
    Err(Error::Remote {
        location: shared.location(),
        reason: format!("the state changed {READ_ATTEMPTS} times while mip read it"),
        hint: "re-run once the writer (see the Lease) has finished".to_owned(),
    })
}

/// A test hook that makes a race happen on purpose: with `MIP_TEST_PAUSE_AT` naming `point`
/// and `MIP_TEST_PAUSE_FILE` a path, the first time this process reaches `point` it creates
/// the file and waits until the test removes it (two minutes at most). The fault tier holds a
/// commit between its chunks and its index (`commit-before-index`) and a reader between the
/// index and the chunks it names (`read-before-chunks`), so readers overlap commits every run
/// rather than by luck. Unset (always, outside tests), it costs one environment lookup.
async fn pause_for_test(point: &str) {
    static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var("MIP_TEST_PAUSE_AT").ok().as_deref() != Some(point) {
        return;
    }
    let Some(file) = std::env::var_os("MIP_TEST_PAUSE_FILE") else { return };
    if PAUSED.swap(true, std::sync::atomic::Ordering::SeqCst) || std::fs::write(&file, point).is_err() {
        return;
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    while std::path::Path::new(&file).exists() && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many new generations a reader follows before giving up (each one means a writer
/// committed while the chunks were being read).
const READ_ATTEMPTS: usize = 10;

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes `payload` as the generation after `current`'s, then makes it the state.
async fn write(shared: &Shared, current: &Current, payload: &Payload) -> Result<Current, Error> {
    let config = &shared.config;
    let bytes = serde_json::to_vec(payload).map_err(internal)?;
    let stored = compress(&bytes)?;
    let chunk_bytes = config.chunk_bytes.max(1);
    let parts: Vec<&[u8]> = stored.chunks(chunk_bytes).collect();
    let generation = current.generation + 1;
    let labels = |generation: Option<u64>| {
        let mut labels = BTreeMap::from([
            (LABEL_STATE.to_owned(), config.name.clone()),
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
        ]);
        if let Some(g) = generation {
            labels.insert(LABEL_GENERATION.to_owned(), g.to_string());
        }
        labels
    };
    for (i, part) in parts.iter().enumerate().skip(1) {
        let chunk_name = config.chunk_name(generation, i);
        let chunk = Secret {
            metadata: ObjectMeta {
                name: Some(chunk_name.clone()),
                labels: Some(labels(Some(generation))),
                ..ObjectMeta::default()
            },
            type_: Some(SECRET_TYPE.to_owned()),
            data: Some(BTreeMap::from([(KEY_CHUNK.to_owned(), ByteString(part.to_vec()))])),
            ..Secret::default()
        };
        // Apply, not create: a chunk left by a writer killed before its commit is replaced.
        let (apply_params, patch) = (PatchParams::apply(STATE_MANAGER).force(), Patch::Apply(&chunk));
        shared.cluster.count_write(false);
        shared
            .retry(|| shared.secrets.patch(&chunk_name, &apply_params, &patch))
            .await
            .map_err(|e| shared.remote(e, "patch", "secrets", &chunk_name))?;
    }
    let index = Index {
        format_version: CLUSTER_FORMAT_VERSION.to_owned(),
        lineage: payload.snapshot.lineage.clone(),
        serial: payload.snapshot.serial,
        generation,
        chunks: parts.len(),
        size: bytes.len(),
        sha256: format!("sha256:{}", mip_core::canonical::sha256_hex(&bytes)),
        encoding: Some(ENCODING_GZIP.to_owned()),
        stored_size: Some(stored.len()),
    };
    let index_secret = Secret {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(labels(None)),
            resource_version: current.resource_version.clone(),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.to_owned()),
        data: Some(BTreeMap::from([
            (KEY_INDEX.to_owned(), ByteString(serde_json::to_vec_pretty(&index).map_err(internal)?)),
            (KEY_FIRST_CHUNK.to_owned(), ByteString(parts.first().map(|p| p.to_vec()).unwrap_or_default())),
        ])),
        ..Secret::default()
    };
    let params = PostParams { field_manager: Some(STATE_MANAGER.to_owned()), ..PostParams::default() };
    pause_for_test("commit-before-index").await;
    shared.cluster.count_write(false);
    let written = match &current.resource_version {
        Some(_) => shared.retry(|| shared.secrets.replace(&config.name, &params, &index_secret)).await,
        None => shared.retry(|| shared.secrets.create(&params, &index_secret)).await,
    };
    let written = match written {
        Ok(secret) => secret,
        // A write whose answer was lost (a reset connection, a restarting server) and then
        // retried conflicts with itself: if the index is the one this write made, it is done.
        Err(e) if is_conflict(&e) && is_ours(shared, &index).await => {
            match shared.retry(|| shared.secrets.get(&config.name)).await {
                Ok(secret) => secret,
                Err(e) => return Err(shared.remote(e, "get", "secrets", &config.name)),
            }
        }
        Err(e) if is_conflict(&e) => {
            return Err(shared.lock_lost(
                "the state was written by another process since this one read it (it must have taken the expired lock)",
            ));
        }
        Err(e) => return Err(shared.remote(e, "update", "secrets", &config.name)),
    };
    // The old generation is unreferenced now; a failure here only leaves garbage for the next
    // writer's sweep.
    for i in 1..current.chunks {
        let chunk_name = config.chunk_name(current.generation, i);
        shared.cluster.count_write(false);
        let params = DeleteParams::default();
        let _ = shared.retry(|| shared.secrets.delete(&chunk_name, &params)).await;
    }
    Ok(Current {
        payload: payload.clone(),
        resource_version: written.metadata.resource_version,
        generation,
        chunks: parts.len(),
    })
}

/// Whether the index Secret holds exactly `index` (same generation, serial and checksum).
async fn is_ours(shared: &Shared, index: &Index) -> bool {
    let Ok(Some(secret)) = shared.retry(|| shared.secrets.get_opt(&shared.config.name)).await else {
        return false;
    };
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_INDEX))
        .and_then(|bytes| serde_json::from_slice::<Index>(&bytes.0).ok())
        .is_some_and(|found| found == *index)
}

/// Deletes chunk Secrets of generations other than `current` (left by killed writers).
async fn sweep(shared: &Shared, generation: u64) -> Result<(), Error> {
    let config = &shared.config;
    let selector = format!("{LABEL_STATE}={},{LABEL_GENERATION}", config.name);
    let list_params = ListParams::default().labels(&selector);
    shared.cluster.count_read();
    let chunks = shared
        .retry(|| shared.secrets.list_metadata(&list_params))
        .await
        .map_err(|e| shared.remote(e, "list", "secrets", &config.name))?;
    for chunk in chunks.items {
        let keep = chunk
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_GENERATION))
            .is_some_and(|g| *g == generation.to_string());
        if let (false, Some(name)) = (keep, chunk.metadata.name) {
            shared.cluster.count_write(false);
            let params = DeleteParams::default();
            match shared.retry(|| shared.secrets.delete(&name, &params)).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(shared.remote(e, "delete", "secrets", &name)),
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The lock

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
        operation: annotations.get(ANNOTATION_OPERATION).cloned().unwrap_or_else(|| "unknown".to_owned()),
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
                (ANNOTATION_OPERATION.to_owned(), info.operation.clone()),
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
async fn acquire(shared: &Shared, identity: &str, info: &LockInfo) -> Result<Lease, Error> {
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
async fn heartbeat(
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

// ---------------------------------------------------------------------------------------------
// The store

/// The in-cluster store. Holds the Lease for as long as it lives; dropping it releases the
/// Lease. See the [module docs](self).
pub struct ClusterStore {
    shared: Arc<Shared>,
    current: Mutex<Current>,
    stop: Arc<tokio::sync::Notify>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<Option<Lease>>>>,
    /// Dropped last, after the Lease is released.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStore").field("location", &self.shared.location()).finish_non_exhaustive()
    }
}

impl ClusterStore {
    /// Connects, takes the lock for `operation` (`apply`, `destroy`, …), reads the state and
    /// creates an empty one (new lineage, serial 0) if there is none. Blocking.
    ///
    /// # Errors
    /// [`Error::LockHeld`] naming the holder while another process holds an unexpired Lease;
    /// [`Error::Remote`], [`Error::CorruptRemote`], [`Error::Incompatible`] as their docs say.
    pub fn open(connect: ConnectOptions, config: ClusterStateConfig, operation: &str) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mip-state")
            .enable_all()
            .build()
            .map_err(|e| internal(format!("cannot start the state store's runtime: {e}")))?;
        let info = LockInfo::current(operation);
        let identity = format!("{}/{}/{}", info.holder, info.pid, mip_state::new_lineage()?);
        let opened = block(&runtime, async {
            let cluster = KubeCluster::connect(connect).await.map_err(|e| Error::Remote {
                location: format!("Secret `{}/{}`", config.namespace, config.name),
                reason: e.to_string(),
                hint: "check the kubeconfig and the context".to_owned(),
            })?;
            let shared = Arc::new(Shared::new(cluster, config));
            let lease = acquire(&shared, &identity, &info).await?;
            let stop = Arc::new(tokio::sync::Notify::new());
            let beat =
                tokio::spawn(heartbeat(Arc::clone(&shared), lease, identity.clone(), Arc::clone(&stop)));
            let opened = async {
                let current = match read(&shared).await? {
                    Some(stored) => {
                        sweep(&shared, stored.generation).await?;
                        Current {
                            payload: stored.payload,
                            resource_version: Some(stored.resource_version),
                            generation: stored.generation,
                            chunks: stored.chunks,
                        }
                    }
                    None => {
                        sweep(&shared, 0).await?;
                        let empty = Current {
                            payload: Payload {
                                snapshot: Snapshot {
                                    lineage: mip_state::new_lineage()?,
                                    serial: 0,
                                    managed: BTreeMap::new(),
                                },
                                history: Vec::new(),
                            },
                            resource_version: None,
                            generation: 0,
                            chunks: 0,
                        };
                        write(&shared, &empty, &empty.payload.clone()).await?
                    }
                };
                Ok::<_, Error>(current)
            }
            .await;
            match opened {
                Ok(current) => Ok((shared, current, stop, beat)),
                Err(e) => {
                    stop.notify_one();
                    if let Ok(Some(lease)) = beat.await {
                        release(&shared, lease).await;
                    }
                    Err(e)
                }
            }
        });
        let (shared, current, stop, beat) = match opened {
            Ok(parts) => parts,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        Ok(ClusterStore {
            shared,
            current: Mutex::new(current),
            stop,
            heartbeat: Mutex::new(Some(beat)),
            runtime: Some(runtime),
        })
    }

    /// Where the state is, for messages: `Secret `ns/name` on `https://…``.
    pub fn location(&self) -> String {
        self.shared.location()
    }

    /// The lineage of the state.
    pub fn lineage(&self) -> String {
        self.current().payload.snapshot.lineage.clone()
    }

    /// Why this store lost its lock (`None` while it holds it): its heartbeat found the Lease
    /// taken over or deleted, or could not renew it for a TTL. Every later commit is refused
    /// with [`Error::LockLost`]; this lets a caller (or a test) see it without writing.
    pub fn lock_lost(&self) -> Option<String> {
        self.shared.lost().clone()
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `payload` unless the lock is lost; the new state on success.
    fn commit(&self, current: &mut Current, payload: Payload) -> Result<(), Error> {
        if let Some(reason) = self.shared.lost().clone() {
            return Err(self.shared.lock_lost(reason));
        }
        let runtime = self.runtime.as_ref().ok_or_else(|| internal("the store is closed"))?;
        let shared = Arc::clone(&self.shared);
        let next = block(runtime, async { write(&shared, current, &payload).await })?;
        *current = next;
        Ok(())
    }
}

impl StateStore for ClusterStore {
    fn snapshot(&self) -> Result<Snapshot, Error> {
        Ok(self.current().payload.snapshot.clone())
    }

    /// Every commit rewrites the whole state (and an etcd revision of it), so changes are
    /// batched for up to 250 ms: a few writes per second, whatever the apply's size.
    fn group_commit_window(&self) -> Duration {
        Duration::from_millis(250)
    }

    fn record_many(&self, records: Vec<Record>) -> Result<u64, Error> {
        let mut current = self.current();
        if records.is_empty() {
            return Ok(current.payload.snapshot.serial);
        }
        let mut payload = current.payload.clone();
        let serial = payload.snapshot.record(records);
        self.commit(&mut current, payload)?;
        Ok(serial)
    }

    fn import(&self, snapshot: &Snapshot, history: &[HistoryEntry]) -> Result<(), Error> {
        let mut current = self.current();
        let held = &current.payload;
        if !held.snapshot.is_fresh() || !held.history.is_empty() {
            return Err(Error::NotEmpty {
                location: self.location(),
                serial: held.snapshot.serial,
                entries: held.snapshot.managed.len(),
            });
        }
        let mut history = history.to_vec();
        mip_state::bound_history(&mut history, self.shared.config.history_limit);
        let payload = Payload { snapshot: snapshot.clone(), history };
        self.commit(&mut current, payload)
    }

    fn append_history(&self, entry: HistoryEntry) -> Result<(), Error> {
        let mut current = self.current();
        let mut payload = current.payload.clone();
        payload.history.push(entry);
        mip_state::bound_history(&mut payload.history, self.shared.config.history_limit);
        self.commit(&mut current, payload)
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        Ok(self.current().payload.history.clone())
    }
}

impl Drop for ClusterStore {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else { return };
        let beat = self.heartbeat.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(beat) = beat {
            self.stop.notify_one();
            let shared = Arc::clone(&self.shared);
            block(&runtime, async move {
                if let Ok(Some(lease)) = beat.await {
                    release(&shared, lease).await;
                }
            });
        }
        runtime.shutdown_background();
    }
}

/// Deletes our Lease (only if nobody changed it since our last renewal).
async fn release(shared: &Shared, lease: Lease) {
    let params = DeleteParams {
        preconditions: Some(Preconditions { resource_version: lease.metadata.resource_version, uid: None }),
        ..DeleteParams::default()
    };
    shared.cluster.count_write(false);
    let name = shared.config.lock_name();
    let _ = shared.retry(|| shared.leases.delete(&name, &params)).await;
}

/// Runs `future` on `runtime` to completion: directly from plain threads, from a scoped
/// thread when called inside another runtime (where blocking the thread on a runtime panics).
fn block<F>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    std::thread::scope(|scope| match scope.spawn(|| runtime.block_on(future)).join() {
        Ok(output) => output,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}
