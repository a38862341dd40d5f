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
//!
//! # Layout
//!
//! - `parse`: one message (a datagram or a TCP frame) into a [`LogEvent`]: PRI, RFC 5424,
//!   RFC 3164 and their timestamps.
//! - `framing`: [`Framer`], which splits a TCP stream into messages (RFC 6587).
//! - `server`: the listeners, [`serve_udp`] and [`serve_tcp`], and what they share.
//!
//! [`LogEvent`]: crate::event::LogEvent

mod framing;
mod parse;
mod server;
#[cfg(test)]
mod test_support;

pub use framing::Framer;
pub use parse::{parse, TimeZoneHint, DEFAULT_PRIORITY};
pub use server::{
    bind_tcp, bind_udp, run_tcp, run_udp, serve_tcp, serve_udp, ServerOptions, SyslogError, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
};
