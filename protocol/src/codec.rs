//! Kafka's framing: a 4-byte big-endian length, then that many bytes.
//!
//! Unlike `LengthDelimitedCodec`, which reserves the announced length as soon as it reads the
//! prefix, this decoder lets the buffer grow only as bytes arrive, so a peer that announces a
//! large frame and sends nothing costs nothing.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// A frame that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The announced length is negative or over the codec's limit.
    #[error("frame length {len} is out of bounds (at most {max} bytes)")]
    Length {
        /// Announced length.
        len: i64,
        /// The limit.
        max: usize,
    },
    /// The transport failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Splits a byte stream into frame bodies (without the prefix) and prefixes outgoing bodies.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame: usize,
}

impl FrameCodec {
    /// A codec that refuses frames longer than `max_frame` bytes (prefix excluded).
    pub fn new(max_frame: usize) -> FrameCodec {
        FrameCodec { max_frame }
    }

    /// The frame-size limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

/// How far the buffer is grown ahead of a partial frame: enough for typical frames in one read,
/// little enough that a lying prefix does not pin memory.
const GROW_STEP: usize = 64 * 1024;

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if src.len() < LENGTH_PREFIX {
            return Ok(None);
        }
        let announced = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let len = usize::try_from(announced)
            .ok()
            .filter(|l| *l <= self.max_frame)
            .ok_or(FrameError::Length { len: i64::from(announced), max: self.max_frame })?;
        let have = src.len() - LENGTH_PREFIX;
        if have < len {
            src.reserve((len - have).min(GROW_STEP));
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX);
        Ok(Some(src.split_to(len).freeze()))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    /// Writes an already-prefixed frame (as [`crate::message`] builds them) unchanged.
    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        let body = frame.len().saturating_sub(LENGTH_PREFIX);
        if frame.len() < LENGTH_PREFIX || body > self.max_frame {
            return Err(FrameError::Length { len: body as i64, max: self.max_frame });
        }
        dst.reserve(frame.len());
        dst.put_slice(&frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn pipelined_frames_come_out_whole_and_in_order() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&framed(b"one"));
        buf.extend_from_slice(&framed(b""));
        buf.extend_from_slice(&framed(b"three")[..5]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), Bytes::from_static(b"one"));
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), Bytes::new());
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"hree");
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), Bytes::from_static(b"three"));
        assert!(buf.is_empty());
    }

    #[test]
    fn an_announced_length_reserves_no_more_than_a_step() {
        let mut codec = FrameCodec::new(usize::MAX >> 1);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() <= LENGTH_PREFIX + 2 * GROW_STEP, "capacity {}", buf.capacity());
    }

    #[test]
    fn negative_and_oversized_lengths_are_refused() {
        let mut codec = FrameCodec::new(10);
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Length { len: -1, .. })));
        let mut buf = BytesMut::from(&framed(&[0; 11])[..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Length { len: 11, .. })));
        let mut out = BytesMut::new();
        assert!(codec.encode(Bytes::from(framed(&[0; 11])), &mut out).is_err());
        codec.encode(Bytes::from(framed(&[0; 10])), &mut out).unwrap();
        assert_eq!(out.len(), 14);
    }
}
