//! Conditions on an event's fields (a step's `when`), compiled once.

use crate::event::get_path;
use millrace_config::agent::transforms::{Condition as Settings, Range};
use regex::Regex;
use serde_json::{Map, Value};

/// A compiled condition.
#[derive(Debug)]
pub enum Condition {
    Equals(Vec<(String, Value)>),
    Contains(Vec<(String, String)>),
    Regexp(Vec<(String, Regex)>),
    Range(Vec<(String, Range)>),
    HasFields(Vec<String>),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

impl Condition {
    /// Compiles the settings (regular expressions were checked by the config loader).
    pub fn new(settings: &Settings) -> Result<Condition, String> {
        Ok(match settings {
            Settings::Equals(fields) => Condition::Equals(fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            Settings::Contains(fields) => {
                Condition::Contains(fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            Settings::Regexp(fields) => Condition::Regexp(
                fields
                    .iter()
                    .map(|(k, re)| Regex::new(re).map(|re| (k.clone(), re)).map_err(|e| format!("regexp {k}: {e}")))
                    .collect::<Result<_, _>>()?,
            ),
            Settings::Range(fields) => Condition::Range(fields.iter().map(|(k, r)| (k.clone(), r.clone())).collect()),
            Settings::HasFields(fields) => Condition::HasFields(fields.clone()),
            Settings::Not(inner) => Condition::Not(Box::new(Condition::new(inner)?)),
            Settings::And(all) => Condition::And(all.iter().map(Condition::new).collect::<Result<_, _>>()?),
            Settings::Or(all) => Condition::Or(all.iter().map(Condition::new).collect::<Result<_, _>>()?),
        })
    }

    /// Whether `doc` satisfies it.
    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        match self {
            Condition::Equals(fields) => {
                fields.iter().all(|(path, want)| get_path(doc, path).is_some_and(|v| equal(v, want)))
            }
            Condition::Contains(fields) => {
                fields.iter().all(|(path, part)| text(get_path(doc, path)).is_some_and(|t| t.contains(part.as_str())))
            }
            Condition::Regexp(fields) => {
                fields.iter().all(|(path, re)| text(get_path(doc, path)).is_some_and(|t| re.is_match(&t)))
            }
            Condition::Range(fields) => fields.iter().all(|(path, range)| {
                number(get_path(doc, path)).is_some_and(|n| {
                    range.gte.is_none_or(|b| n >= b)
                        && range.gt.is_none_or(|b| n > b)
                        && range.lte.is_none_or(|b| n <= b)
                        && range.lt.is_none_or(|b| n < b)
                })
            }),
            Condition::HasFields(fields) => fields.iter().all(|path| get_path(doc, path).is_some()),
            Condition::Not(inner) => !inner.matches(doc),
            Condition::And(all) => all.iter().all(|c| c.matches(doc)),
            Condition::Or(all) => all.iter().any(|c| c.matches(doc)),
        }
    }
}

/// Values compare as numbers when both read as numbers (a parsed `"404"` equals 404), else as
/// they are.
fn equal(value: &Value, want: &Value) -> bool {
    match (number(Some(value)), number(Some(want))) {
        (Some(a), Some(b)) if want.is_number() || value.is_number() => a == b,
        _ => value == want,
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<std::borrow::Cow<'_, str>> {
    match value? {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Owned(b.to_string())),
        Value::Array(items) => {
            Some(std::borrow::Cow::Owned(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn condition(toml_text: &str) -> Condition {
        #[derive(serde::Deserialize)]
        struct W {
            when: Settings,
        }
        Condition::new(&toml::from_str::<W>(toml_text).unwrap().when).unwrap()
    }

    #[test]
    fn filebeats_conditions_on_nested_fields() {
        let doc: Map<String, Value> = serde_json::from_str(
            r#"{"http":{"response":{"status_code":404}},"event":{"dataset":"nginx.access"},"message":"GET /x","code":"503"}"#,
        )
        .unwrap();
        assert!(condition(r#"when.equals = { "http.response.status_code" = 404 }"#).matches(&doc));
        assert!(condition(r#"when.equals = { "code" = 503 }"#).matches(&doc), "text that reads as the number");
        assert!(!condition(r#"when.equals = { "event.dataset" = "nginx.error" }"#).matches(&doc));
        assert!(condition(r#"when.contains = { message = "/x" }"#).matches(&doc));
        assert!(condition(r#"when.regexp = { message = "^GET " }"#).matches(&doc));
        assert!(condition(r#"when.range = { "http.response.status_code" = { gte = 400, lt = 500 } }"#).matches(&doc));
        assert!(!condition(r#"when.range = { "http.response.status_code" = { gte = 500 } }"#).matches(&doc));
        assert!(!condition(r#"when.range = { "message" = { gte = 0 } }"#).matches(&doc), "not a number");
        assert!(condition(r#"when.has_fields = ["event.dataset"]"#).matches(&doc));
        assert!(condition(r#"when.not.has_fields = ["user.name"]"#).matches(&doc));
        assert!(condition(
            r#"when.or = [{ equals = { "event.dataset" = "x" } }, { and = [{ has_fields = ["message"] }, { contains = { message = "GET" } }] }]"#
        )
        .matches(&doc));
        assert!(!condition(r#"when.equals = { "missing.field" = 1 }"#).matches(&doc));
    }
}
