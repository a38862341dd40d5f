//! Tests of message parsing: RFC 5424, RFC 3164, real senders, malformed and random input.

use super::*;
use crate::inputs::syslog::test_support::field;
use crate::inputs::syslog::Framer;
use chrono::{FixedOffset, TimeDelta};

const RECEIVED: &str = "2024-01-15T12:00:00Z";

fn at(rfc3339: &str) -> SystemTime {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().into()
}

/// Parses as received at `received`, timestamps without offset read as UTC.
fn parse_at(bytes: &[u8], received: &str) -> LogEvent {
    parse(bytes, at(received), None, TimeZoneHint::Utc)
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
    assert_eq!(field(&e, "message"), "Accepted publickey for deploy from 10.0.0.5 port 51234 ssh2: ED25519 SHA256:abc");
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
