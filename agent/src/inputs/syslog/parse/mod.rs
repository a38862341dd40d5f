//! Parsing of one syslog message (a datagram or a TCP frame) into a [`LogEvent`]: the PRI and the
//! choice of format here, the formats in `rfc5424` and `rfc3164`, their timestamps in
//! `timestamp`. The fields of the event are described in the documentation of the syslog module.

mod cursor;
mod rfc3164;
mod rfc5424;
mod timestamp;

#[cfg(test)]
mod tests;

pub use timestamp::TimeZoneHint;

use crate::event::LogEvent;
use chrono::{DateTime, Utc};
use rfc3164::parse_rfc3164;
use rfc5424::{looks_like_rfc5424, parse_rfc5424};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::time::SystemTime;

/// Priority assumed for a message without one: facility user, severity notice (RFC 3164 §4.3.3).
pub const DEFAULT_PRIORITY: u8 = 13;

const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITY_NAMES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

/// Parses one syslog message (a datagram or a TCP frame) into a log event. Never fails: see the
/// module documentation for the fields and for what happens to input that is not syslog.
///
/// `received` is when it arrived (the fallback `@timestamp`, and the reference for the year of
/// RFC 3164 timestamps), `peer` the sender (`source.address`), and `local_year_hint` the zone in
/// which timestamps without a UTC offset are read and their missing year is inferred.
pub fn parse(bytes: &[u8], received: SystemTime, peer: Option<SocketAddr>, local_year_hint: TimeZoneHint) -> LogEvent {
    let line = trim_end(bytes);
    let parsed = parse_line(line, DateTime::<Utc>::from(received), local_year_hint);
    parsed.into_event(received, peer)
}

/// `bytes` without trailing CR, LF and NUL (line terminators that made it into the message).
fn trim_end(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | 0] = bytes {
        bytes = rest;
    }
    bytes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Rfc5424,
    Rfc3164,
    Unknown,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Unknown => "unknown",
        }
    }
}

/// What was understood of a message; byte fields borrow from the input.
#[derive(Debug)]
struct Parsed<'a> {
    format: Format,
    priority: u8,
    version: Option<u32>,
    timestamp: Option<DateTime<Utc>>,
    hostname: Option<&'a [u8]>,
    appname: Option<&'a [u8]>,
    procid: Option<&'a [u8]>,
    msgid: Option<&'a [u8]>,
    structured_data: Option<Map<String, Value>>,
    message: &'a [u8],
    errors: Vec<String>,
}

impl<'a> Parsed<'a> {
    /// Nothing recognised: the whole line is the message.
    fn unknown(line: &'a [u8], priority: u8, error: String) -> Parsed<'a> {
        Parsed { errors: vec![error], ..Parsed::bare(Format::Unknown, priority, line) }
    }

    /// Only a priority: everything after it is the message.
    fn bare(format: Format, priority: u8, message: &'a [u8]) -> Parsed<'a> {
        Parsed {
            format,
            priority,
            version: None,
            timestamp: None,
            hostname: None,
            appname: None,
            procid: None,
            msgid: None,
            structured_data: None,
            message,
            errors: Vec::new(),
        }
    }

    fn into_event(self, received: SystemTime, peer: Option<SocketAddr>) -> LogEvent {
        let at = self.timestamp.map_or(received, SystemTime::from);
        let mut event = LogEvent::new(lossy(self.message), at);
        let facility = self.priority / 8;
        let severity = self.priority % 8;
        event.set("syslog.priority", Value::from(self.priority));
        event.set("syslog.facility", Value::from(facility));
        if let Some(name) = FACILITY_NAMES.get(usize::from(facility)) {
            event.set("syslog.facility_name", Value::from(*name));
        }
        event.set("syslog.severity", Value::from(severity));
        if let Some(name) = SEVERITY_NAMES.get(usize::from(severity)) {
            event.set("syslog.severity_name", Value::from(*name));
        }
        event.set("syslog.format", Value::from(self.format.name()));
        if let Some(version) = self.version {
            event.set("syslog.version", Value::from(version));
        }
        for (path, value) in [
            ("syslog.hostname", self.hostname),
            ("syslog.appname", self.appname),
            ("syslog.procid", self.procid),
            ("syslog.msgid", self.msgid),
        ] {
            if let Some(value) = value {
                event.set(path, Value::String(lossy(value)));
            }
        }
        if let Some(sd) = self.structured_data {
            // Inserted as one object: SD-IDs and parameter names may contain dots, which `set`
            // would read as nesting.
            event.set("syslog.structured_data", Value::Object(sd));
        }
        if let Some(peer) = peer {
            event.set("source.address", Value::String(peer.to_string()));
        }
        if !self.errors.is_empty() {
            event.set("syslog.parse_error", Value::String(self.errors.join("; ")));
        }
        event
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_line(line: &[u8], received: DateTime<Utc>, zone: TimeZoneHint) -> Parsed<'_> {
    let (priority, rest, pri_error) = match parse_pri(line) {
        Ok((priority, rest)) => (priority, rest, None),
        Err(reason) => (DEFAULT_PRIORITY, line, Some(reason)),
    };
    if pri_error.is_none() && looks_like_rfc5424(rest) {
        return match parse_rfc5424(rest, zone) {
            Ok(mut parsed) => {
                parsed.priority = priority;
                parsed
            }
            Err(reason) => Parsed::unknown(line, priority, reason),
        };
    }
    match parse_rfc3164(rest, received, zone) {
        Some(mut parsed) => {
            parsed.priority = priority;
            if let Some(reason) = pri_error {
                parsed.errors.push(format!("{reason}; priority {DEFAULT_PRIORITY} (user.notice) assumed"));
            }
            parsed
        }
        None => match pri_error {
            Some(reason) => Parsed::unknown(line, priority, reason),
            // RFC 3164 §4.3.2: a valid PRI without a valid timestamp; the rest is all MSG.
            None => Parsed::bare(Format::Rfc3164, priority, rest),
        },
    }
}

/// `<PRI>`: the priority and what follows it, or why there is none.
fn parse_pri(line: &[u8]) -> Result<(u8, &[u8]), String> {
    if line.is_empty() {
        return Err("empty message".into());
    }
    if line[0] != b'<' {
        return Err("missing PRI".into());
    }
    let digits = line[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 3 {
        return Err("invalid PRI: expected 1 to 3 digits after '<'".into());
    }
    if line.get(1 + digits) != Some(&b'>') {
        return Err("invalid PRI: no '>' after the digits".into());
    }
    let value = line[1..1 + digits].iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    match u8::try_from(value) {
        Ok(priority) if priority <= 191 => Ok((priority, &line[2 + digits..])),
        _ => Err(format!("invalid PRI: {value} is above 191")),
    }
}
