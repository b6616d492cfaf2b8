//! Live operations: read the cluster, plan against it, apply a plan, detect drift, destroy.
//!
//! Generic over [`Cluster`] (implemented by `mip-kube`, and by the real test cluster in
//! tests) and [`StateStore`]. Reports progress through [`Hook`]; never prints.

use crate::ops::Loaded;
use mip_core::cluster::{ApplyOptions, Cluster, ClusterError, KindRef};
use mip_core::{Action, ObjectRef, Sensitive, SensitiveSource, canonical};
use mip_plan::{Change, LiveView, Mode, Plan, PlanInput, PriorState};
use mip_state::{HistoryEntry, ManagedEntry, Snapshot, StateStore};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Why a live operation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Talking to the API server failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] mip_state::Error),
    /// The cluster is not the one the inventory names.
    #[error("refusing to touch API server `{actual}`: the inventory's guard expects {expected}")]
    WrongCluster {
        /// What the inventory says.
        expected: String,
        /// What the kubeconfig points at.
        actual: String,
    },
    /// The plan was made against another state.
    #[error("the plan was made for state lineage `{plan}`, but this state is `{state}`")]
    OtherState {
        /// Lineage in the plan.
        plan: String,
        /// Lineage of the store.
        state: String,
    },
    /// The state or the cluster changed since the plan.
    #[error("the plan is stale: {reason}")]
    Stale {
        /// What changed, naming the objects.
        reason: String,
    },
    /// A secret value could not be read from its source.
    #[error("cannot read the value of `{key}` of `{addr}` from {source_desc}: {reason}")]
    SecretSource {
        /// The Secret.
        addr: ObjectRef,
        /// The key.
        key: String,
        /// The source, e.g. env `X`.
        source_desc: String,
        /// Why.
        reason: String,
    },
}

impl LiveError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            LiveError::WrongCluster { .. } => Some(
                "select the right context with `--context`, or fix `argocd.apiServer`/`argocd.context`"
                    .into(),
            ),
            LiveError::OtherState { .. } | LiveError::Stale { .. } => {
                Some("run `mip plan -o FILE` again and review the new plan".into())
            }
            LiveError::SecretSource { .. } => {
                Some("set the environment variable or create the file the inventory names".into())
            }
            LiveError::State(e) => Some(e.hint()),
            LiveError::Cluster(ClusterError::Unreachable { .. }) => {
                Some("check the kubeconfig context, the VPN, or `HTTPS_PROXY=socks5://…`".into())
            }
            LiveError::Cluster(ClusterError::Conflict { .. }) => Some(
                "another tool owns these fields; remove them there, or let mip own the object alone".into(),
            ),
            LiveError::Cluster(e @ ClusterError::Forbidden { .. }) => forbidden_hint(e),
            LiveError::Cluster(_) => None,
        }
    }
}

/// The fix for a [`ClusterError::Forbidden`]: which permission is missing and where the roles
/// that grant exactly what mip needs are. `None` for any other error.
pub fn forbidden_hint(e: &ClusterError) -> Option<String> {
    let ClusterError::Forbidden { verb, resource, namespace, .. } = e else { return None };
    let scope = namespace.as_ref().map(|n| format!(" in namespace `{n}`")).unwrap_or_default();
    let apply =
        if verb == "patch" { " (server-side apply is `patch`, plus `create` for a new object)" } else { "" };
    Some(format!(
        "the credentials in use lack `{verb}` on `{resource}`{scope}{apply}; bind the roles in `examples/rbac/`: `mip-readonly.yaml` for plan, drift and doctor, `mip-apply.yaml` for apply (README, \"Least privilege\")"
    ))
}

/// Progress events of an apply (the CLI renders them on stderr).
#[derive(Debug, Clone)]
pub enum ApplyEvent {
    /// A change starts.
    Start(ObjectRef, Action),
    /// A change finished.
    Done(ObjectRef, Action),
    /// A change failed.
    Failed(ObjectRef, String),
    /// A change was skipped because something it depends on failed.
    Skipped(ObjectRef, ObjectRef),
    /// Waiting for Argo CD objects; how many are still missing.
    Waiting(usize),
}

/// Receives progress. The engine never prints.
pub trait Hook: Send + Sync {
    /// One event.
    fn event(&self, e: ApplyEvent);
}

