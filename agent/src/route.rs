//! Where an event goes: its topic and partition key, fixed or rendered from the event's fields
//! (`topic = "logs-%{[event.dataset]:other}"`, `key = "%{[source.ip]}"`), as Filebeat's Kafka
//! output does. A rendered topic keeps only the characters a topic name may have (others become
//! `_`), and an event whose values leave nothing legal goes to the topic rendered with the
//! defaults, which the config loader checked.

use crate::event::get_path;
use millrace_config::template::{legal_topic, Part, Template};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Distinct rendered topics kept for reuse (an event's topic is then a shared string, not a new
/// allocation); past this, each event gets its own.
const MAX_CACHED_TOPICS: usize = 1024;

/// An input's topic.
#[derive(Debug)]
pub enum TopicRoute {
    /// Always this topic.
    Fixed(Arc<str>),
    /// Rendered per event.
    Template {
        /// The format string.
        template: Template,
        /// The topic with every field at its default.
        fallback: Arc<str>,
        /// Rendered topics seen so far.
        seen: Mutex<HashMap<String, Arc<str>>>,
    },
}

impl TopicRoute {
    /// From the input's `topic` setting (validated by the config loader).
    pub fn new(topic: &str) -> Result<TopicRoute, String> {
        if !Template::is_template(topic) {
            return Ok(TopicRoute::Fixed(Arc::from(topic)));
        }
        let template = Template::parse(topic)?;
        let fallback = render(&template, &Map::new(), true);
        if !legal_topic(&fallback) {
            return Err(format!("topic `{topic}` with its defaults is `{fallback}`, not a legal topic name"));
        }
        Ok(TopicRoute::Template { template, fallback: Arc::from(fallback), seen: Mutex::new(HashMap::new()) })
    }

    /// Whether the topic depends on the event (so it must be built as a document).
    pub fn needs_fields(&self) -> bool {
        matches!(self, TopicRoute::Template { .. })
    }

    /// The topic of `doc`.
    pub fn topic(&self, doc: &Map<String, Value>) -> Arc<str> {
        match self {
            TopicRoute::Fixed(topic) => topic.clone(),
            TopicRoute::Template { template, fallback, seen } => {
                let name = render(template, doc, true);
                if !legal_topic(&name) {
                    return fallback.clone();
                }
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(topic) = seen.get(&name) {
                    return topic.clone();
                }
                let topic: Arc<str> = Arc::from(name.as_str());
                if seen.len() < MAX_CACHED_TOPICS {
                    seen.insert(name, topic.clone());
                }
                topic
            }
        }
    }

    /// The fixed topic, if it is one (for inputs that encode without a document).
    pub fn fixed(&self) -> Option<&Arc<str>> {
        match self {
            TopicRoute::Fixed(topic) => Some(topic),
            TopicRoute::Template { .. } => None,
        }
    }
}

/// A partition key rendered from an event's fields: None when it renders empty.
pub fn render_key(template: &Template, doc: &Map<String, Value>) -> Option<Arc<str>> {
    let key = render(template, doc, false);
    (!key.is_empty()).then(|| Arc::from(key))
}

/// Renders `template`; with `topic`, field values keep only topic characters.
fn render(template: &Template, doc: &Map<String, Value>, topic: bool) -> String {
    let mut out = String::new();
    for part in &template.parts {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Field { path, default } => {
                let value = match get_path(doc, path) {
                    Some(Value::String(s)) if !s.is_empty() => Some(std::borrow::Cow::Borrowed(s.as_str())),
                    Some(Value::Number(n)) => Some(std::borrow::Cow::Owned(n.to_string())),
                    Some(Value::Bool(b)) => Some(std::borrow::Cow::Owned(b.to_string())),
                    _ => None,
                };
                let Some(value) = value.or_else(|| default.as_deref().map(std::borrow::Cow::Borrowed)) else {
                    continue;
                };
                if topic {
                    out.extend(value.chars().map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                            c
                        } else {
                            '_'
                        }
                    }));
                } else {
                    out.push_str(&value);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn topics_render_from_fields_with_defaults_and_cleaned_values() {
        let route = TopicRoute::new("logs-%{[event.dataset]:other}").unwrap();
        assert!(route.needs_fields());
        assert_eq!(&*route.topic(&doc(r#"{"event":{"dataset":"nginx.access"}}"#)), "logs-nginx.access");
        assert_eq!(&*route.topic(&doc(r#"{}"#)), "logs-other");
        assert_eq!(&*route.topic(&doc(r#"{"event":{"dataset":""}}"#)), "logs-other", "empty is missing");
        assert_eq!(&*route.topic(&doc(r#"{"event":{"dataset":"a b/c"}}"#)), "logs-a_b_c");
        assert_eq!(&*route.topic(&doc(r#"{"event":{"dataset":{"x":1}}}"#)), "logs-other", "an object is no name");
        let long = format!(r#"{{"event":{{"dataset":"{}"}}}}"#, "x".repeat(300));
        assert_eq!(&*route.topic(&doc(&long)), "logs-other", "too long for a topic");
        // The same name is one shared string.
        let a = route.topic(&doc(r#"{"event":{"dataset":"nginx.access"}}"#));
        let b = route.topic(&doc(r#"{"event":{"dataset":"nginx.access"}}"#));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&**TopicRoute::new("plain").unwrap().fixed().unwrap(), "plain");
    }

    #[test]
    fn keys_render_raw_and_empty_means_none() {
        let template = Template::parse("%{[source.ip]}").unwrap();
        assert_eq!(render_key(&template, &doc(r#"{"source":{"ip":"::1"}}"#)).as_deref(), Some("::1"));
        assert_eq!(render_key(&template, &doc(r#"{}"#)), None);
        let template = Template::parse("%{[host.name]}/%{[http.response.status_code]}").unwrap();
        assert_eq!(
            render_key(&template, &doc(r#"{"host":{"name":"web 1"},"http":{"response":{"status_code":404}}}"#))
                .as_deref(),
            Some("web 1/404")
        );
    }
}
