//! Hostile input at the connection level, against real broker processes: floods of idle
//! connections, idle and trickling clients, frames announcing more than they send, oversized
//! frames, an endless HTTP header, and commands to the controller port from a stranger.
//!
//! Strangers connect from other loopback addresses (127.0.0.2, 127.0.0.3, …: all of
//! 127.0.0.0/8 reaches the loopback interface on Linux) while the brokers and their voters use
//! 127.0.0.1.

use anyhow::{bail, Context};
use kafka_protocol::messages::ApiVersionsRequest;
use millrace_tests::cluster::Cluster;
use millrace_tests::{wait_for, wait_until, BrokerProcess, KafkaConn};
use socket2::{Domain, Socket, Type};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A TCP connection from `source` (an address on this host) to `target`.
fn connect_from(source: &str, target: &str) -> anyhow::Result<TcpStream> {
    let target: SocketAddr = target.parse()?;
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let source: SocketAddr = format!("{source}:0").parse()?;
    socket.bind(&source.into()).with_context(|| format!("binding {source}"))?;
    socket
        .connect_timeout(&target.into(), Duration::from_secs(5))
        .with_context(|| format!("connecting to {target}"))?;
    Ok(socket.into())
}

/// True when the peer has closed `stream` (EOF or reset) within `within`; data counts as open.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(within));
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// True when the peer has closed `stream` by now (non-blocking look).
fn is_closed_now(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match stream.peek(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// An ApiVersions round trip: the broker serves this client.
fn served(port: u16) -> anyhow::Result<()> {
    let mut conn = KafkaConn::connect_addr(&format!("127.0.0.1:{port}"), Duration::from_secs(5))?;
    let response = conn.request(3, &ApiVersionsRequest::default())?;
    anyhow::ensure!(response.error_code == 0, "ApiVersions error {}", response.error_code);
    Ok(())
}

/// The value of the sample of `name` whose labels include every one of `labels` (`key="value"`).
fn metric(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `VmRSS` and `VmSize` of a process, in KiB.
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("{name} in status"))?;
        Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
    };
    Ok((field("VmRSS:")?, field("VmSize:")?))
}

/// Makes sure this test process may hold `n` more sockets, raising its soft limit to the hard
/// one with `prlimit` if needed.
fn ensure_open_files(n: u64) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let line = limits.lines().find(|l| l.starts_with("Max open files")).context("no open-files limit")?;
    let mut numbers = line.split_whitespace().filter_map(|f| f.parse::<u64>().ok());
    let (soft, hard) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(u64::MAX));
    if soft >= n + 200 {
        return Ok(());
    }
    let pid = std::process::id().to_string();
    let raise = format!("--nofile={hard}:{hard}");
    let status = std::process::Command::new("prlimit").args(["--pid", &pid, &raise]).status();
    anyhow::ensure!(
        status.is_ok_and(|s| s.success()) && hard >= n + 200,
        "this test needs {n} sockets but may open only {soft} files (hard limit {hard}); raise `ulimit -n`"
    );
    Ok(())
}

