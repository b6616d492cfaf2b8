#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeMap, BTreeSet};

use mip_core::ObjectRef;
use mip_state::{Error, HistoryEntry, ManagedEntry, Snapshot};
use proptest::prelude::*;

use super::*;

const STATE: &str = "mip-state";

fn addr(i: usize) -> ObjectRef {
    ObjectRef::new("v1", "Secret", Some(&format!("federation-{:05}", i / 3)), &format!("s-{i}"))
}

fn entry(i: usize, serial: u64) -> ManagedEntry {
    ManagedEntry {
        fingerprint: format!("sha256:{i:064x}"),
        uid: Some(format!("uid-{i}")),
        serial,
        secret_hashes: BTreeMap::from([("password".to_owned(), format!("sha256:{:064x}", i * 7))]),
        via: None,
    }
}

fn snapshot(indices: impl IntoIterator<Item = usize>) -> Snapshot {
    let managed = indices.into_iter().map(|i| (addr(i), entry(i, 1))).collect();
    Snapshot { lineage: "l".into(), serial: 1, managed }
}

fn history(n: u64) -> Vec<HistoryEntry> {
    (1..=n)
        .map(|s| HistoryEntry {
            serial: s,
            operation: "apply".into(),
            summary: format!("run {s}"),
            at_unix: s,
            folded: None,
            outcome: None,
        })
        .collect()
}

/// An in-memory namespace: the index Secret's data and the other Secrets' `chunk`.
#[derive(Debug, Default, Clone)]
struct Namespace {
    index: BTreeMap<String, Vec<u8>>,
    secrets: BTreeMap<String, Vec<u8>>,
}

impl Namespace {
    /// What the store's `write` does with a planned commit (before its deletions).
    fn apply(&mut self, commit: &Commit, chunk_bytes: usize) {
        for (blob, stored) in &commit.writes {
            for (name, part) in split(blob, stored, chunk_bytes) {
                self.secrets.insert(name, part.to_vec());
            }
        }
        self.index = commit.layout.inline.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect();
        self.index.insert("index.json".into(), serde_json::to_vec(&commit.index).unwrap());
    }

    fn stored(&self, blob: &BlobRef) -> Result<Vec<u8>, Damage> {
        if blob.parts == 0 {
            return self.index.get(&blob.name).cloned().ok_or(Damage::Missing { part: blob.name.clone() });
        }
        let mut stored = Vec::new();
        for name in blob.part_names() {
            stored.extend(self.secrets.get(&name).ok_or(Damage::Missing { part: name.clone() })?);
        }
        Ok(stored)
    }

    /// What the store's `read` does with it, without the retries.
    fn read(&self) -> Result<(Snapshot, Vec<HistoryEntry>, Layout), Damage> {
        let index: Index = serde_json::from_slice(&self.index["index.json"]).unwrap();
        check_index(STATE, &index)?;
        let mut assembler = Assembler::default();
        for (i, blob) in index.groups.iter().enumerate() {
            assembler.push(decode_group(blob, i, index.groups.len(), self.stored(blob)?)?)?;
        }
        assembler.finish(&index, &self.stored(&index.history)?)
    }
}

fn plan(
    snapshot: &Snapshot,
    history: &[HistoryEntry],
    previous: &Layout,
    changes: Changes<'_>,
    chunk_bytes: usize,
) -> Commit {
    plan_commit(STATE, snapshot, history, previous, changes, 1, chunk_bytes).unwrap()
}

fn names(layout: &Layout) -> Vec<String> {
    layout.groups.iter().map(|g| g.blob.name.clone()).collect()
}

#[test]
fn a_small_state_is_inline_in_the_index_secret_and_a_large_one_has_a_secret_per_group() {
    let small = snapshot(0..20);
    let commit = plan(&small, &history(3), &Layout::default(), Changes::ALL, 512 * 1024);
    assert!(commit.writes.is_empty(), "nothing but the index is written");
    assert_eq!(commit.index.chunks, 0);
    assert!(commit.index.groups.iter().chain([&commit.index.history]).all(|b| b.parts == 0));
    assert_eq!(commit.layout.inline.len(), commit.index.groups.len() + 1);

    let large = snapshot(0..3000);
    let commit = plan(&large, &history(3), &Layout::default(), Changes::ALL, 4 * 1024);
    assert!(commit.layout.inline.is_empty());
    assert_eq!(commit.writes.len(), commit.index.groups.len() + 1, "every group and the history");
    assert_eq!(commit.index.chunks, commit.writes.iter().map(|(b, _)| b.parts).sum::<usize>());
    assert!(commit.index.groups.len() >= 2, "{} groups", commit.index.groups.len());
}

