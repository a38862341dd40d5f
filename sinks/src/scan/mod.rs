//! A strict, allocation-free pull reader of JSON for the records the sinks pick fields from: the
//! metric records the InfluxDB sink turns into points and the documents whose `_id` and index
//! the Elasticsearch sink reads. It reads only what is asked for: keys, strings (borrowed unless
//! they hold escapes), numbers as their original text (so a float is written back exactly as the
//! agent wrote it, without a parse and a reformat), literals; everything else is validated and
//! skipped — by `value` up to [`MAX_DEPTH`] levels, by `skip_value` at any depth without
//! recursion. A general JSON parser builds every object as a map first, which was most of the
//! InfluxDB sink's CPU.

use std::borrow::Cow;
use std::num::NonZeroU64;

/// How deep skipped values may nest; deeper input is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// Where a string's contents lie in the text (between its quotes). Spans are plain data, so the
/// reader's callers can keep them in buffers reused from record to record. A span is one nonzero
/// word — start, end, an always-set bit and whether the contents hold escapes, in 32 + 30 + 1 + 1
/// bits; texts are limited to [`MAX_TEXT`] — so that spans, `Option`s of them, scalars and the
/// results carrying them travel in registers: put together in memory piecewise, they cost the
/// reader a store-forwarding stall per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(NonZeroU64);

const ESCAPED: u64 = 1 << 63;
/// Keeps every span nonzero, which gives `Option<Span>` a word's size.
const SET: NonZeroU64 = match NonZeroU64::new(1 << 62) {
    Some(bit) => bit,
    None => panic!("1 << 62 is not zero"),
};

impl Span {
    fn new(start: usize, end: usize, escaped: bool) -> Span {
        // Both are within the text, which `Scanner::new` keeps under `MAX_TEXT`.
        Span(SET | start as u64 | (end as u64) << 32 | if escaped { ESCAPED } else { 0 })
    }

    fn range(self) -> std::ops::Range<usize> {
        let word = self.0.get();
        (word as u32 as usize)..((word & !(ESCAPED | SET.get())) >> 32) as usize
    }

    /// Whether the contents hold escapes (and so must be unescaped into a new string).
    fn escaped(self) -> bool {
        self.0.get() & ESCAPED != 0
    }
}

/// The longest text the reader takes (far above any record the sinks are given: a fetched
/// batch is at most 64 MiB).
pub const MAX_TEXT: usize = (1 << 30) - 1;

/// What is wrong with a text, and where: small and `Copy`, so that results carry it in
/// registers; the message is only written when it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at byte {at}")]
pub struct ScanError {
    problem: Problem,
    at: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    NotUtf8,
    TooLong,
    Expected(u8),
    ExpectedSeparator(u8),
    ExpectedKey,
    ExpectedKeyOrEnd,
    TrailingText,
    TooDeep,
    ExpectedValue,
    UnexpectedEnd,
    NumberOutOfRange,
    MalformedNumber,
    ControlCharacter,
    UnterminatedString,
    InvalidEscape,
    ShortUnicodeEscape,
    InvalidUnicodeEscape,
    UnpairedSurrogate,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NotUtf8 => f.write_str("not UTF-8"),
            Problem::TooLong => write!(f, "longer than {MAX_TEXT} bytes"),
            Problem::Expected(b) => write!(f, "expected `{}`", char::from(*b)),
            Problem::ExpectedSeparator(close) => write!(f, "expected `,` or `{}`", char::from(*close)),
            Problem::ExpectedKey => f.write_str("expected a key"),
            Problem::ExpectedKeyOrEnd => f.write_str("expected a key or `}`"),
            Problem::TrailingText => f.write_str("unexpected text after the JSON value"),
            Problem::TooDeep => f.write_str("nested too deeply"),
            Problem::ExpectedValue => f.write_str("expected a JSON value"),
            Problem::UnexpectedEnd => f.write_str("unexpected end of the record"),
            Problem::NumberOutOfRange => f.write_str("number out of range"),
            Problem::MalformedNumber => f.write_str("malformed number"),
            Problem::ControlCharacter => f.write_str("control character in a string"),
            Problem::UnterminatedString => f.write_str("unterminated string"),
            Problem::InvalidEscape => f.write_str("invalid escape in a string"),
            Problem::ShortUnicodeEscape => f.write_str("short \\u escape"),
            Problem::InvalidUnicodeEscape => f.write_str("invalid \\u escape"),
            Problem::UnpairedSurrogate => f.write_str("unpaired surrogate in a \\u escape"),
        }
    }
}

