//! Syslog input: receives RFC 5424 and RFC 3164 (BSD) messages over UDP (one datagram, one
//! message) and TCP (RFC 6587 framing: octet counting or newline-terminated, detected per
//! message) and turns each message into a [`LogEvent`].
//!
//! Parsing never fails: whatever arrives becomes an event, and what could not be understood is
//! said in `syslog.parse_error`, so a misconfigured sender shows up in the logs instead of
//! disappearing.
//!
//! # Record format
//!
//! Besides the fields every log event has (see [`crate::event`]), a syslog event carries:
//!
//! - `message`: the MSG part — RFC 5424: after the structured data, a leading UTF-8 BOM removed;
//!   RFC 3164: after `TAG[PID]: `, or after the header when there is no tag. When nothing could
//!   be parsed (`syslog.format` = `unknown`), the whole line. Always lossy UTF-8 (invalid bytes
//!   become U+FFFD), trailing CR, LF and NUL removed.
//! - `@timestamp`: the message's own timestamp converted to UTC when it could be parsed, else the
//!   time it was received. Timestamps without a UTC offset (RFC 3164 `Mmm dd hh:mm:ss`, ISO 8601
//!   without offset) are read in an assumed zone ([`TimeZoneHint`]; the listeners assume the
//!   agent's local zone); a missing year is the one that puts the timestamp nearest to the receive
//!   time, so `Dec 31 23:59:59` received on 1 January belongs to the previous year.
//! - `syslog.priority`: PRI, 0–191; 13 (user.notice) when the message has none or an invalid one
//!   (RFC 3164 §4.3.3), which `syslog.parse_error` then says.
//! - `syslog.facility` (PRI / 8) and `syslog.facility_name`: `kern`, `user`, `mail`, `daemon`,
//!   `auth`, `syslog`, `lpr`, `news`, `uucp`, `cron`, `authpriv`, `ftp`, `ntp`, `security`,
//!   `console`, `solaris-cron`, `local0` … `local7`.
//! - `syslog.severity` (PRI % 8) and `syslog.severity_name`: `emerg`, `alert`, `crit`, `err`,
//!   `warning`, `notice`, `info`, `debug`.
//! - `syslog.format`: `rfc5424`, `rfc3164` or `unknown`.
//! - `syslog.version`: RFC 5424 only, the VERSION number (1).
//! - `syslog.hostname`: HOSTNAME, when present (the NILVALUE `-` means absent).
//! - `syslog.appname`: RFC 5424 APP-NAME, or the RFC 3164 TAG.
//! - `syslog.procid`: RFC 5424 PROCID, or the RFC 3164 `[PID]` (a string in both cases).
//! - `syslog.msgid`: RFC 5424 MSGID.
//! - `syslog.structured_data`: RFC 5424 only, unless NILVALUE: an object SD-ID → object of
//!   PARAM-NAME → value, escapes (`\"`, `\\`, `\]`) resolved; a parameter repeated within an
//!   element becomes an array of its values.
//! - `source.address`: the sender, `ip:port`.
//! - `syslog.parse_error`: present when something could not be parsed, a short reason
//!   (`missing PRI`, `invalid TIMESTAMP …`, `invalid STRUCTURED-DATA: …`, …). With `syslog.format`
//!   `rfc5424` or `rfc3164` only that part was skipped; with `unknown` nothing was recognised.
//!
//! How RFC 3164 is read, since it describes practice more than a format: after `<PRI>` comes a
//! timestamp (`Mmm dd hh:mm:ss`, optionally with fractional seconds, a year before the time, a
//! leading `*` or `.` and a trailing ` UTC:` as Cisco devices send; or an ISO 8601 / RFC 3339
//! timestamp as rsyslog's forwarding formats send), then the HOSTNAME unless the next word is
//! already a tag (`sshd[42]:`, `kernel:`) or ends with `:` (the sender wrote to `/dev/log`
//! without a hostname, or it is a Cisco mnemonic), then an optional `TAG[PID]:`. A message with a
//! valid PRI but no recognisable timestamp is, as RFC 3164 §4.3.2 prescribes, kept whole as the
//! MSG and stamped with the receive time.

use crate::event::LogEvent;
use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// Priority assumed for a message without one: facility user, severity notice (RFC 3164 §4.3.3).
pub const DEFAULT_PRIORITY: u8 = 13;

/// Default bound on concurrent TCP connections; further clients wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default time a TCP connection may stay silent before it is closed. Long, because senders such
/// as rsyslog keep one connection open for hours and a quiet host is not a dead one; it exists
/// to free the slots of peers that vanished without closing.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The largest UDP payload there can be.
const MAX_DATAGRAM: usize = 65_535;

/// Bytes read from a TCP connection at a time.
const READ_CHUNK: usize = 64 * 1024;

/// At most one warning of each kind per listener in this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// More digits than this is not an octet count (it would announce a frame of a gigabyte or more).
const MAX_COUNT_DIGITS: usize = 9;

/// RFC 3164 TAGs are specified as at most 32 characters; real ones are longer (`org.gnome.Shell…`).
const MAX_TAG_LEN: usize = 64;

/// Longest `[PID]` content accepted in an RFC 3164 tag (RFC 5424 allows 128 for PROCID).
const MAX_PID_LEN: usize = 128;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

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

const MONTHS: [&[u8; 3]; 12] =
    [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];

/// The time zone assumed for timestamps that carry no UTC offset: RFC 3164's `Mmm dd hh:mm:ss`
/// (in the sender's local time, which the receiver cannot know) and ISO 8601 timestamps without
/// an offset. The year such timestamps lack is inferred in this zone too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeZoneHint {
    /// The agent's local zone, as rsyslog and most receivers assume: senders and receiver are
    /// usually configured alike.
    #[default]
    Local,
    /// UTC.
    Utc,
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
}

impl TimeZoneHint {
    /// The instant at which the wall clock of this zone showed `naive`.
    fn to_utc(self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            TimeZoneHint::Utc => Some(naive.and_utc()),
            TimeZoneHint::Fixed(offset) => offset.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc)),
            TimeZoneHint::Local => match Local.from_local_datetime(&naive).earliest() {
                Some(t) => Some(t.with_timezone(&Utc)),
                None => {
                    // The wall-clock time was skipped by a daylight-saving change; reading it with
                    // the offset of that moment is off by at most the size of the jump.
                    let offset = Local.offset_from_utc_datetime(&naive);
                    naive.checked_sub_signed(TimeDelta::seconds(offset.local_minus_utc().into())).map(|t| t.and_utc())
                }
            },
        }
    }
}

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
        Parsed {
            format: Format::Unknown,
            priority,
            version: None,
            timestamp: None,
            hostname: None,
            appname: None,
            procid: None,
            msgid: None,
            structured_data: None,
            message: line,
            errors: vec![error],
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
            None => Parsed {
                format: Format::Rfc3164,
                priority,
                version: None,
                timestamp: None,
                hostname: None,
                appname: None,
                procid: None,
                msgid: None,
                structured_data: None,
                message: rest,
                errors: Vec::new(),
            },
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

/// A byte cursor over a message.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, mut keep: impl FnMut(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let len = rest.iter().take_while(|&&b| keep(b)).count();
        self.pos += len;
        &rest[..len]
    }

    /// Exactly `len` ASCII digits as a number.
    fn number(&mut self, len: usize) -> Option<u32> {
        let digits = self.rest().get(..len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += len;
        Some(digits.iter().fold(0, |n, b| n * 10 + u32::from(b - b'0')))
    }
}

/// After PRI: `VERSION SP` followed by a timestamp or NILVALUE. Only then is the message held to
/// RFC 5424; BSD content that merely starts with a number is not.
fn looks_like_rfc5424(rest: &[u8]) -> bool {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=3).contains(&digits)
        && rest[0] != b'0'
        && rest.get(digits) == Some(&b' ')
        && matches!(rest.get(digits + 1), Some(b'0'..=b'9' | b'-'))
}

/// `VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]`.
/// Fails only when the header is cut short; a bad timestamp or structured data is reported and
/// skipped.
fn parse_rfc5424(rest: &[u8], zone: TimeZoneHint) -> Result<Parsed<'_>, String> {
    let mut c = Cursor::new(rest);
    let mut errors = Vec::new();
    let version = header_field(&mut c, "VERSION")?.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    let timestamp = match header_field(&mut c, "TIMESTAMP")? {
        b"-" => None,
        token => {
            let parsed = parse_iso(token).and_then(|(naive, offset)| match offset {
                Some(offset) => offset.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc)),
                // Not allowed by RFC 5424, but sent by some: read like an RFC 3164 time.
                None => zone.to_utc(naive),
            });
            if parsed.is_none() {
                errors.push(format!("invalid TIMESTAMP {:?}", lossy(token)));
            }
            parsed
        }
    };
    let hostname = nil_to_none(header_field(&mut c, "HOSTNAME")?);
    let appname = nil_to_none(header_field(&mut c, "APP-NAME")?);
    let procid = nil_to_none(header_field(&mut c, "PROCID")?);
    let msgid = nil_to_none(header_field(&mut c, "MSGID")?);
    let sd_start = c.pos;
    let (structured_data, message) = if c.at_end() {
        // STRUCTURED-DATA is mandatory, but a header that simply ends has nothing to lose.
        (None, &rest[rest.len()..])
    } else {
        match parse_structured_data(&mut c) {
            Ok(sd) => {
                c.eat(b' ');
                (sd, c.rest())
            }
            Err(reason) => {
                errors.push(format!("invalid STRUCTURED-DATA: {reason}"));
                (None, &rest[sd_start..])
            }
        }
    };
    let message = message.strip_prefix(UTF8_BOM).unwrap_or(message);
    Ok(Parsed {
        format: Format::Rfc5424,
        priority: DEFAULT_PRIORITY,
        version: Some(version),
        timestamp,
        hostname,
        appname,
        procid,
        msgid,
        structured_data,
        message,
        errors,
    })
}

