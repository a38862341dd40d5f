//! Opening a partition directory after a clean or unclean shutdown.
//!
//! Non-tail segments were fsynced when they rolled, so only their indexes are checked (and
//! rebuilt if missing or bad). The tail segment may end in a torn write: every batch in it is
//! validated and the file is cut at the first invalid one. A torn tail never stops the broker;
//! damage inside older segments does, since cutting there would silently drop history.
//!
//! Leftovers of an interrupted compaction (see `cleaner`): a `<base>.log.cleaned` may be
//! incomplete and is deleted. A `<base>.log.swap` is a complete, fsynced cleaned segment: it is
//! deleted while `<base>.log` still exists (the old segment is whole; the cleaning is simply
//! lost), and renamed to `<base>.log` if that file is gone, completing the swap.

use super::error::{io_error, LogError};
use super::segment::{segment_path, sync_dir, IndexSettings, Segment};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What recovery found and repaired; the caller logs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments in the log after recovery.
    pub segments: usize,
    /// Bytes cut from the tail segment.
    pub truncated_bytes: u64,
    /// Log end offset after the cut, if anything was cut.
    pub truncated_at_offset: Option<i64>,
    /// Why the tail was cut.
    pub reason: Option<String>,
    /// Non-tail segments whose indexes were missing or invalid and were rebuilt (the tail's are
    /// rebuilt on every open and not counted).
    pub rebuilt_indexes: usize,
}

/// Recovered segments: the sealed ones oldest first, and the active (tail) one.
pub(crate) struct Recovered {
    pub sealed: Vec<Segment>,
    pub active: Segment,
    pub report: RecoveryReport,
}

/// Leftovers of interrupted operations (Kafka's cleaner and deletion suffixes, our temp files).
/// A `<base>.log.swap` is handled apart, by [`finish_swaps`].
const STRAY_SUFFIXES: [&str; 4] = [".cleaned", ".swap", ".deleted", ".tmp"];
/// Suffix of a cleaned segment waiting to replace `<base>.log`.
const LOG_SWAP_SUFFIX: &str = ".log.swap";

/// Base offset named by a segment file stem (exactly 20 digits).
fn parse_base(stem: &str) -> Option<i64> {
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// Lists `dir`, deleting stray and orphaned files; returns the segment base offsets.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = BTreeSet::new();
    let mut indexes = Vec::new();
    let mut swaps = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let path = entry.map_err(io_error("listing", dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if let Some(base) = name.strip_suffix(LOG_SWAP_SUFFIX).and_then(parse_base) {
            swaps.push((base, path));
            continue;
        }
        if STRAY_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)) {
            tracing::info!(file = %path.display(), "deleting a leftover file");
            std::fs::remove_file(&path).map_err(io_error("deleting", &path))?;
            continue;
        }
        let (stem, ext) = match name.rsplit_once('.') {
            Some(parts) => parts,
            None => continue,
        };
        match (parse_base(stem), ext) {
            (Some(base), "log") => {
                logs.insert(base);
            }
            (Some(base), "index" | "timeindex") => indexes.push((base, path)),
            _ => {}
        }
    }
    let completed = finish_swaps(dir, swaps, &logs)?;
    logs.extend(&completed);
    for (base, path) in indexes {
        if !logs.contains(&base) || completed.contains(&base) {
            // Left by a segment deletion that stopped half-way, or the index of the old version
            // of a segment whose cleaned version was just swapped in (it gets rebuilt).
            tracing::info!(file = %path.display(), "deleting an index without a segment");
            std::fs::remove_file(&path).map_err(io_error("deleting", &path))?;
        }
    }
    Ok(logs.into_iter().collect())
}

/// Deals with the `<base>.log.swap` files found: deleted if `<base>.log` exists, else renamed to
/// it. Returns the bases of the swaps completed; their indexes (if any) describe the old file.
fn finish_swaps(dir: &Path, swaps: Vec<(i64, PathBuf)>, logs: &BTreeSet<i64>) -> Result<Vec<i64>, LogError> {
    let mut completed = Vec::new();
    for (base, swap) in swaps {
        if logs.contains(&base) {
            // The swap never happened: the original is intact and stays.
            tracing::info!(file = %swap.display(), "deleting an unfinished compaction swap file");
            std::fs::remove_file(&swap).map_err(io_error("deleting", &swap))?;
        } else {
            // The original is gone, so the swap file (complete and fsynced before it got that
            // name) is the segment: deleting it would lose the data.
            let log = segment_path(dir, base, "log");
            tracing::info!(file = %swap.display(), "completing an interrupted compaction swap");
            std::fs::rename(&swap, &log).map_err(io_error("renaming", &swap))?;
            completed.push(base);
        }
    }
    if !completed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(completed)
}

