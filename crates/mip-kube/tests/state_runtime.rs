//! The cluster state runs on its caller's runtime, so mip runs one: opened, written and
//! released from inside a multi-thread runtime (as the CLI does), a store starts no runtime of
//! its own; opened from a plain thread, it does (the state's own, one worker named
//! `mip-state`). Alone in its test binary: that runtime is process-wide, and another test
//! opening a store from a plain thread would start it.

use mip_core::ObjectRef;
use mip_kube::{ClusterStateConfig, ClusterStore, ConnectOptions};
use mip_state::{ManagedEntry, Operation, StateStore};
use mip_test_support::TestCluster;
use std::time::Duration;

/// How many threads of this process have this name.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

#[test]
fn a_store_opened_inside_a_multi_thread_runtime_runs_on_it() {
    let cluster = TestCluster::shared();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let namespace = rt.block_on(cluster.fresh_namespace("state-runtime"));
    let config = ClusterStateConfig {
        namespace,
        name: "mip-state".into(),
        lock_ttl: Duration::from_secs(5),
        chunk_bytes: 1000,
        history_limit: mip_state::DEFAULT_HISTORY_LIMIT,
    };
    let connect = ConnectOptions {
        kubeconfig: Some(cluster.kubeconfig_path().to_owned()),
        context: Some("mip-test".into()),
        ..ConnectOptions::default()
    };
    let addr = ObjectRef::new("v1", "Namespace", None, "federation-a");
    let entry = ManagedEntry {
        fingerprint: format!("sha256:{:064x}", 1),
        uid: Some("uid-1".into()),
        serial: 0,
        secret_hashes: Default::default(),
        via: None,
    };
    rt.block_on(async {
        let store = ClusterStore::open(connect.clone(), config.clone(), Operation::Apply).expect("open");
        assert_eq!(store.record(&addr, Some(entry.clone())).expect("record"), 1);
        drop(store); // releases the Lease
    });
    assert_eq!(
        threads_named("mip-state"),
        0,
        "a store inside the CLI's runtime started a runtime of its own"
    );

    // From a plain thread there is no runtime to run on: the state's own starts (and the
    // Lease released above can be taken again at once).
    let store = ClusterStore::open(connect, config, Operation::Apply).expect("open from a plain thread");
    assert_eq!(store.snapshot().expect("snapshot").serial, 1, "the record above was committed");
    drop(store);
    // Its worker and its blocking threads carry the name.
    assert!(threads_named("mip-state") >= 1, "the state's own runtime, for plain threads");
}
