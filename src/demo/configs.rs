//! The demo's files and ports, and the broker, agent and sink configurations it writes. Every
//! configuration is TOML text (commented, so it can be read and reused) that is checked with the
//! config crate's own parsers before it is written: a change of a config format fails the demo's
//! unit tests rather than the demo.

use super::secure::{Secure, User};
use crate::client::Client;
use anyhow::{bail, Context};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// Brokers in the demo cluster.
pub const BROKERS: i32 = 3;
/// Partitions of `logs` and `metrics`.
pub const PARTITIONS: i32 = 3;
/// Topic the agent tails the access log into.
pub const LOGS_TOPIC: &str = "logs";
/// Topic of the host metrics.
pub const METRICS_TOPIC: &str = "metrics";
/// Topic of records a destination refuses for good.
pub const DEAD_LETTER_TOPIC: &str = "dead-letters";
/// Consumer group of the logs sink.
pub const LOGS_GROUP: &str = "demo-logs";
/// Consumer group of the metrics sink.
pub const METRICS_GROUP: &str = "demo-metrics";

/// Where the logs go.
#[derive(Clone, Debug)]
pub enum LogsOut {
    /// Elasticsearch bulk NDJSON appended to a file.
    File(PathBuf),
    /// A real Elasticsearch, by base URL.
    Elasticsearch(String),
}

/// Where the metrics go.
#[derive(Clone, Debug)]
pub enum MetricsOut {
    /// Line protocol appended to a file.
    File(PathBuf),
    /// A real InfluxDB (v1 write API).
    InfluxDb {
        /// Base URL.
        url: String,
        /// Database.
        database: String,
    },
}

/// The ports of one broker.
#[derive(Clone, Copy, Debug)]
pub struct BrokerPorts {
    /// Node id, 1-based.
    pub id: i32,
    /// Kafka protocol listener of the clients (PLAINTEXT, or SASL_SSL with `--secure`).
    pub kafka: u16,
    /// With `--secure`: the mutual-TLS listener of the brokers and the demo's bootstrap.
    pub internal: Option<u16>,
    /// Metadata-quorum listener.
    pub controller: u16,
    /// Admin HTTP (/metrics, /health).
    pub admin: u16,
}

impl BrokerPorts {
    /// `127.0.0.1:PORT` of the Kafka listener.
    pub fn kafka_addr(&self) -> String {
        format!("127.0.0.1:{}", self.kafka)
    }

    /// `127.0.0.1:PORT` of the listener the demo bootstraps the cluster on: the internal one
    /// with `--secure`, else the only one.
    pub fn bootstrap_addr(&self) -> String {
        format!("127.0.0.1:{}", self.internal.unwrap_or(self.kafka))
    }
}

/// Everything the demo puts in its directory, and the ports it picked.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The demo directory (UTF-8, so it can be written into TOML).
    pub dir: PathBuf,
    /// The three brokers.
    pub brokers: Vec<BrokerPorts>,
    /// The agent's /metrics port.
    pub agent_metrics: u16,
    /// The sink's /metrics port.
    pub sink_metrics: u16,
    /// Destination of the logs.
    pub logs_out: LogsOut,
    /// Destination of the metrics.
    pub metrics_out: MetricsOut,
    /// With `--secure`: the CA, certificates and users' secrets.
    pub secure: Option<Secure>,
}

/// A TOML basic string holding `text`.
pub fn toml_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `path` as a glob pattern matching only itself.
fn glob_literal(path: &str) -> String {
    path.chars()
        .map(|c| match c {
            '[' | ']' | '*' | '?' => format!("[{c}]"),
            c => c.to_string(),
        })
        .collect()
}

/// `n` distinct loopback ports that were free a moment ago (all held open while choosing, so
/// none is picked twice).
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>().context("finding free ports")?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

