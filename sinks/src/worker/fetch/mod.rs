//! The sink's own fetcher. librdkafka still runs the group (joins, assignments, heartbeats,
//! commits) but its fetching is paused: records are fetched here with millrace's Kafka client,
//! one task per leader broker, and handed to the consumer thread as whole Fetch record sets,
//! which it decodes in place. librdkafka's per-message path (a message object, its accessors
//! and a queue round per record, plus its fetcher thread) was half of a sink's CPU per record.
//!
//! - `state`: positions, leaders and assignment generations (no I/O).
//! - here: the manager task (metadata, `auto.offset.reset`, starting a task per leader) and the
//!   per-leader fetch loop.

pub mod state;

use crate::metrics::SinkMetrics;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use millrace_config::sink::{SourceSettings, StartFrom};
use millrace_protocol::client::Security;
use millrace_protocol::Connection;
use state::{Answer, Key, Leader, Partitions, Target};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// Fetch with topic names (v13 switched to topic ids).
const FETCH_VERSION: i16 = 12;
const METADATA_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 4;
/// Connecting, logging in and any request but a fetch.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed connection or request.
const BACKOFF: Duration = Duration::from_millis(200);
/// Before fetching again a partition whose answer was an error that repeats.
const RETRY: Duration = Duration::from_secs(1);
/// How old the leaders may get before the metadata is asked again without a reason.
const METADATA_MAX_AGE: Duration = Duration::from_secs(60);
/// The largest record batch a fetch answer is accepted with beyond its `max_bytes`.
const MAX_BATCH_BYTES: usize = 64 << 20;
/// Record sets fetched ahead of the consumer thread.
const CHUNKS_AHEAD: usize = 4;
/// The most a compressed batch may inflate to (the broker's own limit is 32× its
/// `message.max.bytes`).
pub const DECOMPRESSED_BATCH_CAP: usize = 64 << 20;

/// One partition's records from one Fetch answer.
pub struct Chunk {
    pub key: Key,
    /// The assignment they were fetched for (see [`FetchShared::current`]).
    pub generation: u64,
    /// Records below it were fetched only because their batch straddles it.
    pub fetch_offset: i64,
    /// Whole batches.
    pub records: Bytes,
}

/// How to fetch: from the sink's `[source]`, librdkafka's fetch properties included.
pub struct FetchSettings {
    sink: String,
    bootstrap: Vec<String>,
    security: Security,
    client_id: String,
    start_at: StartFrom,
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
}

impl FetchSettings {
    /// Settings for sink `sink`: librdkafka's defaults unless `[source.librdkafka]` sets
    /// `fetch.wait.max.ms`, `fetch.min.bytes`, `fetch.max.bytes` or `max.partition.fetch.bytes`.
    pub fn new(sink: &str, source: &SourceSettings) -> anyhow::Result<FetchSettings> {
        let number = |key: &str, default: i32| -> anyhow::Result<i32> {
            match source.librdkafka.get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| anyhow::anyhow!("source.librdkafka.\"{key}\" = {v:?} is not a count")),
            }
        };
        Ok(FetchSettings {
            sink: sink.to_string(),
            bootstrap: source.bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect(),
            security: Security::from_config(&source.security)?,
            client_id: format!("millrace-sink-{sink}"),
            start_at: source.start_at,
            max_wait_ms: number("fetch.wait.max.ms", 500)?,
            min_bytes: number("fetch.min.bytes", 1)?,
            max_bytes: number("fetch.max.bytes", 8 << 20)?.max(1),
            partition_max_bytes: number("max.partition.fetch.bytes", 1 << 20)?.max(1),
        })
    }

    async fn connect(&self, addr: &str) -> Result<Connection, millrace_protocol::ClientError> {
        let conn = Connection::connect_with(addr, REQUEST_TIMEOUT, &self.security).await?;
        // An answer is bounded by the request's max_bytes plus, at most, one batch past a
        // partition's limit (KIP-74); a batch is bounded by the topic's max.message.bytes.
        let max = (self.max_bytes as usize).saturating_add(MAX_BATCH_BYTES);
        Ok(conn.with_client_id(self.client_id.clone()).with_max_response(max))
    }
}

