//! Each broker's Prometheus `/metrics`: per-topic byte counters and per-partition log sizes.
//! Optional: a broker without an endpoint, or one that does not answer, shows "-".

use crate::model::MetricsSample;
use std::time::{Duration, SystemTime};

/// Per-topic bytes appended (millrace broker metric names).
const BYTES_IN: &str = "millrace_broker_topic_bytes_in_total";
/// Per-topic bytes sent to consumers.
const BYTES_OUT: &str = "millrace_broker_topic_bytes_out_total";
/// Per-partition bytes on disk.
const LOG_SIZE: &str = "millrace_broker_log_size_bytes";

/// Largest /metrics body read.
const MAX_BODY: usize = 32 << 20;

/// Where metrics come from: discovered per broker, or given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsSource {
    /// Ask each broker (DescribeConfigs `millrace.admin.listeners`).
    Discover,
    /// `--metrics`: `ID=URL` entries pin a broker; plain URLs go to brokers in id order.
    Given(Vec<(Option<i32>, String)>),
}

impl MetricsSource {
    /// Parses `--metrics`: comma-separated `URL` or `ID=URL`; `/metrics` is appended to URLs
    /// without a path.
    pub fn parse(spec: &str) -> Result<MetricsSource, String> {
        let mut entries = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, url) = match entry.split_once('=') {
                Some((id, url)) if !id.contains("://") => {
                    let id = id.trim().parse::<i32>().map_err(|_| format!("`{entry}`: `{id}` is not a broker id"))?;
                    (Some(id), url.trim())
                }
                _ => (None, entry),
            };
            let Some(rest) = url.strip_prefix("http://") else {
                return Err(format!("`{entry}`: metrics URLs start with http://"));
            };
            let url = if rest.contains('/') { url.to_string() } else { format!("{url}/metrics") };
            entries.push((id, url));
        }
        if entries.is_empty() {
            return Err("--metrics names no URL".into());
        }
        Ok(MetricsSource::Given(entries))
    }

    /// The URL for broker `id`, given the ids of every broker in ascending order.
    pub fn url_for(&self, id: i32, ids: &[i32]) -> Option<String> {
        let MetricsSource::Given(entries) = self else { return None };
        if let Some((_, url)) = entries.iter().find(|(pinned, _)| *pinned == Some(id)) {
            return Some(url.clone());
        }
        let unpinned: Vec<&String> = entries.iter().filter(|(pinned, _)| pinned.is_none()).map(|(_, u)| u).collect();
        let unpinned_ids: Vec<i32> =
            ids.iter().copied().filter(|i| !entries.iter().any(|(pinned, _)| *pinned == Some(*i))).collect();
        let position = unpinned_ids.iter().position(|i| *i == id)?;
        unpinned.get(position).map(|u| (*u).clone())
    }
}

/// The `/metrics` URL from a `millrace.admin.listeners` value (`http://HOST:PORT`). A wildcard
/// listen address is replaced by the broker's advertised Kafka host, which clients can reach.
pub fn url_from_admin_listener(value: &str, kafka_host: &str) -> Option<String> {
    let first = value.split(',').next()?.trim();
    let hostport = first.strip_prefix("http://")?.trim_end_matches('/');
    let (host, port) = hostport.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = match host {
        "0.0.0.0" | "[::]" | "" => kafka_host,
        other => other,
    };
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    Some(format!("http://{host}:{port}/metrics"))
}

/// The counters and sizes in a `/metrics` body read at `at`.
pub fn parse(text: &str, at: SystemTime) -> MetricsSample {
    let mut sample = MetricsSample { at: Some(at), ..MetricsSample::default() };
    // A malformed line costs only itself: the rest of the body still counts.
    for metric in millrace_prometheus_text::samples(text).filter_map(Result::ok) {
        let (name, value) = (metric.name, metric.value);
        match name {
            BYTES_IN | BYTES_OUT => {
                let Some(topic) = metric.label("topic") else { continue };
                let entry = sample.topics.entry(topic.to_string()).or_default();
                if name == BYTES_IN {
                    entry.0 += value;
                    sample.bytes_in += value;
                } else {
                    entry.1 += value;
                    sample.bytes_out += value;
                }
            }
            LOG_SIZE => {
                let (Some(topic), Some(partition)) = (metric.label("topic"), metric.label("partition")) else {
                    continue;
                };
                if let Ok(partition) = partition.parse::<i32>() {
                    sample.partition_sizes.insert((topic.to_string(), partition), value.max(0.0) as u64);
                }
            }
            _ => {}
        }
    }
    sample
}

