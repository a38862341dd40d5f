//! `millrace demo --secure`: who is who in the secured demo, what each process is configured
//! with, and how the first users and ACLs get into the cluster.
//!
//! Each broker has two Kafka listeners and no plaintext one:
//! - `CLIENT`, SASL_SSL with SCRAM-SHA-512: the agent, the sink, the operator (`millrace top`,
//!   the CLIs, kcat) and the demo's status probe log in here with SCRAM users.
//! - `INTERNAL`, SSL with a client certificate from the demo's CA required: the brokers' replica
//!   fetches (certificate `CN=broker`) and the demo's own bootstrap (certificate `CN=operator`).
//!
//! Bootstrapping: SCRAM users and ACLs live in the metadata quorum, so someone has to be able to
//! create them before any exist. The two certificate principals are super users in every
//! broker's configuration, so they need neither a user nor an ACL: once the quorum runs, the demo
//! connects to `INTERNAL` as `User:CN=operator` and creates the users `agent`, `sink` and
//! `operator` (random passwords) and the least-privilege ACLs. Nothing ever listens in plaintext
//! and nothing has to be restarted. The SCRAM `operator` is a super user too: it is the human's
//! way in (`operator.properties`). The controller listeners speak mutual TLS with certificates
//! `CN=node-<id>` from the same CA.

use super::configs::{toml_str, DEAD_LETTER_TOPIC, LOGS_GROUP, LOGS_TOPIC, METRICS_GROUP, METRICS_TOPIC};
use super::pki::{private_dir, random_password, write_private, Authority, KeyedCert, Use};
use crate::client::Client;
use anyhow::Context;
use kafka_protocol::messages::create_acls_request::AclCreation;
use millrace_broker::security::acl::{
    AclOperation, AclPermissionType, PatternType, ResourceType, CLUSTER_RESOURCE_NAME, WILDCARD,
};
use millrace_broker::security::scram::Mechanism;
use millrace_config::secret::Secret;
use millrace_config::{KafkaClientSecurity, SecurityProtocol};
use std::path::{Path, PathBuf};

/// The SASL_SSL listener of the pipeline's clients.
pub const CLIENT_LISTENER: &str = "CLIENT";
/// The mutual-TLS listener of the brokers and the demo's bootstrap.
pub const INTERNAL_LISTENER: &str = "INTERNAL";
/// The one SASL mechanism offered and used.
pub const MECHANISM: &str = "SCRAM-SHA-512";
/// PBKDF2 iterations of the users' SCRAM credentials (Kafka's default is 4096).
const ITERATIONS: u32 = 8192;
/// Common name of the brokers' listener certificate (their principal on `INTERNAL`).
const BROKER_CN: &str = "broker";
/// Common name of the demo's bootstrap certificate.
const OPERATOR_CN: &str = "operator";

/// A SCRAM user of the secured demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// The agent: writes `logs` and `metrics`.
    Agent,
    /// The sink: reads them in its groups, writes dead letters.
    Sink,
    /// A super user: the operator's `--command-config`, `millrace top`, the status probe.
    Operator,
}

impl User {
    /// Every user, in creation order.
    pub const ALL: [User; 3] = [User::Agent, User::Sink, User::Operator];

    /// The user name (and `User:<name>` is its principal).
    pub fn name(self) -> &'static str {
        match self {
            User::Agent => "agent",
            User::Sink => "sink",
            User::Operator => "operator",
        }
    }
}

/// The principals every broker lets do everything: the brokers' and the bootstrap's certificates
/// (see the module comment) and the SCRAM operator.
pub fn super_users() -> Vec<String> {
    vec![format!("User:CN={BROKER_CN}"), format!("User:CN={OPERATOR_CN}"), format!("User:{}", User::Operator.name())]
}

/// The least-privilege ACLs, as the README's example grants them: the agent may only write its
/// topics (and produce idempotently, as it does by default); the sink may only read them, use
/// its two groups and write (idempotently, which Write on the topic allows) the dead letters.
/// Both may write their status records to `__millrace_status` (for `millrace top`).
pub fn acls() -> Vec<AclCreation> {
    let mut out = Vec::new();
    let mut allow = |user: User, resource: (ResourceType, &str), ops: &[AclOperation]| {
        let principal = format!("User:{}", user.name());
        for op in ops {
            out.push(crate::acl::creation(
                resource,
                PatternType::Literal,
                AclPermissionType::Allow,
                &principal,
                WILDCARD,
                *op,
            ));
        }
    };
    use AclOperation::{Describe, IdempotentWrite, Read, Write};
    for topic in [LOGS_TOPIC, METRICS_TOPIC] {
        allow(User::Agent, (ResourceType::Topic, topic), &[Write, Describe]);
        allow(User::Sink, (ResourceType::Topic, topic), &[Read, Describe]);
    }
    allow(User::Agent, (ResourceType::Cluster, CLUSTER_RESOURCE_NAME), &[IdempotentWrite]);
    for group in [LOGS_GROUP, METRICS_GROUP] {
        allow(User::Sink, (ResourceType::Group, group), &[Read]);
    }
    allow(User::Sink, (ResourceType::Topic, DEAD_LETTER_TOPIC), &[Write, Describe]);
    for user in [User::Agent, User::Sink] {
        allow(user, (ResourceType::Topic, millrace_status::STATUS_TOPIC), &[Write, Describe]);
    }
    out
}

