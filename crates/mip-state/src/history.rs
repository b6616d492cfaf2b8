//! A bounded audit trail: the most recent operations are kept as they are, older ones are
//! folded into one summary entry at the front, so a state that lives for years (a drift
//! CronJob, an apply per pull request) stays small and every commit of the cluster state stays
//! cheap.

use crate::{HistoryEntry, Operation, rfc3339_utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default of `--history-limit`: the most recent operations kept in full.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;

/// What a summary entry stands for: how many operations were folded, from which serial and
/// time, and how many of each kind. Its entry's operation is [`Operation::Summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folded {
    /// How many operations the summary stands for.
    pub operations: u64,
    /// The serial of the oldest folded operation.
    pub first_serial: u64,
    /// When the oldest folded operation finished, seconds since the Unix epoch.
    pub first_at_unix: u64,
    /// Folded operations by kind (`apply` → 30).
    pub by_operation: BTreeMap<Operation, u64>,
}

impl Folded {
    /// Adds one entry (a summary adds everything it stands for).
    fn add(&mut self, entry: &HistoryEntry) {
        let (first_serial, first_at) = match &entry.folded {
            Some(f) => (f.first_serial, f.first_at_unix),
            None => (entry.serial, entry.at_unix),
        };
        if self.operations == 0 {
            self.first_serial = first_serial;
            self.first_at_unix = first_at;
        }
        match &entry.folded {
            Some(f) => {
                self.operations += f.operations;
                for (op, n) in &f.by_operation {
                    *self.by_operation.entry(op.clone()).or_default() += n;
                }
            }
            None => {
                self.operations += 1;
                *self.by_operation.entry(entry.operation.clone()).or_default() += 1;
            }
        }
    }
}

/// Keeps the `limit` most recent entries of `history` (oldest first) and folds every older
/// one, an earlier summary included, into one summary entry in front: its `serial` and
/// `at_unix` are those of the newest folded operation, its summary reads
/// `41 earlier operations, serials 1-40 (… to …): 30 apply, 11 destroy`. A history within the
/// limit is left as it is.
pub fn bound_history(history: &mut Vec<HistoryEntry>, limit: usize) {
    let summary_first = history.first().is_some_and(HistoryEntry::is_summary);
    let stray_summary = history.iter().skip(1).any(HistoryEntry::is_summary);
    if history.len() <= limit + usize::from(summary_first) && !stray_summary {
        return;
    }
    let recent = history.split_off(history.len().saturating_sub(limit));
    let mut to_fold = std::mem::take(history);
    // A summary after the first entry (two trails imported one after the other) is folded too.
    let (summaries, recent): (Vec<_>, Vec<_>) = recent.into_iter().partition(HistoryEntry::is_summary);
    to_fold.extend(summaries);
    let mut folded = Folded::default();
    let (mut last_serial, mut last_at) = (0, 0);
    for entry in &to_fold {
        folded.add(entry);
        last_serial = last_serial.max(entry.serial);
        last_at = last_at.max(entry.at_unix);
    }
    if folded.operations > 0 {
        history.push(summary_entry(folded, last_serial, last_at));
    }
    history.extend(recent);
}

/// The summary entry of `folded`.
fn summary_entry(folded: Folded, last_serial: u64, last_at_unix: u64) -> HistoryEntry {
    let kinds: Vec<String> = folded.by_operation.iter().map(|(op, n)| format!("{n} {op}")).collect();
    let summary = format!(
        "{} earlier operation{}, serials {}-{} ({} to {}): {}",
        folded.operations,
        if folded.operations == 1 { "" } else { "s" },
        folded.first_serial,
        last_serial,
        rfc3339_utc(folded.first_at_unix),
        rfc3339_utc(last_at_unix),
        kinds.join(", ")
    );
    HistoryEntry {
        serial: last_serial,
        operation: Operation::Summary,
        summary,
        at_unix: last_at_unix,
        folded: Some(folded),
        outcome: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(serial: u64, operation: &str) -> HistoryEntry {
        HistoryEntry {
            serial,
            operation: operation.into(),
            summary: format!("{serial} created"),
            at_unix: 1_700_000_000 + serial,
            folded: None,
            outcome: None,
        }
    }

    #[test]
    fn within_the_limit_nothing_changes() {
        let mut h: Vec<_> = (1..=3).map(|s| entry(s, "apply")).collect();
        let before = h.clone();
        bound_history(&mut h, 3);
        assert_eq!(h, before);
    }

    #[test]
    fn older_entries_fold_into_one_summary_that_keeps_counting() {
        let mut h = Vec::new();
        for serial in 1..=120 {
            h.push(entry(serial, if serial % 4 == 0 { "destroy" } else { "apply" }));
            bound_history(&mut h, 10);
            assert!(h.len() <= 11, "{}", h.len());
        }
        assert_eq!(h.len(), 11);
        let summary = &h[0];
        let folded = summary.folded.as_ref().expect("a summary in front");
        assert_eq!(folded.operations, 110);
        assert_eq!((folded.first_serial, summary.serial), (1, 110));
        assert_eq!(folded.by_operation["apply"] + folded.by_operation["destroy"], 110);
        assert_eq!(folded.by_operation["destroy"], 27);
        assert_eq!(summary.operation, Operation::Summary);
        assert!(
            summary.summary.starts_with("110 earlier operations, serials 1-110 ("),
            "{}",
            summary.summary
        );
        assert!(summary.summary.ends_with("83 apply, 27 destroy"), "{}", summary.summary);
        let kept: Vec<u64> = h[1..].iter().map(|e| e.serial).collect();
        assert_eq!(kept, (111..=120).collect::<Vec<_>>());
        // The same trail bounded at once gives the same result as bounded step by step.
        let mut at_once: Vec<_> =
            (1..=120).map(|s| entry(s, if s % 4 == 0 { "destroy" } else { "apply" })).collect();
        bound_history(&mut at_once, 10);
        assert_eq!(at_once, h);
    }

    #[test]
    fn limit_zero_keeps_only_the_summary() {
        let mut h: Vec<_> = (1..=5).map(|s| entry(s, "apply")).collect();
        bound_history(&mut h, 0);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].folded.as_ref().map(|f| f.operations), Some(5));
    }
}
