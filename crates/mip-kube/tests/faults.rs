//! `KubeCluster` and the cluster state under faults, on the real test cluster: a Toxiproxy
//! (`mip_test_support::toxiproxy`) between mip and the API server adding latency, a bandwidth
//! limit, connections cut mid-response, the answer of a state commit lost after the server
//! applied it, and a black hole; an API server that throttles (HTTP 429 with `Retry-After`, the
//! time to mip's next request read from the server's audit log); a LIST whose continue token
//! expires (HTTP 410, etcd compacted between pages). Each test states mip's promise: success with
//! the right answer, or a bounded error naming the server; never a partial list, never a
//! half-recorded state. What a state test asserts about the state, it reads back from the cluster
//! with a fresh reader, never from the writer's memory.
//!
//! No assertion is a timing except the bounds mip promises (generous, for a loaded 2-core CI
//! machine); figures go to stderr as `reliability-figure:` lines for `docs/reliability.md`.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly, like the tests")]
#![allow(clippy::result_large_err, reason = "`ClusterError` is mip-core's, returned by value by the trait")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use mip_core::ObjectRef;
use mip_core::cluster::{ApplyOptions, Cluster, ClusterError, KindRef};
use mip_kube::{ClusterStateConfig, ClusterStore, ConnectOptions, KubeCluster, read_state};
use mip_state::{Error, ManagedEntry, Operation, StateStore};
use mip_test_support::{TestCluster, TestClusterOptions, Toxic, figure};
use serde_json::{Value, json};

const APPLY: ApplyOptions = ApplyOptions { dry_run: false, force: false };

fn options(kubeconfig: &Path, timeout: Duration) -> ConnectOptions {
    ConnectOptions { kubeconfig: Some(kubeconfig.to_owned()), context: None, timeout }
}

fn config_maps() -> KindRef {
    KindRef::of(&ObjectRef::new("v1", "ConfigMap", None, "x"))
}

fn config_map(ns: &str, name: &str, bytes: usize) -> (ObjectRef, Value) {
    let addr = ObjectRef::new("v1", "ConfigMap", Some(ns), name);
    let manifest = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"payload": "x".repeat(bytes)},
    });
    (addr, manifest)
}

/// Applies `n` ConfigMaps of `bytes` each, `parallel` at a time; the results in order.
async fn apply_many(
    kube: &Arc<KubeCluster>,
    ns: &str,
    prefix: &str,
    n: usize,
    bytes: usize,
) -> Vec<Result<Value, ClusterError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let kube = Arc::clone(kube);
        let (addr, manifest) = config_map(ns, &format!("{prefix}-{i:04}"), bytes);
        tasks.spawn(async move { (i, kube.apply(&addr, &manifest, APPLY).await) });
    }
    let mut results: Vec<_> = tasks.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The shared cluster, a fresh namespace, a Toxiproxy in front of the API server and a
/// kubeconfig through it.
struct Proxied {
    _dir: tempfile::TempDir,
    ns: String,
    proxy: mip_test_support::Toxiproxy,
    kubeconfig: PathBuf,
}

