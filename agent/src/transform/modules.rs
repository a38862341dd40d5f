//! Modules: what Filebeat's nginx, apache and system/syslog modules do to a line, as one step.
//! The line is parsed by the first pattern of its kind that matches; its own time becomes
//! `@timestamp`; fields get their ECS names (`source.ip`, `http.request.method`, `url.original`,
//! `http.response.status_code`, `http.response.body.bytes`, `user_agent.*`…); `event.module`,
//! `event.dataset`, `event.category`, `event.type` and `event.outcome` are set; the line as read
//! goes to `event.original` (unless turned off). A line no pattern reads keeps its text in
//! `message` and fails the step (tagged `_grokparsefailure` by default).

use super::enrich;
use super::grok::Grok;
use super::time::{TimeParser, HTTPDATE};
use crate::event::{get_path, remove_path, set_path};
use millrace_config::agent::transforms::Module;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A quoted field as web servers write it: escapes kept as written.
const QUOTED: &str = r#"(?:[^"\\]|\\.)*"#;

/// What kind of line a pattern reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NginxAccess,
    NginxError,
    ApacheAccess,
    ApacheError,
    Syslog,
}

impl Kind {
    fn module(self) -> &'static str {
        match self {
            Kind::NginxAccess | Kind::NginxError => "nginx",
            Kind::ApacheAccess | Kind::ApacheError => "apache",
            Kind::Syslog => "system",
        }
    }

    fn dataset(self) -> &'static str {
        match self {
            Kind::NginxAccess => "nginx.access",
            Kind::NginxError => "nginx.error",
            Kind::ApacheAccess => "apache.access",
            Kind::ApacheError => "apache.error",
            Kind::Syslog => "system.syslog",
        }
    }

    /// Where the pattern puts the line's time, and its format.
    fn time(self) -> (&'static str, &'static str) {
        match self {
            Kind::NginxAccess => ("nginx.access.time", HTTPDATE),
            Kind::ApacheAccess => ("apache.access.time", HTTPDATE),
            Kind::NginxError => ("nginx.error.time", "%Y/%m/%d %H:%M:%S"),
            Kind::ApacheError => ("apache.error.time", "%a %b %d %H:%M:%S%.f %Y"),
            Kind::Syslog => ("system.syslog.timestamp", "SYSLOG"),
        }
    }

    fn patterns(self) -> Vec<String> {
        let access = |time: &str| {
            format!(
                // Plain tokens rather than the library's IPORHOST and HTTPDATE: the address and
                // time are checked when parsed (source.ip, @timestamp), at a third of the cost.
                r#"^(?<source.address>\S+) (?:-|(?<{ident}>\S+)) (?:-|(?<user.name>\S+)) \[(?<{time}>[^\]]+)\] "(?:(?<http.request.method>[A-Za-z]+) (?<url.original>\S+)(?: HTTP/(?<http.version>[0-9.]+))?|(?<{info}>{QUOTED}))" (?:-|%{{INT:http.response.status_code:int}}) (?:-|%{{INT:http.response.body.bytes:int}})(?: "(?:-|(?<http.request.referrer>{QUOTED}))" "(?:-|(?<user_agent.original>{QUOTED}))")?"#,
                ident = if time.starts_with("nginx") { "nginx.access.identity" } else { "apache.access.user.identity" },
                info = if time.starts_with("nginx") { "nginx.access.info" } else { "apache.access.info" },
            )
        };
        match self {
            Kind::NginxAccess => vec![access("nginx.access.time")],
            Kind::ApacheAccess => vec![access("apache.access.time")],
            Kind::NginxError => vec![
                r"^(?<nginx.error.time>[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}) \[%{LOGLEVEL:log.level}\] %{POSINT:process.pid:int}#%{NONNEGINT:process.thread.id:int}: (?:\*%{NONNEGINT:nginx.error.connection_id:int} )?%{GREEDYMULTILINE:message}"
                    .into(),
            ],
            Kind::ApacheError => vec![
                // 2.4: [time] [module:level] [pid N:tid M] [client ip:port] AH00000: text
                r"^\[%{HTTPDERROR_DATE:apache.error.time}\] \[(?:%{WORD:apache.error.module})?:%{LOGLEVEL:log.level}\] \[pid %{POSINT:process.pid:int}(?::tid %{INT:process.thread.id:int})?\](?: \[client (?:%{IP:source.address}|%{NOTSPACE:source.address})(?::%{POSINT:source.port:int})?\])?(?: (?<error.code>AH[0-9]+):)? %{GREEDYMULTILINE:message}"
                    .into(),
                // 2.2: [time] [level] [client ip] text
                r"^\[%{HTTPDERROR_DATE:apache.error.time}\] \[%{LOGLEVEL:log.level}\](?: \[client %{IPORHOST:source.address}\])? %{GREEDYMULTILINE:message}"
                    .into(),
            ],
            Kind::Syslog => vec![
                r"^(?:<%{NONNEGINT:log.syslog.priority:int}>)?(?:%{SYSLOGTIMESTAMP:system.syslog.timestamp}|%{TIMESTAMP_ISO8601:system.syslog.timestamp}) %{SYSLOGHOST:host.hostname} %{PROG:process.name}(?:\[%{POSINT:process.pid:int}\])?: %{GREEDYMULTILINE:message}"
                    .into(),
                r"^(?:<%{NONNEGINT:log.syslog.priority:int}>)?(?:%{SYSLOGTIMESTAMP:system.syslog.timestamp}|%{TIMESTAMP_ISO8601:system.syslog.timestamp}) %{SYSLOGHOST:host.hostname} %{GREEDYMULTILINE:message}"
                    .into(),
            ],
        }
    }
}

