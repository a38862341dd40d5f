//! The Elasticsearch test double (tests/python/es_test_server.py) that sink tests use because no
//! real Elasticsearch can be installed here: its own unit tests (tests/python/test_es_test_server*.py)
//! pass, and the Rust harness starts it and reads back what a bulk request stored.

use millrace_tests::es::EsTestServer;
use millrace_tests::{python_bin, run, workspace_root};
use std::time::Duration;

#[test]
fn es_test_server_unit_tests_pass() -> anyhow::Result<()> {
    let dir = workspace_root().join("tests").join("python").display().to_string();
    let out = run(
        &python_bin(),
        &["-m", "unittest", "discover", "-s", &dir, "-p", "test_es_test_server*.py"],
        None,
        Duration::from_secs(300),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OK"), "{stderr}");
    Ok(())
}

#[test]
fn harness_reads_back_a_bulk_with_a_mapping_conflict() -> anyhow::Result<()> {
    let es = EsTestServer::start(&[])?;
    let (status, info) = es.request("GET", "/", b"")?;
    assert_eq!(status, 200, "{info}");
    assert!(info.contains("\"number\":\"8.11.0\""), "{info}");

    let response = es.bulk(concat!(
        "{\"index\":{\"_index\":\"app\",\"_id\":\"1\"}}\n",
        "{\"latency\":12,\"message\":\"ok\"}\n",
        "{\"index\":{\"_index\":\"app\",\"_id\":\"2\"}}\n",
        "{\"latency\":\"slow\",\"message\":\"conflict\"}\n",
    ))?;
    assert_eq!(response["errors"], true, "{response}");
    assert_eq!(response["items"][0]["index"]["status"], 201, "{response}");
    let failed = &response["items"][1]["index"];
    assert_eq!(failed["status"], 400, "{response}");
    assert_eq!(failed["error"]["type"], "document_parsing_exception", "{response}");
    let reason = failed["error"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("failed to parse field [latency] of type [long]"), "{reason}");

    let docs = es.docs(Some("app"))?;
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["id"], "1");
    assert_eq!(docs[0]["source"]["message"], "ok");
    assert!(es.docs(Some("other*"))?.is_empty());

    let stats = es.stats()?;
    assert_eq!(stats["bulk_requests"], 1, "{stats}");
    assert_eq!(stats["items"], 2, "{stats}");
    assert_eq!(stats["items_by_status"]["201"], 1, "{stats}");
    assert_eq!(stats["items_by_status"]["400"], 1, "{stats}");

    es.configure(r#"{"down": true}"#)?;
    let (status, body) = es.request("POST", "/_bulk", b"{\"index\":{\"_index\":\"app\"}}\n{}\n")?;
    assert_eq!(status, 503, "{body}");
    assert!(es.configure(r#"{"no_such_setting": 1}"#).is_err());
    es.reset()?;
    assert!(es.docs(None)?.is_empty());
    assert!(es.log().contains("POST /_bulk -> 200"), "{}", es.log());
    Ok(())
}

#[test]
fn harness_reports_the_log_when_the_server_cannot_start() {
    match EsTestServer::start(&["--basic", "no-colon"]) {
        Ok(es) => panic!("started on {} despite a bad --basic", es.url()),
        Err(e) => {
            let message = format!("{e:#}");
            assert!(message.contains("exited with"), "{message}");
            assert!(message.contains("--basic must be USER:PASS"), "{message}");
        }
    }
}