async fn proxied(prefix: &str) -> Proxied {
    let cluster = TestCluster::shared();
    let ns = cluster.fresh_namespace(prefix).await;
    let proxy = cluster.toxiproxy().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.kubeconfig_via(&proxy.server_url(), &kubeconfig).unwrap();
    Proxied { _dir: dir, ns, proxy, kubeconfig }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_a_bandwidth_limit_slow_requests_down_but_every_answer_is_right() {
    let p = proxied("fault-slow").await;
    let kube = Arc::new(KubeCluster::connect(options(&p.kubeconfig, Duration::from_secs(10))).await.unwrap());
    p.proxy.add(&Toxic::latency(200)).unwrap();
    let started = Instant::now();
    let applied = apply_many(&kube, &p.ns, "slow", 20, 2_000).await;
    assert!(applied.iter().all(Result::is_ok), "{applied:?}");
    figure("latency_200ms_apply_20_objects_s", format!("{:.1}", started.elapsed().as_secs_f64()));
    p.proxy.add(&Toxic::bandwidth(32)).unwrap();
    let started = Instant::now();
    let listed = kube.list(&config_maps(), Some(&p.ns), None).await.unwrap();
    figure("bandwidth_32kBps_list_20_objects_s", format!("{:.1}", started.elapsed().as_secs_f64()));
    let mut names: Vec<_> = listed.iter().filter_map(|o| o.pointer("/metadata/name")?.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names.len(), 20, "{names:?}");
    assert_eq!(kube.retries().retries, 0, "slow is not failed: {:?}", kube.retries());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_mid_response_are_retried_and_a_list_is_never_partial() {
    let p = proxied("fault-cut").await;
    let kube = Arc::new(KubeCluster::connect(options(&p.kubeconfig, Duration::from_secs(10))).await.unwrap());
    let applied = apply_many(&kube, &p.ns, "cut", 120, 1_000).await;
    assert!(applied.iter().all(Result::is_ok));
    let direct = kube.list(&config_maps(), Some(&p.ns), None).await.unwrap().len();
    assert_eq!(direct, 120);

    // Half the connections are closed after 20 kB: a LIST of ~150 kB dies mid-response there.
    p.proxy.add(&Toxic::limit_data(20_000).toxicity(0.5)).unwrap();
    let mut outcomes = (0, 0);
    let mut retries = Vec::new();
    for _ in 0..6 {
        let fresh = KubeCluster::connect(options(&p.kubeconfig, Duration::from_secs(10))).await.unwrap();
        match fresh.list(&config_maps(), Some(&p.ns), None).await {
            Ok(items) => {
                assert_eq!(items.len(), direct, "a LIST is complete or an error, never partial");
                outcomes.0 += 1;
            }
            Err(error) => {
                assert!(matches!(&error, ClusterError::Unreachable { .. }), "{error:?}");
                assert!(error.to_string().contains(&p.proxy.server_url()), "{error}");
                outcomes.1 += 1;
            }
        }
        retries.push(fresh.retries().retries);
    }
    figure("cut_mid_response_half_6_lists_retries_each", format!("{retries:?}"));
    assert!(outcomes.0 >= 1, "retries over fresh connections get through: {outcomes:?}");

    // Every connection cut: a bounded error that names the server.
    p.proxy.remove("limit_data").unwrap();
    p.proxy.add(&Toxic::limit_data(20_000)).unwrap();
    let timeout = Duration::from_secs(3);
    let fresh = KubeCluster::connect(options(&p.kubeconfig, timeout)).await.unwrap();
    let started = Instant::now();
    let error = fresh.list(&config_maps(), Some(&p.ns), None).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(&error, ClusterError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains(&p.proxy.server_url()), "{error}");
    assert!(elapsed < 3 * timeout, "{elapsed:?}");
    assert!(fresh.retries().retries >= 2, "{:?}", fresh.retries());
    figure("cut_every_response_error_after_s", format!("{:.1}", elapsed.as_secs_f64()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_is_a_bounded_error_naming_the_server() {
    let p = proxied("fault-hole").await;
    p.proxy.add(&Toxic::timeout(0)).unwrap();
    let timeout = Duration::from_secs(2);
    let kube = KubeCluster::connect(options(&p.kubeconfig, timeout)).await.unwrap();
    let started = Instant::now();
    let error = kube.list(&config_maps(), Some(&p.ns), None).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(&error, ClusterError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains(&p.proxy.server_url()), "{error}");
    assert!(error.to_string().contains("no answer within 2s"), "{error}");
    assert!(elapsed < 3 * timeout, "{elapsed:?}");
    figure("black_hole_error_after_s_timeout_2s", format!("{:.1}", elapsed.as_secs_f64()));
}

fn state_config(ns: &str, ttl: Duration) -> ClusterStateConfig {
    ClusterStateConfig {
        namespace: ns.to_owned(),
        name: "mip-state".into(),
        lock_ttl: ttl,
        chunk_bytes: 2_000,
        history_limit: 10,
    }
}

fn addr(i: u64) -> ObjectRef {
    ObjectRef::new("v1", "Namespace", None, &format!("federation-{i:03}"))
}

fn entry(i: u64) -> ManagedEntry {
    ManagedEntry { fingerprint: format!("sha256:{i:064x}"), uid: None, serial: 0, ..Default::default() }
}

#[test]
fn state_commits_through_resets_are_whole_or_not_at_all() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = rt.block_on(proxied("fault-state"));
    let cluster = TestCluster::shared();
    let config = state_config(&p.ns, Duration::from_secs(30));
    let store =
        ClusterStore::open(options(&p.kubeconfig, Duration::from_secs(5)), config.clone(), Operation::Apply)
            .unwrap();
    // A third of the connections are reset right after they open.
    p.proxy.add(&Toxic::reset_peer(0).toxicity(0.3)).unwrap();
    let batch = |i: u64| (0..20).map(move |k| i * 100 + k);
    let mut acknowledged = Vec::new();
    let mut unacknowledged = None;
    let mut serial = 0;
    for i in 1..=15u64 {
        // Several chunks per commit (2 kB each): a half-written generation would show.
        let records = batch(i).map(|n| (addr(n), Some(entry(n)))).collect();
        match store.record_many(records) {
            Ok(s) => {
                serial = s;
                acknowledged.push(i);
            }
            Err(error) => {
                assert!(matches!(error, Error::Remote { .. }), "{error:?}");
                unacknowledged = Some(i);
                break; // the engine stops recording after a failed commit
            }
        }
    }
    p.proxy.clear().unwrap();
    drop(store);
    figure("state_commits_through_30pct_resets_acknowledged_serial", serial);
    figure("state_commits_through_30pct_resets_failed", u8::from(unacknowledged.is_some()));
    // Read back from the cluster by a fresh client, not from the writer's memory: `read_state`
    // checks the chunks' size and SHA-256 against the index (an error here is a failed check).
    let direct = options(cluster.kubeconfig_path(), Duration::from_secs(10));
    let (snapshot, _) = rt
        .block_on(async { read_state(&KubeCluster::connect(direct).await.unwrap(), &config).await })
        .unwrap()
        .unwrap();
    // Every acknowledged commit is there, entry by entry.
    for n in acknowledged.iter().flat_map(|&i| batch(i)) {
        let found = snapshot.managed.get(&addr(n)).map(|e| e.fingerprint.as_str());
        assert_eq!(found, Some(entry(n).fingerprint.as_str()), "acknowledged entry {n} is in the state");
    }
    // An unacknowledged commit is there whole or not at all, and nothing else is.
    let unacknowledged_there = unacknowledged.is_some_and(|i| {
        let present = batch(i).filter(|&n| snapshot.managed.contains_key(&addr(n))).count();
        assert!(present == 0 || present == 20, "commit {i} is half there: {present} of 20 entries");
        present == 20
    });
    let expected = (acknowledged.len() + usize::from(unacknowledged_there)) as u64 * 20;
    assert_eq!(snapshot.serial, expected, "serial {} vs {serial} acknowledged", snapshot.serial);
    assert_eq!(snapshot.managed.len() as u64, expected);
    assert!(serial >= 20, "retries carry commits through a third of resets");
}

/// The state Lease's `renewTime` (Unix ms), read directly (not through the proxy).
fn lease_renewed_ms(cluster: &TestCluster, config: &ClusterStateConfig) -> i64 {
    let lock = format!("{}-lock", config.name);
    let args = ["get", "lease", "-n", &config.namespace, &lock, "-o", "json"];
    let out = cluster.kubectl().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lease: Value = serde_json::from_slice(&out.stdout).unwrap();
    let renewed = lease["spec"]["renewTime"].as_str().unwrap_or_else(|| panic!("{lease}"));
    renewed.parse::<Timestamp>().unwrap().as_millisecond()
}

#[test]
fn the_lease_heartbeat_rides_out_latency_and_a_holder_cut_off_for_a_ttl_writes_nothing() {
    let p = tokio::runtime::Runtime::new().unwrap().block_on(proxied("fault-lease"));
    let cluster = TestCluster::shared();
    let ttl = Duration::from_secs(3);
    let config = state_config(&p.ns, ttl);
    let store =
        ClusterStore::open(options(&p.kubeconfig, Duration::from_secs(1)), config.clone(), Operation::Apply)
            .unwrap();
    p.proxy.add(&Toxic::latency(200)).unwrap();
    // Renewed through the latency for more than a TTL (without those renewals the Lease would
    // have lapsed): observed on the Lease, with a generous bound, rather than assumed from a sleep.
    let slowed_ms = Timestamp::now().as_millisecond();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lease_renewed_ms(cluster, &config) < slowed_ms + ttl_ms {
        assert!(Instant::now() < deadline, "the Lease was not renewed through 200 ms of latency");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(store.record(&addr(1), Some(entry(1))).unwrap(), 1, "200 ms of latency keeps the lock");

    // Cut off for more than a TTL: the heartbeat gives the lock up, and the holder writes no more.
    p.proxy.add(&Toxic::timeout(0)).unwrap();
    let direct = options(cluster.kubeconfig_path(), Duration::from_secs(10));
    let taken = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match ClusterStore::open(direct.clone(), config.clone(), Operation::Apply) {
                Ok(other) => break other,
                Err(Error::LockHeld(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(250))
                }
                Err(error) => panic!("{error:?}"),
            }
        }
    };
    assert_eq!(taken.record(&addr(2), Some(entry(2))).unwrap(), 2);
    p.proxy.clear().unwrap();
    let refused = store.record(&addr(3), Some(entry(3))).unwrap_err();
    assert!(matches!(refused, Error::LockLost { .. }), "{refused:?}");
    drop(taken);
    drop(store);
    // What the cluster holds (not the new holder's memory): its commit, and nothing of the old
    // holder's refused one.
    let (snapshot, _) = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { read_state(&KubeCluster::connect(direct).await.unwrap(), &config).await })
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.serial, 2);
    assert!(snapshot.managed.contains_key(&addr(2)) && !snapshot.managed.contains_key(&addr(3)));
}

#[test]
fn a_state_commit_whose_answer_is_lost_is_recognised_as_its_own_write() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = rt.block_on(proxied("fault-lost-answer"));
    let cluster = TestCluster::shared();
    // One Secret per commit (the payload fits one chunk), so a commit is one request, the index
    // replace; a long TTL, so no heartbeat request comes in between.
    let config =
        ClusterStateConfig { chunk_bytes: 512 * 1024, ..state_config(&p.ns, Duration::from_secs(120)) };
    let store =
        ClusterStore::open(options(&p.kubeconfig, Duration::from_secs(10)), config.clone(), Operation::Apply)
            .unwrap();
    assert_eq!(store.record(&addr(1), Some(entry(1))).unwrap(), 1);

    // From now on the first bytes the server sends on any connection reset it: the index replace
    // reaches the server and is committed, its answer never reaches mip, and mip's retries fail
    // (their TLS handshakes are reset too) until the test sees the commit and lets them through.
    p.proxy.add(&Toxic::reset_peer(0)).unwrap();
    let committing = std::thread::spawn(move || {
        let committed = store.record(&addr(2), Some(entry(2)));
        (store, committed)
    });
    let direct = options(cluster.kubeconfig_path(), Duration::from_secs(10));
    let read_back = || {
        rt.block_on(async { read_state(&KubeCluster::connect(direct.clone()).await.unwrap(), &config).await })
            .unwrap()
            .unwrap()
            .0
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_back().serial < 2 {
        assert!(Instant::now() < deadline, "the index replace never reached the server");
        std::thread::sleep(Duration::from_millis(20));
    }
    p.proxy.clear().unwrap();
    let (store, committed) = committing.join().unwrap();
    // The retried replace conflicts with the write it made itself (the resourceVersion moved):
    // recognised as ours, not taken for another writer.
    assert_eq!(committed.unwrap(), 2, "the commit whose answer was lost is acknowledged");
    assert_eq!(store.record(&addr(3), Some(entry(3))).unwrap(), 3, "the next commit goes on from it");
    drop(store);
    let snapshot = read_back();
    assert_eq!(snapshot.serial, 3, "each commit advanced the serial once");
    let serials: Vec<_> = (1..=3).map(|i| snapshot.managed.get(&addr(i)).map(|e| e.serial)).collect();
    assert_eq!(serials, [Some(1), Some(2), Some(3)]);
    assert_eq!(snapshot.managed.len(), 3);
}

/// A ServiceAccount `name` with cluster-admin and a kubeconfig for it that reaches the API
/// server at `server`: the API server's throttling never applies to `system:masters` (the
/// harness's admin), so the throttled client is this one.
fn admin_service_account(cluster: &TestCluster, dir: &Path, name: &str, server: &str) -> PathBuf {
    let kubectl = |args: &[&str]| {
        let out = cluster.kubectl().args(args).output().unwrap();
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    if kubectl(&["get", "serviceaccount", "-n", "default", "--ignore-not-found", "-o", "name", name])
        .is_empty()
    {
        kubectl(&["create", "serviceaccount", "-n", "default", name]);
        kubectl(&[
            "create",
            "clusterrolebinding",
            name,
            "--clusterrole=cluster-admin",
            &format!("--serviceaccount=default:{name}"),
        ]);
    }
    let token = kubectl(&["create", "token", name, "-n", "default", "--duration=1h"]);
    let admin = std::fs::read_to_string(cluster.kubeconfig_path()).unwrap();
    let ca = admin.lines().find_map(|l| l.trim().strip_prefix("certificate-authority-data: ")).unwrap();
    let kubeconfig = dir.join(format!("{name}-{}.kubeconfig", server.rsplit(':').next().unwrap_or("")));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: sa\nclusters:\n- name: t\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
             users:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: sa\n  context: {{cluster: t, user: sa}}\n",
            server,
            token.trim()
        ),
    )
    .unwrap();
    kubeconfig
}

