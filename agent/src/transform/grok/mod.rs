//! Grok: regular expressions written with named patterns. `%{NAME}` stands for a pattern of the
//! library ([`library::PATTERNS`]) or of the step's own definitions; `%{NAME:field}` also
//! captures it into `field` (a dotted path, or Logstash's `[a][b]`), and `%{NAME:field:int}` or
//! `:float` converts it. `(?<field>…)` captures a hand-written part. A pattern is expanded once,
//! at start-up, into one `regex` with numbered groups.

pub mod library;

use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How deep pattern definitions may refer to each other (a circle would never end).
const MAX_DEPTH: usize = 32;

/// Why a grok pattern does not compile.
#[derive(Debug, thiserror::Error)]
pub enum GrokError {
    /// `%{NAME}` names no pattern.
    #[error("%{{{0}}} is not a known pattern (define it in pattern_definitions)")]
    Unknown(String),
    /// Definitions refer to each other in a circle.
    #[error("pattern {0} refers to itself through other patterns")]
    Circular(String),
    /// `%{NAME:field:type}` with a type other than int or float.
    #[error("`{0}` is not a conversion (use int or float)")]
    Type(String),
    /// A `%{` without its `}`, or an empty name.
    #[error("`{0}` is not a pattern reference")]
    Syntax(String),
    /// The expanded expression is not a valid regular expression.
    #[error("{0}")]
    Regex(#[from] regex::Error),
}

/// What a captured text becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conversion {
    Text,
    Int,
    Float,
}

/// A compiled grok pattern.
#[derive(Debug)]
pub struct Grok {
    regex: Regex,
    /// Capture group index → field path and conversion.
    fields: Vec<(usize, String, Conversion)>,
}

impl Grok {
    /// Expands and compiles `pattern` with the library plus `definitions`.
    pub fn compile(pattern: &str, definitions: &BTreeMap<String, String>) -> Result<Grok, GrokError> {
        let mut expander = Expander { definitions, out: String::new(), captures: Vec::new() };
        expander.expand(pattern, 0, "")?;
        let regex = Regex::new(&expander.out)?;
        let fields = expander
            .captures
            .into_iter()
            .enumerate()
            .filter_map(|(n, (path, conversion))| {
                let name = format!("g{n}");
                let index = regex.capture_names().position(|c| c == Some(name.as_str()))?;
                Some((index, path, conversion))
            })
            .collect();
        Ok(Grok { regex, fields })
    }

    /// Matches `text`; on a match, writes the captured fields into `doc` and returns true.
    pub fn apply(&self, text: &str, doc: &mut Map<String, Value>) -> bool {
        let Some(captures) = self.regex.captures(text) else { return false };
        let mut set: Vec<&str> = Vec::new();
        for (index, path, conversion) in &self.fields {
            let Some(m) = captures.get(*index) else { continue };
            // The same field in two alternatives: the one that took part wins.
            if set.contains(&path.as_str()) {
                continue;
            }
            set.push(path);
            let raw = m.as_str();
            let value = match conversion {
                Conversion::Text => Value::from(raw),
                Conversion::Int => raw.parse::<i64>().map_or_else(|_| Value::from(raw), Value::from),
                Conversion::Float => raw
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::from(raw), Value::Number),
            };
            crate::event::set_path(doc, path, value);
        }
        true
    }
}

struct Expander<'a> {
    definitions: &'a BTreeMap<String, String>,
    out: String,
    /// Field path and conversion of group `g{index}`.
    captures: Vec<(String, Conversion)>,
}

impl Expander<'_> {
    fn definition(&self, name: &str) -> Option<&str> {
        self.definitions
            .get(name)
            .map(String::as_str)
            .or_else(|| library::PATTERNS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d))
    }

    fn expand(&mut self, text: &str, depth: usize, within: &str) -> Result<(), GrokError> {
        if depth > MAX_DEPTH {
            return Err(GrokError::Circular(within.to_string()));
        }
        let mut rest = text;
        while let Some(at) = rest.find(['%', '\\', '(']) {
            self.out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(escaped) = tail.strip_prefix('\\') {
                // An escaped character is copied as it is (`\(` is no group, `\%` no reference).
                let next = escaped.chars().next().map_or(0, char::len_utf8);
                self.out.push_str(&tail[..1 + next]);
                rest = &tail[1 + next..];
            } else if let Some(reference) = tail.strip_prefix("%{") {
                let end = reference.find('}').ok_or_else(|| GrokError::Syntax(truncate(tail)))?;
                self.reference(&reference[..end], depth)?;
                rest = &reference[end + 1..];
            } else if let Some(name_and_rest) = tail.strip_prefix("(?<").or_else(|| tail.strip_prefix("(?P<")) {
                // A named group (not a look-behind `(?<=`/`(?<!`): its name is a field.
                match name_and_rest.find('>') {
                    Some(end) if !name_and_rest.starts_with(['=', '!']) => {
                        let group = self.captures.len();
                        self.captures.push((field_path(&name_and_rest[..end]), Conversion::Text));
                        self.out.push_str(&format!("(?P<g{group}>"));
                        rest = &name_and_rest[end + 1..];
                    }
                    _ => {
                        self.out.push('(');
                        rest = &tail[1..];
                    }
                }
            } else {
                self.out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
        self.out.push_str(rest);
        Ok(())
    }

    fn reference(&mut self, reference: &str, depth: usize) -> Result<(), GrokError> {
        let mut parts = reference.splitn(3, ':');
        let name = parts.next().unwrap_or_default().trim();
        if name.is_empty() {
            return Err(GrokError::Syntax(format!("%{{{reference}}}")));
        }
        let field = parts.next().map(str::trim).filter(|f| !f.is_empty());
        let conversion = match parts.next().map(str::trim) {
            None => Conversion::Text,
            Some("int" | "long") => Conversion::Int,
            Some("float" | "double") => Conversion::Float,
            Some(other) => return Err(GrokError::Type(other.to_string())),
        };
        let definition = self.definition(name).ok_or_else(|| GrokError::Unknown(name.to_string()))?.to_string();
        match field {
            Some(field) => {
                let group = self.captures.len();
                self.captures.push((field_path(field), conversion));
                self.out.push_str(&format!("(?P<g{group}>"));
            }
            None => self.out.push_str("(?:"),
        }
        self.expand(&definition, depth + 1, name)?;
        self.out.push(')');
        Ok(())
    }
}

/// `[a][b]` (Logstash's nested syntax) as `a.b`; a dotted path stays.
fn field_path(name: &str) -> String {
    if name.starts_with('[') {
        name.trim_start_matches('[').trim_end_matches(']').split("][").collect::<Vec<_>>().join(".")
    } else {
        name.to_string()
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests;
