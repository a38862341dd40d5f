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
            Err((error, message)) => {
                // With no client-side timeout only a permanent refusal ends here. The checkpoint
                // does not move past it: the line is sent again after a restart.
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(topic = rdkafka::Message::topic(message), %error, "the broker refused a record for good");
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
                    tracing::error!(topic = %topic, %error, "the producer refused a record; dropped");
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    drop(record);
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
