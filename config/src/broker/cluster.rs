//! The cluster sections: `[replication]` between brokers, `[controller]` (broker liveness, who
//! may reach the controller listener and its mutual TLS), and the parsers of `voters` and
//! `allowed_peers` entries.

use super::listeners::TlsSettings;
use crate::units::{ByteSize, DurationMs};
use serde::{Deserialize, Serialize};

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
    /// Whether the active controller gives partitions back to their preferred (first) replica
    /// once it is in sync again, every 5 s (`auto.leader.rebalance.enable`); off, leaders move
    /// back only on `millrace cluster elect-leaders` (or `E` in `millrace top`).
    pub auto_leader_rebalance: bool,
    /// Who may connect to the controller listener besides the voters (the hosts in `voters`,
    /// resolved to IP addresses), loopback and this broker's own addresses: IP addresses, CIDR
    /// networks (`"10.0.0.0/24"`) or host names. Brokers that are not voters must be covered,
    /// or they cannot join, register or heartbeat. Without `[controller.tls]` this list is the
    /// only thing keeping strangers from changing the cluster's metadata.
    pub allowed_peers: Vec<String>,
    /// Mutual TLS between the controller listeners (`[controller.tls]`): this node's certificate
    /// and key, and the cluster CA that signs every node's. A node's certificate names its node
    /// id as the subject common name `node-<id>`; a peer is refused unless its certificate is
    /// signed by the cluster CA and names the node it claims to be.
    pub tls: TlsSettings,
}

/// The subject common name of the certificate of node `id` on the controller listener.
pub fn controller_node_name(id: u64) -> String {
    format!("node-{id}")
}

/// The node id a controller certificate's common name names (`node-<id>`).
pub fn controller_node_id(common_name: &str) -> Option<u64> {
    let id = common_name.strip_prefix("node-")?;
    // Exactly the decimal form: `node-02` and `node-+2` must not pass for node 2.
    id.parse::<u64>().ok().filter(|n| n.to_string() == id)
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            broker_session_timeout: DurationMs(3_000),
            broker_heartbeat_interval: DurationMs(500),
            auto_leader_rebalance: true,
            allowed_peers: Vec::new(),
            tls: TlsSettings::default(),
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