#[test]
fn cuts_come_about_every_512_addresses_of_a_10000_federation_state() {
    let managed: BTreeMap<ObjectRef, ManagedEntry> =
        (0..30_000).map(|i| (addr(i), ManagedEntry::default())).collect();
    let cuts = cuts_of(&managed).len();
    assert!((30..=90).contains(&cuts), "{cuts} cuts in 30 000 addresses");
}

#[test]
fn a_group_with_a_flipped_byte_or_other_data_is_refused_naming_it_and_a_missing_one_is_missing() {
    let state = snapshot(0..3000);
    let mut ns = Namespace::default();
    let commit = plan(&state, &history(2), &Layout::default(), Changes::ALL, 16 * 1024);
    ns.apply(&commit, 16 * 1024);
    assert!(commit.index.groups.iter().all(|g| g.parts >= 1), "Secrets of their own");
    let (read, _, _) = ns.read().unwrap();
    assert_eq!(read, state);
    let second = commit.index.groups[1].clone();

    // One flipped byte in the middle of the second group's gzip stream.
    let mut flipped = ns.clone();
    let bytes = flipped.secrets.get_mut(&second.name).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    let damage = flipped.read().unwrap_err();
    assert!(matches!(damage, Damage::Gzip { .. } | Damage::Checksum { .. }), "{damage:?}");
    assert!(damage.to_string().starts_with(&format!("group `{}` (2 of ", second.name)), "{damage}");

    // Other, valid data of another group under its name: only the checksum tells.
    let mut swapped = ns.clone();
    let first = swapped.secrets[&commit.index.groups[0].name].clone();
    swapped.secrets.insert(second.name.clone(), first);
    let damage = swapped.read().unwrap_err();
    assert!(
        matches!(&damage, Damage::StoredSize { part, .. } | Damage::Checksum { part, .. } if part.contains(&second.name)),
        "{damage:?}"
    );

    // A group gone.
    let mut missing = ns.clone();
    missing.secrets.remove(&second.name);
    assert_eq!(missing.read().unwrap_err(), Damage::Missing { part: second.name.clone() });

    // An index that lost a group from its list no longer adds up.
    let mut index: Index = serde_json::from_slice(&ns.index["index.json"]).unwrap();
    index.groups.remove(1);
    let damage = check_index(STATE, &index).unwrap_err();
    assert!(matches!(damage, Damage::Index(_)), "{damage:?}");

    // Groups listed out of order.
    let mut index: Index = serde_json::from_slice(&ns.index["index.json"]).unwrap();
    index.groups.swap(0, 1);
    index.sha256 = digest(index.groups.iter().chain([&index.history]));
    let mut reordered = ns.clone();
    reordered.index.insert("index.json".into(), serde_json::to_vec(&index).unwrap());
    let damage = reordered.read().unwrap_err();
    assert!(matches!(damage, Damage::Content { .. }) && damage.to_string().contains("not after"), "{damage}");
}

#[test]
fn a_format_2_payload_is_read_and_its_next_commit_is_format_3_without_its_chunks() {
    let state = snapshot(0..40);
    let payload = serde_json::json!({
        "lineage": state.lineage, "serial": state.serial, "managed": state.managed, "history": history(2),
    });
    let json = serde_json::to_vec(&payload).unwrap();
    let stored = compress(&json).unwrap();
    let index = LegacyIndex {
        format_version: "2".into(),
        lineage: state.lineage.clone(),
        serial: state.serial,
        generation: 7,
        chunks: 3,
        size: json.len(),
        sha256: sha256(&json),
        encoding: Some(ENCODING_GZIP.into()),
        stored_size: Some(stored.len()),
    };
    let (read, read_history) = decode_legacy(&index, &stored).unwrap();
    assert_eq!((&read, read_history.len()), (&state, 2));
    let mut altered = stored.clone();
    altered.push(0);
    assert!(matches!(decode_legacy(&index, &altered), Err(Damage::StoredSize { .. })));

    // The next commit (one record) writes every group in format 3 and lists none of the old
    // chunks, so the store deletes them.
    let legacy = vec!["mip-state-g7-1".to_owned(), "mip-state-g7-2".to_owned()];
    let layout = Layout { legacy: legacy.clone(), ..Layout::default() };
    let mut next = read.clone();
    next.record(vec![(addr(1000), Some(entry(1000, 0)))]);
    let changed = BTreeSet::from([addr(1000)]);
    let commit =
        plan(&next, &read_history, &layout, Changes { managed: Some(&changed), history: false }, 100);
    assert_eq!(commit.index.format_version, "3");
    assert_eq!(commit.writes.len(), commit.index.groups.len() + 1);
    assert!(layout.secrets().is_superset(&legacy.iter().cloned().collect()));
    assert!(commit.layout.secrets().is_disjoint(&legacy.into_iter().collect()));
    let mut ns = Namespace::default();
    ns.apply(&commit, 100);
    let (upgraded, upgraded_history, _) = ns.read().unwrap();
    assert_eq!((upgraded, upgraded_history), (next, read_history));
}

