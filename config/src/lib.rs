//! Typed configuration for every millrace component.
//!
//! - [`broker`]: the broker's TOML file (`millrace broker --config`), with defaults and `validate()`.
//! - [`topic`]: per-topic settings under their Kafka names, resolved against broker defaults.
//! - [`sink`]: the sink workers' TOML file (`millrace sink --config`).
//! - [`kafka_client`]: Kafka's security protocols and client security properties.
//! - [`units`]: byte sizes and durations written the way people write them ("64MiB", "7d").
//! - [`error`]: errors that name the file, the key and the fix.
//! - [`secret`]: secrets redacted when shown, `*_file` keys; [`interpolate`]: `${VAR}` in agent
//!   and sink files; [`http_client`]: `http(s)://` URLs and the `tls` table of HTTP clients.

pub mod agent;
pub mod broker;
pub mod error;
pub mod http_client;
pub mod interpolate;
pub mod kafka_client;
mod limits;
pub mod secret;
pub mod sink;
pub mod template;
pub mod topic;
pub mod units;

pub use agent::AgentConfig;
pub use broker::{BrokerConfig, ClientAuth, FlushMode, InterBrokerSettings, ListenerSettings, TlsSettings};
pub use error::ConfigError;
pub use kafka_client::{KafkaClientSecurity, SecurityProtocol};
pub use sink::SinkConfig;
pub use topic::{topic_key_of_broker_key, EffectiveTopicConfig, TopicOverrides, DYNAMIC_BROKER_KEYS};

use std::path::Path;

/// Reads and validates a broker config file. CLI overrides are applied by the caller, which then
/// calls [`BrokerConfig::validate`] again.
pub fn load_broker(path: &Path) -> Result<BrokerConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse_broker(&text, &path.display().to_string())
}

/// Reads an agent config file and reports every problem found (unreadable, unparsable, or each
/// invalid key).
pub fn load_agent(path: &Path) -> Result<AgentConfig, Vec<ConfigError>> {
    load_listing_problems(path, parse_agent)
}

/// Parses agent config text and reports every invalid key; `origin` names its source.
pub fn parse_agent(text: &str, origin: &str) -> Result<AgentConfig, Vec<ConfigError>> {
    parse_listing_problems(text, origin, AgentConfig::resolve_secrets, AgentConfig::problems)
}

/// Reads a sink config file and reports every problem found.
pub fn load_sink(path: &Path) -> Result<SinkConfig, Vec<ConfigError>> {
    load_listing_problems(path, parse_sink)
}

/// Parses sink config text and reports every invalid key; `origin` names its source.
pub fn parse_sink(text: &str, origin: &str) -> Result<SinkConfig, Vec<ConfigError>> {
    parse_listing_problems(text, origin, SinkConfig::resolve_secrets, SinkConfig::problems)
}

fn load_listing_problems<T>(
    path: &Path,
    parse: fn(&str, &str) -> Result<T, Vec<ConfigError>>,
) -> Result<T, Vec<ConfigError>> {
    let text =
        std::fs::read_to_string(path).map_err(|source| vec![ConfigError::Read { path: path.to_path_buf(), source }])?;
    parse(&text, &path.display().to_string())
}

/// Replaces `${VAR}` in string values with the environment's values, parses the TOML, reads
/// secrets from their `*_file`s (`resolve`), then lists every problem `problems` finds (rather
/// than stopping at the first).
fn parse_listing_problems<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
    resolve: fn(&mut T, &str) -> Vec<ConfigError>,
    problems: fn(&T, &str) -> Vec<ConfigError>,
) -> Result<T, Vec<ConfigError>> {
    let parse_error = |message: String| vec![ConfigError::Parse { origin: origin.to_string(), message }];
    let text = interpolate::from_environment(text).map_err(|e| parse_error(e.to_string()))?;
    let mut config: T = toml::from_str(&text).map_err(|e| parse_error(e.to_string()))?;
    let mut found = resolve(&mut config, origin);
    found.extend(problems(&config, origin));
    if found.is_empty() {
        Ok(config)
    } else {
        Err(found)
    }
}

