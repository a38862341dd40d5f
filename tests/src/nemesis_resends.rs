//! Telling a client's re-sends apart from the broker's de-duplication failures, for the
//! nemesis (issue 16).
//!
//! librdkafka's idempotent producer, after an out-of-order answer on one partition, drains every
//! partition, bumps its epoch and renumbers every message not yet acknowledged — including
//! messages whose earlier request did reach a log but whose answer was an error such as
//! `NOT_LEADER_OR_FOLLOWER` after a leader change (confluentinc/librdkafka#4953). No broker can
//! tell such a value from a new record: its copies carry different epochs. The workload's
//! producers log librdkafka's `eos` debug context, so each epoch bump they made is on record; a
//! duplicate counts as the client's re-send only when every later copy was written under an
//! epoch the same producer logged bumping to. Everything else — two copies within one epoch,
//! copies from different producers, an epoch nobody logged — is the broker's failure.

use crate::cluster::StoredRecord;
use std::collections::{BTreeMap, BTreeSet};

/// `(producer id, epoch)` pairs a client logged bumping to.
pub type EpochBumps = BTreeSet<(i64, i16)>;

/// The epoch bumps in librdkafka's debug log (`debug=eos`): its line
/// `All partitions drained, bumped epoch to PID{Id:0,Epoch:1}`.
pub fn logged_epoch_bumps(client_log: &str) -> EpochBumps {
    const MARK: &str = "bumped epoch to PID{Id:";
    let mut bumps = EpochBumps::new();
    for line in client_log.lines() {
        let Some(at) = line.find(MARK) else { continue };
        let rest = &line[at + MARK.len()..];
        let Some((id, rest)) = rest.split_once(",Epoch:") else { continue };
        let Some((epoch, _)) = rest.split_once('}') else { continue };
        if let (Ok(id), Ok(epoch)) = (id.trim().parse(), epoch.trim().parse()) {
            bumps.insert((id, epoch));
        }
    }
    bumps
}

/// The epoch bumps in the agent's log: its warning `the idempotent producer bumped its epoch…`
/// with the fields `bumps=N producer_id=X producer_epoch=E` (the N epochs up to E).
pub fn logged_agent_epoch_bumps(agent_log: &str) -> EpochBumps {
    let mut bumps = EpochBumps::new();
    for line in agent_log.lines().filter(|l| l.contains("bumped its epoch")) {
        let field = |name: &str| {
            line.split_whitespace().find_map(|word| word.strip_prefix(name)?.strip_prefix('=')?.parse::<i64>().ok())
        };
        let (Some(count), Some(id), Some(epoch)) = (field("bumps"), field("producer_id"), field("producer_epoch"))
        else {
            continue;
        };
        for e in (epoch - count + 1).max(0)..=epoch {
            if let Ok(e) = i16::try_from(e) {
                bumps.insert((id, e));
            }
        }
    }
    bumps
}

/// Values stored more than once in a partition, by how.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateKinds {
    /// Every copy from one producer id under its own epoch, each later epoch one the producer
    /// logged bumping to: the client sent the value again (see the module documentation).
    pub client_resent: u64,
    /// Copies under different epochs of one producer, but an epoch it never logged bumping to:
    /// nothing explains them, so they fail the run.
    pub resent_unexplained: u64,
    /// Two copies under one producer id and epoch (a retry the broker failed to de-duplicate),
    /// or from different producers.
    pub within_one_epoch: u64,
}

impl DuplicateKinds {
    /// Adds another partition's counts.
    pub fn add(&mut self, other: DuplicateKinds) {
        self.client_resent += other.client_resent;
        self.resent_unexplained += other.resent_unexplained;
        self.within_one_epoch += other.within_one_epoch;
    }

    /// Duplicates that are not the client's re-sends.
    pub fn failures(&self) -> u64 {
        self.resent_unexplained + self.within_one_epoch
    }
}

/// One partition's duplicates: counts, and the values the client re-sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Duplicates {
    /// Counts by kind.
    pub kinds: DuplicateKinds,
    /// The values counted in [`DuplicateKinds::client_resent`].
    pub client_resent: BTreeSet<String>,
}

/// Sorts the values of one partition's log that occur more than once.
pub fn classify_duplicates(records: &[StoredRecord], bumps: &EpochBumps) -> Duplicates {
    let mut copies: BTreeMap<&str, Vec<(i64, i16)>> = BTreeMap::new();
    for r in records {
        if let Some(value) = r.value.as_deref() {
            copies.entry(value).or_default().push((r.producer_id, r.producer_epoch));
        }
    }
    let mut out = Duplicates::default();
    for (value, writers) in copies.iter().filter(|(_, w)| w.len() > 1) {
        let producer = writers[0].0;
        let one_producer = writers.iter().all(|(id, _)| *id >= 0 && *id == producer);
        let mut epochs: Vec<i16> = writers.iter().map(|(_, e)| *e).collect();
        epochs.sort_unstable();
        epochs.dedup();
        if !one_producer || epochs.len() != writers.len() {
            out.kinds.within_one_epoch += 1;
        } else if epochs[1..].iter().all(|e| bumps.contains(&(producer, *e))) {
            out.kinds.client_resent += 1;
            out.client_resent.insert((*value).to_string());
        } else {
            out.kinds.resent_unexplained += 1;
        }
    }
    out
}

