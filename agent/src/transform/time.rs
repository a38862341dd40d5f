//! Event time: a field's text (or epoch number) parsed with one of several formats into a UTC
//! instant. Times without a zone are read in the configured one; times without a year (BSD
//! syslog) take the year of the reference time (when the line was read), or the year before when
//! that would put them more than a day in the future — a December line read in January.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// One accepted format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    /// RFC 3339 and the ISO 8601 forms logs use (space or `T`, optional fraction and zone).
    Iso8601,
    Rfc2822,
    /// Seconds since the epoch (fractions allowed).
    Unix,
    /// Milliseconds since the epoch.
    UnixMs,
    /// `Dec  3 10:00:00`: no year, no zone.
    Syslog,
    /// A strftime format (`%d/%b/%Y:%H:%M:%S %z`).
    Strftime(String),
}

/// A compiled time parser.
#[derive(Debug, Clone)]
pub struct TimeParser {
    formats: Vec<Format>,
    zone: Tz,
}

/// The time of a CLF/HTTP log (`03/Dec/2026:10:00:00 +0100`).
pub const HTTPDATE: &str = "%d/%b/%Y:%H:%M:%S %z";

impl TimeParser {
    /// From format names or strftime formats, and an IANA zone (UTC when None).
    pub fn new(formats: &[String], zone: Option<&str>) -> Result<TimeParser, String> {
        let zone = match zone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| format!("`{name}` is not a time zone"))?,
        };
        let formats = formats
            .iter()
            .map(|f| match f.as_str() {
                "ISO8601" | "RFC3339" => Ok(Format::Iso8601),
                "RFC2822" => Ok(Format::Rfc2822),
                "UNIX" => Ok(Format::Unix),
                "UNIX_MS" => Ok(Format::UnixMs),
                "SYSLOG" => Ok(Format::Syslog),
                "HTTPDATE" => Ok(Format::Strftime(HTTPDATE.into())),
                other if other.contains('%') => Ok(Format::Strftime(other.into())),
                other => Err(format!(
                    "`{other}` is not a format: use ISO8601, RFC3339, RFC2822, UNIX, UNIX_MS, SYSLOG, HTTPDATE or a strftime format such as \"%Y-%m-%d %H:%M:%S\""
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(TimeParser { formats, zone })
    }

    /// Parses `value` with the first format that reads it; `reference` dates year-less times.
    pub fn parse(&self, value: &Value, reference: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        let parsed = match value {
            Value::Number(n) => {
                let n = n.as_f64().ok_or("not a number")?;
                self.formats.iter().find_map(|f| match f {
                    Format::Unix => from_epoch(n, 1_000.0),
                    Format::UnixMs => from_epoch(n, 1.0),
                    _ => None,
                })
            }
            Value::String(text) => {
                let text = text.trim();
                self.formats.iter().find_map(|f| self.parse_text(f, text, reference))
            }
            _ => None,
        };
        let time = parsed.ok_or_else(|| format!("`{}` matches none of the formats", short(value)))?;
        if !(0..=9999).contains(&time.year()) {
            return Err(format!("`{}` is outside the years 0 to 9999", short(value)));
        }
        Ok(time)
    }

    fn parse_text(&self, format: &Format, text: &str, reference: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match format {
            Format::Iso8601 => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
                .or_else(|| {
                    ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f %z"]
                        .iter()
                        .find_map(|f| DateTime::parse_from_str(text, f).ok())
                        .map(|t| t.with_timezone(&Utc))
                })
                .or_else(|| {
                    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.fZ"]
                        .iter()
                        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                        .and_then(|n| self.localize(n))
                }),
            Format::Rfc2822 => DateTime::parse_from_rfc2822(text).ok().map(|t| t.with_timezone(&Utc)),
            Format::Unix => from_epoch(text.parse().ok()?, 1_000.0),
            Format::UnixMs => from_epoch(text.parse().ok()?, 1.0),
            Format::Syslog => {
                let local_reference = reference.with_timezone(&self.zone);
                let year = local_reference.year();
                let at = |year: i32| {
                    NaiveDateTime::parse_from_str(&format!("{year} {text}"), "%Y %b %e %H:%M:%S%.f")
                        .ok()
                        .and_then(|n| self.localize(n))
                };
                let this_year = at(year)?;
                // The reference may come from the event itself (a decoded field): no overflow.
                let tomorrow = reference.checked_add_signed(chrono::Duration::days(1)).unwrap_or(reference);
                if this_year > tomorrow {
                    at(year - 1)
                } else {
                    Some(this_year)
                }
            }
            Format::Strftime(f) => DateTime::parse_from_str(text, f)
                .ok()
                .map(|t| t.with_timezone(&Utc))
                .or_else(|| NaiveDateTime::parse_from_str(text, f).ok().and_then(|n| self.localize(n))),
        }
    }

    /// A wall-clock time in the configured zone; in a repeated hour (autumn), the first.
    fn localize(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        self.zone.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc))
    }
}