/// What the fetch tasks, the rebalance callbacks and the consumer thread share.
pub struct FetchShared {
    partitions: Mutex<Partitions>,
    wake_manager: Notify,
    wake_fetchers: watch::Sender<u64>,
    closed: AtomicBool,
}

impl Default for FetchShared {
    fn default() -> Self {
        FetchShared {
            partitions: Mutex::default(),
            wake_manager: Notify::new(),
            wake_fetchers: watch::Sender::new(0),
            closed: AtomicBool::new(false),
        }
    }
}

impl FetchShared {
    /// The bookkeeping stays consistent between calls, so a panic elsewhere must not stop it.
    pub fn partitions(&self) -> MutexGuard<'_, Partitions> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Something changed that the manager acts on (assignment, leaders, resets).
    pub fn wake(&self) {
        self.wake_manager.notify_one();
        self.wake_fetchers.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Whether `chunk` still belongs to the current assignment.
    pub fn current(&self, chunk: &Chunk) -> bool {
        self.partitions().current(&chunk.key, chunk.generation)
    }

    /// Stops the tasks.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// The consumer thread's end of the fetcher.
pub struct Chunks {
    receiver: mpsc::Receiver<Chunk>,
    runtime: tokio::runtime::Handle,
}

impl Chunks {
    /// The next chunk, waiting up to `wait` for one; `Err` once the fetcher is gone.
    pub fn next(&mut self, wait: Duration) -> Result<Option<Chunk>, ()> {
        match self.receiver.try_recv() {
            Ok(chunk) => Ok(Some(chunk)),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(()),
            Err(mpsc::error::TryRecvError::Empty) => {
                let receiver = &mut self.receiver;
                match self.runtime.block_on(async { tokio::time::timeout(wait, receiver.recv()).await }) {
                    Ok(Some(chunk)) => Ok(Some(chunk)),
                    Ok(None) => Err(()),
                    Err(_) => Ok(None),
                }
            }
        }
    }
}

/// Starts the manager task on the current runtime (the consumer thread waits on it too).
pub fn start(
    shared: Arc<FetchShared>,
    settings: FetchSettings,
    metrics: Arc<SinkMetrics>,
) -> (Chunks, tokio::task::JoinHandle<()>) {
    let (tx, receiver) = mpsc::channel(CHUNKS_AHEAD);
    let task = tokio::spawn(manage(shared, Arc::new(settings), tx, metrics));
    (Chunks { receiver, runtime: tokio::runtime::Handle::current() }, task)
}

/// Keeps the leaders known, finds reset positions and runs one fetch task per leader.
async fn manage(
    shared: Arc<FetchShared>,
    settings: Arc<FetchSettings>,
    chunks: mpsc::Sender<Chunk>,
    metrics: Arc<SinkMetrics>,
) {
    let mut fetchers: HashMap<i32, (String, tokio::task::JoinHandle<()>)> = HashMap::new();
    let mut brokers: HashMap<i32, String> = HashMap::new();
    let mut conn: Option<Connection> = None;
    let mut refreshed_at: Option<Instant> = None;
    let mut failures: u32 = 0;
    while !shared.closed() {
        let (wanted, empty) = {
            let p = shared.partitions();
            (p.metadata_wanted, p.is_empty())
        };
        let mut trouble = false;
        if !empty && (wanted || refreshed_at.is_none_or(|at| at.elapsed() >= METADATA_MAX_AGE)) {
            match refresh_metadata(&shared, &settings, &mut conn, &mut brokers).await {
                Ok(problems) => {
                    refreshed_at = Some(Instant::now());
                    trouble |= !problems.is_empty();
                    if !problems.is_empty() && failures.is_multiple_of(10) {
                        tracing::warn!(sink = %settings.sink, problems = %problems.join("; "), "partitions without a leader to fetch from; retrying");
                    }
                }
                Err(e) => {
                    conn = None;
                    trouble = true;
                    if failures.is_multiple_of(10) {
                        tracing::warn!(sink = %settings.sink, error = %e, "cannot read the cluster's metadata; retrying");
                    }
                }
            }
        }
        trouble |= !reset_positions(&shared, &settings, &brokers).await;
        let leaders = shared.partitions().leaders();
        for id in leaders {
            let Some(addr) = brokers.get(&id) else { continue };
            let running = fetchers.get(&id).is_some_and(|(a, task)| a == addr && !task.is_finished());
            if !running {
                if let Some((_, old)) = fetchers.remove(&id) {
                    old.abort();
                }
                let task = tokio::spawn(fetch_from(
                    id,
                    addr.clone(),
                    shared.clone(),
                    settings.clone(),
                    chunks.clone(),
                    metrics.clone(),
                ));
                fetchers.insert(id, (addr.clone(), task));
            }
        }
        shared.wake_fetchers.send_modify(|v| *v = v.wrapping_add(1));
        failures = if trouble { failures.saturating_add(1) } else { 0 };
        // Trouble retries soon, backing off to a second; otherwise only the age of the leaders.
        let delay = if trouble { BACKOFF * failures.min(5) } else { METADATA_MAX_AGE };
        tokio::select! {
            _ = shared.wake_manager.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
    for (_, (_, task)) in fetchers {
        task.abort();
    }
}

/// Asks any broker who leads the assigned partitions; what keeps some without a leader.
async fn refresh_metadata(
    shared: &FetchShared,
    settings: &FetchSettings,
    conn: &mut Option<Connection>,
    brokers: &mut HashMap<i32, String>,
) -> anyhow::Result<Vec<String>> {
    let topics = shared.partitions().topics();
    if conn.is_none() {
        // Known brokers first: the bootstrap list may name one that is gone for good.
        let mut last = None;
        for addr in brokers.values().chain(settings.bootstrap.iter()) {
            match settings.connect(addr).await {
                Ok(c) => {
                    *conn = Some(c);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if conn.is_none() {
            return Err(last.map_or_else(|| anyhow::anyhow!("no broker to ask"), anyhow::Error::from));
        }
    }
    let Some(connection) = conn.as_mut() else { return Ok(vec!["no connection".into()]) };
    let request = MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|t| {
                    MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
                })
                .collect(),
        ))
        .with_allow_auto_topic_creation(false);
    let response = connection.request(METADATA_VERSION, &request, REQUEST_TIMEOUT).await?;
    brokers.clear();
    for b in &response.brokers {
        brokers.insert(b.node_id.0, format!("{}:{}", b.host, b.port));
    }
    let mut leaders: HashMap<(&str, i32), Leader> = HashMap::new();
    let mut problems = Vec::new();
    let error = |code: i16| ResponseError::try_from_code(code).map_or(format!("error {code}"), |e| e.to_string());
    for topic in &response.topics {
        let Some(name) = topic.name.as_ref() else { continue };
        if topic.error_code != 0 {
            problems.push(format!("topic {}: {}", name.0, error(topic.error_code)));
        }
        for p in &topic.partitions {
            if p.error_code == 0 && p.leader_id.0 >= 0 && brokers.contains_key(&p.leader_id.0) {
                let leader = Leader { id: p.leader_id.0, epoch: p.leader_epoch, topic_id: topic.topic_id.as_u128() };
                leaders.insert((name.0.as_str(), p.partition_index), leader);
            }
        }
    }
    if !shared.partitions().set_leaders(|(topic, index)| leaders.get(&(&**topic, *index)).copied())
        && problems.is_empty()
    {
        problems.push("a partition has no leader yet".into());
    }
    Ok(problems)
}

/// Finds the start of partitions without a position, as `auto.offset.reset` says; false if
/// some could not be found (yet).
async fn reset_positions(shared: &FetchShared, settings: &FetchSettings, brokers: &HashMap<i32, String>) -> bool {
    let wanted = shared.partitions().needing_reset();
    let mut all = true;
    for (key, generation, leader) in wanted {
        match list_offset(settings, brokers.get(&leader.id), &key, leader.epoch).await {
            Ok(offset) => {
                tracing::info!(sink = %settings.sink, topic = %key.0, partition = key.1, offset, start_at = ?settings.start_at, "no usable committed offset: starting where `start_at` says");
                shared.partitions().reset_to(&key, generation, offset);
            }
            Err(e) => {
                all = false;
                tracing::debug!(sink = %settings.sink, topic = %key.0, partition = key.1, error = %e, "finding the start offset failed");
                shared.partitions().leader_unreachable(leader.id);
            }
        }
    }
    all
}

/// The offset `start_at` names, asked of the leader of `leader_epoch` (a former leader refuses).
async fn list_offset(
    settings: &FetchSettings,
    addr: Option<&String>,
    key: &Key,
    leader_epoch: i32,
) -> anyhow::Result<i64> {
    let addr = addr.ok_or_else(|| anyhow::anyhow!("leader unknown"))?;
    let timestamp = match settings.start_at {
        StartFrom::Earliest => -2,
        StartFrom::Latest => -1,
    };
    let request =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(key.0.to_string())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(key.1)
                .with_current_leader_epoch(leader_epoch)
                .with_timestamp(timestamp)])]);
    let mut conn = settings.connect(addr).await?;
    let response = conn.request(LIST_OFFSETS_VERSION, &request, REQUEST_TIMEOUT).await?;
    let answer = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == key.1)
        .ok_or_else(|| anyhow::anyhow!("the answer left the partition out"))?;
    if answer.error_code != 0 {
        anyhow::bail!("ListOffsets error {}", answer.error_code);
    }
    Ok(answer.offset)
}

