//! The scheduler on the fake cluster: order, parallelism bound, failures that skip only their
//! dependents, group commit, interrupts; and a whole example applied and planned again.
//!
//! Tests where a latency, a delay or a deadline matters run on paused tokio time
//! (`start_paused`): time moves only when every task waits, so "a 50 ms write is still in
//! flight at 10 ms" holds however loaded the machine is. Orders are read from the fake's
//! sequence numbers, never from the clock.

use super::*;
use crate::fake::FakeCluster;
use crate::seams::{NoHook, SourceError};
use mip_core::{Sensitive, SensitiveSource};
use mip_plan::Dependency;
use mip_state::{HistoryEntry, MemoryStore, StateStore};
use serde_json::json;
use std::sync::Mutex;

struct NoSecrets;
impl SecretResolver for NoSecrets {
    fn resolve(&self, _: &SensitiveSource) -> Result<Sensitive, SourceError> {
        Err(SourceError::Generated)
    }
}

/// A memory store that remembers the size of every group commit.
struct Counting {
    inner: MemoryStore,
    batches: Mutex<Vec<usize>>,
}

impl Counting {
    fn new() -> Arc<Counting> {
        Arc::new(Counting { inner: MemoryStore::with_lineage("test"), batches: Mutex::default() })
    }
    fn batches(&self) -> Vec<usize> {
        self.batches.lock().expect("not poisoned").clone()
    }
}

impl StateStore for Counting {
    fn snapshot(&self) -> Result<Snapshot, mip_state::Error> {
        self.inner.snapshot()
    }
    fn record_many(&self, records: Vec<Record>) -> Result<u64, mip_state::Error> {
        self.batches.lock().expect("not poisoned").push(records.len());
        self.inner.record_many(records)
    }
    fn import(&self, s: &Snapshot, h: &[HistoryEntry]) -> Result<(), mip_state::Error> {
        self.inner.import(s, h)
    }
    fn group_commit_window(&self) -> Duration {
        Duration::from_millis(25)
    }
    fn append_history(&self, entry: HistoryEntry) -> Result<(), mip_state::Error> {
        self.inner.append_history(entry)
    }
    fn history(&self) -> Result<Vec<HistoryEntry>, mip_state::Error> {
        self.inner.history()
    }
}

fn addr(name: &str) -> ObjectRef {
    ObjectRef::new("v1", "ConfigMap", Some("ns"), name)
}

fn create(name: &str, deps: &[&str]) -> Change {
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}, "data": {"k": name}});
    Change {
        address: addr(name),
        action: Action::Create,
        step: mip_graph::Step::Bootstrap,
        reason: "not in the cluster".into(),
        purpose: "test".into(),
        depends_on: deps.iter().map(|d| Dependency { address: addr(d), rule: "test".into() }).collect(),
        sensitive: std::sync::Arc::default(),
        fingerprint: format!("sha256:{name}"),
        manifest: Some(Arc::new(manifest)),
        diff: None,
        live_fingerprint: None,
        force: false,
    }
}

fn minimal() -> crate::load::Loaded {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/minimal/mip.yaml");
    crate::load::load(&crate::load::LoadOptions { inventory: path.into(), revision: None })
        .expect("valid example")
}

/// A plan of these changes (expecting nothing from Argo CD), for a fresh store.
fn plan_of(changes: Vec<Change>) -> Plan {
    let mut plan = crate::load::plan_offline(&minimal());
    plan.changes = changes;
    plan.expected.clear();
    plan
}

fn opts(parallelism: usize) -> ApplyOpts {
    ApplyOpts { parallelism, wait_timeout: Duration::ZERO, ..ApplyOpts::default() }
}