#[test]
fn a_throttling_server_is_honoured_and_write_concurrency_adapts() {
    // One mutating request in flight at a time (non-mutating: 2); the rest get 429 with
    // `Retry-After: 1`.
    let cluster = TestCluster::start(TestClusterOptions {
        apiserver_args: vec!["--max-mutating-requests-inflight=1".into(), "--max-requests-inflight=2".into()],
        ..TestClusterOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = admin_service_account(&cluster, dir.path(), "mip-throttled", cluster.server_url());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let ns = cluster.fresh_namespace("throttled").await;
        let kube =
            Arc::new(KubeCluster::connect(options(&kubeconfig, Duration::from_secs(30))).await.unwrap());
        let started = Instant::now();
        let applied = apply_many(&kube, &ns, "t", 40, 20_000).await;
        let elapsed = started.elapsed();
        let failed: Vec<_> = applied.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(failed.is_empty(), "{failed:?}");
        let counts = kube.retries();
        figure("throttled_apply_40_objects_s", format!("{:.1}", elapsed.as_secs_f64()));
        figure("throttled_apply_40_objects_429s", counts.throttled);
        figure("throttled_apply_40_objects_min_write_limit", counts.min_write_limit.unwrap_or(0));
        assert!(counts.throttled > 0, "the server did throttle: {counts:?}");
        // The promise: a burst of 429s halves the write limit until one write at a time.
        assert_eq!(counts.min_write_limit, Some(1), "write concurrency came down to 1: {counts:?}");
        let listed = kube.list(&config_maps(), Some(&ns), None).await.unwrap();
        assert_eq!(listed.len(), 40);
    });
}

