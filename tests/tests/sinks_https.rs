//! Sinks over HTTPS with credentials, against a real broker: the Elasticsearch test server and a
//! real InfluxDB 1.x, both serving TLS with certificates of a throw-away CA and refusing requests
//! without the right credentials.
//!
//! Proves: records arrive over HTTPS with basic auth (password from a file, with a client
//! certificate), an API key or an InfluxDB password (from `${VAR}`), and their offsets are
//! committed; a wrong password is reported as refused credentials and commits nothing; a server
//! whose CA the sink does not trust is a TLS error and commits nothing; no secret appears in the
//! sink's log.

use millrace_tests::component::Component;
use millrace_tests::es::EsTestServer;
use millrace_tests::influx::InfluxProcess;
use millrace_tests::pki::TestCa;
use millrace_tests::{committed_everything, group_offsets, millrace, run, wait_for, BrokerProcess};
use std::time::Duration;

fn produce(bootstrap: &str, topic: &str, records: &[String]) -> anyhow::Result<()> {
    let input = records.join("\n") + "\n";
    let out = run("kcat", &["-P", "-b", bootstrap, "-t", topic], Some(input.as_bytes()), Duration::from_secs(60))?;
    anyhow::ensure!(out.status.success(), "kcat failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// `millrace group describe GROUP`.
fn describe(bootstrap: &str, group: &str) -> anyhow::Result<String> {
    millrace(&["group", "describe", group, "--bootstrap", bootstrap])
}

/// How many partitions `group` has committed an offset on.
fn commits(bootstrap: &str, group: &str) -> anyhow::Result<usize> {
    Ok(group_offsets(&describe(bootstrap, group)?, group).iter().filter(|(committed, _)| committed != "-").count())
}

/// The log lines naming `sink` that contain `text`.
fn lines_of(log: &str, sink: &str, text: &str) -> usize {
    log.lines().filter(|l| l.contains(sink) && l.contains(text)).count()
}

#[test]
fn elasticsearch_over_https_with_basic_auth_and_api_key_refusing_wrong_ones() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new(&dir.path().join("pki"), "millrace test CA")?;
    let api_key = "bWlsbHJhY2U6a2V5LXMzY3JldA==";
    let ca_file = ca.ca_cert.display().to_string();
    // Client certificates are asked for (not required): the one a sink presents is logged.
    let es = EsTestServer::start_https(
        &ca.localhost("es")?,
        &ca.ca_cert,
        &["--basic", "elastic:pa55-s3cret", "--api-key", api_key, "--tls-client-ca", &ca_file],
    )?;
    assert!(es.url().starts_with("https://"), "{}", es.url());
    // Plain HTTP on the TLS port gets no answer a client could take for Elasticsearch's.
    let plain = millrace_tests::influx::http_request_timeout(
        &format!("127.0.0.1:{}", es.port()),
        "GET",
        "/",
        &[],
        b"",
        Duration::from_secs(5),
    );
    assert!(!matches!(plain, Ok((200, _))), "{plain:?}");

    millrace(&["topic", "create", "logs", "--partitions", "2", "--bootstrap", &bootstrap])?;
    let records: Vec<String> = (0..200).map(|i| format!("{{\"message\":\"line-{i:03}\"}}")).collect();
    produce(&bootstrap, "logs", &records)?;

    let password_file = dir.path().join("es-password");
    std::fs::write(&password_file, "pa55-s3cret\n")?;
    let client = ca.issue("sink", "millrace-sink", &[])?;
    let sink = |name: &str, index: &str, rest: &str| {
        format!(
            "[[elasticsearch]]\nname = \"{name}\"\ntopics = [\"logs\"]\ngroup = \"{name}\"\nendpoints = [\"{}\"]\n\
             index = \"{index}\"\nbatch_max_events = 50\nbatch_timeout = \"100ms\"\nretry_initial = \"100ms\"\n\
             retry_max = \"500ms\"\nrequest_timeout = \"5s\"\n{rest}\n",
            es.url()
        )
    };
    let toml = [
        format!("[source]\nbootstrap = \"{bootstrap}\"\n"),
        sink(
            "es-basic",
            "basic",
            &format!(
                "username = \"elastic\"\npassword_file = {:?}\n\
                 tls = {{ ca_file = {ca_file:?}, cert_file = {:?}, key_file = {:?} }}",
                password_file.display().to_string(),
                client.cert.display().to_string(),
                client.key.display().to_string()
            ),
        ),
        sink(
            "es-key",
            "key",
            &format!("api_key = \"${{MILLRACE_TEST_ES_API_KEY}}\"\n[elasticsearch.tls]\nca_file = {ca_file:?}"),
        ),
        sink(
            "es-wrong",
            "wrong",
            &format!("username = \"elastic\"\npassword = \"not-it\"\ntls = {{ ca_file = {ca_file:?} }}"),
        ),
        // The right password, but no ca_file: the system's roots do not include the test CA.
        sink(
            "es-untrusted",
            "untrusted",
            &format!("username = \"elastic\"\npassword_file = {:?}", password_file.display().to_string()),
        ),
    ]
    .join("\n");
    let mut sink_process =
        Component::start_with_env("sink", dir.path(), "sink", &toml, &[("MILLRACE_TEST_ES_API_KEY", api_key)])?;

    let count = |index: &str| es.docs(Some(index)).map(|d| d.len()).unwrap_or(0);
    wait_for("200 documents through basic auth and 200 through the API key", Duration::from_secs(60), || {
        Ok(count("basic") >= 200 && count("key") >= 200)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink_process.log()))?;
    assert_eq!((count("basic"), count("key")), (200, 200));
    for group in ["es-basic", "es-key"] {
        wait_for(&format!("{group} to commit everything"), Duration::from_secs(30), || {
            Ok(committed_everything(&describe(&bootstrap, group)?, group))
        })?;
    }
    wait_for("the refused sinks to report why", Duration::from_secs(30), || {
        let log = sink_process.log();
        Ok(lines_of(&log, "es-wrong", "credentials refused") > 0 && lines_of(&log, "es-untrusted", "UnknownIssuer") > 0)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink_process.log()))?;
    let log = sink_process.log();
    assert!(lines_of(&log, "es-wrong", "HTTP 401") > 0, "{log}");
    assert!(lines_of(&log, "es-untrusted", "invalid peer certificate") > 0, "{log}");
    for group in ["es-wrong", "es-untrusted"] {
        assert_eq!(commits(&bootstrap, group)?, 0, "{group} committed offsets it never wrote");
    }
    assert_eq!((count("wrong"), count("untrusted")), (0, 0));
    let served = es.log();
    assert_eq!(served.matches("tls client certificate CN=").count(), served.matches("CN=millrace-sink").count());
    assert!(served.contains("tls client certificate CN=millrace-sink"), "the client certificate was not presented");
    let stats = es.stats()?;
    assert!(stats["unauthorized_401"].as_u64().unwrap_or(0) > 0, "{stats}");
    for secret in ["pa55-s3cret", api_key, "not-it"] {
        assert!(!log.contains(secret), "the sink logged a secret ({secret}):\n{log}");
    }
    sink_process.kill9();
    Ok(())
}

#[test]
fn influxdb_over_https_with_a_password_and_a_wrong_one() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new(&dir.path().join("pki"), "millrace test CA")?;
    let influx = InfluxProcess::start_https(&ca.localhost("influx")?, &ca.ca_cert, ("admin", "adm1n-pass"))?;
    influx.create_database("metrics")?;
    influx.query("metrics", "CREATE USER \"sink\" WITH PASSWORD 'w-s3cret'; GRANT WRITE ON \"metrics\" TO \"sink\"")?;
    assert!(influx.url().starts_with("https://"), "{}", influx.url());

    millrace(&["topic", "create", "metrics", "--partitions", "2", "--bootstrap", &bootstrap])?;
    let records: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"@timestamp":"2026-11-23T11:00:00.{i:03}Z","name":"load","tags":{{"core":"c1"}},"fields":{{"v":{i}.5}},"host":{{"name":"h1"}},"event":{{"schema":1,"kind":"metric"}}}}"#
            )
        })
        .collect();
    produce(&bootstrap, "metrics", &records)?;

    let ca_file = ca.ca_cert.display().to_string();
    let sink = |name: &str, password: &str| {
        format!(
            "[[influxdb]]\nname = \"{name}\"\ntopics = [\"metrics\"]\ngroup = \"{name}\"\nurl = \"{}\"\n\
             database = \"metrics\"\nusername = \"sink\"\npassword = \"{password}\"\nbatch_timeout = \"100ms\"\n\
             retry_initial = \"100ms\"\nretry_max = \"500ms\"\nrequest_timeout = \"5s\"\n\
             [influxdb.tls]\nca_file = {ca_file:?}\n",
            influx.url()
        )
    };
    let toml = format!(
        "[source]\nbootstrap = \"{bootstrap}\"\n\n{}\n{}",
        sink("influx-ok", "${MILLRACE_TEST_INFLUX_PASSWORD}"),
        sink("influx-wrong", "nope-nope")
    );
    let mut sink_process =
        Component::start_with_env("sink", dir.path(), "sink", &toml, &[("MILLRACE_TEST_INFLUX_PASSWORD", "w-s3cret")])?;
    wait_for("100 points in InfluxDB", Duration::from_secs(60), || Ok(influx.count_points("metrics", "load")? >= 100))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink_process.log()))?;
    assert_eq!(influx.count_points("metrics", "load")?, 100);
    wait_for("influx-ok to commit everything", Duration::from_secs(30), || {
        Ok(committed_everything(&describe(&bootstrap, "influx-ok")?, "influx-ok"))
    })?;
    wait_for("the wrong password to be reported", Duration::from_secs(30), || {
        Ok(lines_of(&sink_process.log(), "influx-wrong", "credentials refused") > 0)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink_process.log()))?;
    let log = sink_process.log();
    assert!(lines_of(&log, "influx-wrong", "HTTP 401") > 0, "{log}");
    assert_eq!(commits(&bootstrap, "influx-wrong")?, 0, "offsets committed for points InfluxDB refused");
    for secret in ["w-s3cret", "nope-nope"] {
        assert!(!log.contains(secret), "the sink logged a secret ({secret}):\n{log}");
    }
    sink_process.kill9();
    Ok(())
}
