//! The apply scheduler: a plan's writes in dependency order, independent ones in parallel
//! (bounded), each finished change recorded in the state by group commit before what depends
//! on it starts; a failure stops only what depends on it; an interrupt stops new writes and
//! keeps what finished.
//!
//! A change that depends on an object Argo CD reconciles waits at its *gate* until that object is
//! ready ([`super::gates`]); the gates are polled (one LIST per kind) while writes go on.
//!
//! Phases of [`apply`]: [`prepare`] (freshness, secret values: everything that can fail before
//! the first write), [`Run::drive`] (the writes and their gates), [`record_adopted`] (unchanged
//! objects the state did not know), then [`settle`]: the wait until everything the plan expects
//! from Argo CD, and every root Application, is ready at the `--wait-for` level.

use super::gates::{Gates, NotReady, Watch, final_targets, gates_of};
use super::outcome::{ApplyOpts, ApplyOutcome, Failure};
use super::read::check_fresh;
use super::ready::WaitFor;
use super::secrets::{Pending, fill_secret, live_value, manifest_value, read_pending, value_hashes};
use super::wait::{request_refresh, write};
use crate::Error;
use crate::seams::{Event, Hook, Notice, SecretResolver, Skip};
use mip_core::cluster::{Cluster, ClusterError};
use mip_core::{Action, ObjectRef};
use mip_plan::{Change, Plan};
use mip_state::{DynStore, ManagedEntry, Record, Snapshot};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// How many finished changes force a group commit at once.
const MAX_BATCH: usize = 256;

/// One write to do: the change, its manifest with secret values filled in, and the hashes of
/// those values for the state.
struct Job<'p> {
    change: &'p Change,
    manifest: Option<Value>,
    hashes: BTreeMap<String, String>,
    /// Keys read from a cluster when the write starts (a registered cluster's token, once its
    /// token Secret is written and filled), hashed then.
    pending: Vec<Pending>,
}

/// Applies a plan: checks it is fresh, writes it in dependency order (see the module docs),
/// records what finished, then waits for the Argo-owned objects. `rotate` regenerates the
/// generated values of those Secrets.
///
/// # Errors
/// Staleness, state and secret-source errors before anything is written; a state write that
/// fails stops the run. Per-change errors are in the outcome.
pub async fn apply<C: Cluster + 'static>(
    cluster: Arc<C>,
    store: Arc<DynStore>,
    plan: &Plan,
    resolver: &dyn SecretResolver,
    rotate: &BTreeSet<ObjectRef>,
    opts: &ApplyOpts,
    hook: Arc<dyn Hook>,
) -> Result<ApplyOutcome, Error> {
    let snapshot = store.snapshot()?;
    let live = check_fresh(cluster.as_ref(), plan, &snapshot).await?;
    let rotated = rotations(plan, rotate);
    let jobs = prepare(plan, &rotated, rotate, &live, &snapshot, resolver)?;
    let deadline = tokio::time::Instant::now() + opts.wait_timeout;
    let watching = !opts.wait_timeout.is_zero();
    let changes: Vec<&Change> = jobs.iter().map(|j| j.change).collect();
    let mut gates = gates_of(plan, &changes, opts.wait_for);
    if !watching {
        let ungated: Vec<ObjectRef> = jobs
            .iter()
            .zip(&gates.per_change)
            .filter(|(_, g)| !g.is_empty())
            .map(|(j, _)| j.change.address.clone())
            .collect();
        if !ungated.is_empty() {
            hook.event(Event::Notice(Notice::NotWaiting(ungated)));
        }
        gates = Gates {
            targets: Vec::new(),
            parents: Vec::new(),
            gone: Vec::new(),
            per_change: vec![Vec::new(); jobs.len()],
        };
    }
    let mut run = Run::new(jobs, gates, opts.wait_for, &snapshot, Arc::clone(&store), Arc::clone(&hook));
    hook.event(Event::Writing(run.jobs.len()));
    run.drive(&cluster, opts, deadline).await?;
    let mut outcome = run.outcome;
    if let Some(serial) = record_adopted(cluster.as_ref(), store.as_ref(), plan, &snapshot, &live)? {
        outcome.serial = serial;
    }
    if watching && outcome.failed.is_empty() && outcome.skipped.is_empty() && !outcome.interrupted {
        outcome.pending = settle(cluster.as_ref(), plan, opts, deadline, hook.as_ref()).await?;
    }
    hook.event(Event::Finished);
    Ok(outcome)
}

