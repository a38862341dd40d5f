//! Transforms: the steps an input applies to each event, in order — a module's parsing, then the
//! configured steps (grok, dissect, JSON and key-value decoding, event time, conversions, field
//! changes, user agent and GeoIP enrichment, dropping), each under an optional condition.
//!
//! A failing step never loses the event: by default it adds the step's tag to `tags` (Logstash's
//! names: `_grokparsefailure`, `_dateparsefailure`…) and the reason to `error.message`, and the
//! event goes on through the following steps. `on_failure = "drop"` drops it instead, `"ignore"`
//! says nothing. The steps are pure: no clock (the event's read time, its `@timestamp` before any
//! step, dates year-less times) and no I/O after start-up (the GeoIP database is read once).
//!
//! Layout: [`grok`] (pattern expansion and library), [`dissect`], [`time`] (event-time formats),
//! [`fields`] (decoding, conversion, moves), [`enrich`] (user agent, GeoIP), [`condition`]
//! (`when`), [`modules`] (nginx, apache, syslog presets).

pub mod condition;
pub mod dissect;
pub mod enrich;
pub mod fields;
pub mod grok;
pub mod modules;
#[cfg(test)]
mod test_mmdb;
pub mod time;

use crate::event::{get_path, remove_path, set_path};
use chrono::{DateTime, Utc};
use condition::Condition;
use millrace_config::agent::transforms::{FieldType, Module, OnFailure, Transform};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What one step does.
#[derive(Debug)]
enum Action {
    Module(modules::ModuleParser),
    Grok { field: String, patterns: Vec<grok::Grok>, ignore_missing: bool },
    Dissect { field: String, dissect: dissect::Dissect, ignore_missing: bool },
    Json { field: String, target: Option<String>, overwrite: bool },
    Kv { field: String, field_split: String, value_split: String, target: Option<String> },
    Timestamp { field: String, parser: time::TimeParser, target: String, remove: bool },
    Convert { fields: Vec<(String, FieldType)>, ignore_missing: bool },
    Rename(Vec<(String, String)>),
    AddFields(Vec<(String, Value)>),
    DropFields(Vec<String>),
    DropEvent,
    UserAgent { field: String, target: String },
    GeoIp { field: String, target: String, database: Arc<enrich::GeoIp> },
}

impl Action {
    /// The tag a failure adds to `tags`.
    fn failure_tag(&self) -> &'static str {
        match self {
            Action::Module(_) | Action::Grok { .. } => "_grokparsefailure",
            Action::Dissect { .. } => "_dissectfailure",
            Action::Json { .. } => "_jsonparsefailure",
            Action::Kv { .. } => "_kv_filter_error",
            Action::Timestamp { .. } => "_dateparsefailure",
            Action::Convert { .. } => "_convertfailure",
            Action::UserAgent { .. } => "_useragentparsefailure",
            Action::GeoIp { .. } => "_geoip_lookup_failure",
            Action::Rename(_) | Action::AddFields(_) | Action::DropFields(_) | Action::DropEvent => "_transformfailure",
        }
    }
}

/// One step with its condition and failure policy.
#[derive(Debug)]
struct Step {
    action: Action,
    when: Option<Condition>,
    on_failure: OnFailure,
    /// For error messages: `module nginx`, `transforms[2] (grok)`.
    label: String,
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Keep,
    /// A step dropped it.
    Drop,
}

/// An input's steps, compiled at start-up.
#[derive(Debug, Default)]
pub struct Transforms {
    steps: Vec<Step>,
}

