//! The broker output: librdkafka (through `rdkafka`) with acks=all and idempotence by default.
//! Every record carries its [`Ack`] as the delivery opaque; the delivery report completes it, so
//! a file checkpoint advances only past records the broker acknowledged. Records never time out
//! in the client (`message.timeout.ms = 0`): while the broker is away they wait, the bounded
//! client queue fills, and [`Output::send`] blocks the inputs (backpressure) instead of dropping.

use crate::pipeline::{Ack, Envelope};
use millrace_config::agent::{Acks, Compression, OutputSettings};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// librdkafka's `message.max.bytes` when `output.librdkafka` does not set it.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// What a record adds to its key and value when librdkafka checks it against `message.max.bytes`
/// (its `RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`, 36 bytes), plus a record batch's header (61): a
/// record at the limit still fits a batch of its own.
const RECORD_OVERHEAD: usize = 36 + 61;

/// The largest key plus value the producer accepts: `message.max.bytes` (from
/// `output.librdkafka`, else librdkafka's default) less a record's overhead. A longer record
/// would be refused, so inputs cut what they send to fit.
pub fn max_record_bytes(settings: &OutputSettings) -> usize {
    let configured = settings.librdkafka.get("message.max.bytes").and_then(|v| v.trim().parse::<usize>().ok());
    configured.unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES).saturating_sub(RECORD_OVERHEAD)
}

/// Whether librdkafka or the broker refused a record for its size: sending it again can never
/// succeed.
fn too_large(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge)
}

/// The agent's own stop purged the record from the producer's queue (the drain timed out): not
/// a refusal; the line is read and sent again after the restart, and the stop logs the count.
fn purged_at_stop(error: &KafkaError) -> bool {
    matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight))
}

/// Output errors.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The producer could not be created (bad setting).
    #[error("creating the broker producer for {bootstrap}: {source}")]
    Create {
        /// Bootstrap servers.
        bootstrap: String,
        /// librdkafka's error.
        source: KafkaError,
    },
}

/// Delivery counters.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Records acknowledged.
    pub delivered: AtomicU64,
    /// Bytes of acknowledged records.
    pub delivered_bytes: AtomicU64,
    /// Records the broker refused for good (e.g. too large); logged.
    pub failed: AtomicU64,
    /// librdkafka reported a fatal error (e.g. an idempotent producer's sequence broken): the
    /// producer accepts nothing more and the agent must restart.
    pub fatal: std::sync::atomic::AtomicBool,
}

struct Context {
    stats: Arc<OutputStats>,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            tracing::error!(%error, reason, "the producer hit a fatal error");
            self.stats.fatal.store(true, Ordering::Release);
        } else {
            tracing::warn!(%error, reason, "producer error");
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Option<Ack>>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        match result {
            Ok(message) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                let bytes = rdkafka::Message::payload(message).map_or(0, <[u8]>::len);
                self.stats.delivered_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                if let Some(ack) = *ack {
                    ack.complete();
                }
            }
            Err((error, _)) if purged_at_stop(error) => {
                tracing::debug!(%error, "record purged at stop; sent again after the restart");
            }
            Err((error, message)) => {
                // With no client-side timeout only a permanent refusal (or the stop's purge,
                // above) ends here.
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let topic = rdkafka::Message::topic(message);
                match *ack {
                    // Too large (the topic's max.message.bytes is below the producer's): sent
                    // again it would be refused again, and its file's checkpoint would never move
                    // past it. It is logged and counted, and the file goes on.
                    Some(ack) if too_large(error) => {
                        tracing::error!(topic, %error, end_offset = ack.end_offset, "the broker refused a record as too large; dropped, its file's checkpoint moves past it");
                        ack.complete();
                    }
                    // Otherwise the checkpoint does not move past it: the line is sent again
                    // after a restart.
                    _ => tracing::error!(topic, %error, "the broker refused a record for good"),
                }
            }
        }
    }
}

