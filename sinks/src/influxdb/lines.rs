//! Records that already are InfluxDB line protocol, as Telegraf's `outputs.kafka` writes them by
//! default (`data_format = "influx"`, one metric per message, or several lines with batching).
//!
//! Each line is read for its three sections — series key, fields, optional timestamp — minding
//! backslash escapes and quoted string values, so a line InfluxDB would refuse is refused here,
//! with the reason, and costs no split of the batch. The timestamp is re-expressed in the sink's
//! write precision (Telegraf writes nanoseconds; the sink may write milliseconds). A line
//! without one gets the record's own time, so a redelivered record overwrites its point instead
//! of adding one at the moment of the write. Comment and blank lines are skipped.

use millrace_config::sink::Precision;

/// Nanoseconds in one unit of `precision`.
fn nanos(precision: Precision) -> i64 {
    match precision {
        Precision::Ns => 1,
        Precision::Us => 1_000,
        Precision::Ms => 1_000_000,
        Precision::S => 1_000_000_000,
    }
}

/// `value` in `from` units, in `to` units (rounded down, as InfluxDB truncates).
fn convert(value: i64, from: Precision, to: Precision) -> Option<i64> {
    value.checked_mul(nanos(from)).map(|ns| ns.div_euclid(nanos(to)))
}

/// Splits a line at its unescaped, unquoted spaces and checks each section's shape; returns
/// where the fields end (the timestamp, if any, follows after a space).
fn fields_end(line: &[u8]) -> Result<usize, &'static str> {
    let mut spaces = [0usize; 2];
    let mut found = 0;
    // Quotes open a string only at the start of a field value; inside one a backslash escapes
    // the next byte and only an unescaped quote ends it. Elsewhere a backslash escapes too.
    let (mut escaped, mut quoted, mut in_value, mut value_start) = (false, false, false, false);
    for (i, &b) in line.iter().enumerate() {
        if escaped {
            escaped = false;
            value_start = false;
            continue;
        }
        if quoted {
            match b {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
            continue;
        }
        let at_value_start = std::mem::take(&mut value_start);
        match b {
            b'\\' => escaped = true,
            b'"' if found == 1 && at_value_start => quoted = true,
            b'=' if found == 1 && !in_value => (in_value, value_start) = (true, true),
            b',' if found == 1 => in_value = false,
            b' ' => {
                if found == 2 {
                    return Err("has more than three space-separated sections");
                }
                spaces[found] = i;
                found += 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err("has a string field value without its closing quote");
    }
    if found == 0 {
        return Err("has no fields");
    }
    let (series_end, fields_end) = (spaces[0], if found == 2 { spaces[1] } else { line.len() });
    let series = &line[..series_end];
    if series.is_empty() || series[0] == b',' {
        return Err("has no measurement");
    }
    let fields = &line[series_end + 1..fields_end];
    if fields.is_empty() || !fields.contains(&b'=') {
        return Err("has no fields");
    }
    Ok(fields_end)
}

/// How a foreign record's timestamps become the written points' ones.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    /// Units of the record's own timestamps.
    pub input: Precision,
    /// The sink's write precision.
    pub output: Precision,
    /// The record's time (ms), standing in for a missing timestamp.
    pub record_ms: Option<i64>,
}

impl Times {
    /// `value` (in input units) in the write precision.
    pub(super) fn convert(&self, value: i64) -> Option<i64> {
        convert(value, self.input, self.output)
    }

    /// The record's own time in the write precision, for a point without a timestamp.
    pub(super) fn fallback(&self) -> Option<i64> {
        self.record_ms.and_then(|ms| convert(ms, Precision::Ms, self.output))
    }
}

/// Appends the points of `payload` (line protocol) to `out`, newline-separated, with their
/// timestamps as `times` says.
pub fn encode_lines(payload: &[u8], times: Times, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    for (number, raw) in payload.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = trim_ascii(line);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let bad = |why: &str| format!("line {} of the record {why}: {}", number + 1, String::from_utf8_lossy(line));
        let end = fields_end(line).map_err(bad)?;
        let timestamp = match line.get(end + 1..) {
            Some(text) if !text.is_empty() => {
                let value: i64 = std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| bad("has a timestamp that is not an integer"))?;
                Some(times.convert(value).ok_or_else(|| bad("has a timestamp out of range"))?)
            }
            _ => times.fallback(),
        };
        if out.len() > start {
            out.push(b'\n');
        }
        out.extend_from_slice(&line[..end]);
        if let Some(timestamp) = timestamp {
            out.push(b' ');
            out.extend_from_slice(timestamp.to_string().as_bytes());
        }
    }
    if out.len() == start {
        return Err("the record holds no line protocol point".into());
    }
    Ok(())
}

