//! The whole pipeline over SASL_SSL with ACLs enforced: a real `millrace agent` tailing files →
//! a broker with only a SASL_SSL listener for clients (certificates of a throw-away CA,
//! SCRAM-SHA-512 users, `[authorization] enabled = true`, no ACL for anonymous clients) → a real
//! `millrace sink` writing to the Elasticsearch test server, with its dead-letter topic.
//!
//! Proves: with exactly the README's least-privilege ACLs every line arrives once, a document
//! Elasticsearch refuses reaches the dead-letter topic (so the sink's dead-letter producer logs in
//! too), the group commits everything and the agent checkpoints everything; no password shows in
//! a log. Denials: an agent whose user lacks Write on its topic gets nothing in, says so, and
//! keeps its checkpoint before the refused lines (granted Write and restarted, it sends them all);
//! a sink whose user lacks Read on its group consumes nothing (granted it, the same process
//! catches up).

use millrace_tests::component::Component;
use millrace_tests::es::EsTestServer;
use millrace_tests::pki::TestCa;
use millrace_tests::{free_port, millrace, run, wait_for, BrokerProcess};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
/// Users of the pipeline; `operator` is the broker's only super user.
const USERS: [&str; 5] = ["operator", "agent", "sink", "agent-without-write", "sink-without-group"];

/// A broker whose clients must log in over SASL_SSL and get only what ACLs grant, its users, and
/// the files clients need to reach it.
struct SecureBroker {
    broker: BrokerProcess,
    /// `127.0.0.1:PORT` of the SASL_SSL listener.
    sasl_ssl: String,
    ca: PathBuf,
    /// `--command-config` file of the operator.
    operator: PathBuf,
    dir: tempfile::TempDir,
}

impl SecureBroker {
    /// Starts the broker, creates the users (each with password `<user>-pa55`, in
    /// `<dir>/<user>.password`), then restarts it with authorization on: the first users have
    /// to exist before anyone may create users, as with Kafka's `kafka-storage format
    /// --add-scram`. The operator then creates the topics over SASL_SSL.
    fn start(topics: &[(&str, &str)]) -> anyhow::Result<SecureBroker> {
        let dir = tempfile::tempdir()?;
        let ca = TestCa::new(&dir.path().join("pki"), "millrace test CA")?;
        let server = ca.localhost("broker")?;
        let sasl_ssl = format!("127.0.0.1:{}", free_port());
        let listeners = format!(
            "[[listeners]]\nname = \"SASL_SSL\"\nlisten = \"{sasl_ssl}\"\nsasl_enabled_mechanisms = [\"SCRAM-SHA-512\"]\n\
             [tls]\ncertificate_file = {:?}\nkey_file = {:?}\n[topics]\nauto_create = false\n",
            server.cert.display().to_string(),
            server.key.display().to_string(),
        );
        let mut broker = BrokerProcess::start(&listeners)?;
        for user in USERS {
            let file = dir.path().join(format!("{user}.password"));
            std::fs::write(&file, format!("{user}-pa55\n"))?;
            let file = file.display().to_string();
            millrace(&["user", "create", user, "--password-file", &file, "--bootstrap", &broker.bootstrap()])?;
        }
        broker.stop()?;
        broker
            .reconfigure(&format!("{listeners}[authorization]\nenabled = true\nsuper_users = [\"User:operator\"]\n"))?;
        broker.restart()?;
        // "Ready" is logged once the listeners are up; topics can be created once the broker is
        // registered and unfenced again, which on a loaded machine can take a few seconds more.
        wait_for("the restarted broker to be ready (/health 200)", Duration::from_secs(60), || {
            Ok(broker.admin_status("/health").is_ok_and(|(status, _)| status == 200))
        })?;
        let operator = dir.path().join("operator.properties");
        std::fs::write(
            &operator,
            format!(
                "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=operator\n\
                 sasl.password=operator-pa55\nssl.ca.location={}\n",
                ca.ca_cert.display()
            ),
        )?;
        let secure = SecureBroker { broker, sasl_ssl, ca: ca.ca_cert.clone(), operator, dir };
        for (topic, partitions) in topics {
            // The CLI gives up after 10 s; a create that timed out may still have happened.
            let mut attempt = 1;
            while let Err(e) = secure.operator(&["topic", "create", topic, "--partitions", partitions]) {
                let exists = format!("{e:#}").contains("TopicAlreadyExists");
                anyhow::ensure!(exists || attempt < 3, "creating {topic} failed {attempt} times, the last: {e:#}");
                if exists {
                    break;
                }
                eprintln!("creating {topic} failed ({e:#}); trying again");
                attempt += 1;
            }
        }
        // Anonymous clients (the loopback PLAINTEXT listener) are granted nothing.
        let anonymous = run("kcat", &["-b", &secure.broker.bootstrap(), "-L"], None, T)?;
        let listing = String::from_utf8_lossy(&anonymous.stdout);
        assert!(listing.contains(" 0 topics:"), "anonymous sees topics:\n{listing}");
        Ok(secure)
    }

