//! The Elasticsearch (and OpenSearch) destination: `_bulk` requests with NDJSON bodies, optional
//! gzip, basic or API-key authentication, requests rotating over the configured nodes. Per-item
//! results decide each document's fate; a 413 splits the batch in halves.

pub mod bulk;

use crate::destination::{
    describe_reqwest, excerpt, gzip, read_body, response_limit, retry_after, Destination, Verdict, WriteFailure,
    EXCERPT_BYTES,
};
use crate::record::SourceRecord;
use millrace_config::sink::{BulkAction, ElasticsearchSink};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Writes documents to Elasticsearch.
pub struct Elasticsearch {
    client: reqwest::Client,
    endpoints: Vec<String>,
    next_endpoint: AtomicUsize,
    index: String,
    action: BulkAction,
    gzip: bool,
    username: Option<String>,
    password: Option<String>,
    api_key: Option<String>,
}

impl Elasticsearch {
    /// A destination from its settings (already validated).
    pub fn new(settings: &ElasticsearchSink) -> Result<Elasticsearch, String> {
        if !bulk::template_is_valid(&settings.index) {
            return Err(format!("index `{}` has an unknown % field (strftime, e.g. %Y.%m.%d)", settings.index));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.common.request_timeout.0))
            .build()
            .map_err(|e| format!("creating the HTTP client: {e}"))?;
        Ok(Elasticsearch {
            client,
            endpoints: settings.endpoints.iter().map(|e| e.trim_end_matches('/').to_string()).collect(),
            next_endpoint: AtomicUsize::new(0),
            index: settings.index.clone(),
            action: if settings.data_stream { BulkAction::Create } else { settings.action },
            gzip: settings.common.gzip,
            username: settings.username.clone(),
            password: settings.password.clone(),
            api_key: settings.api_key.clone(),
        })
    }

    /// One `_bulk` request for `items`; a 413 splits it and writes the halves.
    async fn bulk(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        let body: Vec<u8> = items.concat();
        let endpoint = &self.endpoints[self.next_endpoint.fetch_add(1, Ordering::Relaxed) % self.endpoints.len()];
        let mut request =
            self.client.post(format!("{endpoint}/_bulk")).header(reqwest::header::CONTENT_TYPE, "application/x-ndjson");
        request = if self.gzip {
            request.header(reqwest::header::CONTENT_ENCODING, "gzip").body(gzip(&body))
        } else {
            request.body(body)
        };
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            request = request.basic_auth(user, Some(password));
        } else if let Some(key) = &self.api_key {
            request = request.header(reqwest::header::AUTHORIZATION, format!("ApiKey {key}"));
        }
        let failure = |reason: String, retry_after| WriteFailure { reason, retry_after };
        let response =
            request.send().await.map_err(|e| failure(format!("{endpoint}: {}", describe_reqwest(&e)), None))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        // The answer lists every item, so its size follows the batch's; past that it is refused
        // unread and the whole write retried.
        let body = read_body(response, response_limit(items.len()))
            .await
            .map_err(|e| failure(format!("{endpoint}: HTTP {}: {e}", status.as_u16()), wait))?;
        match status.as_u16() {
            200 => {
                bulk::verdicts(&body, items.len(), self.action).map_err(|e| failure(format!("{endpoint}: {e}"), None))
            }
            413 if items.len() == 1 => Ok(vec![Verdict::Reject(
                "413: the document is larger than the cluster's http.max_content_length".into(),
            )]),
            413 => {
                let (left, right) = items.split_at(items.len() / 2);
                let mut verdicts = Box::pin(self.bulk(left)).await?;
                verdicts.extend(Box::pin(self.bulk(right)).await?);
                Ok(verdicts)
            }
            code => Err(failure(format!("{endpoint}: HTTP {code}: {}", excerpt(&body, EXCERPT_BYTES)), wait)),
        }
    }
}

impl Destination for Elasticsearch {
    fn kind(&self) -> &'static str {
        "elasticsearch"
    }

    fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        bulk::encode(record, &self.index, self.action, out)
    }

    async fn write(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        self.bulk(items).await
    }
}