fn trim_ascii(mut line: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = line {
        if !first.is_ascii_whitespace() {
            break;
        }
        line = rest;
    }
    while let [rest @ .., last] = line {
        if !last.is_ascii_whitespace() {
            break;
        }
        line = rest;
    }
    line
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn encode(payload: &str, output: Precision, record_ms: Option<i64>) -> Result<String, String> {
        let mut out = Vec::new();
        encode_lines(payload.as_bytes(), Times { input: Precision::Ns, output, record_ms }, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn telegraf_lines_get_their_timestamps_in_the_write_precision() {
        let telegraf = "cpu,cpu=cpu0,host=web-1 usage_idle=97.5,usage_user=1.25 1700000000123456789\n";
        assert_eq!(
            encode(telegraf, Precision::Ms, None).unwrap(),
            "cpu,cpu=cpu0,host=web-1 usage_idle=97.5,usage_user=1.25 1700000000123"
        );
        assert_eq!(encode(telegraf, Precision::Ns, None).unwrap(), telegraf.trim_end());
        assert_eq!(encode(telegraf, Precision::S, None).unwrap().rsplit(' ').next(), Some("1700000000"));
        // Before 1970 rounds down, as InfluxDB truncates.
        assert_eq!(encode("m v=1 -1500000", Precision::Ms, None).unwrap(), "m v=1 -2");
    }

    #[test]
    fn escapes_and_quoted_strings_do_not_split_a_line() {
        let line = r#"my\ measure,path=/var\ log,k\=x=a\,b msg="GET / HTTP/1.1 \"ok\", done",n=3i 1700000000000000000"#;
        let got = encode(line, Precision::Ms, None).unwrap();
        assert_eq!(got, line.replace(" 1700000000000000000", " 1700000000000"));
    }

    #[test]
    fn a_quote_in_a_field_key_opens_no_string() {
        // Found by the fuzzer: `"` is only a string's opening at the start of a field value.
        let line = r#"a\ b\,c "=true,s="x\"y\\" 1700000000000000000"#;
        assert_eq!(encode(line, Precision::Ns, None).unwrap(), line);
    }

    #[test]
    fn a_line_without_a_timestamp_takes_the_record_time() {
        assert_eq!(encode("mem used=5i", Precision::Ms, Some(1_700_000_000_123)).unwrap(), "mem used=5i 1700000000123");
        assert_eq!(encode("mem used=5i", Precision::Us, Some(7)).unwrap(), "mem used=5i 7000");
        assert_eq!(encode("mem used=5i", Precision::Ms, None).unwrap(), "mem used=5i");
    }

    #[test]
    fn batches_comments_blank_lines_and_crlf() {
        let batch = "# telegraf\r\ncpu v=1 1000000\r\n\r\n  mem v=2 2000000  \n";
        assert_eq!(encode(batch, Precision::Ms, None).unwrap(), "cpu v=1 1\nmem v=2 2");
    }

    #[test]
    fn broken_lines_are_refused_with_the_reason() {
        for (line, why) in [
            ("cpu", "has no fields"),
            ("cpu 1700000000", "has no fields"),
            (",host=a v=1", "has no measurement"),
            ("cpu v=1 17000 extra", "more than three"),
            ("cpu v=1 soon", "not an integer"),
            (r#"cpu msg="open v=1"#, "closing quote"),
        ] {
            let err = encode(line, Precision::Ns, None).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
        // Seconds far in the future do not fit in nanoseconds.
        let mut out = Vec::new();
        let times = Times { input: Precision::S, output: Precision::Ns, record_ms: None };
        let err = encode_lines(b"cpu v=1 9223372036854775", times, &mut out).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        assert!(encode("# only a comment\n\n", Precision::Ms, None).unwrap_err().contains("no line protocol point"));
    }
}
