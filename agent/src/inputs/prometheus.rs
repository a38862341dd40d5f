//! Prometheus scrape input: fetches `/metrics` endpoints over plain HTTP and turns the text
//! exposition format (version 0.0.4) into [`MetricPoint`]s.
//!
//! # Record mapping (part of record format version 1; sinks depend on it)
//!
//! Every sample line becomes exactly one point; nothing is merged across lines, so the mapping
//! is the same whatever order an exporter writes its lines in.
//!
//! * `name` is the metric family name. A sample belongs to a family when a `# TYPE` line declared
//!   its exact name; otherwise, `<family>_bucket` belongs to a histogram `<family>`, and
//!   `<family>_sum` / `<family>_count` to a histogram or summary `<family>`. Any other sample is
//!   its own family, untyped (`# TYPE` declared later in the text does not apply retroactively).
//! * `tags` are the sample's labels, unescaped, plus `prometheus.type` = `counter`, `gauge`,
//!   `histogram`, `summary` or `untyped`. A histogram's `le` and a summary's `quantile` stay tags.
//!   Labels with an empty value are left out: Prometheus treats them as absent. No Prometheus
//!   label can contain a `.`, so the `prometheus.*` tags never collide with an exporter's labels.
//! * `fields` hold one Float field. Its name is the family suffix of the sample without the
//!   underscore — `bucket` (cumulative count of the `le` bucket), `sum` or `count` — and `value`
//!   otherwise (counters, gauges, untyped samples, summary quantiles). All values are Floats, even
//!   counts, so that a field never changes type between scrapes (InfluxDB refuses that). `NaN`
//!   and `±Inf` are kept in the point; JSON cannot hold them, so they reach the broker as `null`.
//! * `timestamp` is the sample's own timestamp (milliseconds since the epoch) when the line has
//!   one, the time the scrape started otherwise.
//!
//! For example, the histogram
//!
//! ```text
//! # TYPE http_request_duration_seconds histogram
//! http_request_duration_seconds_bucket{handler="/api",le="0.1"} 33444
//! http_request_duration_seconds_bucket{handler="/api",le="+Inf"} 144320
//! http_request_duration_seconds_sum{handler="/api"} 53423
//! http_request_duration_seconds_count{handler="/api"} 144320
//! ```
//!
//! gives four points named `http_request_duration_seconds`, all tagged `handler=/api` and
//! `prometheus.type=histogram`: two with `le` tags and a `bucket` field, one with a `sum` field
//! and one with a `count` field (sinks that merge fields by series and time, such as InfluxDB,
//! join the last two).
//!
//! [`Scraper::scrape`] adds a `prometheus.url` tag (the scraped URL, password redacted) to every
//! sample point, as Prometheus adds `instance`, and appends one point describing the scrape
//! itself: `prometheus_scrape`, tag `url`, fields `up` (Int 1), `duration_ms` (Float) and
//! `samples` (Int, the number of sample points). A failed scrape returns a [`ScrapeError`] whose
//! [`ScrapeError::status_point`] is the same point with `up` = 0 and `samples` = 0, so a dead
//! endpoint is visible as data.
//!
//! # Errors
//!
//! As in Prometheus, a scrape is all or nothing: one malformed line fails the whole scrape with a
//! [`ParseError`] naming the line, and no sample of it is shipped. Half a scrape would look like
//! series disappearing and reappearing, which is worse than a visible `up` = 0.
//!
//! Syntax follows the exposition format: tokens are separated by blanks or tabs, a line may end
//! in `\r\n`, a trailing comma in a label set is allowed, values use `f64` syntax (`NaN`, `+Inf`,
//! `-Inf`, exponents; Go's hexadecimal floats are not accepted), timestamps are integers. As in
//! Prometheus, an unknown escape in a label value (`\d`) is kept verbatim, backslash included.
//! `# HELP` text is not carried into the records (they have no place for it); comments other than
//! `# HELP` and `# TYPE` are ignored. A second `# TYPE` line for a name is an error. Quoted UTF-8
//! metric names (Prometheus 3) are not supported: the `Accept` header asks for 0.0.4, under which
//! exporters escape such names.

