//! The operations on the fake connector and the in-memory state backend
//! ([`crate::fake::connector`]), with the minimal example: the lock, saved plans (stale, for
//! another lineage, tampered), the inventory's guard, confirmation, the history and the choice of
//! backend. Each asserts the typed error or outcome, what was written to the cluster (the fake's
//! write log) and what the state and its history hold afterwards.

use super::Env;
use super::apply::{Applied, ApplyRequest, apply};
use super::destroy::{DestroyRequest, Destroyed, NoSecrets, destroy};
use super::plan::{PlanRequest, plan};
use crate::backend::{BackendKind, Backends, StateFlags};
use crate::fake::FakeCluster;
use crate::fake::connector::{FakeConnector, MemoryBackend, SharedCluster};
use crate::live::{ApplyOpts, Interrupt};
use crate::load::LoadOptions;
use crate::seams::{Answer, AutoApprove, Confirm, NoHook, Operation};
use crate::{Class, Error};
use mip_core::ObjectRef;
use mip_core::cluster::ClusterError;
use mip_state::{Backend, LockInfo, ManagedEntry, Outcome, Snapshot, StateRead};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const MINIMAL: &str = include_str!("../../../../examples/minimal/mip.yaml");

/// The minimal example with `guard` added under `argocd:`.
fn guarded(guard: &str) -> String {
    let edited = MINIMAL.replacen("  namespace: argocd\n", &format!("  namespace: argocd\n  {guard}\n"), 1);
    assert_ne!(edited, MINIMAL, "the example changed: the guard was not added");
    edited
}

/// The minimal example with its state in the cluster (`state: backend: cluster`).
fn state_in_cluster() -> String {
    format!("{MINIMAL}state:\n  backend: cluster\n")
}

/// A person (or a terminal) answering every question with the same answer.
pub(super) struct Answering(pub(super) Answer);
impl Confirm for Answering {
    fn confirm(&self, _: &str) -> Answer {
        self.0
    }
}

/// An inventory on disk, a fake cluster reached through context `test`, and two empty states in
/// memory: the local one and the one in the cluster.
struct Fixture {
    dir: tempfile::TempDir,
    cluster: Arc<FakeCluster>,
    connector: FakeConnector,
    local: MemoryBackend,
    in_cluster: MemoryBackend,
    backends: Backends<SharedCluster>,
    flags: StateFlags,
}

impl Fixture {
    fn new(inventory: &str) -> Fixture {
        Fixture::through(inventory, "test")
    }

    /// With the cluster reached through kubeconfig context `context`.
    fn through(inventory: &str, context: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("mip.yaml"), inventory).expect("inventory written");
        let cluster = Arc::new(FakeCluster::new());
        let connector = FakeConnector::new(Arc::clone(&cluster)).with_context(context);
        let mut fixture = Fixture {
            flags: StateFlags { dir: dir.path().join("state"), ..crate::backend::tests::flags() },
            dir,
            cluster,
            connector,
            local: MemoryBackend::new("local"),
            in_cluster: MemoryBackend::new("in-cluster"),
            backends: Backends::default(),
        };
        fixture.use_states(MemoryBackend::new("local"), MemoryBackend::new("in-cluster"));
        fixture
    }

    /// Replaces both states.
    fn use_states(&mut self, local: MemoryBackend, in_cluster: MemoryBackend) {
        local.register_as(BackendKind::Local, &mut self.backends);
        in_cluster.register_as(BackendKind::Cluster, &mut self.backends);
        (self.local, self.in_cluster) = (local, in_cluster);
    }

    fn env(&self) -> Env<'_, FakeConnector> {
        Env::new(&self.connector, &self.backends, &self.flags, Arc::new(NoHook))
    }

    fn inventory(&self) -> PathBuf {
        self.dir.path().join("mip.yaml")
    }

    fn load(&self) -> LoadOptions {
        LoadOptions { inventory: self.inventory(), revision: None }
    }

    fn apply_request(&self, plan_file: Option<PathBuf>) -> ApplyRequest {
        ApplyRequest {
            load: self.load(),
            plan_file,
            rotate: Vec::new(),
            force_conflicts: false,
            targets: Vec::new(),
            allow_delete: Vec::new(),
            opts: ApplyOpts { wait_timeout: Duration::ZERO, ..ApplyOpts::default() },
        }
    }

    fn destroy_request(&self) -> DestroyRequest {
        DestroyRequest {
            load: self.load(),
            include_protected: false,
            wait_timeout: Duration::from_secs(5),
            interrupt: Interrupt::default(),
        }
    }

    async fn apply(&self, plan_file: Option<PathBuf>, confirm: &dyn Confirm) -> Result<Applied, Error> {
        apply(&self.env(), &self.apply_request(plan_file), &NoSecrets, confirm).await
    }

    /// `mip plan --out plan.mip`: the plan and where it was saved.
    async fn save_plan(&self) -> (mip_plan::Plan, PathBuf) {
        let out = self.dir.path().join("plan.mip");
        let req =
            PlanRequest { load: self.load(), offline: false, out: Some(out.clone()), targets: Vec::new() };
        let planned = plan(&self.env(), &req).await.expect("planned");
        (planned.plan, out)
    }
}

