//! A strict, allocation-free pull reader of JSON for the metric records the InfluxDB sink turns
//! into points. It reads only what a point needs: keys, strings (borrowed unless they hold
//! escapes), numbers as their original text (so a float is written back exactly as the agent
//! wrote it, without a parse and a reformat), literals; everything else is validated and skipped.
//! A general JSON parser builds every object as a map first, which was most of the sink's CPU.

use std::borrow::Cow;

/// How deep skipped values may nest; deeper input is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// A scalar, or a note that a composite value was skipped.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// A string, unescaped.
    Text(Cow<'a, str>),
    /// A number as written: `integer` when it has no fraction and no exponent.
    Number { text: &'a str, integer: bool },
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

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

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

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
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
    pub fn next_key(&mut self, object: &mut Object) -> Result<Option<Cow<'a, str>>, String> {
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
    pub fn value(&mut self) -> Result<Scalar<'a>, String> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Scalar<'a>, String> {
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
                        _ => return Err(self.error(&format!("expected `,` or `{}`", close as char))),
                    }
                }
            }
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("unexpected end of the record")),
        }
    }

    fn literal(&mut self, word: &'static str, value: Scalar<'a>) -> Result<Scalar<'a>, String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    /// A number, checked against the JSON grammar: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<Scalar<'a>, String> {
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
        Ok(Scalar::Number { text: &self.text[start..i], integer })
    }

    /// A string at the cursor, borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.expect(b'"')?;
        let start = self.pos;
        let rest = &self.bytes()[start..];
        let Some(end) = memchr::memchr2(b'"', b'\\', rest) else {
            self.pos = self.text.len();
            return Err(self.error("unterminated string"));
        };
        if let Some(control) = rest[..end].iter().position(|b| *b < 0x20) {
            self.pos = start + control;
            return Err(self.error("control character in a string"));
        }
        self.pos = start + end;
        if rest[end] == b'"' {
            self.pos += 1;
            Ok(Cow::Borrowed(&self.text[start..start + end]))
        } else {
            self.escaped_string(start).map(Cow::Owned)
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
        let ours = Scanner::new(json.as_bytes()).and_then(|mut s| {
            let v = s.value()?;
            s.finish()?;
            Ok(v)
        });
        let theirs: Result<serde_json::Value, _> = serde_json::from_str(json);
        match (ours, theirs) {
            (Ok(Scalar::Text(a)), Ok(serde_json::Value::String(b))) => assert_eq!(a, b, "{json}"),
            (Ok(Scalar::Number { text, integer }), Ok(serde_json::Value::Number(n))) => {
                // serde_json reads `-0` as a float (it keeps the sign); as an integer it is 0.
                assert_eq!(integer, n.is_i64() || n.is_u64() || text == "-0", "{json}");
                assert_eq!(text.parse::<f64>().unwrap(), n.as_f64().unwrap(), "{json}");
            }
            (Ok(Scalar::Bool(a)), Ok(serde_json::Value::Bool(b))) => assert_eq!(a, b),
            (Ok(Scalar::Null), Ok(serde_json::Value::Null)) => {}
            (Ok(Scalar::Composite), Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {}
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
    fn objects_are_read_key_by_key() {
        let mut s = Scanner::new(br#"{"a":1, "b\n":{"x":[true]}, "c":"v"}"#).unwrap();
        let mut o = s.begin_object().unwrap();
        assert_eq!(s.next_key(&mut o).unwrap().unwrap(), "a");
        assert_eq!(s.value().unwrap(), Scalar::Number { text: "1", integer: true });
        assert_eq!(s.next_key(&mut o).unwrap().unwrap(), "b\n");
        assert!(s.at_object());
        assert_eq!(s.value().unwrap(), Scalar::Composite);
        assert_eq!(s.next_key(&mut o).unwrap().unwrap(), "c");
        assert_eq!(s.value().unwrap(), Scalar::Text("v".into()));
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
