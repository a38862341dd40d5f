//! The HTTP scraper: [`Scraper`] fetches an endpoint, has its body parsed and adds the
//! `prometheus_scrape` point; [`ScrapeError`] says why a scrape failed.

use super::parse::{parse_text, ParseError};
use super::{SCRAPE_MEASUREMENT, URL_TAG};
use crate::event::{FieldValue, MetricPoint};
use millrace_config::http_client::ClientTls;
use millrace_config::secret::{redact_url, Secret};
use std::time::{Duration, Instant, SystemTime};

/// What the scraper asks for: only the text format is parsed.
const ACCEPT: &str = "text/plain;version=0.0.4";

/// The HTTP client could not be set up (a TLS file that cannot be used, most likely).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client of the Prometheus scraper: {reason}")]
pub struct ScraperBuildError {
    reason: String,
}

/// The credentials a scrape request carries (Prometheus' `bearer_token` or `basic_auth`).
#[derive(Debug, Clone, Default)]
pub enum ScrapeAuth {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
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
    /// Only `http://` and `https://` are scraped.
    #[error("unsupported scheme `{scheme}`: only http:// and https:// are supported")]
    UnsupportedScheme {
        /// The URL's scheme.
        scheme: String,
    },
    /// No connection could be made (refused, unreachable, name not resolved, TLS handshake or
    /// certificate refused).
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

/// Scrapes Prometheus endpoints over HTTP or HTTPS. Cheap to clone (the connection pool is
/// shared).
#[derive(Debug, Clone)]
pub struct Scraper {
    client: reqwest::Client,
    timeout: Duration,
    max_body_bytes: u64,
    auth: ScrapeAuth,
}

impl Scraper {
    /// A scraper whose scrapes (connect, request and body) each take at most `timeout` and whose
    /// response bodies may be at most `max_body_bytes` long (see [`DEFAULT_TIMEOUT`] and
    /// [`DEFAULT_MAX_BODY_BYTES`]).
    ///
    /// Proxy environment variables (`HTTP_PROXY`…) are ignored: targets are scraped directly, as
    /// Prometheus does. Redirects are followed (up to 10).
    ///
    /// [`DEFAULT_TIMEOUT`]: super::DEFAULT_TIMEOUT
    /// [`DEFAULT_MAX_BODY_BYTES`]: super::DEFAULT_MAX_BODY_BYTES
    pub fn new(timeout: Duration, max_body_bytes: u64) -> Result<Scraper, ScraperBuildError> {
        Scraper::with_security(timeout, max_body_bytes, &ClientTls::default(), ScrapeAuth::None)
    }

    /// [`Scraper::new`] for endpoints that need TLS settings (`https://` with a private CA, a
    /// client certificate) or credentials, which every request then carries.
    pub fn with_security(
        timeout: Duration,
        max_body_bytes: u64,
        tls: &ClientTls,
        auth: ScrapeAuth,
    ) -> Result<Scraper, ScraperBuildError> {
        let client = millrace_http_client::builder(tls)
            .map_err(|e| ScraperBuildError { reason: e.to_string() })?
            .timeout(timeout)
            .no_proxy()
            .user_agent(concat!("millrace-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ScraperBuildError { reason: millrace_http_client::describe(&e) })?;
        Ok(Scraper { client, timeout, max_body_bytes, auth })
    }

    /// Scrapes `url` once. On success: one point per sample (see the module docs), each tagged
    /// `prometheus.url`, followed by the `prometheus_scrape` point with `up` = 1. On failure the
    /// error's [`ScrapeError::status_point`] is the `up` = 0 point to ship instead.
    pub async fn scrape(&self, url: &str) -> Result<Vec<MetricPoint>, ScrapeError> {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let result = self.fetch(url, started_at).await;
        let duration = clock.elapsed();
        let shown = redact_url(url);
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
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ScrapeErrorKind::UnsupportedScheme { scheme: parsed.scheme().to_string() });
        }
        let request = self.client.get(parsed).header(reqwest::header::ACCEPT, ACCEPT);
        let request = match &self.auth {
            ScrapeAuth::None => request,
            ScrapeAuth::Bearer(token) => request.bearer_auth(token.expose()),
            ScrapeAuth::Basic { username, password } => request.basic_auth(username, Some(password.expose())),
        };
        let mut response = request.send().await.map_err(|e| self.http_error(e))?;
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
                return Err(ScrapeErrorKind::Parse(ParseError::new(
                    line,
                    "expected UTF-8 text, found an invalid byte sequence",
                )));
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
        ScrapeErrorKind::Http { detail: millrace_http_client::describe(&error) }
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

#[cfg(test)]
mod tests;
