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
//!   index.json            {format_version: "3", lineage, serial, generation,
//!                          groups: [{name, sha256, size, stored_size, entries, parts}, …],
//!                          history: {name, sha256, size, stored_size, entries, parts},
//!                          chunks, size, stored_size, sha256, encoding: gzip}
//!   N-g<hash>             each group and the history, inline (parts 0), while the stored
//!                         bytes of all of them fit `chunk_bytes` (a small state: one Secret)
//! Secret N-g<hash>        otherwise one group (or the history) per Secret, gzipped JSON in
//!   chunk                 key `chunk`; <hash> is the first 16 hex digits of the SHA-256 of
//!                         its JSON, so a name is written once; a group larger than
//!                         `chunk_bytes` continues in N-g<hash>-1, N-g<hash>-2, …
//! Lease N-lock            the write lock, while an apply (or destroy, rm, rebuild, migrate) runs
//! ```
//!
//! The managed entries are cut into content-defined groups of 512 on average (a group ends
//! after an address whose hash is 0 modulo 512; see [`format`]), so a commit of one record
//! writes one group and the index, not the whole state (16 MB of JSON at 10 000 federations). Each
//! blob's `size` and `sha256` are over its uncompressed JSON, so the checksum proves what mip
//! reads, whatever the encoding; the index's own `chunks`, `size` and `sha256` (the count of
//! Secrets besides the index, the total, a digest of the blobs' checksums) are what a mip
//! before format 3 needs to find to say "upgrade mip". The history keeps
//! [`ClusterStateConfig::history_limit`] operations in full and folds older ones into one
//! summary entry, so it stays small; it is a blob of its own, rewritten only when it changes.
//! Like the local store, the state holds fingerprints and salted hashes, never a secret value.
//!
//! Formats 1 and 2 (before groups: one payload cut into fixed chunks `N-g<generation>-<i>`,
//! the first in the index Secret's `chunk-0`) are read, and rewritten as format 3 by the next
//! commit.
//!
//! # Why it is safe
//!
//! - **Atomic commits.** A write creates the Secrets of the blobs the current index does not
//!   list yet, then replaces the index Secret with a `resourceVersion` precondition, then
//!   deletes the Secrets only the old index listed. A reader sees the old state or the new
//!   one, never a mix; a writer killed half-way leaves only unreferenced Secrets, deleted by
//!   the next writer's sweep (every Secret of a state but its index carries the labels
//!   `mip.ebrains.eu/state` and `mip.ebrains.eu/generation`).
//! - **Checked reads.** Each blob's stored size, size and SHA-256 must match the index, the
//!   groups must hold the entries it counts in address order, and a listed Secret must exist;
//!   anything else is [`Error::CorruptRemote`] naming the group, never repaired.
//! - **A lock that expires.** The Lease names holder, pid, operation and start time, is renewed
//!   every third of its TTL by a heartbeat on the state runtime, and may be taken over
//!   only once `renewTime + leaseDurationSeconds` has passed: a `kill -9`ed holder blocks the
//!   next apply for at most one TTL (Terraform's Kubernetes backend lock never expires). Expiry
//!   compares the holder's clock with the taker's, like client-go leader election; keep clocks
//!   in sync (NTP) and the TTL well above their skew.
//! - **Fencing.** A holder whose heartbeat fails for a whole TTL, or finds the Lease taken,
//!   stops writing ([`Error::LockLost`]); and every index write carries the `resourceVersion`
//!   it last saw, so even a holder that does not know it lost the lock cannot overwrite the
//!   state of the next one. Content-addressed names mean what it wrote before being fenced is
//!   at worst a copy of a blob, never other bytes under a listed name.
//! - **Readers take no lock.** `mip plan` and `mip drift` read with [`read_state`]: one GET for
//!   a state that fits one Secret, one more per group Secret otherwise.
//!
//! # Threads
//!
//! [`StateStore`] is synchronous (the engine calls it between waves of async work, and sled is
//! synchronous), so every call of a [`ClusterStore`] that talks to the cluster goes through one
//! bridge, [`block_on`], onto the store's home runtime ([`home`]): the caller's, when it is a
//! multi-thread runtime (the CLI's), so mip runs one runtime. A call blocks its thread only
//! after telling the runtime (`block_in_place`), so the heartbeat keeps running on another
//! worker while a commit waits: a blocked caller never lets the Lease expire. Callers without
//! such a runtime (plain threads in tests and tools) share one runtime of the state's own.
//!
//! # Files
//!
//! This one is the protocol (read with retries, the commit point, the sweep, the store);
//! [`format`] decides the bytes (groups, index, checksums) without IO, so it is unit-tested;
//! `lock.rs` is the Lease. The invariants that span them are the list above.

