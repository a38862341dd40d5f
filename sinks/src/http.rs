//! The HTTP request shell the Elasticsearch and InfluxDB destinations share: one POST per write
//! with authentication and an optional gzip body, a response body read only up to a cap, failures
//! quoted with an excerpt, and a request refused for something inside it written again in halves
//! until the culprits stand alone. Each destination supplies only what differs, as an [`HttpApi`]:
//! where the request goes, its body, and how to read the answer. The client speaks HTTPS with
//! the destination's `tls` settings; credentials never appear in what it reports.

use crate::destination::{Verdict, WriteFailure};
use millrace_config::http_client::ClientTls;
use millrace_config::secret::{redact_urls, Secret};
use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

/// Parses an HTTP `Retry-After` given in seconds (the form InfluxDB and proxies send).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(|s| Duration::from_secs(s.min(300)))
}

/// gzip-compresses a request body.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Most bytes of a destination's response read for the request itself; a batch's answer may add
/// [`RESPONSE_BYTES_PER_ITEM`] per record (an Elasticsearch bulk answer lists every item).
pub const RESPONSE_BASE_BYTES: usize = 4 << 20;
/// Room per record in a response, on top of [`RESPONSE_BASE_BYTES`]: an Elasticsearch item
/// result is a few hundred bytes, with an error reason around a kilobyte.
pub const RESPONSE_BYTES_PER_ITEM: usize = 2 << 10;
/// Bytes of a response body quoted in logs and dead-letter reasons.
pub const EXCERPT_BYTES: usize = 300;

/// The largest response body accepted for a write of `items` records.
pub fn response_limit(items: usize) -> usize {
    RESPONSE_BASE_BYTES.saturating_add(items.saturating_mul(RESPONSE_BYTES_PER_ITEM))
}

/// A response body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Longer than the limit: the rest was not read (the connection is dropped).
    #[error("the response body is larger than {limit} bytes; not read further")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection failed while reading.
    #[error("reading the response: {0}")]
    Read(String),
}

/// Reads `response`'s body, giving up as soon as it passes `limit` bytes: a destination (or a
/// proxy in front of it) answering with an endless body must not grow the sink's memory.
pub async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::Read(describe_reqwest(&e)))? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of a response body for a log line or an error reason: at most `max` bytes of it,
/// trimmed, cut at a character boundary (never inside a multi-byte character), `…` when cut.
pub fn excerpt(body: &[u8], max: usize) -> String {
    // A few bytes past `max` so a character straddling it is seen whole (and then left out).
    let head = &body[..body.len().min(max.saturating_add(4))];
    let text = String::from_utf8_lossy(head);
    let text = text.trim();
    if text.len() <= max && head.len() == body.len() {
        return text.to_string();
    }
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", text[..cut].trim_end())
}

/// A reqwest error with its cause chain (the top level alone says little), passwords in URLs
/// redacted.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    millrace_http_client::describe(e)
}

/// Where one request goes.
pub struct Target<'a> {
    /// The URL posted to.
    pub url: Cow<'a, str>,
    /// Put before every failure's reason (`<prefix>: …`): which of several nodes failed.
    pub prefix: Option<&'a str>,
}

/// What a response means, as its destination reads it.
#[derive(Debug)]
pub enum Reading {
    /// The write went through: one verdict per record, or why the answer cannot be read (then
    /// the whole write is retried).
    Verdicts(Result<Vec<Verdict>, String>),
    /// Refused for something inside the request (too large, one bad record): its halves are
    /// written separately, and a record refused alone is rejected with `lone`, or else with the
    /// status and an excerpt of the answer.
    Split {
        /// The reason a lone record is rejected, when the answer's own text is not the reason.
        lone: Option<&'static str>,
    },
    /// Anything else: the write failed as a whole and is retried, honouring `Retry-After`.
    Failed,
}

/// The parts of an HTTP write that differ between destinations.
pub trait HttpApi: Send + Sync {
    /// Where the next request goes (called once per request: several nodes can take turns).
    fn target(&self) -> Target<'_>;
    /// The request body for `items`.
    fn body(&self, items: &[&[u8]]) -> Vec<u8>;
    /// The largest answer read for a write of `items` records; past it the write is retried.
    fn response_limit(&self, items: usize) -> usize;
    /// What the answer with `status` and `body` to a write of `items` records means.
    fn read(&self, status: u16, body: &[u8], items: usize) -> Reading;
}

/// How requests authenticate (secrets shown as `***` by `Debug`).
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
    /// An `Authorization` header with this value (`ApiKey …`, `Token …`).
    Header(Secret),
}

/// The request shell: one reqwest client, the body's media type, gzip and credentials.
pub struct HttpWriter {
    client: reqwest::Client,
    content_type: &'static str,
    gzip: bool,
    auth: Auth,
}

impl HttpWriter {
    /// A writer whose requests give up after `timeout`, over TLS as `tls` says for `https://`.
    pub fn new(
        timeout: Duration,
        content_type: &'static str,
        gzip: bool,
        auth: Auth,
        tls: &ClientTls,
    ) -> Result<HttpWriter, String> {
        let client = millrace_http_client::builder(tls)
            .map_err(|e| e.to_string())?
            .timeout(timeout)
            .build()
            .map_err(|e| format!("creating the HTTP client: {}", describe_reqwest(&e)))?;
        Ok(HttpWriter { client, content_type, gzip, auth })
    }

