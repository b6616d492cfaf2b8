//! The bytes of the cluster state, without IO: the index, the content-defined groups of the
//! managed entries, the history blob, gzip and checksums. The store in [`super`] moves these
//! bytes to and from Secrets; everything that decides what they are, and whether what was read
//! is what the index promised, is here, so it is tested without an API server.
//!
//! # Why content-defined groups
//!
//! A commit used to rewrite the whole payload (16 MB of JSON at 10 000 federations). Now the
//! managed entries are cut into groups, each gzipped and stored on its own under a name derived
//! from its SHA-256, and the index lists them: a commit writes the groups whose content changed
//! and the index, nothing else. A group ends after an address whose [`cut_hash`] is 0 modulo
//! [`CUT_MODULUS`] (or at the last address). The cut depends on that address alone, not on
//! where the previous group began, so inserting or removing one record changes one group (two
//! when the record is itself a cut point: it splits or joins its group with the next), never
//! the groups after it, as fixed-size cuts would.
//!
//! The cut function is the writer's choice: readers take the groups the index lists and never
//! recompute cuts. A writer whose function differs rewrites the groups once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use mip_core::ObjectRef;
use mip_state::{Error, HistoryEntry, ManagedEntry, Snapshot};
use serde::{Deserialize, Serialize};

/// The format this store writes: 3, the managed entries in content-defined groups, each
/// gzipped in its own Secret (or inline in the index Secret while the whole state fits one).
/// A mip that reads formats 1 and 2 only refuses it with [`Error::Incompatible`], whose hint
/// says to upgrade mip (the index keeps the fields that mip requires, so it gets that far).
pub const CLUSTER_FORMAT_VERSION: &str = "3";

/// The formats this store reads, oldest first: 1 (one plain JSON payload), 2 (the same,
/// gzipped) and 3. A state in format 1 or 2 is rewritten as 3 by its next commit.
pub const CLUSTER_FORMATS_READ: &[&str] = &["1", "2", CLUSTER_FORMAT_VERSION];

/// The one encoding of formats 2 and 3.
pub(super) const ENCODING_GZIP: &str = "gzip";

/// A group ends after an address whose [`cut_hash`] is 0 modulo this: 512 entries per group on
/// average, so a one-record commit at 10 000 federations (30 000 entries) writes one group of
/// about 300 kB of JSON (about 140 kB stored) instead of the whole 16 MB. The cuts fall at
/// random, so sizes spread (there: 50 groups of 2 to 2 466 entries, the largest 700 kB
/// stored, in two Secrets); no size bound evens them out yet.
pub(super) const CUT_MODULUS: u64 = 512;

/// Only the version of an `index.json`: read first, so that a format this mip does not know
/// (whatever its shape) is refused as [`Error::Incompatible`], not as unreadable.
#[derive(Debug, Deserialize)]
pub(super) struct Version {
    pub format_version: String,
}

/// The `index.json` of formats 1 and 2: one payload, cut into fixed-size chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LegacyIndex {
    pub format_version: String,
    pub lineage: String,
    pub serial: u64,
    pub generation: u64,
    pub chunks: usize,
    /// Bytes of the payload's JSON, uncompressed.
    pub size: usize,
    /// Over the uncompressed JSON.
    pub sha256: String,
    /// `gzip` (format 2); absent in format 1 (plain JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Bytes in the chunks, as stored (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_size: Option<usize>,
}

/// The `index.json` of format 3, the commit point.
///
/// `chunks`, `size` and `sha256` are required by the index of formats 1 and 2 ([`LegacyIndex`]):
/// a mip before format 3 parses them before it looks at the version, so they are kept (with a
/// meaning in this format) for that mip to reach its version check and say "upgrade mip"
/// rather than "corrupt".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Index {
    pub format_version: String,
    pub lineage: String,
    pub serial: u64,
    /// Counts commits; labels the Secrets a commit wrote (for people, not for the sweep).
    pub generation: u64,
    /// Secrets besides the index: the sum of the blobs' `parts`.
    pub chunks: usize,
    /// Bytes of JSON of all blobs, uncompressed.
    pub size: usize,
    /// [`digest`] of the blobs' checksums, in order: one checksum of the whole state.
    pub sha256: String,
    /// Always `gzip`.
    pub encoding: String,
    /// Bytes of all blobs as stored.
    pub stored_size: usize,
    /// The managed entries, in address order.
    pub groups: Vec<BlobRef>,
    /// The history.
    pub history: BlobRef,
}

