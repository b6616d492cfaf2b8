//! Behaviour of the stores: the same body on [`SledStore`] and [`MemoryStore`], and the things
//! only a real store on disk can get wrong (locks across processes, `kill -9`, modes, damaged
//! files). Other processes are this test binary itself, re-run as `--ignored --exact child_entry`
//! with `MIP_STATE_CHILD` set: [`child_entry`] is ignored, so it never counts as a test.

use mip_core::ObjectRef;
use mip_state::{Error, HistoryEntry, ManagedEntry, MemoryStore, Operation, SledStore, Snapshot, StateStore};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

fn addr(name: &str) -> ObjectRef {
    format!("v1/Namespace/{name}").parse().expect("a valid address")
}

fn entry(fingerprint: &str) -> ManagedEntry {
    ManagedEntry { fingerprint: fingerprint.to_owned(), uid: None, serial: 999, ..Default::default() }
}

fn store_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path().join("state").join("store");
    (tmp, dir)
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// Not a test: the body of the child processes the tests below spawn (see [`spawn`]). It is
/// ignored so that a test run neither runs nor counts it, and refuses to run without
/// `MIP_STATE_CHILD` (e.g. under `--include-ignored`) rather than pass having checked nothing.
#[test]
#[ignore = "the body of a child process; the tests in this file run it with --ignored"]
fn child_entry() {
    let mode = std::env::var("MIP_STATE_CHILD")
        .expect("child_entry is not a test: only the tests of store.rs run it, with MIP_STATE_CHILD set");
    let dir = PathBuf::from(std::env::var("MIP_STATE_DIR").unwrap());
    match mode.as_str() {
        // Take the lock and keep it until killed.
        "hold" => {
            let _store = SledStore::open(&dir, Operation::Apply).unwrap();
            println!("child: ready");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        }
        // Record forever, saying after each record that it is complete.
        "records" => {
            let store = SledStore::open(&dir, Operation::Apply).unwrap();
            println!("child: ready");
            for i in 1u64.. {
                let serial =
                    store.record(&addr(&format!("ns-{i}")), Some(entry(&format!("sha256:{i}")))).unwrap();
                println!("child: recorded {serial}");
            }
        }
        // Create a store, write to it, close it (run under `umask 000`).
        "create" => {
            let store = SledStore::open(&dir, Operation::Apply).unwrap();
            store.record(&addr("a"), Some(entry("sha256:a"))).unwrap();
            store
                .append_history(HistoryEntry {
                    serial: 1,
                    operation: "apply".into(),
                    summary: "1 created".into(),
                    at_unix: 0,
                    folded: None,
                    outcome: None,
                })
                .unwrap();
            println!("child: done");
        }
        other => panic!("unknown child mode `{other}`"),
    }
}

/// A child process that is killed (`SIGKILL`) and reaped when dropped, so a failing test
/// leaves no process behind writing into a deleted directory.
struct Killed(Child);

