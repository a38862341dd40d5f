//! `transforms` of an input: the steps applied to each event in order (parsing, event time,
//! field changes, enrichment, dropping), their conditions, and the modules — presets for
//! nginx, Apache and syslog files that stand for a list of such steps. Shaped after Filebeat's
//! processors: one table per step, named by the key that holds its settings.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One step: exactly one of the step keys, plus an optional condition and failure policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Grok: named patterns (`%{IPORHOST:source.address}`) from a standard library.
    pub grok: Option<Grok>,
    /// Dissect: `%{key}` tokens split at the literal text between them.
    pub dissect: Option<Dissect>,
    /// Decodes a field holding a JSON object.
    pub json: Option<DecodeJson>,
    /// Decodes `key=value` pairs.
    pub kv: Option<KeyValue>,
    /// Parses a field into the event time (`@timestamp`).
    pub timestamp: Option<Timestamp>,
    /// Converts field types.
    pub convert: Option<Convert>,
    /// Moves fields.
    pub rename: Option<Rename>,
    /// Sets fields.
    pub add_fields: Option<AddFields>,
    /// Removes fields.
    pub drop_fields: Option<DropFields>,
    /// Drops the event (with `when`, only matching events).
    pub drop_event: Option<DropEvent>,
    /// Parses a user agent string into ECS `user_agent.*`.
    pub user_agent: Option<UserAgent>,
    /// Looks an IP address up in a MaxMind-format database into ECS `*.geo.*`.
    pub geoip: Option<GeoIp>,
    /// The step applies only to events matching this condition.
    pub when: Option<Condition>,
    /// What a failure of this step does to the event.
    #[serde(default)]
    pub on_failure: OnFailure,
}

impl Transform {
    /// The step keys set on this table (valid when exactly one).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        let mut one = |set: bool, name: &'static str| {
            if set {
                kinds.push(name);
            }
        };
        one(self.grok.is_some(), "grok");
        one(self.dissect.is_some(), "dissect");
        one(self.json.is_some(), "json");
        one(self.kv.is_some(), "kv");
        one(self.timestamp.is_some(), "timestamp");
        one(self.convert.is_some(), "convert");
        one(self.rename.is_some(), "rename");
        one(self.add_fields.is_some(), "add_fields");
        one(self.drop_fields.is_some(), "drop_fields");
        one(self.drop_event.is_some(), "drop_event");
        one(self.user_agent.is_some(), "user_agent");
        one(self.geoip.is_some(), "geoip");
        kinds
    }
}

/// What a failing step does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Keep the event, add the step's tag to `tags` and the reason to `error.message` (the
    /// default: nothing is lost, and failures are searchable).
    #[default]
    Tag,
    /// Keep the event unchanged and say nothing.
    Ignore,
    /// Drop the event (counted).
    Drop,
}

fn message() -> String {
    "message".into()
}

/// Grok settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grok {
    /// Field to parse.
    #[serde(default = "message")]
    pub field: String,
    /// Tried in order; the first that matches wins.
    pub patterns: Vec<String>,
    /// Extra named patterns, usable as `%{NAME}` in `patterns` and in each other.
    #[serde(default)]
    pub pattern_definitions: BTreeMap<String, String>,
    /// An event without the field passes untouched (else it is a failure).
    #[serde(default)]
    pub ignore_missing: bool,
}

/// Dissect settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dissect {
    /// Field to split.
    #[serde(default = "message")]
    pub field: String,
    /// E.g. `"%{source.ip} - %{user.name} [%{ts}] \"%{verb} %{path}\""`; `%{}` or `%{?name}`
    /// skips a part, `%{+name}` appends to an earlier key, `%{name->}` takes padding.
    pub tokenizer: String,
    /// Keys go under this prefix (Filebeat's `target_prefix`); empty puts them at the top.
    #[serde(default = "dissect_prefix")]
    pub target_prefix: String,
    /// An event without the field passes untouched.
    #[serde(default)]
    pub ignore_missing: bool,
}

fn dissect_prefix() -> String {
    "dissect".into()
}

/// JSON decoding settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeJson {
    /// Field holding the JSON text.
    #[serde(default = "message")]
    pub field: String,
    /// Where the object's keys go; absent merges them into the event's top level.
    pub target: Option<String>,
    /// Whether decoded keys replace existing ones (else an existing key wins).
    #[serde(default)]
    pub overwrite_keys: bool,
}