/// One gzipped JSON document of the state (a group of managed entries, or the history), as
/// the index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BlobRef {
    /// `<state>-g<first 16 hex digits of sha256>`: the Secret holding it (its first part), or
    /// its key in the index Secret when inline. Content-addressed: a name is written once and
    /// stays as long as an index lists it.
    pub name: String,
    /// `sha256:<hex>` of the uncompressed JSON.
    pub sha256: String,
    /// Bytes of the JSON, uncompressed.
    pub size: usize,
    /// Bytes stored (gzip).
    pub stored_size: usize,
    /// Managed entries in a group; history entries in the history.
    pub entries: usize,
    /// Secrets it spans (`name`, `name-1`, …; a group is larger than one Secret only with a
    /// small `chunk_bytes` or a run of addresses without a cut); 0 when inline.
    pub parts: usize,
}

impl BlobRef {
    /// The Secrets holding it, in order; none when inline.
    pub fn part_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.parts).map(|i| if i == 0 { self.name.clone() } else { format!("{}-{i}", self.name) })
    }
}

/// A group as the writer knows it between commits: its addresses' range and its reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Group {
    pub first: ObjectRef,
    pub last: ObjectRef,
    pub blob: BlobRef,
}

/// Where the parts of the current state are, as a writer needs them for the next commit.
#[derive(Debug, Clone, Default)]
pub(super) struct Layout {
    pub groups: Vec<Group>,
    /// `None` only before the first format-3 commit.
    pub history: Option<BlobRef>,
    /// The stored bytes of the inline blobs, by name (empty when the groups have Secrets of
    /// their own), so that the next inline commit need not re-encode unchanged groups.
    pub inline: BTreeMap<String, Arc<Vec<u8>>>,
    /// The cut points among the managed addresses, kept up to date commit by commit; `None`
    /// after a read (the next commit computes them from every address).
    pub cuts: Option<BTreeSet<ObjectRef>>,
    /// The chunk Secrets of a format 1 or 2 state, unreferenced after the first format-3
    /// commit.
    pub legacy: Vec<String>,
}

impl Layout {
    /// The Secrets besides the index that the state is made of now (the sweep keeps these).
    pub fn secrets(&self) -> BTreeSet<String> {
        let blobs = self.groups.iter().map(|g| &g.blob).chain(&self.history);
        blobs.flat_map(BlobRef::part_names).chain(self.legacy.iter().cloned()).collect()
    }
}

/// What changed since the layout the writer holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Changes<'a> {
    /// The addresses recorded (set or removed); `None`: any may have changed (a new state, an
    /// import, or the first commit after a read).
    pub managed: Option<&'a BTreeSet<ObjectRef>>,
    pub history: bool,
}

impl Changes<'_> {
    pub const ALL: Changes<'static> = Changes { managed: None, history: true };
}

/// A commit, planned: the index to write, the blobs to write before it (with their stored
/// bytes, split into `parts` Secrets of at most `chunk_bytes`), and the layout after it.
#[derive(Debug)]
pub(super) struct Commit {
    pub index: Index,
    pub writes: Vec<(BlobRef, Arc<Vec<u8>>)>,
    pub layout: Layout,
}

// ---------------------------------------------------------------------------------------------
// Cuts

