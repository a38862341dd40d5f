//! The Prometheus text exposition format (version 0.0.4), read: [`samples`] yields every sample
//! line with its family, type and part, or an error naming a malformed line; [`parse`] takes all
//! of them or the first error. Shared by the agent's scrape input (all or nothing), `millrace top`
//! and the demo (which skip malformed lines).
//!
//! Families: a sample belongs to a family when a `# TYPE` line declared its exact name earlier;
//! otherwise `<family>_bucket` belongs to a histogram `<family>`, and `<family>_sum` /
//! `<family>_count` to a histogram or summary `<family>`. Any other sample is its own family,
//! untyped (`# TYPE` declared later does not apply retroactively).
//!
//! Syntax: tokens are separated by blanks or tabs, a line may end in `\r\n`, a trailing comma in
//! a label set is allowed, values use `f64` syntax (`NaN`, `+Inf`, `-Inf`, exponents; Go's
//! hexadecimal floats are not accepted), timestamps are integer milliseconds. As in Prometheus,
//! an unknown escape in a label value (`\d`) is kept verbatim, backslash included. `# HELP` text
//! is not decoded; comments other than `# HELP` and `# TYPE` are ignored. A second `# TYPE` line
//! for a name is an error. Quoted UTF-8 metric names (Prometheus 3) are not supported.

mod line;

use line::{Entry, Line};
use std::collections::HashMap;
use std::time::SystemTime;

#[cfg(test)]
mod tests;

/// A Prometheus metric type, from a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
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

    /// The type as a `# TYPE` line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }
}

/// Which part of its family a sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A counter, gauge or untyped value, or a summary quantile.
    Value,
    /// A histogram's cumulative count of the `le` bucket (`_bucket`).
    Bucket,
    /// A histogram's or summary's `_sum`.
    Sum,
    /// A histogram's or summary's `_count`.
    Count,
}

impl Part {
    /// `value`, `bucket`, `sum` or `count`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Value => "value",
            Part::Bucket => "bucket",
            Part::Sum => "sum",
            Part::Count => "count",
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The metric name as written.
    pub name: &'a str,
    /// The family it belongs to (see the module docs).
    pub family: &'a str,
    pub metric_type: MetricType,
    pub part: Part,
    /// Labels in the order written, values unescaped (empty ones included).
    pub labels: Vec<(&'a str, String)>,
    pub value: f64,
    /// The sample's own timestamp, when the line has one.
    pub timestamp: Option<SystemTime>,
}

impl Sample<'_> {
    /// The value of the label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(label, _)| *label == name).map(|(_, value)| value.as_str())
    }
}

/// A malformed exposition text: the (1-based) line and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    line: usize,
    message: String,
}

impl ParseError {
    /// An error at the 1-based line `line`.
    pub fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError { line, message: message.into() }
    }

    /// The 1-based number of the offending line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// What was wrong, with an excerpt of the line.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Every sample of `body`, in order, or the first error.
pub fn parse(body: &str) -> Result<Vec<Sample<'_>>, ParseError> {
    samples(body).collect()
}

/// The samples of `body`, one item per sample line or malformed line; reading on after an error
/// skips just that line.
pub fn samples(body: &str) -> Samples<'_> {
    Samples { lines: body.split('\n').enumerate(), types: HashMap::new() }
}

/// The iterator of [`samples`]; it remembers the `# TYPE` lines seen so far.
pub struct Samples<'a> {
    lines: std::iter::Enumerate<std::str::Split<'a, char>>,
    types: HashMap<&'a str, MetricType>,
}

impl<'a> Iterator for Samples<'a> {
    type Item = Result<Sample<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        for (index, raw) in self.lines.by_ref() {
            let text = raw.strip_suffix('\r').unwrap_or(raw);
            match Line::new(text, index + 1).entry() {
                Ok(Entry::Nothing) => {}
                Ok(Entry::Type { name, metric_type, line }) => {
                    if self.types.insert(name, metric_type).is_some() {
                        return Some(Err(line.error(format_args!("a second TYPE line for `{name}`"))));
                    }
                }
                Ok(Entry::Sample { name, labels, value, timestamp }) => {
                    let (family, metric_type, part) = family(name, &self.types);
                    return Some(Ok(Sample { name, family, metric_type, part, labels, value, timestamp }));
                }
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }
}

/// The family name, type and part of a sample named `name`.
fn family<'a>(name: &'a str, types: &HashMap<&str, MetricType>) -> (&'a str, MetricType, Part) {
    if let Some(&declared) = types.get(name) {
        return (name, declared, Part::Value);
    }
    const SUFFIXES: [(&str, Part, bool); 3] =
        [("_bucket", Part::Bucket, false), ("_sum", Part::Sum, true), ("_count", Part::Count, true)];
    for (suffix, part, summaries_too) in SUFFIXES {
        let Some(base) = name.strip_suffix(suffix) else { continue };
        match types.get(base) {
            Some(&MetricType::Histogram) => return (base, MetricType::Histogram, part),
            Some(&MetricType::Summary) if summaries_too => return (base, MetricType::Summary, part),
            _ => {}
        }
    }
    (name, MetricType::Untyped, Part::Value)
}