impl Killed {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// `kill -9` and wait for it.
    fn kill_9(&mut self) {
        self.0.kill().expect("kill -9 the child");
        self.0.wait().expect("kill -9 the child");
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns this test binary as a child in `mode` on `dir`, optionally under `umask 000`.
fn spawn(mode: &str, dir: &Path, umask_zero: bool) -> (Killed, BufReader<ChildStdout>) {
    let exe = std::env::current_exe().expect("spawn the child");
    let args = ["child_entry", "--exact", "--ignored", "--nocapture", "--test-threads=1"];
    let mut cmd = if umask_zero {
        let mut c = Command::new("sh");
        c.arg("-c").arg("umask 000; exec \"$0\" \"$@\"").arg(&exe).args(args);
        c
    } else {
        let mut c = Command::new(&exe);
        c.args(args);
        c
    };
    let mut child = cmd
        .env("MIP_STATE_CHILD", mode)
        .env("MIP_STATE_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = BufReader::new(child.stdout.take().expect("spawn the child"));
    (Killed(child), stdout)
}

/// The next `child: …` line (other lines are the test harness's), `None` at end of output.
fn next_message(out: &mut BufReader<ChildStdout>) -> Option<String> {
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read the child's output") == 0 {
            return None;
        }
        // With `--nocapture` the harness's `test child_entry ... ` may share the line.
        if let Some(at) = line.find("child: ") {
            return Some(line[at + "child: ".len()..].trim_end().to_owned());
        }
    }
}

fn wait_ready(out: &mut BufReader<ChildStdout>) {
    assert_eq!(next_message(out).as_deref(), Some("ready"), "the child did not start");
}

// ---------------------------------------------------------------------------------------------
// Parity: one body, both stores

/// Exercises a fresh store and returns what it ended with.
fn exercise(store: &dyn StateStore) -> (Snapshot, Vec<HistoryEntry>) {
    let start = store.snapshot().expect("the store works");
    assert_eq!(start.serial, 0);
    assert!(start.managed.is_empty());
    assert!(store.history().expect("the store works").is_empty());

    assert_eq!(store.record(&addr("b"), Some(entry("sha256:b1"))).expect("the store works"), 1);
    assert_eq!(store.record(&addr("a"), Some(entry("sha256:a1"))).expect("the store works"), 2);
    // Upsert replaces.
    assert_eq!(
        store
            .record(&addr("b"), Some(ManagedEntry { uid: Some("uid-b".into()), ..entry("sha256:b2") }))
            .expect("the store works"),
        3
    );
    // Forgetting bumps the serial too, also for an address that is not there.
    assert_eq!(store.record(&addr("a"), None).expect("the store works"), 4);
    assert_eq!(store.record(&addr("never"), None).expect("the store works"), 5);
    assert_eq!(
        store
            .record(&"hybrid-east:v1/Secret/ns/s".parse().expect("the store works"), Some(entry("sha256:s")))
            .expect("the store works"),
        6
    );

    let snap = store.snapshot().expect("the store works");
    assert_eq!(snap.lineage, start.lineage, "the lineage never changes");
    assert_eq!(snap.serial, 6);
    let keys: Vec<&ObjectRef> = snap.managed.keys().collect();
    let mut expected = [addr("b"), "hybrid-east:v1/Secret/ns/s".parse().expect("the store works")];
    expected.sort();
    assert_eq!(keys, expected.iter().collect::<Vec<_>>());
    assert_eq!(
        snap.managed[&addr("b")],
        ManagedEntry {
            fingerprint: "sha256:b2".into(),
            uid: Some("uid-b".into()),
            serial: 3,
            ..Default::default()
        },
        "the entry's serial is the serial it was written at"
    );

    for (i, op) in ["apply", "destroy", "apply"].iter().enumerate() {
        store
            .append_history(HistoryEntry {
                serial: 6,
                operation: (*op).into(),
                summary: format!("run {i}"),
                at_unix: 1_700_000_000 + i as u64,
                folded: None,
                outcome: None,
            })
            .expect("the store works");
    }
    let history = store.history().expect("the store works");
    assert_eq!(history.iter().map(|h| h.summary.as_str()).collect::<Vec<_>>(), ["run 0", "run 1", "run 2"]);
    assert_eq!(store.snapshot().expect("the store works").serial, 6, "history does not bump the serial");

    // Group commit: one serial per record, in order; an empty batch changes nothing.
    assert_eq!(store.record_many(Vec::new()).expect("the store works"), 6);
    let batch =
        vec![(addr("c"), Some(entry("sha256:c"))), (addr("d"), Some(entry("sha256:d"))), (addr("c"), None)];
    assert_eq!(store.record_many(batch).expect("the store works"), 9);
    let after = store.snapshot().expect("the store works");
    assert!(!after.managed.contains_key(&addr("c")), "the later record of the batch wins");
    assert_eq!(after.managed[&addr("d")].serial, 8);
    store.record(&addr("d"), None).expect("the store works");

    // Import is for empty stores only, and leaves a full one as it was.
    let refused = store.import(&snap, &history).expect_err("the store is not empty");
    assert!(matches!(refused, mip_state::Error::NotEmpty { serial: 10, entries: 2, .. }), "{refused:?}");
    assert_eq!(store.snapshot().expect("the store works").serial, 10);
    (snap, history)
}

#[test]
fn import_fills_an_empty_store_with_lineage_serial_entries_and_history() {
    let source = MemoryStore::new().unwrap();
    let (snap, history) = exercise(&source);
    let imported = source.snapshot().unwrap();
    assert_eq!(imported.serial, 10);

    let memory = MemoryStore::new().unwrap();
    memory.import(&imported, &history).unwrap();
    assert_eq!(memory.snapshot().unwrap(), imported);
    assert_eq!(memory.history().unwrap(), history);

    let (_tmp, dir) = store_dir();
    let sled = SledStore::open(&dir, Operation::StateMigrate).unwrap();
    sled.import(&imported, &history).unwrap();
    assert_eq!(sled.lineage(), imported.lineage, "the lineage moves with the state");
    drop(sled);
    assert_eq!(SledStore::open_read_only(&dir).unwrap().unwrap(), imported);
    let sled = SledStore::open(&dir, Operation::Apply).unwrap();
    assert_eq!(sled.snapshot().unwrap(), imported);
    assert_eq!(sled.history().unwrap(), history);
    assert_eq!(sled.record(&addr("e"), None).unwrap(), 11, "the serial goes on from the imported one");
    let _ = snap;
}

#[test]
fn memory_and_sled_stores_behave_the_same() {
    let memory = MemoryStore::new().unwrap();
    let (mem_snap, mem_history) = exercise(&memory);

    let (_tmp, dir) = store_dir();
    let sled = SledStore::open(&dir, Operation::Apply).unwrap();
    let (sled_snap, sled_history) = exercise(&sled);

    assert_ne!(mem_snap.lineage, sled_snap.lineage);
    assert_eq!(mem_snap.managed, sled_snap.managed);
    assert_eq!(mem_snap.serial, sled_snap.serial);
    assert_eq!(mem_history, sled_history);
    assert_eq!(sled.lineage(), sled_snap.lineage);
    assert_eq!(memory.lineage(), mem_snap.lineage);
}

#[test]
fn stores_are_send_and_sync_and_records_from_threads_all_count() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SledStore>();
    assert_send_sync::<MemoryStore>();

