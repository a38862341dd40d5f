//! What the demo says once it runs: where everything is and how to look at it (with `--secure`,
//! how to log in — never a password itself, only the file holding it).

use super::configs::{LogsOut, MetricsOut, LOGS_GROUP, LOGS_TOPIC, METRICS_TOPIC};
use super::secure::User;
use super::{Demo, DemoArgs};

/// Prints the banner of the running `demo`.
pub fn print(demo: &Demo, args: &DemoArgs, temporary: bool) {
    let layout = &demo.layout;
    let dir = layout.dir.display();
    let exe = demo.exe.display();
    let bootstrap = layout.bootstrap();
    let kept = match (temporary, args.keep) {
        (true, false) => "removed on exit; --keep keeps it",
        _ => "kept on exit",
    };
    let mut metrics: Vec<String> =
        layout.brokers.iter().map(|b| format!("broker {} http://127.0.0.1:{}/metrics", b.id, b.admin)).collect();
    metrics.push(format!("agent http://127.0.0.1:{}/metrics", layout.agent_metrics));
    metrics.push(format!("sink http://127.0.0.1:{}/metrics", layout.sink_metrics));
    let logs_to = match &layout.logs_out {
        LogsOut::File(path) => format!("{} (Elasticsearch bulk)", path.display()),
        LogsOut::Elasticsearch(url) => format!("Elasticsearch {url}, index logs-YYYY.MM.DD"),
    };
    let metrics_to = match &layout.metrics_out {
        MetricsOut::File(path) => format!("{} (InfluxDB line protocol)", path.display()),
        MetricsOut::InfluxDb { url, database } => format!("InfluxDB {url}, database {database}"),
    };
    // The CLIs' way in: nothing in plaintext, the operator's properties with --secure.
    let login = match &layout.secure {
        Some(secure) => format!(" --command-config {}", secure.operator_properties.display()),
        None => String::new(),
    };
    println!("millrace demo is running");
    println!("  directory  {dir} ({kept})");
    println!("  brokers    {bootstrap} (topics {LOGS_TOPIC}, {METRICS_TOPIC}: 3 partitions, 3 replicas)");
    if let Some(secure) = &layout.secure {
        println!("  security   SASL_SSL (SCRAM-SHA-512) only, ACLs enforced; CA {}", secure.ca_file.display());
        println!(
            "             users agent (writes {LOGS_TOPIC}, {METRICS_TOPIC}), sink (reads them, writes dead-letters), \
             operator (super user)"
        );
        println!("             passwords in {dir}/secrets/, certificates in {dir}/pki/");
    }
    println!("  /metrics   {}", metrics.join("\n             "));
    let pids: Vec<String> = demo.children.pids().iter().map(|(name, pid)| format!("{name} {pid}")).collect();
    println!("  processes  {}", pids.join(", "));
    println!("  logs       {dir}/logs/broker-{{1,2,3}}.log, agent.log, sink.log");
    println!("  configs    {dir}/broker-{{1,2,3}}.toml, agent.toml, sink.toml");
    println!("  input      {} ({} lines/s, nginx combined format)", layout.access_log().display(), args.rate);
    println!("  output     {LOGS_TOPIC} -> {logs_to}");
    println!("             {METRICS_TOPIC} -> {metrics_to}");
    println!("  watch      {exe} top --bootstrap {bootstrap}{login}");
    println!("             {exe} group describe {LOGS_GROUP} --bootstrap {bootstrap}{login}");
    println!("             {exe} topic describe {LOGS_TOPIC} --bootstrap {bootstrap}{login}");
    if let Some(secure) = &layout.secure {
        println!("             {exe} acl list --bootstrap {bootstrap}{login}");
        println!("  kcat       kcat -b {bootstrap} {} -L", secure.kcat_options(User::Operator));
    }
    println!("  stop       Ctrl-C{}", args.duration.map(|s| format!(" (or wait {s}s)")).unwrap_or_default());
}
