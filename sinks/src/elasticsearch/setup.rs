//! `millrace sink setup`: what an Elasticsearch sink's indices need before the first document,
//! installed as `filebeat setup` does — an ILM policy (rollover for data streams, an optional
//! delete phase) and a composable index template over the sink's index names with ECS mappings
//! for the agent's fields and its modules' fields, shard settings, the policy and, for
//! `data_stream = true`, the data stream flag. Each object carries a fingerprint of its body in
//! `_meta`, so running setup again leaves an unchanged object alone, replaces a changed one, and
//! does not touch one someone else made unless told to overwrite it.

use super::index::IndexName;
use crate::http::{describe_reqwest, excerpt, read_body, Auth};
use millrace_config::sink::ElasticsearchSink;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Largest answer read from Elasticsearch here (a template or policy, not documents).
const ANSWER_LIMIT: usize = 4 << 20;
/// Bumped when what setup installs changes in a way the fingerprint should not hide.
const SETUP_VERSION: u64 = 1;

/// What became of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist.
    Created,
    /// It existed with another body (an older millrace's, or a changed configuration).
    Updated,
    /// It is already what setup would install.
    Unchanged,
    /// Someone else's object of that name; left alone (the reason says how to replace it).
    Kept(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Created => write!(f, "created"),
            Outcome::Updated => write!(f, "updated"),
            Outcome::Unchanged => write!(f, "unchanged"),
            Outcome::Kept(why) => write!(f, "kept: {why}"),
        }
    }
}

/// Setup errors.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The settings cannot make a client or an index name.
    #[error("{0}")]
    Settings(String),
    /// Elasticsearch could not be reached or answered unreadably.
    #[error("{what}: {reason}")]
    Request {
        /// The request, e.g. `PUT /_ilm/policy/millrace-logs`.
        what: String,
        /// Why it failed.
        reason: String,
    },
}

/// One object to install: its API path and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// What it is, for the report (`ILM policy millrace-logs`).
    pub label: String,
    /// `/_ilm/policy/{name}` or `/_index_template/{name}`.
    pub path: String,
    /// The body to PUT, `_meta` included.
    pub body: Value,
}

/// The objects setup installs for `settings` (sink `name`), in order (the policy before the
/// template that names it).
pub fn objects(name: &str, settings: &ElasticsearchSink) -> Result<Vec<Object>, SetupError> {
    let setup = &settings.setup;
    let index = IndexName::parse(&settings.index).map_err(SetupError::Settings)?;
    let pattern = index.pattern();
    let mut objects = Vec::new();
    let policy_name = setup.ilm.then(|| setup.ilm_policy.clone().unwrap_or_else(|| format!("millrace-{name}")));
    if let Some(policy_name) = &policy_name {
        let mut hot = Map::new();
        if settings.data_stream {
            // Rollover needs a data stream (or an alias); daily indices roll over by name.
            hot.insert(
                "rollover".into(),
                json!({ "max_age": setup.rollover_max_age, "max_primary_shard_size": setup.rollover_max_primary_shard_size }),
            );
        }
        let mut phases = json!({ "hot": { "min_age": "0ms", "actions": hot } });
        if let Some(after) = &setup.delete_after {
            phases["delete"] = json!({ "min_age": after, "actions": { "delete": {} } });
        }
        let policy = stamped(json!({ "phases": phases }));
        objects.push(Object {
            label: format!("ILM policy {policy_name}"),
            path: format!("/_ilm/policy/{policy_name}"),
            body: json!({ "policy": policy }),
        });
    }
    let template_name = setup.template_name.clone().unwrap_or_else(|| format!("millrace-{name}"));
    let mut index_settings = json!({
        "index.number_of_shards": setup.shards,
        "index.number_of_replicas": setup.replicas,
    });
    if let Some(policy_name) = &policy_name {
        index_settings["index.lifecycle.name"] = Value::from(policy_name.as_str());
    }
    let mut template = json!({
        "index_patterns": [pattern],
        "priority": setup.priority,
        "version": SETUP_VERSION,
        "template": {
            "settings": index_settings,
            "mappings": {
                // Strings nobody mapped are keywords (exact values, aggregatable), as ECS wants.
                "dynamic_templates": [{ "strings_as_keyword": {
                    "match_mapping_type": "string",
                    "mapping": { "type": "keyword", "ignore_above": 1024 },
                }}],
                "properties": ecs_properties(),
            },
        },
    });
    if settings.data_stream {
        template["data_stream"] = json!({});
    }
    let kind = if settings.data_stream { ", data stream" } else { "" };
    objects.push(Object {
        label: format!("index template {template_name} ({pattern}{kind})"),
        path: format!("/_index_template/{template_name}"),
        body: stamped(template),
    });
    Ok(objects)
}

