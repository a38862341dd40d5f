//! RFC 3164 (BSD) messages: the timestamp, HOSTNAME and `TAG[PID]:` after the PRI, as sent in
//! practice.

use super::cursor::Cursor;
use super::timestamp::{parse_bsd_timestamp, parse_iso, TimeZoneHint};
use super::{Format, Parsed, DEFAULT_PRIORITY};
use chrono::{DateTime, TimeZone, Utc};

/// RFC 3164 TAGs are specified as at most 32 characters; real ones are longer (`org.gnome.Shell…`).
const MAX_TAG_LEN: usize = 64;

/// Longest `[PID]` content accepted in an RFC 3164 tag (RFC 5424 allows 128 for PROCID).
const MAX_PID_LEN: usize = 128;

/// An RFC 3164 header (timestamp, hostname, tag) and the MSG after it, or None when `rest` does
/// not start with a timestamp.
pub(super) fn parse_rfc3164(rest: &[u8], received: DateTime<Utc>, zone: TimeZoneHint) -> Option<Parsed<'_>> {
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