/// The producer.
pub struct Output {
    producer: ThreadedProducer<Context>,
    /// Delivery counters.
    pub stats: Arc<OutputStats>,
}

impl Output {
    /// Creates the producer.
    pub fn new(settings: &OutputSettings) -> Result<Output, OutputError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.bootstrap)
            .set("client.id", "millrace-agent")
            .set("acks", if settings.acks == Acks::All { "all" } else { "1" })
            .set("enable.idempotence", settings.idempotence.to_string())
            .set(
                "compression.codec",
                match settings.compression {
                    Compression::None => "none",
                    Compression::Gzip => "gzip",
                    Compression::Snappy => "snappy",
                    Compression::Lz4 => "lz4",
                    Compression::Zstd => "zstd",
                },
            )
            .set("linger.ms", settings.linger.0.to_string())
            .set("batch.size", settings.batch_bytes.0.min(i32::MAX as u64).to_string())
            .set("queue.buffering.max.kbytes", (settings.queue_bytes.0 / 1024).max(1).to_string())
            .set("message.timeout.ms", "0");
        for (key, value) in &settings.librdkafka {
            config.set(key, value);
        }
        // Set last: validation keeps these properties out of `librdkafka`, and should a caller
        // skip it, the typed keys still win.
        for (key, value) in settings.security.rdkafka_properties() {
            config.set(key, value);
        }
        let stats = Arc::new(OutputStats::default());
        let producer = config
            .create_with_context(Context { stats: stats.clone() })
            .map_err(|source| OutputError::Create { bootstrap: settings.bootstrap.clone(), source })?;
        Ok(Output { producer, stats })
    }

    /// Hands one record to the producer, waiting while its queue is full. With `stop` true the
    /// wait gives up and the envelope comes back.
    pub fn send(&self, envelope: Envelope, stop: &dyn Fn() -> bool) -> Result<(), Envelope> {
        let Envelope { payload, input, topic, key, ack } = envelope;
        let mut opaque = Box::new(ack);
        loop {
            let mut record = BaseRecord::with_opaque_to(&topic, opaque).payload(&payload);
            if let Some(key) = &key {
                record = record.key(key.as_bytes());
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                    opaque = record.delivery_opaque;
                    if stop() {
                        return Err(Envelope { payload, input, topic, key, ack: *opaque });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, record)) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    match *record.delivery_opaque {
                        // Inputs cut records to fit, so this is one that could not be cut enough
                        // (processors adding fields, say): dropped loudly, and its file goes on
                        // rather than stopping its checkpoint for good.
                        Some(ack) if too_large(&error) => {
                            tracing::error!(topic = %topic, %error, bytes = payload.len(), end_offset = ack.end_offset, "the producer refused a record; dropped, its file's checkpoint moves past it");
                            ack.complete();
                        }
                        // Otherwise the checkpoint stays before it: the line is sent again after
                        // a restart.
                        _ => tracing::error!(topic = %topic, %error, "the producer refused a record; dropped"),
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Tries once to queue an already encoded record without acknowledgement tracking; false
    /// when the producer's queue is full (other refusals are logged and count as sent).
    pub fn try_send_raw(&self, topic: &str, key: Option<&[u8]>, payload: &[u8]) -> bool {
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(None)).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        match self.producer.send(record) {
            Ok(()) => true,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => false,
            Err((error, _)) => {
                tracing::error!(%topic, %error, "the producer refused a record; dropped");
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }

    /// Records queued in the client, not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits up to `timeout` for every queued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.producer.flush(timeout).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_sized_by_the_producers_message_max_bytes() {
        let mut settings = OutputSettings::default();
        assert_eq!(max_record_bytes(&settings), 1_000_000 - RECORD_OVERHEAD);
        settings.librdkafka.insert("message.max.bytes".into(), "4000000".into());
        assert_eq!(max_record_bytes(&settings), 4_000_000 - RECORD_OVERHEAD);
        settings.librdkafka.insert("message.max.bytes".into(), "10".into());
        assert_eq!(max_record_bytes(&settings), 0);
    }
}
