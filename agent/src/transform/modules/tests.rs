#![allow(clippy::unwrap_used)]
use super::*;
use chrono::{DateTime, Utc};

/// An event as the file input builds it, read at `read_at`.
fn event(line: &str) -> Map<String, Value> {
    serde_json::from_value(serde_json::json!({
        "@timestamp": "2026-12-04T08:00:00.000Z",
        "message": line,
        "event": {"schema": 1, "kind": "log"},
    }))
    .unwrap()
}

fn read_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-04T08:00:00Z").unwrap().with_timezone(&Utc)
}

fn parse(module: Module, line: &str) -> Result<Value, (String, Value)> {
    let parser = ModuleParser::new(module, true, Some("Europe/Berlin")).unwrap();
    let mut doc = event(line);
    match parser.apply(&mut doc, read_at()) {
        Ok(()) => Ok(Value::Object(doc)),
        Err(e) => Err((e, Value::Object(doc))),
    }
}

#[test]
fn an_nginx_access_line_becomes_ecs_fields_with_its_own_time() {
    let line = r#"203.0.113.9 - alice [03/Dec/2026:10:15:32 +0100] "GET /shop/cart.php?id=7&x=%20 HTTP/1.1" 404 153 "https://example.com/a" "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0""#;
    let doc = parse(Module::Nginx, line).unwrap();
    assert_eq!(doc["@timestamp"], "2026-12-03T09:15:32.000Z", "the line's time, not the read time");
    assert_eq!(doc["source"]["ip"], "203.0.113.9");
    assert_eq!(doc["source"]["address"], "203.0.113.9");
    assert_eq!(doc["user"]["name"], "alice");
    assert_eq!(doc["http"]["request"]["method"], "GET");
    assert_eq!(doc["http"]["version"], "1.1");
    assert_eq!(doc["url"]["original"], "/shop/cart.php?id=7&x=%20");
    assert_eq!(doc["url"]["path"], "/shop/cart.php");
    assert_eq!(doc["url"]["query"], "id=7&x=%20");
    assert_eq!(doc["url"]["extension"], "php");
    assert_eq!(doc["http"]["response"]["status_code"], 404);
    assert_eq!(doc["http"]["response"]["body"]["bytes"], 153);
    assert_eq!(doc["http"]["request"]["referrer"], "https://example.com/a");
    assert_eq!(doc["user_agent"]["name"], "Firefox");
    assert_eq!(doc["user_agent"]["os"]["name"], "Linux");
    assert_eq!(doc["event"]["dataset"], "nginx.access");
    assert_eq!(doc["event"]["module"], "nginx");
    assert_eq!(doc["event"]["outcome"], "failure");
    assert_eq!(doc["event"]["category"], serde_json::json!(["web"]));
    assert_eq!(doc["event"]["original"], line);
    assert!(doc.get("message").is_none(), "an access line's text lives in event.original");
    assert!(doc.get("nginx").is_none(), "the time field is consumed");
}