/// Key-value decoding settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    /// Field to decode.
    #[serde(default = "message")]
    pub field: String,
    /// Between pairs.
    #[serde(default = "space")]
    pub field_split: String,
    /// Between a key and its value.
    #[serde(default = "equals")]
    pub value_split: String,
    /// Where the pairs go; absent puts them at the top level.
    pub target: Option<String>,
}

fn space() -> String {
    " ".into()
}
fn equals() -> String {
    "=".into()
}

/// Event-time settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    /// Field holding the time text (or epoch number).
    pub field: String,
    /// Tried in order: strftime formats (`%d/%b/%Y:%H:%M:%S %z`), or `ISO8601`, `RFC3339`,
    /// `RFC2822`, `UNIX` (seconds), `UNIX_MS`, `HTTPDATE`, `SYSLOG` (no year: the year of the
    /// event's read time, or the one before when that would put it in the future).
    pub formats: Vec<String>,
    /// Zone of times that carry none: an IANA name (`Europe/Berlin`) or `UTC` (the default).
    pub timezone: Option<String>,
    /// Where the parsed time goes.
    #[serde(default = "at_timestamp")]
    pub target: String,
    /// Removes the source field once parsed.
    #[serde(default)]
    pub remove: bool,
}

fn at_timestamp() -> String {
    "@timestamp".into()
}

/// Types a field can be converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// A 64-bit integer (`"404"` → 404).
    Integer,
    /// A floating-point number.
    Float,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Boolean,
    /// Text.
    String,
    /// An IP address (checked; kept as text).
    Ip,
}

/// Type conversion settings: `fields = { "http.response.status_code" = "integer" }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Convert {
    /// Field path → type.
    pub fields: BTreeMap<String, FieldType>,
    /// A missing field is not a failure.
    #[serde(default = "yes")]
    pub ignore_missing: bool,
}

fn yes() -> bool {
    true
}

/// Moves fields: `fields = { "from" = "to" }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// From → to.
    pub fields: BTreeMap<String, String>,
}

/// Sets fields to values (any TOML value).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AddFields {
    /// Path → value.
    pub fields: BTreeMap<String, Value>,
}

/// Removes fields.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropFields {
    /// Paths.
    pub fields: Vec<String>,
}

/// Drops events (those matching `when`, or all).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropEvent {}

/// User-agent parsing settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserAgent {
    /// Field holding the user agent string.
    #[serde(default = "user_agent_original")]
    pub field: String,
    /// Object the parsed parts go to (`name`, `version`, `os.*`, `device.name`).
    #[serde(default = "user_agent_target")]
    pub target: String,
}

fn user_agent_original() -> String {
    "user_agent.original".into()
}
fn user_agent_target() -> String {
    "user_agent".into()
}

/// GeoIP enrichment settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIp {
    /// Field holding the IP address.
    #[serde(default = "source_ip")]
    pub field: String,
    /// Object the location goes to (`country_iso_code`, `city_name`, `location`…).
    #[serde(default = "source_geo")]
    pub target: String,
    /// A MaxMind-format (`.mmdb`) City or Country database, e.g. GeoLite2-City.mmdb.
    pub database: PathBuf,
}

fn source_ip() -> String {
    "source.ip".into()
}
fn source_geo() -> String {
    "source.geo".into()
}

/// A condition on an event's fields (Filebeat's `when`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Every field equals its value (numbers compare as numbers, `"404"` equals 404).
    Equals(BTreeMap<String, Value>),
    /// Every field's text contains its substring.
    Contains(BTreeMap<String, String>),
    /// Every field's text matches its regular expression.
    Regexp(BTreeMap<String, String>),
    /// Every field is a number within its bounds.
    Range(BTreeMap<String, Range>),
    /// Every field is present.
    HasFields(Vec<String>),
    /// The inner condition does not hold.
    Not(Box<Condition>),
    /// All hold.
    And(Vec<Condition>),
    /// Any holds.
    Or(Vec<Condition>),
}

/// Bounds of a `range` condition.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Greater than.
    pub gt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
}

