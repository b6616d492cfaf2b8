//! The in-cluster state store against the real test cluster: the same record/history/import
//! behaviour as the local store, groups in Secrets of their own with checksums, commits that
//! write only the groups that changed, a Lease lock that names its holder, expires, is taken
//! over, and fences a holder that lost it.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly, like the tests")]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use mip_core::ObjectRef;
use mip_kube::{ClusterStateConfig, ClusterStore, ConnectOptions, KubeCluster, read_state};
use mip_state::{Error, HistoryEntry, ManagedEntry, Operation, StateStore};
use mip_test_support::{TestCluster, figure};
use serde_json::json;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn connect_options(cluster: &TestCluster) -> ConnectOptions {
    ConnectOptions {
        kubeconfig: Some(cluster.kubeconfig_path().to_owned()),
        context: Some("mip-test".into()),
        ..ConnectOptions::default()
    }
}

/// A fresh namespace and a state config in it with small chunks.
fn setup(
    prefix: &str,
    chunk_bytes: usize,
) -> (&'static TestCluster, ClusterStateConfig, tokio::runtime::Runtime) {
    let cluster = TestCluster::shared();
    let rt = runtime();
    let namespace = rt.block_on(cluster.fresh_namespace(prefix));
    let config = ClusterStateConfig {
        namespace,
        name: "mip-state".into(),
        lock_ttl: Duration::from_secs(5),
        chunk_bytes,
        history_limit: mip_state::DEFAULT_HISTORY_LIMIT,
    };
    (cluster, config, rt)
}

fn client(rt: &tokio::runtime::Runtime, cluster: &TestCluster) -> kube::Client {
    rt.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap(),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        kube::Client::try_from(config).unwrap()
    })
}

fn read(
    rt: &tokio::runtime::Runtime,
    cluster: &TestCluster,
    config: &ClusterStateConfig,
) -> Result<Option<(mip_state::Snapshot, Vec<HistoryEntry>)>, Error> {
    rt.block_on(async {
        let kube = KubeCluster::connect(connect_options(cluster)).await.unwrap();
        read_state(&kube, config).await
    })
}

fn addr(i: usize) -> ObjectRef {
    ObjectRef::new("v1", "Namespace", None, &format!("federation-{i:03}"))
}

fn entry(i: usize) -> ManagedEntry {
    ManagedEntry {
        fingerprint: format!("sha256:{i:064x}"),
        uid: Some(format!("uid-{i}")),
        serial: 0,
        secret_hashes: BTreeMap::from([("password".to_owned(), format!("sha256:{i:064}"))]),
        via: None,
    }
}

fn chunk_names(rt: &tokio::runtime::Runtime, secrets: &Api<Secret>) -> Vec<String> {
    let list = rt.block_on(secrets.list(&ListParams::default().labels("mip.ebrains.eu/generation"))).unwrap();
    let mut names: Vec<String> = list.items.into_iter().filter_map(|s| s.metadata.name).collect();
    names.sort();
    names
}

/// The Secrets besides the index that `index` lists, sorted: every part of every group and of
/// the history.
fn listed(index: &serde_json::Value) -> Vec<String> {
    let blobs = index["groups"].as_array().unwrap().iter().chain([&index["history"]]);
    let mut names: Vec<String> = blobs
        .flat_map(|b| {
            let name = b["name"].as_str().unwrap().to_owned();
            (0..b["parts"].as_u64().unwrap())
                .map(move |i| if i == 0 { name.clone() } else { format!("{name}-{i}") })
        })
        .collect();
    names.sort();
    names
}

/// Every Secret of the namespace by name, with its `resourceVersion`.
fn versions(rt: &tokio::runtime::Runtime, secrets: &Api<Secret>) -> BTreeMap<String, String> {
    let list = rt.block_on(secrets.list(&ListParams::default())).unwrap();
    list.items.into_iter().map(|s| (s.metadata.name.unwrap(), s.metadata.resource_version.unwrap())).collect()
}