async fn run(cluster: &Arc<FakeCluster>, store: &Arc<Counting>, plan: &Plan, o: &ApplyOpts) -> ApplyOutcome {
    let store: Arc<DynStore> = Arc::clone(store) as Arc<DynStore>;
    apply(Arc::clone(cluster), store, plan, &NoSecrets, &BTreeSet::new(), o, Arc::new(NoHook))
        .await
        .expect("the run itself succeeds")
}

#[tokio::test]
async fn each_write_starts_after_its_dependencies_are_recorded() {
    let cluster = Arc::new(FakeCluster::new().with_latency(Duration::from_millis(5)));
    let store = Counting::new();
    let plan = plan_of(vec![create("c", &["b"]), create("b", &["a"]), create("a", &[]), create("d", &["a"])]);
    let o = run(&cluster, &store, &plan, &opts(8)).await;
    assert!(o.complete(), "{o:?}");
    let log = cluster.write_log();
    let at = |n: &str| log.iter().find(|w| w.addr == addr(n)).expect("written").clone();
    assert!(at("a").ended < at("b").started && at("b").ended < at("c").started);
    assert!(at("a").ended < at("d").started);
    assert_eq!(store.snapshot().expect("state").managed.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn parallel_writes_stay_within_the_bound() {
    let cluster = Arc::new(FakeCluster::new().with_latency(Duration::from_millis(20)));
    let store = Counting::new();
    let names: Vec<String> = (0..12).map(|i| format!("cm-{i:02}")).collect();
    let plan = plan_of(names.iter().map(|n| create(n, &[])).collect());
    let o = run(&cluster, &store, &plan, &opts(3)).await;
    assert_eq!(o.applied.len(), 12);
    assert_eq!(cluster.max_in_flight(), 3, "independent writes run in parallel, at most 3");
}

#[tokio::test]
async fn a_failure_skips_only_what_depends_on_it() {
    let cluster = Arc::new(FakeCluster::new());
    cluster.fail_on(&addr("a"), ClusterError::Invalid { addr: addr("a"), message: "rejected".into() });
    let store = Counting::new();
    let plan = plan_of(vec![create("a", &[]), create("b", &["a"]), create("c", &["b"]), create("x", &[])]);
    let o = run(&cluster, &store, &plan, &opts(4)).await;
    assert_eq!(o.applied, vec![addr("x")]);
    assert_eq!(o.failed.iter().map(|f| f.address.clone()).collect::<Vec<_>>(), vec![addr("a")]);
    assert_eq!(
        o.skipped,
        vec![(addr("b"), Skip::DependencyFailed(addr("a"))), (addr("c"), Skip::DependencyFailed(addr("b")))]
    );
    assert!(cluster.object(&addr("b")).is_none() && cluster.object(&addr("x")).is_some());
    let state = store.snapshot().expect("state");
    assert_eq!(state.managed.keys().cloned().collect::<Vec<_>>(), vec![addr("x")]);
}

#[tokio::test(start_paused = true)]
async fn finished_changes_are_committed_in_groups() {
    let cluster = Arc::new(FakeCluster::new().with_latency(Duration::from_millis(2)));
    let store = Counting::new();
    let names: Vec<String> = (0..40).map(|i| format!("cm-{i:02}")).collect();
    let plan = plan_of(names.iter().map(|n| create(n, &[])).collect());
    let o = run(&cluster, &store, &plan, &opts(40)).await;
    assert_eq!(o.applied.len(), 40);
    let batches = store.batches();
    assert_eq!(batches.iter().sum::<usize>(), 40);
    assert!(batches.len() < 10, "40 parallel changes need few commits, not one each: {batches:?}");
    assert_eq!(o.serial, 40);
}

/// Triggers the interrupt when the first write starts (as a signal arriving then would), and
/// keeps every event.
struct InterruptAtFirstStart {
    interrupt: crate::live::Interrupt,
    events: Mutex<Vec<Event>>,
}

impl crate::seams::Hook for InterruptAtFirstStart {
    fn event(&self, e: Event) {
        if matches!(e, Event::Start(..)) {
            self.interrupt.trigger();
        }
        self.events.lock().expect("lock").push(e);
    }
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_lets_writes_in_flight_finish_and_starts_nothing_new() {
    // The interrupt lands while `a`'s write is in flight (it takes 50 ms of paused time), by
    // construction rather than by racing a timer against it.
    let cluster = Arc::new(FakeCluster::new().with_latency(Duration::from_millis(50)));
    let store = Counting::new();
    let plan = plan_of(vec![create("a", &[]), create("b", &["a"]), create("c", &["b"])]);
    let o = opts(1);
    let hook = Arc::new(InterruptAtFirstStart { interrupt: o.interrupt.clone(), events: Mutex::default() });
    let store_dyn: Arc<DynStore> = Arc::clone(&store) as Arc<DynStore>;
    let outcome = apply(
        Arc::clone(&cluster),
        store_dyn,
        &plan,
        &NoSecrets,
        &BTreeSet::new(),
        &o,
        Arc::clone(&hook) as Arc<dyn crate::seams::Hook>,
    )
    .await
    .expect("ran");
    assert!(outcome.interrupted && !outcome.complete());
    assert_eq!(outcome.applied, vec![addr("a")], "the write in flight finished and was recorded");
    assert_eq!(outcome.skipped, vec![(addr("b"), Skip::Interrupted), (addr("c"), Skip::Interrupted)]);
    assert_eq!(cluster.write_log().len(), 1);
    assert_eq!(store.snapshot().expect("state").managed.len(), 1);
    assert_eq!(store.batches(), vec![1], "recorded once");
    let starts = hook.events.lock().expect("lock").iter().filter(|e| matches!(e, Event::Start(..))).count();
    assert_eq!(starts, 1, "a write started after the interrupt");
}

#[tokio::test]
async fn a_stale_plan_writes_nothing() {
    let cluster = Arc::new(FakeCluster::new());
    let store = Counting::new();
    store.record(&addr("other"), Some(ManagedEntry::default())).expect("recorded");
    let plan = plan_of(vec![create("a", &[])]);
    let store_dyn: Arc<DynStore> = Arc::clone(&store) as Arc<DynStore>;
    let e = apply(
        Arc::clone(&cluster),
        store_dyn,
        &plan,
        &NoSecrets,
        &BTreeSet::new(),
        &opts(1),
        Arc::new(NoHook),
    )
    .await
    .expect_err("stale");
    assert!(matches!(e, Error::Stale { .. }), "{e}");
    assert!(cluster.write_log().is_empty());
}

#[tokio::test]
async fn the_minimal_example_applies_in_order_and_then_plans_empty() {
    let loaded = minimal();
    let cluster = Arc::new(FakeCluster::new().with_latency(Duration::from_millis(1)));
    let store = Counting::new();
    let plan = crate::live::plan_live(cluster.as_ref(), &loaded, None).await.expect("planned");
    assert!(plan.summary.create > 0);
    let o = opts(8);
    let outcome = run(&cluster, &store, &plan, &o).await;
    assert!(outcome.failed.is_empty() && outcome.skipped.is_empty(), "{outcome:?}");
    let log = cluster.write_log();
    let ended_at = |a: &ObjectRef| log.iter().find(|w| &w.addr == a).map(|w| w.ended);
    for c in &plan.changes {
        let started = log.iter().find(|w| w.addr == c.address).expect("written").started;
        for d in &c.depends_on {
            if let Some(end) = ended_at(&d.address) {
                assert!(end < started, "{} started before its dependency {} ended", c.address, d.address);
            }
        }
    }
    let snapshot = store.snapshot().expect("state");
    let again = crate::live::plan_live(cluster.as_ref(), &loaded, Some(&snapshot)).await.expect("planned");
    assert!(!again.summary.has_changes(), "{:?}", again.summary);
}

// --- Gates: changes that wait for what Argo CD generates -----------------------------------

fn project(name: &str) -> ObjectRef {
    ObjectRef::new("argoproj.io/v1alpha1", "AppProject", Some("argocd"), name)
}

fn root(name: &str) -> ObjectRef {
    ObjectRef::new("argoproj.io/v1alpha1", "Application", Some("argocd"), name)
}

fn root_change(name: &str) -> Change {
    let manifest = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "boot", "source": {"repoURL": "r", "targetRevision": "main"}}});
    Change { address: root(name), manifest: Some(Arc::new(manifest)), ..create(name, &[]) }
}

