//! The file destination (`[[file]]`): records encoded exactly as the Elasticsearch destination
//! ([`bulk::encode`]) or the InfluxDB destination ([`line_protocol::encode_record`]) would send
//! them, appended to a local file. A batch is appended and fsynced before any of its records is
//! answered `Accepted`, so offsets are committed only for data that is durable in the file.
//!
//! A write that fails part-way is cut back off the file before the failure is reported, so the
//! retry does not leave half a batch behind it. A file renamed or deleted under the sink (log
//! rotation, an operator emptying it) is noticed at the next batch, which goes to a new file at
//! the configured path.

use crate::destination::{Destination, Verdict, WriteFailure};
use crate::elasticsearch::bulk;
use crate::elasticsearch::index::IndexName;
use crate::influxdb::line_protocol;
use crate::record::SourceRecord;
use millrace_config::sink::{BulkAction, FileFormat, FileSink, Precision};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How records are encoded.
enum Encoding {
    Bulk { index: IndexName },
    LineProtocol { precision: Precision },
}

/// The open file and the identity it had when opened.
struct Open {
    file: File,
    identity: (u64, u64),
}

/// Appends records to a local file.
pub struct FileDestination {
    path: PathBuf,
    encoding: Encoding,
    /// Batches in flight at once are appended one after the other.
    open: Arc<Mutex<Option<Open>>>,
}

/// Opens `path` for appending, creating it and its directory.
fn open(path: &Path) -> std::io::Result<Open> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let meta = file.metadata()?;
    Ok(Open { file, identity: (meta.dev(), meta.ino()) })
}

/// Appends `body` to the file at `path` (reopening it when the path no longer names the open
/// file) and fsyncs it.
fn append(path: &Path, slot: &mut Option<Open>, body: &[u8]) -> std::io::Result<()> {
    let current = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    if slot.as_ref().is_none_or(|o| Some(o.identity) != current) {
        *slot = Some(open(path)?);
    }
    let Some(open) = slot.as_mut() else { return Err(std::io::Error::other("the file is not open")) };
    let start = open.file.metadata()?.len();
    let written = open.file.write_all(body).and_then(|()| open.file.sync_data());
    if let Err(e) = written {
        // Best effort: the retry appends the whole batch again.
        let _ = open.file.set_len(start);
        // The handle may be unusable (e.g. after EIO): open the file afresh next time.
        *slot = None;
        return Err(e);
    }
    Ok(())
}

impl FileDestination {
    /// A destination from its settings (already validated); opens (creates) the file so that an
    /// unwritable path stops the sink at start-up rather than stalling it.
    pub fn new(settings: &FileSink) -> Result<FileDestination, String> {
        let encoding = match settings.format {
            FileFormat::ElasticsearchBulk => Encoding::Bulk { index: IndexName::parse(&settings.index_or_default())? },
            FileFormat::LineProtocol => Encoding::LineProtocol { precision: settings.precision_or_default() },
        };
        let file =
            open(&settings.path).map_err(|e| format!("opening {} for appending: {e}", settings.path.display()))?;
        Ok(FileDestination { path: settings.path.clone(), encoding, open: Arc::new(Mutex::new(Some(file))) })
    }
}

