//! The broker's Kafka listeners and their security: `[[listeners]]` (Kafka's `listeners`,
//! `advertised.listeners` and `listener.security.protocol.map` in one table per listener),
//! `[tls]` (the broker's certificate and the CA it trusts: Kafka's `ssl.keystore.*` and
//! `ssl.truststore.*`) and `[inter_broker]` (which listener brokers use among themselves and
//! the credentials this broker presents there).

use crate::error::ConfigError;
use crate::kafka_client::{SecurityProtocol, SASL_MECHANISMS};
use crate::secret::Secret;
use crate::units::DurationMs;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Whether a TLS listener asks clients for a certificate (Kafka's `ssl.client.auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// Asked for; a client without one is still accepted (as `User:ANONYMOUS` on SSL).
    Requested,
    /// Required: a client without a certificate signed by `tls.ca_file` is refused.
    Required,
}

/// One Kafka listener.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSettings {
    /// The listener's name (`EXTERNAL`, `INTERNAL`…): letters, digits and `_`.
    pub name: String,
    /// Address to bind.
    pub listen: SocketAddr,
    /// HOST:PORT clients of this listener are told to connect to (Metadata); default `listen`.
    #[serde(default)]
    pub advertised: Option<String>,
    /// Default: the listener's name when it is a protocol name (`SASL_SSL`…), else PLAINTEXT.
    #[serde(default)]
    pub security_protocol: Option<SecurityProtocol>,
    /// SASL mechanisms offered (Kafka's `sasl.enabled.mechanisms`); default SCRAM-SHA-512 and
    /// SCRAM-SHA-256.
    #[serde(default)]
    pub sasl_enabled_mechanisms: Option<Vec<String>>,
    /// Client certificates on TLS listeners (Kafka's `ssl.client.auth`).
    #[serde(default)]
    pub ssl_client_auth: ClientAuth,
}

impl ListenerSettings {
    /// A PLAINTEXT listener named `PLAINTEXT`: what `listen` alone configures.
    pub fn plaintext(listen: SocketAddr, advertised: Option<String>) -> ListenerSettings {
        ListenerSettings {
            name: "PLAINTEXT".into(),
            listen,
            advertised,
            security_protocol: Some(SecurityProtocol::Plaintext),
            sasl_enabled_mechanisms: None,
            ssl_client_auth: ClientAuth::None,
        }
    }

    /// The protocol this listener speaks.
    pub fn protocol(&self) -> SecurityProtocol {
        self.security_protocol.or_else(|| SecurityProtocol::from_name(&self.name)).unwrap_or_default()
    }

    /// The SASL mechanisms it offers, in preference order.
    pub fn mechanisms(&self) -> Vec<String> {
        self.sasl_enabled_mechanisms
            .clone()
            .unwrap_or_else(|| vec!["SCRAM-SHA-512".to_string(), "SCRAM-SHA-256".to_string()])
    }

    /// HOST:PORT advertised to this listener's clients.
    pub fn advertised_address(&self) -> String {
        self.advertised.clone().unwrap_or_else(|| self.listen.to_string())
    }
}

/// The broker's TLS identity and trust.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM certificate chain of this broker (leaf first).
    pub certificate_file: Option<PathBuf>,
    /// PEM private key of `certificate_file` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates trusted for client certificates and for other brokers' listeners.
    pub ca_file: Option<PathBuf>,
    /// How often the files are checked for a renewed certificate (also on SIGHUP).
    pub reload_interval: DurationMs,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings { certificate_file: None, key_file: None, ca_file: None, reload_interval: DurationMs(30_000) }
    }
}

/// How this broker connects to the others (replica fetches).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterBrokerSettings {
    /// The listener brokers use among themselves (Kafka's `inter.broker.listener.name`);
    /// default: the first listener.
    pub listener_name: Option<String>,
    /// Kafka's `sasl.mechanism.inter.broker.protocol`: SCRAM-SHA-512 unless set.
    pub sasl_mechanism: Option<String>,
    /// The user this broker authenticates as on a SASL inter-broker listener; it needs
    /// ClusterAction on the cluster (or be a super user).
    pub sasl_username: Option<String>,
    /// Its password; or `sasl_password_file`.
    pub sasl_password: Option<Secret>,
    /// A file holding the password, read at load time.
    pub sasl_password_file: Option<PathBuf>,
}

