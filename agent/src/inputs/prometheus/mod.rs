//! Prometheus scrape input: fetches `/metrics` endpoints over HTTP or HTTPS (a private CA, a
//! client certificate, a bearer token or basic authentication, as Prometheus' `scrape_config`
//! has them) and turns the text exposition format (version 0.0.4) into [`MetricPoint`]s.
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
//! The parser is the millrace-prometheus-text crate's, shared with `millrace top` and the demo.
//! Syntax follows the exposition format: tokens are separated by blanks or tabs, a line may end
//! in `\r\n`, a trailing comma in a label set is allowed, values use `f64` syntax (`NaN`, `+Inf`,
//! `-Inf`, exponents; Go's hexadecimal floats are not accepted), timestamps are integers. As in
//! Prometheus, an unknown escape in a label value (`\d`) is kept verbatim, backslash included.
//! `# HELP` text is not carried into the records (they have no place for it); comments other than
//! `# HELP` and `# TYPE` are ignored. A second `# TYPE` line for a name is an error. Quoted UTF-8
//! metric names (Prometheus 3) are not supported: the `Accept` header asks for 0.0.4, under which
//! exporters escape such names.
//!
//! [`MetricPoint`]: crate::event::MetricPoint

#[cfg(test)]
mod fixtures;
mod parse;
mod scrape;

pub use parse::{parse_text, ParseError};
pub use scrape::{ScrapeAuth, ScrapeError, ScrapeErrorKind, Scraper, ScraperBuildError};

use std::time::Duration;

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