/// A plan: the root `projects` generates AppProject `fed`; ConfigMap `infra` waits for `fed`;
/// ConfigMap `free` waits for nothing.
fn gated_plan() -> Plan {
    let mut infra = create("infra", &[]);
    infra.depends_on.push(Dependency { address: project("fed"), rule: "projects-before-infra".into() });
    let mut plan = plan_of(vec![root_change("projects"), infra, create("free", &[])]);
    // Built from JSON: only the fields a live plan sets.
    let expectation = json!({"address": project("fed"), "action": "await", "step": "await-projects",
        "reason": "generated", "generated_by": root("projects")});
    plan.expected.push(serde_json::from_value(expectation).expect("an expectation"));
    plan
}

fn waiting(level: crate::live::WaitFor, timeout_ms: u64) -> ApplyOpts {
    ApplyOpts {
        parallelism: 4,
        wait_timeout: Duration::from_millis(timeout_ms),
        wait_for: level,
        poll: Duration::from_millis(10),
        ..ApplyOpts::default()
    }
}

/// Plays Argo CD: once the root exists, generates the project after `delay`, and reports the
/// root Synced and Healthy.
async fn play_argo(cluster: Arc<FakeCluster>, delay: Duration) {
    while cluster.object(&root("projects")).is_none() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(delay).await;
    cluster.apply_as(
        "argocd-controller",
        &project("fed"),
        &json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "spec": {}}),
    );
    let status = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "status": {
        "sync": {"status": "Synced", "comparedTo": {"source": {"targetRevision": "main"}}},
        "health": {"status": "Healthy"}}});
    cluster.apply_as("argocd-application-controller", &root("projects"), &status);
}