mod format;
mod lock;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use mip_core::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef};
use mip_state::{Error, HistoryEntry, LockInfo, Record, Snapshot, StateStore};

use self::format::{Assembler, BlobRef, Changes, Damage, Index, Layout, LegacyIndex};
pub use self::format::{CLUSTER_FORMAT_VERSION, CLUSTER_FORMATS_READ};
use crate::error::Operation;
use crate::{ConnectOptions, KubeCluster};

/// The Secret type of the index and group Secrets.
pub const SECRET_TYPE: &str = "mip.ebrains.eu/state";
/// Label naming the state a Secret or Lease belongs to.
pub const LABEL_STATE: &str = "mip.ebrains.eu/state";
/// Label of every Secret of a state but its index (a group, or a chunk of format 1 or 2): the
/// generation that wrote it. Its presence is what the sweep selects on.
const LABEL_GENERATION: &str = "mip.ebrains.eu/generation";
/// Field manager of the state's writes.
const STATE_MANAGER: &str = "mip-state";
/// Keys of the index Secret.
const KEY_INDEX: &str = "index.json";
/// Key of formats 1 and 2: the first chunk, in the index Secret.
const KEY_FIRST_CHUNK: &str = "chunk-0";
/// Key of a group (or chunk) Secret.
const KEY_CHUNK: &str = "chunk";

/// Where the state lives in the cluster, and how it is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStateConfig {
    /// The namespace of the state Secrets and the Lease; it must exist.
    pub namespace: String,
    /// The state's name: the index Secret's name, prefix of the groups and the Lease.
    pub name: String,
    /// How long the lock outlives its holder's last heartbeat.
    pub lock_ttl: Duration,
    /// Stored bytes per Secret (below the API server's 1 MiB object limit, base64 included):
    /// a state whose groups together fit is kept in the index Secret alone; a group larger
    /// than this spans several Secrets.
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

    /// A chunk Secret of formats 1 and 2.
    fn legacy_chunk_name(&self, generation: u64, index: usize) -> String {
        format!("{}-g{generation}-{index}", self.name)
    }

    fn ttl_seconds(&self) -> i32 {
        i32::try_from(self.lock_ttl.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

/// A state read from the cluster, with what a writer needs to replace it.
#[derive(Debug, Clone)]
struct Stored {
    snapshot: Snapshot,
    history: Vec<HistoryEntry>,
    layout: Layout,
    /// The index Secret's `resourceVersion` (the precondition of the next write).
    resource_version: String,
    generation: u64,
}

/// What a writer holds between commits.
#[derive(Debug)]
struct Current {
    snapshot: Snapshot,
    history: Vec<HistoryEntry>,
    layout: Layout,
    /// `None` until the index Secret exists.
    resource_version: Option<String>,
    generation: u64,
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
    Ok(stored.map(|s| (s.snapshot, s.history)))
}

/// How reading the parts an index lists ended.
enum Parts {
    Read(Box<Stored>),
    /// A part is missing or does not match: a writer may have committed (and deleted the
    /// parts of the index read) meanwhile, so the index is read again before this is damage.
    Gone(Damage),
}

/// Reads the index and the parts it names, checked against their sizes and checksums.
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
        let resource_version = index_secret.metadata.resource_version.clone().unwrap_or_default();
        let data = index_secret.data.unwrap_or_default();
        let Some(index_bytes) = data.get(KEY_INDEX) else {
            return Err(shared.corrupt(format!("the index Secret has no `{KEY_INDEX}`")));
        };
        let unreadable = |e: serde_json::Error| shared.corrupt(format!("`{KEY_INDEX}` cannot be read: {e}"));
        // The version alone first: a newer format, whatever its fields, is refused as such.
        let version: format::Version = serde_json::from_slice(&index_bytes.0).map_err(unreadable)?;
        if !CLUSTER_FORMATS_READ.contains(&version.format_version.as_str()) {
            return Err(Error::Incompatible {
                found_version: version.format_version,
                reads: CLUSTER_FORMATS_READ,
            });
        }
        let (generation, parts) = if version.format_version == CLUSTER_FORMAT_VERSION {
            let index: Index = serde_json::from_slice(&index_bytes.0).map_err(unreadable)?;
            format::check_index(name, &index).map_err(|d| shared.corrupt(d.to_string()))?;
            (index.generation, read_groups(shared, index, &data, resource_version).await?)
        } else {
            let index: LegacyIndex = serde_json::from_slice(&index_bytes.0).map_err(unreadable)?;
            (index.generation, read_legacy(shared, index, &data, resource_version).await?)
        };
        match parts {
            Parts::Read(stored) => return Ok(Some(*stored)),
            // The same index twice: the part is lost, not replaced by a commit.
            Parts::Gone(damage) if previous_generation == Some(generation) => {
                return Err(shared.corrupt(damage.to_string()));
            }
            Parts::Gone(_) => previous_generation = Some(generation),
        }
    }
    Err(Error::Remote {
        location: shared.location(),
        reason: format!("the state changed {READ_ATTEMPTS} times while mip read it"),
        hint: "re-run once the writer (see the Lease) has finished".to_owned(),
    })
}