use crate::event::{FieldValue, MetricPoint};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

/// Tag holding the Prometheus metric type of a sample.
pub const TYPE_TAG: &str = "prometheus.type";
/// Tag holding the scraped URL on every sample point.
pub const URL_TAG: &str = "prometheus.url";
/// Name of the point describing each scrape.
pub const SCRAPE_MEASUREMENT: &str = "prometheus_scrape";
/// Default limit on a response body: larger bodies fail the scrape.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Default limit on a whole scrape (connect, request, response body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the scraper asks for: only the text format is parsed.
const ACCEPT: &str = "text/plain;version=0.0.4";
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
    line: usize,
    message: String,
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

/// The HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client of the Prometheus scraper: {source}")]
pub struct ScraperBuildError {
    source: reqwest::Error,
}

/// Why a scrape failed; see [`ScrapeError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeErrorKind {
    /// The URL does not parse.
    #[error("invalid URL: {reason}")]
    InvalidUrl {
        /// Why.
        reason: String,
    },
    /// Only `http://` is supported: the agent is built without TLS.
    #[error("unsupported scheme `{scheme}`: only http:// is supported (the agent is built without TLS)")]
    UnsupportedScheme {
        /// The URL's scheme.
        scheme: String,
    },
    /// No connection could be made (refused, unreachable, name not resolved).
    #[error("cannot connect: {detail}")]
    Connect {
        /// The underlying error, e.g. `Connection refused (os error 111)`.
        detail: String,
    },
    /// The scrape (connect, request and whole body) took longer than the timeout.
    #[error("no complete response within {timeout:?}")]
    Timeout {
        /// The scraper's timeout.
        timeout: Duration,
    },
    /// The endpoint answered with a status outside 200–299.
    #[error("HTTP status {status}")]
    Status {
        /// The status received.
        status: reqwest::StatusCode,
    },
    /// The body is larger than the scraper's limit (it is not read past the limit).
    #[error("the response body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The scraper's limit, in bytes.
        limit: u64,
    },
    /// The body is not valid exposition text.
    #[error("{0}")]
    Parse(ParseError),
    /// Any other HTTP failure (connection reset, malformed response, redirect loop…).
    #[error("{detail}")]
    Http {
        /// The underlying error chain.
        detail: String,
    },
}

/// A failed scrape: the URL (password redacted), why, and when and how long it took.
#[derive(Debug, thiserror::Error)]
#[error("scraping {url}: {kind}")]
pub struct ScrapeError {
    url: String,
    kind: ScrapeErrorKind,
    started_at: SystemTime,
    duration: Duration,
}

impl ScrapeError {
    /// The URL that was scraped, with any password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Why the scrape failed.
    pub fn kind(&self) -> &ScrapeErrorKind {
        &self.kind
    }

    /// The `prometheus_scrape` point of this failed scrape: `up` = 0, `samples` = 0.
    pub fn status_point(&self) -> MetricPoint {
        status_point(&self.url, self.started_at, self.duration, false, 0)
    }
}

/// Scrapes Prometheus endpoints over plain HTTP. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Scraper {
    client: reqwest::Client,
    timeout: Duration,
    max_body_bytes: u64,
}

