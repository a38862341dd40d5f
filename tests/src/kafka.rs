//! [`KafkaConn`]: a raw, blocking Kafka connection for tests that need exact control over the
//! bytes (malformed frames, pipelining, versions), framed by `millrace_protocol::message`.

use crate::connect_timeout;
use anyhow::Context;
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

/// Client id on every [`KafkaConn`] request.
const CLIENT_ID: &str = "millrace-tests";

/// Largest response [`KafkaConn`] reads; a larger announced length is an error.
const MAX_RESPONSE: u64 = 256 << 20;

/// A raw, blocking Kafka protocol connection for tests that need exact control over requests;
/// frames are built and parsed by `millrace_protocol::message`.
pub struct KafkaConn {
    stream: TcpStream,
    next_correlation: i32,
}

impl KafkaConn {
    /// Connects to a broker.
    pub fn connect(port: u16) -> anyhow::Result<KafkaConn> {
        KafkaConn::connect_addr(&format!("127.0.0.1:{port}"), Duration::from_secs(15))
    }

    /// Connects to `addr` (`HOST:PORT`); connecting and each read give up after `timeout`.
    pub fn connect_addr(addr: &str, timeout: Duration) -> anyhow::Result<KafkaConn> {
        let stream = connect_timeout(addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(KafkaConn { stream, next_correlation: 1 })
    }

    /// Writes raw bytes (for malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream.write_all(bytes)
    }

    /// True when the broker closed the connection (read returns EOF or reset).
    pub fn is_closed_by_peer(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.stream.read(&mut buf), Ok(0) | Err(_))
    }

    /// Encodes a request frame at `version`; returns it with its correlation id.
    pub fn encode_request<R>(&mut self, version: i16, request: &R) -> anyhow::Result<(i32, Vec<u8>)>
    where
        R: kafka_protocol::protocol::Request,
    {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let frame = millrace_protocol::message::encode_request(version, correlation, Some(CLIENT_ID), request)?;
        Ok((correlation, frame.to_vec()))
    }

    /// Reads one response frame and decodes it as the response to `R` at `version`.
    pub fn read_response<R>(&mut self, version: i16, correlation: i32) -> anyhow::Result<R::Response>
    where
        R: kafka_protocol::protocol::Request,
    {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let announced = i32::from_be_bytes(len);
        let len = u64::try_from(announced)
            .ok()
            .filter(|&l| l <= MAX_RESPONSE)
            .with_context(|| format!("response announces {announced} bytes (at most {MAX_RESPONSE} accepted)"))?;
        // The buffer grows with the bytes that arrive, never to the announced length up front:
        // a peer announcing 200 MiB and sending nothing costs nothing.
        let mut body = Vec::new();
        (&mut self.stream).take(len).read_to_end(&mut body)?;
        anyhow::ensure!(body.len() as u64 == len, "response cut short: {} of {len} bytes", body.len());
        Ok(millrace_protocol::message::decode_response::<R>(body.into(), version, correlation)?)
    }

    /// Sends a request at `version` and decodes the response.
    pub fn request<R>(&mut self, version: i16, request: &R) -> anyhow::Result<R::Response>
    where
        R: kafka_protocol::protocol::Request,
    {
        let (correlation, frame) = self.encode_request(version, request)?;
        self.send_raw(&frame)?;
        self.read_response::<R>(version, correlation)
    }
}

/// One uncompressed v2 record batch of unkeyed records with `values`, offsets from 0, a fixed
/// creation timestamp, no producer id: what tests produce when only the values matter.
pub fn value_batch<S: AsRef<str>>(values: &[S]) -> anyhow::Result<bytes::Bytes> {
    record_batch(values, None, None, 1_700_000_000_000)
}

/// One uncompressed v2 record batch from kafka-protocol's encoder (what a real client sends):
/// `values` with offsets from 0, each with `key`, from `producer` = (id, epoch, first sequence)
/// if idempotent, created at `timestamp` (ms).
pub fn record_batch<S: AsRef<str>>(
    values: &[S],
    key: Option<&str>,
    producer: Option<(i64, i16, i32)>,
    timestamp: i64,
) -> anyhow::Result<bytes::Bytes> {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let (id, epoch, sequence) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if sequence < 0 { -1 } else { sequence + i as i32 },
            timestamp,
            key: key.map(|k| bytes::Bytes::copy_from_slice(k.as_bytes())),
            value: Some(bytes::Bytes::copy_from_slice(v.as_ref().as_bytes())),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;
    use std::io::Write;
    use std::net::TcpListener;

    /// A KafkaConn whose peer writes `answer` to the first request and then closes.
    fn answered_with(answer: Vec<u8>) -> anyhow::Result<KafkaConn> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        std::thread::spawn(move || {
            if let Ok((mut peer, _)) = listener.accept() {
                let _ = peer.write_all(&answer);
            }
        });
        KafkaConn::connect_addr(&addr, Duration::from_secs(5))
    }

    #[test]
    fn absurd_and_negative_lengths_are_refused_before_reading() -> anyhow::Result<()> {
        for announced in [i32::MAX, (256 << 20) + 1, -1, i32::MIN] {
            let mut conn = answered_with(announced.to_be_bytes().to_vec())?;
            let error = conn.read_response::<ApiVersionsRequest>(3, 1).expect_err("refused").to_string();
            assert!(error.contains(&format!("announces {announced} bytes")), "{error}");
        }
        Ok(())
    }

    #[test]
    fn a_large_announced_length_with_few_bytes_is_a_short_read() -> anyhow::Result<()> {
        let mut answer = (200i32 << 20).to_be_bytes().to_vec();
        answer.extend_from_slice(&[0; 10]);
        let mut conn = answered_with(answer)?;
        let error = conn.read_response::<ApiVersionsRequest>(3, 1).expect_err("cut short").to_string();
        assert!(error.contains("cut short: 10 of"), "{error}");
        Ok(())
    }

    #[test]
    fn frames_round_trip_through_the_shared_wire_layer() -> anyhow::Result<()> {
        let response = kafka_protocol::messages::ApiVersionsResponse::default().with_throttle_time_ms(7);
        let frame = millrace_protocol::message::encode_response(
            kafka_protocol::messages::ApiKey::ApiVersions,
            3,
            1,
            &response,
        )?;
        let mut conn = answered_with(frame.to_vec())?;
        let (correlation, request) = conn.encode_request(3, &ApiVersionsRequest::default())?;
        assert_eq!(correlation, 1);
        assert_eq!(i32::from_be_bytes([request[0], request[1], request[2], request[3]]) as usize, request.len() - 4);
        assert_eq!(conn.read_response::<ApiVersionsRequest>(3, correlation)?, response);
        Ok(())
    }
}
