//! What the demo reports: brokers up or down (Metadata over the Kafka protocol), records in the
//! topics and the sink groups' lag (librdkafka: ListOffsets and OffsetFetch, without joining the
//! groups), and what the sinks wrote (lines in the output files, or the sink's own counters when
//! it writes to a real Elasticsearch or InfluxDB). With `--secure` it asks as the operator over
//! SASL_SSL, as a user would.

use super::configs::{Layout, LogsOut, MetricsOut, LOGS_GROUP, LOGS_TOPIC, METRICS_GROUP, METRICS_TOPIC, PARTITIONS};
use super::secure::User;
use crate::client::{protocol_security, Client};
use anyhow::Context;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{DescribeClusterRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use millrace_protocol::client::Security;
use millrace_protocol::Connection;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bound on one request of a status sample.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The demo's HTTP client: direct connections (the demo's own processes, or the given
/// Elasticsearch and InfluxDB), each request bounded by [`REQUEST_TIMEOUT`].
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(REQUEST_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .context("creating the HTTP client")
}

/// Asks the broker at `addr` (connecting and logging in as `security` says) for Metadata about
/// `topics`; returns its unfenced broker ids (DescribeCluster) and, per partition of those
/// topics, whether it has a leader (false for a topic the client may not see).
pub async fn metadata(
    addr: &str,
    security: &Security,
    topics: &[&str],
    timeout: Duration,
) -> anyhow::Result<(Vec<i32>, Vec<bool>)> {
    let mut conn = Connection::connect_with(addr, timeout, security).await?;
    let wanted = topics
        .iter()
        .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.to_string())))))
        .collect();
    let request = MetadataRequest::default().with_topics(Some(wanted)).with_allow_auto_topic_creation(false);
    let response = conn.request(9, &request, timeout).await?;
    // Metadata lists fenced brokers too; DescribeCluster before v2 lists the unfenced ones.
    let cluster = conn.request(0, &DescribeClusterRequest::default(), timeout).await?;
    anyhow::ensure!(cluster.error_code == 0, "DescribeCluster from {addr}: error {}", cluster.error_code);
    let mut brokers: Vec<i32> = cluster.brokers.iter().map(|b| b.broker_id.0).collect();
    brokers.sort_unstable();
    let mut led = Vec::new();
    for topic in &response.topics {
        if topic.error_code != 0 || topic.partitions.is_empty() {
            led.push(false);
        }
        led.extend(topic.partitions.iter().map(|p| p.error_code == 0 && p.leader_id.0 >= 0));
    }
    Ok((brokers, led))
}

/// Counts the lines of a growing file, reading only what was appended since the last count.
struct LineCounter {
    path: PathBuf,
    read: u64,
    lines: u64,
}

impl LineCounter {
    fn count(&mut self) -> std::io::Result<u64> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        if file.metadata()?.len() < self.read {
            // Emptied or replaced: count afresh.
            (self.read, self.lines) = (0, 0);
        }
        file.seek(SeekFrom::Start(self.read))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(self.lines);
            }
            self.read += n as u64;
            self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
}