/// The next space-terminated RFC 5424 header field (and the space).
fn header_field<'a>(c: &mut Cursor<'a>, name: &str) -> Result<&'a [u8], String> {
    let token = c.take_while(|b| b != b' ');
    if token.is_empty() {
        return Err(format!("RFC 5424 header without {name}"));
    }
    c.eat(b' ');
    Ok(token)
}

fn nil_to_none(field: &[u8]) -> Option<&[u8]> {
    (field != b"-").then_some(field)
}

/// `-` or one or more `[SD-ID *(SP PARAM-NAME="PARAM-VALUE")]`.
fn parse_structured_data(c: &mut Cursor<'_>) -> Result<Option<Map<String, Value>>, String> {
    if c.eat(b'-') {
        return Ok(None);
    }
    if c.peek() != Some(b'[') {
        return Err("neither '-' nor '['".into());
    }
    let mut sd = Map::new();
    while c.eat(b'[') {
        let id = c.take_while(is_sd_name_char);
        if id.is_empty() {
            return Err("empty SD-ID".into());
        }
        // An SD-ID must not repeat (RFC 5424 §6.3.2); if it does, its parameters are merged.
        let params = sd.entry(lossy(id)).or_insert_with(|| Value::Object(Map::new()));
        loop {
            match c.peek() {
                Some(b']') => {
                    c.pos += 1;
                    break;
                }
                Some(b' ') => {
                    c.pos += 1;
                    let name = c.take_while(is_sd_name_char);
                    if name.is_empty() {
                        return Err(format!("empty PARAM-NAME in [{}]", lossy(id)));
                    }
                    if !(c.eat(b'=') && c.eat(b'"')) {
                        return Err(format!("PARAM-NAME {} not followed by =\"", lossy(name)));
                    }
                    let value = param_value(c).ok_or_else(|| format!("unterminated value of {}", lossy(name)))?;
                    if let Value::Object(params) = params {
                        add_param(params, lossy(name), value);
                    }
                }
                None => return Err(format!("unterminated [{}]", lossy(id))),
                Some(_) => return Err(format!("unexpected character in [{}]", lossy(id))),
            }
        }
    }
    Ok(Some(sd))
}

/// SD-NAME: printable US-ASCII except `=`, space, `]` and `"`.
fn is_sd_name_char(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'=' | b']' | b'"')
}

/// A PARAM-VALUE after its opening quote, through the closing one. `\"`, `\\` and `\]` stand for
/// the escaped character; any other backslash is an ordinary character (RFC 5424 §6.3.3).
fn param_value(c: &mut Cursor<'_>) -> Option<String> {
    let mut value = Vec::new();
    loop {
        let b = c.peek()?;
        c.pos += 1;
        match b {
            b'"' => return Some(lossy(&value)),
            b'\\' if matches!(c.peek(), Some(b'"' | b'\\' | b']')) => {
                value.push(c.peek()?);
                c.pos += 1;
            }
            _ => value.push(b),
        }
    }
}

/// A parameter may repeat within an element (RFC 5424 §6.3.3): the values become an array.
fn add_param(params: &mut Map<String, Value>, name: String, value: String) {
    match params.get_mut(&name) {
        None => {
            params.insert(name, Value::String(value));
        }
        Some(Value::Array(values)) => values.push(Value::String(value)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(value)]);
        }
    }
}

/// `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]`, RFC 3339 as RFC 5424 restricts it, read leniently
/// (lower-case `t`/`z`, any number of fraction digits, `±hhmm`, no offset at all). The offset is
/// None when absent.
fn parse_iso(token: &[u8]) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let mut c = Cursor::new(token);
    let year = c.number(4)?;
    let month = c.eat(b'-').then(|| c.number(2)).flatten()?;
    let day = c.eat(b'-').then(|| c.number(2)).flatten()?;
    if !(c.eat(b'T') || c.eat(b't')) {
        return None;
    }
    let time = parse_clock(&mut c)?;
    let offset = match c.peek() {
        None => None,
        Some(b'Z' | b'z') => {
            c.pos += 1;
            Some(FixedOffset::east_opt(0)?)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let hours = c.number(2)?;
            c.eat(b':');
            let minutes = c.number(2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i32::try_from(hours * 3600 + minutes * 60).ok()?;
            Some(FixedOffset::east_opt(if sign == b'-' { -seconds } else { seconds })?)
        }
        Some(_) => return None,
    };
    if !c.at_end() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some((date.and_time(time), offset))
}

/// `hh:mm:ss[.frac]`; a leap second (`:60`) is kept as chrono represents it.
fn parse_clock(c: &mut Cursor<'_>) -> Option<NaiveTime> {
    let hour = c.number(2)?;
    let minute = c.eat(b':').then(|| c.number(2)).flatten()?;
    let mut second = c.eat(b':').then(|| c.number(2)).flatten()?;
    let mut nanos = 0;
    if c.peek() == Some(b'.') && c.rest().get(1).is_some_and(u8::is_ascii_digit) {
        c.pos += 1;
        let digits = c.take_while(|b| b.is_ascii_digit());
        // Nanoseconds are all chrono keeps; further digits are dropped.
        for i in 0..9 {
            nanos = nanos * 10 + digits.get(i).map_or(0, |b| u32::from(b - b'0'));
        }
    }
    if second == 60 {
        second = 59;
        nanos += 1_000_000_000;
    }
    NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
}

/// An RFC 3164 header (timestamp, hostname, tag) and the MSG after it, or None when `rest` does
/// not start with a timestamp.
fn parse_rfc3164(rest: &[u8], received: DateTime<Utc>, zone: TimeZoneHint) -> Option<Parsed<'_>> {
    let mut c = Cursor::new(rest);
    let timestamp = if rest.get(4) == Some(&b'-') && rest[..4].iter().all(u8::is_ascii_digit) {
        let (naive, offset) = parse_iso(c.take_while(|b| b != b' '))?;
        match offset {
            Some(offset) => offset.from_local_datetime(&naive).single()?.with_timezone(&Utc),
            None => zone.to_utc(naive)?,
        }
    } else {
        let wall = parse_bsd_timestamp(&mut c)?;
        // Cisco IOS says which zone: `*Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: …`.
        let zone = if c.rest().starts_with(b" UTC:") || c.rest().starts_with(b" GMT:") {
            c.pos += 4;
            TimeZoneHint::Utc
        } else {
            zone
        };
        wall.resolve(received, zone)?
    };
    let body = if c.eat(b':') {
        // Cisco IOS: the timestamp ends with a colon and no hostname follows.
        c.eat(b' ');
        Body::message(c.rest())
    } else if c.at_end() {
        Body::message(c.rest())
    } else if c.peek() == Some(b' ') {
        c.take_while(|b| b == b' ');
        parse_body(c.rest())
    } else {
        return None;
    };
    Some(Parsed {
        format: Format::Rfc3164,
        priority: DEFAULT_PRIORITY,
        version: None,
        timestamp: Some(timestamp),
        hostname: body.hostname,
        appname: body.tag,
        procid: body.pid,
        msgid: None,
        structured_data: None,
        message: body.message,
        errors: Vec::new(),
    })
}

/// A BSD timestamp as written: a wall-clock time, maybe without a year, in an unstated zone.
struct WallClock {
    year: Option<i32>,
    month: u32,
    day: u32,
    time: NaiveTime,
}

impl WallClock {
    /// The instant, reading the wall clock in `zone`; without a year, the year that puts it
    /// nearest to `received`.
    fn resolve(&self, received: DateTime<Utc>, zone: TimeZoneHint) -> Option<DateTime<Utc>> {
        match self.year {
            Some(year) => zone.to_utc(NaiveDate::from_ymd_opt(year, self.month, self.day)?.and_time(self.time)),
            None => nearest_year(self.month, self.day, self.time, received, zone),
        }
    }
}

/// `Mmm dd [yyyy ]hh:mm:ss[.frac]`, optionally preceded by Cisco's `*` (clock not set) or `.`
/// (clock not synchronised).
fn parse_bsd_timestamp(c: &mut Cursor<'_>) -> Option<WallClock> {
    let _ = c.eat(b'*') || c.eat(b'.');
    let name = c.rest().get(..3)?;
    let month = MONTHS.iter().position(|m| name.eq_ignore_ascii_case(&m[..]))?;
    c.pos += 3;
    if c.take_while(|b| b == b' ').is_empty() {
        return None;
    }
    let day = c.take_while(|b| b.is_ascii_digit());
    if day.is_empty() || day.len() > 2 || !c.eat(b' ') {
        return None;
    }
    let day = day.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    let month = u32::try_from(month + 1).ok()?;
    // Cisco's `service timestamps … year`: `Mar  1 2024 18:48:50`.
    let year = match c.rest() {
        [y1, y2, y3, y4, b' ', ..] if [y1, y2, y3, y4].iter().all(|b| b.is_ascii_digit()) => {
            let year = c.number(4)?;
            c.pos += 1;
            Some(i32::try_from(year).ok()?)
        }
        _ => None,
    };
    let time = parse_clock(c)?;
    Some(WallClock { year, month, day, time })
}

