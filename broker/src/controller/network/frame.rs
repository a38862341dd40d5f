//! The wire format: `[len: u32 BE][JSON]` frames, bounded by [`MAX_FRAME`], read into a buffer
//! that grows only as the bytes arrive.

use super::{FIRST_STEP, MAX_FRAME};
use bytes::BufMut;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub(super) async fn write_frame<T: Serialize>(
    stream: &mut (impl AsyncWrite + Unpin + ?Sized),
    msg: &T,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {} bytes exceeds {MAX_FRAME}", body.len())));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    stream.write_all(&buf).await
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub(super) async fn read_frame<T: DeserializeOwned>(
    stream: &mut (impl AsyncRead + Unpin + ?Sized),
) -> std::io::Result<Option<T>> {
    let Some(len) = read_len(stream).await? else { return Ok(None) };
    let body = read_body(stream, len).await?;
    decode(&body).map(Some)
}

/// A frame's announced length, checked; `Ok(None)` on a clean end of stream.
pub(super) async fn read_len(stream: &mut (impl AsyncRead + Unpin + ?Sized)) -> std::io::Result<Option<usize>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    Ok(Some(len))
}

/// Reads `len` bytes into a buffer that grows (doubling) only as they arrive, never from the
/// announced length alone.
pub(super) async fn read_body(stream: &mut (impl AsyncRead + Unpin + ?Sized), len: usize) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(FIRST_STEP));
    while body.len() < len {
        if body.len() == body.capacity() {
            body.reserve_exact(len.min(body.capacity() * 2) - body.len());
        }
        let spare = (body.capacity() - body.len()).min(len - body.len());
        if stream.read_buf(&mut (&mut body).limit(spare)).await? == 0 {
            let message = format!("connection closed after {} of {len} frame bytes", body.len());
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message));
        }
    }
    Ok(body)
}

pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(body).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
