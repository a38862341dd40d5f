//! Listeners with Kafka's security protocols against real clients: kcat, confluent-kafka and
//! kafka-python over SASL_SSL (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) and over SSL with client
//! certificates (mTLS), all with certificates from a throw-away CA; and the refusals — a wrong
//! password, a plaintext client on a TLS listener, a client without a certificate where one is
//! required, requests before the SASL login, a login that never finishes.

use millrace_tests::pki::{CertFiles, TestCa};
use millrace_tests::{free_port, kcat_properties, millrace, python, run, BrokerProcess, KafkaConn};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);
const PASSWORD: &str = "s3cret-pa55";

/// A broker with PLAINTEXT (for setting up users), SASL_SSL, SSL with required client
/// certificates and SASL_PLAINTEXT listeners.
struct SecureBroker {
    broker: BrokerProcess,
    sasl_ssl: String,
    ssl: String,
    sasl_plaintext: String,
    ca: String,
    /// A client certificate for `CN=carol`.
    carol: CertFiles,
    _dir: tempfile::TempDir,
}

impl SecureBroker {
    fn start() -> anyhow::Result<SecureBroker> {
        Self::start_with("")
    }

    /// With `more` appended to the broker's configuration (whole tables).
    fn start_with(more: &str) -> anyhow::Result<SecureBroker> {
        let dir = tempfile::tempdir()?;
        let ca = TestCa::new(&dir.path().join("pki"), "millrace test CA")?;
        let server = ca.localhost("broker")?;
        let carol = ca.issue("carol", "carol", &[])?;
        let (sasl_ssl, ssl, sasl_plaintext) = (free_port(), free_port(), free_port());
        let extra = format!(
            "[server]\nauthentication_timeout = \"2s\"\nfailed_authentication_delay = \"200ms\"\n\
             [[listeners]]\nname = \"SASL_SSL\"\nlisten = \"127.0.0.1:{sasl_ssl}\"\n\
             sasl_enabled_mechanisms = [\"SCRAM-SHA-512\", \"SCRAM-SHA-256\", \"PLAIN\"]\n\
             [[listeners]]\nname = \"MTLS\"\nlisten = \"127.0.0.1:{ssl}\"\nsecurity_protocol = \"SSL\"\n\
             ssl_client_auth = \"required\"\n\
             [[listeners]]\nname = \"SASL_PLAINTEXT\"\nlisten = \"127.0.0.1:{sasl_plaintext}\"\n\
             [tls]\ncertificate_file = {:?}\nkey_file = {:?}\nca_file = {:?}\n{more}\n",
            server.cert.display().to_string(),
            server.key.display().to_string(),
            ca.ca_cert.display().to_string(),
        );
        let broker = BrokerProcess::start(&extra)?;
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n"))?;
        let password_file = password_file.display().to_string();
        let bootstrap = broker.bootstrap();
        for (user, mechanism) in [("alice", "SCRAM-SHA-512"), ("bob", "SCRAM-SHA-256")] {
            let args = ["user", "create", user, "--password-file", &password_file, "--mechanism", mechanism];
            millrace(&[&args[..], &["--bootstrap", &bootstrap]].concat())?;
        }
        Ok(SecureBroker {
            broker,
            sasl_ssl: format!("127.0.0.1:{sasl_ssl}"),
            ssl: format!("127.0.0.1:{ssl}"),
            sasl_plaintext: format!("127.0.0.1:{sasl_plaintext}"),
            ca: ca.ca_cert.display().to_string(),
            carol,
            _dir: dir,
        })
    }

    /// kcat's `-X` options for SASL_SSL as `user` with `mechanism` and `password`.
    fn sasl_ssl_options(&self, mechanism: &str, user: &str, password: &str) -> Vec<String> {
        kcat_properties([
            "security.protocol=SASL_SSL".to_string(),
            format!("sasl.mechanisms={mechanism}"),
            format!("sasl.username={user}"),
            format!("sasl.password={password}"),
            format!("ssl.ca.location={}", self.ca),
        ])
    }

    fn mtls_options(&self, with_certificate: bool) -> Vec<String> {
        let mut options = vec!["security.protocol=SSL".to_string(), format!("ssl.ca.location={}", self.ca)];
        if with_certificate {
            options.push(format!("ssl.certificate.location={}", self.carol.cert.display()));
            options.push(format!("ssl.key.location={}", self.carol.key.display()));
        }
        kcat_properties(options)
    }
}

