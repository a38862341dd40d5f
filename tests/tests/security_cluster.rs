//! Three brokers whose links are all authenticated: replica fetches on a SASL_SSL inter-broker
//! listener with the brokers' own SCRAM user, the controller listeners on mutual TLS with a
//! cluster CA whose certificates name node ids, ACLs on. acks=all data survives the leader's
//! kill -9; the controller port refuses a plaintext peer, a certificate from another CA, and
//! node 2's certificate speaking for node 3.

use millrace_protocol::tls::{client_config, ClientTlsFiles};
use millrace_tests::pki::{CertFiles, TestCa};
use millrace_tests::{free_port, http_get_at, kcat_properties, millrace, wait_for, Cluster};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
const TOPIC: &str = "secured";

/// Everything the test needs besides the cluster: the CA, the operator's client properties,
/// each broker's mTLS listener.
struct Pki {
    admin: CertFiles,
    /// Each broker's INTERNAL (SASL_SSL) and MTLS listener ports.
    ports: BTreeMap<i32, (u16, u16)>,
    /// Each node's controller certificate (`CN=node-<id>`).
    nodes: BTreeMap<i32, CertFiles>,
    broker_password: String,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(n: i32) -> anyhow::Result<Pki> {
        let dir = tempfile::tempdir()?;
        let ca = TestCa::new(&dir.path().join("pki"), "cluster CA")?;
        let mut nodes = BTreeMap::new();
        let mut ports = BTreeMap::new();
        for id in 1..=n {
            nodes.insert(id, ca.issue(&format!("node-{id}"), &format!("node-{id}"), &[])?);
            ports.insert(id, (free_port(), free_port()));
        }
        ca.localhost("listener")?;
        let admin = ca.issue("admin", "admin", &[])?;
        let broker_password = dir.path().join("broker.password");
        std::fs::write(&broker_password, "br0ker-secret\n")?;
        Ok(Pki { admin, ports, nodes, broker_password: broker_password.display().to_string(), dir })
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join("pki").join(name).display().to_string()
    }

    /// Broker `id`'s configuration beyond the harness's PLAINTEXT listener and quorum.
    fn broker_toml(&self, id: i32) -> String {
        let (internal, mtls) = self.ports[&id];
        let node = &self.nodes[&id];
        format!(
            "[[listeners]]\nname = \"INTERNAL\"\nsecurity_protocol = \"SASL_SSL\"\nlisten = \"127.0.0.1:{internal}\"\n\
             [[listeners]]\nname = \"MTLS\"\nsecurity_protocol = \"SSL\"\nlisten = \"127.0.0.1:{mtls}\"\n\
             ssl_client_auth = \"required\"\n\
             [tls]\ncertificate_file = {:?}\nkey_file = {:?}\nca_file = {:?}\n\
             [inter_broker]\nlistener_name = \"INTERNAL\"\nsasl_username = \"broker\"\nsasl_password_file = {:?}\n\
             [authorization]\nenabled = true\nsuper_users = [\"User:broker\", \"User:CN=admin\"]\n\
             [controller.tls]\ncertificate_file = {:?}\nkey_file = {:?}\nca_file = {:?}\n\
             [replication]\nreplica_lag_time_max = \"3s\"\n",
            self.file("listener.pem"),
            self.file("listener.key"),
            self.file("ca.pem"),
            self.broker_password,
            node.cert.display().to_string(),
            node.key.display().to_string(),
            self.file("ca.pem"),
        )
    }

    fn mtls(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.ports[&id].1)
    }

    /// The operator's `--command-config` file (client certificate `CN=admin`, a super user).
    fn admin_properties(&self) -> anyhow::Result<String> {
        let path = self.dir.path().join("admin.properties");
        let text = format!(
            "security.protocol=SSL\nssl.ca.location={}\nssl.certificate.location={}\nssl.key.location={}\n",
            self.file("ca.pem"),
            self.admin.cert.display(),
            self.admin.key.display()
        );
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    }

    fn kcat_options(&self) -> Vec<String> {
        kcat_properties([
            "security.protocol=SSL".to_string(),
            format!("ssl.ca.location={}", self.file("ca.pem")),
            format!("ssl.certificate.location={}", self.admin.cert.display()),
            format!("ssl.key.location={}", self.admin.key.display()),
        ])
    }
}