#[tokio::test(start_paused = true)]
async fn a_gated_change_waits_until_argo_cd_generated_what_it_needs() {
    let cluster = Arc::new(FakeCluster::new());
    let store = Counting::new();
    let plan = gated_plan();
    let argo = tokio::spawn(play_argo(Arc::clone(&cluster), Duration::from_millis(60)));
    let o = run(&cluster, &store, &plan, &waiting(crate::live::WaitFor::Healthy, 5_000)).await;
    argo.await.expect("argo");
    assert!(o.complete(), "{o:?}");
    let log = cluster.write_log();
    let at = |a: &ObjectRef, verb: &str| {
        log.iter().find(|w| &w.addr == a && w.verb == verb).expect("logged").clone()
    };
    let generated = at(&project("fed"), "as another manager");
    assert!(
        generated.ended < at(&addr("infra"), "apply").started,
        "infra written before its gate opened: {log:?}"
    );
    assert!(at(&addr("free"), "apply").ended < generated.started, "an ungated change waited: {log:?}");
    // The root was asked to refresh, under a manager of its own.
    let live_root = cluster.object(&root("projects")).expect("root");
    assert_eq!(live_root["metadata"]["annotations"]["argocd.argoproj.io/refresh"], "hard");
    assert!(
        mip_plan::diff::owned_fields(&live_root, "mip").expect("owned")["metadata"]
            .get("annotations")
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn a_gate_that_never_opens_skips_its_dependents_and_names_itself() {
    let cluster = Arc::new(FakeCluster::new());
    let store = Counting::new();
    let o = run(&cluster, &store, &gated_plan(), &waiting(crate::live::WaitFor::Exists, 150)).await;
    assert_eq!(o.skipped, vec![(addr("infra"), Skip::GateNotReady(project("fed")))]);
    assert_eq!(
        o.pending.iter().map(|p| (&p.address, p.reason.as_str())).collect::<Vec<_>>(),
        vec![(&project("fed"), "not created yet")]
    );
    assert!(cluster.object(&addr("infra")).is_none(), "the gated change was written");
    assert!(cluster.object(&addr("free")).is_some() && cluster.object(&root("projects")).is_some());
    assert!(!o.complete());
}

#[tokio::test(start_paused = true)]
async fn with_wait_for_healthy_a_generated_object_also_waits_for_its_roots_health() {
    let cluster = Arc::new(FakeCluster::new());
    let store = Counting::new();
    // Argo CD generates the project but the root never becomes healthy.
    let c = Arc::clone(&cluster);
    let argo = tokio::spawn(async move {
        while c.object(&root("projects")).is_none() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        c.apply_as(
            "argocd-controller",
            &project("fed"),
            &json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "spec": {}}),
        );
        c.apply_as(
            "argocd-application-controller",
            &root("projects"),
            &json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "status": {
            "sync": {"status": "Synced", "comparedTo": {"source": {"targetRevision": "main"}}},
            "health": {"status": "Degraded", "message": "a hook failed"}}}),
        );
    });
    let o = run(&cluster, &store, &gated_plan(), &waiting(crate::live::WaitFor::Healthy, 200)).await;
    argo.await.expect("argo");
    assert_eq!(o.skipped, vec![(addr("infra"), Skip::GateNotReady(root("projects")))]);
    assert_eq!(o.pending[0].reason, "health Degraded: a hook failed");
    // At `exists`, the same cluster lets it through.
    let o =
        run(&cluster, &store, &gated_plan_after(&store), &waiting(crate::live::WaitFor::Exists, 200)).await;
    assert!(o.complete(), "{o:?}");
}