/// GETs and parses one endpoint within `timeout`.
pub async fn scrape(client: &reqwest::Client, url: &str, timeout: Duration) -> Result<MetricsSample, String> {
    let response = client.get(url).timeout(timeout).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    if response.content_length().is_some_and(|l| l > MAX_BODY as u64) {
        return Err(format!("{url}: body larger than {MAX_BODY} bytes"));
    }
    // Read as it arrives, to the cap: a chunked body declares no length.
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("{url}: body larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(parse(&String::from_utf8_lossy(&body), SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"# HELP millrace_broker_topic_bytes_in_total Record-batch bytes appended, per topic
# TYPE millrace_broker_topic_bytes_in_total counter
millrace_broker_topic_bytes_in_total{topic="web-logs"} 1200
millrace_broker_topic_bytes_in_total{topic="odd \"name\""} 30
millrace_broker_topic_bytes_out_total{topic="web-logs"} 5000
millrace_broker_log_size_bytes{partition="0",topic="web-logs"} 4096
millrace_broker_log_size_bytes{partition="1", topic="web-logs"} 8192 1700000000000
millrace_broker_connections 3
"#;

    #[test]
    fn parses_byte_counters_and_sizes() {
        let sample = parse(BODY, SystemTime::UNIX_EPOCH);
        assert_eq!(sample.bytes_in, 1230.0);
        assert_eq!(sample.bytes_out, 5000.0);
        assert_eq!(sample.topics.get("web-logs"), Some(&(1200.0, 5000.0)));
        assert_eq!(sample.topics.get("odd \"name\""), Some(&(30.0, 0.0)));
        assert_eq!(sample.partition_sizes.get(&("web-logs".to_string(), 0)), Some(&4096));
        assert_eq!(sample.partition_sizes.get(&("web-logs".to_string(), 1)), Some(&8192));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let sample = parse("millrace_broker_topic_bytes_in_total{topic=\"a\" 12\nmillrace_broker_topic_bytes_in_total{topic=\"b\"} x\n", SystemTime::UNIX_EPOCH);
        assert_eq!(sample.bytes_in, 0.0);
    }

    #[test]
    fn admin_listener_becomes_a_metrics_url() {
        assert_eq!(
            url_from_admin_listener("http://127.0.0.1:9644", "ignored").as_deref(),
            Some("http://127.0.0.1:9644/metrics")
        );
        assert_eq!(
            url_from_admin_listener("http://0.0.0.0:9644", "b1.example").as_deref(),
            Some("http://b1.example:9644/metrics")
        );
        assert_eq!(url_from_admin_listener("PLAINTEXT://x:1", "h"), None);
    }

    #[test]
    fn metrics_override_pins_ids_and_assigns_the_rest_in_order() {
        let source = MetricsSource::parse("2=http://b:9644, http://a:9644/metrics ,http://c:1").unwrap();
        let ids = [1, 2, 3];
        assert_eq!(source.url_for(2, &ids).as_deref(), Some("http://b:9644/metrics"));
        assert_eq!(source.url_for(1, &ids).as_deref(), Some("http://a:9644/metrics"));
        assert_eq!(source.url_for(3, &ids).as_deref(), Some("http://c:1/metrics"));
        assert_eq!(source.url_for(4, &[1, 2, 3, 4]), None);
        assert!(MetricsSource::parse("x=http://a").is_err());
        assert!(MetricsSource::parse("https://a").is_err());
        assert!(MetricsSource::parse(" , ").is_err());
    }
}