impl Layout {
    /// A layout in `dir` on fresh free ports; `secure` makes the CA, certificates and secrets
    /// there now (they do not depend on the ports).
    pub fn new(dir: &Path, logs_out: LogsOut, metrics_out: MetricsOut, secure: bool) -> anyhow::Result<Layout> {
        if dir.to_str().is_none() {
            bail!("the demo directory {} is not valid UTF-8; choose another --dir", dir.display());
        }
        let ids: Vec<i32> = (1..=BROKERS).collect();
        let secure = if secure { Some(Secure::generate(dir, &ids)?) } else { None };
        let mut layout = Layout {
            dir: dir.to_path_buf(),
            brokers: Vec::new(),
            agent_metrics: 0,
            sink_metrics: 0,
            logs_out,
            metrics_out,
            secure,
        };
        layout.pick_ports()?;
        Ok(layout)
    }

    /// Picks new ports for everything (after a port was taken by someone else).
    pub fn pick_ports(&mut self) -> anyhow::Result<()> {
        let per_broker = if self.secure.is_some() { 4 } else { 3 };
        let brokers = BROKERS as usize;
        let ports = free_ports(brokers * per_broker + 2)?;
        self.brokers = (0..brokers)
            .map(|i| BrokerPorts {
                id: i as i32 + 1,
                kafka: ports[i * per_broker],
                controller: ports[i * per_broker + 1],
                admin: ports[i * per_broker + 2],
                internal: (per_broker == 4).then(|| ports[i * per_broker + 3]),
            })
            .collect();
        self.agent_metrics = ports[brokers * per_broker];
        self.sink_metrics = ports[brokers * per_broker + 1];
        Ok(())
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// A path inside the demo directory as a TOML string.
    fn toml_path(&self, relative: &str) -> String {
        toml_str(&self.path(relative).to_string_lossy())
    }

    /// The Kafka addresses of all brokers, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.brokers.iter().map(BrokerPorts::kafka_addr).collect::<Vec<_>>().join(",")
    }

    /// How `user` reaches the cluster on the clients' listener (PLAINTEXT without `--secure`,
    /// where every user is the same anonymous client).
    pub fn client(&self, user: User) -> Client {
        let security = self.secure.as_ref().map(|s| s.client_security(user)).unwrap_or_default();
        Client { bootstrap: self.bootstrap(), security }
    }

    /// How the demo reaches the cluster before any user exists: the bootstrap certificate on the
    /// internal listeners with `--secure`, else the plaintext listeners.
    pub fn bootstrap_client(&self) -> Client {
        let bootstrap: Vec<String> = self.brokers.iter().map(BrokerPorts::bootstrap_addr).collect();
        let security = self.secure.as_ref().map(Secure::bootstrap_security).unwrap_or_default();
        Client { bootstrap: bootstrap.join(","), security }
    }

    /// The generated access log.
    pub fn access_log(&self) -> PathBuf {
        self.path("access.log")
    }

    /// Where the child processes log.
    pub fn logs_dir(&self) -> PathBuf {
        self.path("logs")
    }