fn from_epoch(value: f64, to_ms: f64) -> Option<DateTime<Utc>> {
    let ms = value * to_ms;
    if !ms.is_finite() || ms.abs() > 253_402_300_799_000.0 {
        return None;
    }
    DateTime::from_timestamp_millis(ms.round() as i64)
}

fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn parse(formats: &[&str], zone: Option<&str>, value: Value, reference: &str) -> Result<String, String> {
        let formats: Vec<String> = formats.iter().map(|s| s.to_string()).collect();
        let parser = TimeParser::new(&formats, zone).unwrap();
        parser.parse(&value, at(reference)).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    #[test]
    fn web_server_times_with_their_offset() {
        let now = "2026-12-04T00:00:00Z";
        assert_eq!(
            parse(&["HTTPDATE"], None, "03/Dec/2026:10:00:00 +0100".into(), now).unwrap(),
            "2026-12-03T09:00:00.000Z"
        );
        // nginx error log: no zone, read in the configured one.
        let nginx = "%Y/%m/%d %H:%M:%S";
        assert_eq!(
            parse(&[nginx], Some("Europe/Berlin"), "2026/07/01 12:00:00".into(), now).unwrap(),
            "2026-07-01T10:00:00.000Z"
        );
        assert_eq!(parse(&[nginx], None, "2026/07/01 12:00:00".into(), now).unwrap(), "2026-07-01T12:00:00.000Z");
        // Apache error log, with microseconds.
        let apache = "%a %b %d %H:%M:%S%.f %Y";
        assert_eq!(
            parse(&[apache], None, "Thu Dec 03 10:00:00.123456 2026".into(), now).unwrap(),
            "2026-12-03T10:00:00.123Z"
        );
    }

    #[test]
    fn iso8601_forms_and_epochs() {
        let now = "2026-12-04T00:00:00Z";
        for (text, want) in [
            ("2026-12-03T10:00:00.5+02:00", "2026-12-03T08:00:00.500Z"),
            ("2026-12-03 10:00:00", "2026-12-03T10:00:00.000Z"),
            ("2026-12-03T10:00:00.123456Z", "2026-12-03T10:00:00.123Z"),
            ("2026-12-03T10:00:00+0100", "2026-12-03T09:00:00.000Z"),
        ] {
            assert_eq!(parse(&["ISO8601"], None, text.into(), now).unwrap(), want, "{text}");
        }
        assert_eq!(parse(&["UNIX"], None, Value::from(1_796_292_000.25), now).unwrap(), "2026-12-03T10:00:00.250Z");
        assert_eq!(parse(&["UNIX_MS"], None, "1796292000250".into(), now).unwrap(), "2026-12-03T10:00:00.250Z");
        assert!(parse(&["UNIX"], None, Value::from(1e300), now).is_err());
    }

    #[test]
    fn syslog_times_take_the_year_of_their_reading_or_the_one_before() {
        assert_eq!(
            parse(&["SYSLOG"], None, "Dec  3 10:00:00".into(), "2026-12-04T00:00:00Z").unwrap(),
            "2026-12-03T10:00:00.000Z"
        );
        // A December line read on New Year's Day is last year's.
        assert_eq!(
            parse(&["SYSLOG"], None, "Dec 31 23:59:58".into(), "2027-01-01T00:00:05Z").unwrap(),
            "2026-12-31T23:59:58.000Z"
        );
        assert_eq!(
            parse(&["SYSLOG"], Some("America/New_York"), "Jan  1 00:00:01".into(), "2027-01-01T06:00:00Z").unwrap(),
            "2027-01-01T05:00:01.000Z"
        );
    }

    #[test]
    fn formats_are_tried_in_order_and_failures_name_the_text() {
        let now = "2026-12-04T00:00:00Z";
        assert_eq!(
            parse(&["UNIX", "ISO8601"], None, "2026-12-03T10:00:00Z".into(), now).unwrap(),
            "2026-12-03T10:00:00.000Z"
        );
        let e = parse(&["ISO8601"], None, "yesterday".into(), now).unwrap_err();
        assert!(e.contains("yesterday"), "{e}");
        assert!(TimeParser::new(&["dd/MM/yyyy".into()], None).is_err());
        assert!(TimeParser::new(&["ISO8601".into()], Some("Mars/Olympus")).is_err());
    }
}