    let (_tmp, dir) = store_dir();
    let sled = SledStore::open(&dir, Operation::Apply).unwrap();
    let memory = MemoryStore::with_lineage("fixed");
    for store in [&sled as &(dyn StateStore + Sync), &memory] {
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..10 {
                        store.record(&addr(&format!("t{t}-{i}")), Some(entry("sha256:x"))).unwrap();
                    }
                });
            }
        });
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.serial, 40);
        assert_eq!(snap.managed.len(), 40);
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    let batch =
                        (0..10).map(|i| (addr(&format!("m{t}-{i}")), Some(entry("sha256:y")))).collect();
                    store.record_many(batch).unwrap();
                });
            }
        });
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.serial, 80);
        assert_eq!(snap.managed.len(), 80);
    }
}

// ---------------------------------------------------------------------------------------------
// Round trip, serial, lineage

#[test]
fn sled_round_trip_across_reopen_keeps_lineage_serial_entries_and_history() {
    let (_tmp, dir) = store_dir();
    let store = SledStore::open(&dir, Operation::Apply).unwrap();
    let lineage = store.lineage();
    assert_eq!(lineage.len(), 36);
    store.record(&addr("a"), Some(entry("sha256:a"))).unwrap();
    store.record(&addr("b"), Some(entry("sha256:b"))).unwrap();
    store
        .append_history(HistoryEntry {
            serial: 2,
            operation: "apply".into(),
            summary: "2 created".into(),
            at_unix: 5,
            folded: None,
            outcome: None,
        })
        .unwrap();
    let before = store.snapshot().unwrap();
    drop(store);

    let store = SledStore::open(&dir, Operation::Apply).unwrap();
    assert_eq!(store.lineage(), lineage);
    assert_eq!(store.snapshot().unwrap(), before);
    assert_eq!(store.history().unwrap().len(), 1);
    assert_eq!(store.record(&addr("c"), None).unwrap(), 3, "the serial goes on from where it was");
    drop(store);

    let read = SledStore::open_read_only(&dir).unwrap().unwrap();
    assert_eq!(read.serial, 3);
    assert_eq!(read.lineage, lineage);
    assert_eq!(read.managed, before.managed);
}

#[test]
fn every_store_gets_its_own_lineage() {
    let (_tmp, a) = store_dir();
    let (_tmp2, b) = store_dir();
    let a = SledStore::open(&a, Operation::Apply).unwrap();
    let b = SledStore::open(&b, Operation::Apply).unwrap();
    assert_ne!(a.lineage(), b.lineage());
    assert_eq!(a.snapshot().unwrap().serial, 0);
}

// ---------------------------------------------------------------------------------------------
// Locks

