//! The Elasticsearch (and OpenSearch) destination: `_bulk` requests with NDJSON bodies, optional
//! gzip, basic or API-key authentication, requests rotating over the configured nodes. Per-item
//! results decide each document's fate; a 413 splits the batch in halves. The HTTP request itself is
//! [`crate::http`]'s.

pub mod bulk;
pub mod doc;
pub mod index;
pub mod setup;

use crate::destination::{Destination, Verdict, WriteFailure};
use crate::http::{response_limit, Auth, HttpApi, HttpWriter, Reading, Target};
use crate::record::SourceRecord;
use millrace_config::secret::Secret;
use millrace_config::sink::{BulkAction, DocumentFormat, ElasticsearchSink};
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Writes documents to Elasticsearch.
pub struct Elasticsearch {
    http: HttpWriter,
    endpoints: Vec<String>,
    next_endpoint: AtomicUsize,
    index: index::IndexName,
    action: BulkAction,
    format: DocumentFormat,
    /// Documents go to a data stream (which refuses one without `@timestamp`).
    data_stream: bool,
    /// `?pipeline=…` (encoded) when documents go through an ingest pipeline, else empty.
    query: String,
}

impl Elasticsearch {
    /// A destination from its settings (already validated).
    pub fn new(settings: &ElasticsearchSink) -> Result<Elasticsearch, String> {
        let index = index::IndexName::parse(&settings.index)?;
        if settings.endpoints.is_empty() {
            return Err("endpoints lists no node".into());
        }
        let auth = auth(settings);
        let http = HttpWriter::new(
            Duration::from_millis(settings.common.request_timeout.0),
            "application/x-ndjson",
            settings.common.gzip,
            auth,
            &settings.tls,
        )?;
        Ok(Elasticsearch {
            http,
            endpoints: settings.endpoints.iter().map(|e| e.trim_end_matches('/').to_string()).collect(),
            next_endpoint: AtomicUsize::new(0),
            index,
            action: if settings.data_stream { BulkAction::Create } else { settings.action },
            format: settings.format,
            data_stream: settings.data_stream,
            query: match &settings.pipeline {
                Some(pipeline) => {
                    let encoded: String = reqwest::Url::parse_with_params("http://x/", [("pipeline", pipeline)])
                        .map_err(|e| format!("pipeline `{pipeline}`: {e}"))?
                        .query()
                        .unwrap_or_default()
                        .to_string();
                    format!("?{encoded}")
                }
                None => String::new(),
            },
        })
    }
}

/// The credentials of `settings`: basic authentication wins when both it and an API key are
/// configured.
pub fn auth(settings: &ElasticsearchSink) -> Auth {
    match (&settings.username, &settings.password, &settings.api_key) {
        (Some(user), Some(password), _) => Auth::Basic { user: user.clone(), password: password.clone() },
        (_, _, Some(key)) => Auth::Header(Secret::new(format!("ApiKey {}", key.expose()))),
        _ => Auth::None,
    }
}

/// `_bulk` over the shared request shell: requests rotate over the nodes, a 413 splits the batch.
impl HttpApi for Elasticsearch {
    fn target(&self) -> Target<'_> {
        // `new` refused an empty list; were it empty anyway, the request fails and is retried.
        let turn = self.next_endpoint.fetch_add(1, Ordering::Relaxed);
        let endpoint =
            self.endpoints.get(turn.checked_rem(self.endpoints.len()).unwrap_or(0)).map_or("", String::as_str);
        Target { url: Cow::Owned(format!("{endpoint}/_bulk{}", self.query)), prefix: Some(endpoint) }
    }

    fn body(&self, items: &[&[u8]]) -> Vec<u8> {
        // Each item is an action line and a source line, both ending in a newline.
        items.concat()
    }

    fn response_limit(&self, items: usize) -> usize {
        // The answer lists every item, so its size follows the batch's.
        response_limit(items)
    }

    fn read(&self, status: u16, body: &[u8], items: usize) -> Reading {
        match status {
            200 => Reading::Verdicts(bulk::verdicts(body, items, self.action)),
            413 => {
                Reading::Split { lone: Some("413: the document is larger than the cluster's http.max_content_length") }
            }
            _ => Reading::Failed,
        }
    }
}

impl Destination for Elasticsearch {
    fn kind(&self) -> &'static str {
        "elasticsearch"
    }

    fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        match self.format {
            DocumentFormat::Json if self.data_stream => bulk::encode_for_stream(record, &self.index, out),
            DocumentFormat::Json => bulk::encode(record, &self.index, self.action, out),
            DocumentFormat::Text => {
                bulk::encode_text(record, &self.index, self.action, out);
                Ok(())
            }
        }
    }

    async fn write(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        self.http.write(self, items).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sink(extra: &str) -> Elasticsearch {
        let toml = format!(
            "[source]\nbootstrap = \"127.0.0.1:9092\"\n\n[[elasticsearch]]\nname = \"l\"\ntopics = [\"l\"]\n\
             group = \"g\"\nendpoints = [\"http://a:9200/\", \"http://b:9200\"]\n{extra}\n"
        );
        Elasticsearch::new(&millrace_config::parse_sink(&toml, "test").unwrap().elasticsearch[0]).unwrap()
    }

    #[test]
    fn requests_rotate_over_the_nodes_and_name_the_ingest_pipeline() {
        let plain = sink("");
        assert_eq!(plain.target().url, "http://a:9200/_bulk");
        assert_eq!(plain.target().url, "http://b:9200/_bulk");
        let piped = sink("pipeline = \"nginx access&x\"");
        assert_eq!(piped.target().url, "http://a:9200/_bulk?pipeline=nginx+access%26x");
    }
}