/// `body` with `_meta` naming millrace and the fingerprint of the rest.
fn stamped(mut body: Value) -> Value {
    let fingerprint = fingerprint(&body);
    body["_meta"] = json!({ "managed_by": "millrace", "fingerprint": fingerprint });
    body
}

/// FNV-1a over the compact JSON (serde_json's maps keep keys sorted, so equal bodies match).
fn fingerprint(body: &Value) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The `_meta` of an object as Elasticsearch returns it from GET `path`.
fn stored_meta(path: &str, answer: &Value) -> Option<Value> {
    if path.starts_with("/_ilm/") {
        // {"<name>": {"version", "modified_date", "policy": {…, "_meta"}}}
        answer.as_object()?.values().next()?.get("policy")?.get("_meta").cloned()
    } else {
        // {"index_templates": [{"name", "index_template": {…, "_meta"}}]}
        answer.get("index_templates")?.get(0)?.get("index_template")?.get("_meta").cloned()
    }
}

/// What setup would do with `object` given what GET answered (None: not found).
pub fn decide(object: &Object, stored: Option<&Value>, overwrite: bool) -> Option<Outcome> {
    let stored = stored?;
    let meta = stored_meta(&object.path, stored);
    let ours = meta.as_ref().and_then(|m| m.get("managed_by")).and_then(Value::as_str) == Some("millrace");
    if !ours && !overwrite {
        return Some(Outcome::Kept("it was not made by millrace; `--overwrite` replaces it".into()));
    }
    let wanted = object.body.get("policy").unwrap_or(&object.body)["_meta"]["fingerprint"].as_str();
    let have = meta.as_ref().and_then(|m| m.get("fingerprint")).and_then(Value::as_str);
    (ours && wanted.is_some() && wanted == have).then_some(Outcome::Unchanged)
}

/// Installs the objects of the sink `name` on its first reachable endpoint; one line per object.
pub async fn install(
    name: &str,
    settings: &ElasticsearchSink,
    overwrite: bool,
) -> Result<Vec<(String, Outcome)>, SetupError> {
    let objects = objects(name, settings)?;
    let client = millrace_http_client::builder(&settings.tls)
        .map_err(|e| SetupError::Settings(e.to_string()))?
        .timeout(Duration::from_millis(settings.common.request_timeout.0))
        .build()
        .map_err(|e| SetupError::Settings(describe_reqwest(&e)))?;
    let auth = super::auth(settings);
    let mut last_error = None;
    for endpoint in &settings.endpoints {
        let base = endpoint.trim_end_matches('/');
        match install_on(&client, &auth, base, &objects, overwrite).await {
            Ok(report) => return Ok(report),
            // Another node may be up: the same objects are tried there.
            Err(e @ SetupError::Request { .. }) if is_unreachable(&e) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| SetupError::Settings("endpoints lists no node".into())))
}

fn is_unreachable(error: &SetupError) -> bool {
    matches!(error, SetupError::Request { reason, .. } if reason.starts_with("unreachable"))
}

async fn install_on(
    client: &reqwest::Client,
    auth: &Auth,
    base: &str,
    objects: &[Object],
    overwrite: bool,
) -> Result<Vec<(String, Outcome)>, SetupError> {
    let mut report = Vec::new();
    for object in objects {
        let (status, stored) = call(client, auth, reqwest::Method::GET, base, &object.path, None).await?;
        let stored = match status {
            200 => Some(stored),
            404 => None,
            _ => return Err(refused("GET", object, status, &stored)),
        };
        if let Some(outcome) = decide(object, stored.as_ref(), overwrite) {
            report.push((object.label.clone(), outcome));
            continue;
        }
        let (status, answer) = call(client, auth, reqwest::Method::PUT, base, &object.path, Some(&object.body)).await?;
        if status != 200 {
            return Err(refused("PUT", object, status, &answer));
        }
        report.push((object.label.clone(), if stored.is_some() { Outcome::Updated } else { Outcome::Created }));
    }
    Ok(report)
}