/// The secured demo's files and secrets.
#[derive(Clone, Debug)]
pub struct Secure {
    /// `pki/ca.pem`: the certificate everyone trusts.
    pub ca_file: PathBuf,
    /// The brokers' certificate (`CN=broker`, for 127.0.0.1 and localhost): both listeners and
    /// the replica fetches.
    pub broker: KeyedCert,
    /// Each node's controller certificate (`CN=node-<id>`).
    pub nodes: Vec<(i32, KeyedCert)>,
    /// The bootstrap's client certificate (`CN=operator`).
    pub operator_cert: KeyedCert,
    /// Each user's password and the file (`secrets/<user>.password`) holding it.
    passwords: Vec<(User, Secret, PathBuf)>,
    /// `operator.properties`: the operator's `--command-config`.
    pub operator_properties: PathBuf,
}

impl Secure {
    /// Makes the CA, the certificates of `node_ids`, the users' passwords and the operator's
    /// properties file in `dir` (`pki/`, `secrets/`, `operator.properties`).
    pub fn generate(dir: &Path, node_ids: &[i32]) -> anyhow::Result<Secure> {
        let ca = Authority::create(&dir.join("pki"), "millrace demo CA (throw-away)")?;
        // Brokers are reached on loopback by address; both names in case a client uses one.
        let broker = ca.sign("broker", BROKER_CN, Use::ServerAndClient(&["127.0.0.1", "localhost"]))?;
        let mut nodes = Vec::new();
        for &id in node_ids {
            let name = millrace_config::broker::controller_node_name(u64::try_from(id).context("node id")?);
            // The controller link checks the node id the certificate names, not a host name.
            nodes.push((id, ca.sign(&name, &name, Use::ServerAndClient(&[]))?));
        }
        let operator_cert = ca.sign("operator", OPERATOR_CN, Use::Client)?;
        let secrets = dir.join("secrets");
        private_dir(&secrets)?;
        let mut passwords = Vec::new();
        for user in User::ALL {
            let password = random_password()?;
            let file = secrets.join(format!("{}.password", user.name()));
            write_private(&file, &format!("{password}\n"))?;
            passwords.push((user, Secret::new(password), file));
        }
        let secure = Secure {
            ca_file: ca.ca_file.clone(),
            broker,
            nodes,
            operator_cert,
            passwords,
            operator_properties: dir.join("operator.properties"),
        };
        write_private(&secure.operator_properties, &secure.operator_properties_text())?;
        Ok(secure)
    }

    fn secret(&self, user: User) -> Option<&(User, Secret, PathBuf)> {
        self.passwords.iter().find(|(u, _, _)| *u == user)
    }

    /// The file holding `user`'s password.
    pub fn password_file(&self, user: User) -> PathBuf {
        self.secret(user).map(|(_, _, file)| file.clone()).unwrap_or_default()
    }

    /// How `user` reaches the `CLIENT` listener.
    pub fn client_security(&self, user: User) -> KafkaClientSecurity {
        KafkaClientSecurity {
            security_protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(MECHANISM.to_string()),
            sasl_username: Some(user.name().to_string()),
            sasl_password: self.secret(user).map(|(_, password, _)| password.clone()),
            ssl_ca_location: Some(self.ca_file.clone()),
            ..KafkaClientSecurity::default()
        }
    }

    /// How the demo's bootstrap reaches the `INTERNAL` listener: its certificate.
    pub fn bootstrap_security(&self) -> KafkaClientSecurity {
        KafkaClientSecurity {
            security_protocol: SecurityProtocol::Ssl,
            ssl_ca_location: Some(self.ca_file.clone()),
            ssl_certificate_location: Some(self.operator_cert.cert.clone()),
            ssl_key_location: Some(self.operator_cert.key.clone()),
            ..KafkaClientSecurity::default()
        }
    }

