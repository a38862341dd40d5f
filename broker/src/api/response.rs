//! Response frames that share large record sets instead of copying them.
//!
//! A Fetch response is mostly record batches read from the log into a [`Bytes`]. Encoding it
//! into one contiguous buffer would copy every fetched byte once more; [`ChunkedBuf`] instead
//! keeps each `bytes` field of at least [`SHARE_AT`] bytes as a piece of its own (through the
//! vendored kafka-protocol's `ByteBufMut::put_shared_bytes`), and the connection writes the
//! pieces of a [`ResponseFrame`] with vectored I/O. The bytes on the wire are the same.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use millrace_protocol::message::{self, MessageError};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::Range;

/// A `bytes` field this long or longer is sent by reference; shorter ones are cheaper to copy
/// than to give an I/O vector entry of their own.
pub const SHARE_AT: usize = 4096;

/// One complete response frame (length prefix included), in pieces to be written in order.
/// The first piece is held apart so that a one-piece frame (every response but a large Fetch)
/// costs no allocation for the list.
#[derive(Debug, Default)]
pub struct ResponseFrame {
    /// The piece being written; empty only when the frame is.
    first: Bytes,
    rest: VecDeque<Bytes>,
    remaining: usize,
}

impl ResponseFrame {
    fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        self.remaining += piece.len();
        if self.first.is_empty() {
            self.first = piece;
        } else {
            self.rest.push_back(piece);
        }
    }

    fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.first).filter(|b| !b.is_empty()).chain(&self.rest)
    }

    /// Number of pieces left to write.
    pub fn piece_count(&self) -> usize {
        self.pieces().count()
    }

    /// The whole frame as one buffer (a copy if it has several pieces).
    pub fn to_bytes(&self) -> Bytes {
        if self.rest.is_empty() {
            return self.first.clone();
        }
        let mut all = BytesMut::with_capacity(self.remaining);
        for piece in self.pieces() {
            all.extend_from_slice(piece);
        }
        all.freeze()
    }
}

impl From<Bytes> for ResponseFrame {
    fn from(frame: Bytes) -> Self {
        let mut out = ResponseFrame::default();
        out.push(frame);
        out
    }
}

impl Buf for ResponseFrame {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        &self.first
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, piece) in dst.iter_mut().zip(self.pieces()) {
            *slot = IoSlice::new(piece);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 && !self.first.is_empty() {
            let step = cnt.min(self.first.len());
            self.first.advance(step);
            self.remaining -= step;
            cnt -= step;
            if self.first.is_empty() {
                self.first = self.rest.pop_front().unwrap_or_default();
            }
        }
    }
}

/// A piece of a frame being encoded: bytes written here, or a shared field's bytes.
#[derive(Debug)]
enum Piece {
    Own(BytesMut),
    Shared(Bytes),
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::Own(b) => b.len(),
            Piece::Shared(b) => b.len(),
        }
    }
}

/// A [`ByteBufMut`] that appends to a growing buffer but keeps large shared `bytes` fields as
/// separate pieces. Offsets count every byte written, pieces included.
#[derive(Debug, Default)]
pub struct ChunkedBuf {
    /// Finished pieces, in order.
    done: Vec<Piece>,
    /// Bytes in `done`.
    done_len: usize,
    /// Where writes go; starts at offset `done_len`.
    tail: BytesMut,
}

