//! Ordered commit bookkeeping: a batch's offsets become committable only once it and every batch
//! taken before it are written (each record accepted by the destination or kept as a dead letter),
//! so however batches finish, no commit ever passes a record that was not written.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// A topic and partition.
pub type Partition = (Arc<str>, i32);
/// The next offset to read, per partition: what a commit stores.
pub type Offsets = BTreeMap<Partition, i64>;

/// A batch's place in the commit order, given when the writer takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// Where a taken batch stands.
#[derive(Debug, PartialEq, Eq)]
enum State {
    Writing,
    Written,
    /// Given up at the drain deadline: its records were not all written.
    Abandoned,
}

/// Batches taken and not yet released, and the offsets ready to commit.
#[derive(Debug, Default)]
pub struct Commits {
    /// Oldest first; `open[i]` holds ticket `first + i`.
    open: VecDeque<(State, Offsets)>,
    first: u64,
    /// Released and not yet taken by a commit.
    ready: Offsets,
    /// Partitions of an abandoned batch: a later batch's offset there would skip its records.
    held: BTreeSet<Partition>,
}

impl Commits {
    /// Takes a batch whose records end at `offsets`; its offsets wait for [`Commits::written`].
    pub fn begin(&mut self, offsets: Offsets) -> Ticket {
        self.open.push_back((State::Writing, offsets));
        Ticket(self.first + self.open.len() as u64 - 1)
    }

    /// The batch of `ticket` is written whole.
    pub fn written(&mut self, ticket: Ticket) {
        self.settle(ticket, State::Written);
    }

    /// The batch of `ticket` was given up: none of it is committed, nor anything after it in its
    /// partitions, so all of that is read again.
    pub fn abandoned(&mut self, ticket: Ticket) {
        self.settle(ticket, State::Abandoned);
    }

    /// Batches taken and not yet released (written or not): the writer's batches in hand.
    pub fn outstanding(&self) -> usize {
        self.open.len()
    }

    /// The offsets committable now, leaving none behind.
    pub fn take(&mut self) -> Offsets {
        std::mem::take(&mut self.ready)
    }