/// The timestamp `month`/`day` `time` in the year before, of or after `received` that is nearest
/// to it: a message stamped `Dec 31 23:59:59` that arrives just after New Year is last year's.
fn nearest_year(
    month: u32,
    day: u32,
    time: NaiveTime,
    received: DateTime<Utc>,
    zone: TimeZoneHint,
) -> Option<DateTime<Utc>> {
    let year = received.year();
    [year - 1, year, year + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
        .filter_map(|date| zone.to_utc(date.and_time(time)))
        .min_by_key(|t| (*t - received).abs())
}

/// What follows an RFC 3164 timestamp: `[HOSTNAME SP][TAG[[PID]]: ]MSG`.
struct Body<'a> {
    hostname: Option<&'a [u8]>,
    tag: Option<&'a [u8]>,
    pid: Option<&'a [u8]>,
    message: &'a [u8],
}

impl<'a> Body<'a> {
    fn message(message: &'a [u8]) -> Body<'a> {
        Body { hostname: None, tag: None, pid: None, message }
    }
}

fn parse_body(rest: &[u8]) -> Body<'_> {
    if let Some(body) = parse_tag(rest) {
        // Written to /dev/log (systemd-journald forwarding, local daemons): no hostname.
        return body;
    }
    let mut c = Cursor::new(rest);
    let first = c.take_while(|b| b != b' ');
    if first.ends_with(b":") {
        // Not a hostname (none ends with a colon) but the start of the message, e.g. a Cisco
        // mnemonic `%LINK-3-UPDOWN:`.
        return Body::message(rest);
    }
    c.take_while(|b| b == b' ');
    let body = parse_tag(c.rest()).unwrap_or_else(|| Body::message(c.rest()));
    Body { hostname: Some(first), ..body }
}

/// `TAG[PID]: ` or `TAG: ` at the start of `s`, and the message after it. The colon must be
/// followed by a space or the end, so an IPv6 hostname is not taken for a tag.
fn parse_tag(s: &[u8]) -> Option<Body<'_>> {
    let len = s.iter().take_while(|&&b| is_tag_char(b)).count();
    if len == 0 || len > MAX_TAG_LEN {
        return None;
    }
    let mut end = len;
    let mut pid = None;
    if s.get(end) == Some(&b'[') {
        let inside = &s[end + 1..];
        let close = inside.iter().take(MAX_PID_LEN + 1).position(|&b| b == b']' || b == b' ')?;
        if inside[close] != b']' {
            return None;
        }
        pid = Some(&inside[..close]);
        end += close + 2;
    }
    if s.get(end) != Some(&b':') {
        return None;
    }
    let message = match s.get(end + 1) {
        None => &s[end + 1..],
        Some(b' ') => &s[end + 2..],
        Some(_) => return None,
    };
    Some(Body { hostname: None, tag: Some(&s[..len]), pid, message })
}

/// Characters of an RFC 3164 TAG as seen in practice (`postfix/smtpd`, `systemd-logind`,
/// `(sd-pam)`, `org.gnome.Shell`), not `%`: Cisco mnemonics stay in the message.
fn is_tag_char(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b':' | b'[' | b']' | b'%')
}

/// Splits a TCP byte stream into syslog messages (RFC 6587).
///
/// Each message's framing is detected at its first byte: a digit 1–9 starts octet counting
/// (`MSG-LEN SP MSG`), anything else a non-transparent frame ended by LF or NUL (a CR before the
/// LF is removed). Empty lines between frames are skipped. Frames longer than `max_len` are cut
/// to `max_len` bytes and the rest is discarded up to the end of the frame (the announced length,
/// or the next terminator), so memory stays bounded by `max_len` plus the bytes pushed at once.
/// Digits not followed by a space are not an octet count: that frame is read as a line, which
/// resynchronises a stream at its next newline.
#[derive(Debug)]
pub struct Framer {
    max_len: usize,
    state: FrameState,
    buf: Vec<u8>,
    ready: VecDeque<Vec<u8>>,
    truncated: u64,
    malformed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameState {
    /// Between frames.
    Boundary,
    /// Reading the digits of an octet count (also kept in `buf`, in case they are not one).
    Count { len: usize, digits: usize },
    /// Inside an octet-counted frame: `keep` more bytes go into the frame, then `discard` are
    /// dropped (the part beyond `max_len`).
    Octets { keep: usize, discard: usize },
    /// Dropping the rest of an oversized octet-counted frame.
    DiscardOctets { remaining: usize },
    /// Inside a non-transparent frame.
    Line,
    /// Dropping the rest of an oversized non-transparent frame, up to its terminator.
    DiscardLine,
}

impl Framer {
    /// A framer for frames of at most `max_len` bytes (at least 1).
    pub fn new(max_len: usize) -> Framer {
        Framer {
            max_len: max_len.max(1),
            state: FrameState::Boundary,
            buf: Vec::new(),
            ready: VecDeque::new(),
            truncated: 0,
            malformed: 0,
        }
    }

    /// Adds bytes received from the stream; complete frames become available from
    /// [`Framer::next_frame`].
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.state {
                FrameState::Boundary => match data[0] {
                    b'\n' | b'\r' | 0 => data = &data[1..],
                    digit @ b'1'..=b'9' => {
                        self.buf.push(digit);
                        self.state = FrameState::Count { len: usize::from(digit - b'0'), digits: 1 };
                        data = &data[1..];
                    }
                    _ => self.state = FrameState::Line,
                },
                FrameState::Count { len, digits } => match data[0] {
                    digit @ b'0'..=b'9' if digits < MAX_COUNT_DIGITS => {
                        self.buf.push(digit);
                        self.state =
                            FrameState::Count { len: len * 10 + usize::from(digit - b'0'), digits: digits + 1 };
                        data = &data[1..];
                    }
                    b' ' => {
                        self.buf.clear();
                        let keep = len.min(self.max_len);
                        self.buf.reserve_exact(keep);
                        self.state = FrameState::Octets { keep, discard: len - keep };
                        data = &data[1..];
                    }
                    _ => {
                        // Not an octet count: the digits so far start a line; this byte is
                        // read again as part of it.
                        self.malformed += 1;
                        self.state = FrameState::Line;
                    }
                },
                FrameState::Octets { keep, discard } => {
                    let n = keep.min(data.len());
                    self.buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if n < keep {
                        self.state = FrameState::Octets { keep: keep - n, discard };
                    } else {
                        self.emit();
                        if discard > 0 {
                            self.truncated += 1;
                            self.state = FrameState::DiscardOctets { remaining: discard };
                        } else {
                            self.state = FrameState::Boundary;
                        }
                    }
                }
                FrameState::DiscardOctets { remaining } => {
                    let n = remaining.min(data.len());
                    data = &data[n..];
                    self.state = if n < remaining {
                        FrameState::DiscardOctets { remaining: remaining - n }
                    } else {
                        FrameState::Boundary
                    };
                }
                FrameState::Line => {
                    let end = data.iter().position(|&b| b == b'\n' || b == 0);
                    let segment = &data[..end.unwrap_or(data.len())];
                    // One byte beyond the maximum is allowed: it may be the CR of a CRLF.
                    let room = self.max_len.saturating_add(1).saturating_sub(self.buf.len());
                    let take = segment.len().min(room);
                    self.buf.extend_from_slice(&segment[..take]);
                    let overflow = take < segment.len();
                    match end {
                        Some(end) => {
                            data = &data[end + 1..];
                            if !overflow && self.buf.last() == Some(&b'\r') {
                                self.buf.pop();
                            }
                            if overflow || self.buf.len() > self.max_len {
                                self.buf.truncate(self.max_len);
                                self.truncated += 1;
                            }
                            self.emit();
                            self.state = FrameState::Boundary;
                        }
                        None => {
                            data = &[];
                            let full = self.buf.len() > self.max_len && self.buf.last() != Some(&b'\r');
                            if overflow || full {
                                self.buf.truncate(self.max_len);
                                self.truncated += 1;
                                self.emit();
                                self.state = FrameState::DiscardLine;
                            }
                        }
                    }
                }
                FrameState::DiscardLine => match data.iter().position(|&b| b == b'\n' || b == 0) {
                    Some(end) => {
                        data = &data[end + 1..];
                        self.state = FrameState::Boundary;
                    }
                    None => data = &[],
                },
            }
        }
    }

    /// Queues the frame in `buf` (unless empty: blank lines are not messages).
    fn emit(&mut self) {
        if !self.buf.is_empty() {
            self.ready.push_back(std::mem::take(&mut self.buf));
        }
    }

    /// The next complete frame, in stream order.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// The stream ended: an unterminated last line becomes a frame (senders often omit the final
    /// newline). Returns how many bytes of an incomplete octet-counted frame were dropped.
    pub fn finish(&mut self) -> usize {
        let dropped = match self.state {
            FrameState::Line | FrameState::Count { .. } => {
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                self.emit();
                0
            }
            FrameState::Octets { .. } => std::mem::take(&mut self.buf).len(),
            FrameState::Boundary | FrameState::DiscardOctets { .. } | FrameState::DiscardLine => 0,
        };
        self.buf = Vec::new();
        self.state = FrameState::Boundary;
        dropped
    }

    /// How many frames were longer than the maximum and cut.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// How many frames started with digits that were not an octet count.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