/// Ignores every event.
pub struct NoHook;
impl Hook for NoHook {
    fn event(&self, _: ApplyEvent) {}
}

/// Reads secret values from their sources (env, file, prompt); generated values are the
/// engine's job. Implemented by the CLI (the prompt needs a terminal).
pub trait SecretResolver: Send + Sync {
    /// The value for a source, or why it cannot be had.
    fn resolve(&self, source: &SensitiveSource) -> Result<Sensitive, String>;
}

/// Checks the inventory's guard against the API server in use.
///
/// # Errors
/// [`LiveError::WrongCluster`].
#[expect(clippy::result_large_err, reason = "one error type for the engine; called once per command")]
pub fn check_guard(loaded: &Loaded, server: &str, context: Option<&str>) -> Result<(), LiveError> {
    let norm = |s: &str| s.trim_end_matches('/').to_owned();
    if let Some(want) = &loaded.inventory.argocd.api_server
        && norm(&want.value) != norm(server)
    {
        return Err(LiveError::WrongCluster {
            expected: format!("`{}` (argocd.apiServer)", want.value),
            actual: server.to_owned(),
        });
    }
    if let Some(want) = &loaded.inventory.argocd.context
        && Some(want.value.as_str()) != context
    {
        return Err(LiveError::WrongCluster {
            expected: format!(
                "context `{}` (argocd.context), not `{}`",
                want.value,
                context.unwrap_or("<none>")
            ),
            actual: server.to_owned(),
        });
    }
    Ok(())
}

fn is_secret(a: &ObjectRef) -> bool {
    a.group.is_empty() && a.kind == "Secret"
}