/// The state and its history (`None`: no state was ever created).
async fn state(backend: &MemoryBackend) -> StateRead {
    backend.read(true).await.expect("the memory backend reads")
}

/// Each history entry's operation and outcome.
async fn trail(backend: &MemoryBackend) -> Vec<(String, Option<Outcome>)> {
    let (_, history) = state(backend).await.expect("a state");
    history.into_iter().map(|e| (e.operation.to_string(), e.outcome)).collect()
}

fn ran(applied: Applied) -> crate::live::ApplyOutcome {
    match applied {
        Applied::Ran(outcome) => outcome,
        other => panic!("expected writes, got {other:?}"),
    }
}

#[tokio::test]
async fn an_apply_while_another_run_holds_the_lock_is_refused_naming_the_holder() {
    let f = Fixture::new(MINIMAL);
    let other = LockInfo {
        holder: "ana@ci-runner".into(),
        pid: 4242,
        operation: Operation::Apply,
        started_unix: 1_700_000_000,
        expires_unix: None,
    };
    let held = f.local.hold(other.clone()).expect("the lock is free");
    let e = f.apply(None, &AutoApprove).await.expect_err("the lock is held");
    assert!(matches!(&e, Error::State(mip_state::Error::LockHeld(holder)) if *holder == other), "{e}");
    assert_eq!(e.class(), Class::LockHeld);
    assert!(f.cluster.write_log().is_empty(), "{:?}", f.cluster.write_log());
    let fresh = Snapshot { lineage: "local".into(), serial: 0, managed: BTreeMap::new() };
    assert_eq!(state(&f.local).await, Some((fresh, Vec::new())));
    // Once the other run is done, the same apply goes through.
    drop(held);
    assert!(ran(f.apply(None, &AutoApprove).await.expect("applied")).complete());
}

#[tokio::test]
async fn a_saved_plan_is_refused_once_the_state_moved_on() {
    let f = Fixture::new(MINIMAL);
    let (planned, path) = f.save_plan().await;
    assert_eq!((planned.state.lineage.as_deref(), planned.state.serial), (None, 0));
    // Another run records an object in between.
    let other = f.local.open(Operation::Apply).expect("the lock is free");
    let addr: ObjectRef = "v1/ConfigMap/argocd/elsewhere".parse().expect("an address");
    other
        .record(&addr, Some(ManagedEntry { fingerprint: "sha256:00".into(), ..Default::default() }))
        .expect("recorded");
    drop(other);
    let before = state(&f.local).await;
    let e = f.apply(Some(path), &AutoApprove).await.expect_err("stale");
    assert!(matches!(e, Error::Stale { .. }), "{e}");
    assert_eq!(e.class(), Class::StalePlan);
    assert!(f.cluster.write_log().is_empty(), "{:?}", f.cluster.write_log());
    assert_eq!(state(&f.local).await, before);
}

