//! Hostile input against real `millrace agent` and `millrace sink` processes (issue 13, findings
//! 8 and 9): destinations answering with a multi-byte character at the excerpt limit or an
//! endless body, `/metrics` clients that never finish their head, a symbolic link to a secret in
//! a watched directory, idle syslog connections holding every slot, and a line longer than the
//! producer may send.

use millrace_tests::component::Component;
use millrace_tests::{free_port, http_get, millrace, run, wait_for, wait_until, BrokerProcess};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the fake destination answers to one request.
enum Answer {
    /// A status and a body.
    Body(u16, Vec<u8>),
    /// `200 OK` and a body that does not end (up to 1 GiB): the bytes the client took are counted.
    Endless,
}

/// An HTTP server on a free port answering each request with `answer(request number, request
/// body)`, one request per connection.
struct FakeDestination {
    port: u16,
    /// Bytes of endless bodies the client accepted before it hung up, per such answer.
    endless_taken: Arc<std::sync::Mutex<Vec<u64>>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeDestination {
    fn start(answer: impl Fn(usize, &[u8]) -> Answer + Send + Sync + 'static) -> anyhow::Result<FakeDestination> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let endless_taken = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (taken, count, stopped) = (endless_taken.clone(), requests.clone(), stop.clone());
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let (answer, taken, n) = (answer.clone(), taken.clone(), count.fetch_add(1, Ordering::SeqCst));
                std::thread::spawn(move || {
                    let _ = serve_one(stream, n, &*answer, &taken);
                });
            }
        });
        Ok(FakeDestination { port, endless_taken, requests, stop })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeDestination {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_one(
    mut stream: TcpStream,
    n: usize,
    answer: &dyn Fn(usize, &[u8]) -> Answer,
    taken: &std::sync::Mutex<Vec<u64>>,
) -> anyhow::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut received = Vec::new();
    let mut buf = [0u8; 64 << 10];
    let head_end = loop {
        let read = stream.read(&mut buf)?;
        anyhow::ensure!(read > 0, "closed before the head ended");
        received.extend_from_slice(&buf[..read]);
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while received.len() < head_end + length {
        let read = stream.read(&mut buf)?;
        anyhow::ensure!(read > 0, "closed before the body ended");
        received.extend_from_slice(&buf[..read]);
    }
    match answer(n, &received[head_end..]) {
        Answer::Body(status, body) => {
            write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
            stream.write_all(&body)?;
        }
        Answer::Endless => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")?;
            stream.set_write_timeout(Some(Duration::from_secs(10)))?;
            let chunk = vec![b' '; 1 << 20];
            let mut sent = 0u64;
            while sent < 1 << 30 && stream.write_all(&chunk).is_ok() {
                sent += chunk.len() as u64;
            }
            taken.lock().unwrap_or_else(|p| p.into_inner()).push(sent);
        }
    }
    Ok(())
}

/// A metric record in the agent's format.
fn metric(seq: u64) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-23T11:00:00.{:03}Z","name":"load","tags":{{}},"fields":{{"v":{seq}}},"host":{{"name":"h1"}},"input":{{"type":"test","name":"t"}},"event":{{"schema":1,"kind":"metric"}}}}"#,
        seq % 1000
    )
}

/// A log record in the agent's format.
fn log_line(seq: u64) -> String {
    format!(r#"{{"@timestamp":"2026-11-23T11:00:00Z","message":"line {seq}","host":{{"name":"h1"}}}}"#)
}

fn produce(bootstrap: &str, topic: &str, records: &[String]) -> anyhow::Result<()> {
    millrace(&["topic", "create", topic, "--partitions", "1", "--bootstrap", bootstrap])?;
    let input = records.join("\n") + "\n";
    run("kcat", &["-P", "-b", bootstrap, "-t", topic], Some(input.as_bytes()), Duration::from_secs(60))?;
    Ok(())
}

fn group_drained(bootstrap: &str, group: &str) -> anyhow::Result<bool> {
    Ok(millrace(&["group", "describe", group, "--bootstrap", bootstrap])?.contains("TotalLag: 0"))
}

/// Resident memory of a process in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().and_then(|kb| kb.parse::<u64>().ok()))
        })
        .map_or(0, |kb| kb * 1024)
}

fn sink_toml(bootstrap: &str, table: &str) -> String {
    format!(
        "[sink]\nmetrics_listen = \"127.0.0.1:{}\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n{table}",
        free_port()
    )
}