/// Reads every object of interest with one LIST per kind (per namespace when all objects of
/// the kind share one namespace; cluster-wide otherwise; Secrets only with mip's label).
///
/// # Errors
/// Cluster errors other than an unknown kind (a missing CRD means no objects of it).
pub async fn read_live<C: Cluster>(
    cluster: &C,
    addrs: &BTreeSet<ObjectRef>,
) -> Result<BTreeMap<ObjectRef, Value>, LiveError> {
    let mut by_kind: BTreeMap<KindRef, BTreeSet<Option<String>>> = BTreeMap::new();
    for a in addrs.iter().filter(|a| a.cluster.is_none()) {
        by_kind.entry(KindRef::of(a)).or_default().insert(a.namespace.clone());
    }
    let mut out = BTreeMap::new();
    for (kind, namespaces) in by_kind {
        let selector =
            (kind.group.is_empty() && kind.kind == "Secret").then_some("app.kubernetes.io/managed-by=mip");
        let ns = match namespaces.iter().collect::<Vec<_>>().as_slice() {
            [Some(one)] => Some(one.as_str()),
            _ => None,
        };
        let items = match cluster.list(&kind, ns, selector).await {
            Ok(items) => items,
            Err(ClusterError::UnknownKind { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let api_version = if kind.group.is_empty() {
            kind.version.clone()
        } else {
            format!("{}/{}", kind.group, kind.version)
        };
        for item in items {
            let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let namespace = item.pointer("/metadata/namespace").and_then(Value::as_str);
            let addr = ObjectRef::new(&api_version, &kind.kind, namespace, name);
            if addrs.contains(&addr) {
                out.insert(addr, item);
            }
        }
    }
    Ok(out)
}

fn volatile_stripped(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["managedFields", "resourceVersion", "generation", "creationTimestamp", "uid"] {
            meta.remove(k);
        }
    }
    canonical::canonicalize(&v)
}

fn prior_from(snapshot: Option<&Snapshot>) -> PriorState {
    match snapshot {
        None => PriorState::default(),
        Some(s) => crate::ops::prior_from(s),
    }
}

/// Plans against the live cluster.
///
/// Reads with one LIST per kind; objects whose owned fields differ are confirmed with a
/// server-side dry run (never for unchanged objects), so server normalisation is not a change.
///
/// # Errors
/// Cluster errors.
pub async fn plan_live<C: Cluster>(
    cluster: &C,
    loaded: &Loaded,
    snapshot: Option<&Snapshot>,
) -> Result<Plan, LiveError> {
    let prior = prior_from(snapshot);
    let mut addrs: BTreeSet<ObjectRef> = loaded.desired.objects.keys().cloned().collect();
    addrs.extend(prior.managed.keys().cloned());
    let objects = read_live(cluster, &addrs).await?;
    let mut confirmed_unchanged = BTreeSet::new();
    for o in loaded.desired.mip_owned() {
        let Some(live) = objects.get(&o.addr) else { continue };
        if is_secret(&o.addr) || mip_plan::diff::owned_fields(live, mip_core::FIELD_MANAGER).is_none() {
            continue;
        }
        if !mip_plan::diff::diff(&o.manifest, live, false).changed {
            continue;
        }
        let opts = ApplyOptions { dry_run: true, force: mip_plan::adopts(&o.addr) };
        if let Ok(result) = cluster.apply(&o.addr, &o.manifest, opts).await
            && volatile_stripped(&result) == volatile_stripped(live)
        {
            confirmed_unchanged.insert(o.addr.clone());
        }
    }
    let input = PlanInput {
        inventory: &loaded.path,
        inventory_digest: loaded.digest.clone(),
        mode: Mode::Live,
        mip_version: env!("CARGO_PKG_VERSION"),
    };
    let view = LiveView { objects, confirmed_unchanged };
    // Objects on other clusters (federations on remote clusters) are not reachable through this
    // connection: they are left out of a live plan rather than applied to the wrong cluster.
    // Only then is the desired state copied and its graph rebuilt.
    if loaded.desired.objects.keys().all(|a| a.cluster.is_none()) {
        return Ok(mip_plan::plan_live(&loaded.desired, &loaded.dag, &prior, &view, &input));
    }
    let mut desired = loaded.desired.clone();
    desired.objects.retain(|a, _| a.cluster.is_none());
    let steps = desired.objects.iter().map(|(a, o)| (a.clone(), o.step)).collect();
    let edges = loaded
        .dag
        .edges()
        .into_iter()
        .filter(|e| e.from.cluster.is_none() && e.to.cluster.is_none())
        .collect();
    let dag =
        mip_graph::Dag::from_edges(&steps, edges).map_err(|e| LiveError::Stale { reason: e.to_string() })?;
    Ok(mip_plan::plan_live(&desired, &dag, &prior, &view, &input))
}

/// A drift report: what differs between the cluster and the inventory, with a stable
/// fingerprint for alert deduplication.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drift {
    /// `format_version` of the drift JSON.
    pub format_version: &'static str,
    /// sha256 over the sorted (address, action, live fingerprint) of every drifted object.
    pub fingerprint: String,
    /// Drifted mip-owned objects.
    pub changes: Vec<DriftItem>,
    /// Expected Argo-owned objects that are missing.
    pub missing: Vec<ObjectRef>,
}

/// One drifted object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DriftItem {
    /// The object.
    pub address: ObjectRef,
    /// What apply would do.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// Diff of mip's fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Drift {
    /// Whether anything drifted.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.missing.is_empty()
    }
}

/// Drift of a live plan.
pub fn drift_of(plan: &Plan) -> Drift {
    let changes: Vec<DriftItem> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| DriftItem {
            address: c.address.clone(),
            action: c.action,
            reason: c.reason.clone(),
            diff: c.diff.clone(),
        })
        .collect();
    let missing: Vec<ObjectRef> =
        plan.expected.iter().filter(|e| !e.present).map(|e| e.address.clone()).collect();
    let keyed: Vec<(String, &str, Option<&String>)> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| (c.address.to_string(), c.action.as_str(), c.live_fingerprint.as_ref()))
        .collect();
    let fingerprint =
        canonical::digest(&serde_json::json!({ "changes": keyed, "missing": missing })).unwrap_or_default();
    Drift { format_version: "1", fingerprint, changes, missing }
}

/// Options of [`apply`].
#[derive(Debug, Clone)]
pub struct ApplyOpts {
    /// Concurrent writes at most.
    pub parallelism: usize,
    /// How long to wait for the Argo-owned objects (zero: don't wait).
    pub wait_timeout: Duration,
    /// Poll interval while waiting.
    pub poll: Duration,
    /// How long a deletion may take to finish (finalizers, foreground propagation).
    pub deletion_timeout: Duration,
}