fn kcat(broker: &str, options: &[String], rest: &[&str], input: Option<&[u8]>) -> anyhow::Result<String> {
    millrace_tests::kcat(broker, options, rest, input, T)
}

#[test]
fn real_clients_work_over_sasl_ssl_and_mtls_and_are_refused_without_credentials() -> anyhow::Result<()> {
    let secure = SecureBroker::start()?;

    // kcat over SASL_SSL with SCRAM-SHA-512: produce, consume, and the listener's own address
    // in Metadata (not the PLAINTEXT one).
    let alice = secure.sasl_ssl_options("SCRAM-SHA-512", "alice", PASSWORD);
    if let Err(e) = kcat(&secure.sasl_ssl, &alice, &["-t", "secure", "-P"], Some(b"one\ntwo\nthree\n")) {
        anyhow::bail!("{e}\nbroker log:\n{}", secure.broker.log());
    }
    let consumed = kcat(&secure.sasl_ssl, &alice, &["-t", "secure", "-C", "-e", "-q"], None)?;
    assert_eq!(consumed, "one\ntwo\nthree\n");
    let listing = kcat(&secure.sasl_ssl, &alice, &["-L"], None)?;
    assert!(listing.contains(&format!("at {}", secure.sasl_ssl)), "{listing}");
    assert!(!listing.contains(&format!("at {}", secure.broker.bootstrap())), "{listing}");

    // PLAIN over TLS checks the same stored credential.
    let plain = secure.sasl_ssl_options("PLAIN", "alice", PASSWORD);
    assert_eq!(kcat(&secure.sasl_ssl, &plain, &["-t", "secure", "-C", "-e", "-q"], None)?, consumed);

    // A wrong password and an unknown user are refused, and counted.
    for (user, password) in [("alice", "wrong"), ("mallory", PASSWORD)] {
        let refused =
            kcat(&secure.sasl_ssl, &secure.sasl_ssl_options("SCRAM-SHA-512", user, password), &["-L", "-m", "5"], None)
                .expect_err("a wrong login listed metadata");
        assert!(refused.to_string().contains("Authentication failed"), "{user}: {refused}");
    }
    let metrics = secure.broker.admin_get("/metrics")?;
    let failures = metrics
        .lines()
        .find(|l| l.starts_with("millrace_broker_sasl_authentications_total{result=\"failure\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(failures >= 2.0, "failures counted: {failures}");

    // confluent-kafka with SCRAM-SHA-256 and kafka-python with SCRAM-SHA-512, both over SASL_SSL.
    let confluent = python(
        "roundtrip_confluent.py",
        &[
            "--bootstrap",
            &secure.sasl_ssl,
            "--topic",
            "secure-confluent",
            "--partitions",
            "1",
            "--count",
            "500",
            "--client-config",
            "security.protocol=SASL_SSL",
            "--client-config",
            "sasl.mechanism=SCRAM-SHA-256",
            "--client-config",
            "sasl.username=bob",
            "--client-config",
            &format!("sasl.password={PASSWORD}"),
            "--client-config",
            &format!("ssl.ca.location={}", secure.ca),
        ],
        T,
    )?;
    assert!(confluent.contains("OK 500 records"), "{confluent}");
    let kafka_python = python(
        "roundtrip_kafka_python.py",
        &[
            "--bootstrap",
            &secure.sasl_ssl,
            "--topic",
            "secure-kafka-python",
            "--partitions",
            "1",
            "--count",
            "300",
            "--client-config",
            "security_protocol=SASL_SSL",
            "--client-config",
            "sasl_mechanism=SCRAM-SHA-512",
            "--client-config",
            "sasl_plain_username=alice",
            "--client-config",
            &format!("sasl_plain_password={PASSWORD}"),
            "--client-config",
            &format!("ssl_cafile={}", secure.ca),
        ],
        T,
    )?;
    assert!(kafka_python.contains("OK 300 records"), "{kafka_python}");

    // mTLS: carol's certificate gets in; no certificate does not.
    let carol = secure.mtls_options(true);
    kcat(&secure.ssl, &carol, &["-t", "mtls", "-P"], Some(b"by certificate\n"))?;
    assert_eq!(kcat(&secure.ssl, &carol, &["-t", "mtls", "-C", "-e", "-q"], None)?, "by certificate\n");
    let anonymous = kcat(&secure.ssl, &secure.mtls_options(false), &["-L", "-m", "5"], None)
        .expect_err("a client without a certificate listed metadata");
    assert!(!anonymous.to_string().contains("broker 1 at"), "{anonymous}");

    // A plaintext Kafka client on a TLS listener gets no Kafka answer.
    let mut plaintext = KafkaConn::connect_addr(&secure.sasl_ssl, Duration::from_secs(5))?;
    let answer = plaintext.request(3, &kafka_protocol::messages::ApiVersionsRequest::default());
    assert!(answer.is_err(), "a TLS listener answered plaintext: {answer:?}");
    let log = secure.broker.log();
    assert!(log.contains("TLS handshake failed"), "{log}");
    Ok(())
}

#[test]
fn a_sasl_listener_answers_nothing_but_api_versions_before_login_and_drops_slow_logins() -> anyhow::Result<()> {
    let secure = SecureBroker::start()?;
    // ApiVersions is answered (clients ask it first), and lists the SASL APIs.
    let mut conn = KafkaConn::connect_addr(&secure.sasl_plaintext, Duration::from_secs(5))?;
    let versions = conn.request(3, &kafka_protocol::messages::ApiVersionsRequest::default())?;
    assert!(versions.api_keys.iter().any(|k| k.api_key == 17 && k.max_version >= 1), "SaslHandshake v1");
    assert!(versions.api_keys.iter().any(|k| k.api_key == 36), "SaslAuthenticate");
    // Anything else before the login closes the connection.
    let metadata = conn.request(12, &kafka_protocol::messages::MetadataRequest::default());
    assert!(metadata.is_err(), "metadata answered before login: {metadata:?}");
    assert!(secure.broker.log().contains("Metadata request before SASL authentication"));

    // A connection that never logs in, or never even starts its TLS handshake, is closed after
    // server.authentication_timeout (2s).
    for (listener, what) in [(&secure.sasl_plaintext, "SASL login"), (&secure.sasl_ssl, "TLS handshake")] {
        // The read gives up after 10s, which would also look like a close: the close must come
        // well before that.
        let mut idle = KafkaConn::connect_addr(listener, Duration::from_secs(10))?;
        let started = Instant::now();
        assert!(idle.is_closed_by_peer(), "{what}: still open");
        let after = started.elapsed();
        assert!(
            after >= Duration::from_millis(1500) && after < Duration::from_secs(8),
            "{what}: closed after {after:?}"
        );
    }

    // The CLI logs in with a properties file, as Kafka's tools do (--command-config).
    let properties = secure._dir.path().join("alice.properties");
    std::fs::write(
        &properties,
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=alice\nsasl.password={PASSWORD}\n\
             ssl.ca.location={}\n",
            secure.ca
        ),
    )?;
    let listed = millrace(&[
        "user",
        "list",
        "--bootstrap",
        &secure.sasl_ssl,
        "--command-config",
        &properties.display().to_string(),
    ])?;
    assert!(listed.contains("User: alice"), "{listed}");
    Ok(())
}

#[test]
fn acls_apply_to_sasl_users_and_certificate_subjects() -> anyhow::Result<()> {
    // The loopback PLAINTEXT listener is the administrator's; everyone else gets what ACLs grant.
    let secure = SecureBroker::start_with(
        "[authorization]\nenabled = true\nsuper_users = [\"User:ANONYMOUS\"]\n[topics]\nauto_create = false\n",
    )?;
    let admin = secure.broker.bootstrap();
    millrace(&["topic", "create", "guarded", "--partitions", "1", "--replication-factor", "1", "--bootstrap", &admin])?;
    let acl = |args: &[&str]| millrace(&[&["acl", "add"], args, &["--bootstrap", &admin]].concat());
    acl(&["--allow-principal", "User:alice", "--operation", "Write", "--operation", "Describe", "--topic", "guarded"])?;

    // alice may write; bob (no ACL) may not, and may not read either.
    let alice = secure.sasl_ssl_options("SCRAM-SHA-512", "alice", PASSWORD);
    let bob = secure.sasl_ssl_options("SCRAM-SHA-256", "bob", PASSWORD);
    kcat(&secure.sasl_ssl, &alice, &["-t", "guarded", "-P"], Some(b"allowed\n"))?;
    let refused =
        kcat(&secure.sasl_ssl, &bob, &["-t", "guarded", "-P", "-X", "message.timeout.ms=5000"], Some(b"denied\n"))
            .expect_err("bob produced without Write");
    assert!(refused.to_string().contains("Topic authorization failed"), "{refused}");
    let refused =
        kcat(&secure.sasl_ssl, &bob, &["-t", "guarded", "-C", "-e", "-q"], None).expect_err("bob read without Read");
    assert!(refused.to_string().contains("authorization failed"), "{refused}");
    // alice writes but has no Read: consuming in a group is refused too.
    let mut args: Vec<&str> = vec!["-b", &secure.sasl_ssl];
    args.extend(alice.iter().map(String::as_str));
    args.extend_from_slice(&["-G", "readers", "guarded", "-e", "-q"]);
    // Refused (or never assigned anything, so still waiting when the bound runs out).
    let group_read = run("kcat", &args, None, Duration::from_secs(20));
    assert!(group_read.is_err(), "alice consumed in a group without Read: {group_read:?}");

    // Granting Read on the topic and the group lets her consume as a group member.
    acl(&["--allow-principal", "User:alice", "--operation", "Read", "--topic", "guarded", "--group", "readers"])?;
    let consumed = kcat(&secure.sasl_ssl, &alice, &["-t", "guarded", "-C", "-e", "-q"], None)?;
    assert_eq!(consumed, "allowed\n");

    // A client certificate's subject is the principal ACLs name.
    let carol = secure.mtls_options(true);
    let refused =
        kcat(&secure.ssl, &carol, &["-t", "guarded", "-C", "-e", "-q"], None).expect_err("carol read without Read");
    assert!(refused.to_string().contains("authorization failed"), "{refused}");
    acl(&["--allow-principal", "User:CN=carol", "--operation", "Read", "--topic", "guarded"])?;
    assert_eq!(kcat(&secure.ssl, &carol, &["-t", "guarded", "-C", "-e", "-q"], None)?, "allowed\n");
    Ok(())
}

#[test]
fn top_connects_over_sasl_ssl_and_mtls_and_shows_its_principal() -> anyhow::Result<()> {
    let secure = SecureBroker::start()?;
    let dir = tempfile::tempdir()?;
    let properties = |name: &str, lines: &[String]| -> anyhow::Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n"))?;
        Ok(path.display().to_string())
    };
    let top = |bootstrap: &str, config: &str| {
        let args = ["top", "--once", "--interval", "200ms", "--bootstrap", bootstrap, "--command-config", config];
        run(&millrace_tests::millrace_bin().display().to_string(), &args, None, T)
    };
    let sasl = |password: &str| {
        vec![
            "security.protocol=SASL_SSL".to_string(),
            "sasl.mechanism=SCRAM-SHA-512".to_string(),
            "sasl.username=alice".to_string(),
            format!("sasl.password={password}"),
            format!("ssl.ca.location={}", secure.ca),
        ]
    };
    let alice = properties("alice.properties", &sasl(PASSWORD))?;
    let screen = String::from_utf8_lossy(&top(&secure.sasl_ssl, &alice)?.stdout).into_owned();
    assert!(screen.contains("brokers 1/1 up"), "{screen}");
    assert!(screen.contains("as User:alice over SASL_SSL (SCRAM-SHA-512)"), "{screen}");

    let carol = properties(
        "carol.properties",
        &[
            "security.protocol=SSL".to_string(),
            format!("ssl.ca.location={}", secure.ca),
            format!("ssl.certificate.location={}", secure.carol.cert.display()),
            format!("ssl.key.location={}", secure.carol.key.display()),
        ],
    )?;
    let screen = String::from_utf8_lossy(&top(&secure.ssl, &carol)?.stdout).into_owned();
    assert!(screen.contains("brokers 1/1 up"), "{screen}");
    assert!(screen.contains("as User:CN=carol over SSL"), "{screen}");

    // A wrong password gets no data: the screen says the cluster is unreachable, and why.
    let wrong = properties("wrong.properties", &sasl("not-the-password"))?;
    let refused = top(&secure.sasl_ssl, &wrong).expect_err("top logged in with a wrong password");
    assert!(refused.to_string().contains("uthentication"), "{refused}");
    Ok(())
}
