//! Decompression of record batch payloads with a hard cap on the output.
//!
//! A peer chooses both the compressed bytes and what they inflate to: 510 KB of gzip holds
//! 512 MiB of zeros, zstd reaches ~32,700:1. Every decoder here is streaming and stops with
//! [`DecompressError::TooLarge`] as soon as the output would pass the cap, so memory is bounded by
//! the cap (plus the codec's window), never by what the stream claims. The snappy framings carry
//! a declared length per block; it is checked against the cap before any buffer is sized by it.
//!
//! Codecs as Kafka writes them: gzip (RFC 1952, concatenated members allowed), snappy in the
//! xerial framing of snappy-java or raw, LZ4 frames, zstd frames.

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordSet};
use std::io::Read;

/// Why a payload could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The output would exceed the cap.
    #[error("records inflate to more than {cap} bytes (the decompression cap)")]
    TooLarge {
        /// The cap in force.
        cap: usize,
    },
    /// The codec rejected the stream.
    #[error("invalid {codec} data: {reason}")]
    Invalid {
        /// Codec name.
        codec: &'static str,
        /// What the codec said.
        reason: String,
    },
}

/// A streaming reader over the decompressed payload of `input` that fails with
/// [`DecompressError::TooLarge`] once more than `cap` bytes come out, for callers that parse as
/// they go and never hold the whole output.
pub fn reader<'a>(
    compression: Compression,
    input: &'a [u8],
    cap: usize,
) -> Result<CappedReader<Box<dyn Read + Send + 'a>>, DecompressError> {
    let inner: Box<dyn Read + Send + 'a> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| DecompressError::Invalid { codec: "zstd", reason: e.to_string() })?,
        ),
        Compression::Lz4 => Box::new(
            lz4::Decoder::new(input).map_err(|e| DecompressError::Invalid { codec: "lz4", reason: e.to_string() })?,
        ),
        Compression::Snappy => Box::new(SnappyReader::new(input, cap)),
    };
    Ok(CappedReader::new(inner, cap, codec_name(compression)))
}

/// The whole decompressed payload of `input`, at most `cap` bytes.
pub fn decompress(compression: Compression, input: &[u8], cap: usize) -> Result<Vec<u8>, DecompressError> {
    let mut reader = reader(compression, input, cap)?;
    // Grown as bytes arrive, starting from the compressed size rather than anything the stream
    // could claim.
    let mut out = Vec::with_capacity(input.len().min(cap));
    reader.read_to_end(&mut out).map_err(|e| DecompressError::from_io(e, codec_name(compression)))?;
    Ok(out)
}

impl DecompressError {
    /// Recovers the error a reader of this module raised, or wraps a codec's own I/O error.
    pub fn from_io(error: std::io::Error, codec: &'static str) -> DecompressError {
        let reason = error.to_string();
        match error.into_inner().map(|inner| inner.downcast::<DecompressError>()) {
            Some(Ok(ours)) => *ours,
            _ => DecompressError::Invalid { codec, reason },
        }
    }
}

/// Decodes the one record batch at the start of `batch` into records, inflating its payload
/// with [`decompress`] at most `cap` bytes (kafka-protocol's own codecs have no cap).
pub fn decode_batch(batch: &mut Bytes, cap: usize) -> anyhow::Result<RecordSet> {
    let inflate = |payload: &mut Bytes, compression: Compression| -> anyhow::Result<Bytes> {
        if compression == Compression::None {
            return Ok(payload.split_off(0));
        }
        Ok(Bytes::from(decompress(compression, payload, cap)?))
    };
    RecordBatchDecoder::decode_with_custom_compression(batch, Some(inflate))
}

/// The codec's name for messages.
pub fn codec_name(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "uncompressed",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// A reader that fails once more than `cap` bytes have been read through it.
pub struct CappedReader<R> {
    inner: R,
    remaining: usize,
    cap: usize,
    codec: &'static str,
}

impl<R: Read> CappedReader<R> {
    /// Wraps `inner`, allowing at most `cap` bytes.
    pub fn new(inner: R, cap: usize, codec: &'static str) -> Self {
        CappedReader { inner, remaining: cap, cap, codec }
    }

    /// Bytes read so far.
    pub fn consumed(&self) -> usize {
        self.cap - self.remaining
    }

    /// The codec being read, for messages.
    pub fn codec(&self) -> &'static str {
        self.codec
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // One probe byte tells "exactly at the cap" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(DecompressError::TooLarge { cap: self.cap })),
            };
        }
        let want = buf.len().min(self.remaining);
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.remaining -= n.min(self.remaining);
        Ok(n)
    }
}

/// snappy-java's stream header: magic, then format version 1 and minimum compatible version 1.
const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Snappy as Kafka clients write it: snappy-java's xerial framing (blocks of a 4-byte length and
/// a raw snappy block), or one raw snappy block as some clients send. One block is decoded at a
/// time; a block's declared output length is checked against the cap and against what its
/// compressed size can encode before a buffer is sized by it.
struct SnappyReader<'a> {
    input: &'a [u8],
    block: Vec<u8>,
    at: usize,
    raw_done: bool,
    xerial: bool,
    failed: bool,
    cap: usize,
}

/// The most output a snappy block of `compressed_len` bytes can encode: its densest element, a
/// 3-byte copy, emits 64 bytes.
fn max_block_output(compressed_len: usize) -> usize {
    compressed_len.saturating_mul(22)
}

