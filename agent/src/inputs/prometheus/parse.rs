//! The text exposition format (version 0.0.4) as points: [`parse_text`] maps the samples of the
//! shared parser to [`MetricPoint`]s as the module docs of [`super`] describe; [`ParseError`] is
//! the parser's.

use super::TYPE_TAG;
use crate::event::{FieldValue, MetricPoint};
use millrace_prometheus_text::Sample;
use std::collections::BTreeMap;
use std::time::SystemTime;

pub use millrace_prometheus_text::ParseError;

/// Parses a text exposition (format 0.0.4) into one point per sample line; see the module docs
/// for the mapping. Samples without a timestamp are stamped `scraped_at`. Any malformed line
/// fails the whole text.
pub fn parse_text(body: &str, scraped_at: SystemTime) -> Result<Vec<MetricPoint>, ParseError> {
    millrace_prometheus_text::samples(body).map(|sample| Ok(point(sample?, scraped_at))).collect()
}

/// The point of one sample.
fn point(sample: Sample<'_>, scraped_at: SystemTime) -> MetricPoint {
    let mut tags: BTreeMap<String, String> = sample
        .labels
        .into_iter()
        // Prometheus treats an empty label as absent.
        .filter(|(_, value)| !value.is_empty())
        .map(|(label, value)| (label.to_string(), value))
        .collect();
    tags.insert(TYPE_TAG.to_string(), sample.metric_type.as_str().to_string());
    let mut fields = BTreeMap::new();
    fields.insert(sample.part.as_str().to_string(), FieldValue::Float(sample.value));
    MetricPoint { name: sample.family.to_string(), tags, fields, timestamp: sample.timestamp.unwrap_or(scraped_at) }
}

#[cfg(test)]
mod tests;
