//! Records in Telegraf's JSON format (`data_format = "json"`): one metric
//! `{"name": …, "tags": {…}, "fields": {…}, "timestamp": N}` per record, or a batch
//! `{"metrics": [ … ]}`, the timestamp in the units Telegraf's `json_timestamp_units` names
//! (one second unless configured). JSON does not tell an integer from a float, so every number
//! is written as a float, as Telegraf's own JSON parser reads them: an integer field would turn
//! into a type conflict the first time the same field carries a fraction.

use super::line_protocol::{escape, write_measurement, write_string, KEY_OR_TAG};
use super::lines::Times;
use serde_json::{Map, Value};

/// Appends the points of a Telegraf JSON record to `out`, newline-separated, with their
/// timestamps as `times` says.
pub fn encode_telegraf_json(payload: &[u8], times: Times, out: &mut Vec<u8>) -> Result<(), String> {
    let doc: Value = serde_json::from_slice(payload).map_err(|e| format!("the record is not Telegraf JSON ({e})"))?;
    let metrics = match doc.get("metrics") {
        Some(Value::Array(batch)) => batch.iter().collect(),
        Some(_) => return Err("`metrics` is not an array".into()),
        None => vec![&doc],
    };
    if metrics.is_empty() {
        return Err("the record holds no metric".into());
    }
    for (i, metric) in metrics.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        let metric = metric.as_object().ok_or("a metric is not a JSON object")?;
        encode_metric(metric, times, out)?;
    }
    Ok(())
}

fn encode_metric(metric: &Map<String, Value>, times: Times, out: &mut Vec<u8>) -> Result<(), String> {
    let name = metric.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or("a metric has no `name`")?;
    let fields = metric.get("fields").and_then(Value::as_object).ok_or("a metric has no `fields` object")?;
    write_measurement(out, name)?;
    // serde_json's maps are sorted by key: tags go out in the order InfluxDB stores them.
    for (key, value) in metric.get("tags").and_then(Value::as_object).into_iter().flatten() {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if key.is_empty() || value.is_empty() {
            continue;
        }
        out.push(b',');
        escape(out, key, &KEY_OR_TAG)?;
        out.push(b'=');
        escape(out, &value, &KEY_OR_TAG)?;
    }
    let mut written = 0;
    for (key, value) in fields {
        if key.is_empty() || matches!(value, Value::Null | Value::Array(_) | Value::Object(_)) {
            continue;
        }
        out.push(if written == 0 { b' ' } else { b',' });
        escape(out, key, &KEY_OR_TAG)?;
        out.push(b'=');
        match value {
            // Digits without an `i` are a float in line protocol; serde_json prints a float in
            // a form line protocol reads (exponent included).
            Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::String(s) => write_string(out, key, s)?,
            Value::Null | Value::Array(_) | Value::Object(_) => {}
        }
        written += 1;
    }
    if written == 0 {
        return Err(format!("metric `{name}` has no field with a value"));
    }
    let timestamp = match metric.get("timestamp") {
        Some(Value::Number(n)) => {
            let units = n.as_i64().ok_or_else(|| format!("metric `{name}`: timestamp {n} is not a whole number"))?;
            Some(times.convert(units).ok_or_else(|| format!("metric `{name}`: timestamp {n} out of range"))?)
        }
        Some(other) => return Err(format!("metric `{name}`: timestamp {other} is not a number")),
        None => times.fallback(),
    };
    if let Some(timestamp) = timestamp {
        out.push(b' ');
        out.extend_from_slice(timestamp.to_string().as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use millrace_config::sink::Precision;

    fn encode(payload: &str, output: Precision) -> Result<String, String> {
        let mut out = Vec::new();
        let times = Times { input: Precision::S, output, record_ms: Some(1_700_000_000_500) };
        encode_telegraf_json(payload.as_bytes(), times, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_telegraf_metric_becomes_its_line() {
        let metric = r#"{"fields":{"n_images":660,"load":0.25,"ok":true,"state":"up \"fine\""},"name":"docker","tags":{"host":"raynor 1","engine":"x,y"},"timestamp":1458229140}"#;
        assert_eq!(
            encode(metric, Precision::Ms).unwrap(),
            r#"docker,engine=x\,y,host=raynor\ 1 load=0.25,n_images=660,ok=true,state="up \"fine\"" 1458229140000"#
        );
    }

    #[test]
    fn batches_and_missing_timestamps() {
        let batch = r#"{"metrics":[{"name":"a","fields":{"v":1},"timestamp":2},{"name":"b","fields":{"v":2}}]}"#;
        assert_eq!(encode(batch, Precision::S).unwrap(), "a v=1 2\nb v=2 1700000000");
        assert_eq!(encode(batch, Precision::Ms).unwrap(), "a v=1 2000\nb v=2 1700000000500");
    }

    #[test]
    fn what_is_not_a_telegraf_metric_is_refused_with_the_reason() {
        for (record, why) in [
            ("not json", "not Telegraf JSON"),
            (r#"{"metrics":{}}"#, "not an array"),
            (r#"{"metrics":[]}"#, "no metric"),
            (r#"{"fields":{"v":1}}"#, "no `name`"),
            (r#"{"name":"a"}"#, "no `fields`"),
            (r#"{"name":"a","fields":{"v":null,"w":[1]}}"#, "no field with a value"),
            (r#"{"name":"a","fields":{"v":1},"timestamp":"now"}"#, "not a number"),
            (r#"{"name":"a","fields":{"v":1},"timestamp":1.5}"#, "not a whole number"),
            (r#"{"name":"a","fields":{"v":1},"timestamp":9223372036854775807}"#, "out of range"),
            (r#"{"name":"a","fields":{"s":"two\nlines"}}"#, "newline"),
            (r##"{"name":"#a","fields":{"v":1}}"##, "comment"),
        ] {
            let err = encode(record, Precision::Ns).unwrap_err();
            assert!(err.contains(why), "{record}: {err}");
        }
    }
}