impl Destination for FileDestination {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        match &self.encoding {
            // Ends with its own newline.
            Encoding::Bulk { index } => bulk::encode(record, index, BulkAction::Index, out),
            Encoding::LineProtocol { precision } => {
                line_protocol::encode_record(record.payload, *precision, out)?;
                out.push(b'\n');
                Ok(())
            }
        }
    }

    async fn write(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        let body = items.concat();
        let (path, open) = (self.path.clone(), self.open.clone());
        // File writes and fsync block: off the async workers.
        let written = tokio::task::spawn_blocking(move || {
            let mut slot = open.lock().unwrap_or_else(|p| p.into_inner());
            append(&path, &mut slot, &body)
        })
        .await;
        let failure = |reason: String| WriteFailure { reason, retry_after: None };
        match written {
            Ok(Ok(())) => Ok(vec![Verdict::Accepted; items.len()]),
            Ok(Err(e)) => Err(failure(format!("appending to {}: {e}", self.path.display()))),
            Err(e) => Err(failure(format!("appending to {}: the writing task failed: {e}", self.path.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use millrace_config::sink::Common;

    fn settings(path: &Path, format: FileFormat) -> FileSink {
        let common: Common = serde_json::from_str(r#"{"name":"f","topics":["t"],"group":"g"}"#).unwrap();
        FileSink { common, path: path.to_path_buf(), format, index: None, precision: None }
    }

    fn record(payload: &str, offset: i64) -> SourceRecord<'_> {
        SourceRecord {
            topic: "logs",
            partition: 0,
            offset,
            key: None,
            payload: payload.as_bytes(),
            timestamp_ms: Some(1_795_431_600_000),
            replayed_from: None,
        }
    }

    /// Encodes `records` and writes them as one batch, as the worker does.
    async fn write_batch(destination: &FileDestination, records: &[SourceRecord<'_>]) -> Vec<Verdict> {
        let encoded: Vec<Vec<u8>> = records
            .iter()
            .map(|r| {
                let mut out = Vec::new();
                destination.encode(r, &mut out).unwrap();
                out
            })
            .collect();
        let items: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        destination.write(&items).await.unwrap()
    }

    const LINE: &str = r#"{"@timestamp":"2026-11-23T11:00:00.123Z","host":{"name":"web-1"},"log":{"file":{"device":2049,"fingerprint":"0a0b0c0d","inode":77,"path":"/var/log/a.log"},"offset":4096},"message":"GET /"}"#;

    #[tokio::test]
    async fn bulk_batches_are_appended_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/es.ndjson");
        let destination = FileDestination::new(&settings(&path, FileFormat::ElasticsearchBulk)).unwrap();
        assert_eq!(write_batch(&destination, &[record(LINE, 0), record(r#"{"message":"b"}"#, 1)]).await.len(), 2);
        let verdicts = write_batch(&destination, &[record(r#"{"message":"c"}"#, 2)]).await;
        assert_eq!(verdicts, vec![Verdict::Accepted]);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        let meta: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(meta["index"]["_id"], "web-1:2049:77:0a0b0c0d:4096");
        assert_eq!(meta["index"]["_index"], "logs-2026.11.23");
        assert_eq!(lines[1], LINE);
        let meta: serde_json::Value = serde_json::from_str(lines[4]).unwrap();
        assert_eq!(meta["index"]["_id"], "logs:0:2");
        assert_eq!(lines[5], r#"{"message":"c"}"#);
        // Not a document: the worker dead-letters it.
        assert!(destination.encode(&record("not json", 3), &mut Vec::new()).is_err());
    }

    #[tokio::test]
    async fn line_protocol_points_are_appended_one_per_line_even_after_the_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.lp");
        let mut config = settings(&path, FileFormat::LineProtocol);
        config.precision = Some(Precision::S);
        let destination = FileDestination::new(&config).unwrap();
        let point = r#"{"@timestamp":"2026-11-23T11:00:00.000Z","name":"mem","tags":{},"fields":{"used":5},"host":{"name":"h"}}"#;
        write_batch(&destination, &[record(point, 0)]).await;
        write_batch(&destination, &[record(point, 1), record(point, 2)]).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.lines().all(|l| l.starts_with("mem,host=h used=5i 1795431600")), "{text}");
        std::fs::remove_file(&path).unwrap();
        write_batch(&destination, &[record(point, 3)]).await;
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1, "a new file at the path");
        assert!(destination.encode(&record(r#"{"name":"x"}"#, 4), &mut Vec::new()).is_err(), "no fields");
    }

    #[test]
    fn an_unwritable_path_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let err = FileDestination::new(&settings(&blocker.join("x.lp"), FileFormat::LineProtocol)).err().unwrap();
        assert!(err.contains("x.lp"), "{err}");
    }
}
