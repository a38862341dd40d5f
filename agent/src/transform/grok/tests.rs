#![allow(clippy::unwrap_used)]
use super::*;

fn parse(pattern: &str, text: &str) -> Option<Value> {
    let grok = Grok::compile(pattern, &BTreeMap::new()).unwrap();
    let mut doc = Map::new();
    grok.apply(text, &mut doc).then_some(Value::Object(doc))
}

#[test]
fn the_combined_log_pattern_reads_ipv4_ipv6_dashes_and_escaped_quotes() {
    let line = r#"2001:db8::7 - - [03/Dec/2026:10:00:00 +0000] "GET /a?b=1 HTTP/1.1" 404 - "-" "curl/8.0 \"x\"""#;
    let doc = parse("%{COMBINEDAPACHELOG}", line).unwrap();
    assert_eq!(doc["source"]["address"], "2001:db8::7");
    assert_eq!(doc["http"]["request"]["method"], "GET");
    assert_eq!(doc["url"]["original"], "/a?b=1");
    assert_eq!(doc["http"]["version"], "1.1");
    assert_eq!(doc["http"]["response"]["status_code"], 404, "converted to a number");
    assert!(doc["http"]["response"].get("body").is_none(), "`-` sets nothing");
    assert!(doc.get("user").is_none());
    assert!(doc["http"]["request"].get("referrer").is_none());
    assert_eq!(doc["user_agent"]["original"], r#"curl/8.0 \"x\""#, "the whole agent, escapes kept");
    assert_eq!(doc["timestamp"], "03/Dec/2026:10:00:00 +0000");

    let doc = parse("%{COMBINEDAPACHELOG}", r#"10.1.2.3 - alice [03/Dec/2026:10:00:00 +0100] "POST /login HTTP/2.0" 302 5120 "https://example.com/" "Mozilla/5.0""#).unwrap();
    assert_eq!(
        (doc["user"]["name"].as_str(), doc["http"]["response"]["body"]["bytes"].as_i64()),
        (Some("alice"), Some(5120))
    );
    assert_eq!(doc["http"]["request"]["referrer"], "https://example.com/");
}

#[test]
fn custom_definitions_named_groups_nested_names_and_conversions() {
    let mut definitions = BTreeMap::new();
    definitions.insert("QUEUE".to_string(), "[0-9A-F]{6}".to_string());
    let grok = Grok::compile(
        r"%{QUEUE:[mail][queue]} (?<mail.to>\S+) took %{NUMBER:took:float}s \(%{INT:n:int}\)",
        &definitions,
    )
    .unwrap();
    let mut doc = Map::new();
    assert!(grok.apply("AB12CD bob@example.com took 1.5s (7)", &mut doc));
    let doc = Value::Object(doc);
    assert_eq!(doc["mail"]["queue"], "AB12CD");
    assert_eq!(doc["mail"]["to"], "bob@example.com");
    assert_eq!(doc["took"], 1.5);
    assert_eq!(doc["n"], 7);
    // An escaped parenthesis is no group, and a non-matching line writes nothing.
    let mut untouched = Map::new();
    assert!(!grok.apply("nothing here", &mut untouched));
    assert!(untouched.is_empty());
}

#[test]
fn bad_patterns_are_refused_with_the_reason() {
    let none = BTreeMap::new();
    assert!(matches!(Grok::compile("%{NOPE}", &none), Err(GrokError::Unknown(n)) if n == "NOPE"));
    assert!(matches!(Grok::compile("%{INT:x:bool}", &none), Err(GrokError::Type(_))));
    assert!(matches!(Grok::compile("%{INT", &none), Err(GrokError::Syntax(_))));
    assert!(matches!(Grok::compile("(unclosed", &none), Err(GrokError::Regex(_))));
    let mut circle = BTreeMap::new();
    circle.insert("A".to_string(), "%{B}".to_string());
    circle.insert("B".to_string(), "x%{A}".to_string());
    assert!(matches!(Grok::compile("%{A}", &circle), Err(GrokError::Circular(_))));
}

#[test]
fn every_library_pattern_compiles() {
    for (name, _) in library::PATTERNS {
        Grok::compile(&format!("%{{{name}}}"), &BTreeMap::new()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (text, is_ip) in
        [("::1", true), ("fe80::1%eth0", true), ("::ffff:10.0.0.1", true), ("1.2.3.4", true), ("1.2.3", false)]
    {
        assert_eq!(parse("^%{IP:ip}$", text).is_some(), is_ip, "{text}");
    }
}