#[test]
fn second_open_in_the_same_process_is_refused_naming_this_process() {
    let (_tmp, dir) = store_dir();
    let first = SledStore::open(&dir, Operation::Apply).unwrap();
    let Err(Error::LockHeld(info)) = SledStore::open(&dir, Operation::Destroy) else {
        panic!("expected LockHeld")
    };
    assert_eq!(info.pid, std::process::id());
    assert_eq!(info.operation, "apply");
    // While held, a reader gets the last committed snapshot instead of an error.
    first.record(&addr("a"), Some(entry("sha256:a"))).unwrap();
    let read = SledStore::open_read_only(&dir).unwrap().unwrap();
    assert_eq!(read, first.snapshot().unwrap());
    drop(first);
    assert!(!dir.join("lock.json").exists(), "dropping the store removes lock.json");
    SledStore::open(&dir, Operation::Destroy).unwrap();
}

#[test]
fn lock_held_by_another_process_names_holder_and_pid_and_is_released_by_kill_9() {
    let (_tmp, dir) = store_dir();
    let (mut child, mut out) = spawn("hold", &dir, false);
    wait_ready(&mut out);

    let err = SledStore::open(&dir, Operation::Apply).map(|_| ()).unwrap_err();
    let Error::LockHeld(info) = &err else { panic!("expected LockHeld, got {err:?}") };
    assert_eq!(info.pid, child.id());
    assert_eq!(info.operation, "apply");
    assert!(info.holder.contains('@'), "holder is user@host: {}", info.holder);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "the state store is locked: held by `{}` (pid {}) for `apply` since ",
            info.holder,
            child.id()
        )),
        "{message}"
    );
    assert!(message.ends_with('Z'), "{message}");
    assert!(err.hint().contains("killed holder releases the lock"));

    // plan still reads while apply holds the lock.
    let read = SledStore::open_read_only(&dir).unwrap().unwrap();
    assert_eq!(read.serial, 0);

    child.kill_9();
    let store = SledStore::open(&dir, Operation::Apply).expect("a killed holder releases the lock");
    assert_eq!(store.snapshot().unwrap().serial, 0);
}

#[test]
fn kill_9_in_the_middle_of_records_loses_at_most_the_record_in_flight() {
    let (_tmp, dir) = store_dir();
    let (mut child, mut out) = spawn("records", &dir, false);
    wait_ready(&mut out);
    let mut completed = 0u64;
    while completed < 40 {
        let msg = next_message(&mut out).expect("the child stopped early");
        completed = msg.strip_prefix("recorded ").unwrap().parse().unwrap();
    }
    child.kill_9();
    // Lines already in the pipe are records that completed before the kill.
    while let Some(msg) = next_message(&mut out) {
        completed = msg.strip_prefix("recorded ").unwrap().parse().unwrap();
    }

    let store = SledStore::open(&dir, Operation::Apply).expect("the store opens and the lock is free");
    let snap = store.snapshot().unwrap();
    assert!(
        snap.serial == completed || snap.serial == completed + 1,
        "serial {} after {completed} completed records",
        snap.serial
    );
    for i in 1..=completed {
        let e = &snap.managed[&addr(&format!("ns-{i}"))];
        assert_eq!(e.fingerprint, format!("sha256:{i}"));
        assert_eq!(e.serial, i);
    }
    assert_eq!(snap.managed.len() as u64, snap.serial);
    // The mirror was brought up to date by the open.
    drop(store);
    let read = SledStore::open_read_only(&dir).unwrap().unwrap();
    assert_eq!(read, snap);
}

// ---------------------------------------------------------------------------------------------
// Modes and read-only

fn assert_private_tree(dir: &Path) {
    let mode = std::fs::metadata(dir).expect("read the store directory").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "`{}` has mode {mode:o}", dir.display());
    for e in std::fs::read_dir(dir).expect("read the store directory") {
        let e = e.expect("read the store directory");
        let kind = e.file_type().expect("read the store directory");
        if kind.is_dir() {
            assert_private_tree(&e.path());
        } else {
            let mode = e.metadata().expect("read the store directory").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "`{}` has mode {mode:o}", e.path().display());
        }
    }
}