#[tokio::test]
async fn a_saved_plan_for_another_state_lineage_is_refused() {
    let made_for = Snapshot { lineage: "made-for".into(), serial: 0, managed: BTreeMap::new() };
    let mut f = Fixture::new(MINIMAL);
    f.use_states(MemoryBackend::from_snapshot(made_for), MemoryBackend::new("in-cluster"));
    let (planned, path) = f.save_plan().await;
    assert_eq!(planned.state.lineage.as_deref(), Some("made-for"));
    let another = Snapshot { lineage: "another".into(), serial: 0, managed: BTreeMap::new() };
    f.use_states(MemoryBackend::from_snapshot(another.clone()), MemoryBackend::new("in-cluster"));
    let e = f.apply(Some(path), &AutoApprove).await.expect_err("another lineage");
    assert!(
        matches!(&e, Error::OtherState { plan, state } if plan == "made-for" && state == "another"),
        "{e}"
    );
    assert_eq!(e.class(), Class::StalePlan);
    assert!(f.cluster.write_log().is_empty(), "{:?}", f.cluster.write_log());
    assert_eq!(state(&f.local).await, Some((another, Vec::new())));
}

#[tokio::test]
async fn a_tampered_plan_is_refused_before_the_cluster_is_contacted() {
    let f = Fixture::new(MINIMAL);
    let (_, path) = f.save_plan().await;
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("a plan file is JSON");
    file["plan"]["changes"][0]["reason"] = "tampered".into();
    std::fs::write(&path, serde_json::to_vec(&file).expect("JSON")).expect("written");
    let connects = f.connector.connects();
    let e = f.apply(Some(path.clone()), &AutoApprove).await.expect_err("tampered");
    let shown = path.display().to_string();
    assert!(
        matches!(&e, Error::PlanFile(mip_plan::planfile::Error::Tampered { path }) if *path == shown),
        "{e}"
    );
    assert_eq!(e.class(), Class::StalePlan);
    assert_eq!(f.connector.connects(), connects, "the cluster was contacted");
    assert!(f.cluster.write_log().is_empty(), "{:?}", f.cluster.write_log());
    assert_eq!(state(&f.local).await, None, "the state was opened");
}

#[tokio::test]
async fn the_guard_refuses_another_context_or_api_server_before_the_state_is_opened() {
    for (guard, context) in [("context: prod", "staging"), ("apiServer: https://prod.example:6443", "prod")] {
        let f = Fixture::through(&guarded(guard), context);
        let e = f.apply(None, &AutoApprove).await.expect_err("another cluster");
        assert!(
            matches!(&e, Error::WrongCluster { actual, .. } if actual == "https://fake.invalid:6443"),
            "{guard}: {e}"
        );
        assert_eq!(e.class(), Class::Safety);
        let e = destroy(&f.env(), &f.destroy_request(), &AutoApprove).await.expect_err("another cluster");
        assert!(matches!(e, Error::WrongCluster { .. }), "{guard}: {e}");
        assert!(f.cluster.write_log().is_empty(), "{guard}: {:?}", f.cluster.write_log());
        assert_eq!(state(&f.local).await, None, "{guard}: the state was opened");
    }
    // The guard's own context passes.
    let f = Fixture::through(&guarded("context: prod"), "prod");
    assert!(ran(f.apply(None, &AutoApprove).await.expect("applied")).complete());
}

#[tokio::test]
async fn an_apply_not_confirmed_writes_nothing_records_nothing_and_releases_the_lock() {
    for (answer, declined) in [(Answer::No, true), (Answer::CannotAsk, false)] {
        let f = Fixture::new(MINIMAL);
        let e = f.apply(None, &Answering(answer)).await.expect_err("not confirmed");
        if declined {
            assert!(matches!(e, Error::Declined { operation: "Apply" }), "{e}");
        } else {
            assert!(matches!(e, Error::NoConfirmation), "{e}");
        }
        assert_eq!(e.class(), Class::Safety);
        assert!(f.cluster.write_log().is_empty(), "{answer:?}: {:?}", f.cluster.write_log());
        // The lock was taken (which creates the state), nothing was recorded, no history entry.
        let fresh = Snapshot { lineage: "local".into(), serial: 0, managed: BTreeMap::new() };
        assert_eq!(state(&f.local).await, Some((fresh, Vec::new())), "{answer:?}");
        assert!(f.local.open(Operation::Apply).is_ok(), "{answer:?}: the lock is still held");
    }
}