/// Per-producer order breaks in one partition's log (values `<producer>-<n>`, offset order),
/// ignoring every copy after the first of the values in `resent`: what the checker's
/// `producer_order` would find once the client's re-sends are taken out.
pub fn order_breaks_without(records: &[StoredRecord], resent: &BTreeSet<String>) -> u64 {
    let mut sorted: Vec<&StoredRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.offset);
    let mut seen = BTreeSet::new();
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    let mut breaks = 0;
    for r in sorted {
        let Some(value) = r.value.as_deref() else { continue };
        if resent.contains(value) && !seen.insert(value) {
            continue;
        }
        let Some((producer, n)) = value.rsplit_once('-') else { continue };
        let Ok(n) = n.parse::<u64>() else { continue };
        if last.get(producer).is_some_and(|previous| n <= *previous) {
            breaks += 1;
        }
        last.insert(producer, n);
    }
    breaks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, value: &str, producer_id: i64, producer_epoch: i16) -> StoredRecord {
        StoredRecord { offset, value: Some(value.to_string()), producer_id, producer_epoch }
    }

    #[test]
    fn epoch_bumps_are_read_from_librdkafkas_eos_log() {
        let log = "%7|1796354416.259|DRAIN|jepsen-p0#producer-1| [thrd:10.0.0.2:9092/2]: All partitions drained, \
                   bumped epoch to PID{Id:0,Epoch:1}\n\
                   %7|1796354416.259|NEWPID|jepsen-p0#producer-1| [thrd:x]: nemesis [1] changed \
                   PID{Id:0,Epoch:0} -> PID{Id:0,Epoch:1} with base MsgId 407\n\
                   %7|1796354450.557|DRAIN|jepsen-p1#producer-2| [thrd:x]: All partitions drained, bumped epoch to \
                   PID{Id:1000,Epoch:7}\n";
        assert_eq!(logged_epoch_bumps(log), EpochBumps::from([(0, 1), (1000, 7)]));
        assert!(logged_epoch_bumps("bumped epoch to PID{Id:x,Epoch:1}").is_empty());
    }

    #[test]
    fn epoch_bumps_are_read_from_the_agents_warnings() {
        let log = "2026-12-04T04:00:00.000000Z  WARN millrace_agent::output: the idempotent producer bumped its \
                   epoch: records not yet acknowledged were sent again bumps=2 producer_id=7 producer_epoch=3\n\
                   2026-12-04T04:00:01.000000Z  INFO millrace_agent: producer_epoch=9 something else\n";
        assert_eq!(logged_agent_epoch_bumps(log), EpochBumps::from([(7, 2), (7, 3)]));
    }

    #[test]
    fn duplicates_are_told_apart_by_their_producer_epochs_and_the_clients_log() {
        let log = vec![
            record(0, "p0-1", 1000, 1),
            record(1, "p0-2", 1000, 1),
            // p0-1 again under epoch 2, which the client logged bumping to: its re-send.
            record(2, "p0-1", 1000, 2),
            // p0-2 again in the same epoch: the broker let a retry through.
            record(3, "p0-2", 1000, 1),
            record(4, "p0-3", 1000, 3),
            // The same value from another producer is not a re-send either.
            record(5, "p0-3", 2000, 3),
            record(6, "p0-4", 1000, 3),
            // Epoch 4 was never logged: unexplained.
            record(7, "p0-4", 1000, 4),
        ];
        let bumps = EpochBumps::from([(1000, 2), (1000, 3)]);
        let found = classify_duplicates(&log, &bumps);
        assert_eq!(found.kinds, DuplicateKinds { client_resent: 1, resent_unexplained: 1, within_one_epoch: 2 });
        assert_eq!(found.client_resent, BTreeSet::from(["p0-1".to_string()]));
        assert_eq!(found.kinds.failures(), 3);
        // Without the client's log nothing is explained.
        assert_eq!(classify_duplicates(&log, &EpochBumps::new()).kinds.client_resent, 0);
        assert_eq!(classify_duplicates(&log[..2], &bumps), Duplicates::default());
    }

    #[test]
    fn order_breaks_skip_only_the_later_copies_of_re_sent_values() {
        let log = vec![
            record(0, "p0-1", 0, 0),
            record(1, "p0-2", 0, 0),
            record(2, "p1-1", 1, 0),
            record(3, "p0-2", 0, 1),
            record(4, "p0-3", 0, 1),
        ];
        assert_eq!(order_breaks_without(&log, &BTreeSet::new()), 1);
        assert_eq!(order_breaks_without(&log, &BTreeSet::from(["p0-2".to_string()])), 0);
        // A re-send does not excuse a real reordering around it.
        let mut reordered = log.clone();
        reordered.push(record(5, "p0-1", 0, 1));
        assert_eq!(order_breaks_without(&reordered, &BTreeSet::from(["p0-2".to_string()])), 1);
    }
}