fn kcat(pki: &Pki, broker: &str, rest: &[&str], input: Option<&[u8]>) -> anyhow::Result<String> {
    millrace_tests::kcat(broker, &pki.kcat_options(), rest, input, T)
}

/// Partition 0's leader and ISR as kcat sees them over `broker`'s mTLS listener.
fn partition_zero(pki: &Pki, broker: &str) -> anyhow::Result<Option<(i64, Vec<i64>)>> {
    let out = kcat(pki, broker, &["-L", "-J", "-t", TOPIC], None)?;
    let metadata: serde_json::Value = serde_json::from_str(&out)?;
    let partition = metadata["topics"]
        .as_array()
        .and_then(|topics| topics.iter().find(|t| t["topic"] == TOPIC))
        .and_then(|t| t["partitions"].as_array()?.iter().find(|p| p["partition"] == 0).cloned());
    Ok(partition.and_then(|p| {
        let isr = p["isrs"].as_array()?.iter().filter_map(|r| r["id"].as_i64().or_else(|| r.as_i64())).collect();
        Some((p["leader"].as_i64()?, isr))
    }))
}

/// One controller frame (`[len][JSON]`) written to `stream`; whether an answer frame came back
/// before the connection closed (or 10 s passed).
fn answered(stream: &mut (impl Read + Write), json: &str) -> bool {
    let mut frame = (json.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(json.as_bytes());
    if stream.write_all(&frame).and_then(|()| stream.flush()).is_err() {
        return false;
    }
    // A TLS alert would fill a length too: only a whole JSON frame counts as an answer.
    let mut len = [0u8; 4];
    if stream.read_exact(&mut len).is_err() {
        return false;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > 1 << 20 {
        return false;
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).is_ok() && serde_json::from_slice::<serde_json::Value>(&body).is_ok()
}

/// A TLS connection to a controller listener presenting `identity`, trusting `ca`.
fn controller_tls(
    addr: &str,
    ca: &Path,
    identity: &CertFiles,
) -> anyhow::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let files = ClientTlsFiles {
        ca_file: Some(ca.to_path_buf()),
        identity: Some((identity.cert.clone(), identity.key.clone())),
        verify_hostname: false,
    };
    let config: Arc<rustls::ClientConfig> = client_config(&files)?;
    let name = rustls_pki_types::ServerName::try_from("node-1")?.to_owned();
    let conn = rustls::ClientConnection::new(config, name)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// The sum of counter `name`'s series whose labels include all of `labels`.
fn counter(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn heartbeat(broker_id: i32) -> String {
    format!("{{\"BrokerHeartbeat\":{{\"broker_id\":{broker_id},\"broker_epoch\":1,\"caught_up\":true}}}}")
}

#[test]
fn a_cluster_replicates_and_fails_over_on_authenticated_links_only() -> anyhow::Result<()> {
    let pki = Pki::new(3)?;
    let mut cluster = Cluster::start_each(3, &|id| pki.broker_toml(id))?;
    let admin = pki.admin_properties()?;
    let first = pki.mtls(1);

    // The brokers' own user, created by the operator once the quorum runs (as Kafka's
    // `kafka-configs --alter --add-config SCRAM-SHA-512=...`): until then followers cannot log in.
    let args = ["user", "create", "broker", "--password-file", &pki.broker_password, "--mechanism", "SCRAM-SHA-512"];
    millrace(&[&args[..], &["--bootstrap", &first, "--command-config", &admin]].concat())?;
    let create = ["topic", "create", TOPIC, "--partitions", "1", "--replication-factor", "3"];
    let configs = ["--topic-config", "min.insync.replicas=2"];
    millrace(&[&create[..], &configs, &["--bootstrap", &first, "--command-config", &admin]].concat())?;

    // acks=all needs two replicas in sync: only authenticated replica fetches can give that.
    let batch: String = (0..100).map(|i| format!("first-{i}\n")).collect();
    kcat(&pki, &first, &["-t", TOPIC, "-P", "-X", "acks=all"], Some(batch.as_bytes()))?;
    let mut leader = 0;
    let mut last = None;
    let waited = wait_for("the ISR to hold all three brokers", T, || {
        last = partition_zero(&pki, &first)?;
        Ok(match last.clone() {
            Some((l, isr)) if isr.len() == 3 => {
                leader = l;
                true
            }
            _ => false,
        })
    });
    if let Err(e) = waited {
        anyhow::bail!("{e:#}; partition 0 (leader, ISR): {last:?}\n{}", cluster.log_tails(40));
    }
    // Both followers logged in to the leader with the brokers' SCRAM user.
    let metrics = http_get_at(&cluster.broker(leader as i32).admin_addr(), "/metrics")?;
    let logins = counter(&metrics, "millrace_broker_sasl_authentications_total", &["result=\"success\""]);
    assert!(logins >= 2.0, "the leader saw {logins} successful SASL logins");

    // The controller port: a plaintext peer proposing to delete the topic gets no answer.
    let controller = cluster.broker(1).controller_addr();
    let mut plain = TcpStream::connect(&controller)?;
    plain.set_read_timeout(Some(Duration::from_secs(10)))?;
    let delete = format!("{{\"Propose\":{{\"DeleteTopic\":{{\"name\":\"{TOPIC}\"}}}}}}");
    assert!(!answered(&mut plain, &delete), "a plaintext peer was answered on the controller port");
    // Node 2's certificate answers for node 2, and is cut off when it speaks for node 3.
    let ca = pki.dir.path().join("pki/ca.pem");
    let mut as_node_2 = controller_tls(&controller, &ca, &pki.nodes[&2])?;
    assert!(answered(&mut as_node_2, &heartbeat(2)), "node 2's own heartbeat must be answered");
    assert!(!answered(&mut as_node_2, &heartbeat(3)), "node 2's certificate was accepted for node 3");
    let mut as_node_2 = controller_tls(&controller, &ca, &pki.nodes[&2])?;
    assert!(!answered(&mut as_node_2, &format!("{{\"AddLearner\":{{\"id\":3,\"addr\":\"{controller}\"}}}}")));
    // A certificate from another CA, naming a node.
    let stranger_ca = TestCa::new(&pki.dir.path().join("stranger"), "stranger CA")?;
    let stranger = stranger_ca.issue("node-2", "node-2", &[])?;
    let mut foreign = controller_tls(&controller, &ca, &stranger)?;
    assert!(!answered(&mut foreign, &heartbeat(2)), "a certificate from another CA was accepted");
    let metrics = http_get_at(&cluster.broker(1).admin_addr(), "/metrics")?;
    let refused = ["listener=\"controller\"", "reason=\"unauthenticated\""];
    let unauthenticated = counter(&metrics, "millrace_broker_connections_refused_total", &refused);
    assert!(unauthenticated >= 2.0, "refusals counted: {unauthenticated}");

    // kill -9 the leader: a new one is elected through the authenticated controller link, and
    // nothing acknowledged is lost.
    cluster.kill9(leader as i32);
    let survivor = (1..=3).find(|&id| id != leader as i32).map(|id| pki.mtls(id)).unwrap_or_default();
    wait_for("a new leader", T, || Ok(partition_zero(&pki, &survivor)?.is_some_and(|(l, _)| l != leader && l >= 0)))?;
    let batch: String = (0..100).map(|i| format!("second-{i}\n")).collect();
    kcat(&pki, &survivor, &["-t", TOPIC, "-P", "-X", "acks=all"], Some(batch.as_bytes()))?;
    let consumed = kcat(&pki, &survivor, &["-t", TOPIC, "-C", "-e", "-q", "-o", "beginning"], None)?;
    let lines: Vec<&str> = consumed.lines().collect();
    assert_eq!(lines.len(), 200, "every acknowledged record, once: {}", cluster.log_tails(20));
    for prefix in ["first", "second"] {
        for i in 0..100 {
            assert!(lines.contains(&format!("{prefix}-{i}").as_str()), "{prefix}-{i} missing");
        }
    }
    // The topic survived the plaintext peer's proposal.
    assert!(partition_zero(&pki, &survivor)?.is_some());
    Ok(())
}
