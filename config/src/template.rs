//! Format strings with event fields, as Filebeat's: `logs-%{[event.dataset]}` or, with a value
//! for events without the field, `logs-%{[event.dataset]:other}`. Used for an agent input's topic
//! and partition key, and an Elasticsearch sink's index or data stream name.

/// A piece of a format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text taken as it is.
    Literal(String),
    /// A field's value (a dotted path) and what stands for it when the event lacks it.
    Field {
        /// Dotted path, e.g. `event.dataset`.
        path: String,
        /// Used when the field is missing or empty.
        default: Option<String>,
    },
}

/// A parsed format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// Its pieces, in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Whether `text` refers to fields at all (else it is a plain name).
    pub fn is_template(text: &str) -> bool {
        text.contains("%{")
    }

    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| format!("`{}` has no closing `}}`", &rest[start..]))?;
            let inner = &after[..end];
            let body = inner
                .strip_prefix('[')
                .ok_or_else(|| format!("`%{{{inner}}}` must name a field as %{{[a.b]}} (or %{{[a.b]:default}})"))?;
            let close = body.find(']').ok_or_else(|| format!("`%{{{inner}}}` has no closing `]`"))?;
            let path = body[..close].trim();
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(format!("`%{{{inner}}}` names no field"));
            }
            let default = match &body[close + 1..] {
                "" => None,
                tail => Some(
                    tail.strip_prefix(':')
                        .ok_or_else(|| format!("`%{{{inner}}}`: only `:default` may follow the field"))?
                        .to_string(),
                ),
            };
            parts.push(Part::Field { path: path.to_string(), default });
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The fields referred to without a default.
    pub fn fields_without_default(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Field { path, default: None } => Some(path.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The literal text and defaults (what can be checked before any event).
    pub fn fixed_texts(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Literal(text) => Some(text.as_str()),
            Part::Field { default, .. } => default.as_deref(),
        })
    }
}

/// Whether `name` is a legal Kafka topic name (at most 249 of `[a-zA-Z0-9._-]`, not `.` or `..`).
pub fn legal_topic(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fields_defaults_and_literals_parse() {
        let t = Template::parse("logs-%{[event.dataset]:other}-%{[host.name]}").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Literal("logs-".into()),
                Part::Field { path: "event.dataset".into(), default: Some("other".into()) },
                Part::Literal("-".into()),
                Part::Field { path: "host.name".into(), default: None },
            ]
        );
        assert_eq!(t.fields_without_default(), vec!["host.name"]);
        assert_eq!(t.fixed_texts().collect::<Vec<_>>(), vec!["logs-", "other", "-"]);
        assert_eq!(Template::parse("plain").unwrap().parts, vec![Part::Literal("plain".into())]);
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        for (text, says) in [
            ("logs-%{[event.dataset]", "closing `}`"),
            ("logs-%{event.dataset}", "must name a field"),
            ("logs-%{[]}", "names no field"),
            ("logs-%{[a..b]}", "names no field"),
            ("logs-%{[a]x}", "only `:default`"),
            ("logs-%{[a}", "closing `]`"),
        ] {
            let e = Template::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn topic_names_follow_kafkas_rules() {
        assert!(legal_topic("logs-nginx.access_1"));
        for bad in ["", ".", "..", "a b", "a/b", "é", &"x".repeat(250)] {
            assert!(!legal_topic(bad), "{bad}");
        }
    }
}