impl ChunkedBuf {
    /// An empty buffer whose first piece has room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        ChunkedBuf { done: Vec::new(), done_len: 0, tail: BytesMut::with_capacity(capacity) }
    }

    /// Total bytes written.
    pub fn len(&self) -> usize {
        self.done_len + self.tail.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves everything into `tail` as one contiguous buffer. Only needed if an encoder went
    /// back to a range spanning pieces, which the message encoders never do (their gaps are in
    /// record batch encoding, into a buffer of its own); correct, merely slow, if it happens.
    fn coalesce(&mut self) {
        if self.done.is_empty() {
            return;
        }
        let mut all = BytesMut::with_capacity(self.len());
        for piece in self.done.drain(..) {
            match piece {
                Piece::Own(b) => all.extend_from_slice(&b),
                Piece::Shared(b) => all.extend_from_slice(&b),
            }
        }
        all.extend_from_slice(&self.tail);
        self.done_len = 0;
        self.tail = all;
    }

    /// The frame: every piece, in order.
    pub fn into_frame(self) -> ResponseFrame {
        let mut frame = ResponseFrame::default();
        for piece in self.done {
            frame.push(match piece {
                Piece::Own(b) => b.freeze(),
                Piece::Shared(b) => b,
            });
        }
        frame.push(self.tail.freeze());
        frame
    }
}

// SAFETY: every method forwards to `tail`, a `BytesMut`, whose own `BufMut` impl upholds the
// trait's contract (`chunk_mut` is `tail`'s spare capacity and `advance_mut` only grows its
// length over bytes the caller has initialised there).
#[allow(unsafe_code)]
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.tail.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's guarantee is about `chunk_mut`, which is `tail`'s.
        unsafe { self.tail.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        self.tail.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.tail.extend_from_slice(src);
    }

    fn put_bytes(&mut self, val: u8, cnt: usize) {
        self.tail.put_bytes(val, cnt);
    }
}

impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.len()
    }

    fn seek(&mut self, offset: usize) {
        if offset < self.done_len {
            self.coalesce();
        }
        self.tail.resize(offset - self.done_len, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        // A range inside one piece we wrote (such as the frame's length prefix, in the first
        // piece) is patched in place; one spanning pieces, or in a shared piece, merges first.
        let mut start = 0;
        let mut inside = None;
        for (i, piece) in self.done.iter().enumerate() {
            let end = start + piece.len();
            if r.start < end {
                if r.end <= end && matches!(piece, Piece::Own(_)) {
                    inside = Some((i, start));
                }
                break;
            }
            start = end;
        }
        if inside.is_none() && r.start < self.done_len {
            self.coalesce();
        }
        let (bytes, base) = match inside {
            Some((i, start)) => match self.done.get_mut(i) {
                Some(Piece::Own(b)) => (b, start),
                _ => (&mut self.tail, self.done_len),
            },
            None => (&mut self.tail, self.done_len),
        };
        &mut bytes[r.start - base..r.end - base]
    }

    fn put_shared_bytes(&mut self, bytes: &Bytes) {
        if bytes.len() < SHARE_AT {
            self.tail.extend_from_slice(bytes);
            return;
        }
        if !self.tail.is_empty() {
            // `split` keeps the rest of the allocation for what comes next.
            let written = self.tail.split();
            self.done_len += written.len();
            self.done.push(Piece::Own(written));
        }
        self.done_len += bytes.len();
        self.done.push(Piece::Shared(bytes.clone()));
    }
}