/// The stored bytes of a blob: from the index Secret when inline, else its parts' Secrets
/// concatenated; [`Damage::Missing`] if one of them is not there.
async fn fetch(
    shared: &Shared,
    blob: &BlobRef,
    index_data: &BTreeMap<String, ByteString>,
) -> Result<Result<Vec<u8>, Damage>, Error> {
    if blob.parts == 0 {
        return Ok(match index_data.get(&blob.name) {
            Some(bytes) => Ok(bytes.0.clone()),
            None => Err(Damage::Missing { part: format!("the index Secret's key `{}`", blob.name) }),
        });
    }
    let mut stored = Vec::with_capacity(blob.stored_size);
    for part in blob.part_names() {
        shared.cluster.count_read();
        match shared.retry(|| shared.secrets.get_opt(&part)).await {
            Ok(Some(secret)) => match secret.data.as_ref().and_then(|d| d.get(KEY_CHUNK)) {
                Some(bytes) => stored.extend_from_slice(&bytes.0),
                None => {
                    return Err(shared.corrupt(format!("Secret `{part}` has no `{KEY_CHUNK}`")));
                }
            },
            Ok(None) => return Ok(Err(Damage::Missing { part: format!("Secret `{part}`") })),
            Err(e) => return Err(shared.remote(e, "get", "secrets", &part)),
        }
    }
    Ok(Ok(stored))
}

/// Reads the groups and the history of a format-3 index.
async fn read_groups(
    shared: &Shared,
    index: Index,
    data: &BTreeMap<String, ByteString>,
    resource_version: String,
) -> Result<Parts, Error> {
    pause_for_test("read-before-chunks").await;
    let mut assembler = Assembler::default();
    let of = index.groups.len();
    // A few GETs in flight, and the groups already read checked and decoded on the blocking
    // pool meanwhile (gunzip, SHA-256 and JSON are most of a read: a core each), appended in
    // order.
    let reads: Vec<_> = index.groups.iter().map(|blob| fetch(shared, blob, data)).collect();
    let mut fetched = futures::stream::iter(reads).buffered(FETCH_CONCURRENCY).enumerate();
    let decoders = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let mut decoding = std::collections::VecDeque::new();
    while let Some((i, stored)) = fetched.next().await {
        let blob = index.groups[i].clone();
        let stored = match stored? {
            Ok(stored) => stored,
            Err(damage) => return Ok(Parts::Gone(damage.of(format::group_part(&blob, i, of)))),
        };
        if decoding.len() >= decoders
            && let Some(damage) = append(&mut assembler, decoding.pop_front()).await?
        {
            return Ok(Parts::Gone(damage));
        }
        decoding.push_back(tokio::task::spawn_blocking(move || format::decode_group(&blob, i, of, stored)));
    }
    drop(fetched);
    while !decoding.is_empty() {
        if let Some(damage) = append(&mut assembler, decoding.pop_front()).await? {
            return Ok(Parts::Gone(damage));
        }
    }
    let finished = fetch(shared, &index.history, data)
        .await?
        .map_err(|damage| damage.of(format::history_part(&index.history)))
        .and_then(|stored| assembler.finish(&index, &stored));
    Ok(match finished {
        Ok((snapshot, history, layout)) => Parts::Read(Box::new(Stored {
            snapshot,
            history,
            layout,
            resource_version,
            generation: index.generation,
        })),
        Err(damage) => Parts::Gone(damage),
    })
}