/// The sinks' encoders report their refusals as text.
impl From<ScanError> for String {
    fn from(e: ScanError) -> String {
        e.to_string()
    }
}

/// A scalar, or a note that a composite value was skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// A string; [`Scanner::text`] gives it unescaped.
    Text(Span),
    /// A number as written (its text is [`Scanner::text`] of the span): `integer` when it has
    /// no fraction and no exponent.
    Number { text: Span, integer: bool },
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object or an array (skipped).
    Composite,
}

/// An object being read: whether its first key is still to come.
pub struct Object {
    first: bool,
}

/// The offset of the first byte in `bytes` that ends a string's plain run (a quote, a
/// backslash or a control character), or None. Eight bytes are tested at a time with word
/// arithmetic: byte by byte, this search was the largest part of reading a record.
fn plain_run(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte's high bit is set where it is below `n` (exact for the lowest such byte, which is
    // the only one used); bytes of 0x80 and above never count.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let equal = |word: u64, b: u8| below(word ^ (ONES * u64::from(b)), 1);
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let stops = below(word, 0x20) | equal(word, b'"') | equal(word, b'\\');
        if stops != 0 {
            return Some(offset + (stops.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\').map(|i| offset + i)
}

/// The composites [`Scanner::skip_value`] is inside, innermost last: whether each is an object.
/// The first 64 levels are bits of a word, so skipping allocates only for deeper documents.
#[derive(Default)]
struct OpenComposites {
    depth: usize,
    bits: u64,
    deeper: Vec<bool>,
}

impl OpenComposites {
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            self.bits = (self.bits & !(1 << self.depth)) | (u64::from(object) << self.depth);
        } else {
            self.deeper.push(object);
        }
        self.depth += 1;
    }

    fn last(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d <= 64 => Some(self.bits >> (d - 1) & 1 == 1),
            _ => self.deeper.last().copied(),
        }
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.deeper.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

/// Reads one JSON text from the front.
#[derive(Clone)]
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner over `json`, which must be UTF-8.
    pub fn new(json: &'a [u8]) -> Result<Scanner<'a>, ScanError> {
        if json.len() > MAX_TEXT {
            return Err(ScanError { problem: Problem::TooLong, at: MAX_TEXT as u32 });
        }
        let text = std::str::from_utf8(json)
            .map_err(|e| ScanError { problem: Problem::NotUtf8, at: e.valid_up_to() as u32 })?;
        Ok(Scanner { text, pos: 0 })
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[cold]
    fn error(&self, problem: Problem) -> ScanError {
        ScanError { problem, at: self.pos as u32 }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        // Compact JSON (what the agent writes) has no whitespace between tokens.
        match self.bytes().get(self.pos) {
            Some(&b) if b > b' ' => Some(b),
            _ => {
                self.skip_whitespace();
                self.bytes().get(self.pos).copied()
            }
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Result<(), ScanError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(Problem::Expected(byte)))
        }
    }

    /// Steps over `literal` if the text continues with exactly it (no whitespace is skipped):
    /// for readers of one known, compact layout.
    #[inline]
    pub fn eat(&mut self, literal: &[u8]) -> bool {
        let matched = self.bytes().get(self.pos..self.pos + literal.len()) == Some(literal);
        if matched {
            self.pos += literal.len();
        }
        matched
    }

    /// The string at the cursor (its opening quote, no whitespace before it) when it holds no
    /// escape; its contents, the cursor after it. None, the cursor where it was, for anything
    /// else.
    #[inline]
    pub fn plain_string(&mut self) -> Option<&'a str> {
        if !self.eat(b"\"") {
            return None;
        }
        let start = self.pos;
        let end = match plain_run(&self.bytes()[start..]) {
            Some(run) if self.bytes()[start + run] == b'"' => start + run,
            _ => {
                self.pos = start - 1;
                return None;
            }
        };
        self.pos = end + 1;
        // Both ends are ASCII quotes, so they are character boundaries.
        self.text.get(start..end)
    }

    /// A string's contents, unescaped: borrowed from the text unless it held escapes.
    pub fn text(&self, span: Span) -> Cow<'a, str> {
        let raw = &self.text[span.range()];
        if !span.escaped() {
            return Cow::Borrowed(raw);
        }
        // The span was validated when it was read, so this cannot fail; an empty string would
        // only stand in for an impossible error.
        let mut again = Scanner { text: self.text, pos: span.range().start };
        Cow::Owned(again.escaped_string(span.range().start).unwrap_or_default())
    }

    /// Whether the string at `span` is `word`.
    pub fn is(&self, span: Span, word: &str) -> bool {
        if span.escaped() {
            self.text(span) == word
        } else {
            &self.bytes()[span.range()] == word.as_bytes()
        }
    }

    /// The order of two strings by their text.
    pub fn compare(&self, a: Span, b: Span) -> std::cmp::Ordering {
        if a.escaped() || b.escaped() {
            self.text(a).cmp(&self.text(b))
        } else {
            // Unescaped UTF-8 orders as its bytes do.
            self.bytes()[a.range()].cmp(&self.bytes()[b.range()])
        }
    }

    /// The byte at the cursor, without skipping whitespace.
    #[inline]
    pub fn next_byte(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Whether the next value is an object.
    pub fn at_object(&mut self) -> bool {
        self.peek() == Some(b'{')
    }

    /// Whether the next value is an array.
    pub fn at_array(&mut self) -> bool {
        self.peek() == Some(b'[')
    }

    /// Enters an object (the next value must be one); its keys are then read with `next_key`.
    pub fn begin_object(&mut self) -> Result<Object, ScanError> {
        self.expect(b'{')?;
        Ok(Object { first: true })
    }

    /// The next key of `object` (its `:` consumed), or None at the object's end.
    pub fn next_key(&mut self, object: &mut Object) -> Result<Option<Span>, ScanError> {
        let first = std::mem::replace(&mut object.first, false);
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b'"') if first => {}
            Some(b',') if !first => {
                self.pos += 1;
                if self.peek() != Some(b'"') {
                    return Err(self.error(Problem::ExpectedKey));
                }
            }
            _ => {
                return Err(self.error(if first {
                    Problem::ExpectedKeyOrEnd
                } else {
                    Problem::ExpectedSeparator(b'}')
                }))
            }
        }
        let key = self.string()?;
        self.expect(b':')?;
        Ok(Some(key))
    }

    /// Checks that only whitespace follows the value read.
    pub fn finish(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error(Problem::TrailingText)),
        }
    }

    /// Reads the next value; objects and arrays are validated and skipped.
    pub fn value(&mut self) -> Result<Scalar, ScanError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Scalar, ScanError> {
        match self.peek() {
            Some(b'"') => self.string().map(Scalar::Text),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Scalar::Bool(true)),
            Some(b'f') => self.literal("false", Scalar::Bool(false)),
            Some(b'n') => self.literal("null", Scalar::Null),
            Some(open @ (b'{' | b'[')) => {
                if depth >= MAX_DEPTH {
                    return Err(self.error(Problem::TooDeep));
                }
                self.pos += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Ok(Scalar::Composite);
                }
                loop {
                    if open == b'{' {
                        if self.peek() != Some(b'"') {
                            return Err(self.error(Problem::ExpectedKey));
                        }
                        self.string()?;
                        self.expect(b':')?;
                    }
                    self.value_at(depth + 1)?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b) if b == close => {
                            self.pos += 1;
                            return Ok(Scalar::Composite);
                        }
                        _ => return Err(self.error(Problem::ExpectedSeparator(close))),
                    }
                }
            }
            Some(_) => Err(self.error(Problem::ExpectedValue)),
            None => Err(self.error(Problem::UnexpectedEnd)),
        }
    }

    /// Skips the next value whatever its nesting, without recursion: only its grammar is checked
    /// (a document's depth is for its destination to judge; Elasticsearch has its own limit).
    pub fn skip_value(&mut self) -> Result<(), ScanError> {
        let mut open = OpenComposites::default();
        loop {
            match self.peek() {
                Some(first @ (b'{' | b'[')) => {
                    self.pos += 1;
                    let object = first == b'{';
                    if self.peek() == Some(if object { b'}' } else { b']' }) {
                        self.pos += 1;
                    } else {
                        open.push(object);
                        if object {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                // A scalar: no recursion below this depth.
                _ => {
                    if let Scalar::Number { text, integer } = self.value_at(0)? {
                        self.check_range(text, integer)?;
                    }
                }
            }
            // After a value: close what ends here, then go on to the next member or element.
            loop {
                let Some(object) = open.last() else { return Ok(()) };
                let close = if object { b'}' } else { b']' };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.member_name()?;
                        }
                        break;
                    }
                    Some(b) if b == close => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ => return Err(self.error(Problem::ExpectedSeparator(close))),
                }
            }
        }
    }

    /// Refuses a number beyond a float's range, as serde_json does even in a value it skips
    /// (a document holding one is refused rather than sent on).
    fn check_range(&self, span: Span, integer: bool) -> Result<(), ScanError> {
        let text = &self.text[span.range()];
        // Under 300 digits without an exponent is always in range: no parse.
        let plainly_finite = text.len() < 300 && (integer || !text.contains(['e', 'E']));
        if plainly_finite || text.parse::<f64>().is_ok_and(f64::is_finite) {
            Ok(())
        } else {
            Err(ScanError { problem: Problem::NumberOutOfRange, at: span.range().start as u32 })
        }
    }

    /// A member's name and its `:`, skipped.
    fn member_name(&mut self) -> Result<(), ScanError> {
        if self.peek() != Some(b'"') {
            return Err(self.error(Problem::ExpectedKey));
        }
        self.string()?;
        self.expect(b':')
    }

    fn literal(&mut self, word: &'static str, value: Scalar) -> Result<Scalar, ScanError> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error(Problem::ExpectedValue))
        }
    }

    /// A number, checked against the JSON grammar: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<Scalar, ScanError> {
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let whole = digits(&mut i);
        if whole == 0 || (whole > 1 && bytes[i - whole] == b'0') {
            self.pos = i;
            return Err(self.error(Problem::MalformedNumber));
        }
        let mut integer = true;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.error(Problem::MalformedNumber));
            }
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            integer = false;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.error(Problem::MalformedNumber));
            }
        }
        self.pos = i;
        Ok(Scalar::Number { text: Span::new(start, i, false), integer })
    }

    /// The string at the cursor, validated; its span.
    fn string(&mut self) -> Result<Span, ScanError> {
        self.expect(b'"')?;
        let bytes = self.bytes();
        let start = self.pos;
        let end = plain_run(&bytes[start..]).map_or(bytes.len(), |run| start + run);
        self.pos = end;
        match bytes.get(end) {
            Some(b'"') => {
                self.pos += 1;
                Ok(Span::new(start, end, false))
            }
            Some(b'\\') => {
                self.check_escaped_rest()?;
                Ok(Span::new(start, self.pos - 1, true))
            }
            Some(_) => Err(self.error(Problem::ControlCharacter)),
            None => Err(self.error(Problem::UnterminatedString)),
        }
    }

    /// Checks the rest of a string that holds escapes without unescaping it (most such strings
    /// are only skipped; [`Scanner::text`] unescapes the few that are read). The cursor is at a
    /// backslash; it ends after the closing quote.
    fn check_escaped_rest(&mut self) -> Result<(), ScanError> {
        loop {
            match self.bytes().get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let escape = self.bytes().get(self.pos + 1).copied();
                    self.pos += 2;
                    match escape {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => drop(self.unicode_escape()?),
                        _ => return Err(self.error(Problem::InvalidEscape)),
                    }
                }
                Some(_) => return Err(self.error(Problem::ControlCharacter)),
                None => return Err(self.error(Problem::UnterminatedString)),
            }
            let rest = &self.bytes()[self.pos..];
            self.pos += plain_run(rest).unwrap_or(rest.len());
        }
    }

    /// The rest of a string that holds escapes; the cursor is at its first backslash.
    fn escaped_string(&mut self, start: usize) -> Result<String, ScanError> {
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.text[start..self.pos]);
        loop {
            let rest = &self.text[self.pos..];
            let plain = rest.find(|c: char| c == '"' || c == '\\' || c < ' ').unwrap_or(rest.len());
            out.push_str(&rest[..plain]);
            self.pos += plain;
            match self.bytes().get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape = self.bytes().get(self.pos + 1).copied();
                    self.pos += 2;
                    match escape {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => out.push(self.unicode_escape()?),
                        _ => return Err(self.error(Problem::InvalidEscape)),
                    }
                }
                Some(_) => return Err(self.error(Problem::ControlCharacter)),
                None => return Err(self.error(Problem::UnterminatedString)),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ScanError> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or_else(|| self.error(Problem::ShortUnicodeEscape))?;
        // from_str_radix alone would also take a leading `+`.
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error(Problem::InvalidUnicodeEscape));
        }
        let value = u32::from_str_radix(digits, 16).map_err(|_| self.error(Problem::InvalidUnicodeEscape))?;
        self.pos += 4;
        Ok(value)
    }

    /// The character of a `\uXXXX` escape (the cursor after the `u`), joining surrogate pairs.
    fn unicode_escape(&mut self) -> Result<char, ScanError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.text[self.pos..].starts_with("\\u") {
                    return Err(self.error(Problem::UnpairedSurrogate));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error(Problem::UnpairedSurrogate));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error(Problem::UnpairedSurrogate)),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error(Problem::InvalidUnicodeEscape))
    }
}

#[cfg(test)]
mod tests;