    fn settle(&mut self, ticket: Ticket, state: State) {
        // A ticket not open (already settled, or never given) changes nothing.
        let Some(index) = ticket.0.checked_sub(self.first).and_then(|i| usize::try_from(i).ok()) else { return };
        match self.open.get_mut(index) {
            Some(slot) if slot.0 == State::Writing => slot.0 = state,
            _ => return,
        }
        // Release the settled batches at the front, in order; one still writing stops the rest.
        while self.open.front().is_some_and(|(state, _)| *state != State::Writing) {
            let Some((state, offsets)) = self.open.pop_front() else { break };
            self.first += 1;
            for (partition, next) in offsets {
                if state == State::Abandoned || self.held.contains(&partition) {
                    self.held.insert(partition);
                    continue;
                }
                // Offsets only move forward, whatever order partitions' batches were cut in.
                let entry = self.ready.entry(partition).or_insert(next);
                *entry = (*entry).max(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn partition(topic: &str, partition: i32) -> Partition {
        (Arc::from(topic), partition)
    }

    fn offsets(entries: &[(&str, i32, i64)]) -> Offsets {
        entries.iter().map(|&(topic, p, next)| (partition(topic, p), next)).collect()
    }

    #[test]
    fn a_batch_written_early_waits_for_the_ones_before_it() {
        let mut commits = Commits::default();
        let first = commits.begin(offsets(&[("logs", 0, 10)]));
        let second = commits.begin(offsets(&[("logs", 0, 20), ("logs", 1, 5)]));
        let third = commits.begin(offsets(&[("logs", 1, 9)]));
        assert_eq!(commits.outstanding(), 3);
        commits.written(third);
        commits.written(second);
        assert_eq!(commits.take(), Offsets::new(), "nothing passes the first batch, still writing");
        assert_eq!(commits.outstanding(), 3);
        commits.written(first);
        assert_eq!(commits.take(), offsets(&[("logs", 0, 20), ("logs", 1, 9)]));
        assert_eq!(commits.outstanding(), 0);
        assert_eq!(commits.take(), Offsets::new(), "taken once");
    }

    #[test]
    fn offsets_released_between_commits_accumulate_and_only_move_forward() {
        let mut commits = Commits::default();
        let a = commits.begin(offsets(&[("logs", 0, 30)]));
        commits.written(a);
        // A later batch ending lower (records of a partition read again after a rebalance).
        let b = commits.begin(offsets(&[("logs", 0, 12), ("metrics", 2, 4)]));
        commits.written(b);
        assert_eq!(commits.take(), offsets(&[("logs", 0, 30), ("metrics", 2, 4)]));
    }

    #[test]
    fn an_abandoned_batch_holds_back_its_partitions_for_good() {
        let mut commits = Commits::default();
        let given_up = commits.begin(offsets(&[("logs", 0, 10), ("logs", 1, 10)]));
        let later = commits.begin(offsets(&[("logs", 0, 20), ("logs", 2, 7)]));
        commits.written(later);
        commits.abandoned(given_up);
        assert_eq!(commits.take(), offsets(&[("logs", 2, 7)]), "only the partition it did not share");
        let last = commits.begin(offsets(&[("logs", 0, 30), ("logs", 1, 30), ("logs", 2, 9)]));
        commits.written(last);
        assert_eq!(commits.take(), offsets(&[("logs", 2, 9)]));
        assert_eq!(commits.outstanding(), 0);
    }

    #[test]
    fn settling_twice_or_an_unknown_ticket_changes_nothing() {
        let mut commits = Commits::default();
        let a = commits.begin(offsets(&[("logs", 0, 10)]));
        let b = commits.begin(offsets(&[("logs", 0, 20)]));
        commits.written(a);
        commits.abandoned(a);
        commits.written(Ticket(99));
        assert_eq!(commits.take(), offsets(&[("logs", 0, 10)]));
        commits.written(b);
        commits.written(b);
        assert_eq!(commits.take(), offsets(&[("logs", 0, 20)]));
    }

    /// Batches of consecutive offsets over three partitions finish in random orders, some given
    /// up; after every step, no partition's committed offset passes its first record not written.
    #[test]
    fn out_of_order_completion_never_commits_past_an_unwritten_record() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..500 {
            let mut commits = Commits::default();
            // Per batch: its ticket, the record ranges it holds per partition, and whether it
            // will be written or given up.
            let mut batches = Vec::new();
            let mut next = [0i64; 3];
            for _ in 0..rng.usize(1..10) {
                let mut ranges = BTreeMap::new();
                for p in 0..3 {
                    let count = rng.i64(0..4);
                    if count > 0 {
                        ranges.insert(p, (next[p as usize], next[p as usize] + count));
                        next[p as usize] += count;
                    }
                }
                let ends: Offsets = ranges.iter().map(|(&p, &(_, end))| (partition("t", p), end)).collect();
                batches.push((commits.begin(ends), ranges, rng.u8(0..10) > 0));
            }
            let mut order: Vec<usize> = (0..batches.len()).collect();
            rng.shuffle(&mut order);
            let mut settled = vec![false; batches.len()];
            let mut committed = [0i64; 3];
            for i in order {
                let (ticket, _, writes) = &batches[i];
                if *writes {
                    commits.written(*ticket);
                } else {
                    commits.abandoned(*ticket);
                }
                settled[i] = true;
                for ((_, p), at) in commits.take() {
                    let p = p as usize;
                    assert!(at >= committed[p], "partition {p} went back from {} to {at}", committed[p]);
                    committed[p] = at;
                }
                // The first record of each partition not written yet (or never to be).
                for p in 0..3i32 {
                    let unwritten = batches
                        .iter()
                        .enumerate()
                        .filter(|(j, (_, _, writes))| !settled[*j] || !writes)
                        .filter_map(|(_, (_, ranges, _))| ranges.get(&p).map(|&(start, _)| start))
                        .min();
                    if let Some(start) = unwritten {
                        assert!(
                            committed[p as usize] <= start,
                            "partition {p} committed past unwritten offset {start}"
                        );
                    }
                }
            }
            // Once all are settled, every partition that no abandoned batch touched is committed
            // to its end.
            for p in 0..3i32 {
                let touched_by_abandoned = batches.iter().any(|(_, ranges, writes)| !writes && ranges.contains_key(&p));
                if !touched_by_abandoned {
                    assert_eq!(committed[p as usize], next[p as usize], "partition {p} fully committed");
                }
            }
            assert_eq!(commits.outstanding(), 0);
        }
    }
}