#[test]
fn ipv6_clients_dashes_escaped_agents_and_junk_requests() {
    let doc = parse(
        Module::NginxAccess,
        r#"2001:db8:85a3::8a2e:370:7334 - - [03/Dec/2026:10:15:32 +0000] "POST /api HTTP/2.0" 201 - "-" "say \"hi\" \x22bot\x22/1.0""#,
    )
    .unwrap();
    assert_eq!(doc["source"]["ip"], "2001:db8:85a3::8a2e:370:7334");
    assert!(doc.get("user").is_none());
    assert!(doc["http"]["response"].get("body").is_none(), "`-` bytes set nothing");
    assert!(doc["http"]["request"].get("referrer").is_none());
    assert_eq!(doc["user_agent"]["original"], r#"say \"hi\" \x22bot\x22/1.0"#);
    assert_eq!(doc["event"]["outcome"], "success");
    // A TLS handshake sent to the plain port: no method, the request kept as nginx wrote it.
    let doc = parse(
        Module::NginxAccess,
        r#"198.51.100.2 - - [03/Dec/2026:10:15:33 +0000] "\x16\x03\x01\x02\x00\x01" 400 157 "-" "-""#,
    )
    .unwrap();
    assert_eq!(doc["http"]["response"]["status_code"], 400);
    assert_eq!(doc["nginx"]["access"]["info"], r"\x16\x03\x01\x02\x00\x01");
    assert!(doc["http"]["request"].get("method").is_none());
    // The common format (no referrer and agent) and a host name for a client.
    let doc =
        parse(Module::ApacheAccess, r#"client.example.org - - [03/Dec/2026:10:15:34 -0500] "GET / HTTP/1.0" 200 2326"#)
            .unwrap();
    assert_eq!(doc["source"]["address"], "client.example.org");
    assert!(doc["source"].get("ip").is_none(), "a name is no IP");
    assert_eq!(doc["@timestamp"], "2026-12-03T15:15:34.000Z");
    assert_eq!(doc["event"]["dataset"], "apache.access");
}

#[test]
fn error_logs_of_nginx_and_apache() {
    let doc = parse(
        Module::Nginx,
        r#"2026/12/03 10:15:32 [error] 1234#1234: *5678 open() "/usr/share/nginx/html/x" failed (2: No such file or directory), client: 10.0.0.5, server: localhost, request: "GET /x HTTP/1.1""#,
    )
    .unwrap();
    assert_eq!(doc["event"]["dataset"], "nginx.error", "recognised by its shape");
    assert_eq!(doc["@timestamp"], "2026-12-03T09:15:32.000Z", "local time in the configured zone");
    assert_eq!(doc["log"]["level"], "error");
    assert_eq!(doc["process"]["pid"], 1234);
    assert_eq!(doc["process"]["thread"]["id"], 1234);
    assert_eq!(doc["nginx"]["error"]["connection_id"], 5678);
    assert!(doc["message"].as_str().unwrap().starts_with("open() \"/usr/share"));

    let doc = parse(
        Module::Apache,
        "[Thu Dec 03 10:15:32.123456 2026] [core:error] [pid 4242:tid 140000] [client 192.0.2.7:50000] AH00126: Invalid URI in request GET /..%2f HTTP/1.1",
    )
    .unwrap();
    assert_eq!(doc["event"]["dataset"], "apache.error");
    assert_eq!(doc["@timestamp"], "2026-12-03T09:15:32.123Z");
    assert_eq!(
        (doc["apache"]["error"]["module"].as_str(), doc["log"]["level"].as_str()),
        (Some("core"), Some("error"))
    );
    assert_eq!((doc["source"]["ip"].as_str(), doc["source"]["port"].as_i64()), (Some("192.0.2.7"), Some(50000)));
    assert_eq!(doc["error"]["code"], "AH00126");
    assert_eq!(doc["message"], "Invalid URI in request GET /..%2f HTTP/1.1");
    let doc = parse(
        Module::ApacheError,
        "[Thu Dec 03 10:15:32 2026] [notice] Apache/2.2.22 (Debian) configured -- resuming normal operations",
    )
    .unwrap();
    assert_eq!(doc["log"]["level"], "notice");
    assert!(doc["message"].as_str().unwrap().starts_with("Apache/2.2.22"));
}

#[test]
fn syslog_files_in_bsd_and_rfc3339_form() {
    let doc = parse(
        Module::Syslog,
        "Dec  3 10:15:32 web1 sshd[812]: Accepted publickey for deploy from 10.0.0.9 port 51234 ssh2",
    )
    .unwrap();
    assert_eq!(doc["@timestamp"], "2026-12-03T09:15:32.000Z");
    assert_eq!(doc["host"]["hostname"], "web1");
    assert_eq!((doc["process"]["name"].as_str(), doc["process"]["pid"].as_i64()), (Some("sshd"), Some(812)));
    assert!(doc["message"].as_str().unwrap().starts_with("Accepted publickey"));
    assert_eq!(doc["event"]["dataset"], "system.syslog");
    assert_eq!(doc["event"]["module"], "system");
    let doc = parse(Module::Syslog, "2026-12-03T10:15:32.123456+00:00 web1 kernel: [ 12.345] eth0: link up").unwrap();
    assert_eq!(doc["@timestamp"], "2026-12-03T10:15:32.123Z");
    assert_eq!(doc["process"]["name"], "kernel");
    let doc = parse(Module::Syslog, "Dec  3 10:15:33 web1 message repeated 3 times").unwrap();
    assert_eq!(doc["message"], "message repeated 3 times");
}

#[test]
fn a_line_no_pattern_reads_keeps_its_text_and_fails_with_the_reason() {
    let (e, doc) = parse(Module::Nginx, "this is not a log line").unwrap_err();
    assert!(e.contains("nginx.access or nginx.error"), "{e}");
    assert_eq!(doc["message"], "this is not a log line");
    assert_eq!(doc["@timestamp"], "2026-12-04T08:00:00.000Z", "the read time stays");
    assert_eq!(doc["event"]["module"], "nginx");
    assert!(doc["event"].get("dataset").is_none(), "which kind is unknown");
    let (_, doc) = parse(Module::NginxAccess, "garbage").unwrap_err();
    assert_eq!(doc["event"]["dataset"], "nginx.access", "the configured kind names the dataset");
}

#[test]
fn event_original_can_be_turned_off() {
    let parser = ModuleParser::new(Module::NginxAccess, false, None).unwrap();
    let mut doc = event(r#"10.0.0.1 - - [03/Dec/2026:10:15:32 +0000] "GET / HTTP/1.1" 200 1 "-" "-""#);
    parser.apply(&mut doc, read_at()).unwrap();
    assert!(Value::Object(doc)["event"].get("original").is_none());
}