#[test]
fn records_history_and_reopen_round_trip_across_several_chunks() {
    let (cluster, config, rt) = setup("state-roundtrip", 100);
    assert!(read(&rt, cluster, &config).unwrap().is_none(), "no state before the first open");

    let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    let lineage = store.lineage();
    assert_eq!(lineage.len(), 36);
    assert_eq!(store.snapshot().unwrap().serial, 0);
    for i in 0..10 {
        assert_eq!(store.record(&addr(i), Some(entry(i))).unwrap(), i as u64 + 1);
    }
    let batch = (10..20).map(|i| (addr(i), Some(entry(i)))).chain([(addr(3), None)]).collect();
    assert_eq!(store.record_many(batch).unwrap(), 21);
    store
        .append_history(HistoryEntry {
            serial: 21,
            operation: "apply".into(),
            summary: "19 applied".into(),
            at_unix: 7,
            folded: None,
            outcome: None,
        })
        .unwrap();
    let written = store.snapshot().unwrap();
    assert_eq!(written.managed.len(), 19);
    assert_eq!(written.managed[&addr(15)].serial, 16);

    // A reader without the lock sees exactly the committed state while the writer holds it.
    let (seen, history) = read(&rt, cluster, &config).unwrap().unwrap();
    assert_eq!(seen, written);
    assert_eq!(history.len(), 1);

    // The state spans several Secrets (the group larger than 100 bytes in parts, the history);
    // exactly those the index lists are there: the earlier commits' are gone.
    let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
    let chunks = chunk_names(&rt, &secrets);
    assert!(chunks.len() >= 3, "expected several chunks, got {chunks:?}");
    assert_eq!(chunks, listed(&index_of(&rt, &secrets, "mip-state")));
    drop(store);

    let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    assert_eq!(store.lineage(), lineage);
    assert_eq!(store.snapshot().unwrap(), written);
    assert_eq!(store.history().unwrap(), history);
    assert_eq!(store.record(&addr(0), None).unwrap(), 22, "the serial goes on");

    // Import is for empty stores only.
    let refused = store.import(&written, &history).unwrap_err();
    assert!(matches!(refused, Error::NotEmpty { serial: 22, .. }), "{refused:?}");
    drop(store);

    // Nothing in the state is a secret value: the Secrets hold fingerprints and hashes only.
    let all = rt.block_on(secrets.list(&ListParams::default())).unwrap();
    assert!(all.items.iter().all(|s| s.type_.as_deref() == Some("mip.ebrains.eu/state")));
}

#[test]
fn import_into_an_empty_cluster_store_keeps_lineage_serial_entries_and_history() {
    let (cluster, config, rt) = setup("state-import", 512 * 1024);
    let source = mip_state::MemoryStore::new().unwrap();
    for i in 0..5 {
        source.record(&addr(i), Some(entry(i))).unwrap();
    }
    source
        .append_history(HistoryEntry {
            serial: 5,
            operation: "apply".into(),
            summary: "5 applied".into(),
            at_unix: 1,
            folded: None,
            outcome: None,
        })
        .unwrap();
    let snapshot = source.snapshot().unwrap();
    let history = source.history().unwrap();

    let store =
        ClusterStore::open(connect_options(cluster), config.clone(), Operation::StateMigrate).unwrap();
    store.import(&snapshot, &history).unwrap();
    assert_eq!(store.lineage(), snapshot.lineage);
    drop(store);
    assert_eq!(read(&rt, cluster, &config).unwrap().unwrap(), (snapshot, history));
}

#[test]
fn a_held_lock_names_its_holder_is_released_on_drop_and_taken_over_once_expired() {
    let (cluster, config, rt) = setup("state-lock", 512 * 1024);
    let first = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    let refused =
        ClusterStore::open(connect_options(cluster), config.clone(), Operation::Destroy).unwrap_err();
    let Error::LockHeld(info) = &refused else { panic!("expected LockHeld, got {refused:?}") };
    assert_eq!(info.operation, "apply");
    assert_eq!(info.pid, std::process::id());
    assert!(info.holder.contains('@'), "{info:?}");
    assert!(info.expires_unix.is_some());
    assert!(refused.to_string().contains("for `apply`"), "{refused}");

    // Held past its TTL by the heartbeat.
    std::thread::sleep(config.lock_ttl + Duration::from_secs(1));
    assert!(matches!(
        ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply),
        Err(Error::LockHeld(_))
    ));
    drop(first);
    let leases: Api<Lease> = Api::namespaced(client(&rt, cluster), &config.namespace);
    assert!(rt.block_on(leases.get_opt("mip-state-lock")).unwrap().is_none(), "released on drop");
    drop(ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap());

    // A holder that died (its Lease not renewed for longer than its duration) is taken over;
    // one that renewed recently is not.
    let ghost = |renewed_secs_ago: i64| {
        let renewed = k8s_openapi::jiff::Timestamp::from_second(
            k8s_openapi::jiff::Timestamp::now().as_second() - renewed_secs_ago,
        )
        .unwrap();
        serde_json::from_value::<Lease>(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "mip-state-lock", "annotations": {
                "mip.ebrains.eu/holder": "ghost@elsewhere", "mip.ebrains.eu/pid": "4242",
                "mip.ebrains.eu/operation": "apply", "mip.ebrains.eu/started": "1700000000"}},
            "spec": {"holderIdentity": "ghost@elsewhere/4242/x", "leaseDurationSeconds": 5,
                     "acquireTime": renewed, "renewTime": renewed, "leaseTransitions": 3},
        }))
        .unwrap()
    };
    rt.block_on(leases.create(&PostParams::default(), &ghost(1))).unwrap();
    let refused = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap_err();
    assert!(refused.to_string().contains("held by `ghost@elsewhere` (pid 4242) for `apply`"), "{refused}");
    rt.block_on(leases.delete("mip-state-lock", &Default::default())).unwrap();
    rt.block_on(leases.create(&PostParams::default(), &ghost(60))).unwrap();
    let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    let taken = rt.block_on(leases.get("mip-state-lock")).unwrap();
    let spec = taken.spec.unwrap();
    assert_eq!(spec.lease_transitions, Some(4));
    assert!(spec.holder_identity.unwrap().contains(&format!("/{}/", std::process::id())));
    assert_eq!(spec.lease_duration_seconds, Some(5));
    drop(store);
}