/// The hash deciding cuts: FNV-1a over the address's text form, then the 64-bit finaliser of
/// MurmurHash3 (FNV's low bits, which the modulus takes, depend on the input's low bits only).
/// Stable across platforms and releases; not a security boundary (an address chosen to cut
/// nowhere only makes one group large, which parts absorb).
pub(super) fn cut_hash(addr: &ObjectRef) -> u64 {
    struct Fnv(u64);
    impl fmt::Write for Fnv {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for byte in s.bytes() {
                self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            Ok(())
        }
    }
    let mut fnv = Fnv(0xcbf2_9ce4_8422_2325);
    let _ = fmt::Write::write_fmt(&mut fnv, format_args!("{addr}"));
    let mut h = fnv.0;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Whether a group ends after `addr`.
pub(super) fn is_cut(addr: &ObjectRef) -> bool {
    cut_hash(addr).is_multiple_of(CUT_MODULUS)
}

/// The cut points among `managed`, from every address.
pub(super) fn cuts_of(managed: &BTreeMap<ObjectRef, ManagedEntry>) -> BTreeSet<ObjectRef> {
    managed.keys().filter(|a| is_cut(a)).cloned().collect()
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Gzip: the fastest level (the state is mostly hex digests, which no level compresses much
/// further; the JSON around them compresses well at any level).
fn compress(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    use std::io::Write as _;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 3), flate2::Compression::fast());
    encoder.write_all(bytes).map_err(internal)?;
    encoder.finish().map_err(internal)
}

/// Un-gzips at most `size + 1` bytes (a blob larger than its index says is corrupt, and no
/// crafted Secret can make mip allocate more than the index announced).
fn decompress(stored: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::with_capacity(size);
    flate2::read::GzDecoder::new(stored).take(size as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

fn internal(reason: impl fmt::Display) -> Error {
    Error::Internal { reason: reason.to_string() }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", mip_core::canonical::sha256_hex(bytes))
}

/// The index's `sha256`: over the blobs' checksums, one per line, in order.
pub(super) fn digest<'a>(blobs: impl IntoIterator<Item = &'a BlobRef>) -> String {
    let lines: String = blobs.into_iter().map(|b| format!("{}\n", b.sha256)).collect();
    sha256(lines.as_bytes())
}

/// The name of a blob with checksum `sha256` in state `state`.
pub(super) fn blob_name(state: &str, sha256: &str) -> String {
    let hex = sha256.strip_prefix("sha256:").unwrap_or(sha256);
    format!("{state}-g{}", hex.get(..16).unwrap_or(hex))
}

/// A group's JSON: an object of address to entry, in address order.
struct GroupJson<'a>(Vec<(&'a ObjectRef, &'a ManagedEntry)>);

impl Serialize for GroupJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().copied())
    }
}

/// `value` as JSON, gzipped, named by its checksum; `parts` 0 (the placement decides).
fn encode<T: Serialize>(state: &str, value: &T, entries: usize) -> Result<(BlobRef, Arc<Vec<u8>>), Error> {
    let json = serde_json::to_vec(value).map_err(internal)?;
    let stored = compress(&json)?;
    let sha256 = sha256(&json);
    let blob = BlobRef {
        name: blob_name(state, &sha256),
        sha256,
        size: json.len(),
        stored_size: stored.len(),
        entries,
        parts: 0,
    };
    Ok((blob, Arc::new(stored)))
}

fn encode_group<'a>(
    state: &str,
    entries: impl Iterator<Item = (&'a ObjectRef, &'a ManagedEntry)>,
) -> Result<(BlobRef, Arc<Vec<u8>>), Error> {
    let group = GroupJson(entries.collect());
    encode(state, &group, group.0.len())
}

fn encode_history(state: &str, history: &[HistoryEntry]) -> Result<(BlobRef, Arc<Vec<u8>>), Error> {
    encode(state, &history, history.len())
}

/// One blob of the next commit, before placement.
struct Pending {
    /// The group's first and last address; `None` for the history.
    range: Option<(ObjectRef, ObjectRef)>,
    blob: BlobRef,
    /// Its stored bytes, when known without a read.
    stored: Option<Arc<Vec<u8>>>,
    /// Whether `blob` is the previous commit's reference (already where its `parts` say).
    placed: bool,
}

