//! One line of exposition text: a cursor over it that reads a comment, a `# TYPE` declaration or
//! a sample, and the errors naming what was expected where.

use super::{MetricType, ParseError};
use std::fmt;
use std::time::SystemTime;

/// Longest excerpt of an offending line quoted in a [`ParseError`].
const EXCERPT_CHARS: usize = 120;

/// What a line holds.
pub(crate) enum Entry<'a> {
    /// A blank line or a comment.
    Nothing,
    /// `# TYPE name type`; the line, to report a second declaration.
    Type { name: &'a str, metric_type: MetricType, line: Line<'a> },
    /// `name{label="value",…} value [timestamp_ms]`.
    Sample { name: &'a str, labels: Vec<(&'a str, String)>, value: f64, timestamp: Option<SystemTime> },
}

/// A line being parsed. Every delimiter is ASCII, so each position the parser slices at is a
/// character boundary.
pub(crate) struct Line<'a> {
    text: &'a str,
    pos: usize,
    number: usize,
}

impl<'a> Line<'a> {
    /// The line `text` (without its line break), numbered from 1.
    pub(crate) fn new(text: &'a str, number: usize) -> Line<'a> {
        Line { text, pos: 0, number }
    }

    /// Reads the whole line.
    pub(crate) fn entry(mut self) -> Result<Entry<'a>, ParseError> {
        self.skip_blanks();
        match self.peek() {
            None => Ok(Entry::Nothing),
            Some(b'#') => self.comment(),
            Some(_) => self.sample(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        if matched {
            self.pos += 1;
        }
        matched
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// Everything up to the next blank or the end of the line.
    fn token(&mut self) -> &'a str {
        self.take_while(|b| b != b' ' && b != b'\t')
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, or `None` (nothing consumed).
    fn metric_name(&mut self) -> Option<&'a str> {
        if !self.peek().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':') {
            return None;
        }
        Some(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, or `None` (nothing consumed).
    fn label_name(&mut self) -> Option<&'a str> {
        if !self.peek().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') {
            return None;
        }
        Some(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_'))
    }

    /// The rest of a quoted label value (the opening quote is consumed), unescaped; `None` when
    /// the line ends first.
    fn label_value(&mut self) -> Option<String> {
        let mut value = String::new();
        let mut start = self.pos;
        loop {
            match self.peek()? {
                b'"' => {
                    value.push_str(&self.text[start..self.pos]);
                    self.pos += 1;
                    return Some(value);
                }
                b'\\' => {
                    value.push_str(&self.text[start..self.pos]);
                    self.pos += 1;
                    let escaped = self.text[self.pos..].chars().next()?;
                    self.pos += escaped.len_utf8();
                    match escaped {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        // Prometheus keeps unknown escapes as written (Windows paths, mostly).
                        other => {
                            value.push('\\');
                            value.push(other);
                        }
                    }
                    start = self.pos;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// What is at the current position, for error messages.
    fn found(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "the end of the line".to_string(),
            Some(c) => format!("`{c}`"),
        }
    }

    /// An error on this line, quoting an excerpt of it.
    pub(crate) fn error(&self, what: impl fmt::Display) -> ParseError {
        let mut excerpt: String = self.text.chars().take(EXCERPT_CHARS).collect();
        if excerpt.len() < self.text.len() {
            excerpt.push('…');
        }
        ParseError::new(self.number, format!("{what} in `{excerpt}`"))
    }

    fn expected(&self, what: impl fmt::Display) -> ParseError {
        self.error(format_args!("expected {what}, found {}", self.found()))
    }

    /// A line starting with `#`: `# HELP`, `# TYPE` or a plain comment.
    fn comment(mut self) -> Result<Entry<'a>, ParseError> {
        self.pos += 1;
        self.skip_blanks();
        let keyword = self.token();
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(Entry::Nothing);
        }
        self.skip_blanks();
        if self.at_end() {
            // `# HELP` with nothing after it names nothing: a plain comment, as in Prometheus.
            return Ok(Entry::Nothing);
        }
        let Some(name) = self.metric_name() else {
            return Err(self.expected(format_args!("a metric name after `# {keyword}`")));
        };
        if !self.at_end() && !matches!(self.peek(), Some(b' ' | b'\t')) {
            return Err(self.expected(format_args!("a blank after the metric name `{name}`")));
        }
        if keyword == "HELP" {
            // The docstring is used by no reader, so its escapes are not even decoded.
            return Ok(Entry::Nothing);
        }
        self.skip_blanks();
        let type_token = self.token();
        if type_token.is_empty() {
            return Err(self.expected(format_args!(
                "a metric type (counter, gauge, histogram, summary or untyped) after `{name}`"
            )));
        }
        let Some(metric_type) = MetricType::parse(type_token) else {
            return Err(self.error(format_args!(
                "expected a metric type (counter, gauge, histogram, summary or untyped), found `{type_token}`"
            )));
        };
        self.skip_blanks();
        if !self.at_end() {
            return Err(self.expected(format_args!("the end of the line after the type `{type_token}`")));
        }
        Ok(Entry::Type { name, metric_type, line: self })
    }

    /// A sample line: `name{label="value",…} value [timestamp_ms]`.
    fn sample(mut self) -> Result<Entry<'a>, ParseError> {
        let Some(name) = self.metric_name() else {
            return Err(self.expected("a metric name or `#`"));
        };
        self.skip_blanks();
        let mut labels: Vec<(&str, String)> = Vec::new();
        if self.eat(b'{') {
            loop {
                self.skip_blanks();
                if self.eat(b'}') {
                    break;
                }
                let Some(label) = self.label_name() else {
                    return Err(self.expected("a label name or `}`"));
                };
                self.skip_blanks();
                if !self.eat(b'=') {
                    return Err(self.expected(format_args!("`=` after the label name `{label}`")));
                }
                self.skip_blanks();
                if !self.eat(b'"') {
                    return Err(self.expected(format_args!("`\"` opening the value of the label `{label}`")));
                }
                let Some(value) = self.label_value() else {
                    return Err(self.expected(format_args!("`\"` closing the value of the label `{label}`")));
                };
                if labels.iter().any(|(seen, _)| *seen == label) {
                    return Err(self.error(format_args!("the label `{label}` appears twice")));
                }
                labels.push((label, value));
                self.skip_blanks();
                if self.eat(b'}') {
                    break;
                }
                if !self.eat(b',') {
                    return Err(self.expected(format_args!("`,` or `}}` after the value of the label `{label}`")));
                }
            }
            self.skip_blanks();
        }
        let value_token = self.token();
        if value_token.is_empty() {
            return Err(self.expected(format_args!("a sample value after `{name}`")));
        }
        let Ok(value) = value_token.parse::<f64>() else {
            return Err(self
                .error(format_args!("expected a sample value (a number, NaN, +Inf or -Inf), found `{value_token}`")));
        };
        self.skip_blanks();
        let mut timestamp = None;
        if !self.at_end() {
            let token = self.token();
            let Ok(millis) = token.parse::<i64>() else {
                return Err(self.error(format_args!(
                    "expected a timestamp (integer milliseconds since the epoch), found `{token}`"
                )));
            };
            // Bounded by chrono's range, so that formatting the time later cannot fail.
            let Some(at) = chrono::DateTime::from_timestamp_millis(millis) else {
                return Err(self.error(format_args!("the timestamp `{token}` is out of range")));
            };
            timestamp = Some(SystemTime::from(at));
            self.skip_blanks();
            if !self.at_end() {
                return Err(self.expected("the end of the line after the timestamp"));
            }
        }
        Ok(Entry::Sample { name, labels, value, timestamp })
    }
}
