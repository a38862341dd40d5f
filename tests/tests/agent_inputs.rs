//! The agent's non-file inputs against a real broker (issue 5): host metrics, syslog over UDP and
//! TCP (both framings) and Prometheus scraping produce the documented records.

use millrace_tests::component::Component;
use millrace_tests::{free_port, run, wait_until, BrokerProcess};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

fn records(bootstrap: &str, topic: &str) -> Vec<(String, Value)> {
    let Ok(out) = run(
        "kcat",
        &["-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", "%k\\t%s\\n"],
        None,
        Duration::from_secs(30),
    ) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(k, v)| serde_json::from_str(v).ok().map(|doc| (k.to_string(), doc)))
        .collect()
}

#[test]
fn metrics_syslog_and_prometheus_records() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let dir = tempfile::tempdir()?;
    let (udp, tcp) = (free_port(), free_port());
    let toml = format!(
            "[agent]\ndata_dir = {:?}\nhost_name = \"web-test\"\n\n[output]\nbootstrap = \"{}\"\n\n\
             [[inputs.host_metrics]]\nname = \"host\"\ntopic = \"metrics\"\ninterval = \"500ms\"\n\n\
             [[inputs.prometheus]]\nname = \"broker\"\ntopic = \"metrics\"\nurls = [\"http://127.0.0.1:{}/metrics\"]\ninterval = \"1s\"\n\n\
             [[inputs.syslog]]\nname = \"udp\"\ntopic = \"syslog\"\nlisten = \"127.0.0.1:{udp}\"\nprotocol = \"udp\"\n\n\
             [[inputs.syslog]]\nname = \"tcp\"\ntopic = \"syslog\"\nlisten = \"127.0.0.1:{tcp}\"\nprotocol = \"tcp\"\n",
            dir.path().join("data").display().to_string(),
            broker.bootstrap(),
            broker.admin_port,
        );
    let mut agent = Component::start("agent", dir.path(), "agent", &toml)?;
    wait_until("the agent to listen for syslog", Duration::from_secs(20), || {
        agent.log().matches("syslog receiver listening").count() == 2
    })?;

    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket.send_to(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed on /dev/pts/8", ("127.0.0.1", udp))?;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", tcp))?;
    let framed =
        b"<165>1 2003-10-11T22:14:15.003Z app.example.com evntslog - ID47 [origin@1 ip=\"10.0.0.1\"] octet counted";
    stream.write_all(format!("{} ", framed.len()).as_bytes())?;
    stream.write_all(framed)?;
    stream.write_all(b"<13>Nov 23 12:00:00 web2 nginx[42]: newline framed\n")?;
    drop(stream);

    wait_until("three syslog records", Duration::from_secs(30), || records(&broker.bootstrap(), "syslog").len() >= 3)
        .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    let syslog = records(&broker.bootstrap(), "syslog");
    let by_message = |m: &str| syslog.iter().find(|(_, d)| d["message"] == m).cloned();
    let (key, udp_doc) = by_message("'su root' failed on /dev/pts/8").expect("UDP message");
    assert_eq!(key, "mymachine");
    assert_eq!(udp_doc["syslog"]["facility_name"], "auth");
    assert_eq!(udp_doc["syslog"]["severity_name"], "crit");
    assert_eq!(udp_doc["syslog"]["format"], "rfc3164");
    assert_eq!(udp_doc["input"]["type"], "syslog");
    assert_eq!(udp_doc["host"]["name"], "web-test");
    let (_, counted) = by_message("octet counted").expect("octet-counted TCP message");
    assert_eq!(counted["@timestamp"], "2003-10-11T22:14:15.003Z");
    assert_eq!(counted["syslog"]["structured_data"]["origin@1"]["ip"], "10.0.0.1");
    assert_eq!(counted["syslog"]["format"], "rfc5424");
    let (_, newline) = by_message("newline framed").expect("newline-framed TCP message");
    assert_eq!(newline["syslog"]["appname"], "nginx");
    assert_eq!(newline["syslog"]["procid"], "42");

    let names = |docs: &[(String, Value)]| -> Vec<String> {
        docs.iter().filter_map(|(_, d)| d["name"].as_str().map(str::to_string)).collect()
    };
    wait_until("host metrics with rates and broker metrics", Duration::from_secs(30), || {
        let n = names(&records(&broker.bootstrap(), "metrics"));
        ["cpu", "mem", "system", "net", "prometheus_scrape", "millrace_broker_connections"]
            .iter()
            .all(|want| n.iter().any(|m| m == want))
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    let metrics = records(&broker.bootstrap(), "metrics");
    let cpu = metrics
        .iter()
        .find(|(_, d)| d["name"] == "cpu" && d["tags"]["cpu"] == "cpu-total" && d["fields"]["usage_idle"].is_number())
        .expect("a cpu-total point with usage percentages");
    assert_eq!(cpu.0, "web-test", "metrics are keyed by host");
    assert_eq!(cpu.1["event"]["kind"], "metric");
    let mem = metrics.iter().find(|(_, d)| d["name"] == "mem").expect("mem point");
    assert!(mem.1["fields"]["total"].as_i64().unwrap_or(0) > 0);
    let up = metrics.iter().find(|(_, d)| d["name"] == "prometheus_scrape").expect("scrape status");
    assert_eq!(up.1["fields"]["up"], 1);

    agent.stop(Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn syslog_spills_to_disk_while_the_broker_is_down() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let dir = tempfile::tempdir()?;
    let tcp = free_port();
    let toml = format!(
        "[agent]\ndata_dir = {:?}\nhost_name = \"web-test\"\ndisk_buffer_bytes = \"64MiB\"\n\n\
             [output]\nbootstrap = \"{}\"\nqueue_bytes = \"1MiB\"\n\n\
             [[inputs.syslog]]\nname = \"tcp\"\ntopic = \"spill\"\nlisten = \"127.0.0.1:{tcp}\"\nprotocol = \"tcp\"\n",
        dir.path().join("data").display().to_string(),
        broker.bootstrap(),
    );
    let mut agent = Component::start("agent", dir.path(), "agent", &toml)?;
    wait_until("the agent to listen", Duration::from_secs(20), || agent.log().contains("syslog receiver listening"))?;
    broker.stop()?;
    // 20,000 messages of ~300 bytes: far more than the producer's 1 MiB memory queue.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", tcp))?;
    let filler = "x".repeat(250);
    for n in 0..20_000 {
        writeln!(stream, "<13>Nov 23 12:00:00 web2 app: msg-{n:05} {filler}")?;
    }
    drop(stream);
    let buffer_dir = dir.path().join("data").join("buffer");
    let spilled = || -> u64 {
        std::fs::read_dir(&buffer_dir)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    };
    wait_until("events to spill to the disk buffer", Duration::from_secs(30), || spilled() > 1 << 20)
        .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    eprintln!("{} bytes in the disk buffer while the broker is down", spilled());
    broker.restart()?;
    wait_until("every message after the broker returned", Duration::from_secs(90), || {
        records(&broker.bootstrap(), "spill").len() >= 20_000
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    let got = records(&broker.bootstrap(), "spill");
    let mut seen = std::collections::HashSet::new();
    for (_, doc) in &got {
        if let Some(n) = doc["message"].as_str().and_then(|m| m.strip_prefix("msg-")).and_then(|m| m.get(..5)) {
            seen.insert(n.to_string());
        }
    }
    assert_eq!(seen.len(), 20_000, "distinct messages received: {} of 20000", seen.len());
    agent.stop(Duration::from_secs(30))?;
    Ok(())
}

/// Writes one octet-counted syslog message over TLS presenting `identity` (if any), trusting
/// `ca`, and waits for the agent to close the connection (whether it took the message shows
/// in the topic, not here).
fn send_over_tls(
    port: u16,
    ca: &std::path::Path,
    identity: Option<&millrace_tests::pki::CertFiles>,
    message: &str,
) -> anyhow::Result<()> {
    let files = millrace_protocol::tls::ClientTlsFiles {
        ca_file: Some(ca.to_path_buf()),
        identity: identity.map(|c| (c.cert.clone(), c.key.clone())),
        verify_hostname: true,
    };
    let config = millrace_protocol::tls::client_config(&files)?;
    let conn = rustls::ClientConnection::new(config, rustls_pki_types::ServerName::try_from("localhost")?)?;
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(format!("{} {message}", message.len()).as_bytes())?;
    tls.flush()?;
    // The server's verdict on our certificate arrives after our first flight (TLS 1.3).
    tls.conn.send_close_notify();
    tls.flush()?;
    let _ = std::io::Read::read_to_end(&mut tls, &mut Vec::new());
    Ok(())
}

#[test]
fn syslog_over_tls_takes_only_senders_with_a_certificate_of_its_ca() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let dir = tempfile::tempdir()?;
    let ca = millrace_tests::pki::TestCa::new(&dir.path().join("pki"), "syslog CA")?;
    let server = ca.localhost("agent")?;
    let web = ca.issue("web-1", "web-1", &[])?;
    let stranger =
        millrace_tests::pki::TestCa::new(&dir.path().join("stranger"), "stranger CA")?.issue("x", "x", &[])?;
    let port = free_port();
    let toml = format!(
        "[agent]\ndata_dir = {:?}\n\n[output]\nbootstrap = \"{}\"\n\n\
         [[inputs.syslog]]\nname = \"tls\"\ntopic = \"syslog-tls\"\nlisten = \"127.0.0.1:{port}\"\nprotocol = \"tcp\"\n\
         [inputs.syslog.tls]\ncertificate_file = {:?}\nkey_file = {:?}\nca_file = {:?}\nclient_auth = \"required\"\n",
        dir.path().join("data").display().to_string(),
        broker.bootstrap(),
        server.cert.display().to_string(),
        server.key.display().to_string(),
        ca.ca_cert.display().to_string(),
    );
    let agent = Component::start("agent", dir.path(), "agent", &toml)?;
    wait_until("the agent to listen for syslog over TLS", Duration::from_secs(20), || {
        agent.log().contains("syslog receiver listening")
    })?;

    // Refused: plain TCP, TLS without a client certificate, a certificate from another CA.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port))?;
    plain.write_all(b"<13>Nov 23 12:00:00 web2 app: sent in clear\n")?;
    drop(plain);
    let _ = send_over_tls(port, &ca.ca_cert, None, "<13>1 - web2 app - - - without a certificate");
    let _ = send_over_tls(port, &ca.ca_cert, Some(&stranger), "<13>1 - web2 app - - - from a stranger");
    // Taken: the sender with the CA's certificate.
    send_over_tls(port, &ca.ca_cert, Some(&web), "<13>1 2026-12-03T10:00:00Z web1 app - - - over TLS")?;

    wait_until("the TLS message", Duration::from_secs(30), || {
        records(&broker.bootstrap(), "syslog-tls").iter().any(|(_, d)| d["message"] == "over TLS")
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    // The refused ones were sent first; give the agent a flush interval to (wrongly) pass them on.
    std::thread::sleep(Duration::from_secs(2));
    let messages: Vec<String> =
        records(&broker.bootstrap(), "syslog-tls").iter().map(|(_, d)| d["message"].to_string()).collect();
    assert_eq!(messages, vec!["\"over TLS\"".to_string()], "only the authenticated sender's message");
    assert!(agent.log().contains("syslog TLS handshake failed"), "{}", agent.log());
    Ok(())
}