impl Transforms {
    /// Compiles a module (when set) followed by the configured steps; the error names the step.
    pub fn new(
        module: Option<(Module, bool, Option<&str>)>,
        transforms: &[Transform],
        geoip: &mut GeoIpCache,
    ) -> Result<Transforms, String> {
        let mut steps = Vec::new();
        if let Some((module, keep_original, timezone)) = module {
            steps.push(Step {
                action: Action::Module(modules::ModuleParser::new(module, keep_original, timezone)?),
                when: None,
                on_failure: OnFailure::Tag,
                label: format!("module {}", module.name()),
            });
        }
        for (i, transform) in transforms.iter().enumerate() {
            let label = format!("transforms[{i}] ({})", transform.kinds().join(", "));
            let action = compile(transform, geoip).map_err(|e| format!("{label}: {e}"))?;
            let when = transform.when.as_ref().map(Condition::new).transpose().map_err(|e| format!("{label}: {e}"))?;
            steps.push(Step { action, when, on_failure: transform.on_failure, label });
        }
        Ok(Transforms { steps })
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs every step on `doc`.
    pub fn apply(&self, doc: &mut Map<String, Value>) -> Verdict {
        if self.steps.is_empty() {
            return Verdict::Keep;
        }
        // The read time (set by the input) dates times without a year.
        let reference = get_path(doc, "@timestamp")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        for step in &self.steps {
            if step.when.as_ref().is_some_and(|c| !c.matches(doc)) {
                continue;
            }
            match run(&step.action, doc, reference) {
                Ok(Verdict::Keep) => {}
                Ok(Verdict::Drop) => return Verdict::Drop,
                Err(reason) => match step.on_failure {
                    OnFailure::Tag => {
                        record_failure(doc, step.action.failure_tag(), &format!("{}: {reason}", step.label))
                    }
                    OnFailure::Ignore => {}
                    OnFailure::Drop => return Verdict::Drop,
                },
            }
        }
        Verdict::Keep
    }
}

/// GeoIP databases opened so far, shared by the steps that name the same file.
#[derive(Default)]
pub struct GeoIpCache {
    open: Vec<(std::path::PathBuf, Arc<enrich::GeoIp>)>,
}

impl GeoIpCache {
    fn get(&mut self, path: &std::path::Path) -> Result<Arc<enrich::GeoIp>, String> {
        if let Some((_, db)) = self.open.iter().find(|(p, _)| p == path) {
            return Ok(db.clone());
        }
        let db = Arc::new(enrich::GeoIp::open(path)?);
        self.open.push((path.to_path_buf(), db.clone()));
        Ok(db)
    }
}

fn compile(transform: &Transform, geoip: &mut GeoIpCache) -> Result<Action, String> {
    if let Some(g) = &transform.grok {
        let patterns = g
            .patterns
            .iter()
            .map(|p| grok::Grok::compile(p, &g.pattern_definitions).map_err(|e| format!("`{p}`: {e}")))
            .collect::<Result<_, _>>()?;
        return Ok(Action::Grok { field: g.field.clone(), patterns, ignore_missing: g.ignore_missing });
    }
    if let Some(d) = &transform.dissect {
        let dissect = dissect::Dissect::new(&d.tokenizer, &d.target_prefix)?;
        return Ok(Action::Dissect { field: d.field.clone(), dissect, ignore_missing: d.ignore_missing });
    }
    if let Some(j) = &transform.json {
        return Ok(Action::Json { field: j.field.clone(), target: j.target.clone(), overwrite: j.overwrite_keys });
    }
    if let Some(kv) = &transform.kv {
        return Ok(Action::Kv {
            field: kv.field.clone(),
            field_split: kv.field_split.clone(),
            value_split: kv.value_split.clone(),
            target: kv.target.clone(),
        });
    }
    if let Some(t) = &transform.timestamp {
        let parser = time::TimeParser::new(&t.formats, t.timezone.as_deref())?;
        return Ok(Action::Timestamp { field: t.field.clone(), parser, target: t.target.clone(), remove: t.remove });
    }
    if let Some(c) = &transform.convert {
        return Ok(Action::Convert {
            fields: c.fields.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            ignore_missing: c.ignore_missing,
        });
    }
    if let Some(r) = &transform.rename {
        return Ok(Action::Rename(r.fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
    }
    if let Some(a) = &transform.add_fields {
        return Ok(Action::AddFields(a.fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
    }
    if let Some(d) = &transform.drop_fields {
        return Ok(Action::DropFields(d.fields.clone()));
    }
    if transform.drop_event.is_some() {
        return Ok(Action::DropEvent);
    }
    if let Some(u) = &transform.user_agent {
        return Ok(Action::UserAgent { field: u.field.clone(), target: u.target.clone() });
    }
    if let Some(g) = &transform.geoip {
        return Ok(Action::GeoIp {
            field: g.field.clone(),
            target: g.target.clone(),
            database: geoip.get(&g.database)?,
        });
    }
    Err("names no step".into())
}

fn text_field<'a>(doc: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    get_path(doc, field).and_then(Value::as_str)
}

fn run(action: &Action, doc: &mut Map<String, Value>, reference: DateTime<Utc>) -> Result<Verdict, String> {
    match action {
        Action::Module(parser) => parser.apply(doc, reference)?,
        Action::Grok { field, patterns, ignore_missing } => {
            let Some(text) = text_field(doc, field).map(str::to_owned) else {
                return missing(field, *ignore_missing);
            };
            if !patterns.iter().any(|p| p.apply(&text, doc)) {
                return Err(format!("{field} matches none of the patterns"));
            }
        }
        Action::Dissect { field, dissect, ignore_missing } => {
            let Some(text) = text_field(doc, field).map(str::to_owned) else {
                return missing(field, *ignore_missing);
            };
            dissect.apply(&text, doc)?;
        }
        Action::Json { field, target, overwrite } => fields::decode_json(doc, field, target.as_deref(), *overwrite)?,
        Action::Kv { field, field_split, value_split, target } => {
            fields::decode_kv(doc, field, field_split, value_split, target.as_deref())?
        }
        Action::Timestamp { field, parser, target, remove } => {
            let value = get_path(doc, field).ok_or_else(|| format!("no field {field}"))?;
            let time = parser.parse(value, reference)?;
            if *remove {
                remove_path(doc, field);
            }
            set_path(doc, target, Value::from(crate::event::format_timestamp(time.into())));
        }
        Action::Convert { fields, ignore_missing } => {
            let mut failures = Vec::new();
            for (field, to) in fields {
                match fields::convert(doc, field, *to) {
                    Ok(true) => {}
                    Ok(false) if *ignore_missing => {}
                    Ok(false) => failures.push(format!("no field {field}")),
                    Err(e) => failures.push(e),
                }
            }
            if !failures.is_empty() {
                return Err(failures.join("; "));
            }
        }
        Action::Rename(moves) => {
            for (from, to) in moves {
                fields::rename(doc, from, to);
            }
        }
        Action::AddFields(values) => {
            for (path, value) in values {
                set_path(doc, path, value.clone());
            }
        }
        Action::DropFields(paths) => {
            for path in paths {
                remove_path(doc, path);
            }
        }
        Action::DropEvent => return Ok(Verdict::Drop),
        Action::UserAgent { field, target } => enrich::user_agent(doc, field, target)?,
        Action::GeoIp { field, target, database } => database.apply(doc, field, target)?,
    }
    Ok(Verdict::Keep)
}

fn missing(field: &str, ignore: bool) -> Result<Verdict, String> {
    if ignore {
        Ok(Verdict::Keep)
    } else {
        Err(format!("no text field {field}"))
    }
}

/// Adds `tag` to `tags` (once) and `reason` to `error.message` (a list once there are several).
pub fn record_failure(doc: &mut Map<String, Value>, tag: &str, reason: &str) {
    match doc.get_mut("tags") {
        Some(Value::Array(tags)) => {
            if !tags.iter().any(|t| t.as_str() == Some(tag)) {
                tags.push(Value::from(tag));
            }
        }
        _ => {
            doc.insert("tags".into(), Value::Array(vec![Value::from(tag)]));
        }
    }
    let reason = Value::from(reason);
    match get_path(doc, "error.message").cloned() {
        None => set_path(doc, "error.message", reason),
        Some(Value::Array(mut all)) => {
            all.push(reason);
            set_path(doc, "error.message", Value::Array(all));
        }
        Some(earlier) => set_path(doc, "error.message", Value::Array(vec![earlier, reason])),
    }
}

#[cfg(test)]
mod tests;
