//! What flows from inputs to the output: [`Envelope`]s, the per-input [`Processors`], and the
//! acknowledgement bookkeeping ([`FileProgress`]) that lets a file checkpoint advance only past
//! lines the broker has acknowledged.

use crate::event::{get_path, remove_path, set_path};
use crate::transform::{GeoIpCache, Transforms, Verdict};
use millrace_config::agent::transforms::{Module, Transform};
use millrace_config::agent::Processors as ProcessorSettings;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One record on its way to the broker, already encoded (inputs encode on their own threads, so
/// the output only hands bytes to the producer).
pub struct Envelope {
    /// The encoded document (JSON).
    pub payload: Vec<u8>,
    /// Name of the input it came from (for metrics).
    pub input: Arc<str>,
    /// Destination topic.
    pub topic: Arc<str>,
    /// Partition key, if any.
    pub key: Option<Arc<str>>,
    /// Acknowledgement to report once the broker has the record.
    pub ack: Option<Ack>,
}

impl Envelope {
    /// Encodes a processed document.
    pub fn from_doc(
        doc: &Map<String, Value>,
        input: &Arc<str>,
        topic: &Arc<str>,
        key: Option<Arc<str>>,
        ack: Option<Ack>,
    ) -> Envelope {
        // A map with string keys always serializes; an empty object is the harmless fallback.
        let payload = serde_json::to_vec(doc).unwrap_or_else(|_| b"{}".to_vec());
        Envelope { payload, input: input.clone(), topic: topic.clone(), key, ack }
    }
}

/// Marks a file's bytes up to `end_offset` as delivered once the record is acknowledged.
pub struct Ack {
    /// The file (generation) the record came from.
    pub progress: Arc<FileProgress>,
    /// The byte after the record's last line.
    pub end_offset: u64,
}

impl Ack {
    /// An acknowledgement for a record ending at `end_offset`, registered as in flight at once (so
    /// a later dropped line cannot move the checkpoint past it before it is even sent).
    pub fn new(progress: Arc<FileProgress>, end_offset: u64) -> Ack {
        progress.register(end_offset);
        Ack { progress, end_offset }
    }

    /// The broker acknowledged the record.
    pub fn complete(self) {
        self.progress.complete(self.end_offset);
    }
}

/// Delivery progress of one file generation: records in flight by end offset, and the committed
/// offset below which every record was acknowledged. Acknowledgements may arrive out of order
/// (different partitions); the committed offset only moves over a contiguous acknowledged prefix.
#[derive(Debug)]
pub struct FileProgress {
    inner: Mutex<ProgressInner>,
}

#[derive(Debug)]
struct ProgressInner {
    committed: u64,
    in_flight: BTreeMap<u64, bool>,
}

impl FileProgress {
    /// Progress starting at `committed`.
    pub fn new(committed: u64) -> Arc<FileProgress> {
        Arc::new(FileProgress { inner: Mutex::new(ProgressInner { committed, in_flight: BTreeMap::new() }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A record ending at `end_offset` was handed to the output.
    pub fn register(&self, end_offset: u64) {
        self.lock().in_flight.insert(end_offset, false);
    }

    /// A record ending at `end_offset` was acknowledged.
    pub fn complete(&self, end_offset: u64) {
        let mut inner = self.lock();
        if let Some(done) = inner.in_flight.get_mut(&end_offset) {
            *done = true;
        }
        while let Some((&end, &true)) = inner.in_flight.first_key_value() {
            inner.in_flight.remove(&end);
            inner.committed = inner.committed.max(end);
        }
    }

    /// Offset below which everything was acknowledged.
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }

    /// Records handed over but not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Moves the committed offset forward where nothing was sent (lines dropped by a
    /// processor), once everything before is acknowledged.
    pub fn skip_to(&self, end_offset: u64) {
        let mut inner = self.lock();
        if inner.in_flight.is_empty() {
            inner.committed = inner.committed.max(end_offset);
        } else {
            // Acknowledged with the record before it.
            inner.in_flight.insert(end_offset, true);
        }
    }
}

/// An input's processors, compiled: `drop_matching` on the line as read, then the input's
/// [`Transforms`] (its module first), then `add_fields` and `rename_fields`.
#[derive(Debug, Default)]
pub struct Processors {
    drop_matching: Vec<regex::Regex>,
    transforms: Transforms,
    add_fields: Vec<(String, String)>,
    rename_fields: Vec<(String, String)>,
}

impl Processors {
    /// Compiles the settings (validated by the config loader already) with no transforms.
    pub fn new(settings: &ProcessorSettings) -> Result<Processors, String> {
        Processors::with_transforms(settings, None, &[])
    }

    /// Compiles the settings, a module and the transforms of an input; the error names the step.
    pub fn with_transforms(
        settings: &ProcessorSettings,
        module: Option<(Module, bool, Option<&str>)>,
        transforms: &[Transform],
    ) -> Result<Processors, String> {
        let transforms = Transforms::new(module, transforms, &mut GeoIpCache::default())?;
        Ok(Processors {
            drop_matching: settings
                .drop_matching
                .iter()
                .map(|r| regex::Regex::new(r))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?,
            transforms,
            add_fields: settings.add_fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            rename_fields: settings.rename_fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.drop_matching.is_empty()
            && self.transforms.is_empty()
            && self.add_fields.is_empty()
            && self.rename_fields.is_empty()
    }

    /// Applies drop, the transforms, add and rename in that order; false means the event is
    /// dropped.
    pub fn apply(&self, doc: &mut Map<String, Value>) -> bool {
        if !self.drop_matching.is_empty() {
            if let Some(message) = get_path(doc, "message").and_then(Value::as_str) {
                if self.drop_matching.iter().any(|r| r.is_match(message)) {
                    return false;
                }
            }
        }
        if self.transforms.apply(doc) == Verdict::Drop {
            return false;
        }
        for (path, value) in &self.add_fields {
            set_path(doc, path, Value::String(value.clone()));
        }
        for (from, to) in &self.rename_fields {
            if let Some(value) = remove_path(doc, from) {
                set_path(doc, to, value);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn committed_offset_moves_over_contiguous_acks_only() {
        let p = FileProgress::new(0);
        for end in [10, 20, 30] {
            p.register(end);
        }
        p.complete(20);
        assert_eq!(p.committed(), 0, "10 is still in flight");
        p.complete(10);
        assert_eq!(p.committed(), 20);
        p.skip_to(35);
        p.complete(30);
        assert_eq!((p.committed(), p.in_flight()), (35, 0));
    }

    #[test]
    fn processors_drop_add_rename() {
        let settings = ProcessorSettings {
            drop_matching: vec!["^DEBUG".into()],
            add_fields: [("labels.env".to_string(), "prod".to_string())].into(),
            rename_fields: [("message".to_string(), "log.original".to_string())].into(),
        };
        let processors = Processors::new(&settings).unwrap();
        let mut dropped = Map::new();
        dropped.insert("message".into(), Value::from("DEBUG noise"));
        assert!(!processors.apply(&mut dropped));
        let mut kept = Map::new();
        kept.insert("message".into(), Value::from("GET /"));
        assert!(processors.apply(&mut kept));
        let json = Value::Object(kept);
        assert_eq!(json["labels"]["env"], "prod");
        assert_eq!(json["log"]["original"], "GET /");
        assert!(json.get("message").is_none());
    }
}