    /// `millrace ARGS… --bootstrap <SASL_SSL> --command-config operator.properties`.
    fn operator(&self, args: &[&str]) -> anyhow::Result<String> {
        let config = self.operator.display().to_string();
        millrace(&[args, &["--bootstrap", &self.sasl_ssl, "--command-config", &config]].concat())
    }

    /// `millrace acl add ARGS…` as the operator.
    fn allow(&self, args: &[&str]) -> anyhow::Result<()> {
        self.operator(&[&["acl", "add"], args].concat()).map(drop)
    }

    /// The README's least-privilege ACLs for `agent` (on `topics`) and `sink` (reading `topics`,
    /// its `millrace-` groups, writing `dead_letters`).
    fn grant_pipeline(&self, agent: &str, sink: &str, topics: &[&str], dead_letters: &str) -> anyhow::Result<()> {
        let agent = format!("User:{agent}");
        let sink = format!("User:{sink}");
        let on_topics = |principal: &str, operations: [&str; 2]| {
            let mut args = vec!["--allow-principal", principal];
            args.extend(operations.iter().flat_map(|o| ["--operation", *o]));
            args.extend(topics.iter().flat_map(|t| ["--topic", *t]));
            self.allow(&args)
        };
        on_topics(&agent, ["Write", "Describe"])?;
        self.allow(&["--allow-principal", &agent, "--operation", "IdempotentWrite", "--cluster"])?;
        on_topics(&sink, ["Read", "Describe"])?;
        self.allow(&[
            "--allow-principal",
            &sink,
            "--operation",
            "Read",
            "--group",
            "millrace-",
            "--resource-pattern-type",
            "prefixed",
        ])?;
        self.allow(&[
            "--allow-principal",
            &sink,
            "--operation",
            "Write",
            "--operation",
            "Describe",
            "--topic",
            dead_letters,
        ])
    }

    /// The security keys of an agent's `[output]` or a sink's `[source]` for `user`, its
    /// password given as `password` (a `${VAR}` or a `sasl_password_file = …` line).
    fn client_keys(&self, user: &str, password: &str) -> String {
        format!(
            "bootstrap = \"{}\"\nsecurity_protocol = \"SASL_SSL\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n\
             sasl_username = \"{user}\"\n{password}\nssl_ca_location = {:?}\n",
            self.sasl_ssl,
            self.ca.display().to_string()
        )
    }

    fn password_file(&self, user: &str) -> String {
        format!("sasl_password_file = {:?}", self.dir.path().join(format!("{user}.password")).display().to_string())
    }

