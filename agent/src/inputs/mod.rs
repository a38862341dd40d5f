//! Sources of events. Each input is a small component that produces [`crate::pipeline::Envelope`]s.

pub mod file;
pub mod host_metrics;
pub mod prometheus;
pub mod syslog;

use crate::channel::EventSender;
use crate::event::LogEvent;
use crate::event::{set_path, MetricPoint};
use crate::pipeline::{Envelope, Processors};
use crate::route::TopicRoute;
use millrace_config::agent::{HostMetricsInput, PrometheusInput, StdinInput, SyslogInput, SyslogProtocol};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// Turns metric points of an input into envelopes (keyed by host, no acknowledgement: metrics are
/// sampled again rather than replayed).
pub fn metric_envelopes(
    points: Vec<MetricPoint>,
    host: &str,
    input_type: &str,
    input_name: &str,
    topic: &TopicRoute,
    processors: &Processors,
) -> Vec<Envelope> {
    points
        .into_iter()
        .filter_map(|point| {
            let mut doc = point.to_document();
            set_path(&mut doc, "host.name", Value::from(host));
            set_path(&mut doc, "input.type", Value::from(input_type));
            set_path(&mut doc, "input.name", Value::from(input_name));
            let input: Arc<str> = Arc::from(input_name);
            processors
                .apply(&mut doc)
                .then(|| Envelope::from_doc(&doc, &input, &topic.topic(&doc), Some(Arc::from(host)), None))
        })
        .collect()
}

/// The scraper of `input`: its timeout, body limit, TLS settings and credentials.
fn scraper_for(input: &PrometheusInput) -> Result<prometheus::Scraper, String> {
    // Validation refused both at once, and a basic_auth table without a password.
    let basic = input.basic_auth.as_ref().and_then(|b| Some((b.username.clone(), b.password.clone()?)));
    let auth = match (&input.bearer_token, basic) {
        (Some(token), _) => prometheus::ScrapeAuth::Bearer(token.clone()),
        (None, Some((username, password))) => prometheus::ScrapeAuth::Basic { username, password },
        (None, None) => prometheus::ScrapeAuth::None,
    };
    prometheus::Scraper::with_security(input.timeout.as_duration(), input.max_body_bytes.0, &input.tls, auth)
        .map_err(|e| e.to_string())
}