    /// Broker `id`'s listeners, TLS, inter-broker link, authorization and controller TLS (TOML
    /// tables, after the top-level keys).
    pub fn broker_toml(&self, id: i32, client_port: u16, internal_port: u16) -> anyhow::Result<String> {
        let node = self.nodes.iter().find(|(n, _)| *n == id).map(|(_, cert)| cert);
        let node = node.with_context(|| format!("no controller certificate for node {id}"))?;
        let path = |p: &Path| toml_str(&p.to_string_lossy());
        let super_users: Vec<String> = super_users().iter().map(|u| toml_str(u)).collect();
        Ok(format!(
            "# Clients (agent, sink, operator, `millrace top`) log in with SCRAM over TLS.\n\
             [[listeners]]\n\
             name = \"{CLIENT_LISTENER}\"\n\
             security_protocol = \"SASL_SSL\"\n\
             listen = \"127.0.0.1:{client_port}\"\n\
             sasl_enabled_mechanisms = [\"{MECHANISM}\"]\n\
             \n\
             # Brokers among themselves, and the demo creating the first users and ACLs: a client\n\
             # certificate from the demo's CA is required (CN=broker and CN=operator are super users).\n\
             [[listeners]]\n\
             name = \"{INTERNAL_LISTENER}\"\n\
             security_protocol = \"SSL\"\n\
             listen = \"127.0.0.1:{internal_port}\"\n\
             ssl_client_auth = \"required\"\n\
             \n\
             [tls]\n\
             certificate_file = {cert}\n\
             key_file = {key}\n\
             ca_file = {ca}\n\
             \n\
             [inter_broker]\n\
             # Replica fetches present the broker's certificate (User:CN={BROKER_CN}).\n\
             listener_name = \"{INTERNAL_LISTENER}\"\n\
             \n\
             [authorization]\n\
             enabled = true\n\
             super_users = [{super_users}]\n\
             \n\
             # The metadata quorum over mutual TLS: this node's certificate names it (CN=node-{id}).\n\
             [controller.tls]\n\
             certificate_file = {node_cert}\n\
             key_file = {node_key}\n\
             ca_file = {ca}\n\
             \n",
            cert = path(&self.broker.cert),
            key = path(&self.broker.key),
            ca = path(&self.ca_file),
            super_users = super_users.join(", "),
            node_cert = path(&node.cert),
            node_key = path(&node.key),
        ))
    }

    /// The security keys of an agent's `[output]` or a sink's `[source]` logging in as `user`.
    pub fn client_toml(&self, user: User) -> String {
        format!(
            "security_protocol = \"SASL_SSL\"\n\
             sasl_mechanism = \"{MECHANISM}\"\n\
             sasl_username = \"{}\"\n\
             sasl_password_file = {}\n\
             ssl_ca_location = {}\n",
            user.name(),
            toml_str(&self.password_file(user).to_string_lossy()),
            toml_str(&self.ca_file.to_string_lossy()),
        )
    }

    /// `operator.properties`: Kafka client properties, as `--command-config` takes them.
    fn operator_properties_text(&self) -> String {
        let password = self.secret(User::Operator).map(|(_, p, _)| p.expose()).unwrap_or_default();
        format!(
            "# `millrace demo --secure`'s operator, a super user: millrace ... --command-config THIS_FILE\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism={MECHANISM}\n\
             sasl.username={}\n\
             sasl.password={password}\n\
             ssl.ca.location={}\n",
            User::Operator.name(),
            self.ca_file.display()
        )
    }

    /// kcat's `-X` options to log in as `user`; the password is read from its file by the shell.
    pub fn kcat_options(&self, user: User) -> String {
        format!(
            "-X security.protocol=SASL_SSL -X sasl.mechanisms={MECHANISM} -X sasl.username={} \
             -X sasl.password=\"$(cat {})\" -X ssl.ca.location={}",
            user.name(),
            self.password_file(user).display(),
            self.ca_file.display()
        )
    }
}

