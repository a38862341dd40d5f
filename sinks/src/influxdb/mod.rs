//! The InfluxDB destination: line protocol over the v1 `/write` or v2 `/api/v2/write` API,
//! optional gzip. A 400 (a field type conflict, an unparsable point: InfluxDB writes the rest of
//! the request and names only the first culprit) and a 413 are answered by splitting the batch in
//! halves until the refused points stand alone; those are dead-lettered, the others are written
//! (again — points are idempotent: the same series and timestamp overwrite). 429 and 5xx are
//! retried, honouring `Retry-After`.

pub mod line_protocol;
mod scan;

use crate::destination::{
    describe_reqwest, excerpt, gzip, read_body, response_limit, retry_after, Destination, Verdict, WriteFailure,
    EXCERPT_BYTES,
};
use crate::record::SourceRecord;
use millrace_config::sink::{InfluxApi, InfluxDbSink, Precision};
use std::time::Duration;

/// Writes points to InfluxDB.
pub struct InfluxDb {
    client: reqwest::Client,
    url: String,
    auth: Auth,
    precision: Precision,
    gzip: bool,
}

enum Auth {
    None,
    Basic(String, String),
    Token(String),
}

impl InfluxDb {
    /// A destination from its settings (already validated).
    pub fn new(settings: &InfluxDbSink) -> Result<InfluxDb, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.common.request_timeout.0))
            .build()
            .map_err(|e| format!("creating the HTTP client: {e}"))?;
        let base = settings.url.trim_end_matches('/');
        let precision = settings.precision.as_str();
        let mut query = Vec::new();
        let url = match settings.api {
            InfluxApi::V1 => {
                query.push(("db", settings.database.clone().unwrap_or_default()));
                if let Some(rp) = &settings.retention_policy {
                    query.push(("rp", rp.clone()));
                }
                format!("{base}/write")
            }
            InfluxApi::V2 => {
                query.push(("org", settings.org.clone().unwrap_or_default()));
                query.push(("bucket", settings.bucket.clone().unwrap_or_default()));
                format!("{base}/api/v2/write")
            }
        };
        query.push(("precision", precision.to_string()));
        let url = reqwest::Url::parse_with_params(&url, &query).map_err(|e| format!("url `{}`: {e}", settings.url))?;
        let auth = match (&settings.api, &settings.username, &settings.password, &settings.token) {
            (InfluxApi::V2, _, _, Some(token)) => Auth::Token(token.clone()),
            (_, Some(user), Some(password), _) => Auth::Basic(user.clone(), password.clone()),
            _ => Auth::None,
        };
        Ok(InfluxDb { client, url: url.to_string(), auth, precision: settings.precision, gzip: settings.common.gzip })
    }

    /// One write of `items`; 400 and 413 split it.
    async fn write_lines(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum());
        for item in items {
            body.extend_from_slice(item);
            body.push(b'\n');
        }
        let mut request =
            self.client.post(&self.url).header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8");
        request = if self.gzip {
            request.header(reqwest::header::CONTENT_ENCODING, "gzip").body(gzip(&body))
        } else {
            request.body(body)
        };
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
            Auth::Token(token) => request.header(reqwest::header::AUTHORIZATION, format!("Token {token}")),
        };
        let failure = |reason: String, retry_after| WriteFailure { reason, retry_after };
        let response = request.send().await.map_err(|e| failure(describe_reqwest(&e), None))?;
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        // InfluxDB answers in a few bytes; anything bigger (a proxy's page, a hostile endpoint) is
        // refused unread and the write retried, like any failed request.
        let body =
            read_body(response, response_limit(0)).await.map_err(|e| failure(format!("HTTP {status}: {e}"), wait))?;
        let text = excerpt(&body, EXCERPT_BYTES);
        match status {
            200..=299 => Ok(vec![Verdict::Accepted; items.len()]),
            400 | 413 if items.len() == 1 => Ok(vec![Verdict::Reject(format!("HTTP {status}: {text}"))]),
            400 | 413 => {
                let (left, right) = items.split_at(items.len() / 2);
                let mut verdicts = Box::pin(self.write_lines(left)).await?;
                verdicts.extend(Box::pin(self.write_lines(right)).await?);
                Ok(verdicts)
            }
            // 401/403 (credentials), 404 (no such database or bucket), 429, 5xx: the sink stalls
            // and retries; the log says why.
            _ => Err(failure(format!("HTTP {status}: {text}"), wait)),
        }
    }
}

impl Destination for InfluxDb {
    fn kind(&self) -> &'static str {
        "influxdb"
    }

    fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        line_protocol::encode_record(record.payload, self.precision, out)
    }

    async fn write(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        self.write_lines(items).await
    }
}
