//! Logs arrive structured: `millrace agent` with `module = "nginx"` on real-looking nginx access
//! and error logs, routed by `topic = "logs-%{[event.dataset]:other}"` through a real broker, and
//! `millrace sink` writing them into the Elasticsearch test server (a test double following the
//! documented `_bulk` contract; no Elasticsearch can be installed here).
//!
//! Proves: access lines (IPv4 and IPv6 clients, `-` fields, quoted agents with escapes) become
//! ECS documents with their own time as `@timestamp`, so a backfill of yesterday's file lands in
//! yesterday's daily index; error lines are recognised and routed to their own topic; a line the
//! module cannot read keeps its text, is tagged `_grokparsefailure` and goes to the fallback
//! topic with its read time.

use chrono::{Duration as Days, Utc};
use millrace_tests::component::Component;
use millrace_tests::es::EsTestServer;
use millrace_tests::{run, wait_for, BrokerProcess};
use serde_json::Value;
use std::time::Duration;

/// The topics the inputs' `logs-%{[event.dataset]:other}` routes these logs to.
const ROUTED: [&str; 5] =
    ["logs-nginx.access", "logs-nginx.error", "logs-other", "logs-apache.access", "logs-apache.error"];

fn topics(bootstrap: &str) -> anyhow::Result<String> {
    let out = run("kcat", &["-L", "-b", bootstrap], None, Duration::from_secs(30))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn nginx_logs_become_ecs_documents_in_the_index_of_their_own_day() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let es = EsTestServer::start(&[])?;
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("nginx");
    std::fs::create_dir_all(&logs)?;

    // Yesterday's access log, as a backfill would find it, then today's lines and an error log.
    let yesterday = Utc::now() - Days::days(1);
    let clf = |t: chrono::DateTime<Utc>| t.format("%d/%b/%Y:%H:%M:%S +0000").to_string();
    let mut access = Vec::new();
    for n in 0..40 {
        let client = if n % 4 == 0 { format!("2001:db8::{n:x}") } else { format!("203.0.113.{n}") };
        let user = if n % 5 == 0 { "alice" } else { "-" };
        let bytes = if n % 7 == 0 { "-".to_string() } else { (100 + n).to_string() };
        let status = if n % 3 == 0 { 404 } else { 200 };
        access.push(format!(
            r#"{client} - {user} [{}] "GET /item/{n}?ref=mail HTTP/1.1" {status} {bytes} "-" "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0 \"quoted\"""#,
            clf(yesterday)
        ));
    }
    access.push(format!(
        r#"198.51.100.7 - - [{}] "POST /api HTTP/2.0" 201 12 "https://example.com/" "curl/8.5.0""#,
        clf(Utc::now())
    ));
    access.push("this line is no nginx line".to_string());
    std::fs::write(logs.join("access.log"), access.join("\n") + "\n")?;
    // nginx writes error times in local time: the input says which zone that is.
    let berlin_now = Utc::now().with_timezone(&chrono_tz::Europe::Berlin);
    let error_line = format!(
        r#"{} [error] 811#811: *42 open() "/srv/www/missing.png" failed (2: No such file or directory), client: 203.0.113.5, server: shop, request: "GET /missing.png HTTP/1.1""#,
        berlin_now.format("%Y/%m/%d %H:%M:%S")
    );
    std::fs::write(logs.join("error.log"), format!("{error_line}\n"))?;
    // An Apache server beside it: a combined access line and a 2.4 error line.
    let apache = dir.path().join("apache");
    std::fs::create_dir_all(&apache)?;
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1";
    let apache_access =
        format!(r#"192.0.2.44 - bob [{}] "DELETE /cart/9 HTTP/1.1" 503 - "-" "{iphone}""#, clf(Utc::now()));
    std::fs::write(apache.join("access.log"), apache_access + "\n")?;
    let apache_error = format!(
        "[{}] [proxy:error] [pid 2211:tid 3001] [client 192.0.2.44:51000] AH00898: Error reading from remote server\n",
        berlin_now.format("%a %b %d %H:%M:%S%.6f %Y")
    );
    std::fs::write(apache.join("error.log"), apache_error)?;

    let agent_toml = format!(
        "[agent]\ndata_dir = {:?}\nhost_name = \"web-1\"\n\n[output]\nbootstrap = \"{bootstrap}\"\n\n\
         [[inputs.file]]\nname = \"nginx\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\nmodule = \"nginx\"\n\
         timezone = \"Europe/Berlin\"\ntopic = \"logs-%{{[event.dataset]:other}}\"\n\n\
         [[inputs.file]]\nname = \"apache\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\nmodule = \"apache\"\n\
         timezone = \"Europe/Berlin\"\ntopic = \"logs-%{{[event.dataset]:other}}\"\n",
        dir.path().join("agent-data").display().to_string(),
        logs.join("*.log").display().to_string(),
        apache.join("*.log").display().to_string(),
    );
    let agent = Component::start("agent", dir.path(), "agent", &agent_toml)?;
    // The broker creates the routed topics as the agent produces to them.
    wait_for("the routed topics", Duration::from_secs(60), || {
        let listing = topics(&bootstrap)?;
        Ok(ROUTED.iter().all(|t| listing.contains(&format!("\"{t}\""))))
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;

    let sink_toml = format!(
        "[source]\nbootstrap = \"{bootstrap}\"\n\n\
         [[elasticsearch]]\nname = \"logs\"\ntopics = {ROUTED:?}\n\
         group = \"es\"\nendpoints = [\"{}\"]\nindex = \"logs-%Y.%m.%d\"\nbatch_timeout = \"200ms\"\n",
        es.url()
    );
    let sink = Component::start("sink", dir.path(), "sink", &sink_toml)?;
    let expected = access.len() + 3;
    wait_for("every line in Elasticsearch", Duration::from_secs(90), || Ok(es.docs(None)?.len() >= expected))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}\nagent log:\n{}", sink.log(), agent.log()))?;
    let docs = es.docs(None)?;
    assert_eq!(docs.len(), expected, "one document per line");

    let yesterdays_index = format!("logs-{}", yesterday.format("%Y.%m.%d"));
    let todays_index = format!("logs-{}", Utc::now().format("%Y.%m.%d"));
    let backfill: Vec<&Value> =
        docs.iter().filter(|d| d["source"]["url"]["path"].as_str().is_some_and(|p| p.starts_with("/item/"))).collect();
    assert_eq!(backfill.len(), 40, "every access line parsed");
    for doc in &backfill {
        assert_eq!(doc["index"], yesterdays_index.as_str(), "a backfilled line lands in its own day's index: {doc}");
        let source = &doc["source"];
        assert_eq!(
            source["@timestamp"].as_str().map(|t| &t[..10]),
            Some(yesterday.format("%Y-%m-%d").to_string().as_str())
        );
        assert_eq!(source["event"]["dataset"], "nginx.access");
        assert!(source["http"]["response"]["status_code"].is_i64(), "status is a number: {source}");
        assert_eq!(source["http"]["request"]["method"], "GET");
        assert_eq!(source["url"]["query"], "ref=mail");
        assert_eq!(source["user_agent"]["name"], "Firefox");
        assert!(source["user_agent"]["original"].as_str().is_some_and(|ua| ua.ends_with(r#"\"quoted\""#)), "{source}");
        assert!(source["event"]["original"].as_str().is_some_and(|l| l.contains("/item/")));
        assert!(source.get("message").is_none() && source.get("tags").is_none(), "{source}");
        assert!(source["source"]["ip"].is_string(), "{source}");
    }
    assert!(backfill
        .iter()
        .any(|d| d["source"]["source"]["ip"].as_str().is_some_and(|ip| ip.starts_with("2001:db8::"))));
    assert!(backfill.iter().any(|d| d["source"]["user"]["name"] == "alice"));
    assert!(backfill.iter().any(|d| d["source"]["http"]["response"].get("body").is_none()), "`-` bytes set no field");

    let find = |what: &dyn Fn(&Value) -> bool| docs.iter().find(|d| what(&d["source"])).cloned();
    let post =
        find(&|s| s["http"]["request"]["method"] == "POST").ok_or_else(|| anyhow::anyhow!("no POST document"))?;
    assert_eq!(post["index"], todays_index.as_str());
    assert_eq!(post["source"]["http"]["response"]["status_code"], 201);

    let error =
        find(&|s| s["event"]["dataset"] == "nginx.error").ok_or_else(|| anyhow::anyhow!("no error document"))?;
    assert_eq!(error["source"]["log"]["level"], "error");
    assert_eq!(error["source"]["nginx"]["error"]["connection_id"], 42);
    let stamp = error["source"]["@timestamp"].as_str().unwrap_or_default();
    let stamp = chrono::DateTime::parse_from_rfc3339(stamp)?;
    assert!(
        (Utc::now() - stamp.with_timezone(&Utc)).num_minutes().abs() < 10,
        "Berlin wall time read as Berlin time: {stamp}"
    );

    let bad = find(&|s| s["message"] == "this line is no nginx line")
        .ok_or_else(|| anyhow::anyhow!("the unreadable line is lost"))?;
    assert_eq!(bad["source"]["tags"], serde_json::json!(["_grokparsefailure"]));
    assert!(bad["source"]["error"]["message"].as_str().is_some_and(|m| m.contains("module nginx")), "{bad}");
    assert_eq!(bad["index"], todays_index.as_str(), "no time of its own: the read time");

    let apache_access = find(&|s| s["event"]["dataset"] == "apache.access")
        .ok_or_else(|| anyhow::anyhow!("no apache access document"))?;
    let source = &apache_access["source"];
    assert_eq!(source["http"]["request"]["method"], "DELETE");
    assert_eq!(source["http"]["response"]["status_code"], 503);
    assert_eq!((source["user"]["name"].as_str(), source["event"]["outcome"].as_str()), (Some("bob"), Some("failure")));
    assert_eq!(source["user_agent"]["device"]["name"], "iPhone");
    let apache_error = find(&|s| s["event"]["dataset"] == "apache.error")
        .ok_or_else(|| anyhow::anyhow!("no apache error document"))?;
    let source = &apache_error["source"];
    assert_eq!(
        (source["apache"]["error"]["module"].as_str(), source["log"]["level"].as_str()),
        (Some("proxy"), Some("error"))
    );
    assert_eq!((source["process"]["pid"].as_i64(), source["source"]["port"].as_i64()), (Some(2211), Some(51000)));
    assert_eq!(source["error"]["code"], "AH00898");
    let stamp = chrono::DateTime::parse_from_rfc3339(source["@timestamp"].as_str().unwrap_or_default())?;
    assert!(
        (Utc::now() - stamp.with_timezone(&Utc)).num_minutes().abs() < 10,
        "Berlin wall time as Berlin time: {stamp}"
    );

    // The routing put each kind in its own topic.
    for (topic, count) in [
        ("logs-nginx.access", 41),
        ("logs-nginx.error", 1),
        ("logs-other", 1),
        ("logs-apache.access", 1),
        ("logs-apache.error", 1),
    ] {
        let out = run(
            "kcat",
            &["-C", "-b", &bootstrap, "-t", topic, "-e", "-q", "-f", "%s\\n"],
            None,
            Duration::from_secs(60),
        )?;
        let records = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).count();
        assert_eq!(records, count, "{topic}");
    }
    Ok(())
}

/// `millrace sink setup` against the test server, with the output lines it printed.
fn setup(sink_toml: &std::path::Path, extra: &[&str]) -> anyhow::Result<Vec<String>> {
    let config = sink_toml.display().to_string();
    let mut args = vec!["sink", "setup", "--config", config.as_str()];
    args.extend_from_slice(extra);
    let out = run(&millrace_tests::millrace_bin().display().to_string(), &args, None, Duration::from_secs(60))?;
    anyhow::ensure!(out.status.success(), "setup failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
}

#[test]
fn sink_setup_installs_a_template_and_policy_once_and_documents_go_to_their_data_streams() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let es = EsTestServer::start(&[])?;
    let dir = tempfile::tempdir()?;
    let sink_path = dir.path().join("sink-setup.toml");
    let sink_toml = |extra: &str| {
        format!(
            "[source]\nbootstrap = \"{bootstrap}\"\n\n\
             [[elasticsearch]]\nname = \"web\"\ntopics = [\"weblogs\"]\ngroup = \"es\"\nendpoints = [\"{}\"]\n\
             index = \"logs-%{{[event.dataset]:generic}}-default\"\ndata_stream = true\naction = \"create\"\nbatch_timeout = \"200ms\"\n\
             [elasticsearch.setup]\ndelete_after = \"30d\"\n{extra}",
            es.url()
        )
    };
    std::fs::write(&sink_path, sink_toml(""))?;
    let first = setup(&sink_path, &[])?;
    assert_eq!(
        first,
        vec![
            "web: ILM policy millrace-web created".to_string(),
            "web: index template millrace-web (logs-*-default, data stream) created".to_string()
        ]
    );
    let again = setup(&sink_path, &[])?;
    assert!(again.iter().all(|l| l.ends_with(" unchanged")), "setup twice changes nothing: {again:?}");
    let (status, policy) = es.request("GET", "/_ilm/policy/millrace-web", b"")?;
    assert_eq!(status, 200);
    let policy: Value = serde_json::from_str(&policy)?;
    assert_eq!(policy["millrace-web"]["version"], 1, "not written again");
    assert_eq!(policy["millrace-web"]["policy"]["phases"]["delete"]["min_age"], "30d");
    // A changed setting replaces the template only.
    std::fs::write(&sink_path, sink_toml("replicas = 2\n"))?;
    let changed = setup(&sink_path, &[])?;
    assert!(changed[0].ends_with(" unchanged") && changed[1].ends_with(" updated"), "{changed:?}");
    // A template of that name made by someone else stays unless --overwrite.
    let (status, _) =
        es.request("PUT", "/_index_template/theirs", br#"{"index_patterns": ["other-*"], "priority": 5}"#)?;
    assert_eq!(status, 200);
    std::fs::write(&sink_path, sink_toml("template_name = \"theirs\"\n"))?;
    let kept = setup(&sink_path, &[])?;
    assert!(kept[1].contains("theirs") && kept[1].contains("kept: it was not made by millrace"), "{kept:?}");
    let replaced = setup(&sink_path, &["--overwrite"])?;
    assert!(replaced[1].ends_with(" updated"), "{replaced:?}");
    std::fs::write(&sink_path, sink_toml(""))?;

    // Parsed nginx lines go to the data stream of their dataset, made from the template.
    let logs = dir.path().join("nginx");
    std::fs::create_dir_all(&logs)?;
    let now = Utc::now().format("%d/%b/%Y:%H:%M:%S +0000");
    let lines: Vec<String> =
        (0..20).map(|n| format!(r#"192.0.2.{n} - - [{now}] "GET /p/{n} HTTP/1.1" 200 {n} "-" "curl/8.5.0""#)).collect();
    std::fs::write(logs.join("access.log"), lines.join("\n") + "\n")?;
    let agent_toml = format!(
        "[agent]\ndata_dir = {:?}\n\n[output]\nbootstrap = \"{bootstrap}\"\n\n\
         [[inputs.file]]\nname = \"nginx\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\nmodule = \"nginx.access\"\ntopic = \"weblogs\"\n",
        dir.path().join("agent-data").display().to_string(),
        logs.join("*.log").display().to_string(),
    );
    let agent = Component::start("agent", dir.path(), "agent", &agent_toml)?;
    let sink = Component::start("sink", dir.path(), "sink", &std::fs::read_to_string(&sink_path)?)?;
    wait_for("every line in its data stream", Duration::from_secs(90), || {
        Ok(es.docs(Some("logs-nginx.access-default"))?.len() >= 20)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}\nagent log:\n{}", sink.log(), agent.log()))?;
    let docs = es.docs(Some("logs-nginx.access-default"))?;
    assert_eq!(docs.len(), 20);
    assert!(docs.iter().all(|d| d["data_stream"] == "logs-nginx.access-default"), "{:?}", docs[0]);
    let (status, stream) = es.request("GET", "/_data_stream/logs-nginx.access-default", b"")?;
    assert_eq!(status, 200, "{stream}");
    let stream: Value = serde_json::from_str(&stream)?;
    assert_eq!(stream["data_streams"][0]["template"], "millrace-web", "made from the installed template");
    assert_eq!(stream["data_streams"][0]["ilm_policy"], "millrace-web");
    let (_, mapping) = es.request("GET", "/logs-nginx.access-default/_mapping", b"")?;
    let mapping: Value = serde_json::from_str(&mapping)?;
    let backing =
        mapping.as_object().and_then(|m| m.values().next()).ok_or_else(|| anyhow::anyhow!("no mapping: {mapping}"))?;
    assert_eq!(backing["mappings"]["properties"]["source"]["properties"]["ip"]["type"], "ip", "{backing}");
    Ok(())
}
