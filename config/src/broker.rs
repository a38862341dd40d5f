//! Broker configuration: `millrace broker --config broker.toml`.

use crate::error::ConfigError;
use crate::units::{ByteSize, DurationMs};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How appended data reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushMode {
    /// acks=all produce requests are answered only after an fsync covering them; concurrent
    /// requests share one fsync (group commit). acks=1 is answered after the write to the page
    /// cache, as in Kafka. Nothing acknowledged to an acks=all producer is lost on power failure.
    Fsync,
    /// Data is fsynced every `flush_interval`; acknowledgements never wait. Faster, but a power
    /// failure loses up to one interval of acknowledged writes (a process crash loses nothing).
    Interval,
}

/// The whole broker configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// This broker's id, as reported in Metadata.
    pub node_id: i32,
    /// Where partitions are stored, one `<topic>-<partition>/` directory each.
    pub data_dir: PathBuf,
    /// Kafka protocol listener.
    pub listen: SocketAddr,
    /// The host:port clients are told to connect to (Metadata). Defaults to `listen`.
    pub advertised_listener: Option<String>,
    /// Admin HTTP listener with `/metrics` (Prometheus) and `/health`.
    pub admin_listen: SocketAddr,
    /// Cluster id reported to clients; generated once and stored in the data dir when absent.
    pub cluster_id: Option<String>,
    /// Storage defaults for every topic (each can be overridden per topic).
    pub log: LogSettings,
    /// Topic defaults and auto-creation.
    pub topics: TopicSettings,
    /// Network limits.
    pub server: ServerSettings,
    /// Consumer-group coordinator.
    pub groups: GroupSettings,
    /// Metadata-quorum RPC listener (Raft between controllers, broker heartbeats). Used only
    /// with `voters`: a single broker is a quorum of one inside its process, with no listener.
    pub controller_listen: Option<SocketAddr>,
    /// The metadata quorum, `"ID@HOST:PORT"` each (the controller listeners). Every broker of a
    /// cluster lists the same voters; a broker whose id is not among them joins as a non-voting
    /// member. Empty: this broker alone is the quorum.
    pub voters: Vec<String>,
    /// Partition replication between brokers.
    pub replication: ReplicationSettings,
    /// Broker liveness as seen by the metadata quorum.
    pub controller: ControllerSettings,
}

/// Replication settings (Kafka's `replica.*` and `default.replication.factor` keys).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationSettings {
    /// A follower that has not caught up with the leader's log end for this long leaves the ISR
    /// (`replica.lag.time.max.ms`).
    pub replica_lag_time_max: DurationMs,
    /// Replicas of a topic created without an explicit factor (`default.replication.factor`);
    /// absent: 3, or fewer when the quorum lists fewer brokers.
    pub default_replication_factor: Option<i16>,
    /// Default `min.insync.replicas` of new topics.
    pub min_insync_replicas: i32,
    /// How long a follower's fetch waits at the leader for new data (`replica.fetch.wait.max.ms`).
    pub fetch_max_wait: DurationMs,
    /// Bytes a follower fetches per partition per request (`replica.fetch.max.bytes`).
    pub fetch_partition_max_bytes: ByteSize,
    /// Bytes a follower fetches per request from one leader (`replica.fetch.response.max.bytes`).
    pub fetch_response_max_bytes: ByteSize,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        ReplicationSettings {
            replica_lag_time_max: DurationMs(10_000),
            default_replication_factor: None,
            min_insync_replicas: 1,
            fetch_max_wait: DurationMs(500),
            fetch_partition_max_bytes: ByteSize(1 << 20),
            fetch_response_max_bytes: ByteSize(10 << 20),
        }
    }
}

/// Broker liveness (Kafka's `broker.session.timeout.ms` / `broker.heartbeat.interval.ms`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerSettings {
    /// A broker that has not heartbeated for this long is fenced: it leaves every ISR and its
    /// partitions get new leaders.
    pub broker_session_timeout: DurationMs,
    /// How often a broker heartbeats to the active controller.
    pub broker_heartbeat_interval: DurationMs,
    /// Who may connect to the controller listener besides the voters (the hosts in `voters`,
    /// resolved to IP addresses), loopback and this broker's own addresses: IP addresses, CIDR
    /// networks (`"10.0.0.0/24"`) or host names. Brokers that are not voters must be covered,
    /// or they cannot join, register or heartbeat. There is no authentication yet: this list is
    /// the only thing keeping strangers from changing the cluster's metadata.
    pub allowed_peers: Vec<String>,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            broker_session_timeout: DurationMs(3_000),
            broker_heartbeat_interval: DurationMs(500),
            allowed_peers: Vec::new(),
        }
    }
}