#[test]
fn connection_floods_are_cut_at_the_limits_and_others_are_still_served() -> anyhow::Result<()> {
    ensure_open_files(2100)?;
    let broker = BrokerProcess::start("[server]\nmax_connections = 80\nmax_connections_per_ip = 50\n")?;
    let target = broker.bootstrap();
    let started = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..2000 {
        flood.push(connect_from("127.0.0.2", &target)?);
    }
    // Over-limit connections are accepted and closed at once: 50 stay open.
    let mut open = 0;
    wait_until("the broker to close all but 50 of 2,000 idle connections", Duration::from_secs(30), || {
        open = flood.iter().filter(|s| !is_closed_now(s)).count();
        open == 50
    })
    .with_context(|| format!("{open} still open"))?;
    served(broker.port).context("a client from another address while 2,000 idle connections came in")?;

    // The broker-wide limit: 50 + 30 from a third address, the rest of those closed, and then
    // nobody new until connections go away.
    wait_for("the first client's connection to be released", Duration::from_secs(10), || {
        Ok(metric(&broker.admin_get("/metrics")?, "millrace_broker_connections", &[]) == Some(50.0))
    })?;
    let third: Vec<TcpStream> = (0..50).map(|_| connect_from("127.0.0.3", &target)).collect::<Result<_, _>>()?;
    let mut open_third = 0;
    wait_until("30 of 50 connections from a third address to stay open", Duration::from_secs(10), || {
        open_third = third.iter().filter(|s| !is_closed_now(s)).count();
        open_third == 30
    })
    .with_context(|| format!("{open_third} still open"))?;
    let mut refused = KafkaConn::connect_addr(&target, Duration::from_secs(5))?;
    anyhow::ensure!(refused.is_closed_by_peer(), "a connection over max_connections must be closed");
    drop(flood);
    wait_for("a client to be served once the flood's connections closed", Duration::from_secs(10), || {
        Ok(served(broker.port).is_ok())
    })?;

    let metrics = broker.admin_get("/metrics")?;
    let per_ip = metric(
        &metrics,
        "millrace_broker_connections_refused_total",
        &["listener=\"kafka\"", "reason=\"max_connections_per_ip\""],
    );
    anyhow::ensure!(per_ip == Some(1950.0), "refused per ip: {per_ip:?}\n{metrics}");
    let total = metric(
        &metrics,
        "millrace_broker_connections_refused_total",
        &["listener=\"kafka\"", "reason=\"max_connections\""],
    );
    anyhow::ensure!(total.is_some_and(|n| n >= 21.0), "refused over the total: {total:?}");
    // Refusals are logged at a limited rate, not once per connection.
    let warnings = broker.log().lines().filter(|l| l.contains("closing a new connection")).count();
    let allowed = 2 + started.elapsed().as_secs() / 10 * 2;
    anyhow::ensure!(
        (1..=allowed as usize).contains(&warnings),
        "{warnings} refusal warnings logged, expected 1..={allowed}"
    );
    drop(third);
    Ok(())
}

#[test]
fn idle_and_trickling_connections_are_closed() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[server]\nconnections_max_idle = \"1s\"\n")?;
    let target = broker.bootstrap();
    let mut silent = connect_from("127.0.0.1", &target)?;
    let mut after_request = KafkaConn::connect(broker.port)?;
    after_request.request(3, &ApiVersionsRequest::default())?;
    // A frame that never completes does not count as activity.
    let mut trickle = connect_from("127.0.0.1", &target)?;
    trickle.write_all(&1000u32.to_be_bytes())?;
    let started = Instant::now();
    let trickled = std::thread::spawn(move || {
        for _ in 0..40 {
            if trickle.write_all(b"x").is_err() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    });
    anyhow::ensure!(closed_within(&mut silent, Duration::from_secs(5)), "a silent connection must be closed");
    anyhow::ensure!(after_request.is_closed_by_peer(), "a connection idle after a request must be closed");
    let elapsed = started.elapsed();
    anyhow::ensure!(elapsed >= Duration::from_millis(800), "closed after {elapsed:?}, before the idle timeout");
    let trickle_closed = trickled.join().map_err(|_| anyhow::anyhow!("trickle thread panicked"))?;
    anyhow::ensure!(
        trickle_closed.is_some_and(|after| after < Duration::from_secs(4)),
        "a connection trickling one byte per 100 ms must be closed after the idle time, was {trickle_closed:?}"
    );
    let metrics = broker.admin_get("/metrics")?;
    let idle = metric(&metrics, "millrace_broker_connections_closed_total", &["listener=\"kafka\"", "reason=\"idle\""]);
    anyhow::ensure!(idle.is_some_and(|n| n >= 3.0), "idle closes: {idle:?}");
    served(broker.port)
}