/// Fetches every assigned partition broker `leader` leads, until the manager replaces the task.
async fn fetch_from(
    leader: i32,
    addr: String,
    shared: Arc<FetchShared>,
    settings: Arc<FetchSettings>,
    chunks: mpsc::Sender<Chunk>,
    metrics: Arc<SinkMetrics>,
) {
    let mut wake = shared.wake_fetchers.subscribe();
    let mut conn: Option<Connection> = None;
    let timeout = Duration::from_millis(settings.max_wait_ms as u64) + REQUEST_TIMEOUT;
    let lag = |key: &Key, lag: i64| {
        metrics.lag.with_label_values(&[settings.sink.as_str(), &key.0, &key.1.to_string()]).set(lag);
    };
    while !shared.closed() {
        let now = Instant::now();
        let (targets, retry) = {
            let p = shared.partitions();
            (p.targets(leader, now), p.next_retry(leader))
        };
        if targets.is_empty() {
            let idle = retry.map_or(METADATA_MAX_AGE, |at| at.saturating_duration_since(now));
            tokio::select! {
                changed = wake.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(idle) => {}
            }
            continue;
        }
        if conn.is_none() {
            match settings.connect(&addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(sink = %settings.sink, leader, error = %e, "cannot connect to the leader");
                    unreachable(&shared, leader).await;
                    continue;
                }
            }
        }
        let Some(connection) = conn.as_mut() else { continue };
        let response = match connection.request(FETCH_VERSION, &fetch_request(&settings, &targets), timeout).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(sink = %settings.sink, leader, error = %e, "fetch failed");
                conn = None;
                unreachable(&shared, leader).await;
                continue;
            }
        };
        let retry_at = Instant::now() + RETRY;
        let mut answered = 0;
        for topic in response.responses {
            for data in topic.partitions {
                let index = data.partition_index;
                let Some(target) = targets.iter().find(|t| *t.key.0 == *topic.topic.0 && t.key.1 == index) else {
                    continue;
                };
                answered += 1;
                let (answer, records) = classify(&settings.sink, target, data);
                // The queue slot first: a chunk is accepted and queued under one lock, so chunks
                // of a partition reach the consumer thread in offset order even when two tasks
                // answer for it around a leader change.
                let permit = if records.is_empty() {
                    None
                } else {
                    match chunks.reserve().await {
                        Ok(permit) => Some(permit),
                        Err(_) => return,
                    }
                };
                let mut p = shared.partitions();
                let (take, partition_lag) = p.answered(target, answer, retry_at);
                if let Some(l) = partition_lag {
                    lag(&target.key, l);
                }
                if let (true, Some(permit)) = (take, permit) {
                    permit.send(Chunk {
                        key: target.key.clone(),
                        generation: target.generation,
                        fetch_offset: target.offset,
                        records,
                    });
                }
            }
        }
        if shared.partitions().metadata_wanted {
            shared.wake_manager.notify_one();
        }
        if answered == 0 {
            // An answer about none of the partitions asked for must not become a busy loop.
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

/// The leader cannot be reached: the manager asks the metadata again; wait a little.
async fn unreachable(shared: &FetchShared, leader: i32) {
    shared.partitions().leader_unreachable(leader);
    shared.wake_manager.notify_one();
    tokio::time::sleep(BACKOFF).await;
}

fn fetch_request(settings: &FetchSettings, targets: &[Target]) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for target in targets {
        let partition = FetchPartition::default()
            .with_partition(target.key.1)
            .with_current_leader_epoch(target.leader_epoch)
            .with_fetch_offset(target.offset)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(settings.partition_max_bytes);
        // Targets come sorted by topic.
        match topics.last_mut().filter(|t| *t.topic.0 == *target.key.0) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(target.key.0.to_string())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(settings.max_wait_ms)
        .with_min_bytes(settings.min_bytes)
        .with_max_bytes(settings.max_bytes)
        // READ_COMMITTED, librdkafka's default.
        .with_isolation_level(1)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// What one partition's answer means, and its whole batches.
fn classify(sink: &str, target: &Target, data: PartitionData) -> (Answer, Bytes) {
    match ResponseError::try_from_code(data.error_code) {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => {
            tracing::warn!(sink, topic = %target.key.0, partition = target.key.1, offset = target.offset, "offset out of range (records deleted?): starting again where `start_at` says");
            return (Answer::OutOfRange, Bytes::new());
        }
        Some(ResponseError::FencedLeaderEpoch) => return (Answer::Fenced, Bytes::new()),
        Some(
            ResponseError::NotLeaderOrFollower
            | ResponseError::LeaderNotAvailable
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::UnknownLeaderEpoch
            | ResponseError::KafkaStorageError
            | ResponseError::ReplicaNotAvailable,
        ) => return (Answer::LeaderMoved, Bytes::new()),
        Some(e) => {
            tracing::warn!(sink, topic = %target.key.0, partition = target.key.1, error = ?e, "fetch refused; retrying");
            return (Answer::Failed, Bytes::new());
        }
    }
    let records = data.records.unwrap_or_default();
    let (mut next, mut whole) = (target.offset, 0usize);
    for batch in millrace_protocol::records::batches(&records) {
        match batch {
            Ok(batch) => {
                next = batch.next_offset();
                whole += batch.encoded_len();
            }
            Err(e) => {
                if whole == 0 {
                    // Skipping it would lose records, and it would come back the same at once.
                    tracing::error!(sink, topic = %target.key.0, partition = target.key.1, offset = target.offset, error = %e, "the leader's records cannot be read; retrying");
                    return (Answer::Failed, Bytes::new());
                }
                break;
            }
        }
    }
    (Answer::Data { next, high_watermark: data.high_watermark }, records.slice(..whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_by_their_error() {
        let target = Target { key: (Arc::from("logs"), 0), generation: 1, offset: 5, leader_epoch: 2 };
        let answer = |code: i16| classify("s", &target, PartitionData::default().with_error_code(code)).0;
        let code = |e: ResponseError| e.code();
        assert_eq!(answer(code(ResponseError::FencedLeaderEpoch)), Answer::Fenced);
        assert_eq!(answer(code(ResponseError::NotLeaderOrFollower)), Answer::LeaderMoved);
        assert_eq!(answer(code(ResponseError::UnknownLeaderEpoch)), Answer::LeaderMoved);
        assert_eq!(answer(code(ResponseError::OffsetOutOfRange)), Answer::OutOfRange);
        assert_eq!(answer(code(ResponseError::TopicAuthorizationFailed)), Answer::Failed);
        assert_eq!(answer(0), Answer::Data { next: 5, high_watermark: 0 }, "no records: the position stays");
    }
}