    /// Writes `items` through `api`, splitting on the refusals it names; one verdict per record.
    pub async fn write<A: HttpApi>(&self, api: &A, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        in_halves(items, |part| self.attempt(api, part)).await
    }

    /// One request for `items`.
    async fn attempt<A: HttpApi>(&self, api: &A, items: &[&[u8]]) -> Result<Attempt, WriteFailure> {
        let target = api.target();
        let failure = |reason: String, retry_after| {
            let reason = match target.prefix {
                Some(prefix) => format!("{prefix}: {reason}"),
                None => reason,
            };
            WriteFailure { reason: redact_urls(&reason), retry_after }
        };
        let body = api.body(items);
        let mut request =
            self.client.post(target.url.as_ref()).header(reqwest::header::CONTENT_TYPE, self.content_type);
        request = if self.gzip {
            request.header(reqwest::header::CONTENT_ENCODING, "gzip").body(gzip(&body))
        } else {
            request.body(body)
        };
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
            Auth::Header(value) => {
                let mut value = reqwest::header::HeaderValue::from_str(value.expose())
                    .map_err(|_| failure("the API key or token holds characters a header cannot".into(), None))?;
                // Kept out of reqwest's and hyper's Debug output.
                value.set_sensitive(true);
                request.header(reqwest::header::AUTHORIZATION, value)
            }
        };
        let response = request.send().await.map_err(|e| failure(describe_reqwest(&e), None))?;
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        // An answer past the destination's limit (a proxy's page, an endless body) is refused
        // unread and the write retried, like any failed request.
        let body = read_body(response, api.response_limit(items.len()))
            .await
            .map_err(|e| failure(format!("HTTP {status}: {e}"), wait))?;
        let quoted = || format!("HTTP {status}: {}", excerpt(&body, EXCERPT_BYTES));
        match api.read(status, &body, items.len()) {
            // An unreadable answer is no reason to wait longer than the backoff.
            Reading::Verdicts(verdicts) => verdicts.map(Attempt::Verdicts).map_err(|e| failure(e, None)),
            Reading::Split { lone: Some(reason) } => Ok(Attempt::Refused(reason.to_string())),
            Reading::Split { lone: None } => Ok(Attempt::Refused(quoted())),
            // Credentials refused: said first, so the log line tells what to fix.
            Reading::Failed if matches!(status, 401 | 403) => {
                Err(failure(format!("credentials refused ({}), {}", auth_hint(&self.auth), quoted()), wait))
            }
            Reading::Failed => Err(failure(quoted(), wait)),
        }
    }
}

/// Which credentials a refusal is about.
fn auth_hint(auth: &Auth) -> &'static str {
    match auth {
        Auth::None => "none are configured",
        Auth::Basic { .. } => "check username and password",
        Auth::Header(_) => "check the API key or token",
    }
}

/// How one request of a possibly split write ended.
#[derive(Debug)]
pub enum Attempt {
    /// One verdict per record sent.
    Verdicts(Vec<Verdict>),
    /// Refused for something inside it; a lone record is rejected with this reason.
    Refused(String),
}