#[test]
fn announced_large_frames_take_memory_only_as_bytes_arrive() -> anyhow::Result<()> {
    ensure_open_files(400)?;
    let broker = BrokerProcess::start("")?;
    let pid = broker.pid().context("broker pid")?;
    served(broker.port)?;
    let (rss_before, size_before) = memory_kib(pid)?;
    let mut hogs = Vec::new();
    for _ in 0..300 {
        let mut stream = connect_from("127.0.0.1", &broker.bootstrap())?;
        stream.write_all(&(100u32 << 20).to_be_bytes())?;
        stream.write_all(&[0u8; 100])?;
        hogs.push(stream);
    }
    // Give the broker time to read what arrived.
    std::thread::sleep(Duration::from_secs(1));
    served(broker.port).context("a normal client while 300 connections announce 100 MiB frames")?;
    let (rss_after, size_after) = memory_kib(pid)?;
    let (rss_growth, size_growth) = (rss_after.saturating_sub(rss_before), size_after.saturating_sub(size_before));
    // Reserving the announced lengths would map 300 × 100 MiB = 30 GiB.
    anyhow::ensure!(size_growth < 2 << 20, "VmSize grew by {size_growth} KiB");
    anyhow::ensure!(rss_growth < 100 << 10, "VmRSS grew by {rss_growth} KiB");
    let metrics = broker.admin_get("/metrics")?;
    let queued = metric(&metrics, "millrace_broker_queued_request_bytes", &[]).context("queued_request_bytes")?;
    anyhow::ensure!(queued <= 300.0 * 64.0 * 1024.0, "{queued} bytes of the request budget in use");
    anyhow::ensure!(hogs.iter().all(|s| !is_closed_now(s)), "partial frames within the limits are not an error");
    drop(hogs);
    wait_for("the budget to be returned", Duration::from_secs(10), || {
        Ok(metric(&broker.admin_get("/metrics")?, "millrace_broker_queued_request_bytes", &[]) == Some(0.0))
    })
}

#[test]
fn a_frame_over_max_request_bytes_closes_only_its_connection() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[server]\nmax_request_bytes = \"2MiB\"\n")?;
    let mut bystander = KafkaConn::connect(broker.port)?;
    bystander.request(3, &ApiVersionsRequest::default())?;
    let mut oversized = KafkaConn::connect(broker.port)?;
    oversized.send_raw(&(3u32 << 20).to_be_bytes())?;
    anyhow::ensure!(oversized.is_closed_by_peer(), "a 3 MiB frame over a 2 MiB limit must close its connection");
    bystander.request(3, &ApiVersionsRequest::default()).context("the other connection after the oversized frame")?;
    let log = broker.log();
    anyhow::ensure!(log.contains("server.max_request_bytes"), "the reason is logged:\n{log}");
    Ok(())
}

/// Ports `pid` listens on, from its socket inodes and /proc/net/tcp{,6}.
fn listening_ports(pid: u32) -> anyhow::Result<Vec<u16>> {
    let mut inodes = std::collections::HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        if let Ok(target) = std::fs::read_link(entry?.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                let port = fields[1].rsplit(':').next().context("local address")?;
                ports.push(u16::from_str_radix(port, 16)?);
            }
        }
    }
    ports.sort_unstable();
    Ok(ports)
}

#[test]
fn a_single_broker_exposes_no_controller_listener() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let pid = broker.pid().context("broker pid")?;
    let mut expected = vec![broker.port, broker.admin_port];
    expected.sort_unstable();
    let ports = listening_ports(pid)?;
    anyhow::ensure!(ports == expected, "listening on {ports:?}; expected only Kafka and admin {expected:?}");
    anyhow::ensure!(broker.log().contains("single-node metadata quorum started in-process"), "{}", broker.log());
    // And the in-process quorum works: a topic can be created and is listed.
    let mut conn = KafkaConn::connect(broker.port)?;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("solo")))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let response = conn.request(5, &request)?;
    let code = response.topics.first().map(|t| t.error_code);
    anyhow::ensure!(code == Some(0), "CreateTopics answered {code:?}");
    Ok(())
}

/// Sends one controller RPC frame (JSON) and returns the answer, or None when the connection
/// was closed without one.
fn controller_rpc(stream: &mut TcpStream, json: &str) -> anyhow::Result<Option<String>> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut frame = (json.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(json.as_bytes());
    if stream.write_all(&frame).is_err() {
        return Ok(None);
    }
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof || e.kind() == std::io::ErrorKind::ConnectionReset => {
            return Ok(None)
        }
        Err(e) => bail!("reading the controller's answer: {e}"),
    }
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    Ok(Some(String::from_utf8_lossy(&body).into_owned()))
}