/// How the written amount of one sink is measured.
enum Written {
    /// Lines of an output file, `per_record` lines per record.
    File { counter: LineCounter, per_record: u64 },
    /// The sink's `records_forwarded_total` for this sink name.
    Forwarded(&'static str),
}

/// A count per topic or group; None when it could not be read.
type Counts = Vec<(&'static str, Option<i64>)>;

/// One look at the pipeline.
pub struct Sample {
    /// Per broker: id and whether it answered Metadata.
    pub brokers: Vec<(i32, bool)>,
    /// Records in `logs` and `metrics` (sum of the partitions' end offsets).
    pub records: Counts,
    /// Lag of the two sink groups.
    pub lag: Counts,
    /// Documents and points written.
    pub written: Vec<(&'static str, Option<u64>)>,
}

impl Sample {
    /// True when both groups are known to have no lag.
    pub fn caught_up(&self) -> bool {
        self.lag.iter().all(|(_, lag)| *lag == Some(0))
    }

    /// Records in `topic`, when known.
    pub fn records(&self, topic: &str) -> Option<i64> {
        self.records.iter().find(|(t, _)| *t == topic).and_then(|(_, n)| *n)
    }

    /// One status line.
    pub fn line(&self, elapsed: Duration, generated: u64, generating: bool) -> String {
        let show = |v: Option<String>| v.unwrap_or_else(|| "?".into());
        let secs = elapsed.as_secs();
        let brokers: Vec<String> =
            self.brokers.iter().map(|(id, up)| format!("{id}:{}", if *up { "up" } else { "DOWN" })).collect();
        let records: Vec<String> =
            self.records.iter().map(|(t, n)| format!("{t} {}", show(n.map(|n| n.to_string())))).collect();
        let lag: Vec<String> =
            self.lag.iter().map(|(g, n)| format!("{g} {}", show(n.map(|n| n.to_string())))).collect();
        let written: Vec<String> =
            self.written.iter().map(|(what, n)| format!("{} {what}", show(n.map(|n| n.to_string())))).collect();
        format!(
            "[{:02}:{:02}] brokers {} | generated {generated} lines{} | records {} | lag {} | written {}",
            secs / 60,
            secs % 60,
            brokers.join(" "),
            if generating { "" } else { " (stopped)" },
            records.join(", "),
            lag.join(", "),
            written.join(", "),
        )
    }
}

/// A client context that keeps librdkafka quiet: a stopped broker shows as DOWN in the status
/// line, and librdkafka's connection errors would only clutter the demo's output.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, _log_message: &str) {}

    fn error(&self, _error: KafkaError, _reason: &str) {}
}

impl ConsumerContext for Quiet {}

/// The group offsets part of a sample (blocking librdkafka calls).
struct Offsets {
    client: Client,
}

impl Offsets {
    /// A client asking as `group` (OffsetFetch without joining it). A fresh one per sample: a
    /// long-lived client that is never polled would keep asking a stopped partition leader
    /// until its next periodic metadata refresh.
    fn client(&self, group: &str) -> Option<BaseConsumer<Quiet>> {
        let mut config: ClientConfig = self.client.rdkafka_config("millrace-demo");
        config.set("group.id", group).set("enable.auto.commit", "false").create_with_context(Quiet).ok()
    }

    /// (records per topic, lag per group).
    fn sample(&self) -> (Counts, Counts) {
        let mut records = Vec::new();
        let mut lags = Vec::new();
        for (group, topic) in [(LOGS_GROUP, LOGS_TOPIC), (METRICS_GROUP, METRICS_TOPIC)] {
            let Some(client) = self.client(group) else {
                records.push((topic, None));
                lags.push((group, None));
                continue;
            };
            let marks: Option<Vec<(i64, i64)>> =
                (0..PARTITIONS).map(|p| client.fetch_watermarks(topic, p, REQUEST_TIMEOUT).ok()).collect();
            let mut wanted = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                wanted.add_partition(topic, p);
            }
            let committed = client.committed_offsets(wanted, REQUEST_TIMEOUT).ok();
            let lag = marks.as_ref().zip(committed).map(|(marks, committed)| {
                marks
                    .iter()
                    .enumerate()
                    .map(|(p, (low, high))| {
                        let at = committed
                            .find_partition(topic, p as i32)
                            .and_then(|e| match e.offset() {
                                Offset::Offset(o) => Some(o),
                                _ => None,
                            })
                            // Nothing committed yet: the group starts at the earliest record.
                            .unwrap_or(*low);
                        (high - at).max(0)
                    })
                    .sum()
            });
            records.push((topic, marks.map(|m| m.iter().map(|(_, high)| high).sum())));
            lags.push((group, lag));
        }
        (records, lags)
    }
}

/// Takes samples of the running demo.
pub struct Probe {
    brokers: Vec<(i32, String)>,
    security: Security,
    offsets: Arc<Offsets>,
    written: Arc<Mutex<Vec<(&'static str, Written)>>>,
    sink_metrics: u16,
    http: reqwest::Client,
}

impl Probe {
    /// A probe of the demo laid out as `layout`.
    pub fn new(layout: &Layout) -> anyhow::Result<Probe> {
        let client = layout.client(User::Operator);
        let security = protocol_security(&client.security)?;
        let offsets = Offsets { client };
        let counter = |path: &PathBuf| LineCounter { path: path.clone(), read: 0, lines: 0 };
        let docs = match &layout.logs_out {
            LogsOut::File(path) => Written::File { counter: counter(path), per_record: 2 },
            LogsOut::Elasticsearch(_) => Written::Forwarded("logs"),
        };
        let points = match &layout.metrics_out {
            MetricsOut::File(path) => Written::File { counter: counter(path), per_record: 1 },
            MetricsOut::InfluxDb { .. } => Written::Forwarded("metrics"),
        };
        Ok(Probe {
            brokers: layout.brokers.iter().map(|b| (b.id, b.kafka_addr())).collect(),
            security,
            offsets: Arc::new(offsets),
            written: Arc::new(Mutex::new(vec![("docs", docs), ("points", points)])),
            sink_metrics: layout.sink_metrics,
            http: http_client()?,
        })
    }

