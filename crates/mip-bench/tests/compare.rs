//! `mip-bench compare` end to end at N=2, one repetition, on real test clusters (the turn order
//! of later repetitions is `run::turn_order`'s unit test). The two "builds" are copies of one stub that logs how it was called (a real `mip`
//! is not a dependency this test can build): the harness, not mip, is under test. No timing is
//! asserted.

use mip_bench::compare::{self, CompareOptions, Operation};
use mip_bench::run::Schedule;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

/// Writes `dir/<build>/mip`, a stub that appends `<build> <command> <KUBECONFIG>` to `log` and
/// reports its requests as mip does with `MIP_STATS=1`.
fn stub(dir: &Path, build: &str, log: &Path) -> std::path::PathBuf {
    let path = dir.join(build).join("mip");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("stub dir");
    let script = format!(
        "#!/bin/sh\n\
         [ \"$1\" = --version ] && {{ echo 'mip stub'; exit 0; }}\n\
         echo \"{build} $1 ${{KUBECONFIG:-none}}\" >> '{}'\n\
         echo 'api requests: 3 reads, 0 writes (0 dry runs)' >&2\n",
        log.display()
    );
    std::fs::write(&path, script).expect("write stub");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod stub");
    path
}

#[test]
fn two_builds_run_in_lock_step_on_their_own_clusters() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("calls.log");
    let options = CompareOptions {
        schedule: Schedule {
            sizes: vec![2],
            repeat: 1,
            offline_size: 2,
            limit: Some(Duration::from_secs(60)),
        },
        new: stub(dir.path(), "new", &log),
        base: stub(dir.path(), "old", &log),
    };
    let results = compare::run(&options).expect("compare runs");
    let calls = std::fs::read_to_string(&log).expect("the stubs ran");
    let calls: Vec<Vec<&str>> = calls.lines().map(|l| l.split(' ').collect()).collect();
    let order: Vec<String> = calls.iter().map(|c| format!("{} {}", c[0], c[1])).collect();
    assert_eq!(
        order,
        [
            "new plan",
            "old plan", // offline
            "new plan",
            "old plan",
            "new apply",
            "old apply",
            "new plan",
            "old plan",
            "new apply",
            "old apply",
        ]
    );
    // Each build has its own cluster for all four operations.
    let kubeconfigs =
        |build: &str| -> Vec<&str> { calls[2..].iter().filter(|c| c[0] == build).map(|c| c[2]).collect() };
    let (new, old) = (kubeconfigs("new"), kubeconfigs("old"));
    assert!(new.iter().all(|k| *k == new[0]) && old.iter().all(|k| *k == old[0]), "{calls:?}");
    assert_ne!(new[0], old[0], "both builds on one cluster: {calls:?}");
    assert_ne!(new[0], "none");

    let operations: Vec<Operation> = results.rows.iter().map(|r| r.operation).collect();
    assert_eq!(operations.len(), 5, "four live operations and the offline plan at N=2: {operations:?}");
    assert!(results.rows.iter().all(|r| r.new.len() == 1 && r.old.len() == 1));
    let table = mip_bench::report::compare_markdown(&results);
    assert!(table.contains("| 2 | 19 | apply from empty |"), "{table}");
    assert!(table.contains("| 3 / 0 / 0 | 3 / 0 / 0 |"), "{table}");
}