impl Default for ApplyOpts {
    fn default() -> Self {
        ApplyOpts {
            parallelism: 8,
            wait_timeout: Duration::from_secs(300),
            poll: Duration::from_secs(2),
            deletion_timeout: Duration::from_secs(120),
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyOutcome {
    /// Changes done.
    pub applied: Vec<ObjectRef>,
    /// Changes that failed, with the error.
    pub failed: Vec<(ObjectRef, String)>,
    /// Changes not attempted because a dependency failed: (change, failed dependency).
    pub skipped: Vec<(ObjectRef, ObjectRef)>,
    /// Argo-owned objects still missing when the wait ended.
    pub pending: Vec<ObjectRef>,
    /// State serial after the apply.
    pub serial: u64,
    /// The failures that were the API server's refusals (missing RBAC permissions), with the
    /// typed error, so the caller can name the permission to grant.
    #[serde(skip)]
    pub forbidden: Vec<(ObjectRef, ClusterError)>,
}

impl ApplyOutcome {
    /// Whether everything was done.
    pub fn complete(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.pending.is_empty()
    }
}

/// A 24-character alphanumeric value from the OS CSPRNG (rejection sampling: no modulo bias).
pub fn generate_secret() -> Result<Sensitive, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    let mut buf = [0u8; 64];
    while out.len() < 24 {
        getrandom::fill(&mut buf).map_err(|e| format!("the OS random source failed: {e}"))?;
        for b in buf {
            if b < 248 && out.len() < 24 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(Sensitive::new(out))
}

/// Fills a Secret manifest's `stringData` from sources; existing values of generated keys are
/// kept (create-if-absent), `rotate` regenerates them.
#[expect(clippy::result_large_err, reason = "one error type for the engine; called once per Secret")]
fn fill_secret(
    change: &Change,
    live: Option<&Value>,
    resolver: &dyn SecretResolver,
    rotate: bool,
) -> Result<Value, LiveError> {
    let mut manifest = change.manifest.as_deref().cloned().unwrap_or(Value::Null);
    for key in &change.sensitive {
        let existing = live
            .and_then(|l| l.pointer(&format!("/data/{}", pointer_escape(&key.key))))
            .and_then(Value::as_str)
            .and_then(decode_base64);
        let value = match (&key.source, existing) {
            (SensitiveSource::Generated, Some(v)) if !rotate => v,
            (SensitiveSource::Generated, _) => {
                generate_secret().map_err(|reason| LiveError::SecretSource {
                    addr: change.address.clone(),
                    key: key.key.clone(),
                    source_desc: "the OS random source".into(),
                    reason,
                })?
            }
            (src, _) => resolver.resolve(src).map_err(|reason| LiveError::SecretSource {
                addr: change.address.clone(),
                key: key.key.clone(),
                source_desc: src.to_string(),
                reason,
            })?,
        };
        if let Some(data) = manifest.get_mut("stringData").and_then(Value::as_object_mut) {
            data.insert(key.key.clone(), Value::String(value.expose().to_owned()));
        }
    }
    Ok(manifest)
}

fn decode_base64(s: &str) -> Option<Sensitive> {
    mip_plan::base64_decode(s).map(Sensitive::new)
}

fn pointer_escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// A live Secret's value for a key, decoded (in memory only, to hash it).
fn live_value(live: &Value, key: &str) -> Option<String> {
    live.pointer(&format!("/data/{}", pointer_escape(key)))
        .and_then(Value::as_str)
        .and_then(mip_plan::base64_decode)
}

/// Salted hashes of a change's sensitive values (salt: the state's lineage).
fn value_hashes(
    lineage: &str,
    c: &Change,
    value: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    c.sensitive
        .iter()
        .filter_map(|k| {
            value(&k.key).map(|v| {
                (k.key.clone(), canonical::salted_hash(lineage, &format!("{}#{}", c.address, k.key), &v))
            })
        })
        .collect()
}

/// Checks that a saved plan still applies: same state lineage and serial, and every planned
/// object's uid, existence and mip-owned fields unchanged (status changes do not count).
///
/// # Errors
/// [`LiveError::OtherState`] or [`LiveError::Stale`] naming the objects.
pub async fn check_fresh<C: Cluster>(
    cluster: &C,
    plan: &Plan,
    snapshot: &Snapshot,
) -> Result<BTreeMap<ObjectRef, Value>, LiveError> {
    // A plan made before any store existed carries no lineage: it fits a store that has not
    // recorded anything yet (serial 0), whatever its fresh lineage.
    if let Some(p) = &plan.state.lineage
        && *p != snapshot.lineage
    {
        return Err(LiveError::OtherState { plan: p.clone(), state: snapshot.lineage.clone() });
    }
    if snapshot.serial != plan.state.serial {
        return Err(LiveError::Stale {
            reason: format!(
                "the state moved from serial {} to {} (another apply ran)",
                plan.state.serial, snapshot.serial
            ),
        });
    }
    let addrs: BTreeSet<ObjectRef> = plan.changes.iter().map(|c| c.address.clone()).collect();
    let live = read_live(cluster, &addrs).await?;
    let mut changed = Vec::new();
    for c in &plan.changes {
        let now = live.get(&c.address).map(|l| mip_plan::diff::live_fingerprint(l, is_secret(&c.address)));
        if now != c.live_fingerprint {
            changed.push(format!("`{}`", c.address));
        }
    }
    if !changed.is_empty() {
        return Err(LiveError::Stale {
            reason: format!("changed in the cluster since the plan: {}", changed.join(", ")),
        });
    }
    Ok(live)
}

/// Applies a plan in dependency order, independent changes in parallel (bounded), recording
/// each finished change in the state at once, then waits for the Argo-owned objects.
///
/// A failed change stops only what depends on it (reported as skipped). Re-running converges.
///
/// # Errors
/// Staleness, state and secret-source errors before anything is written; per-change errors
/// are in the outcome.
pub async fn apply<C: Cluster + 'static, S: StateStore + Send + Sync + 'static>(
    cluster: Arc<C>,
    store: Arc<S>,
    plan: &Plan,
    resolver: &dyn SecretResolver,
    rotate: &BTreeSet<ObjectRef>,
    opts: &ApplyOpts,
    hook: Arc<dyn Hook>,
) -> Result<ApplyOutcome, LiveError> {
    let snapshot = store.snapshot()?;
    let live = check_fresh(cluster.as_ref(), plan, &snapshot).await?;
    // Resolve every secret value before the first write: a missing source fails early.
    // `--rotate` turns an unchanged Secret into an update with fresh generated values.
    let rotated: Vec<Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::NoOp && rotate.contains(&c.address))
        .map(|c| Change { action: Action::Update, reason: "rotate generated values".into(), ..c.clone() })
        .collect();
    let changes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| !(c.action == Action::NoOp && rotate.contains(&c.address)))
        .chain(rotated.iter())
        .collect();
    let mut manifests: BTreeMap<ObjectRef, Value> = BTreeMap::new();
    let mut hashes: BTreeMap<ObjectRef, BTreeMap<String, String>> = BTreeMap::new();
    for c in changes.iter().filter(|c| matches!(c.action, Action::Create | Action::Update)) {
        let m = if c.sensitive.is_empty() {
            c.manifest.as_deref().cloned().unwrap_or(Value::Null)
        } else {
            let m = fill_secret(c, live.get(&c.address), resolver, rotate.contains(&c.address))?;
            hashes.insert(
                c.address.clone(),
                value_hashes(&snapshot.lineage, c, |k| {
                    m.pointer(&format!("/stringData/{}", pointer_escape(k)))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }),
            );
            m
        };
        manifests.insert(c.address.clone(), m);
    }
    let mut outcome = ApplyOutcome { serial: snapshot.serial, ..ApplyOutcome::default() };
    let work: Vec<&Change> = changes.iter().copied().filter(|c| c.action.is_write()).collect();
    let in_plan: BTreeSet<&ObjectRef> = work.iter().map(|c| &c.address).collect();
    let mut done: BTreeSet<ObjectRef> = BTreeSet::new();
    let mut failed: BTreeSet<ObjectRef> = BTreeSet::new();
    let mut remaining: Vec<&Change> = work.clone();
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.parallelism.max(1)));
    while !remaining.is_empty() {
        // Ready: every in-plan dependency done. Blocked by a failure: skipped.
        let mut ready = Vec::new();
        let mut next = Vec::new();
        for c in remaining {
            let deps: Vec<&ObjectRef> =
                c.depends_on.iter().map(|d| &d.address).filter(|a| in_plan.contains(a)).collect();
            if let Some(bad) =
                deps.iter().find(|a| failed.contains(**a) || outcome.skipped.iter().any(|(s, _)| s == **a))
            {
                hook.event(ApplyEvent::Skipped(c.address.clone(), (*bad).clone()));
                outcome.skipped.push((c.address.clone(), (*bad).clone()));
            } else if deps.iter().all(|a| done.contains(*a)) {
                ready.push(c);
            } else {
                next.push(c);
            }
        }
        if ready.is_empty() {
            // Deletions carry no dependencies; anything left waits on skipped work.
            for c in next {
                outcome.skipped.push((c.address.clone(), c.address.clone()));
            }
            break;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for c in ready {
            let (cluster, sem, hook) = (Arc::clone(&cluster), Arc::clone(&sem), Arc::clone(&hook));
            let addr = c.address.clone();
            let action = c.action;
            let manifest = manifests.get(&addr).cloned();
            let force = c.force;
            let fingerprint = c.fingerprint.clone();
            let deletion_timeout = opts.deletion_timeout;
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                hook.event(ApplyEvent::Start(addr.clone(), action));
                let result = match action {
                    Action::Delete => match cluster.delete(&addr).await {
                        Ok(_) => wait_gone(cluster.as_ref(), &addr, deletion_timeout).await.map(|()| None),
                        Err(e) => Err(e),
                    },
                    _ => {
                        let m = manifest.unwrap_or(Value::Null);
                        match cluster.apply(&addr, &m, ApplyOptions { dry_run: false, force }).await {
                            // Gate: a CRD must be Established before its custom resources.
                            Ok(obj) if addr.kind == "CustomResourceDefinition" => {
                                wait_established(cluster.as_ref(), &addr, deletion_timeout)
                                    .await
                                    .map(|()| Some(obj))
                            }
                            other => other.map(Some),
                        }
                    }
                };
                (addr, action, fingerprint, result)
            });
        }
        // Group commit: finished changes are recorded together, at the latest the store's
        // `group_commit_window` after the first of them finished (or once MAX_BATCH are
        // pending), on a blocking thread so the runtime keeps driving the requests in flight
        // meanwhile. A change is reported done only once recorded.
        let mut pending = Pending::default();
        let window = store.group_commit_window();
        loop {
            let joined = match pending.since {
                Some(first) if pending.items.len() < MAX_BATCH => tokio::select! {
                    joined = tasks.join_next() => joined,
                    () = tokio::time::sleep_until(first + window) => {
                        pending.flush(&store, &mut outcome, &mut done, hook.as_ref()).await?;
                        continue;
                    }
                },
                Some(_) => {
                    pending.flush(&store, &mut outcome, &mut done, hook.as_ref()).await?;
                    continue;
                }
                None => tasks.join_next().await,
            };
            let Some(joined) = joined else { break };
            let Ok((addr, action, fingerprint, result)) = joined else { continue };
            match result {
                Ok(obj) => {
                    let entry = obj.map(|o| ManagedEntry {
                        fingerprint,
                        uid: o.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned),
                        serial: 0,
                        secret_hashes: hashes.remove(&addr).unwrap_or_default(),
                    });
                    pending.items.push((action, (addr, entry)));
                    pending.since.get_or_insert_with(tokio::time::Instant::now);
                }
                Err(e) => {
                    hook.event(ApplyEvent::Failed(addr.clone(), e.to_string()));
                    outcome.failed.push((addr.clone(), e.to_string()));
                    if matches!(e, ClusterError::Forbidden { .. }) {
                        outcome.forbidden.push((addr.clone(), e));
                    }
                    failed.insert(addr);
                }
            }
        }
        pending.flush(&store, &mut outcome, &mut done, hook.as_ref()).await?;
        remaining = next;
    }
    // Unchanged objects that the state does not know yet (adopted earlier, or a lost state)
    // are recorded too, so that state can be rebuilt by a plain re-apply.
    let mut adopted = Vec::new();
    for c in plan.changes.iter().filter(|c| c.action == Action::NoOp) {
        if !snapshot.managed.contains_key(&c.address)
            && let Some(l) = live.get(&c.address)
        {
            let uid = l.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
            let secret_hashes = value_hashes(&snapshot.lineage, c, |k| live_value(l, k));
            let entry = ManagedEntry { fingerprint: c.fingerprint.clone(), uid, serial: 0, secret_hashes };
            adopted.push((c.address.clone(), Some(entry)));
        }
    }
    if !adopted.is_empty() {
        outcome.serial = store.record_many(adopted)?;
    }
    if outcome.failed.is_empty() && outcome.skipped.is_empty() {
        outcome.pending = wait_for_argo(cluster.as_ref(), plan, opts, hook.as_ref()).await?;
    }
    let summary = format!(
        "{} applied, {} failed, {} skipped, {} pending",
        outcome.applied.len(),
        outcome.failed.len(),
        outcome.skipped.len(),
        outcome.pending.len()
    );
    store.append_history(HistoryEntry {
        serial: outcome.serial,
        operation: "apply".into(),
        summary,
        at_unix: now_unix(),
    })?;
    Ok(outcome)
}

