//! What the sink's fetcher knows about its partitions: where each is read from next, who leads
//! it, and which assignment a fetched chunk belongs to. No I/O and no clock reads of its own:
//! the fetch tasks, the rebalance callbacks and the consumer thread all go through it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A partition: its topic's shared name and its index.
pub type Key = (Arc<str>, i32);

/// One assigned partition.
#[derive(Clone, Debug, PartialEq)]
pub struct Assigned {
    /// Changes whenever the partition's read position is set from outside the fetch loop (an
    /// assignment, a re-read after a bad batch): chunks fetched before carry an older one and
    /// are dropped.
    pub generation: u64,
    /// The next offset to fetch; `None` until `auto.offset.reset` has found it.
    pub position: Option<i64>,
    /// The leader's broker id, `None` until metadata names a reachable one.
    pub leader: Option<i32>,
    /// The newest leader epoch the metadata named (-1 before any): fetches carry it, so a broker
    /// that is no longer leader refuses them (KIP-320), and an older metadata answer (from a
    /// broker that has not caught up) cannot send the partition back to a former leader.
    pub leader_epoch: i32,
    /// The topic's id when that epoch was seen (0 if unknown): a topic deleted and created again
    /// under its name starts its epochs afresh.
    pub topic_id: u128,
    /// The leader's high watermark from its last answer.
    pub high_watermark: Option<i64>,
    /// The group's committed offset (the lag is counted from it).
    pub committed: Option<i64>,
    /// Not fetched before this moment (after an error that repeats on every fetch).
    pub retry_at: Option<Instant>,
}

/// One partition a fetch asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub key: Key,
    pub generation: u64,
    pub offset: i64,
    /// The leader epoch the fetch names (`current_leader_epoch`).
    pub leader_epoch: i32,
}

/// Who leads a partition, as a metadata answer says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Leader {
    pub id: i32,
    pub epoch: i32,
    /// The topic's id (0 if the answer has none).
    pub topic_id: u128,
}

/// What a fetch answered for one partition, as far as the bookkeeping cares.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Records (or none) up to `next`, the offset after the last whole batch.
    Data { next: i64, high_watermark: i64 },
    /// The broker no longer leads it (or cannot serve it now): ask the metadata again.
    LeaderMoved,
    /// The leader has a newer epoch than the fetch named: ask the metadata again, and take no
    /// answer naming the fenced epoch (a broker that has not caught up would send the partition
    /// straight back, fetch after fetch).
    Fenced,
    /// The position is outside the log: start again where `auto.offset.reset` says.
    OutOfRange,
    /// Anything else: try again later.
    Failed,
}

/// The fetcher's partitions.
#[derive(Debug, Default)]
pub struct Partitions {
    assigned: HashMap<Key, Assigned>,
    /// Assigned by the group, committed offsets not looked up yet.
    pending: Vec<Key>,
    next_generation: u64,
    /// Some partition needs its leader (or the metadata is old).
    pub metadata_wanted: bool,
}

impl Partitions {
    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// The group gave us `keys`; their committed offsets are looked up next.
    pub fn assign_pending(&mut self, keys: impl IntoIterator<Item = Key>) {
        for key in keys {
            if !self.pending.contains(&key) {
                self.pending.push(key);
            }
        }
    }

    /// Partitions waiting for their committed offsets.
    pub fn take_pending(&mut self) -> Vec<Key> {
        std::mem::take(&mut self.pending)
    }

    /// Starts reading `key` at `committed` (`None`: nothing committed, `auto.offset.reset`
    /// decides). A partition assigned again starts afresh.
    pub fn start(&mut self, key: Key, committed: Option<i64>) {
        let generation = self.generation();
        self.assigned.insert(
            key,
            Assigned {
                generation,
                position: committed,
                leader: None,
                leader_epoch: -1,
                topic_id: 0,
                high_watermark: None,
                committed,
                retry_at: None,
            },
        );
        self.metadata_wanted = true;
    }