#[test]
fn a_multibyte_character_at_the_excerpt_limit_neither_panics_nor_stops_the_sink() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    produce(&bootstrap, "metrics", &(0..10).map(metric).collect::<Vec<_>>())?;
    // Three failures whose body, trimmed, has a two-byte character at bytes 299 and 300; then
    // InfluxDB takes the points.
    let body = format!("{}é{}", "x".repeat(299), "y".repeat(100)).into_bytes();
    let influx =
        FakeDestination::start(
            move |n, _| if n < 3 { Answer::Body(500, body.clone()) } else { Answer::Body(204, vec![]) },
        )?;
    let dir = tempfile::tempdir()?;
    let table = format!(
        "[[influxdb]]\nname = \"metrics\"\ntopics = [\"metrics\"]\ngroup = \"hostile-influx\"\nurl = \"{}\"\n\
         database = \"metrics\"\nbatch_timeout = \"100ms\"\nretry_initial = \"100ms\"\nretry_max = \"300ms\"\n",
        influx.url()
    );
    let mut sink = Component::start("sink", dir.path(), "sink", &sink_toml(&bootstrap, &table))?;
    wait_for("the points written after three refusals", Duration::from_secs(60), || {
        anyhow::ensure!(sink.is_running(), "the sink exited; log:\n{}", sink.log());
        Ok(influx.requests.load(Ordering::SeqCst) > 3 && group_drained(&bootstrap, "hostile-influx")?)
    })?;
    let log = sink.log();
    assert!(!log.contains("panicked"), "{log}");
    let excerpt = format!("HTTP 500: {}…", "x".repeat(299));
    assert!(log.contains(&excerpt), "the failure is logged with an excerpt cut before the character:\n{log}");
    sink.stop(Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn an_endless_destination_body_is_refused_unread_and_the_write_retried() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    produce(&bootstrap, "logs", &(0..20).map(log_line).collect::<Vec<_>>())?;
    // Two endless answers to `_bulk`, then a real one (an item per action line).
    let es = FakeDestination::start(|n, body| {
        if n < 2 {
            return Answer::Endless;
        }
        let items = body.split(|&b| b == b'\n').filter(|l| l.starts_with(b"{\"index\"")).count();
        let item = r#"{"index":{"status":201}}"#;
        let answer = format!(r#"{{"took":1,"errors":false,"items":[{}]}}"#, vec![item; items].join(","));
        Answer::Body(200, answer.into_bytes())
    })?;
    let dir = tempfile::tempdir()?;
    let table = format!(
        "[[elasticsearch]]\nname = \"logs\"\ntopics = [\"logs\"]\ngroup = \"hostile-es\"\nendpoints = [\"{}\"]\n\
         index = \"logs\"\ngzip = false\nbatch_timeout = \"100ms\"\nretry_initial = \"100ms\"\nretry_max = \"300ms\"\n\
         request_timeout = \"20s\"\n",
        es.url()
    );
    let mut sink = Component::start("sink", dir.path(), "sink", &sink_toml(&bootstrap, &table))?;
    let pid = sink.process().pid().unwrap_or(0);
    let mut peak = 0;
    wait_for("the documents written after two endless answers", Duration::from_secs(90), || {
        peak = peak.max(rss(pid));
        anyhow::ensure!(sink.is_running(), "the sink exited; log:\n{}", sink.log());
        Ok(es.requests.load(Ordering::SeqCst) > 2 && group_drained(&bootstrap, "hostile-es")?)
    })?;
    let taken = es.endless_taken.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(taken.len(), 2, "{taken:?}");
    // The cap is a few MiB; socket buffers hold a few more.
    assert!(taken.iter().all(|&bytes| bytes < 64 << 20), "the sink read on: {taken:?} bytes");
    assert!(peak < 256 << 20, "the sink's resident memory reached {} MiB", peak >> 20);
    let log = sink.log();
    assert!(log.contains("the response body is larger than"), "{log}");
    sink.stop(Duration::from_secs(30))?;
    Ok(())
}

/// Hostile clients of a `/metrics` endpoint: idle ones, one sending a byte at a time, one sending
/// header bytes without end. Each is closed in bounded time, and a scraper is served meanwhile.
fn metrics_endpoint_survives_hostile_clients(port: u16) -> anyhow::Result<()> {
    let addr = format!("127.0.0.1:{port}");
    let idle: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(&addr)).collect::<Result<_, _>>()?;
    let mut dripping = TcpStream::connect(&addr)?;
    dripping.write_all(b"GET /metrics HTTP/1.1\r\n")?;
    let drip_closed = Arc::new(AtomicBool::new(false));
    let drip = {
        let closed = drip_closed.clone();
        let mut stream = dripping.try_clone()?;
        std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if stream.write_all(b"X").is_err() {
                    closed.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let endless_sent = Arc::new(AtomicU64::new(0));
    let endless = {
        let sent = endless_sent.clone();
        let mut stream = TcpStream::connect(&addr)?;
        stream.set_write_timeout(Some(Duration::from_secs(20)))?;
        std::thread::spawn(move || {
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nX-Endless: ");
            let chunk = [b'a'; 4096];
            while sent.load(Ordering::SeqCst) < 256 << 20 && stream.write_all(&chunk).is_ok() {
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        })
    };
    // Served meanwhile, at the first attempt (`http_get` fails on anything but a 200).
    http_get(port, "/metrics")?;
    let started = Instant::now();
    anyhow::ensure!(endless.join().is_ok(), "the endless sender's thread failed");
    let endless_sent = endless_sent.load(Ordering::SeqCst);
    anyhow::ensure!(endless_sent < 16 << 20, "the endpoint kept reading header bytes: {endless_sent}");
    anyhow::ensure!(drip.join().is_ok(), "the dripping sender's thread failed");
    anyhow::ensure!(drip_closed.load(Ordering::SeqCst), "a client sending a byte at a time was never closed");
    anyhow::ensure!(started.elapsed() < Duration::from_secs(15), "closing took {:?}", started.elapsed());
    for mut stream in idle {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut byte = [0u8; 1];
        anyhow::ensure!(matches!(stream.read(&mut byte), Ok(0) | Err(_)), "an idle connection was left open");
    }
    http_get(port, "/metrics")?;
    Ok(())
}

#[test]
fn metrics_endpoints_of_agent_and_sink_bound_their_clients() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    let (agent_port, sink_port) = (free_port(), free_port());
    let agent_toml = format!(
        "[agent]\ndata_dir = {:?}\nmetrics_listen = \"127.0.0.1:{agent_port}\"\n\n[output]\nbootstrap = \"{bootstrap}\"\n\n\
         [[inputs.file]]\nname = \"f\"\ntopic = \"logs\"\ninclude = [{:?}]\n",
        dir.path().join("agent-data").display().to_string(),
        dir.path().join("none").join("*.log").display().to_string(),
    );
    let mut agent = Component::start("agent", dir.path(), "agent", &agent_toml)?;
    let sink_toml = format!(
        "[sink]\nmetrics_listen = \"127.0.0.1:{sink_port}\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n\
         [[file]]\nname = \"out\"\ntopics = [\"logs\"]\ngroup = \"hostile-file\"\npath = {:?}\nformat = \"elasticsearch_bulk\"\n",
        dir.path().join("out.ndjson").display().to_string(),
    );
    let mut sink = Component::start("sink", dir.path(), "sink", &sink_toml)?;
    for (name, port, component) in [("agent", agent_port, &mut agent), ("sink", sink_port, &mut sink)] {
        wait_for(&format!("the {name}'s metrics endpoint"), Duration::from_secs(20), || {
            Ok(http_get(port, "/metrics").is_ok())
        })?;
        metrics_endpoint_survives_hostile_clients(port)
            .map_err(|e| anyhow::anyhow!("{name}: {e:#}; log:\n{}", component.log()))?;
    }
    agent.stop(Duration::from_secs(30))?;
    sink.stop(Duration::from_secs(30))?;
    Ok(())
}

/// Every record of `topic`, parsed.
fn records(bootstrap: &str, topic: &str) -> Vec<Value> {
    let Ok(out) = run("kcat", &["-C", "-b", bootstrap, "-t", topic, "-e", "-q"], None, Duration::from_secs(30)) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn agent_toml(dir: &Path, bootstrap: &str, inputs: &str) -> String {
    format!(
        "[agent]\ndata_dir = {:?}\nhost_name = \"web-test\"\ncheckpoint_interval = \"200ms\"\n\n\
         [output]\nbootstrap = \"{bootstrap}\"\n\n{inputs}",
        dir.join("agent-data").display().to_string(),
    )
}

#[test]
fn a_symbolic_link_to_a_secret_in_a_watched_directory_is_not_shipped() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    std::fs::write(dir.path().join("shadow"), "root:$6$secret-hash:19000:0:99999:7:::\n")?;
    std::os::unix::fs::symlink(dir.path().join("shadow"), logs.join("shadow.log"))?;
    std::fs::write(logs.join("app.log"), "first line\n")?;
    let inputs = format!(
        "[[inputs.file]]\nname = \"app\"\ntopic = \"logs\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\n",
        logs.join("*.log").display().to_string()
    );
    let mut agent = Component::start("agent", dir.path(), "agent", &agent_toml(dir.path(), &bootstrap, &inputs))?;
    wait_until("the real file's line", Duration::from_secs(30), || {
        records(&bootstrap, "logs").iter().any(|d| d["message"] == "first line")
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    // Several scans later, with a line after them: still nothing of the secret.
    std::thread::sleep(Duration::from_secs(2));
    std::fs::OpenOptions::new().append(true).open(logs.join("app.log"))?.write_all(b"second line\n")?;
    wait_until("the second line", Duration::from_secs(30), || {
        records(&bootstrap, "logs").iter().any(|d| d["message"] == "second line")
    })?;
    let shipped = records(&bootstrap, "logs");
    assert!(shipped.iter().all(|d| !d["message"].as_str().unwrap_or_default().contains("secret")), "{shipped:#?}");
    let log = agent.log();
    assert_eq!(log.matches("skipping a symbolic link").count(), 1, "warned once per link:\n{log}");
    agent.stop(Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn idle_syslog_connections_beyond_the_cap_time_out_and_a_sender_gets_through() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    let tcp = free_port();
    let inputs = format!(
        "[[inputs.syslog]]\nname = \"tcp\"\ntopic = \"syslog\"\nlisten = \"127.0.0.1:{tcp}\"\nprotocol = \"tcp\"\n\
         max_connections = 4\nidle_timeout = \"1s\"\n"
    );
    let mut agent = Component::start("agent", dir.path(), "agent", &agent_toml(dir.path(), &bootstrap, &inputs))?;
    wait_until("the syslog listener", Duration::from_secs(20), || agent.log().contains("syslog receiver listening"))?;
    // Twice the cap in silent connections: four hold the slots, four wait in the backlog.
    let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(("127.0.0.1", tcp))).collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut sender = TcpStream::connect(("127.0.0.1", tcp))?;
    sender.write_all(b"<13>Nov 23 12:00:00 web2 app: a real message\n")?;
    wait_until("the real sender's message", Duration::from_secs(30), || {
        records(&bootstrap, "syslog").iter().any(|d| d["message"] == "a real message")
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    // Two rounds of idle timeouts (the backlog's four are served, then time out, too).
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    for mut stream in idle {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut byte = [0u8; 1];
        assert!(matches!(stream.read(&mut byte), Ok(0) | Err(_)), "an idle connection was left open");
    }
    agent.stop(Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn a_line_longer_than_the_producer_may_send_is_cut_shipped_and_checkpointed() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let path = logs.join("app.log");
    // 3 MB of one line, then 900 kB of quotes (under 1 MB as read, twice that as JSON).
    let text = format!("before\n{}\n{}\nafter\n", "x".repeat(3_000_000), "\"".repeat(900_000));
    std::fs::write(&path, &text)?;
    let inputs = format!(
        "[[inputs.file]]\nname = \"app\"\ntopic = \"logs\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\n",
        logs.join("*.log").display().to_string()
    );
    let mut agent = Component::start("agent", dir.path(), "agent", &agent_toml(dir.path(), &bootstrap, &inputs))?;
    wait_until("four records", Duration::from_secs(60), || records(&bootstrap, "logs").len() >= 4)
        .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    let shipped = records(&bootstrap, "logs");
    let messages: Vec<&str> = shipped.iter().map(|d| d["message"].as_str().unwrap_or_default()).collect();
    assert_eq!(messages.first(), Some(&"before"));
    assert_eq!(messages.get(3), Some(&"after"));
    for (doc, fill) in shipped[1..3].iter().zip(['x', '"']) {
        let message = doc["message"].as_str().unwrap_or_default();
        assert!(message.len() > 100_000 && message.chars().all(|c| c == fill), "{} bytes", message.len());
        assert_eq!(doc["log"]["flags"], serde_json::json!(["truncated"]));
    }
    // The checkpoint reaches the file's end.
    let registry = dir.path().join("agent-data").join("registry.json");
    wait_for("the checkpoint at the end of the file", Duration::from_secs(20), || {
        let stored: Value = serde_json::from_slice(&std::fs::read(&registry)?)?;
        Ok(stored["files"].as_array().is_some_and(|files| files.iter().any(|f| f["offset"] == text.len())))
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    // Lines after it are shipped too.
    std::fs::OpenOptions::new().append(true).open(&path)?.write_all(b"later\n")?;
    wait_until("a later line", Duration::from_secs(30), || {
        records(&bootstrap, "logs").iter().any(|d| d["message"] == "later")
    })?;
    agent.stop(Duration::from_secs(30))?;
    Ok(())
}