/// Creates the users (SCRAM-SHA-512, their generated passwords) and the ACLs through `admin`,
/// the bootstrap's certificate on the `INTERNAL` listener. Both are upserts: a retry after a
/// partial failure does no harm.
pub async fn create_users_and_acls(admin: &Client, secure: &Secure) -> anyhow::Result<()> {
    let mut conn = admin.connect().await?;
    let mechanism = Mechanism::from_name(MECHANISM).context("SCRAM-SHA-512 is not supported")?;
    for (user, password, _) in &secure.passwords {
        crate::user::set_credential(&mut conn, user.name(), password.expose(), mechanism, ITERATIONS)
            .await
            .with_context(|| format!("creating user {}", user.name()))?;
    }
    crate::acl::create(&mut conn, acls()).await.context("creating the ACLs")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use millrace_config::ClientAuth;
    use millrace_protocol::tls::{certificate_common_name, load_certs};

    fn principal(cert: &Path) -> String {
        let der = load_certs(cert).unwrap();
        millrace_broker::server::tls::certificate_principal(&der[0]).unwrap().to_string()
    }

    #[test]
    fn certificates_name_the_principals_the_brokers_trust() {
        let dir = std::env::temp_dir().join(format!("millrace-demo-secure-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let secure = Secure::generate(&dir, &[1, 2, 3]).unwrap();
        let broker = principal(&secure.broker.cert);
        let operator = principal(&secure.operator_cert.cert);
        let nodes: Vec<Option<u64>> = secure
            .nodes
            .iter()
            .map(|(_, n)| certificate_common_name(&load_certs(&n.cert).unwrap()[0]))
            .map(|cn| cn.and_then(|cn| millrace_config::broker::controller_node_id(&cn)))
            .collect();
        let properties = KafkaClientSecurity::load_properties(&secure.operator_properties).unwrap();
        let toml = secure.broker_toml(2, 9093, 9094).unwrap();
        let config = millrace_config::parse_broker(&format!("node_id = 2\n{toml}"), "b").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        // What the broker computes for the certificates is what its super users name.
        assert!(super_users().contains(&broker), "{broker}");
        assert!(super_users().contains(&operator), "{operator}");
        assert_eq!(nodes, [Some(1), Some(2), Some(3)]);
        // The operator's properties log in as the SCRAM operator with its generated password.
        assert_eq!(properties, secure.client_security(User::Operator));
        assert!(properties.sasl_password.is_some_and(|p| p.expose().len() == 48));
        // No plaintext listener; the internal one asks for certificates; replicas go there.
        let listeners = config.effective_listeners();
        let shape: Vec<(&str, SecurityProtocol, ClientAuth)> =
            listeners.iter().map(|l| (l.name.as_str(), l.protocol(), l.ssl_client_auth)).collect();
        assert_eq!(
            shape,
            [
                (CLIENT_LISTENER, SecurityProtocol::SaslSsl, ClientAuth::None),
                (INTERNAL_LISTENER, SecurityProtocol::Ssl, ClientAuth::Required)
            ]
        );
        assert_eq!(config.inter_broker_listener().name, INTERNAL_LISTENER);
        assert!(config.authorization.enabled && !config.authorization.allow_everyone_if_no_acl_found);
        assert_eq!(config.controller.tls.certificate_file, Some(secure.nodes[1].1.cert.clone()));
    }

    #[test]
    fn acls_grant_least_privilege() {
        let grants: Vec<(String, i8, String, i8)> = acls()
            .iter()
            .map(|a| (a.principal.to_string(), a.resource_type, a.resource_name.to_string(), a.operation))
            .collect();
        let has = |user: User, rt: ResourceType, name: &str, op: AclOperation| {
            grants.contains(&(format!("User:{}", user.name()), rt.code(), name.to_string(), op.code()))
        };
        let topic = ResourceType::Topic;
        assert!(has(User::Agent, topic, LOGS_TOPIC, AclOperation::Write));
        assert!(has(User::Agent, ResourceType::Cluster, CLUSTER_RESOURCE_NAME, AclOperation::IdempotentWrite));
        assert!(has(User::Sink, topic, METRICS_TOPIC, AclOperation::Read));
        assert!(has(User::Sink, ResourceType::Group, LOGS_GROUP, AclOperation::Read));
        assert!(has(User::Sink, topic, DEAD_LETTER_TOPIC, AclOperation::Write));
        assert!(has(User::Sink, topic, millrace_status::STATUS_TOPIC, AclOperation::Write));
        assert!(has(User::Agent, topic, millrace_status::STATUS_TOPIC, AclOperation::Write));
        // The agent reads nothing, the sink writes nothing but dead letters and its status,
        // nobody else gets any.
        assert!(!grants.iter().any(|g| g.0 == "User:agent" && g.3 == AclOperation::Read.code()));
        assert!(!grants.iter().any(|g| g.0 == "User:sink"
            && g.3 == AclOperation::Write.code()
            && g.2 != DEAD_LETTER_TOPIC
            && g.2 != millrace_status::STATUS_TOPIC));
        assert!(grants.iter().all(|g| g.0 == "User:agent" || g.0 == "User:sink"));
        assert_eq!(grants.len(), 17);
    }
}