    /// Looks at everything once.
    pub async fn sample(&self) -> Sample {
        let mut brokers = Vec::new();
        for (id, addr) in &self.brokers {
            let up = metadata(addr, &self.security, &[], REQUEST_TIMEOUT).await.is_ok();
            brokers.push((*id, up));
        }
        let forwarded = sink_forwarded(&self.http, self.sink_metrics).await.ok();
        let offsets = self.offsets.clone();
        let written = self.written.clone();
        let blocking = tokio::task::spawn_blocking(move || {
            let (records, lag) = offsets.sample();
            let mut written = written.lock().unwrap_or_else(|p| p.into_inner());
            let written = written
                .iter_mut()
                .map(|(what, source)| {
                    let n = match source {
                        Written::File { counter, per_record } => counter.count().ok().map(|n| n / *per_record),
                        Written::Forwarded(sink) => {
                            forwarded.as_ref().map(|f| f.iter().find(|(s, _)| s == sink).map_or(0, |(_, n)| *n))
                        }
                    };
                    (*what, n)
                })
                .collect();
            (records, lag, written)
        })
        .await;
        match blocking {
            Ok((records, lag, written)) => Sample { brokers, records, lag, written },
            Err(_) => Sample { brokers, records: Vec::new(), lag: Vec::new(), written: Vec::new() },
        }
    }
}

/// `millrace_sink_records_forwarded_total` per sink name, from the sink's /metrics.
async fn sink_forwarded(http: &reqwest::Client, port: u16) -> anyhow::Result<Vec<(String, u64)>> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let response = http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(response.status().is_success(), "GET {url}: HTTP {}", response.status());
    let body = response.text().await.with_context(|| format!("GET {url}"))?;
    Ok(millrace_prometheus_text::samples(&body)
        .filter_map(Result::ok)
        .filter(|sample| sample.name == "millrace_sink_records_forwarded_total")
        .filter_map(|sample| Some((sample.label("sink")?.to_string(), sample.value as u64)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn line_counter_reads_only_what_was_appended() {
        let dir = std::env::temp_dir().join(format!("millrace-demo-status-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.lp");
        let mut counter = LineCounter { path: path.clone(), read: 0, lines: 0 };
        let missing = counter.count().unwrap();
        std::fs::write(&path, "a\nb\n").unwrap();
        let two = counter.count().unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"c\nd").unwrap();
        let three = counter.count().unwrap();
        std::fs::write(&path, "x\n").unwrap();
        let rewritten = counter.count().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((missing, two, three, rewritten), (0, 2, 3, 1));
    }

    #[tokio::test]
    async fn sink_counters_come_from_its_metrics() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head).await.unwrap();
            let body = "# TYPE millrace_sink_records_forwarded_total counter\n\
                millrace_sink_records_forwarded_total{sink=\"logs\"} 120\n\
                millrace_sink_records_forwarded_total{sink=\"metrics\"} 7\n\
                millrace_sink_records_retried_total{sink=\"logs\"} 3\n";
            let answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            stream.write_all(answer.as_bytes()).await.unwrap();
        });
        let forwarded = sink_forwarded(&http_client().unwrap(), port).await.unwrap();
        assert_eq!(forwarded, [("logs".to_string(), 120), ("metrics".to_string(), 7)]);
    }

    #[test]
    fn status_line_shows_every_part() {
        let sample = Sample {
            brokers: vec![(1, true), (2, false), (3, true)],
            records: vec![("logs", Some(120)), ("metrics", None)],
            lag: vec![("demo-logs", Some(0)), ("demo-metrics", Some(0))],
            written: vec![("docs", Some(120)), ("points", Some(7))],
        };
        assert!(sample.caught_up());
        assert_eq!(
            sample.line(Duration::from_secs(75), 130, false),
            "[01:15] brokers 1:up 2:DOWN 3:up | generated 130 lines (stopped) | records logs 120, metrics ? | \
             lag demo-logs 0, demo-metrics 0 | written 120 docs, 7 points"
        );
    }
}