    /// Starts an agent as `user` tailing `<dir>/<name>/*.log` (plain lines) and
    /// `<dir>/<name>/*.json` (JSON lines) into `topic`; its password comes from `${VAR}`.
    fn agent(&self, name: &str, user: &str, topic: &str) -> anyhow::Result<Component> {
        let logs = self.dir.path().join(name);
        std::fs::create_dir_all(&logs)?;
        let toml = format!(
            "[agent]\ndata_dir = {:?}\nhost_name = \"web-secure\"\ncheckpoint_interval = \"200ms\"\n\n\
             [output]\n{}\n\
             [[inputs.file]]\nname = \"app\"\ntopic = \"{topic}\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\n\n\
             [[inputs.file]]\nname = \"api\"\ntopic = \"{topic}\"\ninclude = [{:?}]\njson = true\nscan_interval = \"200ms\"\n",
            logs.join("data").display().to_string(),
            self.client_keys(user, "sasl_password = \"${MILLRACE_TEST_AGENT_PASSWORD}\""),
            logs.join("*.log").display().to_string(),
            logs.join("*.json").display().to_string(),
        );
        let password = format!("{user}-pa55");
        Component::start_with_env("agent", self.dir.path(), name, &toml, &[("MILLRACE_TEST_AGENT_PASSWORD", &password)])
    }

    /// Starts a sink as `user`, consuming `topic` in `group` into index `index` of `es`, with
    /// dead letters to `dead-letters`; its password comes from a file.
    fn sink(&self, name: &str, user: &str, topic: &str, group: &str, es: &EsTestServer) -> anyhow::Result<Component> {
        let toml = format!(
            "[source]\n{}\n\
             [[elasticsearch]]\nname = \"{name}\"\ntopics = [\"{topic}\"]\ngroup = \"{group}\"\nendpoints = [\"{}\"]\n\
             index = \"{name}\"\nbatch_max_events = 200\nbatch_timeout = \"200ms\"\nretry_initial = \"100ms\"\n\
             retry_max = \"1s\"\nrequest_timeout = \"5s\"\ndead_letter_topic = \"dead-letters\"\n",
            self.client_keys(user, &self.password_file(user)),
            es.url(),
        );
        Component::start("sink", self.dir.path(), name, &toml)
    }

    /// kcat's options to log in as the operator.
    fn kcat_operator(&self) -> Vec<String> {
        let options = [
            "security.protocol=SASL_SSL".to_string(),
            "sasl.mechanisms=SCRAM-SHA-512".into(),
            "sasl.username=operator".into(),
            "sasl.password=operator-pa55".into(),
            format!("ssl.ca.location={}", self.ca.display()),
        ];
        millrace_tests::kcat_properties(options)
    }

    /// Every record of `topic` as `(headers, value)`, read by the operator.
    fn records(&self, topic: &str) -> anyhow::Result<Vec<(String, String)>> {
        let args = ["-C", "-t", topic, "-e", "-q", "-f", "%h\t%s\n"];
        let out = millrace_tests::kcat(&self.sasl_ssl, &self.kcat_operator(), &args, None, T)?;
        Ok(out.lines().filter_map(|l| l.split_once('\t').map(|(h, v)| (h.to_string(), v.to_string()))).collect())
    }