#[test]
fn a_holder_that_lost_its_lease_or_was_overtaken_writes_nothing() {
    let (cluster, config, rt) = setup("state-fence", 512 * 1024);
    let kube = client(&rt, cluster);
    let leases: Api<Lease> = Api::namespaced(kube.clone(), &config.namespace);
    let secrets: Api<Secret> = Api::namespaced(kube, &config.namespace);

    // Someone takes the Lease over (as if ours had expired): the heartbeat notices, and the
    // next record is refused.
    let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    store.record(&addr(1), Some(entry(1))).unwrap();
    // (Retried: the holder's heartbeat may renew between our read and our write.)
    let mut taken = false;
    for _ in 0..10 {
        let mut lease = rt.block_on(leases.get("mip-state-lock")).unwrap();
        lease.spec.as_mut().unwrap().holder_identity = Some("thief@elsewhere/1/y".into());
        if rt.block_on(leases.replace("mip-state-lock", &PostParams::default(), &lease)).is_ok() {
            taken = true;
            break;
        }
    }
    assert!(taken, "could not take the Lease over");
    // The heartbeat notices at its next renewal (every third of the TTL): wait for that, not
    // for a fixed time (a record before it would still write: only the Lease changed).
    let deadline = std::time::Instant::now() + 3 * config.lock_ttl;
    while store.lock_lost().is_none() {
        assert!(std::time::Instant::now() < deadline, "the heartbeat never noticed the takeover");
        std::thread::sleep(Duration::from_millis(50));
    }
    let lost = store.record(&addr(2), Some(entry(2))).unwrap_err();
    assert!(matches!(lost, Error::LockLost { .. }), "{lost:?}");
    assert!(lost.to_string().contains("taken over"), "{lost}");
    drop(store);
    assert_eq!(read(&rt, cluster, &config).unwrap().unwrap().0.serial, 1, "nothing written after the loss");
    assert_eq!(
        rt.block_on(leases.get("mip-state-lock")).unwrap().spec.unwrap().holder_identity.as_deref(),
        Some("thief@elsewhere/1/y"),
        "a lost Lease is not deleted on drop"
    );
    rt.block_on(leases.delete("mip-state-lock", &Default::default())).unwrap();

    // Fencing: the state changed under a holder that still believes it holds the lock.
    let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    let patch = json!({"metadata": {"annotations": {"touched": "by another writer"}}});
    rt.block_on(secrets.patch("mip-state", &PatchParams::default(), &Patch::Merge(&patch))).unwrap();
    let fenced = store.record(&addr(3), Some(entry(3))).unwrap_err();
    assert!(matches!(fenced, Error::LockLost { .. }), "{fenced:?}");
    assert!(fenced.to_string().contains("written by another process"), "{fenced}");
    drop(store);
    assert_eq!(read(&rt, cluster, &config).unwrap().unwrap().0.serial, 1);
}