/// One `controller.allowed_peers` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerSpec {
    /// An address or a network: the address and how many leading bits must match.
    Network(std::net::IpAddr, u8),
    /// A host name, resolved to its addresses.
    Host(String),
}

/// Parses one `controller.allowed_peers` entry: an IP address, `ADDRESS/PREFIX`, or a host name.
pub fn parse_peer(entry: &str) -> Result<PeerSpec, String> {
    let entry = entry.trim();
    if let Some((addr, prefix)) = entry.split_once('/') {
        let addr: std::net::IpAddr = addr.parse().map_err(|_| format!("`{entry}`: `{addr}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        return match prefix.parse::<u8>() {
            Ok(bits) if bits <= max => Ok(PeerSpec::Network(addr, bits)),
            _ => Err(format!("`{entry}`: the prefix length must be 0..={max}")),
        };
    }
    if let Ok(addr) = entry.parse::<std::net::IpAddr>() {
        return Ok(PeerSpec::Network(addr, if addr.is_ipv4() { 32 } else { 128 }));
    }
    let host_name = !entry.is_empty()
        && entry.len() <= 253
        && entry.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !host_name {
        return Err(format!("`{entry}` is neither an IP address, ADDRESS/PREFIX nor a host name"));
    }
    Ok(PeerSpec::Host(entry.to_string()))
}

/// Parses one `voters` entry, `ID@HOST:PORT`.
pub fn parse_voter(entry: &str) -> Result<(u64, String), String> {
    let (id, addr) = entry.split_once('@').ok_or_else(|| format!("`{entry}` is not ID@HOST:PORT (no '@')"))?;
    let id: u64 = id.trim().parse().map_err(|_| format!("`{entry}`: `{id}` is not a non-negative integer id"))?;
    let addr = addr.trim();
    let valid =
        addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !valid {
        return Err(format!("`{entry}`: `{addr}` is not HOST:PORT"));
    }
    Ok((id, addr.to_string()))
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

/// Storage defaults; per-topic Kafka keys (`segment.bytes`, `retention.ms`, …) override them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Roll the active segment when it reaches this size (Kafka `log.segment.bytes`).
    pub segment_bytes: ByteSize,
    /// Roll the active segment when it is this old (Kafka `log.roll.ms`).
    pub segment_ms: DurationMs,
    /// Delete segments whose newest record is older than this; `-1` keeps forever.
    #[serde(with = "crate::limits::duration")]
    pub retention_ms: Option<DurationMs>,
    /// Delete oldest segments while a partition is larger than this; `-1` is unlimited.
    #[serde(with = "crate::limits::size")]
    pub retention_bytes: Option<ByteSize>,
    /// Bytes of log between two sparse index entries.
    pub index_interval_bytes: ByteSize,
    /// How often retention runs.
    pub retention_check_interval: DurationMs,
    /// How often the log cleaner compacts `cleanup.policy=compact` topics (Kafka `log.cleaner.backoff.ms`).
    pub cleaner_interval: DurationMs,
    /// When appended data is fsynced; see [`FlushMode`].
    pub flush_mode: FlushMode,
    /// Period of the background fsync in `interval` mode (and a safety net in `fsync` mode).
    pub flush_interval: DurationMs,
    /// Refuse a produced record whose creation time is further than this in the past (Kafka
    /// `log.message.timestamp.before.max.ms`); `-1` (the default, as in Kafka) accepts any age,
    /// so an agent can backfill old logs.
    #[serde(with = "crate::limits::duration")]
    pub message_timestamp_before_max: Option<DurationMs>,
    /// Refuse a produced record whose creation time is further than this in the future (Kafka
    /// `log.message.timestamp.after.max.ms`, 1 hour as in Kafka 4): a clock far ahead would
    /// otherwise pin retention and time lookups; `-1` accepts any.
    #[serde(with = "crate::limits::duration")]
    pub message_timestamp_after_max: Option<DurationMs>,
    /// An idempotent producer's state (last sequences, for de-duplication) is dropped from a
    /// partition once it has not written there for this long (Kafka `producer.id.expiration.ms`).
    pub producer_id_expiration: DurationMs,
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
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            data_dir: PathBuf::from("millrace-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised_listener: None,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9644)),
            cluster_id: None,
            log: LogSettings::default(),
            topics: TopicSettings::default(),
            server: ServerSettings::default(),
            groups: GroupSettings::default(),
            controller_listen: None,
            voters: Vec::new(),
            replication: ReplicationSettings::default(),
            controller: ControllerSettings::default(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            segment_bytes: ByteSize(1 << 30),
            segment_ms: DurationMs(7 * 86_400_000),
            retention_ms: Some(DurationMs(7 * 86_400_000)),
            retention_bytes: None,
            index_interval_bytes: ByteSize(4096),
            retention_check_interval: DurationMs(300_000),
            cleaner_interval: DurationMs(15_000),
            flush_mode: FlushMode::Fsync,
            flush_interval: DurationMs(1_000),
            message_timestamp_before_max: None,
            message_timestamp_after_max: Some(DurationMs(3_600_000)),
            producer_id_expiration: DurationMs(86_400_000),
        }
    }
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
        }
    }
}