/// The task of a Prometheus scrape input: scrapes every URL each interval until shutdown.
pub fn prometheus_task(
    input: PrometheusInput,
    host: String,
    tx: EventSender,
    mut shutdown: watch::Receiver<bool>,
) -> Result<impl Future<Output = ()>, String> {
    let scraper = scraper_for(&input)?;
    let processors = Processors::with_transforms(&input.processors, None, &input.transforms)?;
    let topic = TopicRoute::new(&input.topic)?;
    Ok(async move {
        let mut tick = ticker(input.interval.as_duration());
        while next_tick(&mut tick, &mut shutdown).await {
            for url in &input.urls {
                let points = match scraper.scrape(url).await {
                    Ok(points) => points,
                    Err(e) => {
                        tracing::warn!(input = %input.name, error = %e, "scrape failed");
                        vec![e.status_point()]
                    }
                };
                let batch = metric_envelopes(points, &host, "prometheus", &input.name, &topic, &processors);
                if tx.send_batch(batch).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// An interval for sampling inputs: a late tick delays the next rather than bunching them up.
fn ticker(every: std::time::Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Waits for the next tick; false once shutdown is asked for.
async fn next_tick(tick: &mut tokio::time::Interval, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tick.tick() => true,
        _ = shutdown.changed() => false,
    }
}

fn sampler(input: &HostMetricsInput) -> host_metrics::HostMetricsSampler {
    host_metrics::HostMetricsSampler::new(input.proc_root.clone(), input.collectors)
}

/// The task of a host metrics input: samples every interval until shutdown. Sampling runs on a
/// thread of its own, and the task stops without it: a `statvfs` of a hung mount (a network file
/// system, a FUSE daemon that stopped answering) blocks in the kernel, and awaiting it would hold
/// up the agent's stop forever. Not the runtime's blocking pool either: the runtime waits for
/// every blocking task when it shuts down. While a sample hangs no new one starts.
pub fn host_metrics_task(
    input: HostMetricsInput,
    host: String,
    tx: EventSender,
    mut shutdown: watch::Receiver<bool>,
) -> Result<impl Future<Output = ()>, String> {
    let processors = Processors::with_transforms(&input.processors, None, &input.transforms)?;
    let topic = TopicRoute::new(&input.topic)?;
    let sampler = std::sync::Arc::new(std::sync::Mutex::new(sampler(&input)));
    Ok(async move {
        let mut tick = ticker(input.interval.as_duration());
        while next_tick(&mut tick, &mut shutdown).await {
            let Some(points) = sample_detached(&sampler, &input, &mut shutdown).await else { return };
            let Some(points) = points else { continue };
            let batch = metric_envelopes(points, &host, "host_metrics", &input.name, &topic, &processors);
            if tx.send_batch(batch).await.is_err() {
                return;
            }
        }
    })
}

/// One sample on a detached thread: `None` once shutdown is asked for (the thread is left to
/// finish, or to die with the process), `Some(None)` when no sample could be taken.
async fn sample_detached(
    sampler: &Arc<std::sync::Mutex<host_metrics::HostMetricsSampler>>,
    input: &HostMetricsInput,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Option<Vec<MetricPoint>>> {
    let (done, result) = tokio::sync::oneshot::channel();
    let thread_sampler = sampler.clone();
    let spawned = std::thread::Builder::new().name(format!("sample-{}", input.name)).spawn(move || {
        let points = thread_sampler.lock().unwrap_or_else(|p| p.into_inner()).sample(std::time::SystemTime::now());
        let _ = done.send(points);
    });
    if let Err(e) = spawned {
        tracing::warn!(input = %input.name, error = %e, "starting a sampling thread failed; sample skipped");
        return Some(None);
    }
    let slow = input.interval.as_duration().max(std::time::Duration::from_secs(5));
    let mut result = std::pin::pin!(result);
    let mut warned = false;
    loop {
        tokio::select! {
            points = &mut result => return Some(points.ok()),
            _ = shutdown.changed() => return None,
            _ = tokio::time::sleep(slow), if !warned => {
                warned = true;
                tracing::warn!(input = %input.name, waited = ?slow, "a host metrics sample is hanging (a mount point that does not answer statvfs?); no new sample starts until it returns");
            }
        }
    }
}

/// Two samples of `input` one second apart, so rates are present (for `--once`).
pub fn host_metrics_once(input: &HostMetricsInput, host: &str) -> Result<Vec<Envelope>, String> {
    let processors = Processors::with_transforms(&input.processors, None, &input.transforms)?;
    let topic = TopicRoute::new(&input.topic)?;
    let mut sampler = sampler(input);
    sampler.sample(std::time::SystemTime::now());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let points = sampler.sample(std::time::SystemTime::now());
    Ok(metric_envelopes(points, host, "host_metrics", &input.name, &topic, &processors))
}

/// Most syslog messages handed to the output at once.
const SYSLOG_BATCH: usize = 512;

/// The task of a syslog receiver: binds, then turns every received message into an envelope
/// (keyed by the sender's host name so one sender's messages stay in order).
pub async fn syslog_task(
    input: SyslogInput,
    host: String,
    tx: EventSender,
    shutdown: watch::Receiver<bool>,
) -> Result<impl Future<Output = ()>, String> {
    let processors = Processors::with_transforms(&input.processors, None, &input.transforms)?;
    let topic = TopicRoute::new(&input.topic)?;
    let options = syslog::ServerOptions {
        max_connections: input.max_connections,
        idle_timeout: Some(input.idle_timeout.as_duration()),
        ..syslog::ServerOptions::new(input.max_message_bytes.0 as usize)
    };
    let (events_tx, mut events) = tokio::sync::mpsc::channel::<LogEvent>(1024);
    // Bind now, so a taken port is a start-up error naming the address.
    let server: std::pin::Pin<Box<dyn Future<Output = Result<(), syslog::SyslogError>> + Send>> = match input.protocol {
        SyslogProtocol::Udp => {
            let socket = syslog::bind_udp(input.listen).await.map_err(|e| e.to_string())?;
            Box::pin(syslog::serve_udp(socket, options, events_tx, shutdown))
        }
        SyslogProtocol::Tcp => {
            let tls = input.tls.as_ref().map(syslog_tls).transpose()?;
            let listener = syslog::bind_tcp(input.listen).await.map_err(|e| e.to_string())?;
            Box::pin(syslog::serve_tcp(listener, options, tls, events_tx, shutdown))
        }
    };
    let tls = input.tls.is_some();
    tracing::info!(input = %input.name, listen = %input.listen, protocol = ?input.protocol, tls, "syslog receiver listening");
    let input_name: Arc<str> = Arc::from(input.name.as_str());
    let host_key: Arc<str> = Arc::from(host.as_str());
    Ok(async move {
        let name = input.name.clone();
        let server = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(input = %name, error = %e, "syslog receiver stopped");
            }
        });
        let mut batch = Vec::new();
        while let Some(first) = events.recv().await {
            // Whatever else already arrived goes along in the same batch.
            let mut next = Some(first);
            while let Some(mut event) = next.take() {
                let key = crate::event::get_path(&event.doc, "syslog.hostname").and_then(Value::as_str).map(Arc::from);
                event.set("host.name", Value::from(host.as_str()));
                event.set("input.type", Value::from("syslog"));
                event.set("input.name", Value::from(input.name.as_str()));
                let mut doc = event.doc;
                if processors.apply(&mut doc) {
                    let key = key.unwrap_or_else(|| host_key.clone());
                    batch.push(Envelope::from_doc(&doc, &input_name, &topic.topic(&doc), Some(key), None));
                }
                if batch.len() < SYSLOG_BATCH {
                    next = events.try_recv().ok();
                }
            }
            if tx.send_batch(std::mem::take(&mut batch)).await.is_err() {
                break;
            }
        }
        let _ = server.await;
    })
}

/// Reads standard input line by line until it closes (or `stop`), on the calling thread. Lines
/// cannot be read again, so they carry no acknowledgement.
pub fn read_stdin(
    input: &StdinInput,
    host: &str,
    tx: &EventSender,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    use std::io::BufRead;
    let processors = Processors::with_transforms(&input.processors, None, &input.transforms)?;
    let topic = TopicRoute::new(&input.topic)?;
    let max = input.max_line_bytes.0 as usize;
    let (input_name, host_key): (Arc<str>, Arc<str>) = (Arc::from(input.name.as_str()), Arc::from(host));
    let mut reader = std::io::stdin().lock();
    let mut line = Vec::new();
    let mut offset = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| format!("reading standard input: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        let start = offset;
        offset += n as u64;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let truncated = line.len() > max;
        line.truncate(max);
        let mut event = LogEvent::new(String::from_utf8_lossy(&line), std::time::SystemTime::now());
        event.set("host.name", Value::from(host));
        event.set("input.type", Value::from("stdin"));
        event.set("input.name", Value::from(input.name.as_str()));
        event.set("log.offset", Value::from(start));
        if truncated {
            event.set("log.flags", Value::Array(vec![Value::from("truncated")]));
        }
        let mut doc = event.doc;
        if processors.apply(&mut doc) {
            let envelope = Envelope::from_doc(&doc, &input_name, &topic.topic(&doc), Some(host_key.clone()), None);
            if tx.blocking_send_batch(vec![envelope]).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One scrape of every URL of `input` (for `--once`).
pub async fn prometheus_once(input: &PrometheusInput, host: &str) -> Result<Vec<Envelope>, String> {
    let scraper = scraper_for(input)?;
    let processors = Processors::with_transforms(&input.processors, None, &input.transforms)?;
    let topic = TopicRoute::new(&input.topic)?;
    let mut out = Vec::new();
    for url in &input.urls {
        let points = scraper.scrape(url).await.unwrap_or_else(|e| {
            tracing::warn!(input = %input.name, error = %e, "scrape failed");
            vec![e.status_point()]
        });
        out.extend(metric_envelopes(points, host, "prometheus", &input.name, &topic, &processors));
    }
    Ok(out)
}

/// The TLS side of a syslog-over-TLS receiver: its certificate, and the senders' CA.
fn syslog_tls(tls: &millrace_config::agent::SyslogTls) -> Result<tokio_rustls::TlsAcceptor, String> {
    use millrace_protocol::tls::{load_certs, load_key, load_roots, server_config, ClientCertificates};
    let clients = match tls.client_auth {
        millrace_config::ClientAuth::None => ClientCertificates::Ignored,
        millrace_config::ClientAuth::Requested => ClientCertificates::Requested,
        millrace_config::ClientAuth::Required => ClientCertificates::Required,
    };
    let roots = tls.ca_file.as_deref().map(load_roots).transpose().map_err(|e| e.to_string())?;
    let chain = load_certs(&tls.certificate_file).map_err(|e| e.to_string())?;
    let key = load_key(&tls.key_file).map_err(|e| e.to_string())?;
    let config = server_config(chain, &key, roots.map(std::sync::Arc::new), clients)
        .map_err(|e| format!("syslog TLS ({}): {e}", tls.certificate_file.display()))?;
    Ok(tokio_rustls::TlsAcceptor::from(config))
}