fn refused(method: &str, object: &Object, status: u16, answer: &Value) -> SetupError {
    let reason =
        answer["error"]["reason"].as_str().map_or_else(|| excerpt(answer.to_string().as_bytes(), 300), str::to_string);
    SetupError::Request { what: format!("{method} {}", object.path), reason: format!("answered {status}: {reason}") }
}

async fn call(
    client: &reqwest::Client,
    auth: &Auth,
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), SetupError> {
    let what = format!("{method} {path}");
    let mut request = client.request(method, format!("{base}{path}"));
    request = match auth {
        Auth::None => request,
        Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
        Auth::Header(value) => request.header(reqwest::header::AUTHORIZATION, value.expose()),
    };
    if let Some(body) = body {
        request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
    }
    let response = request.send().await.map_err(|e| SetupError::Request {
        what: what.clone(),
        reason: format!("unreachable: {}", describe_reqwest(&e)),
    })?;
    let status = response.status().as_u16();
    let bytes = read_body(response, ANSWER_LIMIT)
        .await
        .map_err(|e| SetupError::Request { what: what.clone(), reason: e.to_string() })?;
    let answer = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| SetupError::Request {
            what,
            reason: format!("answer is not JSON ({e}): {}", excerpt(&bytes, 200)),
        })?
    };
    Ok((status, answer))
}

/// ECS mappings of the fields the agent writes: its own (host, input, log file), the modules'
/// (web access and error logs, syslog), user agent and GeoIP enrichment.
fn ecs_properties() -> Value {
    let keyword = || json!({ "type": "keyword", "ignore_above": 1024 });
    let long = || json!({ "type": "long" });
    let text = || json!({ "type": "text" });
    let mut fields: Vec<(&str, Value)> = vec![
        ("@timestamp", json!({ "type": "date" })),
        ("message", text()),
        ("tags", keyword()),
        ("event.original", json!({ "type": "keyword", "index": false, "doc_values": false })),
        ("error.message", text()),
        ("http.response.status_code", long()),
        ("http.response.body.bytes", long()),
        ("url.original", json!({ "type": "keyword", "ignore_above": 8191 })),
        (
            "user_agent.original",
            json!({ "type": "keyword", "ignore_above": 1024, "fields": { "text": { "type": "text" } } }),
        ),
        ("source.ip", json!({ "type": "ip" })),
        ("source.port", long()),
        ("source.geo.location", json!({ "type": "geo_point" })),
        ("process.pid", long()),
        ("process.thread.id", long()),
        ("nginx.error.connection_id", long()),
        ("log.offset", long()),
        ("log.file.device", long()),
        ("log.file.inode", long()),
        ("event.schema", long()),
    ];
    for name in [
        "event.dataset",
        "event.module",
        "event.kind",
        "event.category",
        "event.type",
        "event.outcome",
        "error.code",
        "host.name",
        "host.hostname",
        "input.type",
        "input.name",
        "log.level",
        "log.flags",
        "log.file.path",
        "log.file.fingerprint",
        "source.address",
        "user.name",
        "http.request.method",
        "http.request.referrer",
        "http.version",
        "url.path",
        "url.query",
        "url.extension",
        "user_agent.name",
        "user_agent.version",
        "user_agent.os.name",
        "user_agent.os.version",
        "user_agent.os.full",
        "user_agent.device.name",
        "process.name",
        "source.geo.continent_code",
        "source.geo.continent_name",
        "source.geo.country_iso_code",
        "source.geo.country_name",
        "source.geo.region_iso_code",
        "source.geo.region_name",
        "source.geo.city_name",
        "source.geo.postal_code",
        "source.geo.timezone",
        "apache.error.module",
        "service.name",
    ] {
        fields.push((name, keyword()));
    }
    let mut root = Map::new();
    for (path, mapping) in fields {
        let mut at = &mut root;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                at.insert(part.to_string(), mapping.clone());
                break;
            }
            let entry = at.entry(part.to_string()).or_insert_with(|| json!({ "properties": {} }));
            let Some(Value::Object(next)) = entry.get_mut("properties") else { break };
            at = next;
        }
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests;