/// The wait alone, for a plan with nothing to write: until everything the plan expects from
/// Argo CD, and every root Application, is ready at the `--wait-for` level; what is not.
///
/// # Errors
/// Cluster errors.
pub async fn wait_ready<C: Cluster>(
    cluster: &C,
    plan: &Plan,
    opts: &ApplyOpts,
    hook: &dyn Hook,
) -> Result<Vec<NotReady>, Error> {
    settle(cluster, plan, opts, tokio::time::Instant::now() + opts.wait_timeout, hook).await
}

/// The final wait: until every object the plan expects from Argo CD, and every root
/// Application, is ready at the `--wait-for` level, or the deadline passes (or an interrupt).
/// What is still not ready, with why.
async fn settle<C: Cluster>(
    cluster: &C,
    plan: &Plan,
    opts: &ApplyOpts,
    deadline: tokio::time::Instant,
    hook: &dyn Hook,
) -> Result<Vec<NotReady>, Error> {
    let targets = final_targets(plan);
    let removed: BTreeSet<&ObjectRef> =
        plan.expected.iter().filter(|e| e.action == Action::Delete).map(|e| &e.address).collect();
    let gone = targets.iter().map(|t| removed.contains(t)).collect();
    let models = targets
        .iter()
        .map(|t| plan.expected.iter().find(|e| &e.address == t).and_then(|e| e.model.as_ref()))
        .map(|m| m.map(mip_plan::ExpectedModel::shared_value))
        .collect();
    let mut watch = Watch::new(targets, gone, opts.wait_for).with_models(models);
    let mut waiting: Vec<usize> = (0..watch.len()).collect();
    let mut nudge = Nudge::new(plan, opts.refresh);
    loop {
        let opened = watch.poll(cluster, &waiting, hook).await?;
        waiting.retain(|i| !opened.contains(i));
        hook.event(Event::Waiting(waiting.len()));
        nudge.round(cluster, &watch, &waiting).await;
        if waiting.is_empty() || tokio::time::Instant::now() >= deadline || opts.interrupt.is_triggered() {
            return Ok(watch.not_ready(waiting));
        }
        tokio::select! {
            () = tokio::time::sleep(opts.poll.min(deadline - tokio::time::Instant::now())) => {}
            () = opts.interrupt.triggered() => {}
        }
    }
}

/// Asks Argo CD to reconcile now what the wait depends on, instead of at its resync (3 min by
/// default): first every root Application and ApplicationSet (Git may have changed under an
/// unchanged root, e.g. a federation added to the tree); then, while the wait lasts and at most
/// every [`NUDGE_EVERY`] per object, each awaited Application not ready yet and the generator of
/// each object still missing or not as the plan models it (an Application whose pin changed in
/// Git is re-rendered by its parent, which a refresh of the child alone does not do). Asking again matters: a root's sync changes an
/// ApplicationSet's spec after the first ask, and a new ApplicationSet or Application renders
/// through a revision the repo-server may have cached from before the commit.
struct Nudge {
    enabled: bool,
    first: bool,
    generators: BTreeMap<ObjectRef, ObjectRef>,
    asked: BTreeMap<ObjectRef, tokio::time::Instant>,
}

/// How often one object is asked again while the wait lasts.
const NUDGE_EVERY: Duration = Duration::from_secs(5);

impl Nudge {
    fn new(plan: &Plan, enabled: bool) -> Nudge {
        let generators = plan
            .expected
            .iter()
            .filter_map(|e| e.generated_by.as_deref().map(|g| (e.address.clone(), g.clone())))
            .collect();
        Nudge { enabled, first: true, generators, asked: BTreeMap::new() }
    }

