//! Index (or data stream) names per document: strftime fields from its time (`logs-%Y.%m.%d`)
//! and fields of the document with defaults (`logs-%{[event.dataset]:generic}-default`, the
//! data stream naming scheme `logs-<dataset>-<namespace>`). A field's value is lower-cased and
//! characters Elasticsearch refuses in index names become `_`.

use super::doc::{Fields, Leaf, Wanted};
use crate::record::SourceRecord;
use chrono::{DateTime, Utc};
use millrace_config::sink::INDEX_FORBIDDEN;
use millrace_config::template::{Part, Template};
use std::sync::{Arc, Mutex};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// A compiled index name.
#[derive(Debug, Clone)]
pub struct IndexName {
    parts: Vec<Part>,
    /// No strftime field and no document field: the name itself.
    fixed: Option<String>,
    /// Every field a bulk encoding with this name reads from a document.
    wanted: Arc<Wanted>,
    /// For a name made of the date alone (`logs-%Y.%m.%d`, no field, no time of day): the last
    /// name rendered and its day (since the epoch, UTC). Consecutive documents mostly share a
    /// day, and strftime formatting was a sixth of the bulk encoder's instructions.
    daily: Option<Arc<Mutex<Option<DayName>>>>,
}

/// A day (since the epoch, UTC) and the index name of its documents.
type DayName = (i64, String);

impl IndexName {
    /// Parses and checks `text` (the configuration was validated; this repeats it for callers
    /// that were not).
    pub fn parse(text: &str) -> Result<IndexName, String> {
        let parts =
            if Template::is_template(text) { Template::parse(text)?.parts } else { vec![Part::Literal(text.into())] };
        for part in &parts {
            if let Part::Literal(literal) = part {
                if chrono::format::StrftimeItems::new(literal).any(|i| matches!(i, chrono::format::Item::Error)) {
                    return Err(format!("index `{text}` has an unknown % field (strftime, e.g. %Y.%m.%d)"));
                }
            }
        }
        let fixed = match parts.as_slice() {
            [Part::Literal(literal)] if !literal.contains('%') => Some(literal.clone()),
            _ => None,
        };
        let fields = parts.iter().filter_map(|p| match p {
            Part::Field { path, .. } => Some(path.split('.').collect::<Vec<_>>()),
            Part::Literal(_) => None,
        });
        let paths = super::bulk::ID_FIELDS.iter().map(|p| p.to_vec()).chain([vec![TIMESTAMP]]).chain(fields);
        let wanted = Arc::new(Wanted::new(paths));
        let dates_only =
            fixed.is_none() && parts.iter().all(|p| matches!(p, Part::Literal(literal) if date_fields_only(literal)));
        let daily = dates_only.then(Arc::default);
        Ok(IndexName { parts, fixed, wanted, daily })
    }

    /// The fields of a document that naming it and the bulk action line read.
    pub fn wanted(&self) -> &Wanted {
        &self.wanted
    }

    /// The name for `doc` (the record's time when it has no `@timestamp`).
    pub fn render(&self, doc: &impl Fields, record: &SourceRecord<'_>) -> String {
        if let Some(fixed) = &self.fixed {
            return fixed.clone();
        }
        let Some(daily) = &self.daily else { return self.render_at(doc, record, None) };
        let at = event_time(doc, record);
        let day = at.timestamp_millis().div_euclid(DAY_MS);
        let mut last = daily.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((of, name)) = &*last {
            if *of == day {
                return name.clone();
            }
        }
        let name = self.render_at(doc, record, Some(at));
        *last = Some((day, name.clone()));
        name
    }

    /// The name for `doc` at `time` (read when needed if None).
    fn render_at(&self, doc: &impl Fields, record: &SourceRecord<'_>, mut time: Option<DateTime<Utc>>) -> String {
        let mut name = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(literal) if !literal.contains('%') => name.push_str(literal),
                Part::Literal(literal) => {
                    let at = *time.get_or_insert_with(|| event_time(doc, record));
                    // Checked at parse time; a failure would leave the literal text.
                    if std::fmt::write(&mut name, format_args!("{}", at.format(literal))).is_err() {
                        name.push_str(&literal.replace('%', ""));
                    }
                }
                Part::Field { path, default } => {
                    let value = doc.leaf(path.split('.')).and_then(|v| match v {
                        Leaf::Str(s) if !s.is_empty() => Some(s.into_owned()),
                        Leaf::Str(_) => None,
                        Leaf::Number(n) => Some(n.to_string()),
                        Leaf::Bool(b) => Some(b.to_string()),
                    });
                    let value = value.or_else(|| default.clone()).unwrap_or_default();
                    name.extend(value.chars().flat_map(char::to_lowercase).map(|c| {
                        if INDEX_FORBIDDEN.contains(c) {
                            '_'
                        } else {
                            c
                        }
                    }));
                }
            }
        }
        name
    }

    /// A wildcard pattern matching every name it renders (`logs-*-default`), for index
    /// templates.
    pub fn pattern(&self) -> String {
        let mut pattern = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(literal) => {
                    let mut chars = literal.chars();
                    while let Some(c) = chars.next() {
                        if c == '%' {
                            // A strftime field (and its flag): any text.
                            let next = chars.next();
                            if matches!(next, Some('-' | '_' | '0' | ':' | '.')) {
                                chars.next();
                            }
                            pattern.push('*');
                        } else {
                            pattern.push(c);
                        }
                    }
                }
                Part::Field { .. } => pattern.push('*'),
            }
            while pattern.contains("**") {
                pattern = pattern.replace("**", "*");
            }
        }
        pattern
    }
}