#[test]
fn store_files_are_0600_and_dirs_0700_even_under_umask_000() {
    let (_tmp, dir) = store_dir();
    let (mut child, mut out) = spawn("create", &dir, true);
    assert_eq!(next_message(&mut out).as_deref(), Some("done"));
    assert!(child.0.wait().unwrap().success());
    assert!(dir.join("db").join("db").exists() && dir.join("snapshot.json").exists());
    assert_private_tree(&dir);

    // And in this process, while open and after close.
    let store = SledStore::open(&dir, Operation::Apply).unwrap();
    store.record(&addr("b"), Some(entry("sha256:b"))).unwrap();
    assert_private_tree(&dir);
    drop(store);
    assert_private_tree(&dir);
}

#[test]
fn read_only_open_of_a_missing_store_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state").join("store");
    assert_eq!(SledStore::open_read_only(&dir).unwrap(), None);
    assert!(!tmp.path().join("state").exists());

    // An existing empty directory is no store either, and stays empty.
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(SledStore::open_read_only(&dir).unwrap(), None);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Damage

/// A store with a few records, closed.
fn closed_store() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = store_dir();
    let store = SledStore::open(&dir, Operation::Apply).expect("a closed store");
    for i in 0..5 {
        store.record(&addr(&format!("n{i}")), Some(entry("sha256:x"))).expect("a closed store");
    }
    drop(store);
    (tmp, dir)
}