    async fn round<C: Cluster>(&mut self, cluster: &C, watch: &Watch, waiting: &[usize]) {
        if !self.enabled || waiting.is_empty() {
            return;
        }
        let mut ask: BTreeSet<ObjectRef> = BTreeSet::new();
        if std::mem::take(&mut self.first) {
            ask.extend((0..watch.len()).map(|i| watch.address(i).clone()));
        }
        for &i in waiting {
            let addr = watch.address(i);
            if watch.exists(i) {
                ask.insert(addr.clone());
            }
            // Missing, or there but not what the plan models (a pin changed in Git): what
            // renders it must read Git again, not only the object itself. (One merely not
            // Healthy yet leaves its generator alone: a re-render would not help it.)
            if (!watch.exists(i) || watch.outdated(i))
                && let Some(g) = self.generators.get(addr)
            {
                ask.insert(g.clone());
            }
        }
        let now = tokio::time::Instant::now();
        for addr in ask {
            if self.asked.get(&addr).is_some_and(|at| now < *at + NUDGE_EVERY) {
                continue;
            }
            if request_refresh(cluster, &addr, Action::Update).await {
                self.asked.insert(addr, now);
            }
        }
    }
}

/// `--rotate`: an unchanged Secret becomes an update with fresh generated values.
fn rotations(plan: &Plan, rotate: &BTreeSet<ObjectRef>) -> Vec<Change> {
    plan.changes
        .iter()
        .filter(|c| c.action == Action::NoOp && rotate.contains(&c.address))
        .map(|c| Change { action: Action::Update, reason: "rotate generated values".into(), ..c.clone() })
        .collect()
}

/// Everything that can fail before the first write: every secret value is resolved (a missing
/// source fails the run before anything changed).
fn prepare<'p>(
    plan: &'p Plan,
    rotated: &'p [Change],
    rotate: &BTreeSet<ObjectRef>,
    live: &BTreeMap<ObjectRef, Value>,
    snapshot: &Snapshot,
    resolver: &dyn SecretResolver,
) -> Result<Vec<Job<'p>>, Error> {
    let changes = plan
        .changes
        .iter()
        .filter(|c| !(c.action == Action::NoOp && rotate.contains(&c.address)))
        .chain(rotated)
        .filter(|c| c.action.is_write());
    let mut jobs = Vec::new();
    for change in changes {
        let (manifest, hashes, pending) = match change.action {
            Action::Create | Action::Update if !change.sensitive.is_empty() => {
                let (m, pending) = fill_secret(change, live, resolver, rotate.contains(&change.address))?;
                let keys =
                    change.sensitive.iter().map(|k| &k.key).filter(|k| !pending.iter().any(|p| &p.0 == *k));
                let hashes =
                    value_hashes(&snapshot.lineage, &change.address, keys, |k| manifest_value(&m, k));
                (Some(m), hashes, pending)
            }
            Action::Create | Action::Update => {
                (change.manifest.as_deref().cloned(), BTreeMap::new(), Vec::new())
            }
            _ => (None, BTreeMap::new(), Vec::new()),
        };
        jobs.push(Job { change, manifest, hashes, pending });
    }
    Ok(jobs)
}

/// What one write returned: the object's metadata (`None` after a delete) or the error.
/// The hashes of the values read when the write started are returned with it.
type Written = (usize, Result<Option<Value>, ClusterError>, BTreeMap<String, String>);

/// The state of a run: which jobs wait for how many dependencies, which are ready, and the
/// finished changes waiting for their group commit.
struct Run<'p> {
    jobs: Vec<Job<'p>>,
    /// For each job, the jobs that depend on it.
    dependents: Vec<Vec<usize>>,
    /// For each job, how many of its dependencies are not recorded (or gates not open) yet.
    waiting_on: Vec<usize>,
    /// The gates, and for each gate the jobs that wait for it.
    watch: Watch,
    gate_dependents: Vec<Vec<usize>>,
    /// For each gate, the change of this run whose failure means it can never open.
    gate_parents: Vec<Option<ObjectRef>>,
    ready: VecDeque<usize>,
    /// Jobs started, failed or skipped (never started twice, never skipped after starting).
    settled: Vec<bool>,
    commit: GroupCommit,
    store: Arc<DynStore>,
    /// The state's lineage: the salt of the value hashes.
    lineage: String,
    hook: Arc<dyn Hook>,
    outcome: ApplyOutcome,
}

