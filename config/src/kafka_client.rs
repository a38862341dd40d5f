//! How a Kafka client reaches the broker securely: Kafka's `security.protocol` and the `sasl.*`
//! and `ssl.*` client properties, shared by the agent's `[output]`, the sinks' `[source]`, the
//! CLIs' `--command-config` files, `millrace top` and brokers fetching from each other.
//!
//! - [`SecurityProtocol`]: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL — also what a broker listener
//!   speaks.
//! - [`KafkaClientSecurity`]: the properties, checked ([`KafkaClientSecurity::problems`]),
//!   handed to librdkafka ([`KafkaClientSecurity::rdkafka_properties`]) or read from a Java
//!   properties file ([`KafkaClientSecurity::from_properties`]).

use crate::error::ConfigError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Kafka's security protocols, named as Kafka names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum SecurityProtocol {
    /// Neither encrypted nor authenticated.
    #[default]
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    /// TLS; the client may be authenticated by its certificate.
    #[serde(rename = "SSL")]
    Ssl,
    /// SASL authentication without encryption: passwords of PLAIN travel in clear.
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL authentication over TLS.
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, for messages listing the choices.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The protocol named `name`, case-insensitively (librdkafka accepts either case).
    pub fn from_name(name: &str) -> Option<SecurityProtocol> {
        SecurityProtocol::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether the connection is TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether the client authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The librdkafka properties [`KafkaClientSecurity`] sets, with the TOML key that sets each.
const TYPED_PROPERTIES: [(&str, &str); 9] = [
    ("security.protocol", "security_protocol"),
    ("sasl.mechanism", "sasl_mechanism"),
    ("sasl.mechanisms", "sasl_mechanism"),
    ("sasl.username", "sasl_username"),
    ("sasl.password", "sasl_password"),
    ("ssl.ca.location", "ssl_ca_location"),
    ("ssl.certificate.location", "ssl_certificate_location"),
    ("ssl.key.location", "ssl_key_location"),
    ("ssl.endpoint.identification.algorithm", "ssl_endpoint_identification_algorithm"),
];

/// The SASL mechanisms millrace speaks, client and broker side.
pub const SASL_MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

/// A Kafka client's security properties (Kafka's client property names, dots as underscores in
/// TOML: `security_protocol`, `sasl_mechanism`, `ssl_ca_location`…).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaClientSecurity {
    /// `security.protocol`.
    pub security_protocol: SecurityProtocol,
    /// `sasl.mechanism`: SCRAM-SHA-512 (default), SCRAM-SHA-256 or PLAIN.
    pub sasl_mechanism: Option<String>,
    /// `sasl.username`.
    pub sasl_username: Option<String>,
    /// `sasl.password`; or `sasl_password_file`.
    pub sasl_password: Option<Secret>,
    /// A file holding `sasl.password`, read at load time.
    pub sasl_password_file: Option<PathBuf>,
    /// `ssl.ca.location`: PEM CA certificates the broker's certificate must chain to (default:
    /// the system's trusted roots).
    pub ssl_ca_location: Option<PathBuf>,
    /// `ssl.certificate.location`: PEM client certificate, for listeners that require one.
    pub ssl_certificate_location: Option<PathBuf>,
    /// `ssl.key.location`: the client certificate's PEM private key.
    pub ssl_key_location: Option<PathBuf>,
    /// `ssl.endpoint.identification.algorithm`: `https` (default: the broker's certificate must
    /// name the host connected to) or `none`.
    pub ssl_endpoint_identification_algorithm: Option<String>,
}

impl KafkaClientSecurity {
    /// The SASL mechanism in use (SCRAM-SHA-512 unless set).
    pub fn mechanism(&self) -> &str {
        self.sasl_mechanism.as_deref().unwrap_or("SCRAM-SHA-512")
    }

    /// Whether the broker's host name is checked against its certificate.
    pub fn verify_hostname(&self) -> bool {
        !self.ssl_endpoint_identification_algorithm.as_deref().is_some_and(|a| a.eq_ignore_ascii_case("none"))
    }