fn assert_corrupt(dir: &Path, case: &str) {
    for result in
        [SledStore::open(dir, Operation::Apply).map(|_| ()), SledStore::open_read_only(dir).map(|_| ())]
    {
        match result {
            Err(e @ Error::Corrupt { .. }) => {
                let Error::Corrupt { path, .. } = &e else { unreachable!() };
                assert!(path.starts_with(dir), "{case}: {}", path.display());
                assert!(e.to_string().contains("is corrupt"), "{case}: {e}");
                assert!(e.hint().contains("from a backup"), "{case}");
            }
            other => panic!("{case}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn damaged_database_file_is_corrupt_not_a_panic() {
    let garbage: Vec<u8> = (0..65_536u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    type Damage = fn(&Path, &[u8]);
    let cases: [(&str, Damage); 3] = [
        ("truncated to 0", |f, _| std::fs::write(f, b"").unwrap()),
        ("overwritten with garbage", |f, g| std::fs::write(f, g).unwrap()),
        ("truncated in the middle of its records", |f, _| {
            // sled preallocates the segment: cut into the part that holds data. sled takes this
            // for the torn tail of a crash and recovers the prefix; the cross-check with
            // `snapshot.json` finds the records that were lost.
            let used = std::fs::read(f).unwrap().iter().rposition(|b| *b != 0).unwrap() as u64;
            std::fs::OpenOptions::new().write(true).open(f).unwrap().set_len(used / 2).unwrap();
        }),
    ];
    for (case, damage) in cases {
        let (_tmp, dir) = closed_store();
        damage(&dir.join("db").join("db"), &garbage);
        assert_corrupt(&dir, case);
    }

    // The start of the log may hold only page versions that later flushes superseded: then
    // damage there loses nothing and the store opens with all its records. Either way it is
    // never a panic, and never a store that silently lost records.
    let (_tmp, dir) = closed_store();
    let before = SledStore::open_read_only(&dir).unwrap().unwrap();
    let file = dir.join("db").join("db");
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len().min(4096);
    bytes[..n].copy_from_slice(&garbage[..n]);
    std::fs::write(&file, bytes).unwrap();
    let opened = SledStore::open(&dir, Operation::Apply).map(|s| s.snapshot());
    match opened {
        Err(Error::Corrupt { .. }) => assert_corrupt(&dir, "first 4 KiB overwritten"),
        Ok(Ok(snapshot)) => {
            assert_eq!(snapshot, before, "first 4 KiB overwritten: opened, but with other records");
            assert_eq!(SledStore::open_read_only(&dir).unwrap().unwrap(), before);
        }
        other => panic!("first 4 KiB overwritten: expected Corrupt or the same records, got {other:?}"),
    }
}

#[test]
fn damaged_sled_snapshot_file_is_corrupt_or_recovered_never_a_panic() {
    let (_tmp, dir) = closed_store();
    let mut snaps = 0;
    for e in std::fs::read_dir(dir.join("db")).unwrap() {
        let path = e.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("snap.") {
            std::fs::write(&path, b"garbage garbage garbage garbage").unwrap();
            snaps += 1;
        }
    }
    assert!(snaps > 0, "sled 0.34 writes a `snap.*` file");
    // sled may rebuild a damaged snapshot from the log; then every record must still be there.
    match SledStore::open(&dir, Operation::Apply) {
        Ok(store) => assert_eq!(store.snapshot().unwrap().serial, 5),
        Err(e @ Error::Corrupt { .. }) => assert!(e.hint().contains("backup")),
        Err(other) => panic!("expected Corrupt or a full recovery, got {other:?}"),
    }
}

#[test]
fn damaged_config_file_is_corrupt() {
    let (_tmp, dir) = closed_store();
    std::fs::write(dir.join("db").join("conf"), b"not a sled config at all, not at all").unwrap();
    assert_corrupt(&dir, "conf overwritten");
}

#[test]
fn unknown_format_version_is_incompatible() {
    let (_tmp, dir) = closed_store();
    {
        let db = sled::open(dir.join("db")).unwrap();
        db.insert("format_version", b"\"99\"".to_vec()).unwrap();
        db.flush().unwrap();
    }
    for result in
        [SledStore::open(&dir, Operation::Apply).map(|_| ()), SledStore::open_read_only(&dir).map(|_| ())]
    {
        match result {
            Err(e @ Error::Incompatible { .. }) => {
                assert_eq!(
                    e.to_string(),
                    "the state store has format version `99`, this mip reads version `1`"
                );
                assert!(
                    e.hint().starts_with("the state was written by a newer mip (format 99); upgrade mip"),
                    "{}",
                    e.hint()
                );
            }
            other => panic!("expected Incompatible, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded history (issue 18)

fn history_entry(serial: u64, operation: &str) -> HistoryEntry {
    HistoryEntry {
        serial,
        operation: operation.into(),
        summary: format!("run {serial}"),
        at_unix: 1_700_000_000 + serial,
        folded: None,
        outcome: None,
    }
}

#[test]
fn sled_history_keeps_the_limit_and_folds_older_operations_across_reopens() {
    let (_tmp, dir) = store_dir();
    for round in 0..3u64 {
        let store = SledStore::open(&dir, Operation::Apply).unwrap().with_history_limit(5);
        for i in 1..=10u64 {
            let serial = round * 10 + i;
            store
                .append_history(history_entry(serial, if serial % 2 == 0 { "apply" } else { "drift" }))
                .unwrap();
            assert!(store.history().unwrap().len() <= 6);
        }
    }
    let store = SledStore::open(&dir, Operation::StateHistory).unwrap();
    let history = store.history().unwrap();
    assert_eq!(history.len(), 6, "{history:#?}");
    let folded = history[0].folded.as_ref().expect("a summary in front");
    assert_eq!((folded.operations, folded.first_serial, history[0].serial), (25, 1, 25));
    assert_eq!(folded.by_operation.get("apply"), Some(&12));
    assert_eq!(folded.by_operation.get("drift"), Some(&13));
    assert_eq!(history[1..].iter().map(|e| e.serial).collect::<Vec<_>>(), [26, 27, 28, 29, 30]);
    // The default limit applies to a store opened without one.
    for serial in 31..=31 + mip_state::DEFAULT_HISTORY_LIMIT as u64 {
        store.append_history(history_entry(serial, "apply")).unwrap();
    }
    let history = store.history().unwrap();
    assert_eq!(history.len(), mip_state::DEFAULT_HISTORY_LIMIT + 1);
    assert_eq!(history[0].folded.as_ref().map(|f| f.operations), Some(31));
}

#[test]
fn sled_import_bounds_the_history_it_is_given() {
    let (_tmp, dir) = store_dir();
    let store = SledStore::open(&dir, Operation::StateMigrate).unwrap().with_history_limit(3);
    let snapshot = Snapshot { lineage: "l".into(), serial: 9, managed: Default::default() };
    let history: Vec<_> = (1..=9).map(|s| history_entry(s, "apply")).collect();
    store.import(&snapshot, &history).unwrap();
    let kept = store.history().unwrap();
    assert_eq!(kept.iter().map(|e| e.serial).collect::<Vec<_>>(), [6, 7, 8, 9]);
    assert_eq!(kept[0].folded.as_ref().map(|f| f.operations), Some(6));
    store.append_history(history_entry(10, "destroy")).unwrap();
    let kept = store.history().unwrap();
    assert_eq!(kept.iter().map(|e| e.serial).collect::<Vec<_>>(), [7, 8, 9, 10]);
    assert_eq!(kept[0].folded.as_ref().map(|f| f.operations), Some(7));
}