/// The kinds a module reads, in the order they are tried.
fn kinds(module: Module) -> &'static [Kind] {
    match module {
        Module::Nginx => &[Kind::NginxAccess, Kind::NginxError],
        Module::NginxAccess => &[Kind::NginxAccess],
        Module::NginxError => &[Kind::NginxError],
        Module::Apache => &[Kind::ApacheAccess, Kind::ApacheError],
        Module::ApacheAccess => &[Kind::ApacheAccess],
        Module::ApacheError => &[Kind::ApacheError],
        Module::Syslog => &[Kind::Syslog],
    }
}

/// The start of a multiline event in the module's files, when its lines may continue (error
/// logs with stack traces or long messages); None reads one line per event.
pub fn multiline_start(module: Module) -> Option<&'static str> {
    match module {
        Module::NginxError => Some(r"^[0-9]{4}/[0-9]{2}/[0-9]{2} "),
        Module::ApacheError => Some(r"^\["),
        _ => None,
    }
}

/// A module, compiled.
#[derive(Debug)]
pub struct ModuleParser {
    module: Module,
    patterns: Vec<(Kind, Grok)>,
    times: Vec<(Kind, TimeParser)>,
    keep_original: bool,
}

impl ModuleParser {
    /// Compiles the module's patterns; `timezone` reads times without a zone.
    pub fn new(module: Module, keep_original: bool, timezone: Option<&str>) -> Result<ModuleParser, String> {
        let mut patterns = Vec::new();
        let mut times = Vec::new();
        for &kind in kinds(module) {
            for pattern in kind.patterns() {
                let grok =
                    Grok::compile(&pattern, &BTreeMap::new()).map_err(|e| format!("module {}: {e}", module.name()))?;
                patterns.push((kind, grok));
            }
            let mut formats = vec![kind.time().1.to_string()];
            if kind == Kind::Syslog {
                formats.push("ISO8601".into());
            }
            times.push((kind, TimeParser::new(&formats, timezone)?));
        }
        Ok(ModuleParser { module, patterns, times, keep_original })
    }

