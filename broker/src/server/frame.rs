//! Reads request frames off a connection. A frame's buffer grows from the broker's request
//! budget only as its bytes arrive — never from the length a client announces.

use super::limits::{BudgetBytes, RequestBudget};
use super::ConnectionError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};
/// Bytes read ahead per connection; frames that fit are parsed from here, larger ones are read
/// into a buffer of their own.
const READ_AHEAD: usize = 8 * 1024;
/// First allocation of a large frame's buffer; it then doubles, each time only once the bytes
/// already received fill it, so a client holds at most twice what it actually sent.
const FIRST_STEP: usize = 64 * 1024;

/// A request frame (without its length prefix) and the budget bytes its buffer holds.
pub(super) struct Frame {
    pub(super) bytes: Bytes,
    pub(super) budget: BudgetBytes,
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
pub(super) struct FrameReader<R> {
    stream: R,
    peer: SocketAddr,
    max_bytes: usize,
    /// Bytes read ahead and not yet part of a frame; at most [`READ_AHEAD`] (never shared, so
    /// its space is reused in place).
    ahead: BytesMut,
    partial: Option<PartialFrame>,
    budget: Arc<RequestBudget>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(super) fn new(stream: R, peer: SocketAddr, max_bytes: u64, budget: Arc<RequestBudget>) -> FrameReader<R> {
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
    pub(super) async fn next_frame(&mut self) -> Result<Option<Frame>, ConnectionError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ListenerMetrics;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    fn metrics() -> ListenerMetrics {
        ListenerMetrics::new().unwrap()
    }

    /// A connected pair: the reader over the server side, and the client side to write to.
    async fn connected(
        max_bytes: u64,
        budget: Arc<RequestBudget>,
    ) -> (FrameReader<tokio::net::tcp::OwnedReadHalf>, TcpStream) {
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
        let budget = Arc::new(RequestBudget::new(1 << 20, &metrics()));
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
        let budget = Arc::new(RequestBudget::new(1 << 30, &metrics()));
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
        let budget = Arc::new(RequestBudget::new(1000, &metrics()));
        let (mut reader, mut client) = connected(5000, budget.clone()).await;
        client.write_all(&2000u32.to_be_bytes()).await.unwrap();
        let err = reader.next_frame().await.err().unwrap().to_string();
        assert!(err.contains("queued_max_request_bytes"), "{err}");
        let (mut reader, mut client) = connected(500, budget).await;
        client.write_all(&600u32.to_be_bytes()).await.unwrap();
        let err = reader.next_frame().await.err().unwrap().to_string();
        assert!(err.contains("max_request_bytes"), "{err}");
        let (mut reader, mut client) = connected(500, Arc::new(RequestBudget::new(1000, &metrics()))).await;
        client.write_all(&4u32.to_be_bytes()).await.unwrap();
        assert!(reader.next_frame().await.is_err(), "frames shorter than a request header");
    }

    #[tokio::test]
    async fn a_used_up_budget_holds_reading_back_until_bytes_return() {
        let metrics = metrics();
        let budget = Arc::new(RequestBudget::new(100, &metrics));
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
        let waits = metrics.request_queue_wait.get_sample_count();
        assert_eq!(waits, 1, "the second frame's wait is the request queue time");
        assert!(metrics.request_queue_wait.get_sample_sum() >= 0.2);
    }
}