/// Encodes a complete response frame (length, header, body), sharing large record sets.
pub fn encode_response<R: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
) -> Result<ResponseFrame, MessageError> {
    let mut buf = ChunkedBuf::with_capacity(64);
    message::encode_response_into(&mut buf, api, version, correlation_id, response)?;
    Ok(buf.into_frame())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn records(len: usize, seed: u8) -> Bytes {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>().into()
    }

    fn fetch_response(version: i16) -> FetchResponse {
        // Large record sets (shared), small ones (copied), empty and null ones, in two topics.
        let sizes: [Option<usize>; 6] = [Some(SHARE_AT), Some(100), Some(0), None, Some(70_000), Some(SHARE_AT - 1)];
        let topics = (0..2u8)
            .map(|t| {
                let partitions = sizes
                    .iter()
                    .enumerate()
                    .map(|(i, size)| {
                        PartitionData::default()
                            .with_partition_index(i as i32)
                            .with_high_watermark(1_000 + i as i64)
                            .with_last_stable_offset(999)
                            .with_log_start_offset(7)
                            .with_records(size.map(|len| records(len, t * 10 + i as u8)))
                    })
                    .collect();
                let topic = FetchableTopicResponse::default().with_partitions(partitions);
                if version >= 13 {
                    topic.with_topic_id(uuid::Uuid::from_u128(u128::from(t) + 1))
                } else {
                    topic.with_topic(TopicName(StrBytes::from_string(format!("topic-{t}"))))
                }
            })
            .collect();
        FetchResponse::default().with_throttle_time_ms(3).with_session_id(0).with_responses(topics)
    }

    #[test]
    fn a_chunked_fetch_response_is_the_plain_encoding_in_pieces_for_every_version() {
        for version in 4..=18 {
            let response = fetch_response(version);
            let plain = message::encode_response(ApiKey::Fetch, version, 42, &response).unwrap();
            let frame = encode_response(ApiKey::Fetch, version, 42, &response).unwrap();
            assert_eq!(frame.remaining(), plain.len(), "v{version}");
            assert_eq!(frame.to_bytes(), plain, "v{version}");
            // Each topic's two large record sets are pieces of their own, between copied runs.
            assert_eq!(frame.piece_count(), 2 * 2 * 2 + 1, "v{version}");
            // The length prefix counts every piece.
            assert_eq!(i32::from_be_bytes(plain[..4].try_into().unwrap()) as usize, plain.len() - 4);
        }
    }

    #[test]
    fn writing_a_frame_in_odd_steps_yields_its_bytes_in_order() {
        let response = fetch_response(12);
        let plain = message::encode_response(ApiKey::Fetch, 12, 1, &response).unwrap();
        let mut frame = encode_response(ApiKey::Fetch, 12, 1, &response).unwrap();
        let mut out = Vec::new();
        let mut step = 1;
        while frame.has_remaining() {
            // As a socket does: take some of what the I/O vector offers, then advance.
            let mut slices = [IoSlice::new(&[]); 3];
            let n = frame.chunks_vectored(&mut slices);
            let mut taken = 0;
            for slice in &slices[..n] {
                let want = (step - taken).min(slice.len());
                out.extend_from_slice(&slice[..want]);
                taken += want;
            }
            assert!(taken > 0);
            frame.advance(taken);
            assert_eq!(frame.remaining(), plain.len() - out.len());
            step = step * 7 % 9_001 + 1;
        }
        assert_eq!(out, plain);
        assert_eq!(frame.piece_count(), 0);
    }

    #[test]
    fn small_responses_are_one_piece() {
        let response = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![PartitionData::default().with_records(Some(records(100, 1)))])]);
        let frame = encode_response(ApiKey::Fetch, 11, 5, &response).unwrap();
        assert_eq!(frame.piece_count(), 1);
        assert_eq!(frame.to_bytes(), message::encode_response(ApiKey::Fetch, 11, 5, &response).unwrap());
        assert_eq!(ResponseFrame::from(Bytes::new()).piece_count(), 0);
    }

    #[test]
    fn going_back_over_pieces_still_writes_the_right_bytes() {
        let shared = records(SHARE_AT * 2, 9);
        let mut buf = ChunkedBuf::with_capacity(8);
        buf.put_slice(b"head");
        buf.put_shared_bytes(&shared);
        buf.put_slice(b"tail");
        assert_eq!(buf.len(), 8 + shared.len());
        // Inside the first piece: patched in place.
        buf.range(0..2).copy_from_slice(b"HE");
        // Inside the tail, then across pieces (which merges them).
        let end = buf.len();
        buf.range(end - 2..end).copy_from_slice(b"IL");
        buf.range(3..6).copy_from_slice(b"xyz");
        // A gap then filled, as record encoders do.
        let gap = buf.put_gap(2);
        buf.gap_buf(gap).copy_from_slice(b"!!");
        let mut expected = b"HEaxyz".to_vec();
        expected.extend_from_slice(&shared[2..]);
        expected.extend_from_slice(b"taIL!!");
        assert_eq!(buf.into_frame().to_bytes(), expected);
    }
}
