//! A strict, allocation-free pull reader of JSON for the records the sinks pick fields from: the
//! metric records the InfluxDB sink turns into points and the documents whose `_id` and index
//! the Elasticsearch sink reads. It reads only what is asked for: keys, strings (borrowed unless
//! they hold escapes), numbers as their original text (so a float is written back exactly as the
//! agent wrote it, without a parse and a reformat), literals; everything else is validated and
//! skipped — by `value` up to [`MAX_DEPTH`] levels, by `skip_value` at any depth without
//! recursion. A general JSON parser builds every object as a map first, which was most of the
//! InfluxDB sink's CPU.

use std::borrow::Cow;

/// How deep skipped values may nest; deeper input is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// Where a string's contents lie in the text (between its quotes). Spans are plain data, so the
/// reader's callers can keep them in buffers reused from record to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: usize,
    end: usize,
    /// Whether the contents hold escapes (and so must be unescaped into a new string).
    escaped: bool,
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
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner over `json`, which must be UTF-8.
    pub fn new(json: &'a [u8]) -> Result<Scanner<'a>, String> {
        let text = std::str::from_utf8(json).map_err(|e| format!("not UTF-8 ({e})"))?;
        Ok(Scanner { text, pos: 0 })
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[cold]
    #[inline(never)]
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    #[cold]
    #[inline(never)]
    fn expected(&self, byte: u8) -> String {
        self.error(&format!("expected `{}`", byte as char))
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
    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.expected(byte))
        }
    }

    /// A string's contents, unescaped: borrowed from the text unless it held escapes.
    pub fn text(&self, span: Span) -> Cow<'a, str> {
        let raw = &self.text[span.start..span.end];
        if !span.escaped {
            return Cow::Borrowed(raw);
        }
        // The span was validated when it was read, so this cannot fail; an empty string would
        // only stand in for an impossible error.
        let mut again = Scanner { text: self.text, pos: span.start };
        Cow::Owned(again.escaped_string(span.start).unwrap_or_default())
    }

    /// Whether the string at `span` is `word`.
    pub fn is(&self, span: Span, word: &str) -> bool {
        if span.escaped {
            self.text(span) == word
        } else {
            &self.bytes()[span.start..span.end] == word.as_bytes()
        }
    }

    /// The order of two strings by their text.
    pub fn compare(&self, a: Span, b: Span) -> std::cmp::Ordering {
        if a.escaped || b.escaped {
            self.text(a).cmp(&self.text(b))
        } else {
            // Unescaped UTF-8 orders as its bytes do.
            self.bytes()[a.start..a.end].cmp(&self.bytes()[b.start..b.end])
        }
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
    pub fn begin_object(&mut self) -> Result<Object, String> {
        self.expect(b'{')?;
        Ok(Object { first: true })
    }

    /// The next key of `object` (its `:` consumed), or None at the object's end.
    pub fn next_key(&mut self, object: &mut Object) -> Result<Option<Span>, String> {
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
                    return Err(self.error("expected a key"));
                }
            }
            _ => return Err(self.error(if first { "expected a key or `}`" } else { "expected `,` or `}`" })),
        }
        let key = self.string()?;
        self.expect(b':')?;
        Ok(Some(key))
    }

    /// Checks that only whitespace follows the value read.
    pub fn finish(&mut self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("unexpected text after the JSON value")),
        }
    }

    /// Reads the next value; objects and arrays are validated and skipped.
    pub fn value(&mut self) -> Result<Scalar, String> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Scalar, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Scalar::Text),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Scalar::Bool(true)),
            Some(b'f') => self.literal("false", Scalar::Bool(false)),
            Some(b'n') => self.literal("null", Scalar::Null),
            Some(open @ (b'{' | b'[')) => {
                if depth >= MAX_DEPTH {
                    return Err(self.error("nested too deeply"));
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
                            return Err(self.error("expected a key"));
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
                        _ => return Err(self.expected_separator(close)),
                    }
                }
            }
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("unexpected end of the record")),
        }
    }

    /// Skips the next value whatever its nesting, without recursion: only its grammar is checked
    /// (a document's depth is for its destination to judge; Elasticsearch has its own limit).
    pub fn skip_value(&mut self) -> Result<(), String> {
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
                    _ => return Err(self.expected_separator(close)),
                }
            }
        }
    }

    /// Refuses a number beyond a float's range, as serde_json does even in a value it skips
    /// (a document holding one is refused rather than sent on).
    fn check_range(&self, span: Span, integer: bool) -> Result<(), String> {
        let text = &self.text[span.start..span.end];
        // Under 300 digits without an exponent is always in range: no parse.
        let plainly_finite = text.len() < 300 && (integer || !text.contains(['e', 'E']));
        if plainly_finite || text.parse::<f64>().is_ok_and(f64::is_finite) {
            Ok(())
        } else {
            Err(format!("number out of range at byte {}", span.start))
        }
    }

    /// A member's name and its `:`, skipped.
    fn member_name(&mut self) -> Result<(), String> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        self.string()?;
        self.expect(b':')
    }

    #[cold]
    #[inline(never)]
    fn expected_separator(&self, close: u8) -> String {
        self.error(&format!("expected `,` or `{}`", close as char))
    }

    fn literal(&mut self, word: &'static str, value: Scalar) -> Result<Scalar, String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    /// A number, checked against the JSON grammar: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<Scalar, String> {
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
            return Err(self.error("malformed number"));
        }
        let mut integer = true;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.error("malformed number"));
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
                return Err(self.error("malformed number"));
            }
        }
        self.pos = i;
        Ok(Scalar::Number { text: Span { start, end: i, escaped: false }, integer })
    }

    /// The string at the cursor, validated; its span.
    fn string(&mut self) -> Result<Span, String> {
        self.expect(b'"')?;
        let bytes = self.bytes();
        let start = self.pos;
        let end = plain_run(&bytes[start..]).map_or(bytes.len(), |run| start + run);
        self.pos = end;
        match bytes.get(end) {
            Some(b'"') => {
                self.pos += 1;
                Ok(Span { start, end, escaped: false })
            }
            Some(b'\\') => {
                self.check_escaped_rest()?;
                Ok(Span { start, end: self.pos - 1, escaped: true })
            }
            Some(_) => Err(self.error("control character in a string")),
            None => Err(self.error("unterminated string")),
        }
    }

    /// Checks the rest of a string that holds escapes without unescaping it (most such strings
    /// are only skipped; [`Scanner::text`] unescapes the few that are read). The cursor is at a
    /// backslash; it ends after the closing quote.
    fn check_escaped_rest(&mut self) -> Result<(), String> {
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
                        _ => return Err(self.error("invalid escape in a string")),
                    }
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
            let rest = &self.bytes()[self.pos..];
            self.pos += plain_run(rest).unwrap_or(rest.len());
        }
    }

    /// The rest of a string that holds escapes; the cursor is at its first backslash.
    fn escaped_string(&mut self, start: usize) -> Result<String, String> {
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
                        _ => return Err(self.error("invalid escape in a string")),
                    }
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or_else(|| self.error("short \\u escape"))?;
        // from_str_radix alone would also take a leading `+`.
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("invalid \\u escape"));
        }
        let value = u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(value)
    }

    /// The character of a `\uXXXX` escape (the cursor after the `u`), joining surrogate pairs.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.text[self.pos..].starts_with("\\u") {
                    return Err(self.error("unpaired surrogate in a \\u escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("unpaired surrogate in a \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("unpaired surrogate in a \\u escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }
}

#[cfg(test)]
mod tests;
