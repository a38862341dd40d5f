//! [`Cursor`], the byte cursor the message parsers read with.

/// A byte cursor over a message.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    pub(super) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn take_while(&mut self, mut keep: impl FnMut(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let len = rest.iter().take_while(|&&b| keep(b)).count();
        self.pos += len;
        &rest[..len]
    }

    /// Exactly `len` ASCII digits as a number.
    pub(super) fn number(&mut self, len: usize) -> Option<u32> {
        let digits = self.rest().get(..len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += len;
        Some(digits.iter().fold(0, |n, b| n * 10 + u32::from(b - b'0')))
    }
}