/// Why a syslog listener could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyslogError {
    /// The listening socket could not be set up (address in use, a port below 1024 without the
    /// privilege, an address not on this host…).
    #[error("cannot listen for syslog over {transport} on {addr}: {source}")]
    Bind {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Settings of a syslog listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Longest message kept, in bytes; longer ones are truncated (and counted, and warned about).
    pub max_len: usize,
    /// TCP: connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// TCP: a connection silent this long is closed; None keeps it open forever.
    pub idle_timeout: Option<Duration>,
    /// The zone of timestamps that carry no UTC offset.
    pub zone: TimeZoneHint,
}

impl ServerOptions {
    /// Defaults: [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_IDLE_TIMEOUT`], the local time zone.
    pub fn new(max_len: usize) -> ServerOptions {
        ServerOptions {
            max_len,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            zone: TimeZoneHint::Local,
        }
    }
}

/// Binds a UDP socket for [`serve_udp`] (port 0 picks a free port; see `local_addr`).
///
/// The kernel's receive buffer keeps its system default (`net.core.rmem_default`); bursts beyond
/// it are dropped by the kernel. A caller that needs more can bind and size the socket itself.
pub async fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, SyslogError> {
    let socket = UdpSocket::bind(addr).await.map_err(|source| SyslogError::Bind { transport: "UDP", addr, source })?;
    // Bursts arrive faster than events are handed on; a larger kernel buffer (capped by
    // net.core.rmem_max) holds them instead of dropping datagrams. Best effort.
    if let Err(e) = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, UDP_RECEIVE_BUFFER) {
        tracing::debug!(%addr, error = %e, "could not enlarge the UDP receive buffer");
    }
    Ok(socket)
}

/// Requested kernel receive buffer of a UDP syslog socket.
const UDP_RECEIVE_BUFFER: usize = 8 << 20;

/// Binds a TCP listener for [`serve_tcp`] (port 0 picks a free port; see `local_addr`).
pub async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, SyslogError> {
    let error = |source| SyslogError::Bind { transport: "TCP", addr, source };
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(error)?;
    // A restarted agent can listen again at once, while connections of its previous run linger
    // in TIME_WAIT.
    socket.set_reuseaddr(true).map_err(error)?;
    // Accepted connections inherit keepalive, which eventually notices senders that vanished
    // without closing.
    socket.set_keepalive(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    socket.listen(1024).map_err(error)
}

/// Receives syslog over UDP on `addr` until `shutdown` turns true (or its sender is dropped) or
/// `tx`'s receiver is gone. Messages longer than `max_len` are truncated.
pub async fn run_udp(
    addr: SocketAddr,
    max_len: usize,
    tx: mpsc::Sender<LogEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    serve_udp(bind_udp(addr).await?, ServerOptions::new(max_len), tx, shutdown).await
}

/// Receives syslog over TCP on `addr` until `shutdown` turns true (or its sender is dropped) or
/// `tx`'s receiver is gone; then every connection is closed before it returns. Messages longer
/// than `max_len` are truncated.
pub async fn run_tcp(
    addr: SocketAddr,
    max_len: usize,
    tx: mpsc::Sender<LogEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    serve_tcp(bind_tcp(addr).await?, ServerOptions::new(max_len), tx, shutdown).await
}

/// Receives syslog on a bound UDP socket, one message per datagram, until `shutdown` turns true
/// (or its sender is dropped) or `tx`'s receiver is gone. While `tx` is full, datagrams wait in
/// the kernel's buffer (and are dropped by it when that overflows).
pub async fn serve_udp(
    socket: UdpSocket,
    options: ServerOptions,
    tx: mpsc::Sender<LogEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    let local = socket.local_addr().map_or_else(|_| "?".to_string(), |addr| addr.to_string());
    tracing::info!(addr = %local, "syslog UDP input listening");
    let max_len = options.max_len.clamp(1, MAX_DATAGRAM);
    // One byte more than kept, to tell a datagram of exactly max_len from a longer one.
    let mut buf = vec![0u8; max_len + 1];
    let truncations = WarnLimiter::new();
    let receive_errors = WarnLimiter::new();
    loop {
        let (len, peer) = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(error) => {
                    // Transient (ICMP errors reported on the socket, ENOBUFS): keep receiving.
                    if let Some(total) = receive_errors.record(1) {
                        tracing::warn!(addr = %local, %error, total, "syslog UDP receive failed");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if len > max_len {
            if let Some(total) = truncations.record(1) {
                tracing::warn!(
                    %peer,
                    max_len,
                    total,
                    "syslog datagram longer than the maximum message length truncated"
                );
            }
        }
        let event = parse(&buf[..len.min(max_len)], SystemTime::now(), Some(peer), options.zone);
        if !forward(&tx, event, &mut shutdown).await {
            break;
        }
    }
    tracing::info!(addr = %local, "syslog UDP input stopped");
    Ok(())
}

/// Receives syslog on a bound TCP listener, one task per connection (at most
/// `options.max_connections`), until `shutdown` turns true (or its sender is dropped) or `tx`'s
/// receiver is gone; then it waits for the connections to close. While `tx` is full, connections
/// stop reading, so TCP flow control slows the senders down.
pub async fn serve_tcp(
    listener: TcpListener,
    options: ServerOptions,
    tx: mpsc::Sender<LogEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    let local = listener.local_addr().map_or_else(|_| "?".to_string(), |addr| addr.to_string());
    tracing::info!(addr = %local, max_connections = options.max_connections, "syslog TCP input listening");
    let shared = Arc::new(Shared { options, truncations: WarnLimiter::new(), bad_counts: WarnLimiter::new() });
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let at_limit = WarnLimiter::new();
    let mut connections = JoinSet::new();
    loop {
        // Finished connections are collected so the set does not grow with every one ever made.
        while connections.try_join_next().is_some() {}
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if let Some(total) = at_limit.record(1) {
                    tracing::warn!(addr = %local, max_connections = options.max_connections, total,
                        "syslog TCP connection limit reached; new connections wait until one closes");
                }
                tokio::select! {
                    biased;
                    _ = stopped(&mut shutdown) => break,
                    _ = tx.closed() => break,
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            _ = tx.closed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(addr = %local, %error, "syslog TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let tx = tx.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _slot = permit;
            handle_connection(stream, peer, &shared, &tx, shutdown).await;
        });
    }
    drop(listener);
    // Connections watch the same signal (or the same closed channel) and end promptly.
    while connections.join_next().await.is_some() {}
    tracing::info!(addr = %local, "syslog TCP input stopped");
    Ok(())
}

/// What the connections of one TCP listener share.
struct Shared {
    options: ServerOptions,
    truncations: WarnLimiter,
    bad_counts: WarnLimiter,
}

async fn handle_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    tx: &mpsc::Sender<LogEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "syslog connection opened");
    let max_len = shared.options.max_len;
    let mut framer = Framer::new(max_len);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let read = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => {
                tracing::debug!(%peer, "syslog connection closed for shutdown");
                return;
            }
            _ = tx.closed() => return,
            read = read_some(&mut stream, &mut buf, shared.options.idle_timeout) => read,
        };
        let received = SystemTime::now();
        let ended = match read {
            Ok(Some(0)) => {
                let dropped = framer.finish();
                if dropped > 0 {
                    tracing::debug!(%peer, dropped, "syslog connection closed in the middle of an octet-counted frame");
                }
                true
            }
            Ok(Some(len)) => {
                let (truncated, malformed) = (framer.truncated(), framer.malformed());
                framer.push(&buf[..len]);
                if framer.truncated() > truncated {
                    if let Some(total) = shared.truncations.record(framer.truncated() - truncated) {
                        tracing::warn!(
                            %peer,
                            max_len,
                            total,
                            "syslog frame longer than the maximum message length truncated, its rest discarded"
                        );
                    }
                }
                if framer.malformed() > malformed {
                    if let Some(total) = shared.bad_counts.record(framer.malformed() - malformed) {
                        tracing::warn!(
                            %peer,
                            total,
                            "syslog frame starts with digits that are no octet count; read up to the next newline"
                        );
                    }
                }
                false
            }
            Ok(None) => {
                tracing::debug!(%peer, "idle syslog connection closed");
                return;
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "syslog connection failed");
                return;
            }
        };
        while let Some(frame) = framer.next_frame() {
            let event = parse(&frame, received, Some(peer), shared.options.zone);
            if !forward(tx, event, &mut shutdown).await {
                return;
            }
        }
        if ended {
            tracing::debug!(%peer, "syslog connection closed by the sender");
            return;
        }
    }
}

/// One read; None when nothing arrived within `idle`.
async fn read_some(stream: &mut TcpStream, buf: &mut [u8], idle: Option<Duration>) -> std::io::Result<Option<usize>> {
    match idle {
        Some(idle) => match tokio::time::timeout(idle, stream.read(buf)).await {
            Ok(read) => read.map(Some),
            Err(_) => Ok(None),
        },
        None => stream.read(buf).await.map(Some),
    }
}

/// Hands `event` to the pipeline, waiting while its queue is full (that wait is the
/// backpressure). False when the pipeline is gone or shutdown was asked for meanwhile.
async fn forward(tx: &mpsc::Sender<LogEvent>, event: LogEvent, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        biased;
        sent = tx.send(event) => sent.is_ok(),
        _ = stopped(shutdown) => false,
    }
}

/// Completes once shutdown is asked for. A dropped sender can never ask any more, so it counts
/// as asking.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Counts occurrences of a problem and allows a warning about it at most once per
/// [`WARN_INTERVAL`], so a misbehaving sender cannot flood the agent's own log.
struct WarnLimiter {
    origin: Instant,
    /// Milliseconds since `origin` before which no warning is due.
    next_ms: AtomicU64,
    total: AtomicU64,
}