/// The gated plan, for a store that already recorded part of it (a second run).
fn gated_plan_after(store: &Counting) -> Plan {
    let mut plan = gated_plan();
    plan.state.lineage = Some(store.snapshot().expect("state").lineage);
    plan.state.serial = store.snapshot().expect("state").serial;
    plan.changes.retain(|c| c.address == addr("infra"));
    plan
}

#[tokio::test(start_paused = true)]
async fn when_a_gates_parent_fails_its_dependents_are_skipped_at_once() {
    let cluster = Arc::new(FakeCluster::new());
    cluster.fail_on(
        &root("projects"),
        ClusterError::Invalid { addr: root("projects"), message: "bad spec".into() },
    );
    let store = Counting::new();
    // Paused time: a run that waited for the gate would end exactly at its 10 s deadline.
    let started = tokio::time::Instant::now();
    let o = run(&cluster, &store, &gated_plan(), &waiting(crate::live::WaitFor::Healthy, 10_000)).await;
    assert!(started.elapsed() < Duration::from_secs(10), "waited for a gate that could never open");
    assert_eq!(o.skipped, vec![(addr("infra"), Skip::DependencyFailed(root("projects")))]);
    assert_eq!(o.applied, vec![addr("free")]);
}

#[tokio::test]
async fn with_no_wait_nothing_is_gated_and_the_caller_is_told() {
    struct Notices(Mutex<Vec<Notice>>);
    impl crate::seams::Hook for Notices {
        fn event(&self, e: Event) {
            if let Event::Notice(n) = e {
                self.0.lock().expect("lock").push(n);
            }
        }
    }
    let cluster = Arc::new(FakeCluster::new());
    let store: Arc<DynStore> = Counting::new();
    let hook = Arc::new(Notices(Mutex::default()));
    let o = apply(
        Arc::clone(&cluster),
        store,
        &gated_plan(),
        &NoSecrets,
        &BTreeSet::new(),
        &opts(4),
        Arc::clone(&hook) as Arc<dyn crate::seams::Hook>,
    )
    .await
    .expect("ran");
    assert!(o.complete() && o.applied.len() == 3, "{o:?}");
    assert_eq!(*hook.0.lock().expect("lock"), vec![Notice::NotWaiting(vec![addr("infra")])]);
}