/// Writes `items` with `attempt`, writing each refused part again in halves (left before right)
/// until the refused records stand alone and are rejected; verdicts come back in the records'
/// order. A part that fails as a whole fails the write: all of it is retried by the caller.
pub async fn in_halves<'a, T, F, Fut>(items: &'a [T], mut attempt: F) -> Result<Vec<Verdict>, WriteFailure>
where
    F: FnMut(&'a [T]) -> Fut,
    Fut: Future<Output = Result<Attempt, WriteFailure>>,
{
    let mut verdicts = Vec::with_capacity(items.len());
    // Parts still to write, the next one last.
    let mut parts = vec![items];
    while let Some(part) = parts.pop() {
        match attempt(part).await? {
            Attempt::Verdicts(answered) => verdicts.extend(answered),
            Attempt::Refused(reason) if part.len() == 1 => verdicts.push(Verdict::Reject(reason)),
            // Nothing to split or to answer for.
            Attempt::Refused(_) if part.is_empty() => {}
            Attempt::Refused(_) => {
                let (left, right) = part.split_at(part.len() / 2);
                parts.push(right);
                parts.push(left);
            }
        }
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn excerpt_never_cuts_inside_a_character() {
        // 299 ASCII bytes, then a two-byte character at bytes 299 and 300: cut before it.
        let body = format!("{}é{}", "x".repeat(299), "y".repeat(50));
        let cut = excerpt(body.as_bytes(), EXCERPT_BYTES);
        assert_eq!(cut, format!("{}…", "x".repeat(299)));
        // Four-byte characters all the way: the cut lands on a boundary below the limit.
        let emoji = "🦀".repeat(200);
        let cut = excerpt(emoji.as_bytes(), EXCERPT_BYTES);
        assert_eq!(cut, format!("{}…", "🦀".repeat(75)));
        // Every cut position of a mixed text, including the limit inside each character.
        let mixed = "aé€🦀".repeat(40);
        for max in 0..mixed.len() + 2 {
            let cut = excerpt(mixed.as_bytes(), max);
            assert!(cut.trim_end_matches('…').len() <= max, "{max}: {cut}");
        }
    }

    #[test]
    fn excerpt_keeps_short_bodies_and_survives_invalid_utf8() {
        assert_eq!(excerpt(b"  database not found\n", EXCERPT_BYTES), "database not found");
        assert_eq!(excerpt(b"", EXCERPT_BYTES), "");
        let mut bytes = vec![b'a'; 298];
        bytes.extend_from_slice(&[0xe2, 0x82]); // a character cut short by the destination
        bytes.extend_from_slice(&[0xff; 20]);
        let cut = excerpt(&bytes, EXCERPT_BYTES);
        assert!(cut.starts_with(&"a".repeat(298)) && cut.ends_with('…') && cut.len() <= EXCERPT_BYTES + 3, "{cut}");
    }

    #[test]
    fn response_limit_grows_with_the_batch() {
        assert_eq!(response_limit(0), RESPONSE_BASE_BYTES);
        assert_eq!(response_limit(1000), RESPONSE_BASE_BYTES + 1000 * RESPONSE_BYTES_PER_ITEM);
        assert_eq!(response_limit(usize::MAX), usize::MAX);
    }

    #[test]
    fn retry_after_reads_seconds_and_caps_them() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, " 7 ".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(reqwest::header::RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(300)));
        // The HTTP-date form is not honoured: the backoff decides.
        headers.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = b"cpu,host=h1 v=1 1\n".repeat(100);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&body)[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, body);
    }

    /// A destination that refuses every request holding a record in `bad` (as InfluxDB answers
    /// 400 for a batch with one unwritable point) and accepts the others; the parts it was sent
    /// are kept in order.
    async fn refusing(items: &[u32], bad: &[u32]) -> (Result<Vec<Verdict>, WriteFailure>, Vec<Vec<u32>>) {
        let sent = Mutex::new(Vec::new());
        let result = in_halves(items, |part: &[u32]| {
            sent.lock().unwrap().push(part.to_vec());
            let refused = part.iter().any(|i| bad.contains(i));
            async move {
                if refused {
                    Ok(Attempt::Refused(format!("HTTP 400: bad {:?}", part)))
                } else {
                    Ok(Attempt::Verdicts(vec![Verdict::Accepted; part.len()]))
                }
            }
        })
        .await;
        (result, sent.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_refused_write_is_split_until_the_culprits_stand_alone() {
        let (verdicts, sent) = refusing(&[0, 1, 2, 3, 4, 5, 6, 7], &[2, 7]).await;
        let verdicts = verdicts.unwrap();
        let mut expected = vec![Verdict::Accepted; 8];
        expected[2] = Verdict::Reject("HTTP 400: bad [2]".into());
        expected[7] = Verdict::Reject("HTTP 400: bad [7]".into());
        assert_eq!(verdicts, expected, "one verdict per record, in the records' order");
        // Depth first, left half before right: the order the recursive split had.
        let expected_parts: Vec<Vec<u32>> = vec![
            vec![0, 1, 2, 3, 4, 5, 6, 7],
            vec![0, 1, 2, 3],
            vec![0, 1],
            vec![2, 3],
            vec![2],
            vec![3],
            vec![4, 5, 6, 7],
            vec![4, 5],
            vec![6, 7],
            vec![6],
            vec![7],
        ];
        assert_eq!(sent, expected_parts);
    }

    #[tokio::test]
    async fn a_lone_refused_record_is_rejected_and_an_accepted_write_is_sent_once() {
        let (verdicts, sent) = refusing(&[9], &[9]).await;
        assert_eq!(verdicts.unwrap(), vec![Verdict::Reject("HTTP 400: bad [9]".into())]);
        assert_eq!(sent.len(), 1);
        let (verdicts, sent) = refusing(&[1, 2, 3], &[]).await;
        assert_eq!(verdicts.unwrap(), vec![Verdict::Accepted; 3]);
        assert_eq!(sent, vec![vec![1, 2, 3]]);
    }

    #[tokio::test]
    async fn a_part_failing_as_a_whole_fails_the_write() {
        let calls = Mutex::new(0);
        let result = in_halves(&[1u32, 2, 3, 4][..], |part: &[u32]| {
            *calls.lock().unwrap() += 1;
            let first = part.len() == 4;
            async move {
                if first {
                    Ok(Attempt::Refused("HTTP 413: too large".into()))
                } else {
                    Err(WriteFailure { reason: "HTTP 503: down".into(), retry_after: Some(Duration::from_secs(2)) })
                }
            }
        })
        .await;
        let failure = result.unwrap_err();
        assert_eq!((failure.reason.as_str(), failure.retry_after), ("HTTP 503: down", Some(Duration::from_secs(2))));
        assert_eq!(*calls.lock().unwrap(), 2, "no request after the failure");
    }
}