impl<'a> SnappyReader<'a> {
    fn new(input: &'a [u8], cap: usize) -> Self {
        let xerial = input.starts_with(XERIAL_MAGIC);
        let input = if xerial { input.get(XERIAL_MAGIC.len()..).unwrap_or_default() } else { input };
        SnappyReader { input, block: Vec::new(), at: 0, raw_done: false, xerial, failed: false, cap }
    }

    fn decode_block(&mut self, compressed: &[u8]) -> std::io::Result<()> {
        let invalid = |reason: String| std::io::Error::other(DecompressError::Invalid { codec: "snappy", reason });
        let len = snap::raw::decompress_len(compressed).map_err(|e| invalid(e.to_string()))?;
        if len > self.cap {
            return Err(std::io::Error::other(DecompressError::TooLarge { cap: self.cap }));
        }
        if len > max_block_output(compressed.len()) {
            return Err(invalid(format!(
                "a block of {} bytes claims {len} bytes of output, more than snappy can encode",
                compressed.len()
            )));
        }
        self.block.clear();
        self.block.resize(len, 0);
        let written =
            snap::raw::Decoder::new().decompress(compressed, &mut self.block).map_err(|e| invalid(e.to_string()))?;
        self.block.truncate(written);
        self.at = 0;
        Ok(())
    }

    fn next_block(&mut self) -> std::io::Result<bool> {
        if !self.xerial {
            if self.raw_done || self.input.is_empty() {
                return Ok(false);
            }
            self.raw_done = true;
            let input = self.input;
            self.decode_block(input)?;
            return Ok(true);
        }
        if self.input.is_empty() {
            return Ok(false);
        }
        let invalid = |reason: &str| {
            std::io::Error::other(DecompressError::Invalid { codec: "snappy", reason: reason.to_string() })
        };
        let Some((len_bytes, rest)) = self.input.split_first_chunk::<4>() else {
            return Err(invalid("truncated block length"));
        };
        let len = u32::from_be_bytes(*len_bytes) as usize;
        let Some(block) = rest.get(..len) else {
            return Err(invalid("block longer than the data"));
        };
        self.input = rest.get(len..).unwrap_or_default();
        self.decode_block(block)?;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::other("snappy stream already failed"));
        }
        while self.at >= self.block.len() {
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        let available = self.block.get(self.at..).unwrap_or_default();
        let n = available.len().min(buf.len());
        if let (Some(target), Some(source)) = (buf.get_mut(..n), available.get(..n)) {
            target.copy_from_slice(source);
        }
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_codec_round_trips_under_the_cap() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        let zstd = zstd::encode_all(&data[..], 3).unwrap();
        let mut lz4 = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        lz4.write_all(&data).unwrap();
        let (lz4, result) = lz4.finish();
        result.unwrap();
        let raw_snappy = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut xerial = XERIAL_MAGIC.to_vec();
        for chunk in data.chunks(32 * 1024) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            xerial.extend((block.len() as u32).to_be_bytes());
            xerial.extend(block);
        }
        for (compression, input) in [
            (Compression::Gzip, gzip(&data)),
            (Compression::Zstd, zstd),
            (Compression::Lz4, lz4),
            (Compression::Snappy, raw_snappy),
            (Compression::Snappy, xerial),
            (Compression::None, data.clone()),
        ] {
            assert_eq!(decompress(compression, &input, data.len()).unwrap(), data, "{compression:?}");
            let err = decompress(compression, &input, data.len() - 1).unwrap_err();
            assert!(matches!(err, DecompressError::TooLarge { .. }), "{compression:?}: {err}");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        // 64 MiB of zeros compresses to ~64 KB of gzip; a 1 MiB cap stops it early.
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 100_000);
        let err = decompress(Compression::Gzip, &bomb, 1 << 20).unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { cap } if cap == 1 << 20), "{err}");
        let err = decompress(Compression::Zstd, &zstd::encode_all(&vec![0u8; 8 << 20][..], 19).unwrap(), 1 << 20)
            .unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn snappy_lengths_are_checked_before_use() {
        // A raw block whose varint header claims 4 GiB of output from 6 bytes.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let err = decompress(Compression::Snappy, &claim, 1 << 30).unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { .. }), "{err}");
        let err = decompress(Compression::Snappy, &claim, usize::MAX).unwrap_err();
        assert!(matches!(err, DecompressError::Invalid { codec: "snappy", .. }), "{err}");
        // A xerial block length beyond the data.
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend(u32::MAX.to_be_bytes());
        framed.extend([1, 2, 3]);
        assert!(decompress(Compression::Snappy, &framed, 1 << 20).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for compression in [Compression::Gzip, Compression::Zstd, Compression::Lz4, Compression::Snappy] {
            for garbage in [&b""[..], &b"\x00"[..], &[0xffu8; 200][..], &b"\x1f\x8b\x08\x00\x00\x00"[..]] {
                let _ = decompress(compression, garbage, 1 << 20);
            }
        }
    }

    #[test]
    fn capped_reader_tells_the_cap_from_the_end() {
        let mut out = Vec::new();
        CappedReader::new(&b"abcd"[..], 4, "test").read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
        let mut out = Vec::new();
        assert!(CappedReader::new(&b"abcde"[..], 4, "test").read_to_end(&mut out).is_err());
    }
}
