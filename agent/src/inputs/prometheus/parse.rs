//! The parser of the text exposition format (version 0.0.4): [`parse_text`] and its
//! [`ParseError`].

use super::TYPE_TAG;
use crate::event::{FieldValue, MetricPoint};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::SystemTime;

/// Longest excerpt of an offending line quoted in a [`ParseError`].
const EXCERPT_CHARS: usize = 120;

/// A Prometheus metric type, from a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    fn parse(token: &str) -> Option<MetricType> {
        match token {
            "counter" => Some(MetricType::Counter),
            "gauge" => Some(MetricType::Gauge),
            "histogram" => Some(MetricType::Histogram),
            "summary" => Some(MetricType::Summary),
            "untyped" => Some(MetricType::Untyped),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }
}

/// A malformed exposition text: the (1-based) line and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub(super) line: usize,
    pub(super) message: String,
}

impl ParseError {
    /// The 1-based number of the offending line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// What was wrong, with an excerpt of the line.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Parses a text exposition (format 0.0.4) into one point per sample line; see the module docs
/// for the mapping. Samples without a timestamp are stamped `scraped_at`. Any malformed line
/// fails the whole text.
pub fn parse_text(body: &str, scraped_at: SystemTime) -> Result<Vec<MetricPoint>, ParseError> {
    let mut types: HashMap<&str, MetricType> = HashMap::new();
    let mut points = Vec::new();
    for (index, raw) in body.split('\n').enumerate() {
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        let mut line = Line { text, pos: 0, number: index + 1 };
        line.skip_blanks();
        match line.peek() {
            None => {}
            Some(b'#') => line.comment(&mut types)?,
            Some(_) => points.push(line.sample(&types, scraped_at)?),
        }
    }
    Ok(points)
}

/// The family name, type and field name of a sample named `name`.
fn family<'a>(name: &'a str, types: &HashMap<&str, MetricType>) -> (&'a str, MetricType, &'static str) {
    if let Some(&declared) = types.get(name) {
        return (name, declared, "value");
    }
    const SUFFIXES: [(&str, &str, bool); 3] =
        [("_bucket", "bucket", false), ("_sum", "sum", true), ("_count", "count", true)];
    for (suffix, field, summaries_too) in SUFFIXES {
        let Some(base) = name.strip_suffix(suffix) else { continue };
        match types.get(base) {
            Some(&MetricType::Histogram) => return (base, MetricType::Histogram, field),
            Some(&MetricType::Summary) if summaries_too => return (base, MetricType::Summary, field),
            _ => {}
        }
    }
    (name, MetricType::Untyped, "value")
}

/// One line of exposition text being parsed. Every delimiter is ASCII, so each position the
/// parser slices at is a character boundary.
struct Line<'a> {
    text: &'a str,
    pos: usize,
    number: usize,
}

impl<'a> Line<'a> {
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

    fn error(&self, what: impl fmt::Display) -> ParseError {
        let mut excerpt: String = self.text.chars().take(EXCERPT_CHARS).collect();
        if excerpt.len() < self.text.len() {
            excerpt.push('…');
        }
        ParseError { line: self.number, message: format!("{what} in `{excerpt}`") }
    }

    fn expected(&self, what: impl fmt::Display) -> ParseError {
        self.error(format_args!("expected {what}, found {}", self.found()))
    }

    /// A line starting with `#`: `# HELP`, `# TYPE` or a plain comment.
    fn comment(&mut self, types: &mut HashMap<&'a str, MetricType>) -> Result<(), ParseError> {
        self.pos += 1;
        self.skip_blanks();
        let keyword = self.token();
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(());
        }
        self.skip_blanks();
        if self.at_end() {
            // `# HELP` with nothing after it names nothing: a plain comment, as in Prometheus.
            return Ok(());
        }
        let Some(name) = self.metric_name() else {
            return Err(self.expected(format_args!("a metric name after `# {keyword}`")));
        };
        if !self.at_end() && !matches!(self.peek(), Some(b' ' | b'\t')) {
            return Err(self.expected(format_args!("a blank after the metric name `{name}`")));
        }
        if keyword == "HELP" {
            // The docstring has no place in the records, so its escapes are not even decoded.
            return Ok(());
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
        if types.insert(name, metric_type).is_some() {
            return Err(self.error(format_args!("a second TYPE line for `{name}`")));
        }
        Ok(())
    }

    /// A sample line: `name{label="value",…} value [timestamp_ms]`.
    fn sample(&mut self, types: &HashMap<&str, MetricType>, scraped_at: SystemTime) -> Result<MetricPoint, ParseError> {
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
        let mut timestamp = scraped_at;
        if !self.at_end() {
            let token = self.token();
            let Ok(millis) = token.parse::<i64>() else {
                return Err(self.error(format_args!(
                    "expected a timestamp (integer milliseconds since the epoch), found `{token}`"
                )));
            };
            // Bounded by chrono's range: formatting the record's @timestamp must not fail later.
            let Some(at) = chrono::DateTime::from_timestamp_millis(millis) else {
                return Err(self.error(format_args!("the timestamp `{token}` is out of range")));
            };
            timestamp = SystemTime::from(at);
            self.skip_blanks();
            if !self.at_end() {
                return Err(self.expected("the end of the line after the timestamp"));
            }
        }

        let (family_name, metric_type, field) = family(name, types);
        let mut tags: BTreeMap<String, String> = labels
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(label, value)| (label.to_string(), value))
            .collect();
        tags.insert(TYPE_TAG.to_string(), metric_type.as_str().to_string());
        let mut fields = BTreeMap::new();
        fields.insert(field.to_string(), FieldValue::Float(value));
        Ok(MetricPoint { name: family_name.to_string(), tags, fields, timestamp })
    }
}

#[cfg(test)]
mod tests;