#[test]
fn a_mip_before_format_3_reaches_its_version_check_and_says_upgrade() {
    let commit = plan(&snapshot(0..5), &history(1), &Layout::default(), Changes::ALL, 512 * 1024);
    let bytes = serde_json::to_vec(&commit.index).unwrap();
    // The index of formats 1 and 2, as that mip parses it before it compares the version.
    let old: LegacyIndex = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(old.format_version, "3");
    let refused = Error::Incompatible { found_version: old.format_version, reads: &["1", "2"] };
    assert!(refused.hint().contains("upgrade mip"), "{}", refused.hint());

    // And this mip, meeting a format after its own, whatever that index holds.
    let future: Version = serde_json::from_slice(br#"{"format_version": "4", "shards": 9}"#).unwrap();
    assert!(!CLUSTER_FORMATS_READ.contains(&future.format_version.as_str()));
    let refused = Error::Incompatible { found_version: future.format_version, reads: CLUSTER_FORMATS_READ };
    assert!(refused.hint().contains("newer mip (format 4); upgrade mip"), "{}", refused.hint());
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize),
    Remove(usize),
    Update(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..2500).prop_map(|i| Edit::Insert(2 * i + 1)),
        (0usize..2500).prop_map(|i| Edit::Remove(2 * i)),
        (0usize..2500).prop_map(|i| Edit::Update(2 * i)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the entries, the history and the Secret size, a commit reads back whole.
    #[test]
    fn a_commit_reads_back_as_written(
        indices in proptest::collection::btree_set(0usize..100_000, 0..1500),
        history_len in 0u64..60,
        chunk_bytes in prop_oneof![Just(200usize), Just(8 * 1024), Just(512 * 1024)],
    ) {
        let state = snapshot(indices);
        let history = history(history_len);
        let commit = plan(&state, &history, &Layout::default(), Changes::ALL, chunk_bytes);
        let mut ns = Namespace::default();
        ns.apply(&commit, chunk_bytes);
        let (read, read_history, layout) = ns.read().unwrap();
        prop_assert_eq!(read, state);
        prop_assert_eq!(read_history, history);
        prop_assert_eq!(names(&layout), names(&commit.layout));
        prop_assert!(ns.secrets.values().all(|s| s.len() <= chunk_bytes));
    }

    /// Cuts are content-defined: after inserting, removing or updating one record, the
    /// incremental commit lays the groups out as a commit from scratch would, rewrites one
    /// group (two when the record is a cut point), and leaves the history alone.
    #[test]
    fn one_record_changes_at_most_two_groups_and_the_incremental_layout_is_the_full_one(
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        // Small enough for a Secret per group.
        let chunk_bytes = 16 * 1024;
        let mut state = snapshot((0..2500).map(|i| 2 * i));
        let history = history(4);
        let mut ns = Namespace::default();
        let first = plan(&state, &history, &Layout::default(), Changes::ALL, chunk_bytes);
        ns.apply(&first, chunk_bytes);
        let (_, _, mut layout) = ns.read().unwrap();
        for edit in edits {
            let (i, record) = match edit {
                Edit::Insert(i) | Edit::Update(i) => (i, Some(entry(i, 0))),
                Edit::Remove(i) => (i, None),
            };
            let existed = state.managed.contains_key(&addr(i));
            state.record(vec![(addr(i), record)]);
            let changed = BTreeSet::from([addr(i)]);
            let commit = plan(&state, &history, &layout, Changes { managed: Some(&changed), history: false }, chunk_bytes);
            let scratch = plan(&state, &history, &Layout::default(), Changes::ALL, chunk_bytes);
            prop_assert_eq!(names(&commit.layout), names(&scratch.layout));
            let before: BTreeSet<String> = names(&layout).into_iter().collect();
            let new: Vec<String> = names(&commit.layout).into_iter().filter(|n| !before.contains(n)).collect();
            let written: Vec<String> = commit.writes.iter().map(|(b, _)| b.name.clone()).collect();
            prop_assert_eq!(&written, &new, "exactly the new groups are written");
            // An address that is a cut point splits its group when it comes (two new groups)
            // and joins two when it goes (one new group, one fewer).
            let splits = is_cut(&addr(i)) && !(matches!(edit, Edit::Update(_)) && existed);
            prop_assert!(new.len() <= if splits { 2 } else { 1 }, "{:?} wrote {} groups", edit, new.len());
            match edit {
                Edit::Remove(_) if !existed => prop_assert_eq!(new.len(), 0, "nothing removed, nothing written"),
                // (Removing the only entry of the last group leaves no group to write.)
                Edit::Remove(_) => {}
                _ => prop_assert!(!new.is_empty(), "{:?}", edit),
            }
            ns.apply(&commit, chunk_bytes);
            prop_assert_eq!(&ns.read().unwrap().0, &state);
            layout = commit.layout;
        }
    }
}