impl BrokerConfig {
    /// The address advertised to clients.
    pub fn advertised(&self) -> String {
        self.advertised_listener.clone().unwrap_or_else(|| self.listen.to_string())
    }

    /// The metadata quorum as `id -> "host:port"`; empty when this broker runs alone. Call
    /// after [`BrokerConfig::validate`], which reports malformed entries.
    pub fn voter_map(&self) -> std::collections::BTreeMap<u64, String> {
        self.voters.iter().filter_map(|v| parse_voter(v).ok()).collect()
    }

    /// Replication factor for topics created without one.
    pub fn default_replication_factor(&self) -> i16 {
        let brokers = self.voters.len().clamp(1, 3) as i16;
        self.replication.default_replication_factor.unwrap_or(brokers)
    }

    /// Checks cross-field rules. `origin` names the file (or "defaults") for error messages.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        if self.node_id < 0 {
            return Err(ConfigError::invalid(origin, "node_id", "must not be negative", "use 0 or a positive integer"));
        }
        if let Some(advertised) = &self.advertised_listener {
            let valid = advertised
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return Err(ConfigError::invalid(
                    origin,
                    "advertised_listener",
                    format!("`{advertised}` is not HOST:PORT"),
                    "write e.g. \"broker1.example.com:9092\"",
                ));
            }
        }
        if self.listen.port() != 0 && self.listen == self.admin_listen {
            return Err(ConfigError::invalid(
                origin,
                "admin_listen",
                "is the same address as `listen`",
                "give the admin HTTP listener its own port, e.g. 127.0.0.1:9644",
            ));
        }
        if self.log.segment_bytes.0 < 1024 || self.log.segment_bytes.0 > i32::MAX as u64 {
            return Err(ConfigError::invalid(
                origin,
                "log.segment_bytes",
                format!("{} is outside 1 KiB ..= 2 GiB", self.log.segment_bytes),
                "segments index positions with 32 bits; use e.g. \"1GiB\"",
            ));
        }
        if self.log.segment_ms.0 == 0 {
            return Err(ConfigError::invalid(origin, "log.segment_ms", "must be positive", "use e.g. \"7d\""));
        }
        if self.log.index_interval_bytes.0 == 0 || self.log.index_interval_bytes.0 > u32::MAX as u64 {
            return Err(ConfigError::invalid(
                origin,
                "log.index_interval_bytes",
                "must be between 1 and 4 GiB",
                "use 4096",
            ));
        }
        if self.log.flush_interval.0 == 0 {
            return Err(ConfigError::invalid(origin, "log.flush_interval", "must be positive", "use e.g. \"1s\""));
        }
        if self.log.cleaner_interval.0 == 0 {
            return Err(ConfigError::invalid(origin, "log.cleaner_interval", "must be positive", "use e.g. \"15s\""));
        }
        if self.log.retention_check_interval.0 == 0 {
            return Err(ConfigError::invalid(
                origin,
                "log.retention_check_interval",
                "must be positive",
                "use e.g. \"5m\"",
            ));
        }
        if self.topics.default_partitions < 1 {
            return Err(ConfigError::invalid(origin, "topics.default_partitions", "must be at least 1", "use 1"));
        }
        if self.groups.max_size == 0 {
            return Err(ConfigError::invalid(
                origin,
                "groups.max_size",
                "must be at least 1",
                "use e.g. 1000 (the default)",
            ));
        }
        if self.topics.max_partitions == 0 || self.topics.max_partitions_per_request == 0 {
            return Err(ConfigError::invalid(
                origin,
                "topics.max_partitions",
                "topics.max_partitions and topics.max_partitions_per_request must be at least 1",
                "use e.g. 10000 and 1000 (the defaults)",
            ));
        }
        if self.server.fetch_max_bytes.0 < 1024 || self.server.fetch_max_bytes.0 > i32::MAX as u64 {
            return Err(ConfigError::invalid(
                origin,
                "server.fetch_max_bytes",
                format!("{} is outside 1 KiB ..= 2 GiB", self.server.fetch_max_bytes),
                "use e.g. \"55MiB\" (the default)",
            ));
        }
        if self.log.producer_id_expiration.0 == 0 {
            return Err(ConfigError::invalid(
                origin,
                "log.producer_id_expiration",
                "must be positive: idempotent producers would lose their de-duplication state at once",
                "use e.g. \"1d\" (the default)",
            ));
        }
        if self.topics.max_message_bytes.0 < 64 || self.topics.max_message_bytes.0 > i32::MAX as u64 {
            return Err(ConfigError::invalid(
                origin,
                "topics.max_message_bytes",
                "must be between 64 bytes and 2 GiB",
                "use e.g. \"1MiB\"",
            ));
        }
        if self.server.max_request_bytes.0 < self.topics.max_message_bytes.0 {
            return Err(ConfigError::invalid(
                origin,
                "server.max_request_bytes",
                "is smaller than topics.max_message_bytes, so no maximal batch could ever be produced",
                "raise server.max_request_bytes (default \"100MiB\") or lower topics.max_message_bytes",
            ));
        }
        if self.server.max_inflight_requests_per_connection == 0 {
            return Err(ConfigError::invalid(
                origin,
                "server.max_inflight_requests_per_connection",
                "must be at least 1",
                "use 32",
            ));
        }
        self.validate_connections(origin)?;
        self.validate_cluster(origin)?;
        let groups = &self.groups;
        if groups.min_session_timeout > groups.max_session_timeout {
            return Err(ConfigError::invalid(
                origin,
                "groups.min_session_timeout",
                format!(
                    "{} is larger than groups.max_session_timeout ({})",
                    groups.min_session_timeout, groups.max_session_timeout
                ),
                "make the minimum at most the maximum, e.g. \"6s\" and \"30m\"",
            ));
        }
        if !(1..=10_000).contains(&groups.offsets_topic_partitions) {
            return Err(ConfigError::invalid(
                origin,
                "groups.offsets_topic_partitions",
                format!("{} is outside 1..=10000", groups.offsets_topic_partitions),
                "use 50 (Kafka's default)",
            ));
        }
        if groups.offsets_segment_bytes.0 < 1024 || groups.offsets_segment_bytes.0 > i32::MAX as u64 {
            return Err(ConfigError::invalid(
                origin,
                "groups.offsets_segment_bytes",
                "is outside 1 KiB ..= 2 GiB",
                "use \"100MiB\"",
            ));
        }
        Ok(())
    }

    fn validate_connections(&self, origin: &str) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.max_connections == 0 {
            return Err(ConfigError::invalid(
                origin,
                "server.max_connections",
                "must be at least 1",
                "use e.g. 1000 (each connection costs a file descriptor and about 40 KiB)",
            ));
        }
        if server.max_connections_per_ip == 0 {
            return Err(ConfigError::invalid(
                origin,
                "server.max_connections_per_ip",
                "must be at least 1",
                "use e.g. 1000, or fewer to keep one host from taking every connection",
            ));
        }
        if server.connections_max_idle.0 == 0 {
            return Err(ConfigError::invalid(
                origin,
                "server.connections_max_idle",
                "must be positive",
                "use e.g. \"10m\" (Kafka's default)",
            ));
        }
        let budget = server.queued_max_request_bytes.0;
        if budget < self.topics.max_message_bytes.0 {
            return Err(ConfigError::invalid(
                origin,
                "server.queued_max_request_bytes",
                format!(
                    "{} is smaller than topics.max_message_bytes ({}), so no maximal batch could ever be produced",
                    server.queued_max_request_bytes, self.topics.max_message_bytes
                ),
                "use e.g. \"256MiB\"; requests above it are refused like those above server.max_request_bytes",
            ));
        }
        for peer in &self.controller.allowed_peers {
            parse_peer(peer).map_err(|why| {
                ConfigError::invalid(
                    origin,
                    "controller.allowed_peers",
                    why,
                    "list IP addresses, networks or host names, e.g. [\"10.0.1.7\", \"10.0.2.0/24\", \"broker-4.example\"]",
                )
            })?;
        }
        Ok(())
    }

    fn validate_cluster(&self, origin: &str) -> Result<(), ConfigError> {
        let mut ids = std::collections::BTreeSet::new();
        for voter in &self.voters {
            let (id, _) = parse_voter(voter).map_err(|why| {
                ConfigError::invalid(
                    origin,
                    "voters",
                    why,
                    "list every voter as \"ID@HOST:PORT\", e.g. \"1@10.0.0.1:9093\"",
                )
            })?;
            if !ids.insert(id) {
                return Err(ConfigError::invalid(
                    origin,
                    "voters",
                    format!("voter id {id} is listed twice"),
                    "give every voter its own id",
                ));
            }
        }
        if !self.voters.is_empty() && self.controller_listen.is_none() {
            return Err(ConfigError::invalid(
                origin,
                "controller_listen",
                "is required when `voters` is set",
                "set it to this broker's entry in `voters`, e.g. \"0.0.0.0:9093\"",
            ));
        }
        if let Some(rf) = self.replication.default_replication_factor {
            if rf < 1 {
                return Err(ConfigError::invalid(
                    origin,
                    "replication.default_replication_factor",
                    "must be at least 1",
                    "use 3 for a cluster, 1 for a single broker",
                ));
            }
        }
        if self.replication.min_insync_replicas < 1 {
            return Err(ConfigError::invalid(
                origin,
                "replication.min_insync_replicas",
                "must be at least 1",
                "use 1 or 2",
            ));
        }
        if self.replication.replica_lag_time_max.0 == 0 {
            return Err(ConfigError::invalid(
                origin,
                "replication.replica_lag_time_max",
                "must be positive",
                "use e.g. \"10s\"",
            ));
        }
        let controller = &self.controller;
        if controller.broker_heartbeat_interval.0 == 0
            || controller.broker_heartbeat_interval.0 * 2 > controller.broker_session_timeout.0
        {
            return Err(ConfigError::invalid(
                origin,
                "controller.broker_heartbeat_interval",
                format!(
                    "{} must be positive and at most half of controller.broker_session_timeout ({})",
                    controller.broker_heartbeat_interval, controller.broker_session_timeout
                ),
                "use e.g. \"500ms\" with a \"3s\" session timeout",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod connection_limit_tests {
    use super::*;
    use crate::parse_broker;

    #[test]
    fn connection_limits_parse_and_are_checked() {
        let text = "[server]\nmax_connections = 10\nmax_connections_per_ip = 2\nconnections_max_idle = \"1s\"\n\
                    queued_max_request_bytes = \"8MiB\"\n";
        let config = parse_broker(text, "b.toml").unwrap();
        assert_eq!(config.server.max_connections, 10);
        assert_eq!(config.server.max_connections_per_ip, 2);
        assert_eq!(config.server.connections_max_idle, DurationMs(1000));
        assert_eq!(config.server.queued_max_request_bytes, ByteSize(8 << 20));
        for (text, key) in [
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            ("[server]\nmax_connections_per_ip = 0\n", "server.max_connections_per_ip"),
            ("[server]\nconnections_max_idle = 0\n", "server.connections_max_idle"),
            ("[server]\nqueued_max_request_bytes = \"64KiB\"\n", "server.queued_max_request_bytes"),
            ("[controller]\nallowed_peers = [\"10.0.0.0/33\"]\n", "controller.allowed_peers"),
            ("[controller]\nallowed_peers = [\"bad host\"]\n", "controller.allowed_peers"),
        ] {
            let err = parse_broker(text, "b.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn peers_are_addresses_networks_or_host_names() {
        let v4: std::net::IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(parse_peer("10.0.0.7"), Ok(PeerSpec::Network(v4, 32)));
        assert_eq!(parse_peer(" 10.0.0.7/24 "), Ok(PeerSpec::Network(v4, 24)));
        assert_eq!(parse_peer("::1"), Ok(PeerSpec::Network("::1".parse().unwrap(), 128)));
        assert_eq!(parse_peer("broker-4.example"), Ok(PeerSpec::Host("broker-4.example".into())));
        assert!(parse_peer("").is_err());
        assert!(parse_peer("10.0.0.1/x").is_err());
        assert!(parse_peer("::1/129").is_err());
    }
}
