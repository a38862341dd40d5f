//! The chain: order, conditions, failure policies, from the configuration as users write it.

#![allow(clippy::unwrap_used)]
use super::*;

fn transforms(toml_text: &str) -> Transforms {
    #[derive(serde::Deserialize)]
    struct Input {
        transforms: Vec<Transform>,
    }
    let input: Input = toml::from_str(toml_text).unwrap();
    Transforms::new(None, &input.transforms, &mut GeoIpCache::default()).unwrap()
}

fn event(message: &str) -> Map<String, Value> {
    serde_json::from_value(serde_json::json!({"@timestamp": "2026-12-04T08:00:00.000Z", "message": message})).unwrap()
}

#[test]
fn steps_run_in_order_on_what_earlier_steps_wrote() {
    let t = transforms(
        r#"
        [[transforms]]
        dissect = { tokenizer = "%{ts} %{+ts} %{level} %{rest}", target_prefix = "" }
        [[transforms]]
        timestamp = { field = "ts", formats = ["%Y-%m-%d%H:%M:%S"], timezone = "Asia/Tokyo", remove = true }
        [[transforms]]
        kv = { field = "rest", target = "kv" }
        [[transforms]]
        convert = { fields = { "kv.status" = "integer", "kv.ms" = "float" } }
        [[transforms]]
        rename = { fields = { "kv.status" = "http.response.status_code" } }
        [[transforms]]
        add_fields = { fields = { "labels.env" = "prod", "labels.shard" = 3 } }
        [[transforms]]
        drop_fields = { fields = ["rest"] }
        "#,
    );
    let mut doc = event("2026-12-03 09:00:00 INFO status=503 ms=12.5 path=/x");
    assert_eq!(t.apply(&mut doc), Verdict::Keep);
    let doc = Value::Object(doc);
    assert_eq!(doc["@timestamp"], "2026-12-03T00:00:00.000Z");
    assert!(doc.get("ts").is_none());
    assert_eq!(doc["level"], "INFO");
    assert_eq!(doc["http"]["response"]["status_code"], 503);
    assert_eq!(doc["kv"]["ms"], 12.5);
    assert_eq!(doc["kv"]["path"], "/x");
    assert_eq!(doc["labels"], serde_json::json!({"env": "prod", "shard": 3}));
    assert!(doc.get("rest").is_none());
    assert!(doc.get("tags").is_none() && doc.get("error").is_none(), "nothing failed: {doc}");
}

#[test]
fn a_failing_step_tags_the_event_and_keeps_it_by_default() {
    let t = transforms(
        r#"
        [[transforms]]
        grok = { patterns = ["^%{IP:source.ip} %{WORD:verb}$"] }
        [[transforms]]
        timestamp = { field = "when", formats = ["ISO8601"] }
        [[transforms]]
        add_fields = { fields = { after = true } }
        "#,
    );
    let mut doc = event("not an address");
    assert_eq!(t.apply(&mut doc), Verdict::Keep);
    let doc = Value::Object(doc);
    assert_eq!(doc["message"], "not an address", "the text is kept");
    assert_eq!(doc["tags"], serde_json::json!(["_grokparsefailure", "_dateparsefailure"]));
    let errors = doc["error"]["message"].as_array().unwrap();
    assert!(errors[0].as_str().unwrap().starts_with("transforms[0] (grok): message matches none"), "{errors:?}");
    assert!(errors[1].as_str().unwrap().contains("no field when"), "{errors:?}");
    assert_eq!(doc["after"], true, "later steps still run");
}

#[test]
fn failures_can_drop_or_be_ignored_and_conditions_choose_events() {
    let t = transforms(
        r#"
        [[transforms]]
        json = {}
        on_failure = "ignore"
        [[transforms]]
        drop_event = {}
        when.range = { "status" = { lt = 400 } }
        [[transforms]]
        grok = { field = "status_text", patterns = ["%{INT:n}"] }
        on_failure = "drop"
        when.has_fields = ["status_text"]
        "#,
    );
    let mut ok = event(r#"{"status": 200}"#);
    assert_eq!(t.apply(&mut ok), Verdict::Drop, "successes are dropped by the condition");
    let mut failed = event(r#"{"status": 503}"#);
    assert_eq!(t.apply(&mut failed), Verdict::Keep);
    assert!(failed.get("tags").is_none());
    let mut plain = event("plain text");
    assert_eq!(t.apply(&mut plain), Verdict::Keep, "a JSON failure ignored; no status, so no drop");
    assert!(plain.get("tags").is_none(), "ignored failures leave no tag");
    let mut bad = event(r#"{"status": 500, "status_text": "none"}"#);
    assert_eq!(t.apply(&mut bad), Verdict::Drop, "on_failure = drop");
}

#[test]
fn steps_that_cannot_compile_name_themselves() {
    #[derive(serde::Deserialize)]
    struct Input {
        transforms: Vec<Transform>,
    }
    for (text, says) in [
        (
            r#"[[transforms]]
            grok = { patterns = ["%{NOPE:x}"] }"#,
            "transforms[0] (grok): `%{NOPE:x}`: %{NOPE} is not a known pattern",
        ),
        (
            r#"[[transforms]]
            timestamp = { field = "t", formats = ["yyyy"] }"#,
            "transforms[0] (timestamp): `yyyy` is not a format",
        ),
        (
            r#"[[transforms]]
            geoip = { database = "/nonexistent.mmdb" }"#,
            "transforms[0] (geoip): opening /nonexistent.mmdb",
        ),
    ] {
        let input: Input = toml::from_str(text).unwrap();
        let e = Transforms::new(None, &input.transforms, &mut GeoIpCache::default()).unwrap_err();
        assert!(e.starts_with(says), "{e}");
    }
}
