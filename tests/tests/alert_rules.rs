//! `deploy/prometheus/alerts.yml`: promtool accepts the rules and their unit tests
//! (`alerts_test.yml`) pass, and every millrace metric the rules name exists — the broker's in a
//! real broker's `/metrics`, the agent's and sinks' in their registries' sources — so a renamed
//! metric cannot leave an alert that never fires.

use millrace_tests::{run, workspace_root, BrokerProcess};
use std::collections::BTreeSet;
use std::time::Duration;

fn promtool(args: &[&str]) -> anyhow::Result<String> {
    let dir = workspace_root().join("deploy/prometheus");
    let mut full = args.to_vec();
    let files: Vec<String> = full.drain(2..).map(|f| dir.join(f).display().to_string()).collect();
    full.extend(files.iter().map(String::as_str));
    let out = run("promtool", &full, None, Duration::from_secs(60))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(out.status.success(), "promtool {args:?} failed:\n{text}");
    Ok(text)
}

/// The `millrace_*` metric names the rules use.
fn names_in_rules() -> anyhow::Result<BTreeSet<String>> {
    let rules = std::fs::read_to_string(workspace_root().join("deploy/prometheus/alerts.yml"))?;
    let mut names = BTreeSet::new();
    for expr in rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")) {
        let mut rest = expr;
        while let Some(at) = rest.find("millrace_") {
            let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    Ok(names)
}

#[test]
fn the_alert_rules_pass_promtool_and_name_metrics_that_exist() -> anyhow::Result<()> {
    let checked = promtool(&["check", "rules", "alerts.yml"])?;
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"])?;
    assert!(tested.contains("SUCCESS"), "{tested}");

    let names = names_in_rules()?;
    assert!(names.len() >= 10, "{names:?}");
    let broker = BrokerProcess::start("")?;
    let metrics = broker.admin_get("/metrics")?;
    let broker_source = std::fs::read_to_string(workspace_root().join("broker/src/metrics.rs"))?;
    let sources = [
        ("millrace_agent_", std::fs::read_to_string(workspace_root().join("agent/src/metrics.rs"))?),
        ("millrace_sink_", std::fs::read_to_string(workspace_root().join("sinks/src/metrics.rs"))?),
    ];
    for name in &names {
        if let Some(short) = name.strip_prefix("millrace_broker_") {
            // A labelled family has no series before its first label (no group committed yet):
            // then its registration in the source stands for it.
            let live =
                metrics.lines().any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")));
            let labelled =
                broker_source.contains(&format!("\"{short}\"")) && broker_source.contains("labelled_gauge_vec");
            assert!(live || labelled, "{name} is in the rules but not in a broker's /metrics");
        } else {
            let (prefix, source) = sources
                .iter()
                .find(|(prefix, _)| name.starts_with(prefix))
                .ok_or_else(|| anyhow::anyhow!("{name}: no registry with its prefix"))?;
            let short = &name[prefix.len()..];
            assert!(source.contains(&format!("\"{short}\"")), "{name} is in the rules but {prefix}* has no {short:?}");
        }
    }
    Ok(())
}