/// Appends the group being decoded by `decoding` (the oldest); the damage, if it has any.
async fn append(
    assembler: &mut Assembler,
    decoding: Option<tokio::task::JoinHandle<Result<format::DecodedGroup, Damage>>>,
) -> Result<Option<Damage>, Error> {
    let Some(handle) = decoding else { return Ok(None) };
    let decoded = handle.await.map_err(|e| internal(format!("decoding a group failed: {e}")))?;
    Ok(decoded.and_then(|group| assembler.push(group)).err())
}

/// Reads the payload of a format 1 or 2 index: `chunk-0`, then the chunk Secrets.
async fn read_legacy(
    shared: &Shared,
    index: LegacyIndex,
    data: &BTreeMap<String, ByteString>,
    resource_version: String,
) -> Result<Parts, Error> {
    let Some(first) = data.get(KEY_FIRST_CHUNK) else {
        return Err(shared.corrupt(format!("the index Secret has no `{KEY_FIRST_CHUNK}`")));
    };
    let mut stored = first.0.clone();
    pause_for_test("read-before-chunks").await;
    let legacy: Vec<String> =
        (1..index.chunks).map(|i| shared.config.legacy_chunk_name(index.generation, i)).collect();
    for chunk_name in &legacy {
        shared.cluster.count_read();
        match shared.retry(|| shared.secrets.get_opt(chunk_name)).await {
            Ok(Some(chunk)) => match chunk.data.as_ref().and_then(|d| d.get(KEY_CHUNK)) {
                Some(part) => stored.extend_from_slice(&part.0),
                None => {
                    return Err(shared.corrupt(format!("chunk Secret `{chunk_name}` has no `{KEY_CHUNK}`")));
                }
            },
            Ok(None) => {
                let part = format!("chunk Secret `{chunk_name}` of generation {}", index.generation);
                return Ok(Parts::Gone(Damage::Missing { part }));
            }
            Err(e) => return Err(shared.remote(e, "get", "secrets", chunk_name)),
        }
    }
    let (snapshot, history) =
        format::decode_legacy(&index, &stored).map_err(|d| shared.corrupt(d.to_string()))?;
    let layout = Layout { legacy, ..Layout::default() };
    Ok(Parts::Read(Box::new(Stored {
        snapshot,
        history,
        layout,
        resource_version,
        generation: index.generation,
    })))
}

/// A test hook that makes a race happen on purpose: with `MIP_TEST_PAUSE_AT` naming `point`
/// and `MIP_TEST_PAUSE_FILE` a path, the first time this process reaches `point` it creates
/// the file and waits until the test removes it (two minutes at most). The fault tier holds a
/// commit between its new group Secrets and its index (`commit-before-index`) and a reader
/// between the index and the groups it names (`read-before-chunks`), so readers overlap commits
/// every run rather than by luck. Unset (always, outside tests), it costs one environment lookup.
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

/// How many group Secrets a reader fetches at once (an API server serves a few GETs of about
/// 100 kB in parallel; more would only queue behind the client's rate limit).
const FETCH_CONCURRENCY: usize = 4;