/// Plans the commit of `snapshot` and `history` after `previous`: cuts the managed entries,
/// reuses every group whose addresses and entries did not change, encodes the others, and
/// places the blobs: all inline in the index Secret when their stored bytes fit in
/// `chunk_bytes`, else each in Secrets of its own (only those not already written).
///
/// # Errors
/// [`Error::Internal`] if JSON or gzip fail (they do not, on values of these types).
pub(super) fn plan_commit(
    state: &str,
    snapshot: &Snapshot,
    history: &[HistoryEntry],
    previous: &Layout,
    changes: Changes<'_>,
    generation: u64,
    chunk_bytes: usize,
) -> Result<Commit, Error> {
    let managed = &snapshot.managed;
    let chunk_bytes = chunk_bytes.max(1);
    let cuts = next_cuts(managed, changes.managed, previous.cuts.as_ref());
    let mut pending = pending_groups(state, managed, &cuts, previous, changes.managed)?;
    pending.push(pending_history(state, history, previous, changes.history)?);
    let placed = place(state, managed, history, previous, pending, chunk_bytes)?;
    let history_ref = placed.history.ok_or_else(|| internal("a commit without its history"))?;
    let index = index_of(snapshot, generation, &placed.groups, &history_ref);
    let layout = Layout {
        groups: placed.groups,
        history: Some(history_ref),
        inline: placed.inline,
        cuts: Some(cuts),
        legacy: Vec::new(),
    };
    Ok(Commit { index, writes: placed.writes, layout })
}

/// The cut points among the managed addresses: the previous ones updated address by changed
/// address, or all computed afresh when either is unknown.
fn next_cuts(
    managed: &BTreeMap<ObjectRef, ManagedEntry>,
    changed: Option<&BTreeSet<ObjectRef>>,
    previous: Option<&BTreeSet<ObjectRef>>,
) -> BTreeSet<ObjectRef> {
    match (changed, previous) {
        (Some(changed), Some(cuts)) => {
            let mut cuts = cuts.clone();
            for addr in changed {
                if managed.contains_key(addr) && is_cut(addr) {
                    cuts.insert(addr.clone());
                } else {
                    cuts.remove(addr);
                }
            }
            cuts
        }
        _ => cuts_of(managed),
    }
}

/// One pending blob per group of addresses between cuts: the previous commit's where the
/// group's addresses and entries did not change, else encoded afresh.
fn pending_groups(
    state: &str,
    managed: &BTreeMap<ObjectRef, ManagedEntry>,
    cuts: &BTreeSet<ObjectRef>,
    previous: &Layout,
    changed: Option<&BTreeSet<ObjectRef>>,
) -> Result<Vec<Pending>, Error> {
    let unchanged = |first: &ObjectRef, last: &ObjectRef| {
        changed.is_some_and(|changed| changed.range(first..=last).next().is_none())
    };
    let previous_by_last: BTreeMap<&ObjectRef, &Group> =
        previous.groups.iter().map(|g| (&g.last, g)).collect();

    let mut pending = Vec::new();
    let mut lower = Bound::Unbounded;
    let uppers = cuts.iter().map(Bound::Included).chain([Bound::Unbounded]);
    for upper in uppers {
        let bounds = (lower, upper);
        lower = match upper {
            Bound::Included(cut) => Bound::Excluded(cut),
            _ => Bound::Unbounded,
        };
        let Some((first, _)) = managed.range::<ObjectRef, _>(bounds).next() else { continue };
        let last = match upper {
            Bound::Included(cut) => cut,
            _ => managed.last_key_value().map_or(first, |(last, _)| last),
        };
        let reused = previous_by_last.get(last).filter(|g| g.first == *first && unchanged(first, last));
        let item = match reused {
            Some(group) => Pending {
                range: Some((group.first.clone(), group.last.clone())),
                blob: group.blob.clone(),
                stored: previous.inline.get(&group.blob.name).cloned(),
                placed: true,
            },
            None => {
                let (blob, stored) = encode_group(state, managed.range::<ObjectRef, _>(bounds))?;
                Pending {
                    range: Some((first.clone(), last.clone())),
                    blob,
                    stored: Some(stored),
                    placed: false,
                }
            }
        };
        pending.push(item);
    }
    Ok(pending)
}