/// How many finished changes force a group commit at once.
const MAX_BATCH: usize = 256;

/// Finished changes waiting for their group commit, and since when the first of them waits.
#[derive(Default)]
struct Pending {
    items: Vec<(Action, mip_state::Record)>,
    since: Option<tokio::time::Instant>,
}

impl Pending {
    /// Records the pending changes in one write (on a blocking thread), then reports each
    /// one done.
    async fn flush<S: StateStore + Send + Sync + 'static>(
        &mut self,
        store: &Arc<S>,
        outcome: &mut ApplyOutcome,
        done: &mut BTreeSet<ObjectRef>,
        hook: &dyn Hook,
    ) -> Result<(), LiveError> {
        self.since = None;
        if self.items.is_empty() {
            return Ok(());
        }
        let (actions, batch): (Vec<Action>, Vec<mip_state::Record>) =
            std::mem::take(&mut self.items).into_iter().unzip();
        let addrs: Vec<ObjectRef> = batch.iter().map(|(addr, _)| addr.clone()).collect();
        let writer = Arc::clone(store);
        outcome.serial = match tokio::task::spawn_blocking(move || writer.record_many(batch)).await {
            Ok(serial) => serial?,
            Err(e) => {
                return Err(LiveError::State(mip_state::Error::Internal {
                    reason: format!("the state writer stopped: {e}"),
                }));
            }
        };
        for (addr, action) in addrs.into_iter().zip(actions) {
            hook.event(ApplyEvent::Done(addr.clone(), action));
            outcome.applied.push(addr.clone());
            done.insert(addr);
        }
        Ok(())
    }
}