/// How many new generations a reader follows before giving up (each one means a writer
/// committed while the groups were being read).
const READ_ATTEMPTS: usize = 10;

// ---------------------------------------------------------------------------------------------
// Writing

/// What a commit leaves for the writer's next one.
struct Committed {
    layout: Layout,
    resource_version: Option<String>,
    generation: u64,
}

/// Writes `current`'s snapshot and history as the generation after `current.generation`
/// (`changes` says what differs from `current.layout`), then makes it the state.
async fn write(shared: &Shared, current: &Current, changes: Changes<'_>) -> Result<Committed, Error> {
    let config = &shared.config;
    let generation = current.generation + 1;
    let commit = format::plan_commit(
        &config.name,
        &current.snapshot,
        &current.history,
        &current.layout,
        changes,
        generation,
        config.chunk_bytes,
    )?;
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
    for (blob, stored) in &commit.writes {
        for (part_name, part) in format::split(blob, stored, config.chunk_bytes) {
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(part_name.clone()),
                    labels: Some(labels(Some(generation))),
                    ..ObjectMeta::default()
                },
                type_: Some(SECRET_TYPE.to_owned()),
                data: Some(BTreeMap::from([(KEY_CHUNK.to_owned(), ByteString(part.to_vec()))])),
                ..Secret::default()
            };
            // Apply, not create: a Secret left by a writer killed before its commit is replaced.
            let (apply_params, patch) = (PatchParams::apply(STATE_MANAGER).force(), Patch::Apply(&secret));
            shared.cluster.count_write(false);
            shared
                .retry(|| shared.secrets.patch(&part_name, &apply_params, &patch))
                .await
                .map_err(|e| shared.remote(e, "patch", "secrets", &part_name))?;
        }
    }
    let mut data = BTreeMap::from([(
        KEY_INDEX.to_owned(),
        ByteString(serde_json::to_vec_pretty(&commit.index).map_err(internal)?),
    )]);
    for (name, stored) in &commit.layout.inline {
        data.insert(name.clone(), ByteString(stored.to_vec()));
    }
    let index_secret = Secret {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(labels(None)),
            resource_version: current.resource_version.clone(),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.to_owned()),
        data: Some(data),
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
        Err(e) if is_conflict(&e) && is_ours(shared, &commit.index).await => {
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
    // What only the old index listed is unreferenced now; a failure here only leaves garbage
    // for the next writer's sweep.
    let kept = commit.layout.secrets();
    for name in current.layout.secrets().difference(&kept) {
        shared.cluster.count_write(false);
        let params = DeleteParams::default();
        let _ = shared.retry(|| shared.secrets.delete(name, &params)).await;
    }
    Ok(Committed { layout: commit.layout, resource_version: written.metadata.resource_version, generation })
}

/// Whether the index Secret holds exactly `index` (same generation, serial and checksums).
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