#[test]
fn a_damaged_or_missing_chunk_is_corrupt_with_a_hint_and_never_repaired() {
    let (cluster, config, rt) = setup("state-corrupt", 60);
    let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    store.record_many((0..8).map(|i| (addr(i), Some(entry(i)))).collect()).unwrap();
    drop(store);
    let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
    let chunks = chunk_names(&rt, &secrets);
    assert!(chunks.len() >= 2, "{chunks:?}");

    // One flipped byte in a chunk: the gzip stream breaks (its CRC-32 at the latest), or inflates
    // to more bytes than the index says (reading stops there, before the CRC-32), depending on
    // the data. Either way the SHA-256 is not what refuses it: `..._refused_by_the_checksum`
    // below is the case for that.
    let mut chunk = rt.block_on(secrets.get(&chunks[0])).unwrap();
    let data = chunk.data.as_mut().unwrap().get_mut("chunk").unwrap();
    data.0[10] ^= 0x20;
    rt.block_on(secrets.replace(&chunks[0], &PostParams::default(), &chunk)).unwrap();
    let corrupt = read(&rt, cluster, &config).unwrap_err();
    assert!(matches!(corrupt, Error::CorruptRemote { .. }), "{corrupt:?}");
    let message = corrupt.to_string();
    assert!(message.contains("cannot be un-gzipped") || message.contains("the index says"), "{message}");
    assert!(corrupt.hint().contains("never repairs"), "{}", corrupt.hint());
    let refused = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap_err();
    assert!(matches!(refused, Error::CorruptRemote { .. }), "{refused:?}");
    let leases: Api<Lease> = Api::namespaced(client(&rt, cluster), &config.namespace);
    assert!(
        rt.block_on(leases.get_opt("mip-state-lock")).unwrap().is_none(),
        "a refused open releases the lock"
    );

    // A missing chunk.
    rt.block_on(secrets.delete(&chunks[0], &Default::default())).unwrap();
    let missing = read(&rt, cluster, &config).unwrap_err();
    assert!(missing.to_string().contains("is missing"), "{missing}");
    let message = missing.to_string();
    assert!(message.contains(" of group `") || message.contains(" of the history `"), "named: {message}");
    assert_eq!(chunk_names(&rt, &secrets).len(), chunks.len() - 1, "mip deleted nothing");
}

/// `json` gzipped to exactly `length` bytes: compressed as tightly as gzip can, then padded
/// with a header comment (`FCOMMENT`, which every gzip reader skips).
fn gzip_to_length(json: &[u8], length: usize) -> Vec<u8> {
    use std::io::Write as _;
    let gzip = |comment: Option<Vec<u8>>| {
        let builder = flate2::GzBuilder::new();
        let builder = match comment {
            Some(comment) => builder.comment(comment),
            None => builder,
        };
        let mut encoder = builder.write(Vec::new(), flate2::Compression::best());
        encoder.write_all(json).unwrap();
        encoder.finish().unwrap()
    };
    let tight = gzip(None);
    assert!(tight.len() < length, "the altered payload gzips to {} bytes, not below {length}", tight.len());
    // The comment adds its bytes and a terminating NUL.
    let padded = gzip(Some(vec![b'x'; length - tight.len() - 1]));
    assert_eq!(padded.len(), length);
    padded
}

#[test]
fn a_chunk_that_still_un_gzips_but_holds_other_data_is_refused_by_the_checksum() {
    let (cluster, config, rt) = setup("state-checksum", 60);
    let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    store.record_many((0..8).map(|i| (addr(i), Some(entry(i)))).collect()).unwrap();
    drop(store);
    let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
    let index = index_of(&rt, &secrets, "mip-state");
    let group = &index["groups"][0];
    let (name, parts) = (group["name"].as_str().unwrap().to_owned(), group["parts"].as_u64().unwrap());
    assert!(parts >= 2, "{index}");
    let part_name = |i: u64| if i == 0 { name.clone() } else { format!("{name}-{i}") };

    // The group's stored bytes: its parts' Secrets, in order.
    let parts: Vec<Vec<u8>> = (0..parts)
        .map(|i| rt.block_on(secrets.get(&part_name(i))).unwrap().data.unwrap()["chunk"].0.clone())
        .collect();
    let stored = parts.concat();
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(stored.as_slice()), &mut json).unwrap();
    assert_eq!(json.len() as u64, group["size"].as_u64().unwrap());

    // Other entries of the same size (one digit of a fingerprint changed), gzipped validly to
    // the same stored size and cut at the same places: only the SHA-256 can tell them from the
    // ones the index describes.
    let at = json.windows(7).position(|w| w == b"sha256:").unwrap() + 7;
    json[at] = if json[at] == b'f' { b'e' } else { b'f' };
    let forged = gzip_to_length(&json, stored.len());
    let mut rest = forged.as_slice();
    for (i, part) in parts.iter().enumerate() {
        let (mine, tail) = rest.split_at(part.len());
        rest = tail;
        let patch = json!({"data": {"chunk": base64(mine)}});
        rt.block_on(secrets.patch(&part_name(i as u64), &PatchParams::default(), &Patch::Merge(&patch)))
            .unwrap();
    }

    let expected = format!(
        "group `{name}` (1 of 1) holds {} bytes with checksum `sha256:{}`, the index says {} bytes with `{}`",
        json.len(),
        mip_core::canonical::sha256_hex(&json),
        json.len(),
        group["sha256"].as_str().unwrap()
    );
    for error in [
        read(&rt, cluster, &config).unwrap_err(),
        ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap_err(),
    ] {
        assert!(matches!(error, Error::CorruptRemote { .. }), "{error:?}");
        assert!(error.to_string().contains(&expected), "{error}");
        assert!(error.hint().contains("never repairs"), "{}", error.hint());
    }
}