    /// Stops reading `keys` (revoked or lost); chunks already fetched for them are dropped.
    pub fn revoke<'a>(&mut self, keys: impl IntoIterator<Item = &'a Key>) {
        for key in keys {
            self.assigned.remove(key);
            self.pending.retain(|p| p != key);
        }
    }

    /// Whether a chunk fetched for `key` at `generation` is still wanted.
    pub fn current(&self, key: &Key, generation: u64) -> bool {
        self.assigned.get(key).is_some_and(|a| a.generation == generation)
    }

    /// Reads `key` again from `offset` no sooner than `not_before`, dropping what was fetched
    /// beyond it (a batch that could not be read must not be skipped, nor what follows it).
    pub fn reread(&mut self, key: &Key, generation: u64, offset: i64, not_before: Instant) {
        let fresh = self.generation();
        if let Some(a) = self.assigned.get_mut(key).filter(|a| a.generation == generation) {
            a.generation = fresh;
            a.position = Some(offset);
            a.retry_at = Some(not_before);
        }
    }

    /// What to fetch from broker `leader` now: partitions it leads whose position is known and
    /// that are not waiting out an error.
    pub fn targets(&self, leader: i32, now: Instant) -> Vec<Target> {
        let mut targets: Vec<Target> = self
            .assigned
            .iter()
            .filter(|(_, a)| a.leader == Some(leader) && a.retry_at.is_none_or(|at| at <= now))
            .filter_map(|(key, a)| {
                a.position.map(|offset| Target {
                    key: key.clone(),
                    generation: a.generation,
                    offset,
                    leader_epoch: a.leader_epoch,
                })
            })
            .collect();
        // A stable order keeps requests comparable between rounds (and tests exact).
        targets.sort_by(|a, b| a.key.cmp(&b.key));
        targets
    }

    /// The earliest moment a partition of `leader` waiting out an error may be fetched again.
    pub fn next_retry(&self, leader: i32) -> Option<Instant> {
        self.assigned.values().filter(|a| a.leader == Some(leader)).filter_map(|a| a.retry_at).min()
    }

    /// Applies a fetch's answer for `target`; true if its records are to be read (the
    /// partition is still assigned and was not moved meanwhile). The lag is returned with it
    /// when known.
    pub fn answered(&mut self, target: &Target, answer: Answer, retry_at: Instant) -> (bool, Option<i64>) {
        let Some(a) = self.assigned.get_mut(&target.key) else { return (false, None) };
        if a.generation != target.generation || a.position != Some(target.offset) {
            return (false, None);
        }
        match answer {
            Answer::Data { next, high_watermark } => {
                a.position = Some(next.max(target.offset));
                a.high_watermark = Some(high_watermark);
                a.retry_at = None;
                let lag = a.committed.map(|c| (high_watermark - c).max(0));
                (true, lag)
            }
            Answer::LeaderMoved => {
                a.leader = None;
                self.metadata_wanted = true;
                (false, None)
            }
            Answer::Fenced => {
                a.leader = None;
                a.leader_epoch = a.leader_epoch.max(target.leader_epoch.saturating_add(1));
                self.metadata_wanted = true;
                (false, None)
            }
            Answer::OutOfRange => {
                a.position = None;
                (false, None)
            }
            Answer::Failed => {
                a.retry_at = Some(retry_at);
                (false, None)
            }
        }
    }

    /// A connection to broker `leader` failed: its partitions wait for the metadata to say who
    /// leads them now.
    pub fn leader_unreachable(&mut self, leader: i32) {
        for a in self.assigned.values_mut().filter(|a| a.leader == Some(leader)) {
            a.leader = None;
            self.metadata_wanted = true;
        }
    }

    /// Topics with assigned partitions (what the metadata request asks about).
    pub fn topics(&self) -> Vec<Arc<str>> {
        let mut topics: Vec<Arc<str>> = self.assigned.keys().map(|(t, _)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Takes the leaders the metadata names (`leader_of` answers per partition, `None` when it
    /// names none); returns whether every partition now has one. A leader of an older epoch than
    /// one already seen of the same topic is stale news and leaves the partition as it was.
    pub fn set_leaders(&mut self, mut leader_of: impl FnMut(&Key) -> Option<Leader>) -> bool {
        let mut all = true;
        for (key, a) in &mut self.assigned {
            match leader_of(key) {
                Some(leader) if leader.epoch >= a.leader_epoch || leader.topic_id != a.topic_id => {
                    a.leader = Some(leader.id);
                    a.leader_epoch = leader.epoch;
                    a.topic_id = leader.topic_id;
                }
                Some(_) => {}
                None => a.leader = None,
            }
            all &= a.leader.is_some();
        }
        self.metadata_wanted = !all;
        all
    }

    /// Partitions whose position `auto.offset.reset` must find, with their leader and its epoch.
    pub fn needing_reset(&self) -> Vec<(Key, u64, Leader)> {
        self.assigned
            .iter()
            .filter(|(_, a)| a.position.is_none())
            .filter_map(|(key, a)| {
                a.leader
                    .map(|id| (key.clone(), a.generation, Leader { id, epoch: a.leader_epoch, topic_id: a.topic_id }))
            })
            .collect()
    }

    /// Sets a reset partition's position (if it was not moved meanwhile).
    pub fn reset_to(&mut self, key: &Key, generation: u64, offset: i64) {
        if let Some(a) = self.assigned.get_mut(key).filter(|a| a.generation == generation && a.position.is_none()) {
            a.position = Some(offset);
        }
    }

    /// Brokers leading an assigned partition.
    pub fn leaders(&self) -> Vec<i32> {
        let mut leaders: Vec<i32> = self.assigned.values().filter_map(|a| a.leader).collect();
        leaders.sort_unstable();
        leaders.dedup();
        leaders
    }

    /// The group committed `offset` for `key`; returns the lag now, if the high watermark is
    /// known.
    pub fn committed(&mut self, key: &Key, offset: i64) -> Option<i64> {
        let a = self.assigned.get_mut(key)?;
        a.committed = Some(offset);
        a.high_watermark.map(|hw| (hw - offset).max(0))
    }

    /// Whether anything is assigned or waiting to be.
    pub fn is_empty(&self) -> bool {
        self.assigned.is_empty() && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn key(p: i32) -> Key {
        (Arc::from("logs"), p)
    }

    fn started(committed: Option<i64>) -> Partitions {
        let mut parts = Partitions::default();
        parts.assign_pending([key(0)]);
        assert_eq!(parts.take_pending(), vec![key(0)]);
        parts.start(key(0), committed);
        assert!(parts.set_leaders(|_| Some(Leader { id: 1, epoch: 3, topic_id: 7 })));
        parts
    }

    #[test]
    fn a_partition_is_fetched_from_its_committed_offset_by_its_leader() {
        let parts = started(Some(40));
        let now = Instant::now();
        assert_eq!(parts.targets(1, now), vec![Target { key: key(0), generation: 1, offset: 40, leader_epoch: 3 }]);
        assert!(parts.targets(2, now).is_empty(), "another broker does not lead it");
    }

    #[test]
    fn data_moves_the_position_and_gives_the_lag_from_the_commit() {
        let mut parts = started(Some(40));
        let now = Instant::now();
        let target = parts.targets(1, now).remove(0);
        let (take, lag) = parts.answered(&target, Answer::Data { next: 90, high_watermark: 100 }, now);
        assert!(take);
        assert_eq!(lag, Some(60));
        assert_eq!(parts.targets(1, now)[0].offset, 90);
        assert_eq!(parts.committed(&key(0), 90), Some(10));
        // The same answer again (a duplicate from a leader change) is not read twice.
        assert_eq!(parts.answered(&target, Answer::Data { next: 95, high_watermark: 100 }, now), (false, None));
        assert_eq!(parts.targets(1, now)[0].offset, 90);
    }

    #[test]
    fn a_revoked_or_reassigned_partitions_chunks_are_stale() {
        let mut parts = started(Some(0));
        let target = parts.targets(1, Instant::now()).remove(0);
        assert!(parts.current(&key(0), target.generation));
        parts.revoke([&key(0)]);
        assert!(!parts.current(&key(0), target.generation));
        let (take, _) = parts.answered(&target, Answer::Data { next: 5, high_watermark: 5 }, Instant::now());
        assert!(!take, "an answer for a revoked partition is dropped");
        parts.start(key(0), Some(3));
        assert!(!parts.current(&key(0), target.generation), "assigned again: a new generation");
    }

    #[test]
    fn a_reread_drops_what_was_fetched_after_and_waits() {
        let mut parts = started(Some(0));
        let now = Instant::now();
        let target = parts.targets(1, now).remove(0);
        parts.answered(&target, Answer::Data { next: 50, high_watermark: 50 }, now);
        let later = now + Duration::from_secs(1);
        parts.reread(&key(0), target.generation, 20, later);
        assert!(!parts.current(&key(0), target.generation), "chunks already fetched are stale");
        assert!(parts.targets(1, now).is_empty(), "waits before fetching again");
        assert_eq!(parts.next_retry(1), Some(later));
        assert_eq!(parts.targets(1, later)[0].offset, 20);
    }

    #[test]
    fn fetches_name_the_leader_epoch_and_older_metadata_is_ignored() {
        let mut parts = started(Some(40));
        let now = Instant::now();
        let target = parts.targets(1, now).remove(0);
        assert_eq!(target.leader_epoch, 3);
        // The leader was fenced: a broker that has not heard of the election still names it.
        parts.answered(&target, Answer::LeaderMoved, now);
        assert!(!parts.set_leaders(|_| Some(Leader { id: 1, epoch: 2, topic_id: 7 })), "an older epoch is stale news");
        assert!(parts.metadata_wanted && parts.leaders().is_empty());
        assert!(parts.set_leaders(|_| Some(Leader { id: 1, epoch: 3, topic_id: 7 })), "the same epoch is taken");
        assert!(parts.set_leaders(|_| Some(Leader { id: 2, epoch: 5, topic_id: 7 })));
        assert!(parts.set_leaders(|_| Some(Leader { id: 1, epoch: 4, topic_id: 7 })), "a led partition stays led");
        let target = parts.targets(2, now).remove(0);
        assert_eq!(target.leader_epoch, 5, "by the newest leader");
        // Fenced: the leader is past epoch 5, so an answer naming 5 again is stale.
        parts.answered(&target, Answer::Fenced, now);
        assert!(!parts.set_leaders(|_| Some(Leader { id: 2, epoch: 5, topic_id: 7 })));
        assert!(parts.set_leaders(|_| Some(Leader { id: 2, epoch: 7, topic_id: 7 })));
        assert_eq!(parts.targets(2, now)[0].leader_epoch, 7);
        assert!(!parts.set_leaders(|_| None), "naming no leader is not stale");
        // The topic deleted and created again under its name: its epochs start again.
        assert!(parts.set_leaders(|_| Some(Leader { id: 3, epoch: 0, topic_id: 8 })));
        assert_eq!(parts.targets(3, now)[0].leader_epoch, 0);
        // A new assignment starts without an epoch.
        parts.start(key(0), Some(50));
        assert!(parts.set_leaders(|_| Some(Leader { id: 3, epoch: 1, topic_id: 0 })));
    }

    #[test]
    fn leader_moves_and_resets_go_through_the_metadata() {
        let mut parts = started(None);
        let now = Instant::now();
        assert!(parts.targets(1, now).is_empty(), "no position before the reset");
        let (k, generation, leader) = parts.needing_reset().remove(0);
        assert_eq!((leader.id, leader.epoch), (1, 3), "asked of the leader, naming its epoch");
        parts.reset_to(&k, generation, 7);
        let target = parts.targets(1, now).remove(0);
        assert_eq!(target.offset, 7);
        parts.answered(&target, Answer::LeaderMoved, now);
        assert!(parts.metadata_wanted);
        assert!(parts.targets(1, now).is_empty());
        assert!(parts.set_leaders(|_| Some(Leader { id: 2, epoch: 4, topic_id: 7 })));
        assert_eq!(parts.targets(2, now)[0].offset, 7, "the position survives a leader change");
        let target = parts.targets(2, now).remove(0);
        parts.answered(&target, Answer::OutOfRange, now);
        assert_eq!(parts.needing_reset().len(), 1);
        parts.leader_unreachable(2);
        assert!(parts.leaders().is_empty());
    }
}