/// Deletes the Secrets of this state that `keep` does not name (left by killed writers).
async fn sweep(shared: &Shared, keep: &BTreeSet<String>) -> Result<(), Error> {
    let config = &shared.config;
    let selector = format!("{LABEL_STATE}={},{LABEL_GENERATION}", config.name);
    let list_params = ListParams::default().labels(&selector);
    shared.cluster.count_read();
    let parts = shared
        .retry(|| shared.secrets.list_metadata(&list_params))
        .await
        .map_err(|e| shared.remote(e, "list", "secrets", &config.name))?;
    for name in parts.items.into_iter().filter_map(|s| s.metadata.name) {
        if keep.contains(&name) {
            continue;
        }
        shared.cluster.count_write(false);
        let params = DeleteParams::default();
        match shared.retry(|| shared.secrets.delete(&name, &params)).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(shared.remote(e, "delete", "secrets", &name)),
        }
    }
    Ok(())
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
    /// The runtime the store's async work (its calls, the heartbeat, the client's connections)
    /// runs on: see [`home`].
    home: tokio::runtime::Handle,
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
    pub fn open(
        connect: ConnectOptions,
        config: ClusterStateConfig,
        operation: mip_state::Operation,
    ) -> Result<Self, Error> {
        let info = LockInfo::current(operation);
        let identity = format!("{}/{}/{}", info.holder, info.pid, mip_state::new_lineage()?);
        let home = home()?;
        let (shared, current, stop, beat) = block_on(&home, async {
            let cluster = KubeCluster::connect(connect).await.map_err(|e| Error::Remote {
                location: format!("Secret `{}/{}`", config.namespace, config.name),
                reason: e.to_string(),
                hint: "check the kubeconfig and the context".to_owned(),
            })?;
            let shared = Arc::new(Shared::new(cluster, config));
            let lease = lock::acquire(&shared, &identity, &info).await?;
            let stop = Arc::new(tokio::sync::Notify::new());
            let beat = tokio::spawn(lock::heartbeat(
                Arc::clone(&shared),
                lease,
                identity.clone(),
                Arc::clone(&stop),
            ));
            let opened = async {
                let current = match read(&shared).await? {
                    Some(stored) => {
                        sweep(&shared, &stored.layout.secrets()).await?;
                        Current {
                            snapshot: stored.snapshot,
                            history: stored.history,
                            layout: stored.layout,
                            resource_version: Some(stored.resource_version),
                            generation: stored.generation,
                        }
                    }
                    None => {
                        sweep(&shared, &BTreeSet::new()).await?;
                        let mut empty = Current {
                            snapshot: Snapshot {
                                lineage: mip_state::new_lineage()?,
                                serial: 0,
                                managed: BTreeMap::new(),
                            },
                            history: Vec::new(),
                            layout: Layout::default(),
                            resource_version: None,
                            generation: 0,
                        };
                        let committed = write(&shared, &empty, Changes::ALL).await?;
                        empty.commit(committed);
                        empty
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
                        lock::release(&shared, lease).await;
                    }
                    Err(e)
                }
            }
        })??;
        Ok(ClusterStore {
            shared,
            current: Mutex::new(current),
            stop,
            heartbeat: Mutex::new(Some(beat)),
            home,
        })
    }

    /// Where the state is, for messages: `Secret `ns/name` on `https://…``.
    pub fn location(&self) -> String {
        self.shared.location()
    }

    /// The lineage of the state.
    pub fn lineage(&self) -> String {
        self.current().snapshot.lineage.clone()
    }

    /// The requests this store has made (its heartbeat's included): what its commits cost.
    pub fn requests(&self) -> mip_core::cluster::RequestCounts {
        mip_core::cluster::Cluster::requests(&self.shared.cluster)
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

    /// Writes what `current` holds now (`changes` since its last commit) unless the lock is
    /// lost. On an error `current` still describes the last commit's layout: the caller
    /// restores its snapshot and history.
    fn commit(&self, current: &mut Current, changes: Changes<'_>) -> Result<(), Error> {
        if let Some(reason) = self.shared.lost().clone() {
            return Err(self.shared.lock_lost(reason));
        }
        let shared = Arc::clone(&self.shared);
        let committed = block_on(&self.home, async { write(&shared, current, changes).await })??;
        current.commit(committed);
        Ok(())
    }
}

impl Current {
    fn commit(&mut self, committed: Committed) {
        self.layout = committed.layout;
        self.resource_version = committed.resource_version;
        self.generation = committed.generation;
    }
}

impl StateStore for ClusterStore {
    fn snapshot(&self) -> Result<Snapshot, Error> {
        Ok(self.current().snapshot.clone())
    }

    /// A commit writes the groups it changed and the index (and an etcd revision of each), so
    /// changes are batched for up to 250 ms: a few writes per second, whatever the apply's
    /// size.
    fn group_commit_window(&self) -> Duration {
        Duration::from_millis(250)
    }

