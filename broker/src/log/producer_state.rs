//! Idempotent producer state of one partition, with Kafka's rules: per producer id, its epoch
//! and the sequence/offset ranges of its last 5 batches, enough to acknowledge a retried batch
//! with its original offsets and to reject gaps.
//!
//! The state survives restarts through `<20-digit offset>.snapshot` files (JSON) written at roll
//! and close; a snapshot at offset N holds the state of every batch below N. On open the newest
//! snapshot at or below the log end is loaded and the batch headers after it are replayed.

use super::batch::BatchHeader;
use super::error::{io_error, LogError};
use super::segment::sync_dir;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Batches remembered per producer (Kafka's max.in.flight.requests.per.connection limit).
pub const CACHED_BATCHES: usize = 5;
/// Snapshot files kept.
const SNAPSHOTS_KEPT: usize = 2;
const SNAPSHOT_EXT: &str = "snapshot";
const SNAPSHOT_VERSION: u32 = 1;

/// Sequence and offset range of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMetadata {
    /// Base sequence.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProducerEntry {
    producer_id: i64,
    epoch: i16,
    /// Oldest first.
    batches: VecDeque<BatchMetadata>,
    /// When the producer last wrote here (ms since the epoch), for `producer.id.expiration.ms`.
    #[serde(default)]
    last_timestamp: i64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    offset: i64,
    producers: Vec<ProducerEntry>,
}

/// Outcome of checking a batch against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already in the log at these offsets: acknowledge, do not append.
    Duplicate(BatchMetadata),
}

/// Sequence of the last record of a batch; sequences wrap from i32::MAX to 0.
pub fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    let wrapped = (i64::from(base_sequence) + i64::from(last_offset_delta)) % (i64::from(i32::MAX) + 1);
    wrapped as i32
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

/// One idempotent producer writing to a partition, as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// Sequence of its last record here.
    pub last_sequence: i32,
    /// When it last wrote here (ms since the epoch).
    pub last_timestamp: i64,
}

