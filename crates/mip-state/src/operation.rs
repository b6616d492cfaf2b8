//! [`Operation`]: what a process does with a store, as its lock and its history entries name it.
//!
//! On disk and in the cluster an operation is a plain string (`"apply"`, `"state rm"`, …), in
//! `lock.json`, in the Lease's annotation and in every history entry; [`Operation`] reads and
//! writes exactly those strings, so stores written by earlier builds read as they did.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// What a process does with a store: the command that takes its lock or records a history
/// entry, a reader's brief lock, or the summary entry of the history.
///
/// An operation *is* its name ([`as_str`](Operation::as_str)): equality, order and hash are
/// those of the name, so it sorts and counts like the string stored before it was typed.
#[derive(Debug, Clone)]
pub enum Operation {
    /// `mip apply`.
    Apply,
    /// `mip destroy`.
    Destroy,
    /// `mip state rebuild`.
    StateRebuild,
    /// `mip state rm`.
    StateRm,
    /// `mip state migrate`.
    StateMigrate,
    /// `mip state history` of the local store, which takes its lock to read the history.
    StateHistory,
    /// A read-only open of the local store, which holds its lock for a moment; writers wait
    /// for such a holder briefly instead of failing at once.
    Read,
    /// The one history entry that stands for older operations folded away
    /// ([`bound_history`](crate::bound_history)); its [`Folded`](crate::Folded) says what.
    Summary,
    /// A lock whose holder did not say (`lock.json` unreadable, a Lease without the
    /// annotation).
    Unknown,
    /// A name this build does not know, written by a newer one. Kept as read, so reading a
    /// newer build's lock or history never fails and writing it back loses nothing.
    Other(String),
}

impl Operation {
    /// The name, as the lock and the history store and show it.
    pub fn as_str(&self) -> &str {
        match self {
            Operation::Apply => "apply",
            Operation::Destroy => "destroy",
            Operation::StateRebuild => "state rebuild",
            Operation::StateRm => "state rm",
            Operation::StateMigrate => "state migrate",
            Operation::StateHistory => "state history",
            Operation::Read => "read",
            Operation::Summary => "earlier",
            Operation::Unknown => "unknown",
            Operation::Other(name) => name,
        }
    }

    /// The operation named `name`; a name this build does not know is [`Operation::Other`].
    pub fn parse(name: &str) -> Operation {
        match name {
            "apply" => Operation::Apply,
            "destroy" => Operation::Destroy,
            "state rebuild" => Operation::StateRebuild,
            "state rm" => Operation::StateRm,
            "state migrate" => Operation::StateMigrate,
            "state history" => Operation::StateHistory,
            "read" => Operation::Read,
            "earlier" => Operation::Summary,
            "unknown" => Operation::Unknown,
            other => Operation::Other(other.to_owned()),
        }
    }
}

impl From<&str> for Operation {
    fn from(name: &str) -> Operation {
        Operation::parse(name)
    }
}

impl From<String> for Operation {
    fn from(name: String) -> Operation {
        match Operation::parse(&name) {
            Operation::Other(_) => Operation::Other(name),
            known => known,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Operation {
    fn eq(&self, other: &Operation) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Operation {}

impl PartialOrd for Operation {
    fn partial_cmp(&self, other: &Operation) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Operation {
    fn cmp(&self, other: &Operation) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Operation {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Valid because equality, order and hash are the name's: `by_operation["apply"]` finds
/// [`Operation::Apply`].
impl Borrow<str> for Operation {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Operation {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Operation {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Operation, D::Error> {
        String::deserialize(deserializer).map(Operation::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HistoryEntry, LockInfo, Outcome};
    use std::collections::BTreeMap;

    /// Every variant but `Other`, with the name earlier builds wrote for it.
    const KNOWN: [(Operation, &str); 9] = [
        (Operation::Apply, "apply"),
        (Operation::Destroy, "destroy"),
        (Operation::StateRebuild, "state rebuild"),
        (Operation::StateRm, "state rm"),
        (Operation::StateMigrate, "state migrate"),
        (Operation::StateHistory, "state history"),
        (Operation::Read, "read"),
        (Operation::Summary, "earlier"),
        (Operation::Unknown, "unknown"),
    ];

    #[test]
    fn each_operation_is_written_and_read_as_its_old_name() {
        for (op, name) in KNOWN {
            assert_eq!(op.as_str(), name);
            assert_eq!(op.to_string(), name);
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            let back: Operation = serde_json::from_str(&json).unwrap();
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&op), "{back:?}");
            assert_eq!(Operation::from(name.to_owned()), op);
        }
    }

    #[test]
    fn a_name_from_a_newer_build_is_kept_as_it_was() {
        let op: Operation = serde_json::from_str("\"state compact\"").unwrap();
        assert!(matches!(&op, Operation::Other(name) if name == "state compact"), "{op:?}");
        assert_eq!(serde_json::to_string(&op).unwrap(), "\"state compact\"");
    }

    /// A history as the build before the typed operation wrote it: a summary entry (operation
    /// `earlier` with `folded`), an entry of an operation this build knows and one it does not.
    const OLD_HISTORY: &str = r#"[{"serial":4,"operation":"earlier","summary":"4 earlier operations, serials 1-4 (2023-11-14T22:13:21Z to 2023-11-14T22:13:24Z): 3 apply, 1 state rm","at_unix":1700000004,"folded":{"operations":4,"first_serial":1,"first_at_unix":1700000001,"by_operation":{"apply":3,"state rm":1}}},{"serial":5,"operation":"state rebuild","summary":"2 recorded","at_unix":1700000005,"outcome":"completed"},{"serial":6,"operation":"state compact","summary":"ok","at_unix":1700000006}]"#;

    #[test]
    fn an_old_history_reads_typed_and_writes_back_byte_for_byte() {
        let history: Vec<HistoryEntry> = serde_json::from_str(OLD_HISTORY).unwrap();
        assert!(matches!(history[0].operation, Operation::Summary));
        let folded = history[0].folded.as_ref().unwrap();
        assert_eq!(folded.by_operation, BTreeMap::from([(Operation::Apply, 3), (Operation::StateRm, 1)]));
        assert!(matches!(history[1].operation, Operation::StateRebuild));
        assert_eq!(history[1].outcome, Some(Outcome::Completed));
        assert!(matches!(&history[2].operation, Operation::Other(name) if name == "state compact"));
        assert_eq!(serde_json::to_string(&history).unwrap(), OLD_HISTORY);
    }

    /// `lock.json` as the build before wrote it (pretty, no expiry).
    const OLD_LOCK: &str = "{\n  \"holder\": \"ana@node1\",\n  \"pid\": 42,\n  \"operation\": \"state migrate\",\n  \"started_unix\": 1700000000\n}";

    #[test]
    fn an_old_lock_record_reads_typed_and_writes_back_byte_for_byte() {
        let info: LockInfo = serde_json::from_str(OLD_LOCK).unwrap();
        assert!(matches!(info.operation, Operation::StateMigrate));
        assert_eq!(serde_json::to_string_pretty(&info).unwrap(), OLD_LOCK);
        let reader: LockInfo = serde_json::from_str(&OLD_LOCK.replace("state migrate", "read")).unwrap();
        assert!(matches!(reader.operation, Operation::Read));
    }
}