/// The history's pending blob: the previous commit's when it did not change, else encoded
/// afresh.
fn pending_history(
    state: &str,
    history: &[HistoryEntry],
    previous: &Layout,
    changed: bool,
) -> Result<Pending, Error> {
    Ok(match (&previous.history, changed) {
        (Some(blob), false) => Pending {
            range: None,
            blob: blob.clone(),
            stored: previous.inline.get(&blob.name).cloned(),
            placed: true,
        },
        _ => {
            let (blob, stored) = encode_history(state, history)?;
            Pending { range: None, blob, stored: Some(stored), placed: false }
        }
    })
}

/// The blobs of a commit, placed.
struct Placed {
    /// The blobs to write before the index, with their stored bytes.
    writes: Vec<(BlobRef, Arc<Vec<u8>>)>,
    /// The stored bytes of the inline blobs, by name.
    inline: BTreeMap<String, Arc<Vec<u8>>>,
    groups: Vec<Group>,
    history: Option<BlobRef>,
}

/// Places the pending blobs: all inline in the index Secret when their stored bytes fit in
/// `chunk_bytes` (one GET reads a small state), else each in Secrets of its own, written only
/// when not already there.
fn place(
    state: &str,
    managed: &BTreeMap<ObjectRef, ManagedEntry>,
    history: &[HistoryEntry],
    previous: &Layout,
    pending: Vec<Pending>,
    chunk_bytes: usize,
) -> Result<Placed, Error> {
    let total: usize = pending.iter().map(|p| p.blob.stored_size).sum();
    let inline = total <= chunk_bytes;
    let previous_external: BTreeMap<&str, &BlobRef> = previous
        .groups
        .iter()
        .map(|g| &g.blob)
        .chain(&previous.history)
        .filter(|b| b.parts > 0)
        .map(|b| (b.name.as_str(), b))
        .collect();
    let mut placed =
        Placed { writes: Vec::new(), inline: BTreeMap::new(), groups: Vec::new(), history: None };
    for mut item in pending {
        if inline {
            let bytes = stored_bytes(state, managed, history, &item)?;
            item.blob.parts = 0;
            placed.inline.insert(item.blob.name.clone(), bytes);
        } else if item.placed && item.blob.parts > 0 {
            // Written by an earlier commit, listed by the current index: still there.
        } else if let Some(written) = previous_external.get(item.blob.name.as_str()) {
            // Same content as a blob the current index lists (a record that changed nothing).
            item.blob = (*written).clone();
        } else {
            let bytes = stored_bytes(state, managed, history, &item)?;
            item.blob.parts = bytes.len().div_ceil(chunk_bytes).max(1);
            placed.writes.push((item.blob.clone(), bytes));
        }
        match item.range {
            Some((first, last)) => placed.groups.push(Group { first, last, blob: item.blob }),
            None => placed.history = Some(item.blob),
        }
    }
    Ok(placed)
}

/// A pending blob's stored bytes: kept from before, or encoded again.
fn stored_bytes(
    state: &str,
    managed: &BTreeMap<ObjectRef, ManagedEntry>,
    history: &[HistoryEntry],
    item: &Pending,
) -> Result<Arc<Vec<u8>>, Error> {
    match (&item.stored, &item.range) {
        (Some(stored), _) => Ok(Arc::clone(stored)),
        (None, Some((first, last))) => Ok(encode_group(state, managed.range(first..=last))?.1),
        (None, None) => Ok(encode_history(state, history)?.1),
    }
}

/// The index of a commit of `snapshot` made of `groups` and the history.
fn index_of(snapshot: &Snapshot, generation: u64, groups: &[Group], history_ref: &BlobRef) -> Index {
    let blobs = || groups.iter().map(|g| &g.blob).chain([history_ref]);
    Index {
        format_version: CLUSTER_FORMAT_VERSION.to_owned(),
        lineage: snapshot.lineage.clone(),
        serial: snapshot.serial,
        generation,
        chunks: blobs().map(|b| b.parts).sum(),
        size: blobs().map(|b| b.size).sum(),
        sha256: digest(blobs()),
        encoding: ENCODING_GZIP.to_owned(),
        stored_size: blobs().map(|b| b.stored_size).sum(),
        groups: groups.iter().map(|g| g.blob.clone()).collect(),
        history: history_ref.clone(),
    }
}