    /// Records in place and undoes them if the commit fails: a copy of a large state for every
    /// commit would cost more than the groups it writes.
    fn record_many(&self, records: Vec<Record>) -> Result<u64, Error> {
        let mut current = self.current();
        if records.is_empty() {
            return Ok(current.snapshot.serial);
        }
        let changed: BTreeSet<ObjectRef> = records.iter().map(|(addr, _)| addr.clone()).collect();
        let undo: Vec<_> =
            changed.iter().map(|addr| (addr.clone(), current.snapshot.managed.get(addr).cloned())).collect();
        let serial_before = current.snapshot.serial;
        let serial = current.snapshot.record(records);
        let changes = Changes { managed: Some(&changed), history: false };
        if let Err(error) = self.commit(&mut current, changes) {
            for (addr, entry) in undo {
                match entry {
                    Some(entry) => current.snapshot.managed.insert(addr, entry),
                    None => current.snapshot.managed.remove(&addr),
                };
            }
            current.snapshot.serial = serial_before;
            return Err(error);
        }
        Ok(serial)
    }

    fn import(&self, snapshot: &Snapshot, history: &[HistoryEntry]) -> Result<(), Error> {
        let mut current = self.current();
        if !current.snapshot.is_fresh() || !current.history.is_empty() {
            return Err(Error::NotEmpty {
                location: self.location(),
                serial: current.snapshot.serial,
                entries: current.snapshot.managed.len(),
            });
        }
        let mut history = history.to_vec();
        mip_state::bound_history(&mut history, self.shared.config.history_limit);
        let fresh = std::mem::replace(&mut current.snapshot, snapshot.clone());
        current.history = history;
        if let Err(error) = self.commit(&mut current, Changes::ALL) {
            current.snapshot = fresh;
            current.history = Vec::new();
            return Err(error);
        }
        Ok(())
    }

    fn append_history(&self, entry: HistoryEntry) -> Result<(), Error> {
        let mut current = self.current();
        let before = current.history.clone();
        current.history.push(entry);
        mip_state::bound_history(&mut current.history, self.shared.config.history_limit);
        if let Err(error) =
            self.commit(&mut current, Changes { managed: Some(&BTreeSet::new()), history: true })
        {
            current.history = before;
            return Err(error);
        }
        Ok(())
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        Ok(self.current().history.clone())
    }
}

impl Drop for ClusterStore {
    fn drop(&mut self) {
        let beat = self.heartbeat.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(beat) = beat {
            self.stop.notify_one();
            self.stop.notify_one();
            let shared = Arc::clone(&self.shared);
            // The runtime runs (the store was opened on it), so this cannot fail.
            let _ = block_on(&self.home, async move {
                if let Ok(Some(lease)) = beat.await {
                    lock::release(&shared, lease).await;
                }
            });
        }
    }
}

/// Where a store runs its async work: the caller's runtime when it is a multi-thread one (the
/// CLI's: the heartbeat runs on its other worker while a call blocks), otherwise (a plain
/// thread: tests and tools; or a current-thread runtime, which cannot lend its one thread) a
/// runtime of the state's own, one worker named `mip-state`, started with the first such store
/// and kept until the process exits.
fn home() -> Result<tokio::runtime::Handle, Error> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if let Ok(caller) = Handle::try_current()
        && caller.runtime_flavor() == RuntimeFlavor::MultiThread
    {
        return Ok(caller);
    }
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("mip-state")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(|runtime| runtime.handle().clone())
        .map_err(|e| internal(format!("cannot start the state store's runtime: {e}")))
}

/// The one bridge from the synchronous [`StateStore`] (and [`ClusterStore::open`] and `drop`)
/// to the async cluster calls: runs `future` to completion on the store's [`home`] runtime. On
/// a plain thread it blocks that thread; on a thread of a multi-thread runtime it first tells
/// the runtime so (`block_in_place`: the thread's other tasks move to another worker), so the
/// heartbeat keeps running; inside a current-thread runtime it blocks a scoped thread, never
/// the runtime's one thread.
///
/// # Errors
/// None of its own (a `Result` for its callers' `?`); the future's own result otherwise.
fn block_on<F>(home: &tokio::runtime::Handle, future: F) -> Result<F::Output, Error>
where
    F: Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => Ok(home.block_on(future)),
        Ok(here) if here.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| home.block_on(future)))
        }
        Ok(_) => std::thread::scope(|scope| match scope.spawn(|| home.block_on(future)).join() {
            Ok(output) => Ok(output),
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}
