//! The broker output: librdkafka (through `rdkafka`) with acks=all and idempotence by default.
//! Every record carries its [`Ack`] as the delivery opaque; the delivery report completes it, so
//! a file checkpoint advances only past records the broker acknowledged. Records never time out
//! in the client (`message.timeout.ms = 0`): while the broker is away they wait, the bounded
//! client queue fills, and [`Output::send`] blocks the inputs (backpressure) instead of dropping.

use crate::pipeline::{Ack, Envelope};
use millrace_config::agent::{Acks, Compression, OutputSettings};
use millrace_producer::Polled;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext};
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
    /// Times the idempotent producer bumped its epoch (from librdkafka's statistics).
    pub epoch_bumps: AtomicU64,
    /// librdkafka's count of producer id/epoch assignments last seen (the first is the start).
    epoch_assignments: AtomicU64,
}

/// librdkafka's statistics interval when `output.librdkafka` does not set one: the epoch-bump
/// counter comes from them.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// The part of librdkafka's statistics the agent reads.
#[derive(serde::Deserialize)]
struct Statistics {
    eos: Option<ExactlyOnce>,
}

#[derive(serde::Deserialize)]
struct ExactlyOnce {
    producer_id: i64,
    producer_epoch: i64,
    /// Producer id/epoch assignments so far, the first one included.
    epoch_cnt: u64,
}

impl OutputStats {
    /// Takes in one statistics report; returns the bumps since the last one and the current
    /// producer id and epoch.
    fn observe_statistics(&self, raw: &[u8]) -> Option<(u64, i64, i64)> {
        let eos = serde_json::from_slice::<Statistics>(raw).ok()?.eos?;
        let before = self.epoch_assignments.fetch_max(eos.epoch_cnt, Ordering::AcqRel);
        // The first assignment (from 0 to 1) is the producer's start, not a bump.
        let bumps = eos.epoch_cnt.saturating_sub(before.max(1));
        self.epoch_bumps.fetch_add(bumps, Ordering::Relaxed);
        Some((bumps, eos.producer_id, eos.producer_epoch))
    }
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

    fn stats_raw(&self, statistics: &[u8]) {
        if let Some((bumps, producer_id, producer_epoch)) = self.stats.observe_statistics(statistics) {
            if bumps > 0 {
                // librdkafka renumbers every record not yet acknowledged under the new epoch,
                // including any whose earlier request reached the log though its answer was an
                // error (confluentinc/librdkafka#4953): the topic may hold those twice.
                tracing::warn!(
                    bumps,
                    producer_id,
                    producer_epoch,
                    "the idempotent producer bumped its epoch: records not yet acknowledged were sent again and a \
                     few may be stored twice (the Elasticsearch sink's ids, from each line's origin, absorb them)"
                );
            }
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
    producer: Polled<Context>,
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
            .set("message.timeout.ms", "0")
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        for (key, value) in &settings.librdkafka {
            config.set(key, value);
        }
        // Set last: validation keeps these properties out of `librdkafka`, and should a caller
        // skip it, the typed keys still win.
        for (key, value) in settings.security.rdkafka_properties() {
            config.set(key, value);
        }
        let stats = Arc::new(OutputStats::default());
        let producer = Polled::new(&config, Context { stats: stats.clone() }, "agent-output")
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

    #[test]
    fn epoch_bumps_are_counted_from_librdkafkas_statistics_but_not_the_first_assignment() {
        let stats = OutputStats::default();
        let report = |cnt: u64, epoch: i64| {
            format!(
                r#"{{"name":"p","brokers":{{}},"eos":{{"idemp_state":"Assigned","producer_id":7,"producer_epoch":{epoch},"epoch_cnt":{cnt}}}}}"#
            )
        };
        assert_eq!(stats.observe_statistics(report(1, 0).as_bytes()), Some((0, 7, 0)));
        assert_eq!(stats.observe_statistics(report(1, 0).as_bytes()), Some((0, 7, 0)));
        assert_eq!(stats.observe_statistics(report(3, 2).as_bytes()), Some((2, 7, 2)));
        assert_eq!(stats.observe_statistics(report(3, 2).as_bytes()), Some((0, 7, 2)));
        assert_eq!(stats.epoch_bumps.load(Ordering::Relaxed), 2);
        // A report without the eos section (no idempotence) or not JSON changes nothing.
        assert_eq!(stats.observe_statistics(br#"{"name":"p"}"#), None);
        assert_eq!(stats.observe_statistics(b"{"), None);
        assert_eq!(stats.epoch_bumps.load(Ordering::Relaxed), 2);
    }
}
