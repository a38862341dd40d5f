//! `deploy/prometheus/alerts.yml`: promtool accepts the rules and their unit tests
//! (`alerts_test.yml`) pass; the Grafana dashboard's queries are valid PromQL (checked by promtool
//! as recording rules); and every millrace metric either names exists — the broker's in a real
//! broker's `/metrics`, the agent's and sinks' in their registries' sources — so a renamed metric
//! cannot leave an alert that never fires or a panel that stays empty.

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

/// The `millrace_*` metric names in `exprs`.
fn metric_names<'a>(exprs: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for expr in exprs {
        let mut rest = expr;
        while let Some(at) = rest.find("millrace_") {
            let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    names
}

/// The `millrace_*` metric names the rules use.
fn names_in_rules() -> anyhow::Result<BTreeSet<String>> {
    let rules = std::fs::read_to_string(workspace_root().join("deploy/prometheus/alerts.yml"))?;
    Ok(metric_names(rules.lines().filter_map(|l| l.trim().strip_prefix("expr:"))))
}

/// The Grafana dashboard's panel queries.
fn dashboard_exprs() -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(workspace_root().join("deploy/grafana/millrace.json"))?;
    let dashboard: serde_json::Value = serde_json::from_str(&text)?;
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().ok_or_else(|| anyhow::anyhow!("a target without expr: {panel}"))?;
            exprs.push(expr.to_string());
        }
    }
    Ok(exprs)
}

#[test]
fn the_alert_rules_pass_promtool_and_name_metrics_that_exist() -> anyhow::Result<()> {
    let checked = promtool(&["check", "rules", "alerts.yml"])?;
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"])?;
    assert!(tested.contains("SUCCESS"), "{tested}");

    // The dashboard's queries as recording rules: promtool parses every one.
    let exprs = dashboard_exprs()?;
    assert!(exprs.len() >= 10, "{exprs:?}");
    let dir = tempfile::tempdir()?;
    let rules: String = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!("      - record: dashboard_query_{i}\n        expr: {}\n", serde_json::Value::from(e.as_str()))
        })
        .collect();
    let path = dir.path().join("dashboard_rules.yml");
    std::fs::write(&path, format!("groups:\n  - name: dashboard\n    rules:\n{rules}"))?;
    let out = run("promtool", &["check", "rules", &path.display().to_string()], None, Duration::from_secs(60))?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut names = names_in_rules()?;
    assert!(names.len() >= 10, "{names:?}");
    names.extend(metric_names(exprs.iter().map(String::as_str)));
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