    /// Parses the event's `message`; Err (the event unchanged but for `event.module` and, when
    /// the module names one kind only, `event.dataset`) when no pattern reads it.
    pub fn apply(&self, doc: &mut Map<String, Value>, reference: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
        let [first, ..] = kinds(self.module) else { return Ok(()) };
        set_path(doc, "event.module", Value::from(first.module()));
        if kinds(self.module).len() == 1 {
            set_path(doc, "event.dataset", Value::from(first.dataset()));
        }
        let Some(Value::String(line)) = get_path(doc, "message").cloned() else {
            return Err("no message to parse".into());
        };
        let mut parsed = Map::new();
        let Some(kind) = self.patterns.iter().find_map(|(kind, grok)| grok.apply(&line, &mut parsed).then_some(*kind))
        else {
            let names: Vec<&str> = kinds(self.module).iter().map(|k| k.dataset()).collect();
            return Err(format!("the line is not a {} line", names.join(" or ")));
        };
        // Parsed: the line moves to event.original, the fields join the event.
        remove_path(doc, "message");
        if self.keep_original {
            set_path(doc, "event.original", Value::String(line));
        }
        merge(doc, parsed);
        set_path(doc, "event.dataset", Value::from(kind.dataset()));
        let (time_field, _) = kind.time();
        if let Some((_, parser)) = self.times.iter().find(|(k, _)| *k == kind) {
            if let Some(text) = get_path(doc, time_field).cloned() {
                match parser.parse(&text, reference) {
                    Ok(time) => {
                        set_path(doc, "@timestamp", Value::from(crate::event::format_timestamp(time.into())));
                        remove_path(doc, time_field);
                    }
                    // The rest of the line is good: kept, and the time failure said.
                    Err(e) => {
                        super::record_failure(doc, "_dateparsefailure", &format!("module {}: {e}", self.module.name()))
                    }
                }
            }
        }
        match kind {
            Kind::NginxAccess | Kind::ApacheAccess => web_access(doc),
            Kind::NginxError | Kind::ApacheError => web_error(doc),
            Kind::Syslog => {}
        }
        Ok(())
    }
}

/// Moves the parsed fields (a tree) into the event, object by object.
fn merge(doc: &mut Map<String, Value>, parsed: Map<String, Value>) {
    for (key, value) in parsed {
        match (doc.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(inner)) => merge(existing, inner),
            (_, value) => {
                doc.insert(key, value);
            }
        }
    }
}

fn source_ip(doc: &mut Map<String, Value>) {
    if let Some(Value::String(address)) = get_path(doc, "source.address") {
        if let Ok(ip) = address.parse::<std::net::IpAddr>() {
            set_path(doc, "source.ip", Value::from(ip.to_string()));
        }
    }
}

fn web_access(doc: &mut Map<String, Value>) {
    source_ip(doc);
    set_path(doc, "event.category", Value::from(vec!["web"]));
    set_path(doc, "event.type", Value::from(vec!["access"]));
    if let Some(status) = get_path(doc, "http.response.status_code").and_then(Value::as_i64) {
        set_path(doc, "event.outcome", Value::from(if status < 400 { "success" } else { "failure" }));
    }
    if let Some(Value::String(url)) = get_path(doc, "url.original").cloned() {
        let (path, query) = match url.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (url.as_str(), None),
        };
        set_path(doc, "url.path", Value::from(path));
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            set_path(doc, "url.query", Value::from(query));
        }
        let last = path.rsplit('/').next().unwrap_or_default();
        if let Some((_, extension)) = last.rsplit_once('.').filter(|(stem, ext)| !stem.is_empty() && !ext.is_empty()) {
            set_path(doc, "url.extension", Value::from(extension));
        }
    }
    if get_path(doc, "user_agent.original").is_some() {
        // An agent woothee does not know keeps its original text and nothing more.
        let _ = enrich::user_agent(doc, "user_agent.original", "user_agent");
    }
}

fn web_error(doc: &mut Map<String, Value>) {
    source_ip(doc);
    set_path(doc, "event.category", Value::from(vec!["web"]));
    set_path(doc, "event.type", Value::from(vec!["error"]));
}

#[cfg(test)]
mod tests;
