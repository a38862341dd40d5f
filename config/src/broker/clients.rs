//! The sections Kafka clients meet: `[server]` (listener limits), `[topics]` (defaults and
//! auto-creation) and `[groups]` (the consumer-group coordinator).

use crate::units::{ByteSize, DurationMs};
use serde::{Deserialize, Serialize};

/// Network limits of the Kafka listener.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Largest request frame accepted (Kafka `socket.request.max.bytes`); bigger frames close the connection.
    pub max_request_bytes: ByteSize,
    /// Requests read ahead and processed per connection while earlier responses are pending.
    pub max_inflight_requests_per_connection: usize,
    /// Open client connections (Kafka `max.connections`); more are accepted and closed at once.
    pub max_connections: usize,
    /// Open client connections from one IP address (Kafka `max.connections.per.ip`).
    pub max_connections_per_ip: usize,
    /// A connection that has sent no request for this long, with none in flight, is closed
    /// (Kafka `connections.max.idle.ms`).
    pub connections_max_idle: DurationMs,
    /// Memory for request bytes across all connections (Kafka `queued.max.request.bytes`): a
    /// request's buffer grows from this budget as its bytes arrive and returns to it once its
    /// response is written; reading waits while it is used up. A request larger than the whole
    /// budget closes its connection.
    pub queued_max_request_bytes: ByteSize,
    /// Most record bytes one Fetch response carries (Kafka `fetch.max.bytes`); a client's larger
    /// `max_bytes`, or `max_bytes <= 0`, gets this.
    pub fetch_max_bytes: ByteSize,
    /// Time a new connection has to finish its TLS handshake and SASL login; slower ones are
    /// closed, so unauthenticated peers cannot sit on connection slots.
    pub authentication_timeout: DurationMs,
    /// Wait before answering a failed login, then close (Kafka
    /// `connection.failed.authentication.delay.ms`): slows password guessing.
    pub failed_authentication_delay: DurationMs,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_request_bytes: ByteSize(100 << 20),
            max_inflight_requests_per_connection: 32,
            max_connections: 1000,
            max_connections_per_ip: 1000,
            connections_max_idle: DurationMs(600_000),
            queued_max_request_bytes: ByteSize(256 << 20),
            fetch_max_bytes: ByteSize(55 << 20),
            authentication_timeout: DurationMs(10_000),
            failed_authentication_delay: DurationMs(1_000),
        }
    }
}

/// Topic defaults.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicSettings {
    /// Create a topic when a client asks for it in Metadata or produces to it (Kafka `auto.create.topics.enable`).
    pub auto_create: bool,
    /// Partitions of an auto-created topic, or of CreateTopics with -1 (Kafka `num.partitions`).
    pub default_partitions: i32,
    /// Largest record batch a producer may send (Kafka `message.max.bytes`).
    pub max_message_bytes: ByteSize,
    /// Partitions the cluster may hold in all (each costs open files and maps on its replicas);
    /// CreateTopics, CreatePartitions and auto-creation beyond it get `POLICY_VIOLATION`.
    pub max_partitions: u32,
    /// Partitions one request may create (CreateTopics, CreatePartitions, or the topics one
    /// Metadata or Produce request auto-creates).
    pub max_partitions_per_request: u32,
}

impl Default for TopicSettings {
    fn default() -> Self {
        TopicSettings {
            auto_create: true,
            default_partitions: 1,
            max_message_bytes: ByteSize(1_048_588),
            max_partitions: 10_000,
            max_partitions_per_request: 1_000,
        }
    }
}

/// Consumer-group coordinator settings (Kafka's `group.*` and `offsets.*` broker keys).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSettings {
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    pub min_session_timeout: DurationMs,
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    pub max_session_timeout: DurationMs,
    /// How long the first rebalance of an empty group waits for more members (`group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay: DurationMs,
    /// Partitions of the internal `__consumer_offsets` topic (`offsets.topic.num.partitions`); fixed once created.
    pub offsets_topic_partitions: i32,
    /// Segment size of `__consumer_offsets` (`offsets.topic.segment.bytes`).
    pub offsets_segment_bytes: ByteSize,
    /// Committed offsets of a group are dropped this long after it became empty (`offsets.retention.minutes`).
    pub offsets_retention: DurationMs,
    /// Largest metadata string stored with a committed offset (`offset.metadata.max.bytes`).
    pub offset_metadata_max_bytes: ByteSize,
    /// Members (joined or waiting to re-join with their new id) one group may have
    /// (`group.max.size`); a client joining a full group gets `GROUP_MAX_SIZE_REACHED`.
    pub max_size: u32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            min_session_timeout: DurationMs(6_000),
            max_session_timeout: DurationMs(1_800_000),
            initial_rebalance_delay: DurationMs(3_000),
            offsets_topic_partitions: 50,
            offsets_segment_bytes: ByteSize(100 << 20),
            offsets_retention: DurationMs(7 * 86_400_000),
            offset_metadata_max_bytes: ByteSize(4096),
            max_size: 1000,
        }
    }
}