impl WarnLimiter {
    fn new() -> WarnLimiter {
        WarnLimiter { origin: Instant::now(), next_ms: AtomicU64::new(0), total: AtomicU64::new(0) }
    }

    /// Counts `n` more occurrences; the running total when a warning is due now.
    fn record(&self, n: u64) -> Option<u64> {
        let total = self.total.fetch_add(n, Ordering::Relaxed) + n;
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        let due = now >= next
            && self
                .next_ms
                .compare_exchange(next, now.saturating_add(interval), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        due.then_some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::get_path;
    use tokio::io::AsyncWriteExt;

    const RECEIVED: &str = "2024-01-15T12:00:00Z";
    const WAIT: Duration = Duration::from_secs(5);

    fn at(rfc3339: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().into()
    }

    /// Parses as received at `received`, timestamps without offset read as UTC.
    fn parse_at(bytes: &[u8], received: &str) -> LogEvent {
        parse(bytes, at(received), None, TimeZoneHint::Utc)
    }

    fn field<'a>(event: &'a LogEvent, path: &str) -> &'a Value {
        get_path(&event.doc, path).unwrap_or(&Value::Null)
    }

    fn absent(event: &LogEvent, paths: &[&str]) {
        for path in paths {
            assert_eq!(field(event, path), &Value::Null, "{path} should be absent in {:?}", event.doc);
        }
    }

