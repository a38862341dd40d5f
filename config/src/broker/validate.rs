//! [`BrokerConfig::validate`]: the rules a single key's type cannot express (ranges, and keys that
//! must agree with each other), each error naming the key and the fix.

use super::{parse_peer, parse_voter, BrokerConfig};
use crate::error::ConfigError;

impl BrokerConfig {
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
        self.validate_log_dirs(origin)?;
        let listeners = self.effective_listeners();
        if let Some(clash) = listeners.iter().find(|l| l.listen.port() != 0 && l.listen == self.admin_listen) {
            return Err(ConfigError::invalid(
                origin,
                "admin_listen",
                format!("is the same address as the Kafka listener `{}`", clash.name),
                "give the admin HTTP listener its own port, e.g. 127.0.0.1:9644",
            ));
        }
        let clustered = !self.voters.is_empty();
        super::listeners::validate_listeners(origin, &listeners, &self.tls, &self.inter_broker, clustered)?;
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
        self.authorization.validate(origin)?;
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

    fn validate_log_dirs(&self, origin: &str) -> Result<(), ConfigError> {
        let meta = self.data_dir.join("meta");
        for (i, dir) in self.log_dirs.iter().enumerate() {
            if dir.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    origin,
                    "log_dirs",
                    "holds an empty path",
                    "list one directory per disk",
                ));
            }
            if self.log_dirs[..i].contains(dir) {
                return Err(ConfigError::invalid(
                    origin,
                    "log_dirs",
                    format!("lists `{}` twice", dir.display()),
                    "list each directory once",
                ));
            }
            // The quorum's store is not a partition directory; sharing it would let a replica's
            // directory name collide with the store's files.
            if dir.starts_with(&meta) {
                return Err(ConfigError::invalid(
                    origin,
                    "log_dirs",
                    format!(
                        "`{}` is inside `{}`, where the metadata quorum keeps its store",
                        dir.display(),
                        meta.display()
                    ),
                    "use directories outside <data_dir>/meta",
                ));
            }
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
        if server.authentication_timeout.0 == 0 {
            return Err(ConfigError::invalid(
                origin,
                "server.authentication_timeout",
                "must be positive",
                "use e.g. \"10s\"",
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
        let tls = &self.controller.tls;
        let tls_files = [&tls.certificate_file, &tls.key_file, &tls.ca_file];
        if tls_files.iter().any(|f| f.is_some()) && tls_files.iter().any(|f| f.is_none()) {
            return Err(ConfigError::invalid(
                origin,
                "controller.tls",
                "needs certificate_file, key_file and ca_file together",
                "set all three: this node's certificate (CN=node-<node_id>), its key, and the cluster CA",
            ));
        }
        if tls.reload_interval.0 == 0 {
            return Err(ConfigError::invalid(
                origin,
                "controller.tls.reload_interval",
                "must be positive",
                "use e.g. \"30s\"",
            ));
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