    /// Reads `sasl_password_file` into `sasl_password` (call once, at load time). `at` is the
    /// dotted prefix of the table (`output.`).
    pub fn resolve_secrets(&mut self, origin: &str, at: &str) -> Option<ConfigError> {
        crate::secret::resolve(origin, at, "sasl_password", &mut self.sasl_password, self.sasl_password_file.as_ref())
    }

    /// Every problem, each naming its key under `at`.
    pub fn problems(&self, origin: &str, at: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, problem: String, fix: &str| {
            problems.push(ConfigError::invalid(origin, &format!("{at}{key}"), problem, fix));
        };
        let protocol = self.security_protocol;
        if let Some(mechanism) = &self.sasl_mechanism {
            if !SASL_MECHANISMS.contains(&mechanism.as_str()) {
                bad(
                    "sasl_mechanism",
                    format!("`{mechanism}` is not supported"),
                    "use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN",
                );
            }
        }
        if protocol.uses_sasl() {
            if self.sasl_username.as_deref().is_none_or(str::is_empty) {
                bad(
                    "sasl_username",
                    format!("is required with security_protocol = \"{protocol}\""),
                    "set the user's name",
                );
            }
            if self.sasl_password.is_none() && self.sasl_password_file.is_none() {
                bad(
                    "sasl_password",
                    format!("is required with security_protocol = \"{protocol}\""),
                    "set sasl_password (\"${ENV_VAR}\" works) or sasl_password_file",
                );
            }
        } else if self.sasl_username.is_some() || self.sasl_password.is_some() || self.sasl_password_file.is_some() {
            bad(
                "security_protocol",
                format!("is \"{protocol}\", which sends no SASL credentials, yet sasl_username/sasl_password are set"),
                "use SASL_SSL (or SASL_PLAINTEXT on a trusted network)",
            );
        }
        let tls_files = [
            ("ssl_ca_location", &self.ssl_ca_location),
            ("ssl_certificate_location", &self.ssl_certificate_location),
            ("ssl_key_location", &self.ssl_key_location),
        ];
        for (key, path) in tls_files {
            match path {
                Some(_) if !protocol.uses_tls() => {
                    bad(key, format!("is set but security_protocol \"{protocol}\" is not TLS"), "use SSL or SASL_SSL")
                }
                Some(path) if std::fs::metadata(path).is_err() => {
                    bad(key, format!("`{}` cannot be read", path.display()), "give the path of a PEM file")
                }
                _ => {}
            }
        }
        if self.ssl_certificate_location.is_some() != self.ssl_key_location.is_some() {
            bad(
                "ssl_key_location",
                "a client certificate needs both ssl_certificate_location and ssl_key_location".into(),
                "set both, or neither",
            );
        }
        if let Some(algorithm) = &self.ssl_endpoint_identification_algorithm {
            if !["https", "none"].contains(&algorithm.to_ascii_lowercase().as_str()) {
                bad(
                    "ssl_endpoint_identification_algorithm",
                    format!("`{algorithm}` is neither https nor none"),
                    "use https",
                );
            }
        }
        problems
    }

    /// The librdkafka properties that carry these settings (`security.protocol`, `sasl.*`,
    /// `ssl.*`); nothing for a PLAINTEXT client.
    pub fn rdkafka_properties(&self) -> Vec<(&'static str, String)> {
        let protocol = self.security_protocol;
        let mut properties = vec![("security.protocol", protocol.name().to_ascii_lowercase())];
        if protocol.uses_sasl() {
            properties.push(("sasl.mechanism", self.mechanism().to_string()));
            properties.push(("sasl.username", self.sasl_username.clone().unwrap_or_default()));
            let password = self.sasl_password.as_ref().map(|s| s.expose().to_string()).unwrap_or_default();
            properties.push(("sasl.password", password));
        }
        if protocol.uses_tls() {
            let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
            if let Some(ca) = path(&self.ssl_ca_location) {
                properties.push(("ssl.ca.location", ca));
            }
            if let Some(cert) = path(&self.ssl_certificate_location) {
                properties.push(("ssl.certificate.location", cert));
            }
            if let Some(key) = path(&self.ssl_key_location) {
                properties.push(("ssl.key.location", key));
            }
            let algorithm = if self.verify_hostname() { "https" } else { "none" };
            properties.push(("ssl.endpoint.identification.algorithm", algorithm.to_string()));
        }
        properties
    }