    #[test]
    fn rfc5424_example_with_bom_and_nil_fields() {
        // RFC 5424 §6.5, example 1.
        let e = parse_at(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
            RECEIVED,
        );
        assert_eq!(field(&e, "message"), "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(field(&e, "@timestamp"), "2003-10-11T22:14:15.003Z");
        assert_eq!(field(&e, "syslog.format"), "rfc5424");
        assert_eq!(field(&e, "syslog.version"), 1);
        assert_eq!(field(&e, "syslog.priority"), 34);
        assert_eq!(field(&e, "syslog.facility"), 4);
        assert_eq!(field(&e, "syslog.facility_name"), "auth");
        assert_eq!(field(&e, "syslog.severity"), 2);
        assert_eq!(field(&e, "syslog.severity_name"), "crit");
        assert_eq!(field(&e, "syslog.hostname"), "mymachine.example.com");
        assert_eq!(field(&e, "syslog.appname"), "su");
        assert_eq!(field(&e, "syslog.msgid"), "ID47");
        assert_eq!(field(&e, "event.schema"), 1);
        absent(&e, &["syslog.procid", "syslog.structured_data", "syslog.parse_error", "source.address"]);
    }

    #[test]
    fn rfc5424_example_with_offset_and_no_sd() {
        // RFC 5424 §6.5, example 2: the offset is applied, microseconds kept to milliseconds.
        let e = parse_at(
            b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
            RECEIVED,
        );
        assert_eq!(field(&e, "@timestamp"), "2003-08-24T12:14:15.000Z");
        assert_eq!(field(&e, "syslog.facility_name"), "local4");
        assert_eq!(field(&e, "syslog.severity_name"), "notice");
        assert_eq!(field(&e, "syslog.hostname"), "192.0.2.1");
        assert_eq!(field(&e, "syslog.appname"), "myproc");
        assert_eq!(field(&e, "syslog.procid"), "8710");
        assert_eq!(field(&e, "message"), "%% It's time to make the do-nuts.");
        absent(&e, &["syslog.msgid", "syslog.structured_data", "syslog.parse_error"]);
    }

    #[test]
    fn rfc5424_examples_with_structured_data() {
        // RFC 5424 §6.5, examples 3 and 4.
        let e = parse_at(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" \
              eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry...",
            RECEIVED,
        );
        assert_eq!(field(&e, "message"), "An application event log entry...");
        assert_eq!(
            field(&e, "syslog.structured_data"),
            &serde_json::json!({"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}})
        );
        let e = parse_at(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" \
              eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
            RECEIVED,
        );
        assert_eq!(field(&e, "message"), "");
        assert_eq!(field(&e, "syslog.structured_data")["examplePriority@32473"]["class"], "high");
        assert_eq!(field(&e, "syslog.structured_data")["exampleSDID@32473"]["eventID"], "1011");
        absent(&e, &["syslog.parse_error"]);
    }

    #[test]
    fn structured_data_escapes_repeats_and_dots() {
        let e = parse_at(
            br#"<14>1 2024-01-15T10:00:00Z h a 1 m [origin ip="10.0.0.1" ip="10.0.0.2" ip="10.0.0.3"][x.y@1 q="say \"hi\"" b="C:\\dir" r="a\]b" o="\n kept" e=""] msg"#,
            RECEIVED,
        );
        let sd = field(&e, "syslog.structured_data");
        assert_eq!(sd["origin"]["ip"], serde_json::json!(["10.0.0.1", "10.0.0.2", "10.0.0.3"]));
        // Keys with dots stay keys: the object is not split into nested paths.
        assert_eq!(sd["x.y@1"]["q"], r#"say "hi""#);
        assert_eq!(sd["x.y@1"]["b"], r"C:\dir");
        assert_eq!(sd["x.y@1"]["r"], "a]b");
        assert_eq!(sd["x.y@1"]["o"], r"\n kept");
        assert_eq!(sd["x.y@1"]["e"], "");
        assert_eq!(field(&e, "message"), "msg");
    }

    #[test]
    fn rfc5424_nil_values_and_received_time() {
        let e = parse_at(b"<13>1 - - - - - -", RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "rfc5424");
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T12:00:00.000Z");
        assert_eq!(field(&e, "message"), "");
        absent(&e, &["syslog.hostname", "syslog.appname", "syslog.procid", "syslog.msgid", "syslog.parse_error"]);
        // A header that ends after MSGID: STRUCTURED-DATA is missing but nothing is lost.
        let e = parse_at(b"<13>1 - host app - -", RECEIVED);
        assert_eq!(field(&e, "syslog.hostname"), "host");
        absent(&e, &["syslog.parse_error"]);
    }

    #[test]
    fn rfc5424_partial_failures_keep_the_header() {
        let e = parse_at(b"<13>1 2024-13-45T99:00:00Z host app 7 - - text", RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "rfc5424");
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T12:00:00.000Z");
        assert_eq!(field(&e, "syslog.hostname"), "host");
        assert_eq!(field(&e, "message"), "text");
        assert!(field(&e, "syslog.parse_error").as_str().unwrap().contains("invalid TIMESTAMP"));

        let e = parse_at(br#"<13>1 2024-01-15T10:00:00Z host app 7 - [id a="unterminated] text"#, RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "rfc5424");
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T10:00:00.000Z");
        assert_eq!(field(&e, "message"), r#"[id a="unterminated] text"#);
        assert!(field(&e, "syslog.parse_error").as_str().unwrap().starts_with("invalid STRUCTURED-DATA"));
        absent(&e, &["syslog.structured_data"]);

        let e = parse_at(b"<13>1 2024-01-15T10:00:00Z host app 7 - {not sd} text", RECEIVED);
        assert!(field(&e, "syslog.parse_error").as_str().unwrap().starts_with("invalid STRUCTURED-DATA"));
    }

    #[test]
    fn rfc5424_lenient_timestamps() {
        let e = parse_at(b"<13>1 2024-01-15t10:00:00.123456789+0130 h a - - - m", RECEIVED);
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T08:30:00.123Z");
        // No offset (not RFC 5424, but sent): read in the hinted zone.
        let e = parse(
            b"<13>1 2024-01-15T10:00:00 h a - - - m",
            at(RECEIVED),
            None,
            TimeZoneHint::Fixed(FixedOffset::east_opt(3600).unwrap()),
        );
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T09:00:00.000Z");
        let e = parse_at(b"<13>1 2016-12-31T23:59:60Z h a - - - leap", RECEIVED);
        absent(&e, &["syslog.parse_error"]);
        assert_eq!(field(&e, "@timestamp"), "2017-01-01T00:00:00.000Z");
    }

    #[test]
    fn rfc5424_cut_short_is_unknown() {
        let line = "<34>1 2003-10-11T22:14:15.003Z mymachine";
        let e = parse_at(line.as_bytes(), RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "unknown");
        assert_eq!(field(&e, "message"), line);
        // The PRI was valid, so it is kept.
        assert_eq!(field(&e, "syslog.priority"), 34);
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T12:00:00.000Z");
        assert_eq!(field(&e, "syslog.parse_error"), "RFC 5424 header without APP-NAME");
    }

    #[test]
    fn rfc3164_examples() {
        // RFC 3164 §5.4.
        let e = parse_at(
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            "2003-10-12T00:00:00Z",
        );
        assert_eq!(field(&e, "syslog.format"), "rfc3164");
        assert_eq!(field(&e, "@timestamp"), "2003-10-11T22:14:15.000Z");
        assert_eq!(field(&e, "syslog.hostname"), "mymachine");
        assert_eq!(field(&e, "syslog.appname"), "su");
        assert_eq!(field(&e, "message"), "'su root' failed for lonvick on /dev/pts/8");
        absent(&e, &["syslog.procid", "syslog.version", "syslog.parse_error", "syslog.msgid"]);

        let e = parse_at(b"Use the BFG!", RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "unknown");
        assert_eq!(field(&e, "message"), "Use the BFG!");
        assert_eq!(field(&e, "syslog.priority"), 13);
        assert_eq!(field(&e, "syslog.facility_name"), "user");
        assert_eq!(field(&e, "syslog.severity_name"), "notice");
        assert_eq!(field(&e, "syslog.parse_error"), "missing PRI");

        let e = parse_at(b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", "2024-02-06T00:00:00Z");
        assert_eq!(field(&e, "@timestamp"), "2024-02-05T17:32:18.000Z");
        assert_eq!(field(&e, "syslog.hostname"), "10.0.0.99");
        assert_eq!(field(&e, "message"), "Use the BFG!");
        absent(&e, &["syslog.appname"]);

        // "CST" is taken for the hostname, as the RFC says a relay would.
        let e = parse_at(
            b"<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.",
            "2024-08-24T06:00:00Z",
        );
        assert_eq!(field(&e, "syslog.hostname"), "CST");
        assert_eq!(field(&e, "message"), "1987 mymachine myproc[10]: %% It's time to make the do-nuts.");

        // No valid timestamp: the whole content is the MSG, stamped on receipt (§4.3.2).
        let e = parse_at(
            b"<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
            RECEIVED,
        );
        assert_eq!(field(&e, "syslog.format"), "rfc3164");
        assert_eq!(field(&e, "syslog.facility_name"), "kern");
        assert_eq!(field(&e, "syslog.severity_name"), "emerg");
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T12:00:00.000Z");
        assert_eq!(
            field(&e, "message"),
            "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!"
        );
        absent(&e, &["syslog.hostname", "syslog.parse_error"]);
    }

    #[test]
    fn real_world_daemons() {
        let e = parse_at(
            b"<38>Jan 15 10:00:00 web1 sshd[4321]: Accepted publickey for deploy from 10.0.0.5 port 51234 ssh2: ED25519 SHA256:abc\n",
            RECEIVED,
        );
        assert_eq!(field(&e, "syslog.facility_name"), "auth");
        assert_eq!(field(&e, "syslog.severity_name"), "info");
        assert_eq!(field(&e, "syslog.hostname"), "web1");
        assert_eq!(field(&e, "syslog.appname"), "sshd");
        assert_eq!(field(&e, "syslog.procid"), "4321");
        assert_eq!(
            field(&e, "message"),
            "Accepted publickey for deploy from 10.0.0.5 port 51234 ssh2: ED25519 SHA256:abc"
        );
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T10:00:00.000Z");

        // nginx `access_log syslog:server=…`: tag without pid, brackets in the message.
        let e = parse_at(
            br#"<190>Jan 15 10:00:01 web1 nginx: 10.0.0.7 - - [15/Jan/2024:10:00:01 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe/1.29""#,
            RECEIVED,
        );
        assert_eq!(field(&e, "syslog.facility_name"), "local7");
        assert_eq!(field(&e, "syslog.severity_name"), "info");
        assert_eq!(field(&e, "syslog.appname"), "nginx");
        assert!(field(&e, "message").as_str().unwrap().starts_with("10.0.0.7 - - [15/Jan/2024"));

        // systemd-journald ForwardToSyslog / anything written to /dev/log: no hostname.
        let e = parse_at(b"<30>Jan 15 10:00:02 systemd[1]: Started Session 42 of User deploy.", RECEIVED);
        assert_eq!(field(&e, "syslog.facility_name"), "daemon");
        assert_eq!(field(&e, "syslog.appname"), "systemd");
        assert_eq!(field(&e, "syslog.procid"), "1");
        assert_eq!(field(&e, "message"), "Started Session 42 of User deploy.");
        absent(&e, &["syslog.hostname"]);
        let e = parse_at(b"<14>Jan 15 10:00:02 postfix/smtpd[77]:", RECEIVED);
        assert_eq!(field(&e, "syslog.appname"), "postfix/smtpd");
        assert_eq!(field(&e, "message"), "");

        // rsyslog's forwarding formats: RFC 3339 timestamp in a BSD header.
        let e = parse_at(
            b"<86>2024-01-15T10:00:03.123456+01:00 web1 sudo: pam_unix(sudo:session): session opened for user root",
            RECEIVED,
        );
        assert_eq!(field(&e, "syslog.format"), "rfc3164");
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T09:00:03.123Z");
        assert_eq!(field(&e, "syslog.facility_name"), "authpriv");
        assert_eq!(field(&e, "syslog.hostname"), "web1");
        assert_eq!(field(&e, "syslog.appname"), "sudo");
        assert_eq!(field(&e, "message"), "pam_unix(sudo:session): session opened for user root");

        // An IPv6 hostname is not a tag.
        let e = parse_at(b"<13>Jan 15 10:00:04 fe80::1 app[3]: x", RECEIVED);
        assert_eq!(field(&e, "syslog.hostname"), "fe80::1");
        assert_eq!(field(&e, "syslog.appname"), "app");
    }

    #[test]
    fn cisco_like_without_hostname() {
        let e = parse(
            b"<189>*Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty2 (10.34.195.36)",
            at("2024-03-02T00:00:00Z"),
            None,
            // The UTC in the message wins over the hint.
            TimeZoneHint::Fixed(FixedOffset::east_opt(-5 * 3600).unwrap()),
        );
        assert_eq!(field(&e, "syslog.format"), "rfc3164");
        assert_eq!(field(&e, "syslog.facility_name"), "local7");
        assert_eq!(field(&e, "syslog.severity_name"), "notice");
        assert_eq!(field(&e, "@timestamp"), "2024-03-01T18:48:50.483Z");
        assert_eq!(field(&e, "message"), "%SYS-5-CONFIG_I: Configured from console by vty2 (10.34.195.36)");
        absent(&e, &["syslog.hostname", "syslog.appname", "syslog.parse_error"]);

        let e = parse_at(
            b"<187>Mar  1 18:48:50: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
            "2024-03-02T00:00:00Z",
        );
        assert_eq!(field(&e, "@timestamp"), "2024-03-01T18:48:50.000Z");
        assert_eq!(field(&e, "message"), "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down");
        absent(&e, &["syslog.hostname", "syslog.appname"]);

        // Mnemonic right after the timestamp, no colon: not a hostname either.
        let e = parse_at(b"<187>Mar  1 18:48:50 %LINK-3-UPDOWN: Interface Gi0/1", "2024-03-02T00:00:00Z");
        assert_eq!(field(&e, "message"), "%LINK-3-UPDOWN: Interface Gi0/1");
        absent(&e, &["syslog.hostname", "syslog.appname"]);

        // With a hostname and a year (`service timestamps log datetime year`).
        let e = parse_at(b"<189>Mar  1 2019 18:48:50 router1 %SYS-5-CONFIG_I: Configured", "2024-03-02T00:00:00Z");
        assert_eq!(field(&e, "@timestamp"), "2019-03-01T18:48:50.000Z");
        assert_eq!(field(&e, "syslog.hostname"), "router1");
        assert_eq!(field(&e, "message"), "%SYS-5-CONFIG_I: Configured");
    }

    #[test]
    fn facility_and_severity_names() {
        let names = [
            (0, "kern", "emerg"),
            (13, "user", "notice"),
            (18, "mail", "crit"),
            (27, "daemon", "err"),
            (36, "auth", "warning"),
            (46, "syslog", "info"),
            (55, "lpr", "debug"),
            (57, "news", "alert"),
            (64, "uucp", "emerg"),
            (78, "cron", "info"),
            (85, "authpriv", "notice"),
            (88, "ftp", "emerg"),
            (99, "ntp", "err"),
            (108, "security", "warning"),
            (113, "console", "alert"),
            (126, "solaris-cron", "info"),
            (128, "local0", "emerg"),
            (143, "local1", "debug"),
            (149, "local2", "notice"),
            (155, "local3", "err"),
            (164, "local4", "warning"),
            (170, "local5", "crit"),
            (182, "local6", "info"),
            (191, "local7", "debug"),
        ];
        for (priority, facility, severity) in names {
            let e = parse_at(format!("<{priority}>1 - - - - - - x").as_bytes(), RECEIVED);
            assert_eq!(field(&e, "syslog.priority"), priority);
            assert_eq!(field(&e, "syslog.facility_name"), facility, "priority {priority}");
            assert_eq!(field(&e, "syslog.severity_name"), severity, "priority {priority}");
        }
        for priority in 0..=191u64 {
            let e = parse_at(format!("<{priority}>hi").as_bytes(), RECEIVED);
            assert_eq!(
                field(&e, "syslog.facility").as_u64().unwrap() * 8 + field(&e, "syslog.severity").as_u64().unwrap(),
                priority
            );
            assert!(field(&e, "syslog.facility_name").is_string());
            assert!(field(&e, "syslog.severity_name").is_string());
        }
    }

    #[test]
    fn year_is_inferred_across_new_year() {
        let e = parse_at(b"<13>Dec 31 23:59:00 h a: x", "2025-01-01T00:10:00Z");
        assert_eq!(field(&e, "@timestamp"), "2024-12-31T23:59:00.000Z");
        let e = parse_at(b"<13>Jan  1 00:05:00 h a: x", "2024-12-31T23:50:00Z");
        assert_eq!(field(&e, "@timestamp"), "2025-01-01T00:05:00.000Z");
        let e = parse_at(b"<13>Jun 14 08:00:00 h a: x", "2024-06-15T08:00:00Z");
        assert_eq!(field(&e, "@timestamp"), "2024-06-14T08:00:00.000Z");
        // Single-digit day without padding, lower-case month.
        let e = parse_at(b"<13>jun 4 08:00:00 h a: x", "2024-06-15T08:00:00Z");
        assert_eq!(field(&e, "@timestamp"), "2024-06-04T08:00:00.000Z");
        // The year is decided in the sender's zone: 00:20 on 1 January at +02:00 is still
        // 31 December in UTC.
        let e = parse(
            b"<13>Jan  1 00:20:00 h a: x",
            at("2024-12-31T22:30:00Z"),
            None,
            TimeZoneHint::Fixed(FixedOffset::east_opt(7200).unwrap()),
        );
        assert_eq!(field(&e, "@timestamp"), "2024-12-31T22:20:00.000Z");
        // 29 February exists only in leap years.
        let e = parse_at(b"<13>Feb 29 12:00:00 h a: x", "2024-03-01T00:00:00Z");
        assert_eq!(field(&e, "@timestamp"), "2024-02-29T12:00:00.000Z");
        let e = parse_at(b"<13>Feb 29 12:00:00 h a: x", "2026-03-01T00:00:00Z");
        assert_eq!(field(&e, "@timestamp"), "2026-03-01T00:00:00.000Z");
        assert_eq!(field(&e, "message"), "Feb 29 12:00:00 h a: x");
    }

    #[test]
    fn malformed_input_never_fails() {
        let e = parse_at(b"", RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "unknown");
        assert_eq!(field(&e, "message"), "");
        assert_eq!(field(&e, "syslog.priority"), 13);
        assert_eq!(field(&e, "syslog.parse_error"), "empty message");
        assert_eq!(field(&e, "@timestamp"), "2024-01-15T12:00:00.000Z");

        for (line, reason) in [
            ("<999>", "invalid PRI: 999 is above 191"),
            ("<192>1 - - - - - - x", "invalid PRI: 192 is above 191"),
            ("<13", "invalid PRI: no '>' after the digits"),
            ("<>x", "invalid PRI: expected 1 to 3 digits after '<'"),
            ("<1234>x", "invalid PRI: expected 1 to 3 digits after '<'"),
            ("<ab>x", "invalid PRI: expected 1 to 3 digits after '<'"),
        ] {
            let e = parse_at(line.as_bytes(), RECEIVED);
            assert_eq!(field(&e, "syslog.format"), "unknown", "{line}");
            assert_eq!(field(&e, "message"), line);
            assert_eq!(field(&e, "syslog.priority"), 13);
            assert_eq!(field(&e, "syslog.parse_error"), reason);
        }

        // Only the PRI is missing: the header is still read, and the default flagged.
        let e = parse_at(b"Jan 15 10:00:00 host app[1]: no pri\r\n", RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "rfc3164");
        assert_eq!(field(&e, "syslog.appname"), "app");
        assert_eq!(field(&e, "message"), "no pri");
        assert_eq!(field(&e, "syslog.priority"), 13);
        assert_eq!(field(&e, "syslog.parse_error"), "missing PRI; priority 13 (user.notice) assumed");

        // A valid PRI and nothing else.
        let e = parse_at(b"<13>", RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "rfc3164");
        assert_eq!(field(&e, "message"), "");

        // Not UTF-8: lossy, the header still parsed.
        let e = parse_at(b"<13>Jan 15 10:00:00 host app: \xff\xfe bad\n", RECEIVED);
        assert_eq!(field(&e, "message"), "\u{FFFD}\u{FFFD} bad");
        assert_eq!(field(&e, "syslog.hostname"), "host");
        let e = parse_at(b"\xff\xfe\x00garbage\r\n\0", RECEIVED);
        assert_eq!(field(&e, "syslog.format"), "unknown");
        assert_eq!(field(&e, "message"), "\u{FFFD}\u{FFFD}\u{0}garbage");
        let e = parse_at(b"<13>1 2024-01-15T10:00:00Z h a - - - caf\xe9", RECEIVED);
        assert_eq!(field(&e, "message"), "caf\u{FFFD}");
        let e = parse_at(b"<13>1 2024-01-15T10:00:00Z \xff a - - - x", RECEIVED);
        assert_eq!(field(&e, "syslog.hostname"), "\u{FFFD}");

        // Truncated in the middle of anything: still an event.
        let full = br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\]lication"] msg"#;
        for len in 0..=full.len() {
            let e = parse_at(&full[..len], RECEIVED);
            assert!(field(&e, "message").is_string());
            assert!(field(&e, "syslog.format").is_string());
        }
        let full = b"<38>*Jan 15 2024 10:00:00.123 UTC: web1 sshd[4321]: Accepted";
        for len in 0..=full.len() {
            assert!(field(&parse_at(&full[..len], RECEIVED), "message").is_string());
        }
    }

    #[test]
    fn source_address_and_trailing_terminators() {
        let peer: SocketAddr = "[2001:db8::7]:5514".parse().unwrap();
        let e = parse(b"<13>Jan 15 10:00:00 host app: hi\r\n", at(RECEIVED), Some(peer), TimeZoneHint::Utc);
        assert_eq!(field(&e, "source.address"), "[2001:db8::7]:5514");
        assert_eq!(field(&e, "message"), "hi");
    }

    #[test]
    fn local_zone_is_used_for_wall_clock_times() {
        let e = parse(b"<13>Jan 15 10:00:00 h a: x", at(RECEIVED), None, TimeZoneHint::Local);
        let stamped = DateTime::parse_from_rfc3339(field(&e, "@timestamp").as_str().unwrap()).unwrap();
        let as_utc = DateTime::parse_from_rfc3339("2024-01-15T10:00:00Z").unwrap();
        // Whatever the machine's zone, it is within UTC-12 … UTC+14.
        assert!((stamped - as_utc).abs() <= TimeDelta::hours(14), "{stamped}");
    }

    #[test]
    fn random_input_never_panics() {
        let pieces: [&[u8]; 16] = [
            b"<",
            b">",
            b"13",
            b"1 ",
            b"-",
            b" ",
            b"[",
            b"]",
            b"=\"",
            b"\\",
            b"Jan",
            b" 1 ",
            b"10:00:00",
            b"\n",
            b"2024-01-15T10:00:00Z",
            b"\xff",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut framer = Framer::new(64);
        for _ in 0..5000 {
            let len = next() % 24;
            let input: Vec<u8> = (0..len)
                .flat_map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        vec![(r >> 8) as u8]
                    } else {
                        pieces[(r >> 8) as usize % pieces.len()].to_vec()
                    }
                })
                .collect();
            let e = parse(&input, at(RECEIVED), None, TimeZoneHint::Utc);
            assert!(field(&e, "message").is_string() && field(&e, "@timestamp").is_string());
            framer.push(&input);
            while let Some(frame) = framer.next_frame() {
                assert!(!frame.is_empty() && frame.len() <= 64);
            }
        }
    }

    /// Frames of `stream` pushed in the given pieces, then finished.
    fn frames(max_len: usize, pieces: &[&[u8]]) -> (Vec<Vec<u8>>, Framer) {
        let mut framer = Framer::new(max_len);
        let mut out = Vec::new();
        for piece in pieces {
            framer.push(piece);
            while let Some(frame) = framer.next_frame() {
                out.push(frame);
            }
        }
        framer.finish();
        while let Some(frame) = framer.next_frame() {
            out.push(frame);
        }
        (out, framer)
    }

    fn octet_counted(message: &str) -> Vec<u8> {
        format!("{} {message}", message.len()).into_bytes()
    }

    /// Checks that `stream` gives `expected` however it is split: in two at every position, and
    /// one byte at a time.
    fn assert_frames_at_every_split(max_len: usize, stream: &[u8], expected: &[&[u8]]) -> Framer {
        for split in 0..=stream.len() {
            let (got, _) = frames(max_len, &[&stream[..split], &stream[split..]]);
            assert_eq!(got, expected, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let (got, framer) = frames(max_len, &bytes);
        assert_eq!(got, expected, "byte by byte");
        framer
    }

    #[test]
    fn framer_mixed_framing_split_everywhere() {
        let mut stream = Vec::new();
        stream.extend(octet_counted("<13>1 - - - - - - first"));
        stream.extend(b"<14>second line\n");
        stream.extend(b"<15>third crlf\r\n");
        stream.extend(b"\r\n\n");
        stream.extend(b"<16>fourth nul\0");
        stream.extend(octet_counted("<17>multi\nline\r\noctet"));
        stream.extend(octet_counted("<18>"));
        stream.extend(b"\n");
        stream.extend(b"plain text, no pri\n");
        stream.extend(b"0 zero is no count\n");
        stream.extend(b"<19>last, unterminated");
        let expected: &[&[u8]] = &[
            b"<13>1 - - - - - - first",
            b"<14>second line",
            b"<15>third crlf",
            b"<16>fourth nul",
            b"<17>multi\nline\r\noctet",
            b"<18>",
            b"plain text, no pri",
            b"0 zero is no count",
            b"<19>last, unterminated",
        ];
        let framer = assert_frames_at_every_split(1024, &stream, expected);
        assert_eq!((framer.truncated(), framer.malformed()), (0, 0));
    }

    #[test]
    fn framer_truncates_oversized_frames() {
        let mut stream = Vec::new();
        stream.extend(octet_counted("<13>aaaaaaaaaaaaaaaaaaaaaa\nnot a new frame"));
        stream.extend(octet_counted("<14>b"));
        stream.extend(b"<15>cccccccccccccccccccccccc\n");
        stream.extend(b"<16>d\n");
        // Exactly the maximum before a CRLF is not cut; one byte more is.
        stream.extend(b"<17>exact!\r\n");
        stream.extend(b"<18>eleven!\r\n");
        let expected: &[&[u8]] = &[b"<13>aaaaaa", b"<14>b", b"<15>cccccc", b"<16>d", b"<17>exact!", b"<18>eleven"];
        let framer = assert_frames_at_every_split(10, &stream, expected);
        assert_eq!(framer.truncated(), 3);

        let (got, framer) = frames(5, &[b"abcde\r\nabcdef\nab\r", b"\ncdefgh\r", b"x\n"]);
        assert_eq!(got, vec![b"abcde".to_vec(), b"abcde".to_vec(), b"ab".to_vec(), b"cdefg".to_vec()]);
        assert_eq!(framer.truncated(), 2);
    }

    #[test]
    fn framer_memory_stays_bounded() {
        let mut framer = Framer::new(100);
        let chunk = vec![b'a'; 64 * 1024];
        let mut out = Vec::new();
        for _ in 0..16 {
            framer.push(&chunk);
            assert!(framer.buf.len() <= 101 && framer.buf.capacity() <= 1024);
            out.extend(std::iter::from_fn(|| framer.next_frame()));
        }
        framer.push(b"\n<13>ok\n");
        out.extend(std::iter::from_fn(|| framer.next_frame()));
        assert_eq!(out, vec![vec![b'a'; 100], b"<13>ok".to_vec()]);
        assert_eq!(framer.truncated(), 1);
        // A huge announced length is discarded as it arrives, not buffered.
        let mut framer = Framer::new(100);
        framer.push(b"999999999 <13>");
        for _ in 0..16 {
            framer.push(&chunk);
            assert!(framer.buf.capacity() <= 1024);
        }
        assert_eq!(framer.next_frame().map(|f| f.len()), Some(100));
        assert_eq!(framer.next_frame(), None);
    }

    #[test]
    fn framer_resynchronises_after_bad_counts() {
        let mut stream = Vec::new();
        stream.extend(b"12x foo\n");
        stream.extend(octet_counted("<13>after"));
        stream.extend(b"1234567890 <14>ten digits\n");
        stream.extend(b"42\n");
        stream.extend(b"7<15>no space\n");
        stream.extend(b"<16>good\n");
        let expected: &[&[u8]] =
            &[b"12x foo", b"<13>after", b"1234567890 <14>ten digits", b"42", b"7<15>no space", b"<16>good"];
        let framer = assert_frames_at_every_split(1024, &stream, expected);
        assert_eq!(framer.malformed(), 4);
    }

    #[test]
    fn framer_end_of_stream() {
        let mut framer = Framer::new(100);
        framer.push(b"20 <13>abc");
        assert_eq!(framer.finish(), 7);
        assert_eq!(framer.next_frame(), None);
        framer.push(b"<13>tail\r");
        assert_eq!(framer.finish(), 0);
        assert_eq!(framer.next_frame(), Some(b"<13>tail".to_vec()));
        // Usable again after finish.
        framer.push(b"3 abc");
        assert_eq!(framer.next_frame(), Some(b"abc".to_vec()));
    }

    fn utc_options(max_len: usize) -> ServerOptions {
        ServerOptions { zone: TimeZoneHint::Utc, ..ServerOptions::new(max_len) }
    }

    async fn recv(rx: &mut mpsc::Receiver<LogEvent>) -> LogEvent {
        tokio::time::timeout(WAIT, rx.recv()).await.expect("an event in time").expect("channel open")
    }

    #[tokio::test]
    async fn udp_end_to_end() {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let (stop, shutdown) = watch::channel(false);
        let server = tokio::spawn(serve_udp(socket, utc_options(1024), tx, shutdown));

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client_addr = client.local_addr().unwrap().to_string();
        client.send_to(b"<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - 'su root' failed", addr).await.unwrap();
        client.send_to(b"<38>Jan 15 10:00:00 web1 sshd[42]: Accepted publickey\n", addr).await.unwrap();
        let mut big = b"<13>".to_vec();
        big.extend(vec![b'x'; 5000]);
        client.send_to(&big, addr).await.unwrap();

        let e = recv(&mut rx).await;
        assert_eq!(field(&e, "syslog.format"), "rfc5424");
        assert_eq!(field(&e, "message"), "'su root' failed");
        assert_eq!(field(&e, "@timestamp"), "2003-10-11T22:14:15.003Z");
        assert_eq!(field(&e, "source.address"), client_addr.as_str());
        let e = recv(&mut rx).await;
        assert_eq!(field(&e, "syslog.appname"), "sshd");
        assert_eq!(field(&e, "message"), "Accepted publickey");
        let e = recv(&mut rx).await;
        assert_eq!(field(&e, "message").as_str().unwrap().len(), 1020);

        stop.send(true).unwrap();
        tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn udp_stops_when_the_pipeline_is_gone() {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(1);
        let (_stop, shutdown) = watch::channel(false);
        let server = tokio::spawn(serve_udp(socket, utc_options(1024), tx, shutdown));
        drop(rx);
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"<13>x", addr).await.unwrap();
        tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn tcp_end_to_end_with_both_framings() {
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let (stop, shutdown) = watch::channel(false);
        let server = tokio::spawn(serve_tcp(listener, utc_options(1024), tx, shutdown));

        let mut client = TcpStream::connect(addr).await.unwrap();
        let client_addr = client.local_addr().unwrap().to_string();
        let mut stream = Vec::new();
        stream.extend(octet_counted("<34>1 2003-10-11T22:14:15.003Z host app - - - one"));
        stream.extend(b"<13>Jan 15 10:00:00 host app: two\n");
        stream.extend(octet_counted("<14>1 - - - - - - three\nspans lines"));
        stream.extend(b"<15>Jan 15 10:00:01 host app[9]: four\r\n");
        for piece in stream.chunks(7) {
            client.write_all(piece).await.unwrap();
            client.flush().await.unwrap();
        }
        for expected in ["one", "two", "three\nspans lines", "four"] {
            let e = recv(&mut rx).await;
            assert_eq!(field(&e, "message"), expected);
            assert_eq!(field(&e, "source.address"), client_addr.as_str());
        }

        // A second connection at the same time; its last line has no newline.
        let mut other = TcpStream::connect(addr).await.unwrap();
        other.write_all(b"<13>Jan 15 10:00:02 host app: from the other one").await.unwrap();
        other.shutdown().await.unwrap();
        assert_eq!(field(&recv(&mut rx).await, "message"), "from the other one");

        // Shutdown closes the connection that is still open.
        stop.send(true).unwrap();
        tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, client.read_to_end(&mut rest)).await.unwrap();
        // Closed: end of stream, or a reset if the server dropped it with data unread.
        assert!(!matches!(read, Ok(n) if n > 0));
    }

    #[tokio::test]
    async fn tcp_idle_connections_are_closed() {
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let (_stop, shutdown) = watch::channel(false);
        let options = ServerOptions { idle_timeout: Some(Duration::from_millis(200)), ..utc_options(1024) };
        tokio::spawn(serve_tcp(listener, options, tx, shutdown));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"<13>hello\n").await.unwrap();
        assert_eq!(field(&recv(&mut rx).await, "message"), "hello");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, client.read_to_end(&mut rest)).await.expect("closed in time");
        assert_eq!(read.unwrap(), 0);
    }

    #[tokio::test]
    async fn tcp_connection_limit_makes_clients_wait() {
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let (stop, shutdown) = watch::channel(false);
        let options = ServerOptions { max_connections: 1, ..utc_options(1024) };
        let server = tokio::spawn(serve_tcp(listener, options, tx, shutdown));
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"<13>first\n").await.unwrap();
        assert_eq!(field(&recv(&mut rx).await, "message"), "first");
        // The second connection completes in the backlog but is not served yet.
        let mut second = TcpStream::connect(addr).await.unwrap();
        second.write_all(b"<13>second\n").await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv()).await.is_err());
        drop(first);
        assert_eq!(field(&recv(&mut rx).await, "message"), "second");
        stop.send(true).unwrap();
        tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn tcp_backpressure_and_shutdown_while_blocked() {
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let (stop, shutdown) = watch::channel(false);
        let server = tokio::spawn(serve_tcp(listener, utc_options(1024), tx, shutdown));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let lines: String = (0..100).map(|i| format!("<13>line {i}\n")).collect();
        client.write_all(lines.as_bytes()).await.unwrap();
        // Nothing is lost while the pipeline is slow: the server waits for room.
        for i in 0..50 {
            assert_eq!(field(&recv(&mut rx).await, "message"), format!("line {i}").as_str());
        }
        // Shutdown works while the connection is blocked on a full channel.
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(true).unwrap();
        tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn tcp_stops_when_the_pipeline_is_gone() {
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(1);
        let (_stop, shutdown) = watch::channel(false);
        let options = ServerOptions { idle_timeout: None, ..utc_options(1024) };
        let server = tokio::spawn(serve_tcp(listener, options, tx, shutdown));
        // A silent connection must not keep the listener alive.
        let _client = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(rx);
        tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn bind_errors_name_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind_tcp(addr).await.unwrap_err().to_string();
        assert!(error.contains(&addr.to_string()) && error.contains("TCP"), "{error}");

        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let (_stop, shutdown) = watch::channel(false);
        let error = run_udp(addr, 1024, tx, shutdown).await.unwrap_err().to_string();
        assert!(error.contains(&addr.to_string()) && error.contains("UDP"), "{error}");
    }
}
