//! `millrace top`'s pipeline views against a real pipeline: a 3-broker cluster, an agent tailing
//! a file and a sink writing the topic to a file, both publishing their status every second to
//! `__millrace_status` (created by the brokers). With no configuration beyond the bootstrap,
//! the Agents and Sinks views show them delivering; a sink killed with kill -9 turns red
//! ("down", "silent for …") within three intervals and is ok again once restarted; the tail
//! pane shows the topic's latest lines; an agent stopped cleanly reads "stopped".

use anyhow::Context;
use millrace_tests::component::Component;
use millrace_tests::tmux::{row, TmuxPane};
use millrace_tests::{millrace_bin, Cluster};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOPIC: &str = "app-logs";
const SCREEN: Duration = Duration::from_secs(40);

/// Whether the line holding `needle` is drawn red: SGR 31 or 91, or 256-colour 1 or 9
/// (`38;5;1`), alone or combined with other attributes.
fn drawn_red(colored: &str, needle: &str) -> bool {
    let Some(line) = colored.lines().find(|l| l.contains(needle)) else { return false };
    line.split("\x1b[").skip(1).any(|sgr| {
        let params: Vec<&str> = sgr.split('m').next().unwrap_or_default().split(';').collect();
        params.iter().enumerate().any(|(i, p)| {
            matches!(*p, "31" | "91")
                || (*p == "38"
                    && params.get(i + 1) == Some(&"5")
                    && matches!(params.get(i + 2), Some(&"1") | Some(&"9")))
        })
    })
}

/// The `n`th whitespace-separated word of the table row holding `needle`.
fn column<'a>(screen: &'a str, needle: &str, n: usize) -> Option<&'a str> {
    row(screen, needle)?.trim_start_matches('│').split_whitespace().nth(n)
}

#[test]
fn top_shows_agents_and_sinks_and_a_killed_sink_turns_red() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, "")?;
    cluster.create_topic(TOPIC, 3, 3, &[])?;
    let bootstrap = cluster.bootstrap();
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("app.log");
    std::fs::write(&input, b"")?;
    // Lines keep coming, so rates are not zero.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, input) = (stop.clone(), input.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut file = std::fs::OpenOptions::new().append(true).open(&input)?;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..20 {
                    writeln!(file, "line {n}")?;
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        })
    };
    let agent_toml = format!(
        "[agent]\nhost_name = \"web-test\"\ndata_dir = {:?}\nstatus_interval = \"1s\"\n\n[output]\nbootstrap = \"{bootstrap}\"\n\n\
         [[inputs.file]]\nname = \"app\"\ntopic = \"{TOPIC}\"\ninclude = [{:?}]\n",
        dir.path().join("agent-data").display().to_string(),
        input.display().to_string(),
    );
    let mut agent = Component::start("agent", dir.path(), "agent", &agent_toml)?;
    let sink_toml = format!(
        "[sink]\nhost_name = \"sink-test\"\nstatus_interval = \"1s\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n\
         [[file]]\nname = \"out-file\"\ntopics = [\"{TOPIC}\"]\ngroup = \"tui-file\"\npath = {:?}\nformat = \"elasticsearch_bulk\"\n",
        dir.path().join("out.ndjson").display().to_string(),
    );
    let mut sink = Component::start("sink", dir.path(), "sink", &sink_toml)?;

    let bin = millrace_bin();
    let bin = bin.to_str().context("binary path")?;
    let log = dir.path().join("top.log");
    let log = log.to_str().context("log path")?;
    let pane = TmuxPane::start(
        bin,
        &["top", "--bootstrap", &bootstrap, "--interval", "1s", "--log-file", log, "--view", "agents"],
        170,
        40,
    )?;
    let screen = pane.wait_for_screen("the agent delivering, the sink heard from", SCREEN, |s| {
        s.contains("pipeline 2: 0 down")
            && row(s, "web-test").is_some_and(|r| r.contains(" ok ") && r.contains("/s") && !r.contains(" 0.0/s"))
    })?;
    eprintln!("agents:\n{screen}");

    pane.type_command("sinks")?;
    let screen = pane.wait_for_screen("the sink writing", SCREEN, |s| {
        row(s, "out-file").is_some_and(|r| r.contains(" ok ") && r.contains("file") && r.contains("sink-test"))
            && column(s, "out-file", 4).is_some_and(|written| written != "0.0/s" && written != "-")
    })?;
    eprintln!("sinks:\n{screen}");
    assert!(!drawn_red(&pane.screen_with_colors()?, "out-file"), "a healthy sink drawn red");

    sink.kill9();
    let screen = pane.wait_for_screen("the killed sink down", SCREEN, |s| {
        row(s, "out-file").is_some_and(|r| r.contains(" down ") && r.contains("silent for"))
    })?;
    eprintln!("after kill -9 of the sink:\n{screen}");
    assert!(screen.contains("pipeline 2: 1 down"), "{screen}");
    let colored = pane.screen_with_colors()?;
    assert!(drawn_red(&colored, "out-file"), "the killed sink is not drawn red:\n{colored}");

    sink.spawn()?;
    pane.wait_for_screen("the restarted sink ok again", SCREEN, |s| {
        row(s, "out-file").is_some_and(|r| r.contains(" ok "))
    })?;

    // The tail pane shows the topic's latest records, as a console consumer would.
    pane.type_command(&format!("tail {TOPIC}"))?;
    let tail = pane.wait_for_screen("the latest lines of the topic", SCREEN, |s| {
        // The agent's events are JSON; their key is the host and the file.
        s.contains(&format!("tail of {TOPIC}"))
            && s.lines().filter(|l| l.contains("web-test:") && l.contains("@timestamp")).count() >= 5
    })?;
    eprintln!("tail:\n{tail}");

    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    agent.stop(Duration::from_secs(45))?;
    pane.type_command("agents")?;
    pane.wait_for_screen("the agent stopped", SCREEN, |s| {
        row(s, "web-test").is_some_and(|r| r.contains(" stopped ") && r.contains("stopped"))
    })?;

    pane.send_keys(&["q"])?;
    sink.stop(Duration::from_secs(45))?;
    Ok(())
}