/// Splits a blob's stored bytes into its parts' Secrets: `(name, bytes)`, in order.
pub(super) fn split<'a>(blob: &'a BlobRef, stored: &'a [u8], chunk_bytes: usize) -> Vec<(String, &'a [u8])> {
    blob.part_names().zip(stored.chunks(chunk_bytes.max(1))).collect()
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// What is wrong with a state that was read: the reason of [`Error::CorruptRemote`]. Each
/// names the part (`group `…` (i of n)`, `the history `…``, `the chunks of generation G`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Damage {
    /// The index itself does not add up.
    Index(String),
    /// A part the index lists is not there.
    Missing { part: String },
    /// The stored bytes are not as many as the index says.
    StoredSize { part: String, found: usize, expected: usize },
    /// The stored bytes are not gzip, or inflate beyond the announced size.
    Gzip { part: String, reason: String },
    /// The uncompressed bytes are not the ones the index names.
    Checksum { part: String, size: usize, sha256: String, expected_size: usize, expected_sha256: String },
    /// The checked bytes do not hold what they should (order, counts, lineage).
    Content { part: String, reason: String },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Index(reason) => write!(f, "the index {reason}"),
            Damage::Missing { part } => write!(f, "{part} is missing"),
            Damage::StoredSize { part, found, expected } => {
                write!(f, "{part} holds {found} bytes, the index says {expected} stored bytes")
            }
            Damage::Gzip { part, reason } => write!(
                f,
                "{part} cannot be un-gzipped ({reason}): it does not match the index's size and checksum"
            ),
            Damage::Checksum { part, size, sha256, expected_size, expected_sha256 } => write!(
                f,
                "{part} holds {size} bytes with checksum `{sha256}`, the index says {expected_size} bytes with `{expected_sha256}`"
            ),
            Damage::Content { part, reason } => write!(f, "{part} {reason}"),
        }
    }
}

impl Damage {
    /// A missing Secret or key named with the blob it belongs to (`Secret `…` of group `…` (2
    /// of 50)`); other damage names its blob already.
    pub fn of(self, blob: String) -> Damage {
        match self {
            Damage::Missing { part } => Damage::Missing { part: format!("{part} of {blob}") },
            other => other,
        }
    }
}

/// Un-gzips `stored` and checks it against `size` and `sha256`.
fn unpack(part: &str, stored: &[u8], size: usize, expected_sha256: &str) -> Result<Vec<u8>, Damage> {
    let json = decompress(stored, size)
        .map_err(|e| Damage::Gzip { part: part.to_owned(), reason: e.to_string() })?;
    let found = sha256(&json);
    if json.len() != size || found != expected_sha256 {
        return Err(Damage::Checksum {
            part: part.to_owned(),
            size: json.len(),
            sha256: found,
            expected_size: size,
            expected_sha256: expected_sha256.to_owned(),
        });
    }
    Ok(json)
}

/// Checks a blob's stored bytes against its reference; its JSON.
pub(super) fn unpack_blob(part: &str, blob: &BlobRef, stored: &[u8]) -> Result<Vec<u8>, Damage> {
    if stored.len() != blob.stored_size {
        return Err(Damage::StoredSize {
            part: part.to_owned(),
            found: stored.len(),
            expected: blob.stored_size,
        });
    }
    unpack(part, stored, blob.size, &blob.sha256)
}