    /// Problems of a `librdkafka` passthrough table (`at` is its dotted path with the dot,
    /// `output.librdkafka.`) used beside these properties. A property that a typed key sets
    /// (`security.protocol`, `sasl.username`, `ssl.ca.location`…) is refused there, naming the
    /// typed key: with two homes one would silently win over the other, and a security setting
    /// must say one thing. Other `ssl.*` / `sasl.*` properties (cipher suites, CRLs) pass through.
    pub fn passthrough_problems(origin: &str, at: &str, table: &BTreeMap<String, String>) -> Vec<ConfigError> {
        table
            .keys()
            .filter_map(|property| {
                let (_, typed) =
                    TYPED_PROPERTIES.iter().find(|(name, _)| name.eq_ignore_ascii_case(property.trim()))?;
                Some(ConfigError::invalid(
                    origin,
                    &format!("{at}\"{property}\""),
                    format!("sets a security property that `{typed}` sets"),
                    format!("remove it and set {typed} in the table above instead"),
                ))
            })
            .collect()
    }

    /// What is allowed but risky, for warnings at start-up: passwords in clear (PLAIN over
    /// SASL_PLAINTEXT) and broker certificates not checked (by host name, or at all through the
    /// passthrough table's `enable.ssl.certificate.verification`). `table` is the TOML table.
    pub fn warnings(&self, table: &str, passthrough: &BTreeMap<String, String>) -> Vec<String> {
        let mut warnings = Vec::new();
        let protocol = self.security_protocol;
        if protocol == SecurityProtocol::SaslPlaintext && self.mechanism() == "PLAIN" {
            warnings.push(format!(
                "{table}: sasl_mechanism = \"PLAIN\" over SASL_PLAINTEXT sends the password in clear \
                 (use SASL_SSL, or SCRAM-SHA-512)"
            ));
        }
        if protocol.uses_tls() && !self.verify_hostname() {
            warnings.push(format!(
                "{table}.ssl_endpoint_identification_algorithm = \"none\": the broker's certificate is not \
                 checked against its host name; any certificate the CA signed can pose as the broker"
            ));
        }
        let unverified = passthrough.iter().any(|(key, value)| {
            key.trim().eq_ignore_ascii_case("enable.ssl.certificate.verification") && value.trim() == "false"
        });
        if protocol.uses_tls() && unverified {
            warnings.push(format!(
                "{table}.librdkafka.\"enable.ssl.certificate.verification\" = \"false\": broker certificates \
                 are NOT checked; anyone on the network path can pose as the broker (set ssl_ca_location instead)"
            ));
        }
        warnings
    }

    /// Reads Kafka client properties (`key=value` lines, `#` comments, as Kafka's tools take
    /// with `--command-config`). Keys this client does not use are refused by name, so a typo
    /// is not silently ignored; `sasl.jaas.config` is understood for its username and password.
    pub fn from_properties(text: &str, origin: &str) -> Result<KafkaClientSecurity, Vec<ConfigError>> {
        let mut out = KafkaClientSecurity::default();
        let mut problems = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                problems.push(ConfigError::invalid(
                    origin,
                    line,
                    "is not key=value",
                    "write e.g. security.protocol=SASL_SSL",
                ));
                continue;
            };
            let (key, value) = (key.trim(), value.trim().to_string());
            let path = || Some(PathBuf::from(&value));
            match key {
                "security.protocol" => match SecurityProtocol::from_name(&value) {
                    Some(p) => out.security_protocol = p,
                    None => problems.push(ConfigError::invalid(
                        origin,
                        key,
                        format!("`{value}` is not a security protocol"),
                        "use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                    )),
                },
                "sasl.mechanism" | "sasl.mechanisms" => out.sasl_mechanism = Some(value),
                "sasl.username" => out.sasl_username = Some(value),
                "sasl.password" => out.sasl_password = Some(Secret::new(value)),
                "sasl.jaas.config" => match jaas_credentials(&value) {
                    Some((user, password)) => {
                        out.sasl_username = Some(user);
                        out.sasl_password = Some(Secret::new(password));
                    }
                    None => problems.push(ConfigError::invalid(
                        origin,
                        key,
                        "has no username=\"…\" and password=\"…\"",
                        "use sasl.username and sasl.password instead",
                    )),
                },
                "ssl.ca.location" => out.ssl_ca_location = path(),
                "ssl.certificate.location" => out.ssl_certificate_location = path(),
                "ssl.key.location" => out.ssl_key_location = path(),
                "ssl.endpoint.identification.algorithm" => {
                    out.ssl_endpoint_identification_algorithm =
                        Some(if value.is_empty() { "none".into() } else { value })
                }
                other => problems.push(ConfigError::invalid(
                    origin,
                    other,
                    "is not a property millrace's clients use",
                    "use security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, \
                     ssl.certificate.location, ssl.key.location or ssl.endpoint.identification.algorithm",
                )),
            }
        }
        problems.extend(out.problems(origin, ""));
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Reads a `--command-config` properties file.
    pub fn load_properties(path: &std::path::Path) -> Result<KafkaClientSecurity, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| vec![ConfigError::Read { path: path.to_path_buf(), source }])?;
        Self::from_properties(&text, &path.display().to_string())
    }
}

