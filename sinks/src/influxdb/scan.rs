//! A strict, allocation-free pull reader of JSON for the metric records the InfluxDB sink turns
//! into points. It reads only what a point needs: keys, strings (borrowed unless they hold
//! escapes), numbers as their original text (so a float is written back exactly as the agent
//! wrote it, without a parse and a reformat), literals; everything else is validated and skipped.
//! A general JSON parser builds every object as a map first, which was most of the sink's CPU.

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
                self.escaped_string(start)?;
                Ok(Span { start, end: self.pos - 1, escaped: true })
            }
            Some(_) => Err(self.error("control character in a string")),
            None => Err(self.error("unterminated string")),
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Reads one value with the scanner and checks it against serde_json's reading of the same
    /// text (or that both refuse it).
    fn agrees_with_serde(json: &str) {
        let scanner = Scanner::new(json.as_bytes());
        let ours = scanner.and_then(|mut s| {
            let v = s.value()?;
            s.finish()?;
            Ok(match v {
                Scalar::Text(span) => Err(s.text(span).into_owned()),
                other => Ok(other),
            })
        });
        let theirs: Result<serde_json::Value, _> = serde_json::from_str(json);
        match (ours, theirs) {
            (Ok(Err(a)), Ok(serde_json::Value::String(b))) => assert_eq!(a, b, "{json}"),
            (Ok(Ok(Scalar::Number { text, integer })), Ok(serde_json::Value::Number(n))) => {
                let text = Scanner::new(json.as_bytes()).unwrap().text(text).into_owned();
                // serde_json reads `-0` as a float (it keeps the sign); as an integer it is 0.
                assert_eq!(integer, n.is_i64() || n.is_u64() || text == "-0", "{json}");
                assert_eq!(text.parse::<f64>().unwrap(), n.as_f64().unwrap(), "{json}");
            }
            (Ok(Ok(Scalar::Bool(a))), Ok(serde_json::Value::Bool(b))) => assert_eq!(a, b),
            (Ok(Ok(Scalar::Null)), Ok(serde_json::Value::Null)) => {}
            (Ok(Ok(Scalar::Composite)), Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {}
            (Err(_), Err(_)) => {}
            (ours, theirs) => panic!("{json}: scanner {ours:?}, serde_json {theirs:?}"),
        }
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        for json in [
            r#""plain""#,
            r#""tab\there \"quoted\" back\\slash \/ \b\f\n\r""#,
            r#""\u00e9t\u00E9 \ud83d\ude00 mixed é""#,
            r#""""#,
            "0",
            "-0",
            "12345678901234567890",
            "-9223372036854775808",
            "1.5",
            "-0.25e-3",
            "6.02E+23",
            "true",
            "false",
            "null",
            "  \n {\"a\": [1, {\"b\": null}, \"x\"], \"c\": {}} ",
            "[]",
            // Refused by both:
            "01",
            "1.",
            ".5",
            "1e",
            "+1",
            "-",
            "tru",
            "nul",
            r#""unterminated"#,
            r#""bad \x escape""#,
            r#""\ud83d alone""#,
            r#""\ude00 alone""#,
            r#""\u12G4""#,
            "\"raw\u{1}control\"",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{1:2}",
            "{\"a\":1} trailing",
            "",
        ] {
            agrees_with_serde(json);
        }
    }

    #[test]
    fn plain_runs_end_where_a_byte_by_byte_search_ends_them() {
        let naive = |b: &[u8]| b.iter().position(|&c| c < 0x20 || c == b'"' || c == b'\\');
        let alphabet = [b'a', b'"', b'\\', 0x1f, 0x20, 0x00, 0x7f, 0x80, 0xc3, 0xa9, 0xff, b'!', b'#', b'[', b']'];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain bytes, as in real strings.
                        if seed.is_multiple_of(8) {
                            alphabet[(seed >> 8) as usize % alphabet.len()]
                        } else {
                            b'a' + (seed >> 16) as u8 % 26
                        }
                    })
                    .collect();
                assert_eq!(plain_run(&bytes), naive(&bytes), "{bytes:?}");
            }
        }
    }

    #[test]
    fn objects_are_read_key_by_key() {
        let mut s = Scanner::new(br#"{"a":1, "b\n":{"x":[true]}, "c":"v"}"#).unwrap();
        let mut o = s.begin_object().unwrap();
        let key = |s: &mut Scanner<'_>, o: &mut Object| s.next_key(o).unwrap().map(|k| s.text(k).into_owned());
        assert_eq!(key(&mut s, &mut o).unwrap(), "a");
        let Scalar::Number { text, integer: true } = s.value().unwrap() else { panic!("not an integer") };
        assert_eq!(s.text(text), "1");
        assert_eq!(key(&mut s, &mut o).unwrap(), "b\n");
        assert!(s.at_object());
        assert_eq!(s.value().unwrap(), Scalar::Composite);
        assert_eq!(key(&mut s, &mut o).unwrap(), "c");
        let Scalar::Text(v) = s.value().unwrap() else { panic!("not a string") };
        assert_eq!(s.text(v), "v");
        assert_eq!(s.next_key(&mut o).unwrap(), None);
        s.finish().unwrap();

        let mut empty = Scanner::new(b" { } ").unwrap();
        let mut o = empty.begin_object().unwrap();
        assert_eq!(empty.next_key(&mut o).unwrap(), None);
        empty.finish().unwrap();

        for bad in [&br#"{"a":1 "b":2}"#[..], br#"{,"a":1}"#, br#"{"a":1,}"#] {
            let mut s = Scanner::new(bad).unwrap();
            let mut o = s.begin_object().unwrap();
            let outcome = (|| {
                while s.next_key(&mut o)?.is_some() {
                    s.value()?;
                }
                Ok::<_, String>(())
            })();
            assert!(outcome.is_err(), "{}", String::from_utf8_lossy(bad));
        }

        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(Scanner::new(deep.as_bytes()).unwrap().value().unwrap_err().contains("deeply"));
        assert!(Scanner::new(b"\xff").is_err());
    }
}