#[tokio::test]
async fn past_the_deadline_gates_are_not_read_while_writes_are_in_flight() {
    // `free` takes 300 ms; the gate's deadline is 30 ms: the gate is read a few times before
    // the deadline, then not again until the write is done and the gate is given up.
    let cluster = Arc::new(FakeCluster::new().with_latency(Duration::from_millis(300)));
    let store = Counting::new();
    let mut plan = gated_plan();
    plan.changes.retain(|c| c.address != root("projects"));
    let o = run(&cluster, &store, &plan, &waiting(crate::live::WaitFor::Exists, 30)).await;
    assert_eq!(o.skipped, vec![(addr("infra"), Skip::GateNotReady(project("fed")))]);
    assert!(
        cluster.requests().reads < 15,
        "{} reads: the gate was polled in a loop",
        cluster.requests().reads
    );
}

/// A registered cluster: the cluster Secret's `config` is read from the token Secret when its
/// write starts (after the token Secret is written and its cluster filled it), never before,
/// and only its salted hash reaches the state.
#[tokio::test(start_paused = true)]
async fn a_registered_token_is_read_when_the_write_starts_and_only_hashed() {
    let cluster = Arc::new(FakeCluster::new().with_latency(Duration::from_millis(5)));
    let store = Counting::new();
    let token = ObjectRef::new("v1", "Secret", Some("kube-system"), "mip-argocd-manager-token");
    let target = ObjectRef::new("v1", "Secret", Some("argocd"), "mip-cluster-hospital");
    let token_change = Change {
        address: token.clone(),
        manifest: Some(Arc::new(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": token.name, "namespace": "kube-system",
                         "annotations": {"kubernetes.io/service-account.name": "mip-argocd-manager"}},
        }))),
        ..create("unused", &[])
    };
    let cluster_secret = Change {
        address: target.clone(),
        manifest: Some(Arc::new(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": target.name, "namespace": "argocd"},
            "stringData": {"name": "hospital", "server": "https://h:6443", "config": ""},
        }))),
        sensitive: vec![mip_plan::SensitiveKey {
            key: "config".into(),
            source: SensitiveSource::ServiceAccountToken { secret: token.clone() },
        }]
        .into(),
        depends_on: vec![Dependency { address: token.clone(), rule: "source-first".into() }],
        ..create("unused", &[])
    };
    // The cluster's token controller fills the Secret a moment after it is created.
    let controller = {
        let (cluster, token) = (Arc::clone(&cluster), token.clone());
        tokio::spawn(async move {
            while cluster.object(&token).is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let data = json!({"data": {"token": "Q0FOQVJZLXRva2Vu", "ca.crt": "UEVN"}});
            cluster.apply_as("kube-controller-manager", &token, &data);
        })
    };
    let plan = plan_of(vec![cluster_secret, token_change]);
    let o = run(&cluster, &store, &plan, &opts(4)).await;
    controller.await.expect("controller");
    assert!(o.complete(), "{o:?}");
    let written = cluster.object(&target).expect("written");
    let config = crate::live::secrets::live_value(&written, "config").expect("config");
    let config: serde_json::Value = serde_json::from_str(&config).expect("JSON");
    assert_eq!(config["bearerToken"], "CANARY-token");
    assert_eq!(config["tlsClientConfig"]["caData"], "UEVN");
    let snapshot = store.snapshot().expect("state");
    let entry = &snapshot.managed[&target];
    assert!(entry.secret_hashes.contains_key("config"), "{entry:?}");
    assert!(!format!("{snapshot:?}").contains("CANARY-token"));
}