/// Checks the listeners (already including the one `listen` makes) against each other, the
/// TLS section and the inter-broker settings.
pub(super) fn validate_listeners(
    origin: &str,
    listeners: &[ListenerSettings],
    tls: &TlsSettings,
    inter_broker: &InterBrokerSettings,
    clustered: bool,
) -> Result<(), ConfigError> {
    let bad = |key: &str, problem: String, fix: &str| Err(ConfigError::invalid(origin, key, problem, fix));
    if listeners.is_empty() {
        return bad("listeners", "lists no listener".into(), "add a [[listeners]] table or set `listen`");
    }
    for (i, listener) in listeners.iter().enumerate() {
        let at = |key: &str| format!("listeners[{i}].{key}");
        let name = &listener.name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return bad(
                &at("name"),
                format!("`{name}` is not a listener name"),
                "use letters, digits and _, e.g. EXTERNAL",
            );
        }
        if let Some(other) = listeners[..i].iter().find(|l| l.name.eq_ignore_ascii_case(name)) {
            return bad(&at("name"), format!("`{}` is used twice", other.name), "give each listener its own name");
        }
        if let Some(other) = listeners[..i].iter().find(|l| l.listen == listener.listen && l.listen.port() != 0) {
            return bad(
                &at("listen"),
                format!("{} is also listener `{}`'s address", listener.listen, other.name),
                "give each listener its own port",
            );
        }
        if listener.security_protocol.is_none() && SecurityProtocol::from_name(name).is_none() {
            return bad(
                &at("security_protocol"),
                format!("is required: `{name}` is not a protocol name"),
                "set security_protocol = \"SASL_SSL\" (or PLAINTEXT, SSL, SASL_PLAINTEXT)",
            );
        }
        if let Some(advertised) = &listener.advertised {
            let valid = advertised
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return bad(
                    &at("advertised"),
                    format!("`{advertised}` is not HOST:PORT"),
                    "e.g. \"kafka1.example.com:9093\"",
                );
            }
        }
        let protocol = listener.protocol();
        if protocol.uses_tls() && (tls.certificate_file.is_none() || tls.key_file.is_none()) {
            return bad(
                "tls.certificate_file",
                format!("listener `{name}` is {protocol} but the broker has no certificate"),
                "set tls.certificate_file and tls.key_file (PEM)",
            );
        }
        if listener.ssl_client_auth != ClientAuth::None {
            if !protocol.uses_tls() {
                return bad(
                    &at("ssl_client_auth"),
                    format!("is set on a {protocol} listener"),
                    "use it on SSL listeners",
                );
            }
            if tls.ca_file.is_none() {
                return bad(
                    "tls.ca_file",
                    format!("listener `{name}` checks client certificates but no CA is trusted"),
                    "set tls.ca_file to the PEM of the CA that signs client certificates",
                );
            }
        }
        if let Some(mechanisms) = &listener.sasl_enabled_mechanisms {
            if !protocol.uses_sasl() {
                return bad(&at("sasl_enabled_mechanisms"), format!("is set on a {protocol} listener"), "remove it");
            }
            if mechanisms.is_empty() {
                return bad(&at("sasl_enabled_mechanisms"), "is empty".into(), "e.g. [\"SCRAM-SHA-512\"]");
            }
            if let Some(unknown) = mechanisms.iter().find(|m| !SASL_MECHANISMS.contains(&m.as_str())) {
                return bad(
                    &at("sasl_enabled_mechanisms"),
                    format!("`{unknown}` is not supported"),
                    "use SCRAM-SHA-512, SCRAM-SHA-256 and/or PLAIN",
                );
            }
        }
    }
    if tls.reload_interval.0 == 0 {
        return bad("tls.reload_interval", "must be positive".into(), "use e.g. \"30s\"");
    }
    let inter = match &inter_broker.listener_name {
        Some(wanted) => match listeners.iter().find(|l| &l.name == wanted) {
            Some(listener) => listener,
            None => {
                return bad(
                    "inter_broker.listener_name",
                    format!("`{wanted}` is not one of the listeners"),
                    "name one of the [[listeners]]",
                )
            }
        },
        None => &listeners[0],
    };
    if let Some(mechanism) = &inter_broker.sasl_mechanism {
        if !SASL_MECHANISMS.contains(&mechanism.as_str()) {
            return bad("inter_broker.sasl_mechanism", format!("`{mechanism}` is not supported"), "use SCRAM-SHA-512");
        }
    }
    if clustered && inter.protocol().uses_sasl() {
        if inter_broker.sasl_username.is_none() {
            return bad(
                "inter_broker.sasl_username",
                format!("is required: brokers reach each other on `{}`, a {} listener", inter.name, inter.protocol()),
                "set the user this broker authenticates as (a super user, or one granted ClusterAction)",
            );
        }
        if inter_broker.sasl_password.is_none() && inter_broker.sasl_password_file.is_none() {
            return bad(
                "inter_broker.sasl_password",
                "is required with inter_broker.sasl_username".into(),
                "set sasl_password (\"${ENV_VAR}\" works) or sasl_password_file",
            );
        }
    }
    if clustered && inter.protocol().uses_tls() && tls.ca_file.is_none() {
        return bad(
            "tls.ca_file",
            format!("is required: brokers reach each other over TLS on `{}` and must verify each other", inter.name),
            "set tls.ca_file to the CA that signs the brokers' certificates",
        );
    }
    Ok(())
}
