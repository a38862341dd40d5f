//! The dead-letter topic: records a destination refuses for good go there unchanged (same key
//! and value) with headers telling why and where they came from, so nothing is dropped silently
//! and an operator can inspect, fix and replay them.
//!
//! The writer only sees the [`DeadLetters`] trait, so its routing can be tested without a broker;
//! [`DeadLetterTopic`] is the real one.

use crate::record::{SourceRecord, ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC};
use millrace_config::sink::SourceSettings;
use millrace_producer::AsyncProducer;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use std::future::Future;
use std::time::Duration;

/// Where records refused for good are kept.
pub trait DeadLetters: Send + Sync + 'static {
    /// Why a send failed (it is retried, and logged).
    type Error: std::fmt::Display + Send;

    /// The topic's name, for logs.
    fn topic(&self) -> &str;

    /// Sends `record` with `error`; Ok once it is stored for good (the broker acknowledged it):
    /// only then may the record's offset be committed.
    fn send(&self, record: &SourceRecord<'_>, error: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A dead letter the broker did not take.
#[derive(Debug, thiserror::Error)]
#[error("producing to {topic}: {source}")]
pub struct DeadLetterError {
    /// The dead-letter topic.
    pub topic: String,
    /// librdkafka's error.
    pub source: KafkaError,
}

/// Producer for one sink's dead-letter topic.
pub struct DeadLetterTopic {
    producer: AsyncProducer,
    topic: String,
    sink: String,
}

impl DeadLetterTopic {
    /// A producer with acks=all and idempotence: a dead letter is acknowledged before the offset
    /// of its record is committed. It reaches the brokers as the sink's consumer does (same
    /// bootstrap and security keys of `[source]`); `[source.librdkafka]` holds consumer settings
    /// and is not applied to it.
    pub fn new(source: &SourceSettings, topic: &str, sink: &str) -> Result<DeadLetterTopic, KafkaError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &source.bootstrap)
            .set("client.id", format!("millrace-sink-{sink}-dead-letters"))
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000");
        for (key, value) in source.security.rdkafka_properties() {
            config.set(key, value);
        }
        let producer = AsyncProducer::new(&config, "dead-letters")?;
        Ok(DeadLetterTopic { producer, topic: topic.to_string(), sink: sink.to_string() })
    }
}

impl DeadLetters for DeadLetterTopic {
    type Error = DeadLetterError;

    fn topic(&self) -> &str {
        &self.topic
    }

    async fn send(&self, record: &SourceRecord<'_>, error: &str) -> Result<(), DeadLetterError> {
        // A replayed record refused again keeps its first origin.
        let first = record.first_position();
        let partition = first.partition.to_string();
        let offset = first.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "millrace.error", value: Some(error) })
            .insert(Header { key: "millrace.sink", value: Some(&self.sink) })
            .insert(Header { key: ORIGIN_TOPIC, value: Some(first.topic) })
            .insert(Header { key: ORIGIN_PARTITION, value: Some(&partition) })
            .insert(Header { key: ORIGIN_OFFSET, value: Some(&offset) });
        let mut message = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(record.payload).headers(headers);
        if let Some(key) = record.key {
            message = message.key(key);
        }
        if let Some(ts) = record.timestamp_ms {
            message = message.timestamp(ts);
        }
        self.producer
            .send(message, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|source| DeadLetterError { topic: self.topic.clone(), source })
    }
}
