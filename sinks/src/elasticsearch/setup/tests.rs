#![allow(clippy::unwrap_used)]
use super::*;

fn sink(extra: &str) -> ElasticsearchSink {
    let text = format!(
        "[source]\nbootstrap = \"b:9092\"\n[[elasticsearch]]\nname = \"logs\"\ntopics = [\"t\"]\ngroup = \"g\"\n\
         endpoints = [\"http://es:9200\"]\n{extra}\n"
    );
    millrace_config::parse_sink(&text, "s.toml").unwrap().elasticsearch.remove(0)
}

#[test]
fn a_data_stream_sink_gets_a_rollover_policy_and_a_data_stream_template_with_ecs_mappings() {
    let settings = sink(
        "index = \"logs-%{[event.dataset]:generic}-default\"\ndata_stream = true\naction = \"create\"\n\
         [elasticsearch.setup]\ndelete_after = \"90d\"\nreplicas = 0",
    );
    let objects = objects("logs", &settings).unwrap();
    assert_eq!(objects.len(), 2);
    let policy = &objects[0];
    assert_eq!(policy.path, "/_ilm/policy/millrace-logs");
    let phases = &policy.body["policy"]["phases"];
    assert_eq!(phases["hot"]["actions"]["rollover"], json!({"max_age": "30d", "max_primary_shard_size": "50gb"}));
    assert_eq!(phases["delete"], json!({"min_age": "90d", "actions": {"delete": {}}}));
    assert_eq!(policy.body["policy"]["_meta"]["managed_by"], "millrace");
    let template = &objects[1];
    assert_eq!(template.path, "/_index_template/millrace-logs");
    assert_eq!(template.label, "index template millrace-logs (logs-*-default, data stream)");
    let body = &template.body;
    assert_eq!(body["index_patterns"], json!(["logs-*-default"]));
    assert_eq!(body["data_stream"], json!({}));
    assert_eq!(body["priority"], 200, "above the built-in logs-*-* template");
    let settings_json = &body["template"]["settings"];
    assert_eq!(settings_json["index.lifecycle.name"], "millrace-logs");
    assert_eq!(settings_json["index.number_of_replicas"], 0);
    let properties = &body["template"]["mappings"]["properties"];
    assert_eq!(properties["source"]["properties"]["ip"]["type"], "ip");
    assert_eq!(properties["source"]["properties"]["geo"]["properties"]["location"]["type"], "geo_point");
    assert_eq!(properties["http"]["properties"]["response"]["properties"]["status_code"]["type"], "long");
    assert_eq!(properties["@timestamp"]["type"], "date");
    assert_eq!(properties["event"]["properties"]["original"]["index"], false);
}

#[test]
fn daily_indices_get_no_rollover_and_ilm_can_be_left_out() {
    let daily = objects("logs", &sink("index = \"weblogs-%Y.%m.%d\"")).unwrap();
    assert_eq!(daily[0].body["policy"]["phases"]["hot"]["actions"], json!({}), "rollover needs a data stream");
    assert!(daily[0].body["policy"]["phases"].get("delete").is_none());
    assert_eq!(daily[1].body["index_patterns"], json!(["weblogs-*.*.*"]));
    assert!(daily[1].body.get("data_stream").is_none());
    let bare = objects("logs", &sink("[elasticsearch.setup]\nilm = false\ntemplate_name = \"web\"")).unwrap();
    assert_eq!(bare.len(), 1);
    assert_eq!(bare[0].path, "/_index_template/web");
    assert!(bare[0].body["template"]["settings"].get("index.lifecycle.name").is_none());
}

#[test]
fn setup_again_leaves_its_own_objects_alone_updates_changed_ones_and_keeps_foreign_ones() {
    let objects = objects("logs", &sink("")).unwrap();
    let (policy, template) = (&objects[0], &objects[1]);
    assert_eq!(decide(policy, None, false), None, "missing: created");
    let stored_policy = json!({ "millrace-logs": { "version": 1, "policy": policy.body["policy"].clone() } });
    assert_eq!(decide(policy, Some(&stored_policy), false), Some(Outcome::Unchanged));
    let stored_template =
        json!({ "index_templates": [{ "name": "millrace-logs", "index_template": template.body.clone() }] });
    assert_eq!(decide(template, Some(&stored_template), false), Some(Outcome::Unchanged));
    // A changed configuration changes the fingerprint: the stored one is replaced.
    let changed = objects_with_replicas(2);
    assert_eq!(decide(&changed, Some(&stored_template), false), None);
    // Someone else's template of that name is kept unless --overwrite.
    let foreign =
        json!({ "index_templates": [{ "name": "millrace-logs", "index_template": { "index_patterns": ["logs-*"] } }] });
    assert!(matches!(decide(template, Some(&foreign), false), Some(Outcome::Kept(_))));
    assert_eq!(decide(template, Some(&foreign), true), None);
}

fn objects_with_replicas(replicas: u32) -> Object {
    objects("logs", &sink(&format!("[elasticsearch.setup]\nreplicas = {replicas}"))).unwrap().remove(1)
}