/// Parses and validates broker config text; `origin` names its source in errors.
pub fn parse_broker(text: &str, origin: &str) -> Result<BrokerConfig, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse { origin: origin.to_string(), message };
    let text =
        interpolate::interpolate(text, |name| std::env::var(name).ok()).map_err(|e| parse_error(e.to_string()))?;
    let mut config: BrokerConfig = toml::from_str(&text).map_err(|e| parse_error(e.to_string()))?;
    let inter = &mut config.inter_broker;
    if let Some(problem) = secret::resolve(
        origin,
        "inter_broker.",
        "sasl_password",
        &mut inter.sasl_password,
        inter.sasl_password_file.as_ref(),
    ) {
        return Err(problem);
    }
    config.validate(origin)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_broker_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/broker.toml");
        let config = load_broker(&path).unwrap();
        assert_eq!(config.effective_listeners()[0].listen.port(), 9092);
        assert_eq!(config.log.flush_mode, FlushMode::Fsync);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse_broker("listen = \"127.0.0.1:9092\"\nlisten_port = 1\n", "b.toml").unwrap_err().to_string();
        assert!(err.contains("b.toml") && err.contains("listen_port"), "{err}");
    }

    #[test]
    fn invalid_value_names_key_and_fix() {
        let err = parse_broker("[log]\nsegment_bytes = \"12B\"\n", "b.toml").unwrap_err().to_string();
        assert!(err.contains("log.segment_bytes") && err.contains("fix:"), "{err}");
        let err = parse_broker("[log]\nretention_ms = \"forever-ish\"\n", "b.toml").unwrap_err().to_string();
        assert!(err.contains("retention_ms"), "{err}");
    }

    #[test]
    fn unlimited_retention() {
        let config = parse_broker("[log]\nretention_ms = -1\nretention_bytes = \"10GiB\"\n", "b.toml").unwrap();
        assert_eq!(config.log.retention_ms, None);
        assert_eq!(config.log.retention_bytes.map(|b| b.0), Some(10 << 30));
    }

    #[test]
    fn cluster_keys_parse_and_validate() {
        let text = "node_id = 2\ncontroller_listen = \"127.0.0.1:9193\"\nvoters = [\"1@127.0.0.1:9093\", \"2@127.0.0.1:9193\"]\n";
        let config = parse_broker(text, "b.toml").unwrap();
        assert_eq!(config.voter_map().get(&2).map(String::as_str), Some("127.0.0.1:9193"));
        assert_eq!(config.default_replication_factor(), 2);
        let err = parse_broker("controller_listen = \"127.0.0.1:9093\"\nvoters = [\"one@host:1\"]\n", "b.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("voters") && err.contains("fix:"), "{err}");
        let err = parse_broker("voters = [\"1@h:1\"]\n", "b.toml").unwrap_err().to_string();
        assert!(err.contains("controller_listen"), "{err}");
        let err = parse_broker(
            "[controller]\nbroker_session_timeout = \"1s\"\nbroker_heartbeat_interval = \"1s\"\n",
            "b.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("broker_heartbeat_interval"), "{err}");
    }

    #[test]
    fn example_agent_config_loads_and_bad_ones_list_every_problem() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agent.toml");
        let config = load_agent(&path).unwrap();
        assert_eq!(config.inputs.file[0].include, vec!["/var/log/nginx/*.log".to_string()]);
        assert_eq!(config.inputs.prometheus[0].interval.0, 10_000);
        let text = "[[inputs.file]]\nname = \"a\"\ntopic = \"\"\ninclude = [\"[\"]\n\n[[inputs.prometheus]]\nname = \"a\"\ntopic = \"m\"\nurls = [\"ftp://x\"]\n";
        let problems = parse_agent(text, "a.toml").unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 4, "{text:#?}");
        assert!(text.iter().all(|p| p.starts_with("a.toml: key `inputs.")), "{text:#?}");
    }

    #[test]
    fn hostile_input_settings_default_safely_and_bad_values_are_named() {
        let text = "[[inputs.file]]\nname = \"f\"\ntopic = \"logs\"\ninclude = [\"/var/log/*.log\"]\n\n\
                    [[inputs.syslog]]\nname = \"s\"\ntopic = \"syslog\"\nlisten = \"127.0.0.1:5514\"\nprotocol = \"tcp\"\n";
        let config = parse_agent(text, "a.toml").unwrap();
        let file = &config.inputs.file[0];
        assert!(!file.follow_symlinks, "symbolic links are not followed unless asked for");
        assert_eq!(file.max_line_bytes.0, 10 << 20, "Filebeat's max_bytes");
        let syslog = &config.inputs.syslog[0];
        assert_eq!((syslog.max_connections, syslog.idle_timeout.0), (1024, 600_000));

        let text =
            "[[inputs.syslog]]\nname = \"s\"\ntopic = \"syslog\"\nlisten = \"127.0.0.1:5514\"\nprotocol = \"tcp\"\n\
                    max_connections = 0\nidle_timeout = \"0s\"\n";
        let problems: Vec<String> = parse_agent(text, "a.toml").unwrap_err().iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        for key in ["inputs.syslog[0].max_connections", "inputs.syslog[0].idle_timeout"] {
            assert!(
                problems.iter().any(|p| p.starts_with(&format!("a.toml: key `{key}`")) && p.contains("fix:")),
                "{key}: {problems:#?}"
            );
        }
        let text =
            "[[inputs.syslog]]\nname = \"s\"\ntopic = \"syslog\"\nlisten = \"127.0.0.1:5514\"\nprotocol = \"tcp\"\n\
                    max_connections = 100000\nidle_timeout = \"30s\"\n";
        let problems = parse_agent(text, "a.toml").unwrap_err();
        assert!(problems[0].to_string().contains("max_connections"), "{problems:?}");
    }

    #[test]
    fn example_sink_config_loads_and_mistakes_are_named() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sink.toml");
        let config = load_sink(&path).unwrap();
        assert_eq!(config.elasticsearch[0].common.topics, vec!["app-logs".to_string()]);
        assert_eq!(config.influxdb[0].database.as_deref(), Some("metrics"));
        // A misspelt key inside a sink table is refused, not ignored.
        let text = "[[elasticsearch]]\nname = \"es\"\ntopics = [\"t\"]\ngroup = \"g\"\nendpoints = [\"http://e:9200\"]\nbatch_max_event = 5\n";
        let err = parse_sink(text, "s.toml").unwrap_err();
        assert!(err[0].to_string().contains("batch_max_event"), "{err:?}");
        let text = "[[influxdb]]\nname = \"m\"\ntopics = []\ngroup = \"\"\nurl = \"ftp://x\"\n";
        let problems: Vec<String> = parse_sink(text, "s.toml").unwrap_err().iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems.iter().all(|p| p.starts_with("s.toml: key `influxdb[0].")), "{problems:#?}");
        assert_eq!(config.elasticsearch[0].common.max_in_flight, 2);
        let text = "[[elasticsearch]]\nname = \"es\"\ntopics = [\"t\"]\ngroup = \"g\"\nendpoints = [\"http://e:9200\"]\nmax_in_flight = 0\n";
        let err = parse_sink(text, "s.toml").unwrap_err();
        assert!(err[0].to_string().contains("elasticsearch[0].max_in_flight"), "{err:?}");
        assert_eq!(config.file[0].format, sink::FileFormat::ElasticsearchBulk);
        assert_eq!(config.file[0].index_or_default(), "logs-%Y.%m.%d");
    }

    #[test]
    fn every_example_file_loads_with_its_loader() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut loaded = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // A new example needs a loader here, so that it cannot rot unchecked.
            let result = match name.as_str() {
                "broker.toml" => load_broker(&path).map(drop).map_err(|e| e.to_string()),
                "agent.toml" => load_agent(&path).map(drop).map_err(|e| format!("{e:?}")),
                "sink.toml" => load_sink(&path).map(drop).map_err(|e| format!("{e:?}")),
                _ => panic!("{name}: no loader is known for this example; add it to this test"),
            };
            assert!(result.is_ok(), "{name}: {result:?}");
            loaded.push(name);
        }
        loaded.sort();
        assert_eq!(loaded, ["agent.toml", "broker.toml", "sink.toml"]);
    }

    #[test]
    fn file_sinks_parse_with_defaults_and_mistakes_are_named() {
        let text = "[[file]]\nname = \"m\"\ntopics = [\"metrics\"]\ngroup = \"g\"\npath = \"out/m.lp\"\n\
                    format = \"line_protocol\"\n";
        let config = parse_sink(text, "s.toml").unwrap();
        assert_eq!(config.file[0].precision_or_default(), sink::Precision::Ms);
        assert_eq!(config.file[0].common.batch_max_events, 5_000, "the common defaults apply");

        let text = "[[file]]\nname = \"a\"\ntopics = [\"t\"]\ngroup = \"g\"\npath = \"x\"\nformat = \"line_protocol\"\n\
                    index = \"logs\"\ngzip = true\n\n\
                    [[file]]\nname = \"b\"\ntopics = [\"t\"]\ngroup = \"g\"\npath = \"x\"\nformat = \"elasticsearch_bulk\"\n\
                    index = \"Logs-%Q\"\nprecision = \"s\"\n";
        let problems: Vec<String> = parse_sink(text, "s.toml").unwrap_err().iter().map(|p| p.to_string()).collect();
        for expected in ["file[0].index", "file[0].gzip", "file[1].path", "file[1].precision", "file[1].index"] {
            assert!(
                problems.iter().any(|p| p.contains(&format!("key `{expected}`")) && p.contains("fix:")),
                "{expected}: {problems:#?}"
            );
        }
        assert_eq!(problems.len(), 6, "{problems:#?}");

        let err = parse_sink(
            "[[file]]\nname = \"a\"\ntopics = [\"t\"]\ngroup = \"g\"\npath = \"x\"\nformat = \"csv\"\n",
            "s.toml",
        )
        .unwrap_err();
        assert!(err[0].to_string().contains("csv"), "{err:?}");
        let err = parse_sink(
            "[[file]]\nname = \"a\"\ntopics = [\"t\"]\ngroup = \"g\"\nformat = \"line_protocol\"\n",
            "s.toml",
        )
        .unwrap_err();
        assert!(err[0].to_string().contains("path"), "{err:?}");
    }
}
