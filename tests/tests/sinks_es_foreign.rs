//! The Elasticsearch sink reading records nobody in millrace wrote, against a real broker and the
//! Elasticsearch test server (`tests/python/es_test_server.py`, a double that follows the
//! documented `_bulk` contract, since no Elasticsearch can be installed here): plain-text records
//! (`format = "text"`) arrive as `{"@timestamp", "message"}` documents at the record's time, in
//! that day's index, identified by their broker position, so a redelivery overwrites; JSON
//! objects from any producer arrive as they are, and in the default format a record that is not
//! a JSON object is dead-lettered. With `pipeline`, documents go through that ingest pipeline.

use millrace_tests::component::Component;
use millrace_tests::es::EsTestServer;
use millrace_tests::{free_port, millrace, read_with_headers, run, wait_for, BrokerProcess};
use std::time::Duration;

fn produce(bootstrap: &str, topic: &str, lines: &str) -> anyhow::Result<()> {
    let out = run("kcat", &["-P", "-b", bootstrap, "-t", topic], Some(lines.as_bytes()), Duration::from_secs(60))?;
    anyhow::ensure!(out.status.success(), "kcat: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[test]
fn plain_text_and_foreign_json_records_become_documents() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let es = EsTestServer::start(&[])?;
    for topic in ["text", "json", "dead-letters"] {
        millrace(&["topic", "create", topic, "--partitions", "1", "--bootstrap", &bootstrap])?;
    }
    let text: String =
        (0..50).map(|i| format!("<13>Dec  4 10:00:00 web-1 app[7]: request {i} took \"5ms\"\n")).collect();
    produce(&bootstrap, "text", &text)?;
    let json: String =
        (0..30).map(|i| format!("{{\"action\":\"click\",\"n\":{i},\"user\":{{\"id\":\"u{i}\"}}}}\n")).collect();
    produce(&bootstrap, "json", &(json + "not json at all\n[1,2]\n"))?;

    // JSON documents go through an ingest pipeline (for those who parse in Elasticsearch).
    let pipeline = r#"{"processors":[{"set":{"field":"event.pipeline","value":"tagged"}}]}"#;
    let (status, body) = es.request("PUT", "/_ingest/pipeline/tag%20events", pipeline.as_bytes())?;
    anyhow::ensure!(status == 200, "creating the pipeline: {status} {body}");
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "[sink]\nmetrics_listen = \"127.0.0.1:{}\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n\
         [[elasticsearch]]\nname = \"text\"\ntopics = [\"text\"]\ngroup = \"text-sink\"\nendpoints = [\"{url}\"]\n\
         index = \"syslog-%Y.%m.%d\"\nformat = \"text\"\nbatch_timeout = \"100ms\"\ndead_letter_topic = \"dead-letters\"\n\n\
         [[elasticsearch]]\nname = \"json\"\ntopics = [\"json\"]\ngroup = \"json-sink\"\nendpoints = [\"{url}\"]\n\
         index = \"events\"\npipeline = \"tag events\"\nbatch_timeout = \"100ms\"\ndead_letter_topic = \"dead-letters\"\n",
        free_port(),
        url = es.url()
    );
    let mut sink = Component::start("sink", dir.path(), "sink", &toml)?;
    wait_for("80 documents and 2 dead letters", Duration::from_secs(60), || {
        Ok(es.docs(None)?.len() >= 80 && read_with_headers(&bootstrap, "dead-letters")?.len() >= 2)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;

    let today = chrono::Utc::now().format("syslog-%Y.%m.%d").to_string();
    let texts = es.docs(Some("syslog-*"))?;
    assert_eq!(texts.len(), 50, "one document per text record");
    for (i, doc) in texts.iter().enumerate() {
        let source = &doc["source"];
        assert_eq!(source["message"], format!("<13>Dec  4 10:00:00 web-1 app[7]: request {i} took \"5ms\""));
        let at = source["@timestamp"].as_str().unwrap_or_default();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "@timestamp {at:?}");
        // The index is the record's day (the test runs within a day of producing; midnight
        // between the two is the one way this can differ, hence the check against either).
        let yesterday = (chrono::Utc::now() - chrono::Duration::hours(1)).format("syslog-%Y.%m.%d").to_string();
        assert!(doc["index"] == today.as_str() || doc["index"] == yesterday.as_str(), "{doc}");
        assert_eq!(doc["id"], format!("text:0:{i}"));
    }
    let events = es.docs(Some("events"))?;
    assert_eq!(events.len(), 30);
    let through_pipeline =
        serde_json::json!({"action": "click", "event": {"pipeline": "tagged"}, "n": 7, "user": {"id": "u7"}});
    assert_eq!(events[7]["source"], through_pipeline, "the document went through the pipeline");
    assert_eq!(events[7]["id"], "json:0:7");
    let dead = read_with_headers(&bootstrap, "dead-letters")?;
    assert_eq!(dead.len(), 2, "{dead:#?}");
    assert!(dead.iter().any(|(h, v)| v == "not json at all" && h.contains("is not JSON")), "{dead:#?}");
    assert!(dead.iter().any(|(h, v)| v == "[1,2]" && h.contains("not an object")), "{dead:#?}");
    sink.stop(Duration::from_secs(30))?;
    Ok(())
}