/// Idempotent producer state of one partition.
pub struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateManager {
    /// Empty state for the log in `dir`.
    pub fn new(dir: &Path) -> Self {
        ProducerStateManager { dir: dir.to_path_buf(), producers: HashMap::new() }
    }

    /// The producers writing here (DescribeProducers), by producer id.
    pub fn active(&self) -> Vec<ActiveProducer> {
        let mut list: Vec<ActiveProducer> = self
            .producers
            .values()
            .map(|e| ActiveProducer {
                producer_id: e.producer_id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
            })
            .collect();
        list.sort_by_key(|p| p.producer_id);
        list
    }

    /// Number of producers tracked.
    #[cfg(test)]
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// Checks a batch before it is appended.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, LogError> {
        let (producer_id, epoch, first) = (header.producer_id, header.producer_epoch, header.base_sequence);
        if producer_id < 0 || first < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&producer_id) else {
            if first != 0 {
                return Err(LogError::UnknownProducerId { producer_id, sequence: first });
            }
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch { producer_id, current: entry.epoch, received: epoch });
        }
        let out_of_order = |expected| LogError::OutOfOrderSequence { producer_id, epoch, expected, received: first };
        if epoch > entry.epoch {
            // A new epoch restarts the sequence.
            return if first == 0 { Ok(SequenceCheck::Append) } else { Err(out_of_order(0)) };
        }
        let last = last_sequence(first, header.last_offset_delta);
        if let Some(original) = entry.batches.iter().find(|b| b.first_seq == first && b.last_seq == last) {
            return Ok(SequenceCheck::Duplicate(*original));
        }
        let expected = entry.batches.back().map_or(0, |b| next_sequence(b.last_seq));
        if first != expected {
            return Err(out_of_order(expected));
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that is now in the log (offsets assigned), written at `timestamp_ms`.
    /// Also used to replay headers (with the batch's own time).
    pub fn update(&mut self, header: &BatchHeader, timestamp_ms: i64) {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_insert_with(|| ProducerEntry {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            batches: VecDeque::new(),
            last_timestamp: timestamp_ms,
        });
        entry.last_timestamp = entry.last_timestamp.max(timestamp_ms);
        if header.producer_epoch > entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header.base_sequence, header.last_offset_delta),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Forgets producers that have not written for longer than `expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`), so the state of producers long gone, or of ids a client made
    /// up, does not grow without end. Returns how many were dropped.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: u64) -> usize {
        let expiration = i64::try_from(expiration_ms).unwrap_or(i64::MAX);
        let before = self.producers.len();
        self.producers.retain(|_, entry| now_ms.saturating_sub(entry.last_timestamp) < expiration);
        before - self.producers.len()
    }

    /// Writes `<offset>.snapshot` atomically (temp file, fsync, rename, fsync dir) and keeps
    /// only the newest snapshots.
    pub fn take_snapshot(&self, offset: i64) -> Result<(), LogError> {
        let mut producers: Vec<ProducerEntry> = self.producers.values().cloned().collect();
        producers.sort_by_key(|p| p.producer_id);
        let snapshot = Snapshot { version: SNAPSHOT_VERSION, offset, producers };
        let path = snapshot_path(&self.dir, offset);
        let tmp = path.with_extension("snapshot.tmp");
        let bytes = serde_json::to_vec(&snapshot).map_err(|e| LogError::Io {
            op: "serializing",
            path: tmp.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut file = std::fs::File::create(&tmp).map_err(io_error("creating", &tmp))?;
        file.write_all(&bytes).map_err(io_error("writing", &tmp))?;
        file.sync_all().map_err(io_error("fsync of", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_error("renaming", &tmp))?;
        sync_dir(&self.dir)?;
        let snapshots = list_snapshots(&self.dir)?;
        for (_, old) in snapshots.iter().rev().skip(SNAPSHOTS_KEPT) {
            std::fs::remove_file(old).map_err(io_error("deleting", old))?;
        }
        Ok(())
    }

    /// Loads the newest readable snapshot at or below `log_end`, deleting snapshots above it
    /// (they describe batches recovery cut) and unreadable ones. Returns the state and the offset
    /// from which batch headers must be replayed, None if there is no snapshot.
    pub fn load(dir: &Path, log_end: i64) -> Result<(Self, Option<i64>), LogError> {
        let mut state = ProducerStateManager::new(dir);
        for (offset, path) in list_snapshots(dir)?.into_iter().rev() {
            if offset > log_end {
                std::fs::remove_file(&path).map_err(io_error("deleting", &path))?;
                continue;
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<Snapshot>(&bytes).map_err(|e| e.to_string()));
            match parsed {
                Ok(snapshot) if snapshot.version == SNAPSHOT_VERSION && snapshot.offset == offset => {
                    state.producers = snapshot.producers.into_iter().map(|p| (p.producer_id, p)).collect();
                    return Ok((state, Some(offset)));
                }
                Ok(_) => tracing::warn!(snapshot = %path.display(), "ignoring a producer snapshot of another version"),
                Err(error) => {
                    tracing::warn!(snapshot = %path.display(), %error, "deleting an unreadable producer snapshot");
                    std::fs::remove_file(&path).map_err(io_error("deleting", &path))?;
                }
            }
        }
        Ok((state, None))
    }
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SNAPSHOT_EXT}"))
}

/// Snapshot files in `dir`, oldest first.
fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>, LogError> {
    let mut snapshots = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let entry = entry.map_err(io_error("listing", dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".snapshot")) else { continue };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(offset) = stem.parse::<i64>() {
                snapshots.push((offset, entry.path()));
            }
        }
    }
    snapshots.sort();
    Ok(snapshots)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: count,
        }
    }

    #[test]
    fn producers_silent_past_the_expiration_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = ProducerStateManager::new(dir.path());
        state.update(&header(1, 0, 0, 1, 0), 1_000);
        state.update(&header(2, 0, 0, 1, 1), 5_000);
        assert_eq!(state.remove_expired(10_000, 6_000), 1);
        assert_eq!(state.producer_count(), 1);
        // The forgotten producer's next batch is unknown, as in Kafka; the other one continues.
        assert!(matches!(state.check(&header(1, 0, 1, 1, 2)), Err(LogError::UnknownProducerId { .. })));
        assert_eq!(state.check(&header(2, 0, 1, 1, 2)).unwrap(), SequenceCheck::Append);
        assert_eq!(state.remove_expired(11_000, 6_000), 1);
    }

    #[test]
    fn sequences_wrap_to_zero() {
        assert_eq!(last_sequence(0, 4), 4);
        assert_eq!(last_sequence(i32::MAX - 1, 2), 0);
        assert_eq!(next_sequence(i32::MAX), 0);
    }

    #[test]
    fn applies_kafka_sequence_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = ProducerStateManager::new(dir.path());
        assert!(matches!(state.check(&header(7, 0, 3, 1, 0)), Err(LogError::UnknownProducerId { .. })));
        assert_eq!(state.check(&header(-1, -1, -1, 3, 0)).unwrap(), SequenceCheck::Append);
        for (i, seq) in [0, 2, 4, 6, 8, 10].into_iter().enumerate() {
            let h = header(7, 0, seq, 2, 100 + 2 * i as i64);
            assert_eq!(state.check(&h).unwrap(), SequenceCheck::Append);
            state.update(&h, 0);
        }
        // The last five are remembered, the first one fell out.
        let dup = state.check(&header(7, 0, 2, 2, 0)).unwrap();
        assert_eq!(
            dup,
            SequenceCheck::Duplicate(BatchMetadata { first_seq: 2, last_seq: 3, first_offset: 102, last_offset: 103 })
        );
        assert!(matches!(state.check(&header(7, 0, 0, 2, 0)), Err(LogError::OutOfOrderSequence { expected: 12, .. })));
        assert!(matches!(state.check(&header(7, 0, 13, 1, 0)), Err(LogError::OutOfOrderSequence { .. })));
        assert_eq!(state.check(&header(7, 0, 12, 1, 0)).unwrap(), SequenceCheck::Append);
        // Epochs: older rejected, newer must restart at 0.
        state.update(&header(7, 2, 0, 1, 200), 0);
        assert!(matches!(
            state.check(&header(7, 1, 1, 1, 0)),
            Err(LogError::InvalidProducerEpoch { current: 2, received: 1, .. })
        ));
        assert!(matches!(state.check(&header(7, 3, 5, 1, 0)), Err(LogError::OutOfOrderSequence { .. })));
        assert_eq!(state.check(&header(7, 3, 0, 1, 0)).unwrap(), SequenceCheck::Append);
    }

    #[test]
    fn snapshots_round_trip_and_only_two_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = ProducerStateManager::new(dir.path());
        state.update(&header(1, 0, 0, 3, 0), 0);
        state.take_snapshot(3).unwrap();
        state.update(&header(2, 5, 0, 1, 3), 0);
        state.take_snapshot(4).unwrap();
        state.take_snapshot(10).unwrap();
        let names: Vec<i64> = list_snapshots(dir.path()).unwrap().into_iter().map(|(o, _)| o).collect();
        assert_eq!(names, vec![4, 10]);

        // Log end 7: snapshot 10 describes cut batches and goes.
        let (loaded, from) = ProducerStateManager::load(dir.path(), 7).unwrap();
        assert_eq!(from, Some(4));
        assert_eq!(loaded.producer_count(), 2);
        assert!(matches!(loaded.check(&header(1, 0, 0, 3, 0)).unwrap(), SequenceCheck::Duplicate(_)));
        assert_eq!(list_snapshots(dir.path()).unwrap().len(), 1);

        // A damaged snapshot is skipped and deleted.
        std::fs::write(snapshot_path(dir.path(), 4), b"{\"version\":1,").unwrap();
        let (loaded, from) = ProducerStateManager::load(dir.path(), 7).unwrap();
        assert_eq!((from, loaded.producer_count()), (None, 0));
        assert!(list_snapshots(dir.path()).unwrap().is_empty());
    }
}