    /// Log file of a child process.
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }

    /// Configuration file of broker `id`.
    pub fn broker_config(&self, id: i32) -> PathBuf {
        self.path(&format!("broker-{id}.toml"))
    }

    /// Data directory of broker `id`.
    pub fn broker_data(&self, id: i32) -> PathBuf {
        self.path(&format!("data/broker-{id}"))
    }

    /// The agent's configuration file.
    pub fn agent_config(&self) -> PathBuf {
        self.path("agent.toml")
    }

    /// The sink's configuration file.
    pub fn sink_config(&self) -> PathBuf {
        self.path("sink.toml")
    }

    /// Default output file of the logs.
    pub fn default_logs_file(dir: &Path) -> PathBuf {
        dir.join("out").join("elasticsearch-bulk.ndjson")
    }

    /// Default output file of the metrics.
    pub fn default_metrics_file(dir: &Path) -> PathBuf {
        dir.join("out").join("metrics.lp")
    }

    /// Configuration of broker `id`.
    pub fn broker_toml(&self, id: i32) -> anyhow::Result<String> {
        let Some(broker) = self.brokers.iter().find(|b| b.id == id) else { bail!("no broker {id} in the demo") };
        let voters: Vec<String> =
            self.brokers.iter().map(|b| toml_str(&format!("{}@127.0.0.1:{}", b.id, b.controller))).collect();
        // With --secure the listeners are tables of their own, and no `listen` (plaintext).
        let (listen, security) = match (&self.secure, broker.internal) {
            (Some(secure), Some(internal)) => (String::new(), secure.broker_toml(id, broker.kafka, internal)?),
            (Some(_), None) => bail!("broker {id} has no internal listener port"),
            (None, _) => (format!("listen = \"127.0.0.1:{}\"\n", broker.kafka), String::new()),
        };
        Ok(format!(
            "# Broker {id} of the `millrace demo` cluster: {n} brokers, each a voter of the metadata quorum.\n\
             node_id = {id}\n\
             data_dir = {data}\n\
             {listen}\
             admin_listen = \"127.0.0.1:{admin}\"   # GET /metrics, /health\n\
             controller_listen = \"127.0.0.1:{controller}\"\n\
             voters = [{voters}]\n\
             \n\
             {security}\
             [replication]\n\
             # With 3 replicas, acks=all writes survive one broker being stopped.\n\
             min_insync_replicas = 2\n\
             \n\
             [groups]\n\
             # Each sink group has one member: no need to wait long for others to join.\n\
             initial_rebalance_delay = \"500ms\"\n",
            n = self.brokers.len(),
            data = toml_str(&self.broker_data(id).to_string_lossy()),
            admin = broker.admin,
            controller = broker.controller,
            voters = voters.join(", "),
        ))
    }

    /// Configuration of the agent: the access log into `logs`, host metrics into `metrics`.
    pub fn agent_toml(&self) -> String {
        format!(
            "# The `millrace demo` agent: tails the generated access log and samples this machine.\n\
             [agent]\n\
             data_dir = {data}              # checkpoints (registry.json)\n\
             metrics_listen = \"127.0.0.1:{metrics}\"\n\
             \n\
             [output]\n\
             bootstrap = {bootstrap}\n\
             acks = \"all\"\n\
             {security}\
             \n\
             [[inputs.file]]\n\
             name = \"access-log\"\n\
             topic = \"{logs}\"\n\
             include = [{include}]\n\
             start_at = \"beginning\"\n\
             # One file would put every line on one partition; spread them over all of them.\n\
             key = \"none\"\n\
             # ECS fields (source.ip, http.*, url.*, user_agent.*) and each line's own time.\n\
             module = \"nginx.access\"\n\
             [inputs.file.processors]\n\
             add_fields = {{ \"service.name\" = \"demo-web\" }}\n\
             \n\
             [[inputs.host_metrics]]\n\
             name = \"host\"\n\
             topic = \"{metrics_topic}\"\n\
             interval = \"5s\"\n",
            data = self.toml_path("data/agent"),
            metrics = self.agent_metrics,
            bootstrap = toml_str(&self.bootstrap()),
            security = self.secure.as_ref().map(|s| s.client_toml(User::Agent)).unwrap_or_default(),
            logs = LOGS_TOPIC,
            include = toml_str(&glob_literal(&self.access_log().to_string_lossy())),
            metrics_topic = METRICS_TOPIC,
        )
    }

    /// Configuration of the sink process: one sink (consumer group) per topic.
    pub fn sink_toml(&self) -> String {
        let common = |name: &str, topic: &str, group: &str| {
            format!(
                "name = \"{name}\"\ntopics = [\"{topic}\"]\ngroup = \"{group}\"\nbatch_timeout = \"500ms\"\n\
                 dead_letter_topic = \"{DEAD_LETTER_TOPIC}\"\n"
            )
        };
        let logs = match &self.logs_out {
            LogsOut::File(path) => format!(
                "# Log documents as Elasticsearch `_bulk` NDJSON (an action line, then the document), appended\n\
                 # and fsynced before the offsets are committed.\n\
                 [[file]]\n{}path = {}\nformat = \"elasticsearch_bulk\"\nindex = \"logs-%Y.%m.%d\"\n",
                common("logs", LOGS_TOPIC, LOGS_GROUP),
                toml_str(&path.to_string_lossy())
            ),
            LogsOut::Elasticsearch(url) => format!(
                "[[elasticsearch]]\n{}endpoints = [{}]\nindex = \"logs-%Y.%m.%d\"\n",
                common("logs", LOGS_TOPIC, LOGS_GROUP),
                toml_str(url)
            ),
        };
        let metrics = match &self.metrics_out {
            MetricsOut::File(path) => format!(
                "# Metric points as InfluxDB line protocol, one per line.\n\
                 [[file]]\n{}path = {}\nformat = \"line_protocol\"\nprecision = \"ms\"\n",
                common("metrics", METRICS_TOPIC, METRICS_GROUP),
                toml_str(&path.to_string_lossy())
            ),
            MetricsOut::InfluxDb { url, database } => format!(
                "[[influxdb]]\n{}url = {}\napi = \"v1\"\ndatabase = {}\nprecision = \"ms\"\n",
                common("metrics", METRICS_TOPIC, METRICS_GROUP),
                toml_str(url),
                toml_str(database)
            ),
        };
        format!(
            "# The `millrace demo` sinks.\n\
             [sink]\n\
             metrics_listen = \"127.0.0.1:{}\"\n\
             \n\
             [source]\n\
             bootstrap = {}\n\
             start_at = \"earliest\"\n\
             {}\
             \n\
             {logs}\n{metrics}",
            self.sink_metrics,
            toml_str(&self.bootstrap()),
            self.secure.as_ref().map(|s| s.client_toml(User::Sink)).unwrap_or_default(),
        )
    }

    /// Every configuration file with its text, each checked with the loader its process uses.
    pub fn configs(&self) -> anyhow::Result<Vec<(PathBuf, String)>> {
        let mut files = Vec::new();
        for broker in &self.brokers {
            let path = self.broker_config(broker.id);
            let text = self.broker_toml(broker.id)?;
            millrace_config::parse_broker(&text, &path.display().to_string())
                .context("the demo's broker configuration is invalid")?;
            files.push((path, text));
        }
        let path = self.agent_config();
        let text = self.agent_toml();
        millrace_config::parse_agent(&text, &path.display().to_string())
            .map_err(|problems| invalid("agent", &problems))?;
        files.push((path, text));
        let path = self.sink_config();
        let text = self.sink_toml();
        millrace_config::parse_sink(&text, &path.display().to_string())
            .map_err(|problems| invalid("sink", &problems))?;
        files.push((path, text));
        Ok(files)
    }

    /// Writes every configuration file and creates the directories the processes need.
    pub fn write_configs(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.logs_dir()).with_context(|| format!("creating {}", self.logs_dir().display()))?;
        for (path, text) in self.configs()? {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

fn invalid(what: &str, problems: &[millrace_config::ConfigError]) -> anyhow::Error {
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("the demo's {what} configuration is invalid:\n  {}", list.join("\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_config::sink::FileFormat;

    fn layout(dir: &Path, logs_out: LogsOut, metrics_out: MetricsOut) -> Layout {
        Layout::new(dir, logs_out, metrics_out, false).unwrap()
    }

    #[test]
    fn generated_configs_load_with_the_config_crate() {
        // Characters that need escaping in TOML and in glob patterns.
        let dir = Path::new("/tmp/demo \"quoted\" [x]\\y");
        let files = Layout::default_logs_file(dir);
        let metrics = Layout::default_metrics_file(dir);
        let layout = layout(dir, LogsOut::File(files.clone()), MetricsOut::File(metrics.clone()));
        let configs = layout.configs().unwrap();
        assert_eq!(configs.len(), 5);

        let broker = millrace_config::parse_broker(&layout.broker_toml(2).unwrap(), "b").unwrap();
        assert_eq!(broker.node_id, 2);
        assert_eq!(broker.voter_map().len(), 3);
        assert_eq!(broker.data_dir, layout.broker_data(2));
        assert_eq!(broker.effective_listeners()[0].listen.port(), layout.brokers[1].kafka);

        let agent = millrace_config::parse_agent(&layout.agent_toml(), "a").unwrap();
        assert_eq!(agent.output.bootstrap, layout.bootstrap());
        assert_eq!(agent.inputs.file[0].topic, LOGS_TOPIC);
        let pattern = &agent.inputs.file[0].include[0];
        assert_eq!(pattern, "/tmp/demo \"quoted\" [[]x[]]\\y/access.log", "a glob matching only the file");
        assert_eq!(agent.inputs.host_metrics[0].topic, METRICS_TOPIC);
        assert_eq!(agent.agent.data_dir, dir.join("data/agent"));

        let sink = millrace_config::parse_sink(&layout.sink_toml(), "s").unwrap();
        assert_eq!(sink.file.len(), 2);
        assert_eq!((sink.file[0].format, &sink.file[0].path), (FileFormat::ElasticsearchBulk, &files));
        assert_eq!((sink.file[1].format, &sink.file[1].path), (FileFormat::LineProtocol, &metrics));
        assert_eq!(sink.file[1].common.group, METRICS_GROUP);
    }

    #[test]
    fn secure_configs_load_with_the_config_crate() {
        use millrace_config::{KafkaClientSecurity, SecurityProtocol};
        let dir = std::env::temp_dir().join(format!("millrace-demo-configs-test-{} \"q\" [x]", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = LogsOut::File(Layout::default_logs_file(&dir));
        let layout = Layout::new(&dir, out, MetricsOut::File(Layout::default_metrics_file(&dir)), true).unwrap();
        // Each loader checks that the certificate and password files it names can be read.
        let checked = layout.configs().map(|c| c.len());
        let broker = millrace_config::parse_broker(&layout.broker_toml(3).unwrap(), "b").unwrap();
        let agent = millrace_config::parse_agent(&layout.agent_toml(), "a").unwrap();
        let sink = millrace_config::parse_sink(&layout.sink_toml(), "s").unwrap();
        let secure = layout.secure.clone().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(checked.unwrap(), 5);
        let ports = layout.brokers[2];
        let listeners: Vec<(u16, SecurityProtocol)> =
            broker.effective_listeners().iter().map(|l| (l.listen.port(), l.protocol())).collect();
        let internal = ports.internal.unwrap();
        assert_eq!(listeners, [(ports.kafka, SecurityProtocol::SaslSsl), (internal, SecurityProtocol::Ssl)]);
        assert_eq!(broker.voter_map().len(), 3);
        assert_eq!(broker.tls.ca_file.as_ref(), Some(&secure.ca_file));
        // The agent and the sink log in as their own users, with the passwords generated for them.
        for (security, user) in [(&agent.output.security, User::Agent), (&sink.source.security, User::Sink)] {
            // The password came from its file, and is the one the user is created with.
            let expected = KafkaClientSecurity {
                sasl_password_file: Some(secure.password_file(user)),
                ..secure.client_security(user)
            };
            assert_eq!(security, &expected);
        }
        assert_eq!(agent.output.bootstrap, layout.bootstrap());
        // The demo's own clients: SCRAM on the client listeners, the certificate on the internal ones.
        assert_eq!(layout.client(User::Operator).security.sasl_username.as_deref(), Some("operator"));
        let bootstrap = layout.bootstrap_client();
        assert!(bootstrap.bootstrap.contains(&format!("127.0.0.1:{internal}")), "{}", bootstrap.bootstrap);
        assert_eq!(bootstrap.security.security_protocol, SecurityProtocol::Ssl);
    }

    #[test]
    fn real_destinations_replace_the_files() {
        let out = LogsOut::Elasticsearch("http://127.0.0.1:9200".into());
        let metrics = MetricsOut::InfluxDb { url: "http://127.0.0.1:8086".into(), database: "millrace".into() };
        let layout = layout(Path::new("/tmp/d"), out, metrics);
        layout.configs().unwrap();
        let sink = millrace_config::parse_sink(&layout.sink_toml(), "s").unwrap();
        assert!(sink.file.is_empty());
        assert_eq!(sink.elasticsearch[0].common.group, LOGS_GROUP);
        assert_eq!(sink.influxdb[0].database.as_deref(), Some("millrace"));
        // A bad URL is reported as the sink config's own error.
        let layout = Layout { logs_out: LogsOut::Elasticsearch("ftp://x".into()), ..layout };
        let err = layout.configs().unwrap_err().to_string();
        assert!(err.contains("elasticsearch[0].endpoints"), "{err}");
    }

    #[test]
    fn ports_are_distinct() {
        let mut ports = free_ports(11).unwrap();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 11);
    }
}