#[test]
fn chunks_left_by_a_writer_killed_before_its_commit_are_swept_by_the_next_one() {
    let (cluster, config, rt) = setup("state-sweep", 512 * 1024);
    drop(ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap());
    let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
    let orphan: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "mip.ebrains.eu/state",
        "metadata": {"name": "mip-state-g9-1", "labels": {
            "mip.ebrains.eu/state": "mip-state", "mip.ebrains.eu/generation": "9"}},
        "data": {"chunk": "eHl6"},
    }))
    .unwrap();
    rt.block_on(secrets.create(&PostParams::default(), &orphan)).unwrap();
    // And a group of format 3 that no index lists (its writer died before the index).
    let mut group = orphan.clone();
    group.metadata.name = Some("mip-state-g0123456789abcdef".into());
    rt.block_on(secrets.create(&PostParams::default(), &group)).unwrap();
    // Readers do not write.
    read(&rt, cluster, &config).unwrap().unwrap();
    assert_eq!(chunk_names(&rt, &secrets), ["mip-state-g0123456789abcdef", "mip-state-g9-1"]);
    drop(ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap());
    assert!(chunk_names(&rt, &secrets).is_empty());
}

#[test]
fn a_missing_namespace_or_a_foreign_secret_is_a_clear_error() {
    let cluster = TestCluster::shared();
    let config =
        ClusterStateConfig { namespace: "no-such-namespace".into(), ..ClusterStateConfig::default() };
    let e = ClusterStore::open(connect_options(cluster), config, Operation::Apply).unwrap_err();
    assert!(matches!(e, Error::Remote { .. }), "{e:?}");
    assert!(e.hint().contains("kubectl create namespace no-such-namespace"), "{}", e.hint());

    let (cluster, config, rt) = setup("state-foreign", 512 * 1024);
    let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
    let foreign: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mip-state"}, "stringData": {"a": "b"},
    }))
    .unwrap();
    rt.block_on(secrets.create(&PostParams::default(), &foreign)).unwrap();
    let e = read(&rt, cluster, &config).unwrap_err();
    assert!(e.to_string().contains("not a mip state"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// State growth and format versions (issue 18)

/// Writes one line of figures for `docs/reliability.md` (`tools/reliability/report.sh` collects
/// them from the test output).
/// The index Secret's `index.json`, parsed.
fn index_of(rt: &tokio::runtime::Runtime, secrets: &Api<Secret>, name: &str) -> serde_json::Value {
    let secret = rt.block_on(secrets.get(name)).unwrap();
    serde_json::from_slice(&secret.data.unwrap()["index.json"].0).unwrap()
}

#[test]
fn the_history_keeps_its_limit_and_folds_older_operations_in_the_cluster() {
    let (cluster, mut config, _rt) = setup("state-history", 512 * 1024);
    config.history_limit = 4;
    let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
    for serial in 1..=12u64 {
        let operation = if serial % 3 == 0 { "destroy" } else { "apply" };
        let entry = HistoryEntry {
            serial,
            operation: operation.into(),
            summary: format!("run {serial}"),
            at_unix: 1_700_000_000 + serial,
            folded: None,
            outcome: None,
        };
        store.append_history(entry).unwrap();
    }
    drop(store);
    let store = ClusterStore::open(connect_options(cluster), config, Operation::StateHistory).unwrap();
    let history = store.history().unwrap();
    assert_eq!(history.iter().map(|e| e.serial).collect::<Vec<_>>(), [8, 9, 10, 11, 12]);
    let folded = history[0].folded.as_ref().expect("a summary in front");
    assert_eq!((folded.operations, folded.first_serial), (8, 1));
    assert_eq!(folded.by_operation, BTreeMap::from([("apply".into(), 6), ("destroy".into(), 2)]));
    assert_eq!(history[0].operation, Operation::Summary);
    assert!(history[0].summary.starts_with("8 earlier operations, serials 1-8 ("), "{}", history[0].summary);
}

/// A state as a mip before format 3 wrote it: `version` 1 (plain JSON in `chunk-0`) or 2
/// (gzip, cut into `chunk-0` and the chunk Secret `mip-state-g1-1`).
fn old_state(rt: &tokio::runtime::Runtime, secrets: &Api<Secret>, version: &str) {
    let payload = json!({
        "lineage": "0b5e1c1e-0000-4000-8000-000000000001", "serial": 2,
        "managed": {"v1/Namespace/federation-001": {"fingerprint": "sha256:01", "uid": "u1", "serial": 1},
                    "v1/Namespace/federation-002": {"fingerprint": "sha256:02", "uid": "u2", "serial": 2}},
        "history": [{"serial": 2, "operation": "apply", "summary": "2 created", "at_unix": 1}],
    });
    let bytes = serde_json::to_vec(&payload).unwrap();
    let mut index = json!({
        "format_version": version, "lineage": "0b5e1c1e-0000-4000-8000-000000000001", "serial": 2,
        "generation": 1, "chunks": 1, "size": bytes.len(),
        "sha256": format!("sha256:{}", mip_core::canonical::sha256_hex(&bytes)),
    });
    let labels = json!({"mip.ebrains.eu/state": "mip-state"});
    let first = if version == "1" {
        bytes
    } else {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &bytes).unwrap();
        let stored = encoder.finish().unwrap();
        let (first, second) = stored.split_at(stored.len() / 2);
        index["chunks"] = 2.into();
        index["encoding"] = "gzip".into();
        index["stored_size"] = stored.len().into();
        let chunk: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "mip.ebrains.eu/state",
            "metadata": {"name": "mip-state-g1-1", "labels": {
                "mip.ebrains.eu/state": "mip-state", "mip.ebrains.eu/generation": "1"}},
            "data": {"chunk": base64(second)},
        }))
        .unwrap();
        rt.block_on(secrets.create(&PostParams::default(), &chunk)).unwrap();
        first.to_vec()
    };
    let old: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "mip.ebrains.eu/state",
        "metadata": {"name": "mip-state", "labels": labels},
        "data": {
            "index.json": base64(&serde_json::to_vec(&index).unwrap()),
            "chunk-0": base64(&first),
        },
    }))
    .unwrap();
    rt.block_on(secrets.create(&PostParams::default(), &old)).unwrap();
}

