//! The Kafka protocol listener: one task per connection; requests are read ahead (pipelined),
//! started in arrival order and answered in that order.
//!
//! Limits (`[server]`): open connections in total and per client address (more are accepted and
//! closed at once, as Kafka does), an idle timeout, and a broker-wide memory budget for request
//! bytes. A request's buffer grows from that budget only as its bytes arrive — never from the
//! length a client announces — and its bytes return to the budget once its response is written.
//! [`ConnectionLimiter`] is shared with the controller and admin listeners.

use crate::api::{Connection, Pending, Router};
use crate::metrics::ListenerMetrics;
use crate::Broker;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::stream::{FuturesOrdered, StreamExt};
use prometheus::IntGauge;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Bytes read ahead per connection; frames that fit are parsed from here, larger ones are read
/// into a buffer of their own.
const READ_AHEAD: usize = 8 * 1024;
/// First allocation of a large frame's buffer; it then doubles, each time only once the bytes
/// already received fill it, so a client holds at most twice what it actually sent.
const FIRST_STEP: usize = 64 * 1024;
/// At most one refusal warning per listener in this interval; the rest are counted.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let server = &broker.config.server;
    let limiter = Arc::new(ConnectionLimiter::new(
        "kafka",
        server.max_connections,
        server.max_connections_per_ip,
        broker.metrics.listeners.clone(),
    ));
    let budget = Arc::new(RequestBudget::new(
        usize::try_from(server.queued_max_request_bytes.0).unwrap_or(usize::MAX),
        broker.metrics.listeners.queued_request_bytes.clone(),
    ));
    let router = Arc::new(Router::<Broker>::new());
    let mut next_connection_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = limiter.admit(peer) else {
                        drop(stream);
                        continue;
                    };
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    let budget = budget.clone();
                    let router = router.clone();
                    next_connection_id += 1;
                    let connection = Connection::plaintext(next_connection_id, peer);
                    tokio::spawn(async move {
                        broker.metrics.connections.inc();
                        if let Err(e) = handle_connection(stream, connection, broker.clone(), router, budget, shutdown).await {
                            tracing::debug!(%peer, error = %e, "connection closed");
                        }
                        broker.metrics.connections.dec();
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Counts the open connections of one listener, in total and per client address, and refuses
/// those over the limits (counted, with a rate-limited warning).
pub(crate) struct ConnectionLimiter {
    listener: &'static str,
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<OpenConnections>,
    metrics: ListenerMetrics,
    refusal_log: RateLimitedLog,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub(crate) struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub(crate) fn new(
        listener: &'static str,
        max_total: usize,
        max_per_ip: usize,
        metrics: ListenerMetrics,
    ) -> ConnectionLimiter {
        ConnectionLimiter {
            listener,
            max_total,
            max_per_ip,
            open: Mutex::new(OpenConnections::default()),
            metrics,
            refusal_log: RateLimitedLog::new(REFUSAL_LOG_INTERVAL),
        }
    }

    /// A place for a connection from `peer`, or None (counted and logged) when a limit is reached.
    pub(crate) fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<ConnectionSlot> {
        let ip = peer.ip().to_canonical();
        let refused = {
            let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
            if open.total >= self.max_total {
                Some("max_connections")
            } else if from_ip >= self.max_per_ip {
                Some("max_connections_per_ip")
            } else {
                open.total += 1;
                open.per_ip.insert(ip, from_ip + 1);
                None
            }
        };
        match refused {
            None => Some(ConnectionSlot { limiter: self.clone(), ip }),
            Some(reason) => {
                let limit = if reason == "max_connections" { self.max_total } else { self.max_per_ip };
                self.refuse(peer, reason, &format!("{reason} ({limit}) reached"));
                None
            }
        }
    }

    /// Counts a refused connection and logs it, at most once per interval per listener.
    pub(crate) fn refuse(&self, peer: SocketAddr, reason: &'static str, why: &str) {
        self.metrics.refused.with_label_values(&[self.listener, reason]).inc();
        if let Some(suppressed) = self.refusal_log.should_log() {
            tracing::warn!(
                listener = self.listener,
                %peer,
                suppressed,
                "closing a new connection: {why} (further refusals in the next {REFUSAL_LOG_INTERVAL:?} are only counted in connections_refused_total)"
            );
        }
    }

    /// Counts a connection the broker closes after admitting it.
    pub(crate) fn closed(&self, reason: &'static str) {
        self.metrics.closed.with_label_values(&[self.listener, reason]).inc();
    }

    /// Open connections (total, from `ip`).
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (open.total, open.per_ip.get(&ip).copied().unwrap_or(0))
    }
}

impl ConnectionSlot {
    /// The listener's limiter, to count how the connection ends.
    pub(crate) fn limiter(&self) -> &ConnectionLimiter {
        &self.limiter
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Lets one message through per interval and counts the ones it holds back.
pub(crate) struct RateLimitedLog {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    pub(crate) fn new(interval: Duration) -> RateLimitedLog {
        RateLimitedLog { interval, state: Mutex::new((None, 0)) }
    }

    /// Some(messages held back since the last one) when this one may be logged.
    pub(crate) fn should_log(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = state.1;
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

/// The broker-wide memory budget for request bytes (`server.queued_max_request_bytes`).
pub(crate) struct RequestBudget {
    semaphore: Arc<Semaphore>,
    total: usize,
    in_use: IntGauge,
}

/// Bytes taken from the budget; they return when this is dropped.
pub(crate) struct BudgetBytes {
    permit: Option<OwnedSemaphorePermit>,
    in_use: IntGauge,
}

impl RequestBudget {
    pub(crate) fn new(total: usize, in_use: IntGauge) -> RequestBudget {
        // tokio's semaphore holds at most usize::MAX >> 3 permits.
        let total = total.min(Semaphore::MAX_PERMITS);
        RequestBudget { semaphore: Arc::new(Semaphore::new(total)), total, in_use }
    }

    fn empty(&self) -> BudgetBytes {
        BudgetBytes { permit: None, in_use: self.in_use.clone() }
    }

    /// Adds `bytes` to `held`, waiting while the budget is used up. Cancel-safe: nothing is
    /// taken unless it completes.
    async fn grow(&self, held: &mut BudgetBytes, bytes: usize) {
        let mut left = bytes;
        while left > 0 {
            // Acquisitions are counted in u32; large steps are taken in pieces.
            let step = left.min(u32::MAX as usize);
            let Ok(permit) = self.semaphore.clone().acquire_many_owned(step as u32).await else {
                // The semaphore is never closed.
                return;
            };
            held.in_use.add(step as i64);
            match &mut held.permit {
                Some(existing) => existing.merge(permit),
                None => held.permit = Some(permit),
            }
            left -= step;
        }
    }
}

impl BudgetBytes {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

impl Drop for BudgetBytes {
    fn drop(&mut self) {
        self.in_use.sub(self.bytes() as i64);
    }
}

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Socket error.
    #[error("i/o with {peer}: {source}")]
    Io {
        /// The client.
        peer: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The client sent something that cannot be answered; Kafka closes the connection then too.
    #[error("protocol error from {peer}: {message}")]
    Protocol {
        /// The client.
        peer: SocketAddr,
        /// What was wrong.
        message: String,
    },
}

/// A request frame (without its length prefix) and the budget bytes its buffer holds.
struct Frame {
    bytes: Bytes,
    budget: BudgetBytes,
}

/// A frame larger than what was read ahead, being received into its own buffer.
struct PartialFrame {
    len: usize,
    body: Vec<u8>,
    /// Covers `body`'s capacity.
    budget: BudgetBytes,
}

/// Reads length-prefixed request frames. All state lives in the struct and every await is
/// cancel-safe, so `next_frame` can sit in a `select!` next to response writing without losing a
/// partially read frame when the other branch wins.
struct FrameReader {
    stream: tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    max_bytes: usize,
    /// Bytes read ahead and not yet part of a frame; at most [`READ_AHEAD`] (never shared, so
    /// its space is reused in place).
    ahead: BytesMut,
    partial: Option<PartialFrame>,
    budget: Arc<RequestBudget>,
}

impl FrameReader {
    fn new(
        stream: tokio::net::tcp::OwnedReadHalf,
        peer: SocketAddr,
        max_bytes: u64,
        budget: Arc<RequestBudget>,
    ) -> FrameReader {
        FrameReader {
            stream,
            peer,
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            ahead: BytesMut::with_capacity(READ_AHEAD),
            partial: None,
            budget,
        }
    }

    /// The announced length of the frame at the start of `ahead` (which holds at least 4 bytes),
    /// checked against the limits before anything is allocated for it.
    fn announced_len(&self) -> Result<usize, ConnectionError> {
        let len = i32::from_be_bytes([self.ahead[0], self.ahead[1], self.ahead[2], self.ahead[3]]);
        let message = if len < 8 || len as u64 > self.max_bytes as u64 {
            format!(
                "request frame of {len} bytes is outside 8..={} (server.max_request_bytes); closing connection",
                self.max_bytes
            )
        } else if len as usize > self.budget.total {
            format!(
                "request frame of {len} bytes is larger than the whole request memory budget of {} bytes \
                 (server.queued_max_request_bytes); closing connection",
                self.budget.total
            )
        } else {
            return Ok(len as usize);
        };
        Err(ConnectionError::Protocol { peer: self.peer, message })
    }

    /// The next frame, or None when the client closed the connection between frames.
    async fn next_frame(&mut self) -> Result<Option<Frame>, ConnectionError> {
        let peer = self.peer;
        let io = |source| ConnectionError::Io { peer, source };
        loop {
            let Some(partial) = &mut self.partial else {
                if self.ahead.len() >= 4 {
                    let len = self.announced_len()?;
                    if self.ahead.len() >= 4 + len {
                        let mut budget = self.budget.empty();
                        self.budget.grow(&mut budget, len).await;
                        // Copied out so that `ahead` is never shared and keeps its small size.
                        let bytes = Bytes::copy_from_slice(&self.ahead[4..4 + len]);
                        self.ahead.advance(4 + len);
                        return Ok(Some(Frame { bytes, budget }));
                    }
                    self.ahead.advance(4);
                    self.partial = Some(PartialFrame { len, body: Vec::new(), budget: self.budget.empty() });
                    continue;
                }
                // Fewer than 4 bytes are buffered, so this reuses `ahead`'s space in place.
                self.ahead.reserve(READ_AHEAD - self.ahead.len());
                let spare = READ_AHEAD - self.ahead.len();
                let read = self.stream.read_buf(&mut (&mut self.ahead).limit(spare)).await.map_err(io)?;
                if read == 0 {
                    if self.ahead.is_empty() {
                        return Ok(None);
                    }
                    return Err(ConnectionError::Protocol {
                        peer,
                        message: format!("connection closed inside a frame header ({} bytes)", self.ahead.len()),
                    });
                }
                continue;
            };
            let remaining = partial.len - partial.body.len();
            if remaining == 0 {
                let Some(done) = self.partial.take() else { continue };
                return Ok(Some(Frame { bytes: Bytes::from(done.body), budget: done.budget }));
            }
            if partial.body.len() == partial.body.capacity() {
                // Full: grow only now that the client has sent that much.
                let capacity = partial.body.capacity();
                let target = partial.len.min((capacity * 2).max(FIRST_STEP));
                self.budget.grow(&mut partial.budget, target - capacity).await;
                partial.body.reserve_exact(target - partial.body.len());
                continue;
            }
            let spare = (partial.body.capacity() - partial.body.len()).min(remaining);
            if !self.ahead.is_empty() {
                let n = self.ahead.len().min(spare);
                partial.body.extend_from_slice(&self.ahead[..n]);
                self.ahead.advance(n);
                continue;
            }
            // Straight into the frame's buffer, never past its end.
            let read = self.stream.read_buf(&mut (&mut partial.body).limit(spare)).await.map_err(io)?;
            if read == 0 {
                return Err(ConnectionError::Protocol {
                    peer,
                    message: format!(
                        "connection closed in the middle of a frame ({} of {} bytes received)",
                        partial.body.len(),
                        partial.len
                    ),
                });
            }
        }
    }
}

async fn handle_connection(
    stream: TcpStream,
    connection: Connection,
    broker: Arc<Broker>,
    router: Arc<Router<Broker>>,
    budget: Arc<RequestBudget>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    // Small responses go out immediately; large ones are written by the buffered writer in bulk.
    let _ = stream.set_nodelay(true);
    let peer = connection.peer;
    let (reader, writer) = stream.into_split();
    let mut writer = BufWriter::with_capacity(32 * 1024, writer);
    let mut reader = FrameReader::new(reader, peer, broker.config.server.max_request_bytes.0, budget);
    let max_inflight = broker.config.server.max_inflight_requests_per_connection;
    let max_idle = broker.config.server.connections_max_idle.as_duration();
    let mut inflight: FuturesOrdered<Pending> = FuturesOrdered::new();
    // The budget bytes of each in-flight request, in the same order; freed once its response is written.
    let mut held: VecDeque<BudgetBytes> = VecDeque::new();
    let mut last_request = tokio::time::Instant::now();
    let mut reading = true;
    loop {
        tokio::select! {
            // Responses complete in request order; write each as soon as it is ready.
            Some(response) = inflight.next(), if !inflight.is_empty() => {
                if let Some(frame) = response {
                    writer.write_all(&frame).await.map_err(|source| ConnectionError::Io { peer, source })?;
                }
                writer.flush().await.map_err(|source| ConnectionError::Io { peer, source })?;
                held.pop_front();
                last_request = tokio::time::Instant::now();
                if !reading && inflight.is_empty() {
                    return Ok(());
                }
            }
            frame = reader.next_frame(), if reading && inflight.len() < max_inflight => {
                match frame {
                    Ok(Some(Frame { bytes, budget })) => {
                        last_request = tokio::time::Instant::now();
                        match router.dispatch(&broker, bytes, &connection).await {
                            Ok(pending) => {
                                inflight.push_back(pending);
                                held.push_back(budget);
                            }
                            Err(refused) => {
                                let message = refused.to_string();
                                // Answer what came before, then close: the stream cannot be trusted any more.
                                tracing::warn!(%peer, "{message}");
                                reading = false;
                                broker.metrics.protocol_errors.inc();
                                if inflight.is_empty() {
                                    return Err(ConnectionError::Protocol { peer, message });
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        reading = false;
                        if inflight.is_empty() {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        if matches!(e, ConnectionError::Protocol { .. }) {
                            tracing::warn!("{e}");
                            broker.metrics.protocol_errors.inc();
                        }
                        return Err(e);
                    }
                }
            }
            // A partly received frame does not count as a request: a client trickling bytes is
            // closed too.
            _ = tokio::time::sleep_until(last_request + max_idle), if inflight.is_empty() => {
                broker.metrics.listeners.closed.with_label_values(&["kafka", "idle"]).inc();
                tracing::debug!(%peer, idle = ?max_idle, "closing an idle connection (server.connections_max_idle)");
                return Ok(());
            }
            _ = shutdown.changed(), if reading => {
                reading = false;
                if inflight.is_empty() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> ListenerMetrics {
        ListenerMetrics::new().unwrap()
    }

    fn addr(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    #[test]
    fn limiter_counts_in_total_and_per_address() {
        let limiter = Arc::new(ConnectionLimiter::new("test", 3, 2, metrics()));
        let a1 = limiter.admit(addr("10.0.0.1", 1)).unwrap();
        let _a2 = limiter.admit(addr("10.0.0.1", 2)).unwrap();
        assert!(limiter.admit(addr("10.0.0.1", 3)).is_none(), "third from one address");
        // An IPv4-mapped IPv6 peer is the same address.
        assert!(limiter.admit(addr("::ffff:10.0.0.1", 4)).is_none());
        let _b1 = limiter.admit(addr("10.0.0.2", 1)).unwrap();
        assert!(limiter.admit(addr("10.0.0.3", 1)).is_none(), "over the total");
        drop(a1);
        assert_eq!(limiter.open("10.0.0.1".parse().unwrap()), (2, 1));
        let _c1 = limiter.admit(addr("10.0.0.3", 1)).unwrap();
        let refused = &limiter.metrics.refused;
        assert_eq!(refused.with_label_values(&["test", "max_connections_per_ip"]).get(), 2);
        assert_eq!(refused.with_label_values(&["test", "max_connections"]).get(), 1);
    }

    #[test]
    fn rate_limited_log_counts_what_it_holds_back() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.should_log(), Some(0));
        assert_eq!(log.should_log(), None);
        assert_eq!(log.should_log(), None);
        let log = RateLimitedLog { interval: Duration::ZERO, state: Mutex::new((Some(Instant::now()), 2)) };
        assert_eq!(log.should_log(), Some(2));
    }

    /// A connected pair: the reader over the server side, and the client side to write to.
    async fn connected(max_bytes: u64, budget: Arc<RequestBudget>) -> (FrameReader, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let (read, _write) = server.into_split();
        (FrameReader::new(read, peer, max_bytes, budget), client)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn pipelined_frames_small_and_large_come_out_whole() {
        let budget = Arc::new(RequestBudget::new(1 << 20, metrics().queued_request_bytes));
        let (mut reader, mut client) = connected(1 << 20, budget.clone()).await;
        let large: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut bytes = frame(b"12345678");
        bytes.extend(frame(&large));
        bytes.extend(frame(b"abcdefghij"));
        let writer = tokio::spawn(async move {
            client.write_all(&bytes).await.unwrap();
            client
        });
        let first = reader.next_frame().await.unwrap().unwrap();
        assert_eq!(&first.bytes[..], b"12345678");
        assert_eq!(first.budget.bytes(), 8);
        let second = reader.next_frame().await.unwrap().unwrap();
        assert_eq!(second.bytes.len(), large.len());
        assert!(second.bytes[..] == large[..]);
        // Doubling from 64 KiB, capped at the frame's length.
        assert_eq!(second.budget.bytes(), large.len());
        let third = reader.next_frame().await.unwrap().unwrap();
        assert_eq!(&third.bytes[..], b"abcdefghij");
        assert_eq!(budget.semaphore.available_permits(), (1 << 20) - 8 - large.len() - 10);
        drop((first, second, third));
        assert_eq!(budget.semaphore.available_permits(), 1 << 20);
        assert_eq!(budget.in_use.get(), 0);
        drop(writer.await.unwrap());
        assert!(reader.next_frame().await.unwrap().is_none(), "clean end between frames");
    }

    #[tokio::test]
    async fn an_announced_length_reserves_nothing_until_bytes_arrive() {
        let budget = Arc::new(RequestBudget::new(1 << 30, metrics().queued_request_bytes));
        let (mut reader, mut client) = connected(100 << 20, budget.clone()).await;
        let mut bytes = (100u32 << 20).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[7u8; 100]);
        client.write_all(&bytes).await.unwrap();
        let pending = tokio::time::timeout(Duration::from_millis(200), reader.next_frame()).await;
        assert!(pending.is_err(), "the frame is not complete");
        let partial = reader.partial.as_ref().unwrap();
        assert_eq!(partial.body.len(), 100);
        assert!(partial.body.capacity() <= FIRST_STEP, "capacity {}", partial.body.capacity());
        assert_eq!(budget.in_use.get() as usize, partial.body.capacity());
        // Closing mid-frame is an error and returns the bytes to the budget.
        drop(client);
        assert!(matches!(reader.next_frame().await, Err(ConnectionError::Protocol { .. })));
        drop(reader);
        assert_eq!(budget.in_use.get(), 0);
    }

    #[tokio::test]
    async fn frames_over_either_limit_are_refused_before_reading_them() {
        let budget = Arc::new(RequestBudget::new(1000, metrics().queued_request_bytes));
        let (mut reader, mut client) = connected(5000, budget.clone()).await;
        client.write_all(&2000u32.to_be_bytes()).await.unwrap();
        let err = reader.next_frame().await.err().unwrap().to_string();
        assert!(err.contains("queued_max_request_bytes"), "{err}");
        let (mut reader, mut client) = connected(500, budget).await;
        client.write_all(&600u32.to_be_bytes()).await.unwrap();
        let err = reader.next_frame().await.err().unwrap().to_string();
        assert!(err.contains("max_request_bytes"), "{err}");
        let (mut reader, mut client) =
            connected(500, Arc::new(RequestBudget::new(1000, metrics().queued_request_bytes))).await;
        client.write_all(&4u32.to_be_bytes()).await.unwrap();
        assert!(reader.next_frame().await.is_err(), "frames shorter than a request header");
    }

    #[tokio::test]
    async fn a_used_up_budget_holds_reading_back_until_bytes_return() {
        let budget = Arc::new(RequestBudget::new(100, metrics().queued_request_bytes));
        let (mut reader, mut client) = connected(100, budget.clone()).await;
        let mut bytes = frame(&[1u8; 60]);
        bytes.extend(frame(&[2u8; 60]));
        client.write_all(&bytes).await.unwrap();
        let first = reader.next_frame().await.unwrap().unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(200), reader.next_frame()).await;
        assert!(waiting.is_err(), "60 + 60 bytes exceed the budget of 100");
        drop(first);
        let second = reader.next_frame().await.unwrap().unwrap();
        assert_eq!(&second.bytes[..], &[2u8; 60][..]);
    }
}