/// `username="…"` and `password="…"` of a JAAS login-module line (Java clients' way of giving
/// SASL credentials).
fn jaas_credentials(jaas: &str) -> Option<(String, String)> {
    let field = |name: &str| {
        let start = jaas.find(&format!("{name}=\""))? + name.len() + 2;
        let end = jaas[start..].find('"')? + start;
        Some(jaas[start..end].to_string())
    };
    Some((field("username")?, field("password")?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn protocols_parse_by_kafka_name_in_any_case() {
        assert_eq!(SecurityProtocol::from_name("sasl_ssl"), Some(SecurityProtocol::SaslSsl));
        assert_eq!(SecurityProtocol::from_name("PLAINTEXT"), Some(SecurityProtocol::Plaintext));
        assert_eq!(SecurityProtocol::from_name("TLS"), None);
        assert!(SecurityProtocol::SaslSsl.uses_tls() && SecurityProtocol::SaslSsl.uses_sasl());
        assert!(!SecurityProtocol::Ssl.uses_sasl() && !SecurityProtocol::SaslPlaintext.uses_tls());
    }

    #[test]
    fn properties_files_read_like_kafkas_and_refuse_what_they_do_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let text = format!(
            "# admin\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"admin\" password=\"s3cret\";\nssl.ca.location={}\n",
            ca.display()
        );
        let client = KafkaClientSecurity::from_properties(&text, "admin.properties").unwrap();
        assert_eq!(client.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(client.sasl_username.as_deref(), Some("admin"));
        assert_eq!(client.sasl_password.as_ref().map(Secret::expose), Some("s3cret"));
        assert!(!format!("{client:?}").contains("s3cret"));
        let properties = client.rdkafka_properties();
        assert!(properties.contains(&("security.protocol", "sasl_ssl".into())));
        assert!(properties.contains(&("sasl.password", "s3cret".into())));
        assert!(properties.contains(&("ssl.ca.location", ca.display().to_string())));

        let errors =
            KafkaClientSecurity::from_properties("security.protocol=SASL_SSL\nsasl.usernme=x\n", "a.properties")
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
        assert!(errors.contains("key `sasl.usernme`"), "{errors}");
        assert!(errors.contains("key `sasl_username`: is required"), "{errors}");
    }

    #[test]
    fn mismatched_settings_are_named() {
        let sasl_without_tls_files =
            KafkaClientSecurity { ssl_ca_location: Some("/nonexistent".into()), ..Default::default() };
        let problems = sasl_without_tls_files.problems("a.toml", "output.");
        assert!(problems[0].to_string().contains("key `output.ssl_ca_location`: is set but"), "{problems:?}");
        let credentials_on_plaintext = KafkaClientSecurity { sasl_username: Some("u".into()), ..Default::default() };
        assert!(credentials_on_plaintext.problems("a.toml", "")[0].to_string().contains("security_protocol"));
        assert_eq!(
            KafkaClientSecurity::default().rdkafka_properties(),
            vec![("security.protocol", "plaintext".into())]
        );
    }
}
