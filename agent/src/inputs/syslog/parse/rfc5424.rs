//! RFC 5424 messages: the header after the PRI, STRUCTURED-DATA and the MSG.

use super::cursor::Cursor;
use super::timestamp::{parse_iso, TimeZoneHint};
use super::{lossy, Format, Parsed, DEFAULT_PRIORITY};
use chrono::{TimeZone, Utc};
use serde_json::{Map, Value};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// After PRI: `VERSION SP` followed by a timestamp or NILVALUE. Only then is the message held to
/// RFC 5424; BSD content that merely starts with a number is not.
pub(super) fn looks_like_rfc5424(rest: &[u8]) -> bool {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=3).contains(&digits)
        && rest[0] != b'0'
        && rest.get(digits) == Some(&b' ')
        && matches!(rest.get(digits + 1), Some(b'0'..=b'9' | b'-'))
}

/// `VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]`.
/// Fails only when the header is cut short; a bad timestamp or structured data is reported and
/// skipped.
pub(super) fn parse_rfc5424(rest: &[u8], zone: TimeZoneHint) -> Result<Parsed<'_>, String> {
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