    /// The `message` of every record of `topic` with its count.
    fn messages(&self, topic: &str) -> anyhow::Result<HashMap<String, usize>> {
        let mut seen = HashMap::new();
        for (_, value) in self.records(topic)? {
            let doc: Value = serde_json::from_str(&value)?;
            *seen.entry(doc["message"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        }
        Ok(seen)
    }

    /// Whether `group` has committed every record of every partition it reads (one without
    /// records has nothing to commit: which partitions the files' keys land on varies).
    fn committed_everything(&self, group: &str) -> anyhow::Result<bool> {
        let described = self.operator(&["group", "describe", group])?;
        Ok(millrace_tests::committed_everything(&described, group))
    }
}

/// Appends `lines` to `path`.
fn append(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all((lines.join("\n") + "\n").as_bytes())?;
    Ok(())
}

/// `count` lines `"{tag}-{n}"` appended to `path`; returns them.
fn write_lines(path: &Path, tag: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let lines: Vec<String> = (0..count).map(|n| format!("{tag}-{n:05}")).collect();
    append(path, &lines)?;
    Ok(lines)
}

/// The agent's checkpoint (acknowledged byte offset) of the file at `path`, 0 when it has none.
fn checkpoint(agent_data: &Path, path: &Path) -> anyhow::Result<u64> {
    let registry = match std::fs::read_to_string(agent_data.join("registry.json")) {
        Ok(text) => serde_json::from_str::<Value>(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let path = path.display().to_string();
    let files = registry["files"].as_array().cloned().unwrap_or_default();
    Ok(files.iter().find(|f| f["path"].as_str() == Some(&path)).and_then(|f| f["offset"].as_u64()).unwrap_or(0))
}

/// The `message` of every document Elasticsearch holds in `index`, with its count.
fn documents(es: &EsTestServer, index: &str) -> anyhow::Result<HashMap<String, usize>> {
    let mut seen = HashMap::new();
    for doc in es.docs(Some(index))? {
        *seen.entry(doc["source"]["message"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    Ok(seen)
}

fn with_logs(e: anyhow::Error, components: &[&Component]) -> anyhow::Error {
    let logs: Vec<String> = components.iter().map(|c| c.log()).collect();
    anyhow::anyhow!("{e}\n\nlogs:\n{}", logs.join("\n----\n"))
}

#[test]
fn agent_to_sink_over_sasl_ssl_with_least_privilege_acls() -> anyhow::Result<()> {
    let secure = SecureBroker::start(&[("logs", "2"), ("dead-letters", "1")])?;
    secure.grant_pipeline("agent", "sink", &["logs"], "dead-letters")?;
    let es = EsTestServer::start(&[])?;
    let mut agent = secure.agent("agent", "agent", "logs")?;
    let mut sink = secure.sink("secure-logs", "sink", "logs", "millrace-logs", &es)?;

    // A JSON line fixes `status` as a number; a later one makes it a string, which Elasticsearch
    // refuses for good: that document goes to the dead-letter topic.
    let logs = secure.dir.path().join("agent");
    append(&logs.join("api.json"), &[r#"{"status": 200, "message": "json-ok"}"#.into()])?;
    let mut expected = vec!["json-ok".to_string()];
    for round in 0..4 {
        expected.extend(write_lines(&logs.join("app.log"), &format!("secure-{round}"), 500)?);
        std::thread::sleep(Duration::from_millis(200));
    }
    append(&logs.join("api.json"), &[r#"{"status": "OK", "message": "json-conflict"}"#.into()])?;

    wait_for("every line in Elasticsearch", T, || {
        let seen = documents(&es, "secure-logs")?;
        Ok(expected.iter().all(|l| seen.contains_key(l)))
    })
    .map_err(|e| with_logs(e, &[&agent, &sink]))?;
    wait_for("the refused document in the dead-letter topic", T, || Ok(!secure.records("dead-letters")?.is_empty()))
        .map_err(|e| with_logs(e, &[&sink]))?;
    wait_for("the group to commit everything", T, || secure.committed_everything("millrace-logs"))
        .map_err(|e| with_logs(e, &[&sink]))?;

    let seen = documents(&es, "secure-logs")?;
    assert_eq!(seen.len(), expected.len(), "one document per line, and nothing else");
    assert!(seen.values().all(|n| *n == 1), "documents stored twice");
    let dead = secure.records("dead-letters")?;
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert!(dead[0].1.contains("json-conflict") && dead[0].0.contains("millrace.error="), "{dead:#?}");
    // The agent acknowledged every line: its checkpoint is at the end of the file.
    let app = logs.join("app.log");
    let size = std::fs::metadata(&app)?.len();
    wait_for("the agent to checkpoint the whole file", Duration::from_secs(10), || {
        Ok(checkpoint(&logs.join("data"), &app)? == size)
    })?;

    agent.stop(Duration::from_secs(60))?;
    sink.stop(Duration::from_secs(60))?;
    for (component, password) in [(&agent, "agent-pa55"), (&sink, "sink-pa55")] {
        let log = component.log();
        assert!(!log.contains(password), "a password in a log:\n{log}");
    }
    Ok(())
}

#[test]
fn an_agent_without_write_and_a_sink_without_its_group_get_nothing_through() -> anyhow::Result<()> {
    let secure = SecureBroker::start(&[("logs", "2"), ("dead-letters", "1")])?;
    // The README's grants, with one permission missing each: Write on the topic for the agent,
    // Read on the group for the sink.
    let (agent_user, sink_user) = ("agent-without-write", "sink-without-group");
    secure.allow(&[
        "--allow-principal",
        &format!("User:{agent_user}"),
        "--operation",
        "Describe",
        "--topic",
        "logs",
    ])?;
    secure.allow(&[
        "--allow-principal",
        &format!("User:{agent_user}"),
        "--operation",
        "IdempotentWrite",
        "--cluster",
    ])?;
    let sink_principal = format!("User:{sink_user}");
    for topic in ["logs", "dead-letters"] {
        let operations = if topic == "logs" { ["Read", "Describe"] } else { ["Write", "Describe"] };
        let mut args = vec!["--allow-principal", &sink_principal, "--topic", topic];
        args.extend(operations.iter().flat_map(|o| ["--operation", *o]));
        secure.allow(&args)?;
    }

    // The agent: its lines are refused, it says so, and its checkpoint stays before them.
    let mut agent = secure.agent("agent", agent_user, "logs")?;
    let app = secure.dir.path().join("agent").join("app.log");
    let lines = write_lines(&app, "refused", 300)?;
    agent.process().wait_for_line("the agent to report the refusal", T, |l| {
        l.contains("the broker refused a record for good") && l.contains("Topic authorization failed")
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let data = secure.dir.path().join("agent").join("data");
    assert_eq!(checkpoint(&data, &app)?, 0, "the checkpoint moved past refused lines");
    assert!(secure.records("logs")?.is_empty(), "refused lines reached the topic");
    agent.stop(Duration::from_secs(60))?;
    assert_eq!(checkpoint(&data, &app)?, 0, "the checkpoint written at shutdown moved past refused lines");

    // Granted Write, the restarted agent sends every line from its checkpoint.
    secure.allow(&["--allow-principal", &format!("User:{agent_user}"), "--operation", "Write", "--topic", "logs"])?;
    agent.spawn()?;
    wait_for("the refused lines once Write is granted", T, || {
        let seen = secure.messages("logs")?;
        Ok(lines.iter().all(|l| seen.contains_key(l)))
    })
    .map_err(|e| with_logs(e, &[&agent]))?;
    agent.stop(Duration::from_secs(60))?;

    // The sink: the records are there to read, but joining its group is refused.
    let es = EsTestServer::start(&[])?;
    let mut sink = secure.sink("no-group", sink_user, "logs", "millrace-no-group", &es)?;
    sink.process().wait_for_line("the sink to report the refusal", T, |l| l.contains("Group authorization failed"))?;
    std::thread::sleep(Duration::from_secs(3));
    assert!(documents(&es, "no-group")?.is_empty(), "a sink without Read on its group wrote documents");
    // Refused at JoinGroup, the group never came to be, let alone committed anything.
    let groups = secure.operator(&["group", "list"])?;
    assert!(!groups.lines().any(|l| l.starts_with("millrace-no-group ")), "the refused group exists:\n{groups}");

    // Granted Read on the group, the same process joins and catches up.
    secure.allow(&["--allow-principal", &sink_principal, "--operation", "Read", "--group", "millrace-no-group"])?;
    wait_for("the sink to write every record once its group is granted", T, || {
        let seen = documents(&es, "no-group")?;
        Ok(lines.iter().all(|l| seen.contains_key(l)))
    })
    .map_err(|e| with_logs(e, &[&sink]))?;
    sink.stop(Duration::from_secs(60))?;
    Ok(())
}
