//! Broker configuration: `millrace broker --config broker.toml`.
//!
//! [`BrokerConfig`] (the file's top level) is here; its sections by what they configure:
//! - `storage`: `[log]`, [`LogSettings`] and [`FlushMode`].
//! - `clients`: what Kafka clients meet: `[server]` listener limits, `[topics]` defaults and
//!   auto-creation, `[groups]` coordinator settings.
//! - `listeners`: `[[listeners]]` with their security protocols, `[tls]`, `[inter_broker]`.
//! - `cluster`: `[replication]`, `[controller]` and the `voters` / `allowed_peers` entry parsers.
//! - `validate`: [`BrokerConfig::validate`], the checks across keys and sections.
//! - `authorization`: `[authorization]`, ACL enforcement and super users.

mod authorization;
mod clients;
mod cluster;
mod listeners;
mod storage;
mod validate;

pub use authorization::AuthorizationSettings;
pub use clients::{GroupSettings, ServerSettings, TopicSettings};
pub use cluster::{
    controller_node_id, controller_node_name, parse_peer, parse_voter, ControllerSettings, PeerSpec,
    ReplicationSettings,
};
pub use listeners::{ClientAuth, InterBrokerSettings, ListenerSettings, TlsSettings};
pub use storage::{FlushMode, LogSettings};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The Kafka listener of a broker configured with none.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9092));

/// The whole broker configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// This broker's id, as reported in Metadata.
    pub node_id: i32,
    /// The broker's own state (metadata quorum store, cluster id), and where partitions are
    /// stored, one `<topic>-<partition>/` directory each, unless `log_dirs` is set.
    pub data_dir: PathBuf,
    /// Kafka's `log.dirs`: directories (typically one per disk) that hold the partitions, each new
    /// replica going to the one holding the fewest. A directory whose disk fails (an I/O error,
    /// a full disk) goes offline alone: its replicas answer KAFKA_STORAGE_ERROR and their
    /// leadership moves to other brokers, while the others keep serving. Empty: `data_dir`.
    pub log_dirs: Vec<PathBuf>,
    /// A PLAINTEXT Kafka listener named `PLAINTEXT`: shorthand for a `[[listeners]]` table.
    /// Without either, the broker listens on 127.0.0.1:9092.
    pub listen: Option<SocketAddr>,
    /// The host:port clients of `listen` are told to connect to (Metadata). Defaults to `listen`.
    pub advertised_listener: Option<String>,
    /// Kafka listeners, each with its address, advertised address and security protocol.
    pub listeners: Vec<ListenerSettings>,
    /// The broker's TLS certificate and the CA it trusts.
    pub tls: TlsSettings,
    /// Which listener brokers use among themselves, and this broker's credentials there.
    pub inter_broker: InterBrokerSettings,
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
    /// ACL enforcement.
    pub authorization: AuthorizationSettings,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            data_dir: PathBuf::from("millrace-data"),
            log_dirs: Vec::new(),
            listen: None,
            advertised_listener: None,
            listeners: Vec::new(),
            tls: TlsSettings::default(),
            inter_broker: InterBrokerSettings::default(),
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
            authorization: AuthorizationSettings::default(),
        }
    }
}

impl BrokerConfig {
    /// The directories partitions live in: `log_dirs`, or `data_dir` when that is empty.
    pub fn partition_dirs(&self) -> Vec<PathBuf> {
        if self.log_dirs.is_empty() {
            vec![self.data_dir.clone()]
        } else {
            self.log_dirs.clone()
        }
    }

    /// The Kafka listeners: the PLAINTEXT one `listen` configures, then `[[listeners]]`; or
    /// PLAINTEXT on 127.0.0.1:9092 when neither is set.
    pub fn effective_listeners(&self) -> Vec<ListenerSettings> {
        let plain = match self.listen {
            Some(listen) => Some(listen),
            None if self.listeners.is_empty() => Some(DEFAULT_LISTEN),
            None => None,
        };
        let plain = plain.map(|listen| ListenerSettings::plaintext(listen, self.advertised_listener.clone()));
        plain.into_iter().chain(self.listeners.iter().cloned()).collect()
    }

    /// The listener brokers use among themselves (and the one whose address the broker
    /// registers as its main one).
    pub fn inter_broker_listener(&self) -> ListenerSettings {
        let listeners = self.effective_listeners();
        let wanted = self.inter_broker.listener_name.as_deref();
        let found = wanted.and_then(|name| listeners.iter().find(|l| l.name == name)).or(listeners.first());
        found.cloned().unwrap_or_else(|| ListenerSettings::plaintext(DEFAULT_LISTEN, None))
    }

    /// The inter-broker listener's advertised address.
    pub fn advertised(&self) -> String {
        self.inter_broker_listener().advertised_address()
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
}

#[cfg(test)]
mod connection_limit_tests {
    use super::*;
    use crate::parse_broker;
    use crate::units::{ByteSize, DurationMs};

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
