//! Dissect: splits text at the literal delimiters between `%{key}` tokens, without regular
//! expressions (Filebeat's and Elasticsearch's dissect). `%{}` and `%{?key}` skip a part,
//! `%{+key}` appends to an earlier key, and `%{key->}` lets the delimiter after it repeat
//! (padding).

use serde_json::{Map, Value};

/// One key of a tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    /// Field name; None skips the part.
    name: Option<String>,
    append: bool,
    /// The delimiter after it may repeat.
    padded: bool,
    /// Literal text that ends this part (empty for the last key: it takes the rest).
    delimiter: String,
}

/// A compiled tokenizer.
#[derive(Debug, Clone)]
pub struct Dissect {
    prefix: String,
    keys: Vec<Key>,
    target_prefix: String,
}

impl Dissect {
    /// Compiles `tokenizer`; keys go under `target_prefix` (empty: the top level).
    pub fn new(tokenizer: &str, target_prefix: &str) -> Result<Dissect, String> {
        let mut keys: Vec<Key> = Vec::new();
        let mut rest = tokenizer;
        let prefix_end = rest.find("%{").ok_or("the tokenizer has no %{key}")?;
        let prefix = rest[..prefix_end].to_string();
        rest = &rest[prefix_end..];
        while let Some(inner) = rest.strip_prefix("%{") {
            let end = inner.find('}').ok_or_else(|| format!("`{rest}` has no closing `}}`"))?;
            let mut name = &inner[..end];
            let padded = name.ends_with("->");
            if padded {
                name = &name[..name.len() - 2];
            }
            let append = name.starts_with('+');
            let skip = name.is_empty() || name.starts_with('?');
            if name.starts_with(['*', '&']) {
                return Err(format!("%{{{name}}}: reference keys are not supported"));
            }
            let name = name.trim_start_matches(['+', '?']);
            rest = &inner[end + 1..];
            let next = rest.find("%{").unwrap_or(rest.len());
            let delimiter = rest[..next].to_string();
            if delimiter.is_empty() && next < rest.len() {
                return Err(format!("%{{{name}}} is followed by another key with nothing between them"));
            }
            rest = &rest[next..];
            keys.push(Key { name: (!skip).then(|| name.to_string()), append, padded, delimiter });
        }
        Ok(Dissect { prefix, keys, target_prefix: target_prefix.to_string() })
    }

    /// Splits `text` into the event; an error (nothing written) when it does not fit.
    pub fn apply(&self, text: &str, doc: &mut Map<String, Value>) -> Result<(), String> {
        let mut rest =
            text.strip_prefix(self.prefix.as_str()).ok_or_else(|| format!("does not start with `{}`", self.prefix))?;
        let mut found: Vec<(&str, String)> = Vec::with_capacity(self.keys.len());
        for (i, key) in self.keys.iter().enumerate() {
            let last = i + 1 == self.keys.len();
            let value = if key.delimiter.is_empty() {
                std::mem::take(&mut rest)
            } else {
                let at = rest.find(key.delimiter.as_str()).ok_or_else(|| format!("`{}` not found", key.delimiter))?;
                let value = &rest[..at];
                rest = &rest[at + key.delimiter.len()..];
                if key.padded {
                    while let Some(more) = rest.strip_prefix(key.delimiter.as_str()) {
                        rest = more;
                    }
                }
                value
            };
            if let Some(name) = &key.name {
                match found.iter_mut().find(|(n, _)| key.append && *n == name.as_str()) {
                    Some((_, earlier)) => earlier.push_str(value),
                    None => found.push((name, value.to_string())),
                }
            }
            if last && !key.delimiter.is_empty() && !rest.is_empty() {
                return Err(format!(
                    "text left after the last delimiter: `{}`",
                    rest.chars().take(40).collect::<String>()
                ));
            }
        }
        for (name, value) in found {
            let path =
                if self.target_prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.target_prefix) };
            crate::event::set_path(doc, &path, Value::String(value));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(tokenizer: &str, text: &str) -> Result<Value, String> {
        let mut doc = Map::new();
        Dissect::new(tokenizer, "").unwrap().apply(text, &mut doc)?;
        Ok(Value::Object(doc))
    }

    #[test]
    fn keys_take_the_text_between_delimiters_and_the_last_the_rest() {
        let doc = run(
            r#"%{source.ip} - %{user.name} [%{ts}] "%{method} %{path} %{}" %{status}"#,
            r#"10.0.0.1 - bob [03/Dec/2026:10:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 trailing"#,
        )
        .unwrap();
        assert_eq!(doc["source"]["ip"], "10.0.0.1");
        assert_eq!(doc["user"]["name"], "bob");
        assert_eq!(doc["ts"], "03/Dec/2026:10:00:00 +0000");
        assert_eq!(doc["path"], "/a?b=1");
        assert_eq!(doc["status"], "200 trailing");
    }

    #[test]
    fn padding_append_and_skip() {
        let doc = run("%{a->} %{+a} %{?skip} %{b}", "x    y z w").unwrap();
        assert_eq!(doc["a"], "xy");
        assert_eq!(doc["b"], "w");
        assert!(doc.get("skip").is_none());
    }

    #[test]
    fn text_that_does_not_fit_is_an_error_and_writes_nothing() {
        assert!(run("[%{a}] %{b}", "no bracket").unwrap_err().contains("does not start"));
        assert!(run("%{a}|%{b}", "no pipe").unwrap_err().contains("not found"));
        assert!(run("%{a}|%{b}|", "x|y|z").unwrap_err().contains("left after"));
        assert!(Dissect::new("%{a}%{b}", "").is_err(), "two keys with nothing between cannot be split");
        assert!(Dissect::new("plain", "").is_err());
        let mut doc = Map::new();
        Dissect::new("%{a} %{b}", "dissect").unwrap().apply("1 2", &mut doc).unwrap();
        assert_eq!(Value::Object(doc)["dissect"]["b"], "2");
    }
}