/// Checks that a format-3 index adds up (totals, the digest, names of this state), before any
/// group is read.
pub(super) fn check_index(state: &str, index: &Index) -> Result<(), Damage> {
    let blobs = || index.groups.iter().chain([&index.history]);
    let prefix = format!("{state}-g");
    if let Some(blob) = blobs().find(|b| !b.name.starts_with(&prefix)) {
        return Err(Damage::Index(format!("names `{}`, not a part of state `{state}`", blob.name)));
    }
    let (chunks, size, stored): (usize, usize, usize) =
        (blobs().map(|b| b.parts).sum(), blobs().map(|b| b.size).sum(), blobs().map(|b| b.stored_size).sum());
    if (chunks, size, stored) != (index.chunks, index.size, index.stored_size) {
        return Err(Damage::Index(format!(
            "lists parts of {chunks} Secrets, {size} bytes, {stored} stored, but says {} Secrets, {} bytes, {} stored",
            index.chunks, index.size, index.stored_size
        )));
    }
    let found = digest(blobs());
    if found != index.sha256 {
        return Err(Damage::Index(format!(
            "lists parts whose checksums digest to `{found}`, but says `{}`",
            index.sha256
        )));
    }
    if index.encoding != ENCODING_GZIP {
        return Err(Damage::Index(format!("has encoding `{}`, not `{ENCODING_GZIP}`", index.encoding)));
    }
    Ok(())
}

/// How a part is named in messages: `group `N-g…` (2 of 60)`.
pub(super) fn group_part(blob: &BlobRef, i: usize, of: usize) -> String {
    format!("group `{}` ({} of {of})", blob.name, i + 1)
}

/// How the history is named in messages.
pub(super) fn history_part(blob: &BlobRef) -> String {
    format!("the history `{}`", blob.name)
}

/// A group's entries as its JSON lists them, in that order (a map would sort them again, one
/// comparison of addresses per level of the tree and entry; kept in order, the whole state is
/// built at once, from sorted input, at the end).
struct Entries(Vec<(ObjectRef, ManagedEntry)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of address to entry")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry()? {
                    entries.push(pair);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Puts a format-3 state together from its checked blobs, in the index's order.
#[derive(Debug, Default)]
pub(super) struct Assembler {
    /// Every entry so far, in strictly increasing address order (checked).
    managed: Vec<(ObjectRef, ManagedEntry)>,
    groups: Vec<Group>,
    inline: BTreeMap<String, Arc<Vec<u8>>>,
}

/// One group read and checked on its own (size, checksum, entry count, address order within
/// it): independent of the other groups, so a reader decodes several at once.
#[derive(Debug)]
pub(super) struct DecodedGroup {
    blob: BlobRef,
    part: String,
    entries: Vec<(ObjectRef, ManagedEntry)>,
    /// The stored bytes, kept when the group is inline (the next inline commit reuses them).
    inline: Option<Arc<Vec<u8>>>,
}

/// Checks and decodes group `i` of `of` from its stored bytes.
pub(super) fn decode_group(
    blob: &BlobRef,
    i: usize,
    of: usize,
    stored: Vec<u8>,
) -> Result<DecodedGroup, Damage> {
    let part = group_part(blob, i, of);
    let json = unpack_blob(&part, blob, &stored)?;
    let Entries(entries) = serde_json::from_slice(&json)
        .map_err(|e| Damage::Content { part: part.clone(), reason: format!("cannot be read: {e}") })?;
    if entries.is_empty() {
        return Err(Damage::Content { part, reason: "holds no entry".to_owned() });
    }
    if entries.len() != blob.entries {
        return Err(Damage::Content {
            part,
            reason: format!("holds {} entries, the index says {}", entries.len(), blob.entries),
        });
    }
    if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 >= pair[1].0) {
        return Err(Damage::Content {
            part,
            reason: format!("lists `{}` after `{}`, out of address order", pair[1].0, pair[0].0),
        });
    }
    let inline = (blob.parts == 0).then(|| Arc::new(stored));
    Ok(DecodedGroup { blob: blob.clone(), part, entries, inline })
}