/// Opens every segment in `dir` (creating the directory and a first empty segment if needed).
pub(crate) fn recover(dir: &Path, settings: IndexSettings) -> Result<Recovered, LogError> {
    std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    let bases = list_segments(dir)?;
    let mut report = RecoveryReport { segments: bases.len().max(1), ..RecoveryReport::default() };
    let Some((&tail_base, sealed_bases)) = bases.split_last() else {
        let active = Segment::create(dir, 0, settings)?;
        sync_dir(dir)?;
        // A new partition directory must itself survive power loss: persist its entry too.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        return Ok(Recovered { sealed: Vec::new(), active, report });
    };
    let mut sealed = Vec::with_capacity(sealed_bases.len());
    for (i, &base) in sealed_bases.iter().enumerate() {
        let end = bases.get(i + 1).copied().unwrap_or(tail_base);
        let (segment, rebuilt) = Segment::open_sealed(dir, base, end, settings)?;
        if segment.next_offset() != end {
            tracing::warn!(
                segment = %segment.log_path().display(),
                next_offset = segment.next_offset(),
                next_segment = end,
                "segment does not end where the next one starts"
            );
        }
        report.rebuilt_indexes += usize::from(rebuilt);
        sealed.push(segment);
    }
    let (active, cut) = Segment::open_tail(dir, tail_base, settings)?;
    if let Some((bytes, reason)) = cut {
        tracing::warn!(
            segment = %segment_path(dir, tail_base, "log").display(),
            truncated_bytes = bytes,
            %reason,
            "cut an invalid tail"
        );
        report.truncated_bytes = bytes;
        report.truncated_at_offset = Some(active.next_offset());
        report.reason = Some(reason);
    }
    Ok(Recovered { sealed, active, report })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::log::batch::test_batches::simple;
    use crate::log::batch::{set_base_offset, BatchHeader};

    const SETTINGS: IndexSettings = IndexSettings { interval_bytes: 0, max_bytes: 1024 };

    /// Writes a segment of `batches` batches of 2 records starting at `base`, sealed.
    fn write_segment(dir: &Path, base: i64, batches: i64) -> Segment {
        let mut segment = Segment::create(dir, base, SETTINGS).unwrap();
        for i in 0..batches {
            let mut batch = simple(2, 1_000 + i);
            set_base_offset(&mut batch, base + 2 * i).unwrap();
            let header = BatchHeader::parse(&batch).unwrap();
            segment.append(&batch, &header, 0).unwrap();
        }
        segment
    }

    #[test]
    fn empty_directory_gets_one_empty_segment_and_strays_go() {
        let dir = tempfile::tempdir().unwrap();
        let partition = dir.path().join("topic-0");
        let recovered = recover(&partition, SETTINGS).unwrap();
        assert_eq!(recovered.active.base_offset(), 0);
        assert_eq!(recovered.report.segments, 1);
        drop(recovered);

        for stray in
            ["00000000000000000000.log.cleaned", "x.swap", "00000000000000000005.log.deleted", "a.snapshot.tmp"]
        {
            std::fs::write(partition.join(stray), b"junk").unwrap();
        }
        std::fs::write(partition.join("00000000000000000777.index"), b"").unwrap();
        recover(&partition, SETTINGS).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(&partition).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex"]);
    }

    #[test]
    fn corrupt_batch_in_a_sealed_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = write_segment(dir.path(), 0, 3);
        first.seal().unwrap();
        let second = write_segment(dir.path(), 6, 1);
        drop((first, second));
        // Flip a byte inside the second batch and drop the index so it gets rebuilt (and read).
        let log = segment_path(dir.path(), 0, "log");
        let mut bytes = std::fs::read(&log).unwrap();
        let len = bytes.len();
        bytes[len / 2] ^= 0x55;
        std::fs::write(&log, bytes).unwrap();
        std::fs::remove_file(segment_path(dir.path(), 0, "index")).unwrap();
        match recover(dir.path(), SETTINGS) {
            Err(LogError::Corrupt { path, position, .. }) => {
                assert_eq!(path, log);
                assert!(position > 0);
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("corruption in a sealed segment went unnoticed"),
        }
    }

    #[test]
    fn sealed_segment_keeps_valid_indexes_and_max_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = write_segment(dir.path(), 0, 4);
        first.seal().unwrap();
        let entries = first.index_entries();
        drop(first);
        drop(write_segment(dir.path(), 8, 1));
        let recovered = recover(dir.path(), SETTINGS).unwrap();
        assert_eq!(recovered.report.rebuilt_indexes, 0);
        let sealed = &recovered.sealed[0];
        assert_eq!(sealed.index_entries(), entries);
        assert_eq!(sealed.max_timestamp(), Some((1_003, 7)));
        assert_eq!(sealed.next_offset(), 8);
        assert_eq!(recovered.active.next_offset(), 10);
    }
}