#[tokio::test]
async fn a_destroy_not_confirmed_deletes_nothing_and_records_nothing() {
    let f = Fixture::new(MINIMAL);
    ran(f.apply(None, &AutoApprove).await.expect("applied"));
    let (writes, before) = (f.cluster.write_log().len(), state(&f.local).await);
    let e = destroy(&f.env(), &f.destroy_request(), &Answering(Answer::No)).await.expect_err("declined");
    assert!(matches!(e, Error::Declined { operation: "Destroy" }), "{e}");
    assert_eq!(f.cluster.write_log().len(), writes);
    assert_eq!(state(&f.local).await, before);
}

#[tokio::test]
async fn the_history_has_each_operation_and_how_it_ended() {
    let f = Fixture::new(MINIMAL);
    let applied = ran(f.apply(None, &AutoApprove).await.expect("applied"));
    assert!(applied.complete(), "{applied:?}");
    let Destroyed::Ran(destroyed) =
        destroy(&f.env(), &f.destroy_request(), &AutoApprove).await.expect("destroyed")
    else {
        panic!("the destroy deleted nothing")
    };
    assert!(destroyed.complete(), "{destroyed:?}");
    let (snapshot, history) = state(&f.local).await.expect("a state");
    let ops: Vec<_> = history.iter().map(|e| (e.operation.as_str(), e.outcome, e.serial)).collect();
    assert_eq!(
        ops,
        [
            (Operation::Apply.as_str(), Some(Outcome::Completed), applied.serial),
            (Operation::Destroy.as_str(), Some(Outcome::Completed), snapshot.serial),
        ]
    );
}

#[tokio::test]
async fn an_apply_with_a_failed_change_is_recorded_as_failed() {
    let f = Fixture::new(MINIMAL);
    let (planned, _) = f.save_plan().await;
    let last = planned.changes.iter().rev().find(|c| c.action.is_write()).expect("a write").address.clone();
    let refusal = ClusterError::Invalid { addr: last.clone(), message: "rejected by the fake".into() };
    f.cluster.fail_on(&last, refusal.clone());
    let outcome = ran(f.apply(None, &AutoApprove).await.expect("the run itself succeeds"));
    assert_eq!(outcome.failed.len(), 1, "{outcome:?}");
    assert_eq!((&outcome.failed[0].address, &outcome.failed[0].error), (&last, &refusal));
    assert!(!outcome.applied.is_empty());
    assert_eq!(trail(&f.local).await, [(Operation::Apply.as_str().to_owned(), Some(Outcome::Failed))]);
}

#[tokio::test]
async fn the_state_backend_is_the_flag_else_the_inventory_else_local() {
    let states = || {
        let at = |lineage: &str| Snapshot { lineage: lineage.into(), serial: 0, managed: BTreeMap::new() };
        (MemoryBackend::from_snapshot(at("local")), MemoryBackend::from_snapshot(at("in-cluster")))
    };
    for (inventory, flag, chosen) in [
        (MINIMAL.to_owned(), None, "local"),
        (state_in_cluster(), None, "in-cluster"),
        (state_in_cluster(), Some(BackendKind::Local), "local"),
        (MINIMAL.to_owned(), Some(BackendKind::Cluster), "in-cluster"),
    ] {
        let mut f = Fixture::new(&inventory);
        let (local, in_cluster) = states();
        f.use_states(local, in_cluster);
        f.flags.backend = flag;
        // A live plan records the lineage of the state it read; `state list` shows it.
        let (planned, _) = f.save_plan().await;
        assert_eq!(planned.state.lineage.as_deref(), Some(chosen), "plan, flag {flag:?}");
        let view = super::state::read(&f.env(), &f.inventory(), false).await.expect("a state");
        assert_eq!(view.snapshot.lineage, chosen, "state list, flag {flag:?}");
        // An apply writes its records there, and only there.
        let outcome = ran(f.apply(None, &AutoApprove).await.expect("applied"));
        let (written, untouched) =
            if chosen == "local" { (&f.local, &f.in_cluster) } else { (&f.in_cluster, &f.local) };
        let serial = |s: StateRead| s.map(|(snapshot, _)| snapshot.serial);
        assert_eq!(serial(state(written).await), Some(outcome.serial), "flag {flag:?}");
        assert_eq!(serial(state(untouched).await), Some(0), "flag {flag:?}");
    }
}
