//! The InfluxDB destination: line protocol over the v1 `/write` or v2 `/api/v2/write` API,
//! optional gzip. A 400 (a field type conflict, an unparsable point: InfluxDB writes the rest of
//! the request and names only the first culprit), InfluxDB 2's 422 (a partial write: points of
//! the request conflicted with the bucket's schema, the rest were written) and a 413 are answered
//! by splitting the batch in halves until the refused points stand alone; those are
//! dead-lettered, the others are written (again — points are idempotent: the same series and
//! timestamp overwrite). 429 and 5xx are retried, honouring `Retry-After`. The HTTP request
//! itself is [`crate::http`]'s.

pub mod line_protocol;
pub mod lines;
mod plain;
pub mod telegraf_json;

use crate::destination::{Destination, Verdict, WriteFailure};
use crate::http::{response_limit, Auth, HttpApi, HttpWriter, Reading, Target};
use crate::record::SourceRecord;
use millrace_config::secret::Secret;
use millrace_config::sink::{InfluxApi, InfluxDbSink, InfluxRecordFormat, Precision};
use std::borrow::Cow;
use std::time::Duration;

/// Writes points to InfluxDB.
pub struct InfluxDb {
    http: HttpWriter,
    url: String,
    precision: Precision,
    format: InfluxRecordFormat,
    input_precision: Precision,
}

impl InfluxDb {
    /// A destination from its settings (already validated).
    pub fn new(settings: &InfluxDbSink) -> Result<InfluxDb, String> {
        let base = settings.url.trim_end_matches('/');
        let precision = precision_parameter(settings.api, settings.precision);
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
        let url = reqwest::Url::parse_with_params(&url, &query)
            .map_err(|e| format!("url `{}`: {e}", millrace_config::secret::redact_url(&settings.url)))?;
        let auth = match (&settings.api, &settings.username, &settings.password, &settings.token) {
            (InfluxApi::V2, _, _, Some(token)) => Auth::Header(Secret::new(format!("Token {}", token.expose()))),
            (_, Some(user), Some(password), _) => Auth::Basic { user: user.clone(), password: password.clone() },
            _ => Auth::None,
        };
        let http = HttpWriter::new(
            Duration::from_millis(settings.common.request_timeout.0),
            "text/plain; charset=utf-8",
            settings.common.gzip,
            auth,
            &settings.tls,
        )?;
        Ok(InfluxDb {
            http,
            url: url.to_string(),
            precision: settings.precision,
            format: settings.format,
            input_precision: settings.input_precision(),
        })
    }
}

/// The `precision` query value: InfluxDB 1.x spells microseconds `u`, while InfluxDB 2's
/// `/api/v2/write` accepts only `ns`, `us`, `ms` and `s` (it answers 400 to `u`).
fn precision_parameter(api: InfluxApi, precision: Precision) -> &'static str {
    match (api, precision) {
        (InfluxApi::V2, Precision::Us) => "us",
        _ => precision.as_str(),
    }
}

/// Line protocol over the shared request shell: 400 and 413 split the batch.
impl HttpApi for InfluxDb {
    fn target(&self) -> Target<'_> {
        Target { url: Cow::Borrowed(&self.url), prefix: None }
    }

    fn body(&self, items: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum());
        for item in items {
            body.extend_from_slice(item);
            body.push(b'\n');
        }
        body
    }

    fn response_limit(&self, _items: usize) -> usize {
        // InfluxDB answers in a few bytes, whatever the batch.
        response_limit(0)
    }

    fn read(&self, status: u16, _body: &[u8], items: usize) -> Reading {
        match status {
            200..=299 => Reading::Verdicts(Ok(vec![Verdict::Accepted; items])),
            // InfluxDB names the culprit in its answer: that is the lone point's reason.
            400 | 413 | 422 => Reading::Split { lone: None },
            // 401/403 (credentials), 404 (no such database or bucket), 429, 5xx: the sink stalls
            // and retries; the log says why.
            _ => Reading::Failed,
        }
    }
}

impl Destination for InfluxDb {
    fn kind(&self) -> &'static str {
        "influxdb"
    }

    fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        let times =
            lines::Times { input: self.input_precision, output: self.precision, record_ms: record.timestamp_ms };
        match self.format {
            InfluxRecordFormat::Millrace => line_protocol::encode_record(record.payload, self.precision, out),
            InfluxRecordFormat::Influx => lines::encode_lines(record.payload, times, out),
            InfluxRecordFormat::Json => telegraf_json::encode_telegraf_json(record.payload, times, out),
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

    fn sink(extra: &str) -> InfluxDb {
        let toml = format!(
            "[source]\nbootstrap = \"127.0.0.1:9092\"\n\n[[influxdb]]\nname = \"m\"\ntopics = [\"m\"]\ngroup = \"g\"\n\
             url = \"http://127.0.0.1:8086/\"\n{extra}\n"
        );
        let config = millrace_config::parse_sink(&toml, "test").unwrap();
        InfluxDb::new(&config.influxdb[0]).unwrap()
    }

    #[test]
    fn each_api_gets_its_own_query_and_precision_spelling() {
        let v1 = sink("database = \"metrics\"\nprecision = \"us\"");
        assert_eq!(v1.url, "http://127.0.0.1:8086/write?db=metrics&precision=u");
        let v2 = sink("api = \"v2\"\norg = \"ops\"\nbucket = \"metrics\"\ntoken = \"t\"\nprecision = \"us\"");
        assert_eq!(v2.url, "http://127.0.0.1:8086/api/v2/write?org=ops&bucket=metrics&precision=us");
        for (precision, spelled) in [("ns", "ns"), ("ms", "ms"), ("s", "s")] {
            let v2 = sink(&format!("api = \"v2\"\norg = \"o\"\nbucket = \"b\"\nprecision = \"{precision}\""));
            assert!(v2.url.ends_with(&format!("&precision={spelled}")), "{}", v2.url);
        }
    }

    #[test]
    fn refusals_naming_points_split_the_batch_others_fail_it() {
        let v2 = sink("api = \"v2\"\norg = \"o\"\nbucket = \"b\"");
        for status in [400, 413, 422] {
            assert!(matches!(v2.read(status, b"", 4), Reading::Split { lone: None }), "{status}");
        }
        for status in [401, 403, 404, 429, 500, 503] {
            assert!(matches!(v2.read(status, b"", 4), Reading::Failed), "{status}");
        }
        assert!(matches!(v2.read(204, b"", 4), Reading::Verdicts(Ok(v)) if v.len() == 4));
    }
}
