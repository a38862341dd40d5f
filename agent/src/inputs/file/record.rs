//! From a line to the record sent: encoded directly, or built as an event for JSON decoding and
//! processors; registered in flight for the checkpoint, and cut to fit the producer's limit.

use super::{char_boundary_at_or_before, FileTailer, Pending, Tailed, FIT_ROUNDS};
use crate::event::LogEvent;
use crate::pipeline::{Ack, Envelope};
use serde_json::Value;
use std::sync::Arc;

impl FileTailer {
    /// Builds the event, registered as in flight for the file's checkpoint; None when a processor
    /// dropped it (the checkpoint then moves over it with the records around it). A record larger
    /// than the producer accepts has its message cut until it fits, and is flagged `truncated`.
    pub(super) fn event_from(&self, tailed: &Tailed, p: Pending, now: &str) -> Option<Envelope> {
        let end = p.end;
        let Some(Encoded { payload, topic, key }) = self.fit(tailed, p, now) else {
            tailed.progress.skip_to(end);
            return None;
        };
        Some(Envelope {
            payload,
            input: self.input_name.clone(),
            topic,
            key,
            ack: Some(Ack::new(tailed.progress.clone(), end)),
        })
    }

    /// The record of `p`, its message cut (at a character boundary, flagged `truncated`) until
    /// key and record fit the producer's limit; None when a processor dropped it. The topic and
    /// key are those of the whole line.
    fn fit(&self, tailed: &Tailed, mut p: Pending, now: &str) -> Option<Encoded> {
        let whole = self.encode(tailed, &p, now)?;
        let room = self.record_limit.saturating_sub(whole.key.as_ref().map_or(0, |k| k.len()));
        if whole.payload.len() <= room {
            return Some(whole);
        }
        let with = |payload: Vec<u8>| Some(Encoded { payload, topic: whole.topic.clone(), key: whole.key.clone() });
        // What the record costs without its message; the message gets the rest.
        p.truncated = true;
        let text = std::mem::take(&mut p.text);
        let bare = self.encode(tailed, &p, now)?.payload;
        let available = room.saturating_sub(bare.len());
        let mut keep = text.len().min(available);
        for _ in 0..FIT_ROUNDS {
            keep = char_boundary_at_or_before(&text, keep);
            if keep == 0 {
                break;
            }
            p.text.clear();
            p.text.extend_from_slice(&text[..keep]);
            let payload = self.encode(tailed, &p, now)?.payload;
            if payload.len() <= room {
                tracing::debug!(path = %tailed.path.display(), offset = p.offset, kept = keep, of = text.len(), "line cut to fit the producer's message.max.bytes");
                return with(payload);
            }
            // JSON escapes made the message longer than its bytes: shrink in proportion.
            let used = payload.len().saturating_sub(bare.len()).max(1);
            let scaled = u64::try_from(keep).unwrap_or(u64::MAX).saturating_mul(available as u64) / used as u64;
            keep = usize::try_from(scaled).unwrap_or(0).min(keep - 1);
        }
        // Not even an empty message fits (processors adding much): the producer refuses the
        // record loudly and the file goes on (see `output`).
        with(bare)
    }

    /// The record of an event: encoded directly, or built, decoded and processed; None when a
    /// processor dropped it.
    fn encode(&self, tailed: &Tailed, p: &Pending, now: &str) -> Option<Encoded> {
        let message = String::from_utf8_lossy(&p.text);
        let mut flags: Vec<&str> = Vec::new();
        if p.truncated {
            flags.push("truncated");
        }
        if self.multiline.is_some() && p.text.contains(&b'\n') {
            flags.push("multiline");
        }
        if self.direct {
            let payload = tailed.encoder.encode(now, &message, p.offset, &flags);
            let topic = self.topic.fixed().cloned().unwrap_or_else(|| self.topic.topic(&serde_json::Map::new()));
            return Some(Encoded { payload, topic, key: tailed.partition_key.clone() });
        }
        let mut event = LogEvent::with_timestamp(message.into_owned(), now.to_string());
        event.set("host.name", Value::from(self.host.as_str()));
        event.set("input.type", Value::from("file"));
        event.set("input.name", Value::from(self.config.name.as_str()));
        event.set("log.file.path", Value::from(tailed.path.display().to_string()));
        event.set("log.file.device", Value::from(tailed.key.0));
        event.set("log.file.inode", Value::from(tailed.key.1));
        event.set("log.file.fingerprint", Value::from(format!("{:08x}", tailed.fingerprint)));
        event.set("log.offset", Value::from(p.offset));
        let mut flags: Vec<Value> = flags.into_iter().map(Value::from).collect();
        if self.config.json {
            match serde_json::from_slice::<Value>(&p.text) {
                Ok(Value::Object(fields)) => {
                    for (k, v) in fields {
                        // The agent's own fields win; the line's are kept under `json` then.
                        if matches!(k.as_str(), "@timestamp" | "host" | "input" | "log" | "event") {
                            event.set(&format!("json.{k}"), v);
                        } else {
                            event.doc.insert(k, v);
                        }
                    }
                }
                _ => flags.push(Value::from("json_error")),
            }
        }
        if !flags.is_empty() {
            event.set("log.flags", Value::Array(flags));
        }
        let mut doc = event.doc;
        if !self.processors.apply(&mut doc) {
            return None;
        }
        let topic = self.topic.topic(&doc);
        let key = match &self.key_template {
            Some(template) => crate::route::render_key(template, &doc),
            None => tailed.partition_key.clone(),
        };
        Some(Encoded { payload: serde_json::to_vec(&doc).unwrap_or_else(|_| b"{}".to_vec()), topic, key })
    }
}

/// A line's record and where it goes.
pub(super) struct Encoded {
    payload: Vec<u8>,
    topic: Arc<str>,
    key: Option<Arc<str>>,
}
