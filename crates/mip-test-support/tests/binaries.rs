//! The binaries are built once and reused: a second run of `build.sh` is a cache hit, and
//! starting clusters does not rebuild or touch them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use mip_test_support::binaries::{self, BINARIES};
use mip_test_support::{TestCluster, TestClusterOptions, pid_alive};

fn modification_times(bin_dir: &Path) -> BTreeMap<&'static str, SystemTime> {
    BINARIES
        .iter()
        .map(|binary| {
            let path = bin_dir.join(binary);
            let metadata =
                std::fs::metadata(&path).unwrap_or_else(|error| panic!("`{}`: {error}", path.display()));
            (*binary, metadata.modified().expect("modification time"))
        })
        .collect()
}

#[test]
fn starting_twice_reuses_the_cached_binaries() {
    // On a cold machine this first call builds; every later one must be a cache hit.
    let first = binaries::build().expect("build.sh");
    let before = modification_times(&first.bin_dir);

    let second = binaries::build().expect("build.sh");
    assert!(second.cache_hit, "second build.sh run is not a cache hit:\n{}", second.log);
    assert!(!second.log.contains("go build"), "second build.sh run compiled:\n{}", second.log);
    assert_eq!(second.bin_dir, first.bin_dir);

    for round in 1..=2 {
        let cluster = TestCluster::start(TestClusterOptions::default());
        assert_eq!(cluster.bin_dir(), binaries::bin_dir().expect("bin dir"), "round {round}");
        let data_dir = cluster.data_dir().to_owned();
        let pids = cluster.component_pids();
        assert_eq!(pids.len(), 3, "{pids:?}");
        drop(cluster);
        // Dropping a dedicated cluster stops it at once.
        for (name, pid) in pids {
            assert!(!pid_alive(pid), "round {round}: {name} (pid {pid}) survived the drop");
        }
        assert!(!data_dir.exists(), "round {round}: `{}` survived the drop", data_dir.display());
    }

    assert_eq!(modification_times(&first.bin_dir), before, "binaries were rewritten");
}
