//! How the CLIs reach a cluster: `--bootstrap` and, as Kafka's tools take it, `--command-config`
//! with the client's security properties (`security.protocol`, `sasl.*`, `ssl.*`). The same
//! settings drive both kinds of client the CLIs use: librdkafka ([`Client::rdkafka_config`]) and
//! millrace's own async connection ([`Client::connect`]).

use anyhow::{bail, Context};
use millrace_config::KafkaClientSecurity;
use millrace_protocol::client::Security;
use millrace_protocol::Connection;
use std::path::PathBuf;
use std::time::Duration;

/// The `--bootstrap` and `--command-config` options every cluster command takes.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientArgs {
    /// Brokers to talk to, HOST:PORT, comma-separated (the first that answers is used).
    #[arg(
        long,
        alias = "bootstrap-server",
        env = "MILLRACE_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub bootstrap: String,
    /// Kafka client properties (security.protocol, sasl.mechanism, sasl.username, sasl.password,
    /// ssl.ca.location, ssl.certificate.location, ssl.key.location), one `key=value` per line.
    #[arg(long, env = "MILLRACE_COMMAND_CONFIG", global = true, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

impl ClientArgs {
    /// The options, with the properties file read and checked.
    pub fn client(&self) -> anyhow::Result<Client> {
        let security = match &self.command_config {
            None => KafkaClientSecurity::default(),
            Some(path) => KafkaClientSecurity::load_properties(path).map_err(|problems| {
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("{}", listed.join("\n"))
            })?,
        };
        Ok(Client { bootstrap: self.bootstrap.clone(), security })
    }
}

/// Where a cluster is and how to reach it securely.
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// HOST:PORT, comma-separated.
    pub bootstrap: String,
    /// The client's security properties.
    pub security: KafkaClientSecurity,
}

impl Client {
    /// A librdkafka configuration with the brokers and security properties set.
    pub fn rdkafka_config(&self, client_id: &str) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap).set("client.id", client_id);
        for (key, value) in self.security.rdkafka_properties() {
            config.set(key, value);
        }
        config
    }

    /// Connects to the first broker that answers (and logs in, as the properties say).
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        let security = protocol_security(&self.security)?;
        let mut last = None;
        for addr in self.bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match Connection::connect_with(addr, Duration::from_secs(10), &security).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(e).context("connecting to the cluster"),
            None => bail!("--bootstrap names no broker"),
        }
    }
}

/// The TLS configuration and SASL login of millrace's own client for `security`.
pub fn protocol_security(security: &KafkaClientSecurity) -> anyhow::Result<Security> {
    Security::from_config(security)
}

/// Who the brokers take a client with `security` for, as Kafka names principals, and how it
/// connects: `User:alice over SASL_SSL (SCRAM-SHA-512)`, `User:CN=carol over SSL`,
/// `User:ANONYMOUS over PLAINTEXT`.
pub fn principal(security: &KafkaClientSecurity) -> anyhow::Result<String> {
    let protocol = security.security_protocol;
    if protocol.uses_sasl() {
        let user = security.sasl_username.as_deref().unwrap_or_default();
        return Ok(format!("User:{user} over {protocol} ({})", security.mechanism()));
    }
    // On SSL the broker names the client by its certificate's subject (Kafka's default mapping).
    if let (true, Some(cert)) = (protocol.uses_tls(), &security.ssl_certificate_location) {
        let chain = millrace_protocol::tls::load_certs(cert).context("reading ssl.certificate.location")?;
        let subject = chain.first().and_then(|leaf| millrace_protocol::tls::certificate_subject(leaf));
        if let Some(subject) = subject {
            return Ok(format!("User:{subject} over {protocol}"));
        }
    }
    Ok(format!("User:ANONYMOUS over {protocol}"))
}
