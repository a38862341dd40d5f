//! Request and response frames on kafka-protocol types, for both ends of a connection: clients
//! encode requests and decode responses, the broker decodes requests and encodes responses.
//! Every frame built here carries its 4-byte length prefix; every frame read here is a body
//! without it (as [`crate::codec::FrameCodec`] yields them).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// A message that cannot be encoded or decoded; each names the API and version.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The frame is too short to hold a request's key, version and correlation id.
    #[error("a {0}-byte frame is too short for a request header")]
    Truncated(usize),
    /// The API key is not one the codec knows.
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// Encoding failed (a field does not fit the version).
    #[error("encoding {api:?} v{version}: {reason}")]
    Encode {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// What failed.
        reason: String,
    },
    /// Decoding failed: the bytes are not a valid message of this API and version.
    #[error("malformed {api:?} v{version} {part}: {reason}")]
    Decode {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// Which part: header or body.
        part: &'static str,
        /// What failed.
        reason: String,
    },
    /// A response answers another request.
    #[error("{api:?} response has correlation id {got}, expected {expected}")]
    Correlation {
        /// The API.
        api: ApiKey,
        /// What arrived.
        got: i32,
        /// What was sent.
        expected: i32,
    },
}

/// The fixed fields at the start of every request frame, readable before the header is decoded
/// (which needs the key and version to pick its own version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrelude {
    /// Raw API key (possibly one the codec does not know).
    pub api_key: i16,
    /// Requested version.
    pub version: i16,
    /// Correlation id to echo.
    pub correlation_id: i32,
}

impl RequestPrelude {
    /// Reads the prelude of a request frame body.
    pub fn read(frame: &[u8]) -> Result<RequestPrelude, MessageError> {
        let Some(head) = frame.get(..8) else { return Err(MessageError::Truncated(frame.len())) };
        Ok(RequestPrelude {
            api_key: i16::from_be_bytes([head[0], head[1]]),
            version: i16::from_be_bytes([head[2], head[3]]),
            correlation_id: i32::from_be_bytes([head[4], head[5], head[6], head[7]]),
        })
    }
}

fn api_of(key: i16) -> Result<ApiKey, MessageError> {
    ApiKey::try_from(key).map_err(|_| MessageError::UnknownApi(key))
}

/// Prefixes `build`'s output with its length (kafka-protocol's errors are kept as text).
fn prefixed(
    api: ApiKey,
    version: i16,
    build: impl FnOnce(&mut BytesMut) -> Result<(), String>,
) -> Result<Bytes, MessageError> {
    let mut buf = BytesMut::with_capacity(64);
    prefixed_into(&mut buf, api, version, build)?;
    Ok(buf.freeze())
}

/// Appends a frame to `buf`: a 4-byte length, patched once `build` has written what it counts.
fn prefixed_into<B: ByteBufMut>(
    buf: &mut B,
    api: ApiKey,
    version: i16,
    build: impl FnOnce(&mut B) -> Result<(), String>,
) -> Result<(), MessageError> {
    let start = buf.offset();
    buf.put_i32(0);
    build(buf).map_err(|reason| MessageError::Encode { api, version, reason })?;
    let body = buf.offset() - start - 4;
    let len = i32::try_from(body).map_err(|_| MessageError::Encode {
        api,
        version,
        reason: format!("{body} bytes is too long"),
    })?;
    buf.range(start..start + 4).copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Encodes a complete request frame (length, header, body).
pub fn encode_request<R: Request>(
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    request: &R,
) -> Result<Bytes, MessageError> {
    let api = api_of(R::KEY)?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_string())));
    prefixed(api, version, |buf| {
        header.encode(buf, api.request_header_version(version)).map_err(|e| e.to_string())?;
        request.encode(buf, version).map_err(|e| e.to_string())
    })
}

/// Decodes a response frame body as the answer to `R` sent at `version` with `correlation_id`.
pub fn decode_response<R: Request>(
    mut body: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<R::Response, MessageError> {
    let api = api_of(R::KEY)?;
    let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
        .map_err(|e| MessageError::Decode { api, version, part: "response header", reason: e.to_string() })?;
    if header.correlation_id != correlation_id {
        return Err(MessageError::Correlation { api, got: header.correlation_id, expected: correlation_id });
    }
    R::Response::decode(&mut body, version).map_err(|e| MessageError::Decode {
        api,
        version,
        part: "response",
        reason: e.to_string(),
    })
}

/// Decodes a request frame body's header; `body` is left at the start of the request itself.
pub fn decode_request_header(body: &mut Bytes, api: ApiKey, version: i16) -> Result<RequestHeader, MessageError> {
    RequestHeader::decode(body, api.request_header_version(version)).map_err(|e| MessageError::Decode {
        api,
        version,
        part: "request header",
        reason: e.to_string(),
    })
}

/// Decodes a request body (after its header).
pub fn decode_request<T: Decodable>(body: &mut Bytes, api: ApiKey, version: i16) -> Result<T, MessageError> {
    T::decode(body, version).map_err(|e| MessageError::Decode { api, version, part: "request", reason: e.to_string() })
}

/// Encodes a complete response frame (length, header, body).
pub fn encode_response<R: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
) -> Result<Bytes, MessageError> {
    let mut buf = BytesMut::with_capacity(64);
    encode_response_into(&mut buf, api, version, correlation_id, response)?;
    Ok(buf.freeze())
}

/// Appends a complete response frame (length, header, body) to `buf`, which may be a buffer
/// that keeps large `bytes` fields by reference (the broker's vectored responses).
pub fn encode_response_into<B: ByteBufMut, R: Encodable + HeaderVersion>(
    buf: &mut B,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
) -> Result<(), MessageError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    prefixed_into(buf, api, version, |buf| {
        header.encode(buf, api.response_header_version(version)).map_err(|e| e.to_string())?;
        response.encode(buf, version).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};

    #[test]
    fn a_request_round_trips_through_the_broker_side_decoders() {
        let request = MetadataRequest::default().with_allow_auto_topic_creation(false);
        let mut frame = encode_request(12, 7, Some("me"), &request).unwrap();
        let len = frame.get_i32();
        assert_eq!(len as usize, frame.len());
        let prelude = RequestPrelude::read(&frame).unwrap();
        assert_eq!(prelude, RequestPrelude { api_key: 3, version: 12, correlation_id: 7 });
        let header = decode_request_header(&mut frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!(header.client_id.as_deref(), Some("me"));
        let decoded: MetadataRequest = decode_request(&mut frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn a_response_round_trips_and_its_correlation_is_checked() {
        let response = ApiVersionsResponse::default().with_throttle_time_ms(5);
        let mut frame = encode_response(ApiKey::ApiVersions, 3, 9, &response).unwrap();
        frame.advance(4);
        let decoded = decode_response::<ApiVersionsRequest>(frame.clone(), 3, 9).unwrap();
        assert_eq!(decoded, response);
        assert!(matches!(
            decode_response::<ApiVersionsRequest>(frame, 3, 10),
            Err(MessageError::Correlation { got: 9, expected: 10, .. })
        ));
    }

    #[test]
    fn short_and_garbled_frames_are_errors() {
        assert!(matches!(RequestPrelude::read(&[0, 3, 0]), Err(MessageError::Truncated(3))));
        let garbage = Bytes::from_static(&[0, 0, 0, 9, 0xff]);
        assert!(decode_response::<MetadataRequest>(garbage, 12, 9).is_err());
    }
}