#[test]
fn a_format_1_or_2_state_is_read_and_the_next_commit_writes_format_3_and_deletes_its_chunks() {
    for version in ["1", "2"] {
        let (cluster, config, rt) = setup(&format!("state-format-{version}"), 512 * 1024);
        let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
        old_state(&rt, &secrets, version);

        let (snapshot, history) = read(&rt, cluster, &config).unwrap().unwrap();
        assert_eq!((snapshot.serial, snapshot.managed.len(), history.len()), (2, 2, 1), "format {version}");
        let store = ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap();
        // Opening sweeps nothing the old index lists.
        let chunks = if version == "1" { vec![] } else { vec!["mip-state-g1-1".to_owned()] };
        assert_eq!(chunk_names(&rt, &secrets), chunks, "format {version}");
        assert_eq!(store.record(&addr(3), Some(entry(3))).unwrap(), 3);
        drop(store);
        let index = index_of(&rt, &secrets, "mip-state");
        assert_eq!(index["format_version"], "3");
        assert_eq!(index["encoding"], "gzip");
        assert!(index["stored_size"].as_u64().unwrap() < index["size"].as_u64().unwrap(), "{index}");
        // A small state: its one group and its history inline in the index Secret, the old
        // chunk deleted.
        assert_eq!(index["chunks"], 0, "{index}");
        assert_eq!(
            versions(&rt, &secrets).into_keys().collect::<Vec<_>>(),
            ["mip-state"],
            "format {version}"
        );
        let (snapshot, history) = read(&rt, cluster, &config).unwrap().unwrap();
        assert_eq!((snapshot.lineage.as_str(), snapshot.serial), ("0b5e1c1e-0000-4000-8000-000000000001", 3));
        assert_eq!((snapshot.managed.len(), history.len()), (3, 1));
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn a_state_of_a_newer_format_is_refused_with_an_upgrade_hint_and_left_alone() {
    let (cluster, config, rt) = setup("state-format-4", 512 * 1024);
    drop(ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap());
    let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
    // Format 4, with fields this mip does not know and without those it needs: still refused
    // as a newer format, not as corrupt.
    let index = json!({"format_version": "4", "shards": [{"at": "elsewhere"}]});
    let patch = json!({"data": {"index.json": base64(&serde_json::to_vec(&index).unwrap())}});
    rt.block_on(secrets.patch("mip-state", &PatchParams::default(), &Patch::Merge(&patch))).unwrap();
    let before = rt.block_on(secrets.get("mip-state")).unwrap().metadata.resource_version;

    for error in [
        read(&rt, cluster, &config).unwrap_err(),
        ClusterStore::open(connect_options(cluster), config.clone(), Operation::Apply).unwrap_err(),
    ] {
        assert!(matches!(error, Error::Incompatible { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the state store has format version `4`, this mip reads version `1`, `2` and `3`"
        );
        assert!(error.hint().contains("written by a newer mip (format 4); upgrade mip"), "{}", error.hint());
    }
    let after = rt.block_on(secrets.get("mip-state")).unwrap().metadata.resource_version;
    assert_eq!(before, after, "a refused state is not written");
}

/// What 10 000 federations leave in the state: per federation its Namespace, and the Secrets
/// `keycloak-credentials` (2 keys) and `mip-secret` (10 keys) with a salted hash per key;
/// fingerprints and hashes are real SHA-256 digests (incompressible hex).
fn federation_entries(federations: usize) -> Vec<mip_state::Record> {
    let digest = |text: String| format!("sha256:{}", mip_core::canonical::sha256_hex(text.as_bytes()));
    let mut records = Vec::new();
    for f in 0..federations {
        let ns = format!("federation-{f:05}");
        let mut push = |addr: ObjectRef, keys: usize| {
            let secret_hashes =
                (0..keys).map(|k| (format!("key-{k}"), digest(format!("{addr}/{k}")))).collect();
            let entry = ManagedEntry {
                fingerprint: digest(addr.to_string()),
                uid: Some(digest(format!("uid/{addr}"))[7..43].to_owned()),
                serial: 0,
                secret_hashes,
                via: None,
            };
            records.push((addr, Some(entry)));
        };
        push(ObjectRef::new("v1", "Namespace", None, &ns), 0);
        push(ObjectRef::new("v1", "Secret", Some(&ns), "keycloak-credentials"), 2);
        push(ObjectRef::new("v1", "Secret", Some(&ns), "mip-secret"), 10);
    }
    records
}

#[test]
fn a_state_of_10000_federations_is_compressed_and_reads_and_commits_in_measured_time() {
    let (cluster, mut config, rt) = setup("state-10k", 512 * 1024);
    // No heartbeat during the test: the store's request counts are its commits'.
    config.lock_ttl = Duration::from_secs(300);
    let records = federation_entries(10_000);
    let entries = records.len();
    let mut snapshot = mip_state::Snapshot { lineage: "l".into(), serial: 0, managed: BTreeMap::new() };
    snapshot.record(records);
    let history: Vec<HistoryEntry> = (1..=200u64)
        .map(|s| HistoryEntry {
            serial: s,
            operation: "apply".into(),
            summary: format!("run {s}"),
            at_unix: s,
            folded: None,
            outcome: None,
        })
        .collect();

    let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
    let store =
        ClusterStore::open(connect_options(cluster), config.clone(), Operation::StateMigrate).unwrap();
    let started = std::time::Instant::now();
    store.import(&snapshot, &history).unwrap();
    let import = started.elapsed();
    let before = versions(&rt, &secrets);
    let requests = store.requests();
    let started = std::time::Instant::now();
    store.record(&addr(1), Some(entry(1))).unwrap();
    let commit = started.elapsed();
    let writes = store.requests().writes - requests.writes;
    drop(store);
    let (written, deleted) = commit_writes(&before, &versions(&rt, &secrets));
    assert_eq!((written.len(), deleted.len()), (1, 1), "one group replaced: {written:?} for {deleted:?}");
    assert_eq!(writes, 3, "the new group, the index, the old group's deletion");

    let started = std::time::Instant::now();
    let (read_back, read_history) = read(&rt, cluster, &config).unwrap().unwrap();
    let read_time = started.elapsed();
    assert_eq!(read_back.managed.len(), entries + 1);
    assert_eq!(read_back.serial, snapshot.serial + 1);
    assert_eq!(read_history.len(), mip_state::DEFAULT_HISTORY_LIMIT + 1, "the imported history is bounded");

    let index = index_of(&rt, &secrets, "mip-state");
    let (size, stored) = (index["size"].as_u64().unwrap(), index["stored_size"].as_u64().unwrap());
    assert!(stored * 2 < size, "gzip at least halves the state: {stored} of {size} bytes");
    let groups = index["groups"].as_array().unwrap();
    // About one group per 512 entries (the cuts are random, so group sizes spread: the largest
    // spans two Secrets); the index lists exactly the Secrets there are.
    assert!((30..=90).contains(&groups.len()), "{} groups", groups.len());
    assert_eq!(listed(&index), chunk_names(&rt, &secrets));
    let largest = groups.iter().map(|g| g["entries"].as_u64().unwrap()).max().unwrap();
    let largest_stored = groups.iter().map(|g| g["stored_size"].as_u64().unwrap()).max().unwrap();
    figure("state_10k_entries", entries);
    figure("state_10k_json_bytes", size);
    figure("state_10k_stored_bytes", stored);
    figure("state_10k_groups", groups.len());
    figure("state_10k_largest_group_entries", largest);
    figure("state_10k_largest_group_stored_bytes", largest_stored);
    figure("state_10k_secrets", index["chunks"].as_u64().unwrap() + 1);
    figure("state_10k_import_ms", import.as_millis());
    figure("state_10k_commit_one_record_ms", commit.as_millis());
    figure("state_10k_commit_one_record_writes", writes);
    figure("state_10k_read_ms", read_time.as_millis());
}

/// What a commit wrote between two listings of the namespace ([`versions`]): the Secrets
/// besides the index that are new or changed, and those deleted. The index must have changed.
fn commit_writes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    assert_ne!(before.get("mip-state"), after.get("mip-state"), "the index is the commit point");
    let written = after
        .iter()
        .filter(|(name, rv)| *name != "mip-state" && before.get(*name) != Some(rv))
        .map(|(name, _)| name.clone())
        .collect();
    let deleted = before.keys().filter(|name| !after.contains_key(*name)).cloned().collect();
    (written, deleted)
}

#[test]
fn a_commit_writes_only_the_groups_it_changed_and_the_index() {
    let (cluster, mut config, rt) = setup("state-incremental", 512 * 1024);
    // No heartbeat during the test: the store's request counts are its commits'.
    config.lock_ttl = Duration::from_secs(300);
    let secrets: Api<Secret> = Api::namespaced(client(&rt, cluster), &config.namespace);
    let mut snapshot = mip_state::Snapshot { lineage: "l".into(), serial: 0, managed: BTreeMap::new() };
    snapshot.record(federation_entries(2_000));
    let store =
        ClusterStore::open(connect_options(cluster), config.clone(), Operation::StateMigrate).unwrap();
    store.import(&snapshot, &[]).unwrap();
    let groups = index_of(&rt, &secrets, "mip-state")["groups"].as_array().unwrap().len();
    assert!(groups >= 5, "{groups} groups");

    // A new record: the group it falls into is replaced, under its new checksum. Three writes
    // (resourceVersions show what changed; the request count, that nothing was rewritten the
    // same).
    let writes = |before: mip_core::cluster::RequestCounts| store.requests().writes - before.writes;
    let mut before = versions(&rt, &secrets);
    let requests = store.requests();
    store.record(&addr(1), Some(entry(1))).unwrap();
    assert_eq!(writes(requests), 3, "the new group, the index, the old group's deletion");
    let (written, deleted) = commit_writes(&before, &versions(&rt, &secrets));
    assert_eq!((written.len(), deleted.len()), (1, 1), "{written:?} for {deleted:?}");

    // An entry changed and another removed, in one commit, in two groups far apart.
    let first = snapshot.managed.keys().next().unwrap().clone();
    let last = snapshot.managed.keys().next_back().unwrap().clone();
    before = versions(&rt, &secrets);
    let requests = store.requests();
    store.record_many(vec![(first.clone(), Some(entry(7))), (last.clone(), None)]).unwrap();
    assert_eq!(writes(requests), 5);
    let (written, deleted) = commit_writes(&before, &versions(&rt, &secrets));
    assert_eq!((written.len(), deleted.len()), (2, 2), "{written:?} for {deleted:?}");

    // A history entry: the history's Secret alone.
    before = versions(&rt, &secrets);
    let ran = HistoryEntry {
        serial: 3,
        operation: "apply".into(),
        summary: "1 created".into(),
        at_unix: 3,
        folded: None,
        outcome: None,
    };
    let requests = store.requests();
    store.append_history(ran).unwrap();
    assert_eq!(writes(requests), 3);
    let (written, deleted) = commit_writes(&before, &versions(&rt, &secrets));
    let history = index_of(&rt, &secrets, "mip-state")["history"]["name"].as_str().unwrap().to_owned();
    assert_eq!((written, deleted.len()), (vec![history], 1));
    drop(store);

    let (read_back, _) = read(&rt, cluster, &config).unwrap().unwrap();
    assert_eq!(read_back.managed.len(), snapshot.managed.len());
    assert_eq!(read_back.managed[&first].fingerprint, entry(7).fingerprint);
    assert!(!read_back.managed.contains_key(&last));
}