/// A token the cluster never fills fails only the write that carries it, after the token
/// timeout, naming what it waited for; what does not depend on it is applied.
#[tokio::test(start_paused = true)]
async fn a_token_never_issued_fails_its_write_by_name() {
    let cluster = Arc::new(FakeCluster::new());
    let store = Counting::new();
    let token = ObjectRef::new("v1", "Secret", Some("kube-system"), "mip-argocd-manager-token");
    let target = ObjectRef::new("v1", "Secret", Some("argocd"), "mip-cluster-hospital");
    let cluster_secret = Change {
        address: target.clone(),
        manifest: Some(Arc::new(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": target.name, "namespace": "argocd"},
            "stringData": {"config": ""},
        }))),
        sensitive: vec![mip_plan::SensitiveKey {
            key: "config".into(),
            source: SensitiveSource::ServiceAccountToken { secret: token.clone() },
        }]
        .into(),
        ..create("unused", &[])
    };
    let plan = plan_of(vec![cluster_secret, create("other", &[])]);
    let o = run(&cluster, &store, &plan, &opts(4)).await;
    assert_eq!(o.applied, vec![addr("other")], "{o:?}");
    let [failure] = o.failed.as_slice() else { panic!("one failure: {o:?}") };
    assert_eq!(failure.address, target);
    let text = failure.error.to_string();
    assert!(text.contains("mip-argocd-manager-token") && text.contains("token controller"), "{text}");
    assert!(cluster.object(&target).is_none(), "nothing written without the token");
}

/// An Application Argo CD already runs, Synced and Healthy on the spec of before a commit,
/// whose plan models the new revision: the wait ends only once Argo CD holds what the plan
/// models, not at the first look (a pin changed in Git, the app upgraded by Argo CD later).
#[tokio::test(start_paused = true)]
async fn the_wait_ends_only_once_argo_cd_holds_the_planned_spec() {
    let cluster = Arc::new(FakeCluster::new());
    let store = Counting::new();
    let mut plan = plan_of(vec![create("free", &[])]);
    let app = root("federation-a-exareme2");
    let expectation = json!({"address": app, "action": "await", "step": "await-apps",
        "reason": "generated", "present": true,
        "model": {"spec": {"sources": [{"repoURL": "r", "targetRevision": "v2"}]}}});
    plan.expected.push(serde_json::from_value(expectation).expect("an expectation"));
    let state = |rev: &str| {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "spec": {"sources": [{"repoURL": "r", "targetRevision": rev}]},
            "status": {"sync": {"status": "Synced", "comparedTo": {"sources": [{"targetRevision": rev}]}},
                "health": {"status": "Healthy"}}})
    };
    cluster.apply_as("argocd-application-controller", &app, &state("v1"));
    let upgrade = {
        let cluster = Arc::clone(&cluster);
        let app = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            cluster.apply_as("argocd-application-controller", &app, &state("v2"));
        })
    };
    let o = run(&cluster, &store, &plan, &waiting(crate::live::WaitFor::Healthy, 5_000)).await;
    let live = cluster.object(&app).expect("app");
    assert_eq!(live["spec"]["sources"][0]["targetRevision"], "v2", "the wait ended on the old spec: {o:?}");
    upgrade.await.expect("upgrade");
    assert!(o.complete(), "{o:?}");
    // Never upgraded: the apply times out naming it, with why.
    let (cluster, store) = (Arc::new(FakeCluster::new()), Counting::new());
    cluster.apply_as("argocd-application-controller", &app, &state("v1"));
    let o = run(&cluster, &store, &plan, &waiting(crate::live::WaitFor::Healthy, 200)).await;
    assert!(!o.complete());
    assert!(
        o.pending.iter().any(|p| p.address == app && p.reason.contains("not yet as planned (/spec/sources)")),
        "{o:?}"
    );
}