#[test]
fn the_controller_refuses_commands_from_outside_the_quorum() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, "")?;
    cluster.create_topic("survivor", 3, 3, &[])?;
    cluster.create_topic("victim", 1, 3, &[])?;
    cluster.wait_leader_elected("survivor", Duration::from_secs(30))?;
    cluster.wait_leader_elected("victim", Duration::from_secs(30))?;
    let leader = cluster.quorum_leader().context("no quorum leader")?;
    let attacks = [
        r#"{"Propose":{"DeleteTopic":{"name":"survivor"}}}"#,
        r#"{"Propose":{"RegisterBroker":{"id":7,"host":"attacker.example","port":9092,"rack":null}}}"#,
        r#"{"AddLearner":{"id":7,"addr":"attacker.example:9093"}}"#,
        r#"{"BrokerHeartbeat":{"broker_id":7,"broker_epoch":1,"caught_up":true}}"#,
    ];
    for id in cluster.ids() {
        for attack in attacks {
            let mut stream = connect_from("127.0.0.2", &cluster.broker(id).controller_addr())?;
            let answer = controller_rpc(&mut stream, attack)?;
            anyhow::ensure!(answer.is_none(), "broker {id} answered {attack} from 127.0.0.2: {answer:?}");
        }
    }
    // The same frames work from a voter's address (127.0.0.1), so the refusal was the address.
    let mut stream = connect_from("127.0.0.1", &cluster.broker(leader).controller_addr())?;
    let answer = controller_rpc(&mut stream, r#"{"Propose":{"DeleteTopic":{"name":"victim"}}}"#)?;
    anyhow::ensure!(answer.is_some(), "the leader did not answer a voter's address");
    wait_for("the victim topic to be deleted by the allowed proposal", Duration::from_secs(20), || {
        Ok(cluster.describe_from(leader, "victim").is_err())
    })?;
    for id in cluster.ids() {
        let partitions = cluster.describe_from(id, "survivor")?;
        anyhow::ensure!(partitions.len() == 3, "broker {id} lists {partitions:?}");
        let brokers =
            millrace_tests::cluster::fetch_cluster_view(&cluster.broker(id).kafka_addr(), Duration::from_secs(5))?;
        anyhow::ensure!(!brokers.registered.contains(&7), "broker 7 was registered: {brokers:?}");
        let metrics = cluster.admin_get(id, "/metrics")?;
        let refused = metric(
            &metrics,
            "millrace_broker_connections_refused_total",
            &["listener=\"controller\"", "reason=\"not_allowed\""],
        );
        anyhow::ensure!(refused == Some(attacks.len() as f64), "broker {id} refused {refused:?}");
        anyhow::ensure!(cluster.log(id).contains("closing a new connection"), "broker {id} logged no refusal");
    }
    Ok(())
}

#[test]
fn the_admin_listener_cuts_endless_and_slow_headers() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let admin = format!("127.0.0.1:{}", broker.admin_port);
    // An endless header: the broker stops reading after 8 KiB and closes.
    let mut endless = connect_from("127.0.0.1", &admin)?;
    endless.set_write_timeout(Some(Duration::from_secs(10)))?;
    endless.write_all(b"GET /metrics HTTP/1.1\r\n")?;
    let started = Instant::now();
    let line = format!("X-Padding: {}\r\n", "a".repeat(1000));
    let mut written = 0usize;
    let cut = loop {
        if endless.write_all(line.as_bytes()).is_err() {
            break true;
        }
        written += line.len();
        if started.elapsed() > Duration::from_secs(15) || written > 64 << 20 {
            break false;
        }
    };
    anyhow::ensure!(cut, "the broker was still taking an endless header after {written} bytes");
    // A head trickled slowly enough to never hit a per-read timeout still has a deadline.
    let mut slow = connect_from("127.0.0.1", &admin)?;
    let started = Instant::now();
    let trickled = std::thread::spawn(move || {
        for _ in 0..30 {
            if slow.write_all(b"G").is_err() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        None
    });
    // Idle connections beyond the admin listener's per-address limit are closed at once.
    let idle: Vec<TcpStream> = (0..40).map(|_| connect_from("127.0.0.3", &admin)).collect::<Result<_, _>>()?;
    let mut open = 0;
    wait_until("16 idle admin connections from one address to stay open", Duration::from_secs(10), || {
        open = idle.iter().filter(|s| !is_closed_now(s)).count();
        open == 16
    })
    .with_context(|| format!("{open} open"))?;
    let body = broker.admin_get("/metrics")?;
    anyhow::ensure!(body.contains("millrace_broker_connections"), "/metrics after the attacks:\n{body}");
    let slow_closed = trickled.join().map_err(|_| anyhow::anyhow!("trickle thread panicked"))?;
    anyhow::ensure!(
        slow_closed.is_some_and(|after| after < Duration::from_secs(15)),
        "a head trickled one byte per second must be cut after about 10 s, was {slow_closed:?}"
    );
    drop(idle);
    broker.admin_get("/health").map(|_| ())
}