impl Scraper {
    /// A scraper whose scrapes (connect, request and body) each take at most `timeout` and whose
    /// response bodies may be at most `max_body_bytes` long (see [`DEFAULT_TIMEOUT`] and
    /// [`DEFAULT_MAX_BODY_BYTES`]).
    ///
    /// Proxy environment variables (`HTTP_PROXY`…) are ignored: targets are scraped directly, as
    /// Prometheus does. Redirects are followed (up to 10).
    pub fn new(timeout: Duration, max_body_bytes: u64) -> Result<Scraper, ScraperBuildError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .user_agent(concat!("millrace-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ScraperBuildError { source })?;
        Ok(Scraper { client, timeout, max_body_bytes })
    }

    /// Scrapes `url` once. On success: one point per sample (see the module docs), each tagged
    /// `prometheus.url`, followed by the `prometheus_scrape` point with `up` = 1. On failure the
    /// error's [`ScrapeError::status_point`] is the `up` = 0 point to ship instead.
    pub async fn scrape(&self, url: &str) -> Result<Vec<MetricPoint>, ScrapeError> {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let result = self.fetch(url, started_at).await;
        let duration = clock.elapsed();
        let shown = redact(url);
        match result {
            Ok(mut points) => {
                let samples = points.len();
                for point in &mut points {
                    point.tags.insert(URL_TAG.to_string(), shown.clone());
                }
                tracing::debug!(url = %shown, samples, duration_ms = duration.as_millis(), "scraped");
                points.push(status_point(&shown, started_at, duration, true, samples));
                Ok(points)
            }
            Err(kind) => Err(ScrapeError { url: shown, kind, started_at, duration }),
        }
    }

    async fn fetch(&self, url: &str, started_at: SystemTime) -> Result<Vec<MetricPoint>, ScrapeErrorKind> {
        let parsed = reqwest::Url::parse(url).map_err(|e| ScrapeErrorKind::InvalidUrl { reason: e.to_string() })?;
        if parsed.scheme() != "http" {
            return Err(ScrapeErrorKind::UnsupportedScheme { scheme: parsed.scheme().to_string() });
        }
        let mut response = self
            .client
            .get(parsed)
            .header(reqwest::header::ACCEPT, ACCEPT)
            .send()
            .await
            .map_err(|e| self.http_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ScrapeErrorKind::Status { status });
        }
        // A declared length over the limit fails before anything is read; otherwise the body is
        // read chunk by chunk and given up on as soon as the limit is passed.
        if response.content_length().is_some_and(|len| len > self.max_body_bytes) {
            return Err(ScrapeErrorKind::BodyTooLarge { limit: self.max_body_bytes });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.http_error(e))? {
            let len = u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX);
            if len > self.max_body_bytes {
                return Err(ScrapeErrorKind::BodyTooLarge { limit: self.max_body_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        let text = match String::from_utf8(body) {
            Ok(text) => text,
            Err(e) => {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
                return Err(ScrapeErrorKind::Parse(ParseError {
                    line,
                    message: "expected UTF-8 text, found an invalid byte sequence".to_string(),
                }));
            }
        };
        parse_text(&text, started_at).map_err(ScrapeErrorKind::Parse)
    }

    fn http_error(&self, error: reqwest::Error) -> ScrapeErrorKind {
        // Checked first: a connect that times out is a timeout, not a refusal.
        if error.is_timeout() {
            return ScrapeErrorKind::Timeout { timeout: self.timeout };
        }
        // reqwest's own message is generic ("error sending request"); the cause is deeper.
        let error = error.without_url();
        if error.is_connect() {
            let mut root: &dyn std::error::Error = &error;
            while let Some(source) = root.source() {
                root = source;
            }
            return ScrapeErrorKind::Connect { detail: root.to_string() };
        }
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        ScrapeErrorKind::Http { detail }
    }
}

/// The `prometheus_scrape` point.
fn status_point(url: &str, at: SystemTime, duration: Duration, up: bool, samples: usize) -> MetricPoint {
    MetricPoint::new(SCRAPE_MEASUREMENT, at)
        .tag("url", url)
        .field("up", FieldValue::Int(i64::from(up)))
        .field("duration_ms", FieldValue::Float(duration.as_secs_f64() * 1000.0))
        .field("samples", FieldValue::Int(i64::try_from(samples).unwrap_or(i64::MAX)))
}

/// `url` as it may be shown in records and logs: a password in it (reqwest sends it as basic
/// auth) is replaced by `***`. Anything else is left exactly as configured.
fn redact(url: &str) -> String {
    if let Ok(mut parsed) = reqwest::Url::parse(url) {
        if parsed.password().is_some() && parsed.set_password(Some("***")).is_ok() {
            return parsed.to_string();
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::time::UNIX_EPOCH;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const NODE_EXPORTER: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 2.58225604e+06
node_cpu_seconds_total{cpu="0",mode="user"} 49087.43
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.21

# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 4.2098450432E10
# HELP node_textfile_scrape_error 1 if there was an error opening or reading a file, 0 otherwise
# TYPE node_textfile_scrape_error gauge
node_textfile_scrape_error{file="C:\\metrics\\backup.prom",error="cannot read \"backup.prom\":\nno such file"} 1
# HELP http_request_duration_seconds Request latency.\nBuckets in seconds; a \\ backslash and "quotes" {braces}.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/api",le="0.05"} 24054
http_request_duration_seconds_bucket{handler="/api",le="0.1"} 33444
http_request_duration_seconds_bucket{handler="/api",le="+Inf"} 144320
http_request_duration_seconds_sum{handler="/api"} 53423
http_request_duration_seconds_count{handler="/api"} 144320
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 1.9e-05
go_gc_duration_seconds{quantile="0.5"} 3.5e-05
go_gc_duration_seconds{quantile="1"} NaN
go_gc_duration_seconds_sum 0.173
go_gc_duration_seconds_count 4217
# A comment that is neither HELP nor TYPE.
#
node_scrape_collector_success{collector="cpu"} 1
node_time_seconds +Inf 1795431600123
node_boot_time_delta -Inf -1000
"#;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn float(point: &MetricPoint, field: &str) -> f64 {
        match point.fields.get(field) {
            Some(FieldValue::Float(f)) => *f,
            other => panic!("field {field} of {point:?} is {other:?}"),
        }
    }

    #[test]
    fn parses_a_node_exporter_like_text() {
        let scraped_at = at(1_795_431_000_000);
        let points = parse_text(NODE_EXPORTER, scraped_at).unwrap();
        assert_eq!(points.len(), 18);
        assert!(points.iter().all(|p| p.fields.len() == 1));

        let cpu = &points[0];
        assert_eq!(cpu.name, "node_cpu_seconds_total");
        assert_eq!(cpu.tags, tags(&[("cpu", "0"), ("mode", "idle"), ("prometheus.type", "counter")]));
        assert_eq!(float(cpu, "value"), 2_582_256.04);
        assert_eq!(cpu.timestamp, scraped_at);

        let load = &points[2];
        assert_eq!((load.name.as_str(), float(load, "value")), ("node_load1", 0.21));
        assert_eq!(load.tags, tags(&[("prometheus.type", "gauge")]));
        assert_eq!(float(&points[3], "value"), 42_098_450_432.0);

        let escaped = &points[4];
        assert_eq!(escaped.tags["file"], r"C:\metrics\backup.prom");
        assert_eq!(escaped.tags["error"], "cannot read \"backup.prom\":\nno such file");

        let buckets = &points[5..8];
        for bucket in buckets {
            assert_eq!(bucket.name, "http_request_duration_seconds");
            assert_eq!(bucket.tags["prometheus.type"], "histogram");
            assert_eq!(bucket.tags["handler"], "/api");
        }
        assert_eq!((buckets[0].tags["le"].as_str(), float(&buckets[0], "bucket")), ("0.05", 24054.0));
        assert_eq!((buckets[2].tags["le"].as_str(), float(&buckets[2], "bucket")), ("+Inf", 144_320.0));
        let (sum, count) = (&points[8], &points[9]);
        assert_eq!((sum.name.as_str(), float(sum, "sum")), ("http_request_duration_seconds", 53423.0));
        assert_eq!((count.name.as_str(), float(count, "count")), ("http_request_duration_seconds", 144_320.0));
        assert_eq!(sum.tags, tags(&[("handler", "/api"), ("prometheus.type", "histogram")]));

        let quantiles = &points[10..13];
        for q in quantiles {
            assert_eq!((q.name.as_str(), q.tags["prometheus.type"].as_str()), ("go_gc_duration_seconds", "summary"));
        }
        assert_eq!((quantiles[1].tags["quantile"].as_str(), float(&quantiles[1], "value")), ("0.5", 3.5e-5));
        assert!(float(&quantiles[2], "value").is_nan());
        assert_eq!(float(&points[13], "sum"), 0.173);
        assert_eq!(float(&points[14], "count"), 4217.0);
        assert_eq!(points[14].name, "go_gc_duration_seconds");

        let untyped = &points[15];
        assert_eq!(untyped.tags, tags(&[("collector", "cpu"), ("prometheus.type", "untyped")]));
        let inf = &points[16];
        assert_eq!(float(inf, "value"), f64::INFINITY);
        assert_eq!(inf.timestamp, at(1_795_431_600_123));
        let neg = &points[17];
        assert_eq!(float(neg, "value"), f64::NEG_INFINITY);
        assert_eq!(neg.timestamp, UNIX_EPOCH - Duration::from_secs(1));

        // Non-finite values become null in the record; the point itself is still shipped.
        let doc = serde_json::Value::Object(quantiles[2].to_document());
        assert_eq!(doc["fields"]["value"], serde_json::Value::Null);
        assert_eq!(doc["tags"]["prometheus.type"], "summary");
    }

    #[test]
    fn family_resolution_prefers_declared_names_and_needs_a_type() {
        let text = "\
# TYPE rpc summary
# TYPE rpc_count gauge
rpc_count 3
rpc_sum 7.5
rpc_bucket{le=\"1\"} 2
jobs_sum 4
# TYPE h histogram
h 1
";
        let points = parse_text(text, at(0)).unwrap();
        let summary: Vec<_> = points.iter().map(|p| (p.name.as_str(), p.tags[TYPE_TAG].as_str())).collect();
        assert_eq!(
            summary,
            [
                ("rpc_count", "gauge"),
                ("rpc", "summary"),
                ("rpc_bucket", "untyped"),
                ("jobs_sum", "untyped"),
                ("h", "histogram")
            ]
        );
        assert_eq!(float(&points[1], "sum"), 7.5);
        assert_eq!(float(&points[3], "value"), 4.0);
        assert_eq!(float(&points[4], "value"), 1.0);
    }

    #[test]
    fn tolerates_the_loose_corners_of_the_format() {
        let text = "  \t\r\n\
            spaced \t { a = \"1\" ,\tb=\"x\", } \t 1.5e3 \t 1000 \r\n\
            empty{} 2\n\
            blank_value{a=\"\",b=\"kept\"} 3\n\
            unknown_escape{path=\"C:\\dir\\file\",uni=\"h\u{e9}llo \\\u{e9}\"} .5\n\
            nan_lower{} nan\n\
            plus{} +7\n\
            #a comment without a blank\n\
            # TYPEX not_a_type_line with words\n\
            # HELP\n\
            # TYPE\n\
            # HELP help_only\n\
            last 4";
        let points = parse_text(text, at(5)).unwrap();
        assert_eq!(points.len(), 7);
        assert_eq!(points[0].name, "spaced");
        assert_eq!(points[0].tags, tags(&[("a", "1"), ("b", "x"), (TYPE_TAG, "untyped")]));
        assert_eq!(float(&points[0], "value"), 1500.0);
        assert_eq!(points[0].timestamp, at(1000));
        assert_eq!(points[1].tags, tags(&[(TYPE_TAG, "untyped")]));
        assert_eq!(points[2].tags, tags(&[("b", "kept"), (TYPE_TAG, "untyped")]));
        assert_eq!(points[3].tags["path"], r"C:\dir\file");
        assert_eq!(points[3].tags["uni"], "h\u{e9}llo \\\u{e9}");
        assert!(float(&points[4], "value").is_nan());
        assert_eq!(float(&points[5], "value"), 7.0);
        assert_eq!((points[6].name.as_str(), points[6].timestamp), ("last", at(5)));
        assert_eq!(parse_text("", at(0)).unwrap(), []);
        assert_eq!(parse_text("# only comments\n\n", at(0)).unwrap(), []);
    }

    #[test]
    fn malformed_lines_fail_the_whole_text_naming_the_line() {
        let cases: &[(&str, &str)] = &[
            ("foo{a=\"b\" 1", "expected `,` or `}` after the value of the label `a`, found `1`"),
            ("foo{a=b} 1", "expected `\"` opening the value of the label `a`, found `b`"),
            ("foo{a=\"b} 1", "expected `\"` closing the value of the label `a`, found the end of the line"),
            ("foo{a=\"b\\", "closing the value of the label `a`"),
            ("foo{a:\"b\"} 1", "expected `=` after the label name `a`, found `:`"),
            ("foo{1a=\"x\"} 1", "expected a label name or `}`, found `1`"),
            ("foo{a=\"1\",a=\"2\"} 1", "the label `a` appears twice"),
            ("foo", "expected a sample value after `foo`, found the end of the line"),
            ("foo{a=\"1\"}", "expected a sample value after `foo`"),
            ("foo bar", "expected a sample value (a number, NaN, +Inf or -Inf), found `bar`"),
            ("foo 0x1p3", "found `0x1p3`"),
            ("foo 1 12.5", "expected a timestamp (integer milliseconds since the epoch), found `12.5`"),
            ("foo 1 2 3", "expected the end of the line after the timestamp, found `3`"),
            ("foo 1 9223372036854775807", "the timestamp `9223372036854775807` is out of range"),
            ("1foo 1", "expected a metric name or `#`, found `1`"),
            ("{a=\"b\"} 1", "expected a metric name or `#`, found `{`"),
            (
                "# TYPE foo gauges",
                "expected a metric type (counter, gauge, histogram, summary or untyped), found `gauges`",
            ),
            ("# TYPE foo", "expected a metric type (counter, gauge, histogram, summary or untyped) after `foo`"),
            ("# TYPE foo gauge extra", "expected the end of the line after the type `gauge`, found `e`"),
            ("# TYPE foo gauge\n# TYPE foo counter", "a second TYPE line for `foo`"),
            ("# TYPE 9foo gauge", "expected a metric name after `# TYPE`, found `9`"),
            ("# HELP foo{x} help", "expected a blank after the metric name `foo`, found `{`"),
        ];
        for (text, message) in cases {
            let body = format!("# HELP ok Fine.\nok 1\n{text}\nafter 2\n");
            let error = parse_text(&body, at(0)).unwrap_err();
            let expected_line = if text.contains('\n') { 4 } else { 3 };
            assert_eq!(error.line(), expected_line, "{text:?}: {error}");
            assert!(error.message().contains(message), "{text:?}: {error}");
            assert!(error.to_string().starts_with(&format!("line {expected_line}: ")), "{error}");
        }
        let long = format!("foo{{a=\"{}", "x".repeat(500));
        let error = parse_text(&long, at(0)).unwrap_err();
        assert!(error.message().ends_with("xxx…`"), "{error}");
        assert!(error.message().len() < 300, "{error}");
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact("http://10.0.0.7:9100/metrics"), "http://10.0.0.7:9100/metrics");
        assert_eq!(redact("http://scraper:s3cret@10.0.0.7:9100/metrics"), "http://scraper:***@10.0.0.7:9100/metrics");
        assert_eq!(redact("not a url"), "not a url");
    }

    /// What the test server answers on a path.
    async fn respond(stream: &mut TcpStream, path: &str, accept: &str) -> std::io::Result<()> {
        let head = |status: &str, extra: &str| {
            format!("HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n{extra}\r\n")
        };
        match path {
            "/metrics" if accept == ACCEPT => {
                let response = format!(
                    "{}{NODE_EXPORTER}",
                    head("200 OK", &format!("Content-Length: {}\r\n", NODE_EXPORTER.len()))
                );
                stream.write_all(response.as_bytes()).await
            }
            "/metrics" => stream.write_all(head("406 Not Acceptable", "Content-Length: 0\r\n").as_bytes()).await,
            "/fail" => {
                stream
                    .write_all(format!("{}boom", head("500 Internal Server Error", "Content-Length: 4\r\n")).as_bytes())
                    .await
            }
            "/huge-declared" => {
                stream.write_all(head("200 OK", "Content-Length: 1000000\r\n").as_bytes()).await?;
                stream.write_all(&vec![b'#'; 1_000_000]).await
            }
            "/huge-streamed" => {
                // No Content-Length: the body ends when the connection closes, so only counting
                // while reading can stop it.
                stream.write_all(head("200 OK", "").as_bytes()).await?;
                let line = "node_load1 0.21\n".repeat(512);
                for _ in 0..128 {
                    stream.write_all(line.as_bytes()).await?;
                }
                Ok(())
            }
            "/bad" => {
                let body = "# TYPE up gauge\nup 1\nup{job=\"x} 1\n";
                stream
                    .write_all(
                        format!("{}{body}", head("200 OK", &format!("Content-Length: {}\r\n", body.len()))).as_bytes(),
                    )
                    .await
            }
            "/latin1" => {
                let body = b"ok 1\nname{city=\"S\xe3o Paulo\"} 1\n";
                stream.write_all(head("200 OK", &format!("Content-Length: {}\r\n", body.len())).as_bytes()).await?;
                stream.write_all(body).await
            }
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            }
            _ => stream.write_all(head("404 Not Found", "Content-Length: 0\r\n").as_bytes()).await,
        }
    }

    /// A tiny HTTP/1.1 server on 127.0.0.1, one request per connection.
    async fn serve() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&request).into_owned();
                    let path = request.split(' ').nth(1).unwrap_or("").to_string();
                    let accept = request
                        .lines()
                        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("accept")))
                        .map(|(_, v)| v.trim().to_string())
                        .unwrap_or_default();
                    // The client hanging up on an oversized body is expected.
                    let _ = respond(&mut stream, &path, &accept).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        addr
    }

    fn scraper() -> Scraper {
        Scraper::new(Duration::from_secs(5), 64 * 1024).unwrap()
    }

    fn assert_status(point: &MetricPoint, url: &str, up: i64, samples: i64) {
        assert_eq!(point.name, SCRAPE_MEASUREMENT);
        assert_eq!(point.tags, tags(&[("url", url)]));
        assert_eq!(point.fields["up"], FieldValue::Int(up));
        assert_eq!(point.fields["samples"], FieldValue::Int(samples));
        assert!(matches!(point.fields["duration_ms"], FieldValue::Float(ms) if ms >= 0.0), "{point:?}");
    }

    #[tokio::test]
    async fn scrapes_an_endpoint_end_to_end() {
        let addr = serve().await;
        let url = format!("http://{addr}/metrics");
        let before = SystemTime::now();
        let points = scraper().scrape(&url).await.unwrap();
        assert_eq!(points.len(), 19);
        let (status, samples) = points.split_last().unwrap();
        assert_status(status, &url, 1, 18);
        assert!(status.timestamp >= before);
        // The samples are exactly what the parser makes of the body, plus the URL tag (compared
        // as Debug text because NaN != NaN).
        let mut expected = parse_text(NODE_EXPORTER, status.timestamp).unwrap();
        for point in &mut expected {
            point.tags.insert(URL_TAG.to_string(), url.clone());
        }
        assert_eq!(format!("{samples:?}"), format!("{expected:?}"));
    }

    #[tokio::test]
    async fn failed_scrapes_name_the_url_and_yield_a_down_point() {
        let addr = serve().await;
        let scraper = scraper();

        let url = format!("http://{addr}/fail");
        let error = scraper.scrape(&url).await.unwrap_err();
        assert!(matches!(error.kind(), ScrapeErrorKind::Status { status } if status.as_u16() == 500), "{error}");
        assert_eq!(error.to_string(), format!("scraping {url}: HTTP status 500 Internal Server Error"));
        assert_status(&error.status_point(), &url, 0, 0);

        for path in ["/huge-declared", "/huge-streamed"] {
            let url = format!("http://{addr}{path}");
            let error = scraper.scrape(&url).await.unwrap_err();
            assert!(matches!(error.kind(), ScrapeErrorKind::BodyTooLarge { limit: 65536 }), "{error}");
            assert_eq!(
                error.to_string(),
                format!("scraping {url}: the response body is larger than the limit of 65536 bytes")
            );
            assert_status(&error.status_point(), &url, 0, 0);
        }

        let url = format!("http://{addr}/bad");
        let error = scraper.scrape(&url).await.unwrap_err();
        let ScrapeErrorKind::Parse(parse) = error.kind() else { panic!("{error}") };
        assert_eq!(parse.line(), 3, "{error}");
        assert!(error.to_string().starts_with(&format!("scraping {url}: line 3: expected `\"` closing")), "{error}");

        let url = format!("http://{addr}/latin1");
        let error = scraper.scrape(&url).await.unwrap_err();
        let ScrapeErrorKind::Parse(parse) = error.kind() else { panic!("{error}") };
        assert_eq!(parse.line(), 2, "{error}");
        assert!(error.to_string().contains("expected UTF-8 text"), "{error}");

        let url = format!("http://scraper:s3cret@{addr}/fail");
        let error = scraper.scrape(&url).await.unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert_eq!(error.status_point().tags["url"], format!("http://scraper:***@{addr}/fail"));
    }

    #[tokio::test]
    async fn connection_failures_timeouts_and_bad_urls_name_the_url() {
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let url = format!("http://{closed}/metrics");
        let error = scraper().scrape(&url).await.unwrap_err();
        assert!(matches!(error.kind(), ScrapeErrorKind::Connect { .. }), "{error}");
        assert!(error.to_string().starts_with(&format!("scraping {url}: cannot connect: ")), "{error}");
        assert!(error.to_string().to_lowercase().contains("refused"), "{error}");
        assert_status(&error.status_point(), &url, 0, 0);

        let addr = serve().await;
        let url = format!("http://{addr}/slow");
        let impatient = Scraper::new(Duration::from_millis(300), DEFAULT_MAX_BODY_BYTES).unwrap();
        let error = impatient.scrape(&url).await.unwrap_err();
        assert!(matches!(error.kind(), ScrapeErrorKind::Timeout { .. }), "{error}");
        assert_eq!(error.to_string(), format!("scraping {url}: no complete response within 300ms"));
        assert!(matches!(error.status_point().fields["duration_ms"], FieldValue::Float(ms) if ms >= 300.0));

        let error = scraper().scrape("https://10.0.0.7:9100/metrics").await.unwrap_err();
        assert!(matches!(error.kind(), ScrapeErrorKind::UnsupportedScheme { .. }), "{error}");
        assert!(error.to_string().starts_with("scraping https://10.0.0.7:9100/metrics: unsupported scheme `https`"));
        let error = scraper().scrape("10.0.0.7:9100").await.unwrap_err();
        assert!(matches!(error.kind(), ScrapeErrorKind::InvalidUrl { .. } | ScrapeErrorKind::UnsupportedScheme { .. }));
        assert!(error.to_string().starts_with("scraping 10.0.0.7:9100: "), "{error}");
    }
}