/// Waits until a CRD reports `Established=True`.
async fn wait_established<C: Cluster>(
    cluster: &C,
    addr: &ObjectRef,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let established = cluster.get(addr).await?.is_some_and(|crd| {
            crd.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Established")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
        });
        if established {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::Other {
                operation: format!("apply `{addr}`"),
                message: format!("not Established after {} s", timeout.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until a deleted object is really gone (foreground deletion and finalizers take
/// time); a deletion stuck on a finalizer is reported, naming the finalizers.
async fn wait_gone<C: Cluster>(cluster: &C, addr: &ObjectRef, timeout: Duration) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match cluster.get(addr).await? {
            None => return Ok(()),
            Some(obj) if tokio::time::Instant::now() >= deadline => {
                let finalizers = obj
                    .pointer("/metadata/finalizers")
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "none".into());
                return Err(ClusterError::Other {
                    operation: format!("delete `{addr}`"),
                    message: format!(
                        "still present after {} s (finalizers: {finalizers}); a finalizer is blocking it",
                        timeout.as_secs()
                    ),
                });
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn wait_for_argo<C: Cluster>(
    cluster: &C,
    plan: &Plan,
    opts: &ApplyOpts,
    hook: &dyn Hook,
) -> Result<Vec<ObjectRef>, LiveError> {
    if opts.wait_timeout.is_zero() {
        // `--wait-timeout 0`: the caller chose not to wait; nothing is reported pending.
        return Ok(Vec::new());
    }
    let mut missing: BTreeSet<ObjectRef> =
        plan.expected.iter().filter(|e| !e.present).map(|e| e.address.clone()).collect();
    let deadline = tokio::time::Instant::now() + opts.wait_timeout;
    loop {
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let found = read_live(cluster, &missing).await?;
        missing.retain(|a| !found.contains_key(a));
        hook.event(ApplyEvent::Waiting(missing.len()));
        if missing.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(missing.into_iter().collect());
        }
        tokio::time::sleep(opts.poll).await;
    }
}

/// Kinds whose deletion takes other things with it: a Namespace its workloads and volumes, an
/// AppProject its Applications' ability to sync, a CRD every custom resource of its kind.
pub fn is_protected(a: &ObjectRef) -> bool {
    matches!(a.kind.as_str(), "Namespace" | "AppProject" | "CustomResourceDefinition")
}

fn labelled_mip(live: &Value) -> bool {
    live.pointer("/metadata/labels/app.kubernetes.io~1managed-by").and_then(Value::as_str) == Some("mip")
}

/// A destroy plan: every object in the state that still carries mip's label, deleted in
/// reverse dependency order. Never the `default` AppProject (argocd-server recreates it; mip
/// only forgets it), and protected kinds only with `include_protected`.
pub fn destroy_plan(
    loaded: &Loaded,
    snapshot: &Snapshot,
    live: &BTreeMap<ObjectRef, Value>,
    include_protected: bool,
) -> Plan {
    // Reverse creation order; objects the inventory no longer has go first (they were created
    // by an older inventory, nothing in this one depends on them).
    let rank: BTreeMap<&ObjectRef, usize> =
        loaded.dag.order().rev().enumerate().map(|(i, a)| (a, i + 1)).collect();
    let mut addrs: Vec<&ObjectRef> = snapshot
        .managed
        .keys()
        .filter(|a| !mip_plan::adopts(a) && (include_protected || !is_protected(a)))
        .filter(|a| live.get(*a).is_some_and(labelled_mip))
        .collect();
    addrs.sort_by_key(|a| (rank.get(a).copied().unwrap_or(0), *a));
    let changes: Vec<Change> = addrs
        .into_iter()
        .map(|a| {
            let live_fp = live.get(a).map(|l| mip_plan::diff::live_fingerprint(l, is_secret(a)));
            let base = mip_plan::deletion(a, "destroy", snapshot.managed[a].fingerprint.clone(), live_fp);
            match loaded.desired.objects.get(a) {
                Some(o) => Change { step: o.step, purpose: o.reason.clone(), ..base },
                None => base,
            }
        })
        .collect();
    let summary = mip_plan::Summary { delete: changes.len(), ..Default::default() };
    let input = PlanInput {
        inventory: &loaded.path,
        inventory_digest: loaded.digest.clone(),
        mode: Mode::Live,
        mip_version: env!("CARGO_PKG_VERSION"),
    };
    mip_plan::assemble(
        &loaded.desired,
        &crate::ops::prior_from(snapshot),
        &input,
        changes,
        Vec::new(),
        summary,
    )
}

/// Rebuilds the state from the cluster: every mip-owned object of the inventory that exists and
/// whose fields are owned by field manager `mip` is recorded with the inventory's fingerprint.
/// Returns how many objects were recorded.
///
/// # Errors
/// Cluster and state errors.
pub async fn rebuild_state<C: Cluster, S: StateStore>(
    cluster: &C,
    store: &S,
    loaded: &Loaded,
) -> Result<usize, LiveError> {
    let addrs: BTreeSet<ObjectRef> = loaded.desired.mip_owned().map(|o| o.addr.clone()).collect();
    let live = read_live(cluster, &addrs).await?;
    let lineage = store.snapshot()?.lineage;
    let mut records = Vec::new();
    for o in loaded.desired.mip_owned() {
        let Some(l) = live.get(&o.addr) else { continue };
        if mip_plan::diff::owned_fields(l, mip_core::FIELD_MANAGER).is_none() {
            continue;
        }
        let uid = l.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
        let secret_hashes: BTreeMap<String, String> = o
            .sensitive
            .keys()
            .filter_map(|k| {
                live_value(l, k)
                    .map(|v| (k.clone(), canonical::salted_hash(&lineage, &format!("{}#{k}", o.addr), &v)))
            })
            .collect();
        records.push((
            o.addr.clone(),
            Some(ManagedEntry { fingerprint: mip_plan::fingerprint(o), uid, serial: 0, secret_hashes }),
        ));
    }
    let n = records.len();
    store.record_many(records)?;
    store.append_history(HistoryEntry {
        serial: store.snapshot()?.serial,
        operation: "state rebuild".into(),
        summary: format!("{n} recorded"),
        at_unix: now_unix(),
    })?;
    Ok(n)
}
