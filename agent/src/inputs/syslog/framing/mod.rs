//! RFC 6587 framing of a TCP byte stream: octet counting or newline-terminated, per message.

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

/// More digits than this is not an octet count (it would announce a frame of a gigabyte or more).
const MAX_COUNT_DIGITS: usize = 9;

/// Splits a TCP byte stream into syslog messages (RFC 6587).
///
/// Each message's framing is detected at its first byte: a digit 1–9 starts octet counting
/// (`MSG-LEN SP MSG`), anything else a non-transparent frame ended by LF or NUL (a CR before the
/// LF is removed). Empty lines between frames are skipped. Frames longer than `max_len` are cut
/// to `max_len` bytes and the rest is discarded up to the end of the frame (the announced length,
/// or the next terminator), so memory stays bounded by `max_len` plus the bytes pushed at once.
/// Digits not followed by a space are not an octet count: that frame is read as a line, which
/// resynchronises a stream at its next newline.
#[derive(Debug)]
pub struct Framer {
    max_len: usize,
    state: FrameState,
    buf: Vec<u8>,
    ready: VecDeque<Vec<u8>>,
    truncated: u64,
    malformed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameState {
    /// Between frames.
    Boundary,
    /// Reading the digits of an octet count (also kept in `buf`, in case they are not one).
    Count { len: usize, digits: usize },
    /// Inside an octet-counted frame: `keep` more bytes go into the frame, then `discard` are
    /// dropped (the part beyond `max_len`).
    Octets { keep: usize, discard: usize },
    /// Dropping the rest of an oversized octet-counted frame.
    DiscardOctets { remaining: usize },
    /// Inside a non-transparent frame.
    Line,
    /// Dropping the rest of an oversized non-transparent frame, up to its terminator.
    DiscardLine,
}

impl Framer {
    /// A framer for frames of at most `max_len` bytes (at least 1).
    pub fn new(max_len: usize) -> Framer {
        Framer {
            max_len: max_len.max(1),
            state: FrameState::Boundary,
            buf: Vec::new(),
            ready: VecDeque::new(),
            truncated: 0,
            malformed: 0,
        }
    }

    /// Adds bytes received from the stream; complete frames become available from
    /// [`Framer::next_frame`].
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.state {
                FrameState::Boundary => match data[0] {
                    b'\n' | b'\r' | 0 => data = &data[1..],
                    digit @ b'1'..=b'9' => {
                        self.buf.push(digit);
                        self.state = FrameState::Count { len: usize::from(digit - b'0'), digits: 1 };
                        data = &data[1..];
                    }
                    _ => self.state = FrameState::Line,
                },
                FrameState::Count { len, digits } => match data[0] {
                    digit @ b'0'..=b'9' if digits < MAX_COUNT_DIGITS => {
                        self.buf.push(digit);
                        self.state =
                            FrameState::Count { len: len * 10 + usize::from(digit - b'0'), digits: digits + 1 };
                        data = &data[1..];
                    }
                    b' ' => {
                        self.buf.clear();
                        let keep = len.min(self.max_len);
                        self.buf.reserve_exact(keep);
                        self.state = FrameState::Octets { keep, discard: len - keep };
                        data = &data[1..];
                    }
                    _ => {
                        // Not an octet count: the digits so far start a line; this byte is
                        // read again as part of it.
                        self.malformed += 1;
                        self.state = FrameState::Line;
                    }
                },
                FrameState::Octets { keep, discard } => {
                    let n = keep.min(data.len());
                    self.buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if n < keep {
                        self.state = FrameState::Octets { keep: keep - n, discard };
                    } else {
                        self.emit();
                        if discard > 0 {
                            self.truncated += 1;
                            self.state = FrameState::DiscardOctets { remaining: discard };
                        } else {
                            self.state = FrameState::Boundary;
                        }
                    }
                }
                FrameState::DiscardOctets { remaining } => {
                    let n = remaining.min(data.len());
                    data = &data[n..];
                    self.state = if n < remaining {
                        FrameState::DiscardOctets { remaining: remaining - n }
                    } else {
                        FrameState::Boundary
                    };
                }
                FrameState::Line => {
                    let end = data.iter().position(|&b| b == b'\n' || b == 0);
                    let segment = &data[..end.unwrap_or(data.len())];
                    // One byte beyond the maximum is allowed: it may be the CR of a CRLF.
                    let room = self.max_len.saturating_add(1).saturating_sub(self.buf.len());
                    let take = segment.len().min(room);
                    self.buf.extend_from_slice(&segment[..take]);
                    let overflow = take < segment.len();
                    match end {
                        Some(end) => {
                            data = &data[end + 1..];
                            if !overflow && self.buf.last() == Some(&b'\r') {
                                self.buf.pop();
                            }
                            if overflow || self.buf.len() > self.max_len {
                                self.buf.truncate(self.max_len);
                                self.truncated += 1;
                            }
                            self.emit();
                            self.state = FrameState::Boundary;
                        }
                        None => {
                            data = &[];
                            let full = self.buf.len() > self.max_len && self.buf.last() != Some(&b'\r');
                            if overflow || full {
                                self.buf.truncate(self.max_len);
                                self.truncated += 1;
                                self.emit();
                                self.state = FrameState::DiscardLine;
                            }
                        }
                    }
                }
                FrameState::DiscardLine => match data.iter().position(|&b| b == b'\n' || b == 0) {
                    Some(end) => {
                        data = &data[end + 1..];
                        self.state = FrameState::Boundary;
                    }
                    None => data = &[],
                },
            }
        }
    }

    /// Queues the frame in `buf` (unless empty: blank lines are not messages).
    fn emit(&mut self) {
        if !self.buf.is_empty() {
            self.ready.push_back(std::mem::take(&mut self.buf));
        }
    }

    /// The next complete frame, in stream order.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// The stream ended: an unterminated last line becomes a frame (senders often omit the final
    /// newline). Returns how many bytes of an incomplete octet-counted frame were dropped.
    pub fn finish(&mut self) -> usize {
        let dropped = match self.state {
            FrameState::Line | FrameState::Count { .. } => {
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                self.emit();
                0
            }
            FrameState::Octets { .. } => std::mem::take(&mut self.buf).len(),
            FrameState::Boundary | FrameState::DiscardOctets { .. } | FrameState::DiscardLine => 0,
        };
        self.buf = Vec::new();
        self.state = FrameState::Boundary;
        dropped
    }

    /// How many frames were longer than the maximum and cut.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// How many frames started with digits that were not an octet count.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}