impl<'p> Run<'p> {
    fn new(
        jobs: Vec<Job<'p>>,
        gates: Gates,
        level: WaitFor,
        snapshot: &Snapshot,
        store: Arc<DynStore>,
        hook: Arc<dyn Hook>,
    ) -> Run<'p> {
        let index: BTreeMap<&ObjectRef, usize> =
            jobs.iter().enumerate().map(|(i, j)| (&j.change.address, i)).collect();
        let mut dependents = vec![Vec::new(); jobs.len()];
        let Gates { targets, parents, gone, per_change } = gates;
        let watch = Watch::new(targets, gone, level);
        let mut gate_dependents = vec![Vec::new(); watch.len()];
        let mut waiting_on = vec![0; jobs.len()];
        for (i, job) in jobs.iter().enumerate() {
            // Dependencies written by this run order it; the others exist already, or are gates.
            let deps: BTreeSet<usize> =
                job.change.depends_on.iter().filter_map(|d| index.get(&d.address).copied()).collect();
            waiting_on[i] = deps.len() + per_change[i].len();
            for d in deps {
                dependents[d].push(i);
            }
            for &g in &per_change[i] {
                gate_dependents[g].push(i);
            }
        }
        let ready = (0..jobs.len()).filter(|&i| waiting_on[i] == 0).collect();
        let settled = vec![false; jobs.len()];
        let outcome = ApplyOutcome { serial: snapshot.serial, ..ApplyOutcome::default() };
        Run {
            jobs,
            dependents,
            waiting_on,
            watch,
            gate_dependents,
            gate_parents: parents,
            ready,
            settled,
            commit: GroupCommit::default(),
            store,
            lineage: snapshot.lineage.clone(),
            hook,
            outcome,
        }
    }

    /// The gates that still hold back a job that has not been started or skipped.
    fn blocking_gates(&self) -> Vec<usize> {
        (0..self.watch.len())
            .filter(|&g| !self.watch.is_ready(g) && self.gate_dependents[g].iter().any(|&j| !self.settled[j]))
            .collect()
    }

    /// Reads the blocking gates; releases what waited for those that opened.
    async fn poll_gates<C: Cluster>(&mut self, cluster: &C, blocking: &[usize]) -> Result<(), Error> {
        for g in self.watch.poll(cluster, blocking, self.hook.as_ref()).await? {
            for j in self.gate_dependents[g].clone() {
                self.release(j);
            }
        }
        Ok(())
    }

    /// One of job `j`'s dependencies is done (or a gate opened).
    fn release(&mut self, j: usize) {
        self.waiting_on[j] -= 1;
        if self.waiting_on[j] == 0 && !self.settled[j] {
            self.ready.push_back(j);
        }
    }

    /// The deadline passed: what waits at a closed gate is skipped, the gate reported.
    fn give_up(&mut self, blocking: &[usize]) {
        self.outcome.pending.extend(self.watch.not_ready(blocking.iter().copied()));
        for &g in blocking {
            let gate = self.watch.address(g).clone();
            for j in self.gate_dependents[g].clone() {
                if !self.settled[j] {
                    self.skip(j, Skip::GateNotReady(gate.clone()));
                    self.skip_dependents(j);
                }
            }
        }
    }

    /// Starts what is ready (within the parallelism bound), takes in what finished, commits
    /// in groups, until nothing is left to start or in flight.
    async fn drive<C: Cluster + 'static>(
        &mut self,
        cluster: &Arc<C>,
        opts: &ApplyOpts,
        deadline: tokio::time::Instant,
    ) -> Result<(), Error> {
        let window = self.store.group_commit_window();
        let mut tasks: JoinSet<Written> = JoinSet::new();
        let mut next_poll = tokio::time::Instant::now();
        loop {
            if opts.interrupt.is_triggered() {
                self.outcome.interrupted = true;
            }
            while !self.outcome.interrupted && tasks.len() < opts.parallelism.max(1) {
                let Some(i) = self.ready.pop_front() else { break };
                self.start(i, cluster, opts, &mut tasks);
            }
            let blocking = if self.outcome.interrupted { Vec::new() } else { self.blocking_gates() };
            let now = tokio::time::Instant::now();
            if tasks.is_empty() {
                // Nothing in flight: waiting longer cannot enlarge the batch.
                if !self.commit.is_empty() {
                    self.flush().await?;
                    continue;
                }
                if blocking.is_empty() {
                    break;
                }
                if now >= deadline {
                    self.give_up(&blocking);
                    break;
                }
            }
            let commit_at = self.commit.deadline(window);
            // Past the deadline the gates are not read again (that would spin while writes are
            // in flight); they are given up once the writes in flight are done.
            let poll_at = (!blocking.is_empty() && now < deadline).then_some(next_poll.min(deadline));
            tokio::select! {
                joined = tasks.join_next(), if !tasks.is_empty() => {
                    if let Some(Ok(written)) = joined {
                        self.finished(cluster.as_ref(), written);
                    }
                }
                () = sleep_until(commit_at) => self.flush().await?,
                () = sleep_until(poll_at) => {
                    self.poll_gates(cluster.as_ref(), &blocking).await?;
                    next_poll = tokio::time::Instant::now() + opts.poll;
                }
                () = opts.interrupt.triggered(), if !self.outcome.interrupted => {
                    self.outcome.interrupted = true;
                }
            }
            if self.commit.len() >= MAX_BATCH {
                self.flush().await?;
            }
        }
        self.flush().await?;
        let why = if self.outcome.interrupted { Skip::Interrupted } else { Skip::Unreachable };
        for i in 0..self.jobs.len() {
            if !self.settled[i] {
                self.skip(i, why.clone());
            }
        }
        Ok(())
    }

    fn start<C: Cluster + 'static>(
        &mut self,
        i: usize,
        cluster: &Arc<C>,
        opts: &ApplyOpts,
        tasks: &mut JoinSet<Written>,
    ) {
        self.settled[i] = true;
        let job = &self.jobs[i];
        let (addr, action, force) = (job.change.address.clone(), job.change.action, job.change.force);
        let mut manifest = job.manifest.clone().unwrap_or(Value::Null);
        let pending = job.pending.clone();
        let lineage = self.lineage.clone();
        self.hook.event(Event::Start(addr.clone(), action));
        let cluster = Arc::clone(cluster);
        let bound = super::wait::Bound::new(opts.deletion_timeout, opts.deadline, opts.interrupt.clone());
        let refresh = opts.refresh;
        tasks.spawn(async move {
            let mut hashes = BTreeMap::new();
            if !pending.is_empty() {
                if let Err(e) = read_pending(cluster.as_ref(), &pending, &mut manifest).await {
                    return (i, Err(e), hashes);
                }
                let keys: Vec<&String> = pending.iter().map(|p| &p.0).collect();
                hashes = value_hashes(&lineage, &addr, keys, |k| manifest_value(&manifest, k));
            }
            let result = write(cluster.as_ref(), &addr, action, &manifest, force, &bound).await;
            if refresh && result.is_ok() && addr.is(mip_core::Kind::Application) {
                request_refresh(cluster.as_ref(), &addr, action).await;
            }
            (i, result, hashes)
        });
    }

    fn finished<C: Cluster>(&mut self, cluster: &C, (i, result, read): Written) {
        let job = &self.jobs[i];
        let addr = job.change.address.clone();
        match result {
            Ok(obj) => {
                let entry = obj.map(|o| ManagedEntry {
                    fingerprint: job.change.fingerprint.clone(),
                    uid: o.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned),
                    serial: 0,
                    secret_hashes: job
                        .hashes
                        .iter()
                        .chain(&read)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    via: super::clusters::via_of(cluster, &addr),
                });
                self.commit.push(i, (addr, entry));
            }
            Err(error) => {
                self.hook.event(Event::Failed(addr.clone(), error.to_string()));
                self.outcome.failed.push(Failure { address: addr.clone(), error });
                self.skip_dependents(i);
                // What Argo CD would have generated from it will not come.
                for g in 0..self.gate_parents.len() {
                    if self.gate_parents[g].as_ref() == Some(&addr) {
                        for j in self.gate_dependents[g].clone() {
                            if !self.settled[j] {
                                self.skip(j, Skip::DependencyFailed(addr.clone()));
                                self.skip_dependents(j);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Skips everything that depends on job `i` (which failed or was skipped), transitively.
    fn skip_dependents(&mut self, i: usize) {
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            let because = self.jobs[j].change.address.clone();
            for d in self.dependents[j].clone() {
                if !self.settled[d] {
                    self.skip(d, Skip::DependencyFailed(because.clone()));
                    stack.push(d);
                }
            }
        }
    }

    fn skip(&mut self, i: usize, why: Skip) {
        self.settled[i] = true;
        let addr = self.jobs[i].change.address.clone();
        self.hook.event(Event::Skipped(addr.clone(), why.clone()));
        self.outcome.skipped.push((addr, why));
    }

    /// Records the finished changes in one write (on a blocking thread, so the requests in
    /// flight go on), then reports each done and releases what depended on it.
    async fn flush(&mut self) -> Result<(), Error> {
        let (done, batch) = self.commit.take();
        if batch.is_empty() {
            return Ok(());
        }
        let writer = Arc::clone(&self.store);
        self.outcome.serial = match tokio::task::spawn_blocking(move || writer.record_many(batch)).await {
            Ok(serial) => serial?,
            Err(e) => {
                return Err(Error::State(mip_state::Error::Internal {
                    reason: format!("the state writer stopped: {e}"),
                }));
            }
        };
        for i in done {
            let change = self.jobs[i].change;
            self.hook.event(Event::Done(change.address.clone(), change.action));
            self.outcome.applied.push(change.address.clone());
            for d in self.dependents[i].clone() {
                self.release(d);
            }
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Finished changes waiting for their group commit, and since when the first of them waits.
#[derive(Default)]
struct GroupCommit {
    jobs: Vec<usize>,
    records: Vec<Record>,
    since: Option<tokio::time::Instant>,
}

impl GroupCommit {
    fn push(&mut self, job: usize, record: Record) {
        self.jobs.push(job);
        self.records.push(record);
        self.since.get_or_insert_with(tokio::time::Instant::now);
    }

    fn len(&self) -> usize {
        self.jobs.len()
    }

    fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// When the batch must be written: the window after its first change finished.
    fn deadline(&self, window: Duration) -> Option<tokio::time::Instant> {
        self.since.map(|first| first + window)
    }

    fn take(&mut self) -> (Vec<usize>, Vec<Record>) {
        self.since = None;
        (std::mem::take(&mut self.jobs), std::mem::take(&mut self.records))
    }
}

/// Unchanged objects that the state does not know yet (adopted earlier, or a lost state) are
/// recorded too, so that state can be rebuilt by a plain re-apply. The new serial, if any.
fn record_adopted<C: Cluster>(
    cluster: &C,
    store: &DynStore,
    plan: &Plan,
    snapshot: &Snapshot,
    live: &BTreeMap<ObjectRef, Value>,
) -> Result<Option<u64>, Error> {
    let adopted: Vec<Record> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::NoOp && !snapshot.managed.contains_key(&c.address))
        .filter_map(|c| {
            let l = live.get(&c.address)?;
            let uid = l.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
            let keys = c.sensitive.iter().map(|k| &k.key);
            let secret_hashes = value_hashes(&snapshot.lineage, &c.address, keys, |k| live_value(l, k));
            Some((
                c.address.clone(),
                Some(ManagedEntry {
                    fingerprint: c.fingerprint.clone(),
                    uid,
                    serial: 0,
                    secret_hashes,
                    via: super::clusters::via_of(cluster, &c.address),
                }),
            ))
        })
        .collect();
    if adopted.is_empty() {
        return Ok(None);
    }
    Ok(Some(store.record_many(adopted)?))
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