/// A module: parsing presets for a kind of log file, as Filebeat's modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Module {
    /// nginx access and error logs, each line recognised by its shape.
    #[serde(rename = "nginx")]
    Nginx,
    /// nginx access logs (combined format, optionally with `$host` or forwarded addresses).
    #[serde(rename = "nginx.access")]
    NginxAccess,
    /// nginx error logs.
    #[serde(rename = "nginx.error")]
    NginxError,
    /// Apache access and error logs, each line recognised by its shape.
    #[serde(rename = "apache")]
    Apache,
    /// Apache access logs (combined or common).
    #[serde(rename = "apache.access")]
    ApacheAccess,
    /// Apache error logs (2.2 and 2.4 formats).
    #[serde(rename = "apache.error")]
    ApacheError,
    /// Syslog files written by rsyslog or syslog-ng (BSD or RFC 3339 timestamps).
    #[serde(rename = "syslog")]
    Syslog,
}

impl Module {
    /// The name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Module::Nginx => "nginx",
            Module::NginxAccess => "nginx.access",
            Module::NginxError => "nginx.error",
            Module::Apache => "apache",
            Module::ApacheAccess => "apache.access",
            Module::ApacheError => "apache.error",
            Module::Syslog => "syslog",
        }
    }
}

/// Problems of an input's transforms; `at` names the input (`inputs.file[0]`).
pub(crate) fn problems(origin: &str, at: &str, transforms: &[Transform], timezone: Option<&str>) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    let mut bad =
        |key: String, problem: String, fix: &str| problems.push(ConfigError::invalid(origin, &key, problem, fix));
    if let Some(zone) = timezone {
        if zone.parse::<chrono_tz::Tz>().is_err() {
            bad(
                format!("{at}.timezone"),
                format!("`{zone}` is not a time zone"),
                "use an IANA name such as \"Europe/Berlin\", or \"UTC\"",
            );
        }
    }
    for (i, transform) in transforms.iter().enumerate() {
        let here = format!("{at}.transforms[{i}]");
        let kinds = transform.kinds();
        if kinds.len() != 1 {
            bad(
                here.clone(),
                format!("sets {} steps ({})", kinds.len(), kinds.join(", ")),
                "give each [[…transforms]] table exactly one step key, e.g. grok = { patterns = [\"%{COMBINEDAPACHELOG}\"] }",
            );
        }
        if let Some(grok) = &transform.grok {
            if grok.patterns.is_empty() {
                bad(format!("{here}.grok.patterns"), "is empty".into(), "give at least one pattern");
            }
        }
        if let Some(t) = &transform.timestamp {
            if t.formats.is_empty() {
                bad(format!("{here}.timestamp.formats"), "is empty".into(), "give e.g. [\"ISO8601\"]");
            }
            if let Some(zone) = &t.timezone {
                if zone.parse::<chrono_tz::Tz>().is_err() {
                    bad(
                        format!("{here}.timestamp.timezone"),
                        format!("`{zone}` is not a time zone"),
                        "use an IANA name such as \"Europe/Berlin\", or \"UTC\"",
                    );
                }
            }
        }
        if let Some(kv) = &transform.kv {
            if kv.field_split.is_empty() || kv.value_split.is_empty() {
                bad(format!("{here}.kv"), "has an empty separator".into(), "set field_split and value_split");
            }
        }
        if let Some(geo) = &transform.geoip {
            if !geo.database.is_file() {
                bad(
                    format!("{here}.geoip.database"),
                    format!("`{}` is not a readable file", geo.database.display()),
                    "point it at a MaxMind-format .mmdb file (e.g. GeoLite2-City.mmdb)",
                );
            }
        }
        if let Some(when) = &transform.when {
            condition_problems(when, &format!("{here}.when"), &mut bad);
        }
    }
    problems
}

fn condition_problems(condition: &Condition, at: &str, bad: &mut impl FnMut(String, String, &str)) {
    match condition {
        Condition::Regexp(fields) => {
            for (field, re) in fields {
                if let Err(e) = regex::Regex::new(re) {
                    bad(
                        format!("{at}.regexp.{field}"),
                        format!("is not a valid regular expression: {e}"),
                        "fix the expression",
                    );
                }
            }
        }
        Condition::Not(inner) => condition_problems(inner, &format!("{at}.not"), bad),
        Condition::And(all) | Condition::Or(all) => {
            for (i, inner) in all.iter().enumerate() {
                condition_problems(inner, &format!("{at}[{i}]"), bad);
            }
        }
        Condition::Equals(_) | Condition::Contains(_) | Condition::Range(_) | Condition::HasFields(_) => {}
    }
}