/// One event of the API server's audit log (JSON lines), the fields the test reads.
#[derive(Debug)]
struct Audited {
    stage: String,
    user: String,
    verb: String,
    name: String,
    code: Option<u16>,
    received: k8s_openapi::jiff::Timestamp,
    at: k8s_openapi::jiff::Timestamp,
}

fn audit_log(path: &Path) -> Vec<Audited> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // The last line may be half written.
    let events = text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok());
    events
        .map(|e| {
            let text =
                |pointer: &str| e.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
            Audited {
                stage: text("/stage"),
                user: text("/user/username"),
                verb: text("/verb"),
                name: text("/objectRef/name"),
                code: e.pointer("/responseStatus/code").and_then(Value::as_u64).map(|c| c as u16),
                received: text("/requestReceivedTimestamp").parse().unwrap(),
                at: text("/stageTimestamp").parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn retry_after_of_a_429_is_waited_out_before_the_next_request() {
    // One mutating request in flight at a time; a request over it gets 429 with `Retry-After`.
    // The audit log records when each request of the ServiceAccounts arrived and how it ended.
    let dir = tempfile::tempdir().unwrap();
    let (policy, log) = (dir.path().join("audit-policy.yaml"), dir.path().join("audit.log"));
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n\
         - level: Metadata\n  userGroups: [\"system:serviceaccounts\"]\n- level: None\n",
    )
    .unwrap();
    let cluster = TestCluster::start(TestClusterOptions {
        apiserver_args: vec![
            "--max-mutating-requests-inflight=1".into(),
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", log.display()),
        ],
        ..TestClusterOptions::default()
    });
    // A holder keeps the one seat busy: its write reaches the server through a Toxiproxy that
    // passes 8 kB/s upstream, so the server has its headers (and gives it the seat) seconds
    // before the rest of its 64 kB body.
    let proxy = cluster.toxiproxy().unwrap();
    let mip_user = "system:serviceaccount:default:mip-throttled";
    let kubeconfig = admin_service_account(&cluster, dir.path(), "mip-throttled", cluster.server_url());
    let holder_slow = admin_service_account(&cluster, dir.path(), "mip-holder", &proxy.server_url());
    let holder_direct = admin_service_account(&cluster, dir.path(), "mip-holder", cluster.server_url());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let ns = cluster.fresh_namespace("retry-after").await;
        let timeout = Duration::from_secs(10);
        let kube = KubeCluster::connect(options(&kubeconfig, timeout)).await.unwrap();
        let holder = Arc::new(KubeCluster::connect(options(&holder_slow, timeout * 3)).await.unwrap());
        // Discovery and a first write each, while nothing holds the seat.
        let (addr, manifest) = config_map(&ns, "warm", 10);
        kube.apply(&addr, &manifest, APPLY).await.unwrap();
        holder.apply(&addr, &manifest, APPLY).await.unwrap();

        proxy.add(&Toxic::bandwidth(8).upstream()).unwrap();
        let held = {
            let holder = Arc::clone(&holder);
            let (addr, manifest) = config_map(&ns, "holder", 64_000);
            tokio::spawn(async move { holder.apply(&addr, &manifest, APPLY).await })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !audit_log(&log).iter().any(|e| e.stage == "RequestReceived" && e.name == "holder") {
            assert!(Instant::now() < deadline, "the holder's write never reached the server");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // What the server answers a write now (asked by the holder's identity, so the log of
        // mip's identity holds mip's requests only): 429 and how long to wait.
        let probe = {
            let kubeconfig = kube::config::Kubeconfig::read_from(&holder_direct).unwrap();
            let mut config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                    .await
                    .unwrap();
            config.default_retry = false; // one request, one answer
            kube::Client::try_from(config).unwrap()
        };
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"}});
        let request = http::Request::post(format!("/api/v1/namespaces/{ns}/configmaps"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        let answer = probe.send(request).await.unwrap();
        assert_eq!(answer.status(), http::StatusCode::TOO_MANY_REQUESTS, "the seat is held");
        let retry_after: u64 = answer
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .expect("a 429 says how long to wait");

        let started = Instant::now();
        let (addr, manifest) = config_map(&ns, "throttled", 10);
        kube.apply(&addr, &manifest, APPLY).await.unwrap();
        let elapsed = started.elapsed();
        held.await.unwrap().unwrap();
        proxy.clear().unwrap();

        // mip's requests for that write, from its first 429 on, in the order they arrived.
        let mut mine: Vec<_> = audit_log(&log)
            .into_iter()
            .filter(|e| e.user == mip_user && e.stage == "ResponseComplete")
            .collect();
        assert!(kube.get(&addr).await.unwrap().is_some(), "the throttled write landed");
        mine.sort_by_key(|e| e.received);
        let first_429 = mine.iter().position(|e| e.code == Some(429)).expect("mip's write was throttled");
        let attempts = &mine[first_429..];
        assert!(
            attempts.iter().all(|e| e.verb == "patch" && e.name == "throttled"),
            "only the throttled write's attempts: {attempts:#?}"
        );
        assert_eq!(attempts.last().and_then(|e| e.code), Some(201), "created at last: {attempts:#?}");
        let mut gaps = Vec::new();
        for pair in attempts.windows(2) {
            let (rejected, next) = (&pair[0], &pair[1]);
            assert_eq!(rejected.code, Some(429), "{attempts:#?}");
            let gap = Duration::try_from(next.received.duration_since(rejected.at)).unwrap_or_default();
            gaps.push(gap.as_secs_f64());
            assert!(
                gap >= Duration::from_secs(retry_after),
                "the next request came {gap:?} after a 429 with `Retry-After: {retry_after}`: {attempts:#?}"
            );
        }
        figure("retry_after_s", retry_after);
        figure("retry_after_429s_then_success", attempts.len() - 1);
        figure("retry_after_min_gap_s", format!("{:.3}", gaps.iter().copied().fold(f64::MAX, f64::min)));
        figure("retry_after_throttled_write_s", format!("{:.1}", elapsed.as_secs_f64()));
    });
}

#[test]
fn a_list_whose_continue_token_expired_is_read_again_whole() {
    // etcd compacted every second: a continue token older than that is gone (HTTP 410). Without
    // the watch cache, whose snapshots would still serve the old revision.
    let cluster = TestCluster::start(TestClusterOptions {
        apiserver_args: vec!["--etcd-compaction-interval=1s".into(), "--watch-cache=false".into()],
        ..TestClusterOptions::default()
    });
    let proxy = cluster.toxiproxy().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.kubeconfig_via(&proxy.server_url(), &kubeconfig).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let ns = cluster.fresh_namespace("expired").await;
        let direct = Arc::new(
            KubeCluster::connect(options(cluster.kubeconfig_path(), Duration::from_secs(30))).await.unwrap(),
        );
        // 1 100 objects: three pages of 500.
        let applied = apply_many(&direct, &ns, "page", 1_100, 10).await;
        assert!(applied.iter().all(Result::is_ok));
        // Writes go on while mip pages slowly (5 s per answer), so etcd's revision moves and the
        // compaction catches up with the first page's token (the API server compacts to the
        // revision it saw one interval before: a token is gone after about 2 s).
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (direct, ns, stop) = (Arc::clone(&direct), ns.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let (addr, manifest) = config_map(&ns, "ticker", 0);
                    let mut manifest = manifest;
                    manifest["data"]["payload"] = i.to_string().into();
                    let _ = direct.apply(&addr, &manifest, APPLY).await;
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        proxy.add(&Toxic::latency(5_000)).unwrap();
        let slow = KubeCluster::connect(options(&kubeconfig, Duration::from_secs(30))).await.unwrap();
        let listed = slow.list(&config_maps(), Some(&ns), None).await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        writer.await.unwrap();
        let counts = slow.retries();
        figure("expired_continue_token_list_restarts", counts.list_restarts);
        assert_eq!(counts.list_restarts, 1, "the second page's token had expired: {counts:?}");
        let mut names: Vec<_> = listed.iter().filter_map(|o| o.pointer("/metadata/name")?.as_str()).collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), total, "no object twice");
        assert_eq!(names.iter().filter(|n| n.starts_with("page-")).count(), 1_100, "no object missing");
    });
    drop(proxy);
}