impl Assembler {
    /// Appends the next group; its addresses must follow the previous group's.
    pub fn push(&mut self, group: DecodedGroup) -> Result<(), Damage> {
        let DecodedGroup { blob, part, entries, inline } = group;
        let (Some((first, _)), Some((last, _))) = (entries.first(), entries.last()) else {
            return Err(Damage::Content { part, reason: "holds no entry".to_owned() });
        };
        if let Some(previous) = self.groups.last().filter(|g| g.last >= *first) {
            return Err(Damage::Content {
                part,
                reason: format!(
                    "begins at `{first}`, not after `{}` where the group before it ends",
                    previous.last
                ),
            });
        }
        let group = Group { first: first.clone(), last: last.clone(), blob };
        if let Some(stored) = inline {
            self.inline.insert(group.blob.name.clone(), stored);
        }
        self.groups.push(group);
        self.managed.extend(entries);
        Ok(())
    }

    /// The state, with the history's stored bytes checked against `blob`.
    pub fn finish(
        mut self,
        index: &Index,
        stored_history: &[u8],
    ) -> Result<(Snapshot, Vec<HistoryEntry>, Layout), Damage> {
        let blob = &index.history;
        let part = history_part(blob);
        let json = unpack_blob(&part, blob, stored_history)?;
        let history: Vec<HistoryEntry> = serde_json::from_slice(&json)
            .map_err(|e| Damage::Content { part: part.clone(), reason: format!("cannot be read: {e}") })?;
        if history.len() != blob.entries {
            return Err(Damage::Content {
                part,
                reason: format!("holds {} entries, the index says {}", history.len(), blob.entries),
            });
        }
        if blob.parts == 0 {
            self.inline.insert(blob.name.clone(), Arc::new(stored_history.to_vec()));
        }
        // Sorted and without duplicates (checked group by group): built in one pass.
        let managed = self.managed.into_iter().collect();
        let snapshot = Snapshot { lineage: index.lineage.clone(), serial: index.serial, managed };
        let layout = Layout {
            groups: self.groups,
            history: Some(blob.clone()),
            inline: self.inline,
            cuts: None,
            legacy: Vec::new(),
        };
        Ok((snapshot, history, layout))
    }
}

/// What the chunks of formats 1 and 2 hold, concatenated.
#[derive(Debug, Deserialize)]
struct LegacyPayload {
    #[serde(flatten)]
    snapshot: Snapshot,
    history: Vec<HistoryEntry>,
}

/// Reads the payload of a format 1 or 2 state (its chunks concatenated), checked against its
/// index.
pub(super) fn decode_legacy(
    index: &LegacyIndex,
    stored: &[u8],
) -> Result<(Snapshot, Vec<HistoryEntry>), Damage> {
    let part = format!("the chunks of generation {}", index.generation);
    let json = match (index.format_version.as_str(), index.encoding.as_deref()) {
        ("1", None) => {
            let found = sha256(stored);
            if stored.len() != index.size || found != index.sha256 {
                return Err(Damage::Checksum {
                    part,
                    size: stored.len(),
                    sha256: found,
                    expected_size: index.size,
                    expected_sha256: index.sha256.clone(),
                });
            }
            stored.to_vec()
        }
        ("2", Some(ENCODING_GZIP)) => {
            if let Some(expected) = index.stored_size.filter(|expected| *expected != stored.len()) {
                return Err(Damage::StoredSize { part, found: stored.len(), expected });
            }
            unpack(&part, stored, index.size, &index.sha256)?
        }
        (version, encoding) => {
            return Err(Damage::Index(format!(
                "has format {version} with encoding `{}`, not a combination mip writes",
                encoding.unwrap_or("none")
            )));
        }
    };
    let payload: LegacyPayload = serde_json::from_slice(&json)
        .map_err(|e| Damage::Content { part: part.clone(), reason: format!("cannot be read: {e}") })?;
    if payload.snapshot.lineage != index.lineage || payload.snapshot.serial != index.serial {
        return Err(Damage::Content {
            part,
            reason: format!(
                "hold lineage `{}` serial {}, the index lineage `{}` serial {}",
                payload.snapshot.lineage, payload.snapshot.serial, index.lineage, index.serial
            ),
        });
    }
    Ok((payload.snapshot, payload.history))
}

#[cfg(test)]
mod tests;