/// The time a record's index name is taken from: its `@timestamp`, else the broker timestamp,
/// else now.
/// A document's own time field.
pub(super) const TIMESTAMP: &str = "@timestamp";

fn event_time(doc: &impl Fields, record: &SourceRecord<'_>) -> DateTime<Utc> {
    // The agent's own form read directly (it is on every record), anything else by chrono.
    doc.leaf([TIMESTAMP])
        .and_then(|t| {
            let t = t.as_str()?;
            match crate::rfc3339::utc_millis(t.as_bytes()) {
                Some(ms) => DateTime::from_timestamp_millis(ms),
                None => DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc)),
            }
        })
        .or_else(|| record.timestamp_ms.and_then(DateTime::from_timestamp_millis))
        .unwrap_or_else(Utc::now)
}

/// Whether every strftime field of `literal` depends on the date alone (not the time of day),
/// so that one day's documents all get the same name.
fn date_fields_only(literal: &str) -> bool {
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut field = chars.next();
        if matches!(field, Some('-' | '_' | '0')) {
            field = chars.next();
        }
        // Year, month, day, weekday, week and day-of-year fields, whole dates, and `%%`.
        if !matches!(
            field,
            Some(
                'Y' | 'C'
                    | 'y'
                    | 'm'
                    | 'b'
                    | 'B'
                    | 'h'
                    | 'd'
                    | 'e'
                    | 'a'
                    | 'A'
                    | 'w'
                    | 'u'
                    | 'U'
                    | 'W'
                    | 'G'
                    | 'g'
                    | 'V'
                    | 'j'
                    | 'D'
                    | 'x'
                    | 'F'
                    | '%'
            )
        ) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record() -> SourceRecord<'static> {
        SourceRecord {
            topic: "logs",
            partition: 0,
            offset: 7,
            timestamp_ms: Some(1_795_431_600_000),
            replayed_from: None,
            key: None,
            payload: b"",
        }
    }

    #[test]
    fn names_from_time_and_fields_with_defaults() {
        let doc = serde_json::json!({"@timestamp": "2026-12-03T10:00:00Z", "event": {"dataset": "Nginx.Access"}});
        let daily = IndexName::parse("logs-%Y.%m.%d").unwrap();
        assert_eq!(daily.render(&doc, &record()), "logs-2026.12.03");
        assert_eq!(daily.render(&serde_json::json!({}), &record()), "logs-2026.11.23", "the record's time");
        assert_eq!(daily.pattern(), "logs-*.*.*");
        let stream = IndexName::parse("logs-%{[event.dataset]:generic}-default").unwrap();
        assert_eq!(stream.render(&doc, &record()), "logs-nginx.access-default", "lower-cased");
        assert_eq!(stream.render(&serde_json::json!({}), &record()), "logs-generic-default");
        let odd = serde_json::json!({"event": {"dataset": "a/b c*"}});
        assert_eq!(stream.render(&odd, &record()), "logs-a_b_c_-default");
        assert_eq!(stream.pattern(), "logs-*-default");
        let both = IndexName::parse("%{[service.name]:app}-%Y.%m").unwrap();
        assert_eq!(both.render(&doc, &record()), "app-2026.12");
        assert_eq!(both.pattern(), "*-*.*");
        assert_eq!(IndexName::parse("fixed").unwrap().render(&doc, &record()), "fixed");
        // The last day's name is reused only for the same day, and only for names of dates.
        assert_eq!(daily.render(&doc, &record()), "logs-2026.12.03", "back to the first day");
        let next_day = serde_json::json!({"@timestamp": "2026-12-04T00:00:00.000Z"});
        assert_eq!(daily.render(&next_day, &record()), "logs-2026.12.04");
        let hourly = IndexName::parse("logs-%Y.%m.%d-%H").unwrap();
        let later = serde_json::json!({"@timestamp": "2026-12-03T11:00:00+00:00"});
        assert_eq!(hourly.render(&doc, &record()), "logs-2026.12.03-10");
        assert_eq!(hourly.render(&later, &record()), "logs-2026.12.03-11", "not one name per day");
        assert!(date_fields_only("logs-%Y.%m.%d") && date_fields_only("%G-W%V %-d %% %F"));
        assert!(!date_fields_only("%Y.%m.%d-%H") && !date_fields_only("%s") && !date_fields_only("x%"));
        assert!(IndexName::parse("logs-%Q").is_err());
        assert!(IndexName::parse("logs-%{[a]").is_err());
    }
}
